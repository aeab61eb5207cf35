// The cross-object rules of a tree (tree-structure.ts): hostile trees whose every object decodes
// are refused with the rule they break, whether their parts are read or only known from an
// earlier check; valid paged trees pass, and what an earlier check vouched for is not read again.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idFromBytes, idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { childRefs, decodeObject, encodeObject, type TreeEntry } from "../../src/core/objects.ts";
import { buildFileNodes, buildTreeNodes } from "../../src/core/pages.ts";
import { checkTreeStructure, RECORD_BATCH_NODES, TreeStructureError, type NodeSummary, type StructureSources } from "../../src/core/tree-structure.ts";
import { dirEntry, fileEntry, hostileTrees, type StoredBytes } from "../helpers/hostile-trees.ts";
import { createPrng } from "../helpers/prng.ts";

/** Sources over a map of objects, with known summaries, counting what is read. */
function sourcesOver(objects: readonly StoredBytes[], known = new Map<string, NodeSummary>()) {
  const bytes = new Map(objects.map((o) => [idToHex(o.id), o.bytes]));
  const reads: string[] = [];
  const sources: StructureSources = {
    getMany: async (ids) =>
      ids.map((id) => {
        reads.push(idToHex(id));
        return bytes.get(idToHex(id));
      }),
    hasMany: async (ids) => ids.map((id) => bytes.has(idToHex(id))),
    known: (id) => known.get(idToHex(id)),
  };
  return { sources, reads, known };
}

/** Checks a root and records what it vouched for, as a node marks what a commit checked. */
async function checkAndRemember(root: ObjectId, sources: StructureSources, known: Map<string, NodeSummary>) {
  const report = await checkTreeStructure(root, sources);
  expect(report.missing).toEqual([]);
  for (const item of report.checked) known.set(idToHex(item.id), item.summary);
  return report;
}

async function rejection(promise: Promise<unknown>): Promise<TreeStructureError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TreeStructureError);
  return error as TreeStructureError;
}

describe("hostile trees", () => {
  for (const hostile of hostileTrees()) {
    test(`${hostile.name}: refused when read`, async () => {
      const { sources } = sourcesOver(hostile.objects);
      const error = await rejection(checkTreeStructure(hostile.root, sources));
      expect(error.message).toMatch(hostile.rule);
      expect(error.message).toContain(idToHex(error.objectId));
    });

    test(`${hostile.name}: refused when its parts were checked before`, async () => {
      const { sources, reads, known } = sourcesOver(hostile.objects);
      for (const root of hostile.earlier) await checkAndRemember(root, sources, known);
      const knownBefore = new Set(known.keys());
      reads.length = 0;
      const error = await rejection(checkTreeStructure(hostile.root, sources));
      expect(error.message).toMatch(hostile.rule);
      // The earlier parts are judged by what was recorded about them, not read again.
      expect(reads.filter((id) => knownBefore.has(id))).toEqual([]);
    });
  }
});

function fileEntries(count: number, seed: number): { entries: TreeEntry[]; objects: StoredBytes[] } {
  const prng = createPrng(seed);
  const objects: StoredBytes[] = [];
  const entries = Array.from({ length: count }, (_, i) => {
    const bytes = prng.bytes(8);
    const chunk = blake3(bytes);
    objects.push({ id: chunk, bytes });
    const [node] = buildFileNodes([{ id: chunk, lengthBytes: bytes.length }]);
    objects.push({ id: node!.id, bytes: node!.bytes });
    return fileEntry(`file-${String(i).padStart(6, "0")}`, { id: node!.id, sizeBytes: bytes.length });
  });
  return { entries, objects };
}

