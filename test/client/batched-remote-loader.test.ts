// The batching loader against fake nodes that count their download calls: one call per turn,
// verified bytes, and a Merkle diff of two replicas that costs one call per level and side.
import { describe, expect, test } from "bun:test";
import { BatchedRemoteLoader, type ObjectDownloader } from "../../src/client/batched-remote-loader.ts";
import { SIDE_A, SIDE_B, TwoSidedLoader } from "../../src/client/compare.ts";
import { RemoteError } from "../../src/client/remote.ts";
import { blake3 } from "../../src/core/blake3.ts";
import { diffTrees, missingChunks } from "../../src/core/diff.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { decodeObject, isTreeLeaf, type StructuredObject } from "../../src/core/objects.ts";
import type { SealedObject } from "../../src/core/pages.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";

/** MemoryObjects that also keeps the raw bytes, to serve them as a node would. */
class RecordingObjects extends MemoryObjects {
  readonly raw = new Map<string, Uint8Array>();
  override putObjects(objects: readonly SealedObject[]): void {
    super.putObjects(objects);
    for (const object of objects) this.raw.set(idToHex(object.id), object.bytes);
  }
}

/** A node that answers downloads from a map, a moment later (as a network would), and counts calls. */
class FakeNode implements ObjectDownloader {
  calls: string[][] = [];
  constructor(
    private readonly objects: Map<string, Uint8Array>,
    private readonly tamper?: (key: string, bytes: Uint8Array) => Uint8Array,
  ) {}
  async download(ids: readonly ObjectId[]): Promise<{ objects: StoredObject[]; missing: ObjectId[] }> {
    this.calls.push(ids.map(idToHex));
    await new Promise((resolve) => setTimeout(resolve, 1));
    const found: StoredObject[] = [];
    const missing: ObjectId[] = [];
    for (const id of ids) {
      const bytes = this.objects.get(idToHex(id));
      if (bytes === undefined) missing.push(id);
      else found.push({ id, bytes: this.tamper ? this.tamper(idToHex(id), bytes) : bytes });
    }
    return { objects: found, missing };
  }
}

function someObjects(count: number): Map<string, Uint8Array> {
  const map = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const bytes = new TextEncoder().encode(`object ${i}`);
    map.set(idToHex(blake3(bytes)), bytes);
  }
  return map;
}

const idOf = (key: string) => Uint8Array.from(Buffer.from(key, "hex")) as ObjectId;

describe("BatchedRemoteLoader", () => {
  test("every id asked for in one turn goes out in one request; repeats are merged and later served from memory", async () => {
    const objects = someObjects(10);
    const node = new FakeNode(objects);
    const loader = new BatchedRemoteLoader(node);
    const keys = [...objects.keys()];
    const first = await Promise.all([...keys, keys[0]!, keys[3]!].map((key) => loader.fetch(idOf(key))));
    expect(node.calls).toEqual([keys]);
    expect(first.slice(0, 10)).toEqual(keys.map((key) => objects.get(key)!));
    // Asked again: nothing sent.
    await Promise.all(keys.map((key) => loader.fetch(idOf(key))));
    expect(node.calls.length).toBe(1);
    // Ids asked for after an await are the next turn's batch.
    const unknown = blake3(new Uint8Array([1, 2, 3]));
    expect(await loader.fetch(unknown)).toBeUndefined();
    expect(node.calls.length).toBe(2);
    expect(loader.stats).toMatchObject({ batches: 2, requests: 2, idsRequested: 11, objectsReceived: 10 });
  });

  test("a wide level is split by idsPerRequest, and a reply refused as too large is asked for in halves", async () => {
    const objects = someObjects(10);
    const node = new FakeNode(objects);
    const loader = new BatchedRemoteLoader(node, { idsPerRequest: 4 });
    await Promise.all([...objects.keys()].map((key) => loader.fetch(idOf(key))));
    expect(node.calls.map((c) => c.length)).toEqual([4, 4, 2]);

    const picky: ObjectDownloader & { sizes: number[] } = {
      sizes: [],
      async download(ids) {
        this.sizes.push(ids.length);
        if (ids.length > 3) throw new RemoteError("rejected", "ask for at most 64 MiB per download", 400);
        return node.download(ids);
      },
    };
    const halving = new BatchedRemoteLoader(picky);
    const bytes = await Promise.all([...objects.keys()].map((key) => halving.fetch(idOf(key))));
    expect(bytes.every((b) => b !== undefined)).toBe(true);
    expect(picky.sizes).toEqual([10, 5, 5, 3, 2, 3, 2]);
  });

  test("bytes that do not hash to their id are refused, a missing object makes load throw, and a failure can be retried", async () => {
    const objects = someObjects(2);
    const [good, bad] = [...objects.keys()];
    const node = new FakeNode(objects, (key, bytes) => (key === bad ? Uint8Array.from([...bytes, 0]) : bytes));
    const loader = new BatchedRemoteLoader(node, { label: "the test node" });
    const [goodResult, badResult] = await Promise.allSettled([loader.fetch(idOf(good!)), loader.fetch(idOf(bad!))]);
    expect(goodResult.status).toBe("fulfilled");
    expect(badResult.status).toBe("rejected");
    expect(String((badResult as PromiseRejectedResult).reason)).toContain("do not match its id");
    expect(node.calls.length).toBe(1);
    // The refusal is not remembered: asking again sends the id again.
    await expect(loader.fetch(idOf(bad!))).rejects.toThrow("do not match");
    expect(node.calls.length).toBe(2);
    await expect(loader.load(blake3(new Uint8Array([9])))).rejects.toThrow("the test node has no object");
  });
});

