// A one-member group (a node without a cluster token): it leads at once, commits a command once
// its entry is durable here, applies it to the node's metadata, and answers read barriers; a
// restart over the same metadata finds the log and the heads where they were.
import { afterEach, describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { ConsensusUnavailableError } from "../../src/consensus/strong-consensus.ts";
import { createFolder, makeVersion, MemoryRaftNetwork, moveHead, waitFor, type TestMember } from "./raft-cluster.ts";

let started: TestMember[] = [];
afterEach(async () => {
  for (const member of started) await member.driver.stop();
  started = [];
});

async function alone(network = new MemoryRaftNetwork(), id = "n1"): Promise<TestMember> {
  const member = await network.add(id, []);
  started.push(member);
  await member.driver.start();
  await waitFor(() => member.driver.isLeader(), 2000, "the single member to lead");
  return member;
}

describe("a single-member group", () => {
  test("creates a strong folder and moves its head through the log, as every member would apply it", async () => {
    const { node, driver } = await alone();
    expect(await driver.propose(createFolder("docs"), 2000)).toEqual({ applied: true });
    const folder = await node.getFolder("docs");
    expect(folder.mode).toBe("strong");
    expect(folder.head).toBeNull();
    // Created again: nothing changes.
    expect(await driver.propose(createFolder("docs"), 2000)).toEqual({ applied: false, reason: "exists" });

    const v1 = makeVersion("n1", "one");
    await node.putObjects(v1.objects);
    const heard: string[] = [];
    node.onHeadChanged((f, head) => heard.push(`${f}:${idToHex(head)}`));
    expect(await driver.propose(moveHead("docs", null, v1), 2000)).toEqual({ applied: true });
    expect(idToHex((await node.getFolder("docs")).head!)).toBe(idToHex(v1.id));
    expect(heard).toEqual([`docs:${idToHex(v1.id)}`]);

    // A stale expected head is refused, naming the head as it is.
    const v2 = makeVersion("n1", "two", [v1.id], 2);
    await node.putObjects(v2.objects);
    const stale = await driver.propose(moveHead("docs", null, v2), 2000);
    expect(stale.applied).toBe(false);
    expect(stale).toMatchObject({ reason: "head moved" });
    expect(idToHex((stale as { head: Uint8Array }).head)).toBe(idToHex(v1.id));
    expect(await driver.propose(moveHead("docs", v1.id, v2), 2000)).toEqual({ applied: true });

    const status = driver.status();
    expect(status.role).toBe("leader");
    expect(status.leader?.id).toBe("n1");
    expect(status.applied).toBe(status.commit);
    expect(status.members).toEqual([expect.objectContaining({ id: "n1", self: true })]);
    // Durable: the log holds every command (a no-op, the create twice, three moves).
    const stored = await node.metadata.loadRaft();
    expect(stored!.entries.length).toBeGreaterThanOrEqual(6);
    expect(stored!.applied).toBe(status.applied);
  });

  test("a read barrier resolves once everything committed before it is applied", async () => {
    const { driver } = await alone();
    await driver.propose(createFolder("docs"), 2000);
    const before = driver.status().applied;
    await driver.readBarrier(2000);
    expect(driver.status().applied).toBeGreaterThanOrEqual(before);
  });

  test("a restart over the same metadata keeps the log, the applied index and the heads", async () => {
    const network = new MemoryRaftNetwork();
    const first = await alone(network);
    await first.driver.propose(createFolder("docs"), 2000);
    const v1 = makeVersion("n1", "one");
    await first.node.putObjects(v1.objects);
    await first.driver.propose(moveHead("docs", null, v1), 2000);
    const appliedBefore = first.driver.status().applied;
    const termBefore = first.driver.status().term;
    await first.driver.stop();
    started = [];

    const again = network.attach(first.node, []);
    started.push(again);
    await again.driver.start();
    await waitFor(() => again.driver.isLeader(), 2000, "the restarted member to lead");
    expect(again.driver.status().term).toBeGreaterThan(termBefore);
    expect(again.driver.status().applied).toBeGreaterThanOrEqual(appliedBefore);
    // Nothing applied twice wrongly: the head is still v1, and the next move builds on it.
    const v2 = makeVersion("n1", "two", [v1.id], 2);
    await again.node.putObjects(v2.objects);
    expect(await again.driver.propose(moveHead("docs", v1.id, v2), 2000)).toEqual({ applied: true });
  });

  test("a failed save stops the Ready before anything is sent or applied; the member is rebuilt from what is durable", async () => {
    const member = await alone();
    const metadata = member.node.metadata;
    const save = metadata.saveRaft.bind(metadata);
    let failures = 1;
    metadata.saveRaft = async (update) => {
      if (failures-- > 0) throw new Error("disk unplugged");
      return save(update);
    };
    // The proposal whose entry could not be saved is not applied; the deadline settles it.
    await expect(member.driver.propose(createFolder("lost"), 300)).rejects.toBeInstanceOf(ConsensusUnavailableError);
    expect(await member.node.findFolder("lost")).toBeUndefined();
    expect(member.log.join("\n")).toContain("disk unplugged");
    await waitFor(() => member.driver.isLeader(), 5000, "the rebuilt member to lead again");
    expect(await member.driver.propose(createFolder("kept"), 2000)).toEqual({ applied: true });
    expect((await member.node.getFolder("kept")).mode).toBe("strong");
  });

  test("a stopped driver refuses proposals and reads with ConsensusUnavailableError", async () => {
    const member = await alone();
    await member.driver.stop();
    started = [];
    await expect(member.driver.propose(createFolder("docs"), 500)).rejects.toBeInstanceOf(ConsensusUnavailableError);
    await expect(member.driver.readBarrier(500)).rejects.toBeInstanceOf(ConsensusUnavailableError);
  });
});
