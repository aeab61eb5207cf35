// Completeness marks made as uploads land (src/node/ingest-marks.ts): a tree uploaded bottom-up
// is marked up to its root, so its commit reads almost nothing, and nothing is marked that a
// commit's check would not establish: a node naming what is not stored, a hostile tree, a group
// the store did not make durable, a group checked while gc runs or across a quarantine.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type TreeEntry } from "../../src/core/objects.ts";
import { sealTree } from "../../src/core/tree-builder.ts";
import { openNode } from "../../src/assemble.ts";
import { IncompleteTreeError, InvalidTreeError } from "../../src/node/closure.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { PackObjectStore } from "../../src/store/pack-store.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { FaultFileSystem } from "../helpers/fault-fs.ts";
import { hostileTrees } from "../helpers/hostile-trees.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterEach(() => cleanupTempDirs());

const commitOf = (folder: string, root: ObjectId, parent: ObjectId | null = null) => ({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 1 });

/** A folder of `dirs` directories of `perDir` one-chunk files ("c" entries), in upload order (chunks, then each directory, the root last). */
function folderTree(dirs: number, perDir: number, salt = ""): { root: ObjectId; objects: StoredObject[]; dirIds: ObjectId[]; chunks: StoredObject[] } {
  const objects: StoredObject[] = [];
  const chunks: StoredObject[] = [];
  const dirEntries: TreeEntry[] = [];
  const dirIds: ObjectId[] = [];
  for (let d = 0; d < dirs; d++) {
    const entries: TreeEntry[] = [];
    for (let i = 0; i < perDir; i++) {
      const bytes = new TextEncoder().encode(`file ${d}/${i}${salt}`);
      const chunk = { id: blake3(bytes), bytes };
      objects.push(chunk);
      chunks.push(chunk);
      entries.push({ name: `f${String(i).padStart(4, "0")}`, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: chunk.id, target: null, idNamesChunk: true });
    }
    const tree = sealTree(entries);
    objects.push(...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
    dirIds.push(tree.id);
    dirEntries.push({ name: `d${String(d).padStart(3, "0")}`, kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: tree.id, target: null });
  }
  const root = sealTree(dirEntries);
  objects.push(...root.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
  return { root: root.id, objects, dirIds, chunks };
}

async function diskNode(): Promise<DsyncNode> {
  return openNode({ dataDir: join(tempDir(), "data") });
}

/** Counts the structured objects and chunks the store is asked to read from now on. */
function countReads(node: DsyncNode): { reads: number } {
  const counts = { reads: 0 };
  const getMany = node.store.getMany.bind(node.store);
  node.store.getMany = (ids) => {
    counts.reads += ids.length;
    return getMany(ids);
  };
  return counts;
}

async function uploadInGroups(node: DsyncNode, objects: readonly StoredObject[], groupSize: number): Promise<void> {
  for (let i = 0; i < objects.length; i += groupSize) await node.putUploaded(objects.slice(i, i + groupSize));
}

describe("marks made as uploads land", () => {
  test("a tree uploaded bottom-up is marked up to its root, and its commit reads nothing below it", async () => {
    const node = await diskNode();
    const tree = folderTree(5, 300);
    await uploadInGroups(node, tree.objects, 200);
    expect(await node.metadata.completeSummary(tree.root)).toMatchObject({ kind: "tree" });
    for (const dir of tree.dirIds) expect(await node.metadata.isComplete(dir)).toBe(true);
    const counts = countReads(node);
    await node.commit(commitOf("f", tree.root));
    expect(counts.reads).toBe(0);
    expect((await node.verify()).structure).toEqual([]);
    await node.close();
  });

  test("a node whose children arrive later is left unmarked, and the commit checks it (and only it)", async () => {
    const node = await diskNode();
    const tree = folderTree(3, 50);
    // The first directory's node before its chunks: it cannot be marked when it lands.
    const firstDir = tree.objects.findIndex((o) => idToHex(o.id) === idToHex(tree.dirIds[0]!));
    const reordered = [tree.objects[firstDir]!, ...tree.objects.filter((_, i) => i !== firstDir)];
    for (const object of reordered) await node.putUploaded([object]);
    expect(await node.metadata.isComplete(tree.dirIds[0]!)).toBe(false);
    expect(await node.metadata.isComplete(tree.dirIds[1]!)).toBe(true);
    expect(await node.metadata.isComplete(tree.root)).toBe(false);
    const counts = countReads(node);
    await node.commit(commitOf("f", tree.root));
    // The root and the unmarked directory; its 50 chunks' lengths are known from their upload.
    expect(counts.reads).toBe(2);
    expect(await node.metadata.isComplete(tree.root)).toBe(true);
    await node.close();
  });

  test("a commit naming a tree with one chunk missing is refused, though everything else was marked as it landed", async () => {
    const node = await diskNode();
    const tree = folderTree(3, 40);
    const lost = tree.chunks[57]!;
    await uploadInGroups(node, tree.objects.filter((o) => o !== lost), 25);
    expect(await node.metadata.isComplete(tree.dirIds[0]!)).toBe(true);
    expect(await node.metadata.isComplete(tree.dirIds[1]!)).toBe(false);
    expect(await node.metadata.isComplete(tree.root)).toBe(false);
    const error = await node.commit(commitOf("f", tree.root)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompleteTreeError);
    expect((error as IncompleteTreeError).missing.map(idToHex)).toEqual([idToHex(lost.id)]);
    expect((await node.findFolder("f"))?.head ?? null).toBeNull();
    // Sent again, the chunk completes the tree.
    await node.putUploaded([lost]);
    await node.commit(commitOf("f", tree.root));
    await node.close();
  });

  test("a hostile upload of a tree node naming objects the node lacks gets no mark", async () => {
    const node = await diskNode();
    const absentChunk = blake3(new TextEncoder().encode("never sent"));
    const absentDir = blake3(new TextEncoder().encode("no such tree"));
    const present = new TextEncoder().encode("here");
    const chunk = { id: blake3(present), bytes: present };
    const entries: TreeEntry[] = [
      { name: "a", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: present.length, id: chunk.id, target: null, idNamesChunk: true },
      { name: "b", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: 10, id: absentChunk, target: null, idNamesChunk: true },
      { name: "c", kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: absentDir, target: null },
    ];
    const tree = sealTree(entries);
    await node.putUploaded([chunk, ...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes }))]);
    expect(await node.metadata.isComplete(tree.id)).toBe(false);
    expect(node.ingestMarks.totals).toEqual({ nodes: 1, marked: 0 });
    expect(await node.commit(commitOf("f", tree.id)).catch((e: unknown) => e)).toBeInstanceOf(IncompleteTreeError);
    await node.close();
  });

  test("a file named by its chunk with the wrong size, or by a structured object, gets no mark", async () => {
    const node = await diskNode();
    const bytes = new TextEncoder().encode("twelve bytes");
    const chunk = { id: blake3(bytes), bytes };
    const innerTree = sealTree([]);
    const wrongSize = sealTree([{ name: "a", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: 11, id: chunk.id, target: null, idNamesChunk: true }]);
    const names = encodeObject({ kind: "tree", level: 0, entries: [] });
    const asChunk = sealTree([{ name: "a", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: names.length, id: innerTree.id, target: null, idNamesChunk: true }]);
    await node.putUploaded([chunk, ...innerTree.objects, ...wrongSize.objects, ...asChunk.objects]);
    expect(await node.metadata.isComplete(innerTree.id)).toBe(true);
    expect(await node.metadata.isComplete(wrongSize.id)).toBe(false);
    expect(await node.metadata.isComplete(asChunk.id)).toBe(false);
    expect(await node.commit(commitOf("f", wrongSize.id)).catch((e: unknown) => e)).toBeInstanceOf(InvalidTreeError);
    expect(await node.commit(commitOf("g", asChunk.id)).catch((e: unknown) => e)).toBeInstanceOf(InvalidTreeError);
    await node.close();
  });

  for (const hostile of hostileTrees()) {
    test(`a hostile tree uploaded whole is not marked and its commit refused: ${hostile.name}`, async () => {
      const node = await diskNode();
      // Every part lands through the upload path, the valid "earlier" directories marked as they do.
      await uploadInGroups(node, hostile.objects, 3);
      for (const earlier of hostile.earlier) expect(await node.metadata.isComplete(earlier)).toBe(true);
      expect(await node.metadata.isComplete(hostile.root)).toBe(false);
      const error = await node.commit(commitOf("f", hostile.root)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidTreeError);
      expect((error as Error).message).toMatch(hostile.rule);
      await node.close();
    });
  }

  test("nothing is marked while gc runs", async () => {
    const node = await diskNode();
    const tree = folderTree(2, 10);
    await node.ingestMarks.pauseWhile(async () => {
      await node.putUploaded(tree.objects);
    });
    expect(await node.metadata.isComplete(tree.dirIds[0]!)).toBe(false);
    expect(await node.metadata.isComplete(tree.root)).toBe(false);
    // The commit checks the tree itself.
    await node.commit(commitOf("f", tree.root));
    expect(await node.metadata.isComplete(tree.root)).toBe(true);
    await node.close();
  });

  test("a group checked across a quarantine writes no mark, and chunk lengths known before it are forgotten", async () => {
    const node = await diskNode();
    const tree = folderTree(1, 20);
    const dirAt = tree.objects.findIndex((o) => idToHex(o.id) === idToHex(tree.dirIds[0]!));
    await node.putUploaded(tree.objects.slice(0, dirAt));
    expect((await node.ingestMarks.knownChunkLengths([tree.chunks[0]!.id]))[0]).toBe(tree.chunks[0]!.bytes.length);
    // A quarantine lands while the directory's group is being checked: between its read of the marks and its write.
    const completeSummaries = node.metadata.completeSummaries.bind(node.metadata);
    node.metadata.completeSummaries = async (ids) => {
      node.ingestMarks.forgetAll();
      return completeSummaries(ids);
    };
    await node.putUploaded(tree.objects.slice(dirAt));
    node.metadata.completeSummaries = completeSummaries;
    expect(await node.metadata.isComplete(tree.dirIds[0]!)).toBe(false);
    expect((await node.ingestMarks.knownChunkLengths([tree.chunks[0]!.id]))[0]).toBeUndefined();
    await node.close();
  });
});

