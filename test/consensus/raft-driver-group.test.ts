// Three drivers over an in-memory network (raft-cluster.ts): they bootstrap one group from their
// peers, elect a leader, commit and apply the same commands in the same order, survive the
// leader stopping; a follower fetches what an entry names before it acknowledges it; a follower
// that fell behind the compacted log catches up from a snapshot; messages from a non-member are
// refused and change nothing.
import { afterEach, describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import type { Message } from "../../src/core/raft/types.ts";
import { RaftRefusedError } from "../../src/wire/raft-message.ts";
import { createFolder, makeVersion, MemoryRaftNetwork, moveHead, waitFor, type MemberOptions, type TestMember } from "./raft-cluster.ts";

let running: TestMember[] = [];
afterEach(async () => {
  for (const member of running) await member.driver.stop();
  running = [];
});

async function group(options: MemberOptions = {}): Promise<{ network: MemoryRaftNetwork; members: TestMember[] }> {
  const network = new MemoryRaftNetwork();
  const members = await network.startGroup(["n1", "n2", "n3"], running, options);
  return { network, members };
}

/** The heads of folder `name` on every member, as hex (or null). */
async function heads(members: TestMember[], name: string): Promise<(string | null)[]> {
  return Promise.all(members.map(async (m) => ((await m.node.findFolder(name))?.head ? idToHex((await m.node.findFolder(name))!.head!) : null)));
}

describe("a group of three drivers", () => {
  test("bootstraps from its peers, elects one leader, and every member applies the same commands in the same order", async () => {
    const { network, members } = await group();
    const leader = await network.waitForLeader();
    for (const m of members) expect(m.driver.status().members.map((s) => s.id)).toEqual(["n1", "n2", "n3"]);
    expect(await leader.driver.propose(createFolder("docs"), 5000)).toEqual({ applied: true });
    let head: Uint8Array | null = null;
    const versions = [];
    for (let i = 1; i <= 5; i++) {
      const v = makeVersion(leader.id, `content ${i}`, head ? [head as never] : [], i);
      versions.push(v);
      await leader.node.putObjects(v.objects);
      expect(await leader.driver.propose(moveHead("docs", head as never, v), 5000)).toEqual({ applied: true });
      head = v.id;
    }
    await waitFor(async () => (await heads(members, "docs")).every((h) => h === idToHex(head!)), 5000, "every member at the last head");
    // The same history in the same order on every member: each recorded the five versions, oldest first.
    for (const m of members) {
      const recorded = (await m.node.listVersions("docs")).map((v) => idToHex(v.id)).reverse();
      expect(recorded).toEqual(versions.map((v) => idToHex(v.id)));
      expect((await m.node.getFolder("docs")).mode).toBe("strong");
    }
    // A follower refuses to propose and names the leader.
    const follower = members.find((m) => m !== leader)!;
    await expect(follower.driver.propose(createFolder("other"), 1000)).rejects.toMatchObject({ name: "NotLeaderError", leader: { id: leader.id, address: leader.id } });
  });

  test("survives the leader stopping: another is elected and takes commands", async () => {
    const { network, members } = await group();
    const first = await network.waitForLeader();
    await first.driver.propose(createFolder("docs"), 5000);
    const termBefore = first.driver.status().term;
    const stoppedAt = Date.now();
    await first.driver.stop();
    network.cut.add(first.id);
    running = running.filter((m) => m !== first);
    const second = await network.waitForLeader(3000, first.id);
    const failoverMs = Date.now() - stoppedAt;
    expect(second.id).not.toBe(first.id);
    // Leadership was handed over before the stop returned (no election timeout waited for).
    expect(first.log.join("\n")).not.toContain("did not pass");
    expect(second.driver.status().term).toBe(termBefore + 1);
    expect(failoverMs).toBeLessThan(1500);
    const v = makeVersion(second.id, "after failover");
    await second.node.putObjects(v.objects);
    expect(await second.driver.propose(moveHead("docs", null, v), 5000)).toEqual({ applied: true });
    const alive = members.filter((m) => m !== first);
    await waitFor(async () => (await heads(alive, "docs")).every((h) => h === idToHex(v.id)), 5000, "both remaining members at the new head");
  });

  test("a follower's read barrier goes through the leader; a member cut off from the rest cannot take one", async () => {
    const { network, members } = await group();
    const leader = await network.waitForLeader();
    const [follower, isolated] = members.filter((m) => m !== leader) as [TestMember, TestMember];
    await leader.driver.propose(createFolder("docs"), 5000);
    await follower.driver.readBarrier(2000);
    // Everything committed before the barrier is applied on the follower when it resolves.
    expect(follower.driver.status().applied).toBeGreaterThanOrEqual(leader.driver.status().commit - 0);
    expect((await follower.node.getFolder("docs")).mode).toBe("strong");
    network.cut.add(isolated.id);
    const asked = Date.now();
    await expect(isolated.driver.readBarrier(300)).rejects.toMatchObject({ name: "ConsensusUnavailableError" });
    expect(Date.now() - asked).toBeLessThan(2000);
    // The majority side goes on.
    await expect(leader.driver.readBarrier(2000)).resolves.toBeUndefined();
  });

  test("a follower lacking a version's objects fetches them before it acknowledges the entry", async () => {
    const { network, members } = await group();
    const leader = await network.waitForLeader();
    await leader.driver.propose(createFolder("docs"), 5000);
    // Every event in order: a follower storing the version's objects, a follower acknowledging entries.
    let sequence = 0;
    const stored = new Map<string, number>();
    const acks: { from: string; index: number; at: number }[] = [];
    const v = makeVersion(leader.id, "only the leader has this at first");
    for (const m of members) {
      if (m === leader) continue;
      const store = m.node.store;
      const putMany = store.putMany.bind(store);
      store.putMany = async (objects) => {
        await putMany(objects);
        if (objects.some((o) => idToHex(o.id) === idToHex(v.record.root)) && !stored.has(m.id)) stored.set(m.id, ++sequence);
      };
    }
    network.onSend = (from, _to, messages: readonly Message[]) => {
      for (const message of messages) if (message.type === "appendResponse" && !message.reject) acks.push({ from, index: message.index, at: ++sequence });
    };
    await leader.node.putObjects(v.objects);
    expect(await leader.driver.propose(moveHead("docs", null, v), 5000)).toEqual({ applied: true });
    const entries = (await leader.node.metadata.loadRaft())!.entries;
    const moveIndex = entries[entries.length - 1]!.index;
    await waitFor(async () => (await heads(members, "docs")).every((h) => h === idToHex(v.id)), 5000, "every member at the head");
    for (const m of members) {
      if (m === leader) continue;
      const storedAt = stored.get(m.id);
      expect(storedAt).toBeDefined();
      const covering = acks.filter((a) => a.from === m.id && a.index >= moveIndex);
      expect(covering.length).toBeGreaterThan(0);
      for (const ack of covering) expect(ack.at).toBeGreaterThan(storedAt!);
      // And what it holds is whole: the commit's closure check passes.
      await m.node.checkClosure(v.record.root);
    }
    expect((network.downloads.get(leader.id) ?? 0)).toBeGreaterThan(0);
  });

  test("a follower that fell behind the compacted log catches up from a snapshot, heads and history fetched", async () => {
    const { network, members } = await group({ compactEvery: 5 });
    const leader = await network.waitForLeader();
    const lagging = members.find((m) => m !== leader)!;
    network.cut.add(lagging.id);
    await leader.driver.propose(createFolder("docs"), 5000);
    let head: Uint8Array | null = null;
    for (let i = 1; i <= 12; i++) {
      const v = makeVersion(leader.id, `version ${i}`, head ? [head as never] : [], i);
      await leader.node.putObjects(v.objects);
      expect(await leader.driver.propose(moveHead("docs", head as never, v), 5000)).toEqual({ applied: true });
      head = v.id;
    }
    const compacted = await leader.node.metadata.loadRaft();
    expect(compacted!.snapshot).toBeDefined();
    expect(compacted!.snapshot!.meta.index).toBeGreaterThan(1);
    network.cut.delete(lagging.id);
    await waitFor(async () => (await lagging.node.findFolder("docs"))?.head && idToHex((await lagging.node.findFolder("docs"))!.head!) === idToHex(head!), 10_000, "the lagging follower at the leader's head");
    const folder = await lagging.node.getFolder("docs");
    expect(folder.mode).toBe("strong");
    // It took a snapshot (its own log starts after one), holds the head's whole tree, and the history behind it.
    const stored = await lagging.node.metadata.loadRaft();
    expect(stored!.snapshot).toBeDefined();
    const headVersion = await lagging.node.decodeVersion(folder.head!);
    await lagging.node.checkClosure(headVersion.root);
    expect((await lagging.node.listVersions("docs")).length).toBe(12);
    // And it goes on following the log.
    const next = makeVersion(leader.id, "after the snapshot", [head as never], 13);
    await leader.node.putObjects(next.objects);
    expect(await leader.driver.propose(moveHead("docs", head as never, next), 5000)).toEqual({ applied: true });
    await waitFor(async () => idToHex((await lagging.node.getFolder("docs")).head!) === idToHex(next.id), 5000, "the follower at the next head");
  });

  test("over TLS, messages under one member's id with another member's certificate are refused; its own certificate is taken", async () => {
    const { network, members } = await group({ peerFingerprint: async (address) => `sha256:${address}` });
    const leader = await network.waitForLeader();
    const follower = members.find((m) => m !== leader)!;
    const other = members.find((m) => m !== leader && m !== follower)!;
    await waitFor(() => follower.driver.status().members.every((s) => s.self || s.address !== null), 2000, "the follower to know its peers");
    const heartbeat: Message = { type: "heartbeat", from: leader.id, to: follower.id, term: follower.driver.status().term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    await expect(follower.driver.receiveRaft([heartbeat], `sha256:${other.id}`)).rejects.toBeInstanceOf(RaftRefusedError);
    await expect(follower.driver.receiveRaft([heartbeat], `sha256:${leader.id}`)).resolves.toMatchObject({ node: follower.id });
  });

  test("a snapshot stored before a crash but not installed is installed at the next start", async () => {
    const { network, members } = await group({ compactEvery: 3 });
    const leader = await network.waitForLeader();
    const follower = members.find((m) => m !== leader)!;
    // The follower is away for everything below.
    network.cut.add(follower.id);
    await follower.driver.stop();
    running = running.filter((m) => m !== follower);
    await leader.driver.propose(createFolder("docs"), 5000);
    let head: Uint8Array | null = null;
    for (let i = 1; i <= 6; i++) {
      const v = makeVersion(leader.id, `v${i}`, head ? [head as never] : [], i);
      await leader.node.putObjects(v.objects);
      await leader.driver.propose(moveHead("docs", head as never, v), 5000);
      head = v.id;
    }
    const snapshot = (await leader.node.metadata.loadRaft())!.snapshot!;
    expect(snapshot).toBeDefined();
    // What a follower's store holds when it crashed right after persisting a leader's snapshot, before installing it.
    const term = Math.max(snapshot.meta.term, (await follower.node.metadata.loadRaft())!.hardState.term);
    await follower.node.metadata.saveRaft({ snapshot, hardState: { term, vote: null, commit: snapshot.meta.index } });
    expect((await follower.node.metadata.loadRaft())!.applied).toBeLessThan(snapshot.meta.index);
    expect(await follower.node.findFolder("docs")).toBeUndefined();
    const restarted = network.attach(follower.node, members.filter((m) => m !== follower).map((m) => m.id));
    running.push(restarted);
    network.cut.delete(follower.id);
    await restarted.driver.start();
    await waitFor(async () => (await restarted.node.findFolder("docs"))?.head && idToHex((await restarted.node.findFolder("docs"))!.head!) === idToHex(head!), 5000, "the restarted node at the leader's head");
    expect((await restarted.node.metadata.loadRaft())!.applied).toBeGreaterThanOrEqual(snapshot.meta.index);
    await restarted.node.checkClosure((await restarted.node.decodeVersion(head as never)).root);
    expect((await restarted.node.listVersions("docs")).length).toBe(6);
  });

  test("messages from a node that is not a member, for another node, or under another member's name are refused and change nothing", async () => {
    const { network, members } = await group();
    const leader = await network.waitForLeader();
    const follower = members.find((m) => m !== leader)!;
    const before = follower.driver.status();
    const forged = (from: string, to: string): Message => ({
      type: "vote",
      from,
      to,
      term: before.term + 50,
      logTerm: 1000,
      index: 1000,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    await expect(follower.service.raft([forged("intruder", follower.id)])).rejects.toBeInstanceOf(RaftRefusedError);
    await expect(follower.service.raft([forged(leader.id, "someone-else")])).rejects.toBeInstanceOf(RaftRefusedError);
    await expect(follower.service.raft([forged(follower.id, follower.id)])).rejects.toBeInstanceOf(RaftRefusedError);
    // One bad message refuses the whole batch, the good one with it.
    const other = members.find((m) => m !== leader && m !== follower)!;
    await expect(follower.service.raft([forged(other.id, follower.id), forged("intruder", follower.id)])).rejects.toBeInstanceOf(RaftRefusedError);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = follower.driver.status();
    expect(after.term).toBe(before.term);
    expect(after.leader?.id).toBe(leader.id);
  });
});
