// A leader that stops answering (SIGSTOP, a frozen VM) right after it appended a moveHead, while
// its followers fetch the version the entry names from it: the fetch hangs until the transport's
// deadline (two minutes for a download). The followers elect another leader meanwhile, and its
// appends must not queue behind that fetch: the append of a term the follower has left is not
// waited for (stepped, it would be refused anyway), and the new leader commits at once.
import { afterEach, expect, test } from "bun:test";
import { createFolder, makeVersion, MemoryRaftNetwork, moveHead, waitFor, type TestMember } from "./raft-cluster.ts";

let running: TestMember[] = [];
afterEach(async () => {
  for (const member of running) await member.driver.stop();
  running = [];
});

test("a leader stopped while its followers fetch what its last append names: the next leader commits without waiting on that fetch", async () => {
  const network = new MemoryRaftNetwork();
  const members = await network.startGroup(["n1", "n2", "n3"], running);
  const leader = await network.waitForLeader();
  await leader.driver.propose(createFolder("docs"), 5000);

  // The first follower asking the leader for the version's objects finds it stopped: that call,
  // and every call to or from it after, is never answered.
  const v = makeVersion(leader.id, "only the leader has this");
  await leader.node.putObjects(v.objects);
  leader.service.download = async () => {
    network.stopped.add(leader.id);
    return new Promise<never>(() => {});
  };
  const lost = leader.driver.propose(moveHead("docs", null, v), 1000).catch((error: Error) => error);
  await waitFor(() => network.stopped.has(leader.id), 5000, "a follower to ask the leader for the version");

  const others = members.filter((m) => m !== leader);
  const next = await waitFor(() => others.find((m) => m.driver.isLeader()), 5000, "one of the other two to lead");
  // A majority of two: this commits only once the other follower acknowledges the new leader's appends.
  expect(await next.driver.propose(createFolder("after"), 5000)).toEqual({ applied: true });
  const follower = others.find((m) => m !== next)!;
  await waitFor(async () => (await follower.node.findFolder("after")) !== null, 5000, `${follower.id} to apply the new leader's entry`);
  expect(follower.log.join("\n")).toContain("gave up fetching what an append of term");
  expect(await lost).toBeInstanceOf(Error);
}, 20_000);

// The same stop at apply time: a follower that acknowledged a move, and whose copy of the
// version a collection took before it learned the move committed (cut off from the leader for
// longer than the collection's grace), fetches it again from the leader first. A leader stopped
// then must not hold that fetch, and with it the follower's whole loop (no vote, no append), for
// the download's deadline: the fetch from a leader not heard from within an election timeout is
// given up for the next member, which acknowledged the move and holds it.
test("a leader stopped while a follower fetches again at apply time what a committed move names: the follower fetches it from another member and the group goes on", async () => {
  const network = new MemoryRaftNetwork();
  const members = await network.startGroup(["n1", "n2", "n3"], running);
  const leader = await network.waitForLeader();
  await leader.driver.propose(createFolder("docs"), 5000);
  const [late, other] = members.filter((m) => m !== leader) as [TestMember, TestMember];
  await waitFor(async () => (await late.node.findFolder("docs")) !== null, 5000, `${late.id} to apply the folder`);

  // `late` hears from the leader only up to its acknowledgement of the move: the commit never reaches it.
  let holding = false;
  let commitSeen = 0;
  network.onSend = (from, to, messages) => {
    if (from !== leader.id || to !== late.id) return;
    if (!holding) for (const m of messages) commitSeen = Math.max(commitSeen, m.commit);
    else if (messages.some((m) => m.commit > commitSeen)) throw new Error("held back");
  };
  await waitFor(() => commitSeen > 0, 5000, `the leader's commit to reach ${late.id}`);
  holding = true;
  const v = makeVersion(leader.id, "fetched, acknowledged, collected");
  await leader.node.putObjects(v.objects);
  expect(await leader.driver.propose(moveHead("docs", null, v), 5000)).toEqual({ applied: true });
  await waitFor(async () => (await other.node.findFolder("docs"))?.head != null, 5000, `${other.id} to apply the move`);
  expect((await late.node.findFolder("docs"))?.head ?? null).toBeNull();
  // A collection took the version's objects on `late` (their grace long past).
  await late.node.store.deleteUnusedSince(v.objects.map((o) => o.id), Date.now() + 3_600_000);

  // The leader stops as `late` asks it for them again.
  leader.service.download = async () => {
    network.stopped.add(leader.id);
    return new Promise<never>(() => {});
  };
  holding = false;
  await waitFor(() => network.stopped.has(leader.id), 5000, `${late.id} to ask the leader for the version again`);
  await waitFor(async () => (await late.node.findFolder("docs"))?.head != null, 8000, `${late.id} to apply the move with the version fetched elsewhere`);
  const next = await waitFor(() => [late, other].find((m) => m.driver.isLeader()), 8000, "one of the other two to lead");
  expect(await next.driver.propose(createFolder("after"), 5000)).toEqual({ applied: true });
  expect(late.log.join("\n")).toContain("gave up fetching a committed move's versions from the leader");
}, 30_000);

// And for a snapshot: a follower behind the leader's compacted log is sent one, and fetches the
// history behind each head it names before persisting it (the leader first), with its loop
// waiting on that fetch. A leader stopped then is given up for the other members the same way.
test("a leader stopped while a follower fetches the history a snapshot names: the follower fetches it from another member and the group goes on", async () => {
  const network = new MemoryRaftNetwork();
  const members = await network.startGroup(["n1", "n2", "n3"], running, { compactEvery: 3 });
  const leader = await network.waitForLeader();
  const [late, other] = members.filter((m) => m !== leader) as [TestMember, TestMember];
  await waitFor(() => late.driver.status().members.every((s) => s.self || s.address !== null), 5000, `${late.id} to know its peers`);
  network.cut.add(late.id);
  await leader.driver.propose(createFolder("docs"), 5000);
  let head: Uint8Array | null = null;
  for (let i = 1; i <= 6; i++) {
    const v = makeVersion(leader.id, `v${i}`, head ? [head as never] : [], i);
    await leader.node.putObjects(v.objects);
    expect(await leader.driver.propose(moveHead("docs", head as never, v), 5000)).toEqual({ applied: true });
    head = v.id;
  }
  expect((await leader.node.metadata.loadRaft())!.snapshot).toBeDefined();

  // The leader stops as `late` asks it for the history behind the snapshot's head.
  leader.service.history = async () => {
    network.stopped.add(leader.id);
    return new Promise<never>(() => {});
  };
  network.cut.delete(late.id);
  await waitFor(() => network.stopped.has(leader.id), 5000, `${late.id} to ask the leader for the snapshot's history`);
  await waitFor(async () => (await late.node.findFolder("docs"))?.head != null, 8000, `${late.id} to install the snapshot with the history fetched elsewhere`);
  const next = await waitFor(() => [late, other].find((m) => m.driver.isLeader()), 8000, "one of the other two to lead");
  expect(await next.driver.propose(createFolder("after"), 5000)).toEqual({ applied: true });
  expect((await late.node.listVersions("docs")).length).toBe(6);
  expect(late.log.join("\n")).toContain("gave up fetching the history a snapshot names from the leader");
}, 30_000);