describe("valid trees", () => {
  test("a paged directory passes, and its summary spans its names", async () => {
    const { entries, objects } = fileEntries(3000, 1);
    const nodes = buildTreeNodes(entries);
    expect(nodes.length).toBeGreaterThan(3);
    const root = nodes.at(-1)!;
    const { sources, known } = sourcesOver([...objects, ...nodes]);
    const report = await checkAndRemember(root.id, sources, known);
    expect(report.checked.length).toBe(3000 + nodes.length);
    expect(known.get(idToHex(root.id))).toEqual({ kind: "tree", level: (root.object as { level: number }).level, firstName: "file-000000", lastName: "file-002999", heightDirs: 0 });
  });

  test("a paged file passes, its size recorded", async () => {
    const prng = createPrng(2);
    const chunks = Array.from({ length: 5000 }, () => {
      const bytes = prng.bytes(4);
      return { bytes, ref: { id: blake3(bytes), lengthBytes: 4 } };
    });
    const nodes = buildFileNodes(chunks.map((c) => c.ref));
    const top = nodes.at(-1)!;
    const root = encodeObject({ kind: "tree", level: 0, entries: [fileEntry("big", { id: top.id, sizeBytes: 20000 })] });
    const rootId = blake3(root);
    const { sources, known } = sourcesOver([...chunks.map((c) => ({ id: c.ref.id, bytes: c.bytes })), ...nodes, { id: rootId, bytes: root }]);
    await checkAndRemember(rootId, sources, known);
    expect(known.get(idToHex(top.id))).toMatchObject({ kind: "file", sizeBytes: 20000 });
  });

  test("one changed entry in a big directory reads only the new nodes", async () => {
    const { entries, objects } = fileEntries(3000, 3);
    const before = buildTreeNodes(entries);
    const { sources, reads, known } = sourcesOver([...objects, ...before]);
    await checkAndRemember(before.at(-1)!.id, sources, known);

    const changed = fileEntries(1, 4);
    const edited = entries.map((e, i) => (i === 1500 ? { ...changed.entries[0]!, name: e.name } : e));
    const after = buildTreeNodes(edited);
    const oldIds = new Set(before.map((n) => idToHex(n.id)));
    const fresh = after.filter((n) => !oldIds.has(idToHex(n.id)));
    const more = sourcesOver([...objects, ...changed.objects, ...before, ...after], known);
    await checkAndRemember(after.at(-1)!.id, more.sources, known);
    // The new pages and the new file node; nothing the first check vouched for.
    expect(more.reads.length).toBe(fresh.length + 1);
    expect(reads.length).toBeGreaterThan(3000);
  });

  test("what is not stored is reported, and then nothing is vouched for", async () => {
    const { entries, objects } = fileEntries(40, 5);
    const nodes = buildTreeNodes(entries);
    const lost = objects.filter((_, i) => i === 3 || i === 10); // a chunk and a file node
    const { sources } = sourcesOver([...objects.filter((o) => !lost.includes(o)), ...nodes]);
    const report = await checkTreeStructure(nodes.at(-1)!.id, sources);
    expect(report.missing.map(idToHex).sort()).toEqual(lost.map((o) => idToHex(o.id)).sort());
    expect(report.checked).toEqual([]);
  });

  test("the same subtree twice, and the same file under two sizes", async () => {
    const { entries, objects } = fileEntries(2, 6);
    const sub = buildTreeNodes(entries).at(-1)!;
    const twice = encodeObject({ kind: "tree", level: 0, entries: [dirEntry("a", sub.id), dirEntry("b", sub.id)] });
    const { sources } = sourcesOver([...objects, sub, { id: blake3(twice), bytes: twice }]);
    expect((await checkTreeStructure(blake3(twice), sources)).checked.length).toBe(4);

    const liar = encodeObject({ kind: "tree", level: 0, entries: [entries[0]!, { ...entries[0]!, name: "same-node-other-size", sizeBytes: 99 }] });
    const { sources: liarSources } = sourcesOver([...objects, { id: blake3(liar), bytes: liar }]);
    const error = await rejection(checkTreeStructure(blake3(liar), liarSources));
    expect(error.path).toBe("same-node-other-size");
  });
});