// ---------- a Merkle diff of two replicas over two fake nodes ----------

/** Files f-00000 … under a directory, each a short distinct text. */
function files(count: number, prefix: string): TreeLiteral {
  const out: TreeLiteral = {};
  for (let i = 0; i < count; i++) out[`f-${String(i).padStart(5, "0")}.txt`] = `${prefix} file ${i}\n`;
  return out;
}

/** Object levels from the root tree down to the file node at path (directory pages and file pages counted). */
async function levelsTo(objects: RecordingObjects, root: ObjectId, path: string): Promise<number> {
  const load = async (id: ObjectId): Promise<StructuredObject> => decodeObject(objects.raw.get(idToHex(id))!);
  let levels = 0;
  let current = root;
  const parts = path.split("/");
  for (let i = 0; i < parts.length; i++) {
    // Descend the pages of this directory by name, counting one level per node.
    let node = await load(current);
    levels++;
    while (node.kind === "tree" && !isTreeLeaf(node)) {
      const page = [...node.pages].reverse().find((p) => p.firstName <= parts[i]!) ?? node.pages[0]!;
      node = await load(page.id);
      levels++;
    }
    if (node.kind !== "tree" || !isTreeLeaf(node)) throw new Error("not a directory");
    const entry = node.entries.find((e) => e.name === parts[i])!;
    current = entry.id!;
  }
  const fileNode = await load(current);
  if (fileNode.kind !== "file") throw new Error("not a file");
  return levels + fileNode.level + 1;
}

test("diffTrees and missingChunks over two batched nodes: one call per level and side, each node asked only for its own objects", async () => {
  const objects = new RecordingObjects();
  // Big enough that the root and the 3 000-entry directory are split into pages.
  const literal: TreeLiteral = { ...files(600, "top"), deep: { x: { y: files(3000, "y") } }, "z-side": files(40, "z") };
  const rootA = objects.tree(literal);
  const changed = "deep/x/y/f-01234.txt";
  const rootB = await objects.edit(rootA, changed, "changed content\n");
  const depth = await levelsTo(objects, rootB, changed);
  expect(depth).toBeGreaterThanOrEqual(7); // root pages + root leaf + deep + x + y pages + y leaf + file node

  // Each fake node holds its own replica only.
  const reachable = async (root: ObjectId): Promise<Map<string, Uint8Array>> => {
    const out = new Map<string, Uint8Array>();
    const visit = (id: ObjectId) => {
      const key = idToHex(id);
      if (out.has(key) || !objects.raw.has(key)) return;
      out.set(key, objects.raw.get(key)!);
      const object = decodeObject(objects.raw.get(key)!);
      if (object.kind === "tree") ("entries" in object ? object.entries.map((e) => e.id) : object.pages.map((p) => p.id)).forEach((id) => id && visit(id));
      if (object.kind === "file" && "pages" in object) object.pages.forEach((p) => visit(p.id));
    };
    visit(root);
    return out;
  };
  const nodeA = new FakeNode(await reachable(rootA));
  const nodeB = new FakeNode(await reachable(rootB));
  const loaderA = new BatchedRemoteLoader(nodeA);
  const loaderB = new BatchedRemoteLoader(nodeB);
  const loader = new TwoSidedLoader([
    { root: rootA, get: (id) => loaderA.fetch(id) },
    { root: rootB, get: (id) => loaderB.fetch(id) },
  ]);
  loader.addRoot(rootA, SIDE_A);
  loader.addRoot(rootB, SIDE_B);

  const diff = await diffTrees(rootA, rootB, loader.load);
  const chunks = await missingChunks(rootA, rootB, loader.load, diff);
  expect(diff.modified.map((d) => d.path)).toEqual([changed]);
  expect(diff.added.length + diff.removed.length + diff.typeChanged.length).toBe(0);
  expect(chunks.missingInA.chunks.length).toBe(1);
  expect(chunks.missingInA.totalBytes).toBe("changed content\n".length);
  expect(chunks.missingInB.totalBytes).toBe("y file 1234\n".length);

  expect(loader.depth).toBe(depth);
  expect(nodeA.calls.length).toBe(depth);
  expect(nodeB.calls.length).toBe(depth);
  // One object per level on each side, and never an id of the other side's tree.
  expect(nodeA.calls.every((call) => call.length === 1)).toBe(true);
  expect(nodeB.calls.every((call) => call.length === 1)).toBe(true);
  expect(loader.onlyOn(SIDE_A).count).toBe(depth);
  expect(loader.onlyOn(SIDE_B).count).toBe(depth);
});
