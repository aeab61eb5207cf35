// The node's operations on a controlled clock: compare-and-set commits, merges, and garbage
// collection racing a push.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type FileLeaf, type TreeEntry } from "../../src/core/objects.ts";
import { readTreeEntries } from "../../src/core/pages.ts";
import { IncompleteTreeError } from "../../src/node/closure.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { openNode as openDataFolder } from "../../src/assemble.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterEach(() => cleanupTempDirs());

class ManualClock {
  constructor(public now = 1_800_000_000_000) {}
  nowMs = () => this.now;
}

async function openNode(clock = new ManualClock()) {
  return { node: await openDataFolder({ dataDir: join(tempDir(), "data"), clock }), clock };
}

/** Stores a one-file tree and returns its root and the objects it is made of. */
async function storeTree(node: DsyncNode, files: Record<string, string>) {
  const entries: TreeEntry[] = [];
  const ids: { chunk: ObjectId; file: ObjectId }[] = [];
  for (const [name, text] of Object.entries(files).sort()) {
    const bytes = new TextEncoder().encode(text);
    const chunk = blake3(bytes);
    const fileBytes = encodeObject({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: [{ id: chunk, lengthBytes: bytes.length }] });
    const file = blake3(fileBytes);
    await node.putObjects([{ id: chunk, bytes }, { id: file, bytes: fileBytes }]);
    entries.push({ name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: file, target: null });
    ids.push({ chunk, file });
  }
  const treeBytes = encodeObject({ kind: "tree", level: 0, entries });
  const root = blake3(treeBytes);
  await node.putObjects([{ id: root, bytes: treeBytes }]);
  return { root, ids };
}

const commitOf = (folder: string, root: ObjectId, parent: ObjectId | null) => ({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 1 });

describe("commits", () => {
  test("a push on the current head moves it; a stale parent merges; unknown parents are refused", async () => {
    const { node } = await openNode();
    const v1 = await storeTree(node, { "a.txt": "one" });
    const first = await node.commit(commitOf("f", v1.root, null));
    expect(first.mergedWith).toBeNull();
    const v2 = await storeTree(node, { "a.txt": "two" });
    const second = await node.commit(commitOf("f", v2.root, first.version));
    expect(second.mergedWith).toBeNull();
    // Another client still on v1 adds a file: merged onto v2.
    const v3 = await storeTree(node, { "a.txt": "one", "b.txt": "bee" });
    const third = await node.commit(commitOf("f", v3.root, first.version));
    expect(third.mergedWith && idToHex(third.mergedWith)).toBe(idToHex(second.version));
    expect(third.conflicts).toEqual([]);
    const head = (await node.getFolder("f")).head!;
    expect(idToHex(head)).toBe(idToHex(third.version));
    const mergeRecord = (await node.listVersions("f"))[0]!;
    expect(mergeRecord.parents.map(idToHex)).toEqual([idToHex(second.version), idToHex(third.pushed)]);
    // A parent the node does not know (pruned, or never seen) merges without a base: nothing is dropped.
    const v4 = await storeTree(node, { "c.txt": "sea" });
    const orphan = await node.commit(commitOf("f", v4.root, blake3(new Uint8Array([9]))));
    const names = (await readTreeEntries(orphan.root, node.load)).map((e) => e.name);
    expect(names).toEqual(["a.txt", "b.txt", "c.txt"]);
    await node.close();
  });

  test("the merge base is the nearest common ancestor, so earlier changes are not re-applied", async () => {
    const { node } = await openNode();
    const base = await node.commit(commitOf("g", (await storeTree(node, { "x": "1", "y": "1" })).root, null));
    const left = await node.commit(commitOf("g", (await storeTree(node, { "x": "2", "y": "1" })).root, base.version));
    // Stale client edits y only: x stays at the head's "2".
    const right = await node.commit(commitOf("g", (await storeTree(node, { "x": "1", "y": "2" })).root, base.version));
    expect(right.conflicts).toEqual([]);
    const merged = await readTreeEntries(right.root, node.load);
    const contents = await Promise.all(merged.map(async (e) => [e.name, new TextDecoder().decode((await node.getObjects([((await node.load(e.id!)) as FileLeaf).chunks[0]!.id]))[0]!)]));
    expect(contents).toEqual([["x", "2"], ["y", "2"]]);
    expect(idToHex((await node.findMergeBase("g", left.version, right.pushed))!)).toBe(idToHex(base.version));
    await node.close();
  });
});

describe("garbage collection against pushes in flight", () => {
  test("objects a push was told are present survive a collection within the grace period", async () => {
    const { node, clock } = await openNode();
    const kept = await node.commit(commitOf("h", (await storeTree(node, { "keep": "k" })).root, null));
    // An orphan tree (as if from an abandoned push), old by now.
    const orphan = await storeTree(node, { "orphan.txt": "o" });
    clock.now += 60 * 60 * 1000;
    // A new push asks about the orphan's root: present, so it is touched now.
    expect(await node.missing([orphan.root])).toEqual([]);
    const report = await node.gc({ graceMs: 1000 });
    expect(report.objectsDeleted).toBe(0);
    // The push commits on top of it: its closure is whole.
    const pushed = await node.commit(commitOf("h", orphan.root, kept.version));
    expect(pushed.version).toBeDefined();
    expect((await node.verify()).missing).toEqual([]);
    await node.close();
  });

  test("after a collection removed them, a commit naming them is refused with what is missing", async () => {
    const { node, clock } = await openNode();
    const orphan = await storeTree(node, { "gone.txt": "g" });
    await node.commit(commitOf("i", (await storeTree(node, { "other": "x" })).root, null));
    // Mark the orphan complete, as a previous commit would have; then let it age and collect.
    await node.commit(commitOf("j", orphan.root, null));
    const jVersion = (await node.getFolder("j")).head!;
    await node.metadata.deleteVersions("j", [jVersion]);
    clock.now += 24 * 60 * 60 * 1000;
    const report = await node.gc({ graceMs: 0 });
    expect(report.objectsDeleted).toBeGreaterThanOrEqual(3);
    // The stale push still names the orphan root: the closure check no longer trusts it.
    const error = await node.commit(commitOf("i", orphan.root, (await node.getFolder("i")).head)).catch((e) => e);
    expect(error).toBeInstanceOf(IncompleteTreeError);
    expect((error as IncompleteTreeError).missing.map(idToHex)).toContain(idToHex(orphan.root));
    await node.close();
  });
});