describe("nesting depth", () => {
  /** A chain of `count` nested directories ending in an empty one; returns its top and objects. */
  function chain(count: number, bottom?: ObjectId) {
    const objects: StoredBytes[] = [];
    const put = (entries: TreeEntry[]) => {
      const bytes = encodeObject({ kind: "tree", level: 0, entries });
      const id = blake3(bytes);
      objects.push({ id, bytes });
      return id;
    };
    let top = bottom ?? put([]);
    for (let i = 0; i < count; i++) top = put([dirEntry("d", top)]);
    return { top, objects };
  }

  test("a tree nesting deeper than the limit is refused, also when its lower part was checked before", async () => {
    const deep = chain(LIMITS.treeDepthMax + 1);
    await rejection(checkTreeStructure(deep.top, sourcesOver(deep.objects).sources));
    const ok = chain(LIMITS.treeDepthMax);
    expect((await checkTreeStructure(ok.top, sourcesOver(ok.objects).sources)).missing).toEqual([]);

    const lower = chain(200);
    const { sources, known } = sourcesOver(lower.objects);
    await checkAndRemember(lower.top, sources, known);
    const upper = chain(LIMITS.treeDepthMax - 200 + 1, lower.top);
    const error = await rejection(checkTreeStructure(upper.top, sourcesOver([...lower.objects, ...upper.objects], known).sources));
    expect(error.message).toMatch(/nest deeper than/);
  });
});

test("an id that is not stored at all is missing, not invalid", async () => {
  const report = await checkTreeStructure(idFromBytes(new Uint8Array(32).fill(7)), sourcesOver([]).sources);
  expect(report.missing.length).toBe(1);
});

