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
  const ids = ["n1", "n2", "n3"];
  const members: TestMember[] = [];
  for (const id of ids) members.push(await network.add(id, ids.filter((other) => other !== id)));
  running.push(...members);
  await Promise.all(members.map((m) => m.driver.start()));
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