describe("marks and crashes", () => {
  test("a node whose group failed its flush is not marked, and after a power cut no mark names it", async () => {
    const files = new FaultFileSystem();
    const dir = tempDir();
    const metadataPath = join(tempDir(), "metadata.sqlite");
    const open = async () => DsyncNode.over(await PackObjectStore.open(dir, { fileSystem: files }), SqliteMetadataStore.open(metadataPath), { dataDir: "", nodeId: "n1" });
    const tree = folderTree(2, 30);
    let node = await open();
    // Everything below the second directory lands durably; its own node comes alone, in a group
    // whose flush fails (EIO on the next fdatasync): its children are all here, it is not.
    const secondDir = tree.objects.findIndex((o) => idToHex(o.id) === idToHex(tree.dirIds[1]!));
    await node.putUploaded(tree.objects.slice(0, secondDir));
    expect(await node.metadata.isComplete(tree.dirIds[0]!)).toBe(true);
    files.addFault({ operation: "fsync", index: files.operationCounts.fsync, code: "EIO" });
    const failed = await node.putUploaded([tree.objects[secondDir]!]).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(await node.metadata.isComplete(tree.dirIds[1]!)).toBe(false);
    // The power goes off; what was not durable is gone, and no mark names it.
    files.cutPower();
    await node.close().catch(() => undefined);
    files.restart();
    node = await open();
    expect(await node.hasObjects([tree.dirIds[1]!])).toEqual([false]);
    expect(await node.metadata.isComplete(tree.dirIds[1]!)).toBe(false);
    await node.putUploaded(tree.objects.slice(secondDir + 1));
    expect(await node.metadata.isComplete(tree.root)).toBe(false);
    const error = await node.commit(commitOf("f", tree.root)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompleteTreeError);
    expect((error as IncompleteTreeError).missing.map(idToHex)).toEqual([idToHex(tree.dirIds[1]!)]);
    await node.close();
  });
});
