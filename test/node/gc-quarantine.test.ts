// gc and quarantined objects, on a real pack store and a manual clock. An object found corrupt
// that no kept version needs is forgotten by gc (counted), so repack reclaims its damaged
// record; one a kept version needs stays quarantined, and while such an object is a tree or file
// node, whose children cannot be known, gc deletes nothing.
import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type TreeEntry } from "../../src/core/objects.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { openNode } from "../../src/assemble.ts";
import { Repairer, type ObjectSource } from "../../src/node/repair.ts";
import { RECORD_HEADER_LENGTH_BYTES } from "../../src/store/pack-format.ts";
import { findRecord, recordOf } from "../helpers/pack-files.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterEach(() => cleanupTempDirs());

const HOUR_MS = 60 * 60 * 1000;

class ManualClock {
  constructor(public now = 1_800_000_000_000) {}
  nowMs = () => this.now;
}

/** Stores a tree of one-chunk files; returns its root and each file's chunk and file node. */
async function storeTree(node: DsyncNode, files: Record<string, Uint8Array>) {
  const entries: TreeEntry[] = [];
  const ids: Record<string, { chunk: ObjectId; file: ObjectId }> = {};
  for (const [name, bytes] of Object.entries(files).sort()) {
    const chunk = blake3(bytes);
    const fileBytes = encodeObject({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: [{ id: chunk, lengthBytes: bytes.length }] });
    const file = blake3(fileBytes);
    await node.putObjects([{ id: chunk, bytes }, { id: file, bytes: fileBytes }]);
    entries.push({ name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: file, target: null });
    ids[name] = { chunk, file };
  }
  const treeBytes = encodeObject({ kind: "tree", level: 0, entries });
  const root = blake3(treeBytes);
  await node.putObjects([{ id: root, bytes: treeBytes }]);
  return { root, ids };
}

const commitOf = (folder: string, root: ObjectId, parent: ObjectId | null) => ({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 1 });

/** Whether any pack still holds a record for `id` (not merely an id some node names). */
function recordExists(node: DsyncNode, id: ObjectId): boolean {
  return recordOf(join(node.dataDir, "objects"), id) !== undefined;
}

/** Flips a payload byte of the record of `id`, then reads it, so the store quarantines it. */
async function damageAndQuarantine(node: DsyncNode, id: ObjectId): Promise<void> {
  const { path, offsetBytes } = findRecord(join(node.dataDir, "objects"), id);
  const bytes = readFileSync(path);
  bytes[offsetBytes + RECORD_HEADER_LENGTH_BYTES + 1]! ^= 0x5a;
  writeFileSync(path, bytes);
  expect(await node.getObjects([id], { repair: false })).toEqual([undefined]);
  expect((await node.store.listQuarantine({ unrepairedOnly: true })).map((r) => idToHex(r.id))).toContain(idToHex(id));
}

/** Two versions: the first holds a large file the second no longer has; only the second is kept. */
async function twoVersions() {
  const clock = new ManualClock();
  const node = await openNode({ dataDir: join(tempDir(), "data"), clock });
  const big = crypto.getRandomValues(new Uint8Array(100_000));
  const small = new TextEncoder().encode("small and kept\n");
  const v1 = await storeTree(node, { "big.bin": big, "small.txt": small });
  const first = await node.commit(commitOf("f", v1.root, null));
  const v2 = await storeTree(node, { "small.txt": small });
  await node.commit(commitOf("f", v2.root, first.version));
  await node.setRetention("f", { keepVersions: 1 });
  return { node, clock, v1, v2 };
}

