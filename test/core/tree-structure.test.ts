// The cross-object rules of a tree (tree-structure.ts): hostile trees whose every object decodes
// are refused with the rule they break, whether their parts are read or only known from an
// earlier check; valid paged trees pass, and what an earlier check vouched for is not read again.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idFromBytes, idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { encodeObject, type TreeEntry } from "../../src/core/objects.ts";
import { buildFileNodes, buildTreeNodes } from "../../src/core/pages.ts";
import { checkTreeStructure, TreeStructureError, type NodeSummary, type StructureSources } from "../../src/core/tree-structure.ts";
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