describe("recording as the check goes", () => {
  /** `dirs` directories of `filesEach` files under one root, and every object stored. */
  function wideTree(dirs: number, filesEach: number) {
    const objects: StoredBytes[] = [];
    const dirEntries: TreeEntry[] = [];
    for (let d = 0; d < dirs; d++) {
      const files = fileEntries(filesEach, 100 + d);
      objects.push(...files.objects);
      const nodes = buildTreeNodes(files.entries);
      objects.push(...nodes);
      dirEntries.push(dirEntry(`dir-${String(d).padStart(3, "0")}`, nodes.at(-1)!.id));
    }
    const rootNodes = buildTreeNodes(dirEntries);
    objects.push(...rootNodes);
    return { objects, root: rootNodes.at(-1)!.id };
  }

  /** Checks with `record`, keeping what it recorded in `known`; the batches and their order. */
  async function checkRecording(root: ObjectId, sources: StructureSources, known: Map<string, NodeSummary>) {
    const batches: number[] = [];
    const order: string[] = [];
    const report = await checkTreeStructure(root, {
      ...sources,
      record: async (nodes) => {
        batches.push(nodes.length);
        for (const { id, summary } of nodes) {
          known.set(idToHex(id), summary);
          order.push(idToHex(id));
        }
      },
    });
    return { report, batches, order };
  }

  test("hands over every summary the collecting check gives, in bounded batches, children before parents", async () => {
    const { objects, root } = wideTree(12, 900);
    const collected = await checkTreeStructure(root, sourcesOver(objects).sources);
    const { sources, known } = sourcesOver(objects);
    const { report, batches, order } = await checkRecording(root, sources, known);
    expect(report).toEqual({ missing: [], checked: [] });
    expect(Math.max(...batches)).toBeLessThanOrEqual(RECORD_BATCH_NODES);
    expect(batches.length).toBeGreaterThan(1);
    const expected = new Map(collected.checked.map((c) => [idToHex(c.id), c.summary]));
    expect(new Map([...known].filter(([key]) => expected.has(key)))).toEqual(expected);
    expect(new Set(order)).toEqual(new Set(expected.keys()));
    // A node is recorded only after every object it names (chunks are not recorded).
    const position = new Map(order.map((key, i) => [key, i]));
    const bytes = new Map(objects.map((o) => [idToHex(o.id), o.bytes]));
    for (const [key, at] of position) {
      const refs = childRefs(decodeObject(bytes.get(key)!));
      for (const child of refs.objects) expect(position.get(idToHex(child))!).toBeLessThan(at);
    }
    expect(order.at(-1)).toBe(idToHex(root));
  });

  test("with knownMany, marks are asked for in batches and never one by one, and a chunk many files share is asked about once", async () => {
    const prng = createPrng(7);
    const sharedBytes = prng.bytes(16);
    const shared = blake3(sharedBytes);
    const objects: StoredBytes[] = [{ id: shared, bytes: sharedBytes }];
    const entries: TreeEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      const ownBytes = prng.bytes(8);
      const own = blake3(ownBytes);
      objects.push({ id: own, bytes: ownBytes });
      const [node] = buildFileNodes([
        { id: shared, lengthBytes: sharedBytes.length },
        { id: own, lengthBytes: ownBytes.length },
      ]);
      objects.push({ id: node!.id, bytes: node!.bytes });
      entries.push(fileEntry(`file-${String(i).padStart(6, "0")}`, { id: node!.id, sizeBytes: sharedBytes.length + ownBytes.length }));
    }
    const treeNodes = buildTreeNodes(entries);
    objects.push(...treeNodes);
    const root = treeNodes.at(-1)!.id;

    const run = async (known: Map<string, NodeSummary>) => {
      const base = sourcesOver(objects, known);
      const chunkAsks = new Map<string, number>();
      const knownBatches: number[] = [];
      const sources: StructureSources = {
        ...base.sources,
        hasMany: async (ids) => {
          for (const id of ids) chunkAsks.set(idToHex(id), (chunkAsks.get(idToHex(id)) ?? 0) + 1);
          return base.sources.hasMany(ids);
        },
        known: () => {
          throw new Error("known asked one by one although knownMany is given");
        },
        knownMany: async (ids) => {
          knownBatches.push(ids.length);
          return ids.map((id) => known.get(idToHex(id)));
        },
      };
      const { report } = await checkRecording(root, sources, known);
      expect(report.missing).toEqual([]);
      return { chunkAsks, knownBatches, reads: base.reads };
    };

    const known = new Map<string, NodeSummary>();
    const first = await run(known);
    expect(first.chunkAsks.get(idToHex(shared))).toBe(1);
    expect(first.chunkAsks.size).toBe(3001);
    expect(Math.max(...first.chunkAsks.values())).toBe(1);
    expect(Math.max(...first.knownBatches)).toBeLessThanOrEqual(512);
    // The root, its pages and 3000 file nodes, in a few batches rather than one ask per place.
    expect(first.knownBatches.length).toBeLessThan(20);
    expect(known.has(idToHex(root))).toBe(true);
    // Everything was marked: the next check asks once, about the root, and reads nothing.
    const second = await run(known);
    expect(second.knownBatches).toEqual([1]);
    expect(second.reads).toEqual([]);
    expect(second.chunkAsks.size).toBe(0);
  });

  test("a check that finds something missing records the subtrees that passed, never what stands above the gap", async () => {
    const { objects, root } = wideTree(3, 40);
    // One chunk of the second directory is lost.
    const bytes = new Map(objects.map((o) => [idToHex(o.id), o]));
    const rootObject = decodeObject(bytes.get(idToHex(root))!.bytes) as { entries: TreeEntry[] };
    const secondDir = rootObject.entries[1]!.id!;
    const secondTree = decodeObject(bytes.get(idToHex(secondDir))!.bytes);
    const aFile = childRefs(secondTree).objects[0]!;
    const lostChunk = childRefs(decodeObject(bytes.get(idToHex(aFile))!.bytes)).chunks[0]!;
    const { sources, known } = sourcesOver(objects.filter((o) => idToHex(o.id) !== idToHex(lostChunk)));
    const { report } = await checkRecording(root, sources, known);
    expect(report.missing.map(idToHex)).toEqual([idToHex(lostChunk)]);
    for (const gap of [aFile, secondDir, root]) expect(known.has(idToHex(gap))).toBe(false);
    expect(known.get(idToHex(rootObject.entries[0]!.id!))).toMatchObject({ kind: "tree" });
    expect(known.get(idToHex(rootObject.entries[2]!.id!))).toMatchObject({ kind: "tree" });
    // What was recorded is not read again: storing the chunk, the next check reads only the gap.
    const again = sourcesOver(objects, known);
    const second = await checkRecording(root, again.sources, known);
    expect(second.report.missing).toEqual([]);
    expect(again.reads.map((id) => id).sort()).toEqual([idToHex(aFile), idToHex(secondDir), idToHex(root)].sort());
  });
});
