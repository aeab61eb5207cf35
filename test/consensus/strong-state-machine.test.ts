// The strong state machine over a real node's metadata: replays after a crash are applied once,
// and a folder made eventual on this node (a minority side) is turned strong by the log with
// its versions kept as history, counting as headless until the log moves it, as it is on every
// other member.
import { describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { decodeSnapshotState, encodeSnapshotState, StrongStateMachine } from "../../src/consensus/strong-state-machine.ts";
import { memoryNode } from "../helpers/memory-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { createFolder, makeVersion, moveHead } from "./raft-cluster.ts";

describe("the strong state machine", () => {
  test("a moveHead applied again after a crash (before the applied index was stored) is applied, not refused", async () => {
    const node = await memoryNode("n1");
    const machine = new StrongStateMachine(node, () => {});
    await machine.apply(createFolder("docs"));
    const v1 = makeVersion("n1", "one");
    await node.putObjects(v1.objects);
    expect(await machine.apply(moveHead("docs", null, v1))).toEqual({ applied: true });
    expect(await machine.apply(moveHead("docs", null, v1))).toEqual({ applied: true });
    const v2 = makeVersion("n1", "two", [v1.id], 2);
    await node.putObjects(v2.objects);
    expect(await machine.apply(moveHead("docs", v1.id, v2))).toEqual({ applied: true });
    expect(await machine.apply(moveHead("docs", v1.id, v2))).toEqual({ applied: true });
    // A move from a head the folder left behind is refused, naming the head.
    const v3 = makeVersion("n1", "three", [v1.id], 3);
    await node.putObjects(v3.objects);
    const refused = await machine.apply(moveHead("docs", v1.id, v3));
    expect(refused).toMatchObject({ applied: false, reason: "head moved" });
    expect(idToHex((refused as { head: Uint8Array }).head)).toBe(idToHex(v2.id));
    expect((await node.listVersions("docs")).length).toBe(2);
  });

  test("a head moves only once the versions it names are here: a failed check changes nothing, a later apply goes through", async () => {
    const node = await memoryNode("n1");
    let lacking = true;
    const checked: string[] = [];
    const machine = new StrongStateMachine(node, () => {}, async (versions) => {
      checked.push(...versions.map((v) => idToHex(v.id)));
      if (lacking) throw new Error("version objects gone and no member has them");
    });
    await machine.apply(createFolder("docs"));
    const v1 = makeVersion("n1", "one");
    await expect(machine.apply(moveHead("docs", null, v1))).rejects.toThrow(/gone/);
    expect((await node.getFolder("docs")).head).toBeNull();
    lacking = false;
    await node.putObjects(v1.objects);
    expect(await machine.apply(moveHead("docs", null, v1))).toEqual({ applied: true });
    expect(checked).toEqual([idToHex(v1.id), idToHex(v1.id)]);
    // A refused move checks nothing (its versions are never recorded).
    await machine.apply(moveHead("docs", null, makeVersion("n1", "stale")));
    expect(checked.length).toBe(2);
  });

  test("a moveHead for a folder the log never created changes nothing", async () => {
    const { node } = { node: await memoryNode("n1") };
    const machine = new StrongStateMachine(node, () => {});
    const v1 = makeVersion("n1", "one");
    await node.putObjects(v1.objects);
    expect(await machine.apply(moveHead("ghost", null, v1))).toMatchObject({ applied: false, reason: "head moved", head: null });
    expect(await node.findFolder("ghost")).toBeUndefined();
  });

  test("a folder made eventual here becomes strong; its eventual head is history, and the log's first move builds on nothing", async () => {
    const node = await memoryNode("n1");
    const objects = new MemoryObjects();
    const root = objects.tree({ "local.txt": "written on a minority side" });
    await node.putObjects(objects.all());
    const eventual = await node.commit({ folder: "docs", root, parent: null, message: "eventual", chunking: "test", files: 1, totalBytes: 26 });
    const lines: string[] = [];
    const machine = new StrongStateMachine(node, (line) => lines.push(line));
    expect(await machine.apply({ ...createFolder("docs"), keepVersions: 5 })).toEqual({ applied: true });
    const folder = await node.getFolder("docs");
    expect(folder.mode).toBe("strong");
    expect(folder.keepVersions).toBe(5);
    expect(lines.join("\n")).toContain("was eventual on this node");
    // The snapshot of this state says what every other member holds: no head yet.
    const state = decodeSnapshotState(encodeSnapshotState(await machine.state(new Map())));
    expect(state.folders).toEqual([expect.objectContaining({ name: "docs", head: null, keepVersions: 5 })]);
    // The log's first move (expected: no head) applies here as on every member.
    const v1 = makeVersion("n2", "from the log");
    await node.putObjects(v1.objects);
    expect(await machine.apply(moveHead("docs", null, v1))).toEqual({ applied: true });
    expect(idToHex((await node.getFolder("docs")).head!)).toBe(idToHex(v1.id));
    // The eventual version is kept as history.
    expect(await node.hasVersion("docs", eventual.version)).toBe(true);
    // And from now on the head is the log's.
    const again = makeVersion("n2", "second", [v1.id], 2);
    await node.putObjects(again.objects);
    expect(await machine.apply(moveHead("docs", null, again))).toMatchObject({ applied: false, reason: "head moved" });
    expect(await machine.apply(moveHead("docs", v1.id, again))).toEqual({ applied: true });
  });
});
