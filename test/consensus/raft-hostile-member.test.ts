// A member holding the cluster token that sends what no honest member would: a term near 2^53
// (the group's next election would need a term that is not a safe integer, and the term is
// durable, so the group would never elect again). Such a batch is refused whole and the group
// goes on; a term ahead by what elections make (a member that was away) is still taken. A
// leader's move naming a version whose objects exist nowhere is acknowledged by no follower.
import { afterEach, describe, expect, test } from "bun:test";
import type { Message } from "../../src/core/raft/types.ts";
import { RAFT_TERM_JUMP_MAX } from "../../src/consensus/raft-driver.ts";
import { RaftRefusedError } from "../../src/wire/raft-message.ts";
import { createFolder, makeVersion, MemoryRaftNetwork, moveHead, waitFor, type TestMember } from "./raft-cluster.ts";

let running: TestMember[] = [];
afterEach(async () => {
  for (const member of running) await member.driver.stop();
  running = [];
});

function message(type: Message["type"], from: string, to: string, term: number, fields: Partial<Message> = {}): Message {
  return { type, from, to, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

async function groupWithHostile(): Promise<{ network: MemoryRaftNetwork; leader: TestMember; hostile: TestMember; victim: TestMember }> {
  const network = new MemoryRaftNetwork();
  const members = await network.startGroup(["n1", "n2", "n3"], running);
  const leader = await network.waitForLeader();
  await leader.driver.propose(createFolder("docs"), 5000);
  const [hostile, victim] = members.filter((m) => m !== leader) as [TestMember, TestMember];
  // The hostile member speaks only through the messages the test makes up.
  await hostile.driver.stop();
  running = running.filter((m) => m !== hostile);
  network.cut.add(hostile.id);
  return { network, leader, hostile, victim };
}

describe("a hostile member", () => {
  test("a term near 2^53, in a heartbeat, a vote, an entry or a snapshot, is refused whole and the group keeps electing and committing", async () => {
    const { network, leader, hostile, victim } = await groupWithHostile();
    const huge = Number.MAX_SAFE_INTEGER;
    const bombs: Message[] = [
      message("heartbeat", hostile.id, victim.id, huge),
      message("preVote", hostile.id, victim.id, huge, { logTerm: huge, index: 1e9 }),
      message("append", hostile.id, victim.id, 1, { entries: [{ term: huge, index: 99, kind: "normal", data: new Uint8Array() }] }),
      message("snapshot", hostile.id, victim.id, 1, { snapshot: { meta: { index: 50, term: huge, config: { voters: ["n1", "n2", "n3"] } }, data: new Uint8Array() } }),
      message("heartbeat", hostile.id, leader.id, huge),
    ];
    for (const bomb of bombs) {
      const target = bomb.to === leader.id ? leader : victim;
      await expect(target.service.raft([bomb])).rejects.toBeInstanceOf(RaftRefusedError);
    }
    for (const m of [leader, victim]) expect(m.driver.status().term).toBeLessThan(RAFT_TERM_JUMP_MAX);
    // The leader leads on (it lost nothing) and, once it is gone, the victim can still be elected.
    expect(await leader.driver.propose(createFolder("after"), 3000)).toEqual({ applied: true });
    await waitFor(async () => (await victim.node.findFolder("after"))?.mode === "strong", 3000, "the victim applied the folder");
  }, 20_000);

  test("a term ahead by a thousand elections is taken: the group moves to it and commits", async () => {
    const { network, leader, hostile, victim } = await groupWithHostile();
    const ahead = leader.driver.status().term + 1000;
    await victim.service.raft([message("heartbeat", hostile.id, victim.id, ahead)]);
    await waitFor(() => (network.leader()?.driver.status().term ?? 0) > ahead, 5000, "a leader in a term past the one taken");
    const now = await network.waitForLeader();
    expect(await now.driver.propose(createFolder("later"), 3000)).toEqual({ applied: true });
  }, 20_000);

  test("a leader's move naming a version no member holds is acknowledged by no follower: it never commits, and the folder stays headless everywhere", async () => {
    const network = new MemoryRaftNetwork();
    const members = await network.startGroup(["n1", "n2", "n3"], running);
    const leader = await network.waitForLeader();
    await leader.driver.propose(createFolder("docs"), 5000);
    // The version's objects are nowhere: not even the leader stored them.
    const ghost = makeVersion(leader.id, "objects that exist nowhere");
    await expect(leader.driver.propose(moveHead("docs", null, ghost), 1500)).rejects.toMatchObject({ name: "ConsensusUnavailableError" });
    for (const m of members.filter((m) => m !== leader)) {
      expect((await m.node.getFolder("docs")).head).toBeNull();
      expect(m.log.join("\n")).toMatch(/an append from .* waits: could not fetch version/);
    }
  }, 20_000);
});
