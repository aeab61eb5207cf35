// A leader that is buggy or an impostor holding the cluster token proposes moves whose version
// records lie about their objects, or whose head is not built on the head it moves from (a
// version of another folder): honest followers refuse to acknowledge them, so they never
// commit, and the group goes on once an honest member leads. Moves a commit makes (a
// fast-forward, a merge after a stale parent, a first push) pass.
import { afterEach, describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { checkMoveHead } from "../../src/consensus/strong-move-check.ts";
import type { StrongCommand } from "../../src/consensus/strong-consensus.ts";
import { memoryNode } from "../helpers/memory-node.ts";
import { createFolder, makeVersion, MemoryRaftNetwork, moveHead, waitFor, type TestMember } from "./raft-cluster.ts";

type Move = Extract<StrongCommand, { op: "moveHead" }>;

let running: TestMember[] = [];
afterEach(async () => {
  for (const member of running) await member.driver.stop();
  running = [];
});

describe("a moveHead checked against its version objects", () => {
  test("the moves a commit makes pass; lying records and heads of another lineage are refused", async () => {
    const node = await memoryNode("n1");
    const decode = (id: ObjectId) => node.decodeVersion(id);
    const v1 = makeVersion("n1", "one");
    const v2 = makeVersion("n1", "two", [v1.id], 2);
    const stale = makeVersion("n2", "pushed on a stale parent", [v1.id], 3);
    const merge = makeVersion("n1", "merged", [v2.id, stale.id], 4);
    const otherRoot = makeVersion("n3", "another folder's first");
    const other = makeVersion("n3", "another folder's second", [otherRoot.id], 5);
    for (const v of [v1, v2, stale, merge, otherRoot, other]) await node.putObjects(v.objects);

    await checkMoveHead(decode, moveHead("docs", null, v1) as Move);
    await checkMoveHead(decode, moveHead("docs", v1.id, v2) as Move);
    await checkMoveHead(decode, { op: "moveHead", folder: "docs", expected: v2.id, head: merge.id, versions: [stale.record, merge.record], atMs: 1 });

    const lies: Array<[string, Move]> = [
      ["parents", { ...(moveHead("docs", v1.id, v2) as Move), versions: [{ ...v2.record, parents: [] }] }],
      ["author", { ...(moveHead("docs", v1.id, v2) as Move), versions: [{ ...v2.record, author: "n9" }] }],
      ["message", { ...(moveHead("docs", v1.id, v2) as Move), versions: [{ ...v2.record, message: "rewritten" }] }],
      ["clock", { ...(moveHead("docs", v1.id, v2) as Move), versions: [{ ...v2.record, hlcWallMs: 1 }] }],
      ["root", { ...(moveHead("docs", v1.id, v2) as Move), versions: [{ ...v2.record, root: v1.record.root }] }],
    ];
    for (const [field, move] of lies) await expect(checkMoveHead(decode, move)).rejects.toThrow(new RegExp(`with a ${field} its object does not have`));
    // Another folder's version as this folder's next head: it builds on that folder's history.
    await expect(checkMoveHead(decode, moveHead("docs", v2.id, other) as Move)).rejects.toThrow(/does not build on/);
    // The log's first move may name a parent: a folder turned strong from eventual builds on the
    // leader's old eventual head, which the log counts as no head (server/consensus-heads.ts).
    await checkMoveHead(decode, moveHead("docs", null, other) as Move);
    // A merge whose second parent is not recorded by the move.
    await expect(checkMoveHead(decode, { op: "moveHead", folder: "docs", expected: v2.id, head: merge.id, versions: [merge.record], atMs: 1 })).rejects.toThrow(/names parent/);
  });

  test("a leader's lying move is acknowledged by no follower and never commits; an honest leader then goes on", async () => {
    const network = new MemoryRaftNetwork();
    const members = await network.startGroup(["n1", "n2", "n3"], running);
    const leader = await network.waitForLeader();
    await leader.driver.propose(createFolder("docs"), 5000);
    const v1 = makeVersion(leader.id, "one");
    await leader.node.putObjects(v1.objects);
    await leader.driver.propose(moveHead("docs", null, v1), 5000);
    const followers = members.filter((m) => m !== leader);
    await waitFor(async () => (await Promise.all(followers.map(async (m) => (await m.node.getFolder("docs")).head))).every((h) => h && idToHex(h) === idToHex(v1.id)), 5000, "the followers at v1");

    // The record says v2 has no parent and another message; the object says otherwise.
    const v2 = makeVersion(leader.id, "two", [v1.id], 2);
    await leader.node.putObjects(v2.objects);
    const lying: StrongCommand = { ...(moveHead("docs", v1.id, v2) as Move), versions: [{ ...v2.record, parents: [], message: "not what the object says" }] };
    await expect(leader.driver.propose(lying, 1500)).rejects.toMatchObject({ name: "ConsensusUnavailableError" });
    for (const m of followers) {
      expect(idToHex((await m.node.getFolder("docs")).head!)).toBe(idToHex(v1.id));
      expect((await m.node.listVersions("docs")).length).toBe(1);
      expect(m.log.join("\n")).toMatch(/records version .* with a parents its object does not have/);
    }

    // The lying leader goes; a follower leads, and what it commits applies on both.
    network.cut.add(leader.id);
    const honest = await network.waitForLeader(5000, leader.id);
    const v3 = makeVersion(honest.id, "three", [v1.id], 3);
    await honest.node.putObjects(v3.objects);
    expect(await honest.driver.propose(moveHead("docs", v1.id, v3), 5000)).toEqual({ applied: true });
    await waitFor(async () => (await Promise.all(followers.map(async (m) => (await m.node.getFolder("docs")).head))).every((h) => h && idToHex(h) === idToHex(v3.id)), 5000, "both at v3");
    for (const m of followers) expect((await m.node.listVersions("docs")).map((v) => idToHex(v.id)).sort()).toEqual([idToHex(v1.id), idToHex(v3.id)].sort());
  }, 20_000);
});