test("a quarantined object no kept version needs is forgotten by gc, and repack reclaims its damaged record", async () => {
  const { node, clock, v1 } = await twoVersions();
  const victim = v1.ids["big.bin"]!.chunk;
  await damageAndQuarantine(node, victim);
  clock.now += HOUR_MS;

  const dry = await node.gc({ dryRun: true });
  expect(dry).toMatchObject({ versionsPruned: 1, quarantineDropped: 1, quarantinedNeeded: 0, sweepHeldBack: false });
  expect((await node.store.quarantineStats()).quarantined).toBe(1);

  const report = await node.gc();
  expect(report).toMatchObject({ versionsPruned: 1, quarantineDropped: 1, quarantinedNeeded: 0, sweepHeldBack: false });
  expect(await node.store.quarantineStats()).toEqual({ quarantined: 0, repaired: 0 });
  // The pack that held the damaged record was rewritten without it.
  expect(recordExists(node, victim)).toBe(false);
  expect((await node.verify()).missing).toEqual([]);
  await node.close();
});

test("a quarantined chunk a kept version needs stays quarantined; gc still collects the rest", async () => {
  const { node, clock, v1, v2 } = await twoVersions();
  const needed = v2.ids["small.txt"]!.chunk;
  await damageAndQuarantine(node, needed);
  clock.now += HOUR_MS;
  const report = await node.gc();
  expect(report).toMatchObject({ versionsPruned: 1, quarantineDropped: 0, quarantinedNeeded: 1, sweepHeldBack: false });
  expect(report.objectsDeleted).toBeGreaterThanOrEqual(3);
  expect(await node.store.has(v1.ids["big.bin"]!.chunk)).toBe(false);
  expect(await node.store.quarantineStats()).toEqual({ quarantined: 1, repaired: 0 });
  // Its damaged bytes are still there, for whatever can be learnt from them.
  expect(recordExists(node, needed)).toBe(true);
  await node.close();
});

test("while a kept version needs a quarantined file node, gc deletes nothing: its chunks may be all there is", async () => {
  const { node, clock, v1, v2 } = await twoVersions();
  const fileNode = v2.ids["small.txt"]!.file;
  await damageAndQuarantine(node, fileNode);
  clock.now += HOUR_MS;
  const report = await node.gc();
  expect(report).toMatchObject({ versionsPruned: 1, objectsDeleted: 0, quarantineDropped: 0, quarantinedNeeded: 1, sweepHeldBack: true });
  // The chunk below the damaged file node, which the walk could not see, is kept.
  expect(await node.store.has(v2.ids["small.txt"]!.chunk)).toBe(true);
  expect(await node.store.has(v1.ids["big.bin"]!.chunk)).toBe(true);
  // Once a good copy is stored, the next gc collects as usual.
  const fileBytes = encodeObject({ kind: "file", level: 0, sizeBytes: 15, chunks: [{ id: v2.ids["small.txt"]!.chunk, lengthBytes: 15 }] });
  await node.putObjects([{ id: fileNode, bytes: fileBytes }]);
  const after = await node.gc();
  expect(after).toMatchObject({ quarantinedNeeded: 0, sweepHeldBack: false });
  expect(after.objectsDeleted).toBeGreaterThanOrEqual(3);
  expect(await node.store.has(v2.ids["small.txt"]!.chunk)).toBe(true);
  expect((await node.verify()).missing).toEqual([]);
  await node.close();
});

test("what gc forgot is no longer asked of the peers by the background repair", async () => {
  const { node, clock, v1 } = await twoVersions();
  const asked: string[][] = [];
  // A peer that holds nothing (every object it is asked for stays unrepairable).
  const source: ObjectSource = { fetch: async (ids) => (asked.push(ids.map(idToHex)), []) };
  const repairer = new Repairer({ store: node.store, source, clock, timers: { setTimeout: () => 0, clearTimeout: () => {} }, retryMs: 1000 });
  await repairer.start();
  const victim = v1.ids["big.bin"]!.chunk;
  await damageAndQuarantine(node, victim);
  await repairer.runDue();
  expect(asked).toEqual([[idToHex(victim)]]);
  expect(repairer.stats.unrepairable).toBe(1);

  clock.now += HOUR_MS;
  expect((await node.gc()).quarantineDropped).toBe(1);
  await repairer.runDue();
  expect(asked).toHaveLength(1);
  expect(repairer.stats).toMatchObject({ unrepairable: 0, pending: 0 });
  repairer.stop();
  await node.close();
});
