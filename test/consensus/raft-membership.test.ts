// Membership of the group: a node whose peers already run a group waits to be added (it never
// starts one of its own), catches up once the leader adds it (changeMembership, what
// `dsync cluster add` asks), and keeps the added members' addresses across a restart; a removed
// member leaves the config of every other.
import { afterEach, describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { createFolder, makeVersion, MemoryRaftNetwork, moveHead, waitFor, type TestMember } from "./raft-cluster.ts";

let running: TestMember[] = [];
afterEach(async () => {
  for (const member of running) await member.driver.stop();
  running = [];
});

describe("membership", () => {
  test("a node joining a running group waits to be added, then catches up and votes", async () => {
    const network = new MemoryRaftNetwork();
    const ids = ["n1", "n2", "n3"];
    const members = await network.startGroup(ids, running);
    const leader = await network.waitForLeader();
    await leader.driver.propose(createFolder("docs"), 5000);
    const v = makeVersion(leader.id, "before n4 joined");
    await leader.node.putObjects(v.objects);
    await leader.driver.propose(moveHead("docs", null, v), 5000);

    const joiner = await network.add("n4", ids);
    running.push(joiner);
    await joiner.driver.start();
    await waitFor(async () => (await joiner.node.metadata.loadRaft()) !== undefined, 5000, "n4 to decide how it starts");
    // It started no group of its own: no voters, and it never leads.
    expect((await joiner.node.metadata.loadRaft())!.bootstrapConfig).toBeNull();
    expect(joiner.driver.status().members).toEqual([]);
    expect(joiner.log.join("\n")).toContain("waits to be added");

    await leader.driver.changeMembership({ type: "add", node: "n4", address: "n4" }, 5000);
    await waitFor(async () => (await joiner.node.findFolder("docs"))?.head && idToHex((await joiner.node.findFolder("docs"))!.head!) === idToHex(v.id), 5000, "n4 at the folder's head");
    // It holds the head's whole tree (fetched before it acknowledged), and every member counts it.
    await joiner.node.checkClosure(v.record.root);
    for (const m of [...members, joiner]) await waitFor(() => m.driver.status().members.length === 4 && m.driver.status().members.map((s) => s.id), 5000, `${m.id} to know four members`);

    // With n4 a voter, two of the first three gone still leave a majority (n4 and one more).
    const others = members.filter((m) => m !== leader);
    const stopped = others[0]!;
    await stopped.driver.stop();
    network.cut.add(stopped.id);
    const v2 = makeVersion(leader.id, "with n4 voting", [v.id], 2);
    await leader.node.putObjects(v2.objects);
    expect(await leader.driver.propose(moveHead("docs", v.id, v2), 5000)).toEqual({ applied: true });
    await waitFor(async () => idToHex((await joiner.node.getFolder("docs")).head!) === idToHex(v2.id), 5000, "n4 at the next head");
  });

  test("an added member's address survives a restart; a removed member leaves every config", async () => {
    const network = new MemoryRaftNetwork();
    const ids = ["n1", "n2", "n3"];
    const members = await network.startGroup(ids, running);
    let leader = await network.waitForLeader();
    // n4 is known to no one's --peers: only the config change says where it is.
    const joiner = await network.add("n4", ids);
    running.push(joiner);
    await joiner.driver.start();
    await waitFor(async () => (await joiner.node.metadata.loadRaft()) !== undefined, 5000, "n4 to wait to be added");
    await leader.driver.changeMembership({ type: "add", node: "n4", address: "n4" }, 5000);
    const follower = members.find((m) => m !== leader)!;
    await waitFor(() => follower.driver.status().members.find((s) => s.id === "n4")?.address === "n4", 5000, "a follower to learn n4's address");

    // The follower restarts over the same metadata with the same --peers (not naming n4): it still knows where n4 is.
    await follower.driver.stop();
    running = running.filter((m) => m !== follower);
    const restarted = network.attach(follower.node, ids.filter((other) => other !== follower.id));
    running.push(restarted);
    await restarted.driver.start();
    await waitFor(() => restarted.driver.status().members.find((s) => s.id === "n4")?.address === "n4", 5000, "the restarted follower to know n4's address");

    leader = await network.waitForLeader();
    const removed = [...network.members.values()].find((m) => m.id !== leader.id && m.id !== "n4")!;
    await leader.driver.changeMembership({ type: "remove", node: removed.id, address: "" }, 5000);
    for (const m of [...network.members.values()].filter((m) => m.id !== removed.id)) {
      await waitFor(() => !m.driver.status().members.some((s) => s.id === removed.id) && m.driver.status().members.length === 3, 5000, `${m.id} to drop ${removed.id}`);
    }
  });
});
