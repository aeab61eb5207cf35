import { describe, expect, test } from "bun:test";
import { descend, type DescendSources } from "../../src/core/descend.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { DEFAULT_MTIME_MS, DIR_MODE, MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";

/** A store over MemoryObjects' bytes that counts what the descent asks of it. */
function sources(memory: MemoryObjects, extra: Partial<DescendSources> = {}) {
  const bytes = new Map(memory.all().map((o) => [idToHex(o.id), o.bytes]));
  const calls = { have: [] as number[], load: [] as number[], loaded: [] as string[], chunks: [] as string[], settled: [] as string[][] };
  const s: DescendSources = {
    have: async (ids) => {
      calls.have.push(ids.length);
      return ids.map((id) => bytes.has(idToHex(id)));
    },
    load: async (ids, held) => {
      calls.load.push(ids.length);
      calls.loaded.push(...ids.map(idToHex));
      return ids.map((id, i) => (held[i] ? bytes.get(idToHex(id)) : undefined));
    },
    chunks: (chunks) => {
      calls.chunks.push(...chunks.map((c) => idToHex(c.id)));
    },
    settled: (ids) => {
      calls.settled.push(ids.map(idToHex));
    },
    ...extra,
  };
  return { s, calls };
}

function wideTree(files: number, prefix = "f"): TreeLiteral {
  const literal: TreeLiteral = {};
  for (let i = 0; i < files; i++) literal[`${prefix}${i}`] = `content ${prefix}${i}`;
  return literal;
}

describe("descend", () => {
  test("reaches every object and chunk once, in batches of at most batchIds", async () => {
    const memory = new MemoryObjects();
    const root = memory.tree({ a: wideTree(700, "a"), b: wideTree(300, "b"), same: "content a1", link: { symlink: "x" } });
    const { s, calls } = sources(memory, { batchIds: 64 });
    const report = await descend([root], s);
    const structured = memory.objectCount;
    expect(new Set(calls.loaded).size).toBe(structured);
    expect(calls.loaded.length).toBe(structured); // each object once
    expect(calls.chunks.length).toBe(new Set(calls.chunks).size);
    expect(calls.chunks.length).toBe(1000); // "same" has a1's bytes: one chunk
    for (const n of [...calls.have, ...calls.load]) expect(n).toBeLessThanOrEqual(64);
    expect(report.objectsLoaded).toBe(structured);
  });

  test("the default batch is LIMITS.descentBatchIds", async () => {
    const memory = new MemoryObjects();
    const root = memory.tree(wideTree(3000));
    const { s, calls } = sources(memory);
    await descend([root], s);
    expect(Math.max(...calls.load)).toBe(LIMITS.descentBatchIds);
  });

  test("nothing below an object `known` names is asked for or loaded", async () => {
    const memory = new MemoryObjects();
    const keep = memory.tree(wideTree(500, "k"));
    const root = memory.treeFromEntries([
      { name: "known", kind: "dir", mode: DIR_MODE, mtimeMs: DEFAULT_MTIME_MS, sizeBytes: 0, id: keep, target: null },
      memory.entry("new.txt", "fresh"),
    ]);
    const { s, calls } = sources(memory, { known: (ids) => ids.map((id) => idToHex(id) === idToHex(keep)) });
    const report = await descend([root], s);
    expect(report.objectsKnown).toBe(1);
    expect(calls.loaded).not.toContain(idToHex(keep));
    expect(calls.loaded.length).toBe(2); // the root and new.txt's file node
    expect(calls.chunks.length).toBe(1);
  });

  test("an object load gives nothing for is a leaf: nothing below it is reached", async () => {
    const memory = new MemoryObjects();
    const sub = memory.tree(wideTree(50, "s"));
    const root = memory.treeFromEntries([{ name: "d", kind: "dir", mode: DIR_MODE, mtimeMs: DEFAULT_MTIME_MS, sizeBytes: 0, id: sub, target: null }]);
    const { s, calls } = sources(memory, { have: async (ids) => ids.map((id) => idToHex(id) !== idToHex(sub)) });
    await descend([root], s);
    expect(calls.loaded).toEqual([idToHex(root), idToHex(sub)]);
    expect(calls.chunks).toEqual([]);
  });

  test("a batch is settled after everything below it: children before parents", async () => {
    const memory = new MemoryObjects();
    const root = memory.tree({ d: { e: wideTree(40, "e") }, f: wideTree(30, "f") });
    const { s, calls } = sources(memory, { batchIds: 8 });
    await descend([root], s);
    const settledAt = new Map<string, number>();
    calls.settled.forEach((ids, i) => ids.forEach((id) => settledAt.set(id, i)));
    expect(settledAt.size).toBe(memory.objectCount);
    const bytes = new Map(memory.all().map((o) => [idToHex(o.id), o]));
    // Every parent is settled at or after every child it names.
    const { decodeObject, childRefs } = await import("../../src/core/objects.ts");
    for (const [hex, at] of settledAt) {
      const object = decodeObject(bytes.get(hex)!.bytes);
      for (const child of childRefs(object).objects) expect(settledAt.get(idToHex(child))!).toBeLessThanOrEqual(at);
    }
    expect(settledAt.get(idToHex(root))).toBe(calls.settled.length - 1);
  });

  test("a hostile fan-out: one subtree named from 2000 places, 20 levels deep, is walked once", async () => {
    const memory = new MemoryObjects();
    // Each level names the one below from 2000 entries: 2000^20 paths, 20 distinct directories.
    let below = memory.tree({ leaf: "x" });
    for (let level = 0; level < 20; level++) {
      const entries: TreeEntry[] = [];
      for (let i = 0; i < 2000; i++) entries.push({ name: `d${String(i).padStart(4, "0")}`, kind: "dir", mode: DIR_MODE, mtimeMs: DEFAULT_MTIME_MS, sizeBytes: 0, id: below, target: null });
      below = memory.treeFromEntries(entries);
    }
    const { s, calls } = sources(memory, { batchIds: 256 });
    const report = await descend([below], s);
    expect(calls.loaded.length).toBe(memory.objectCount);
    expect(calls.chunks.length).toBe(1);
    // What waits is bounded by the batch and the widest page, not by the number of paths.
    expect(report.frontierIdsMax).toBeLessThanOrEqual(20 * 256 * LIMITS.pageEntriesMax);
  });

  test("a wide tree is walked holding one batch's children per level, not a whole level", async () => {
    const memory = new MemoryObjects();
    const dirs: TreeLiteral = {};
    for (let d = 0; d < 40; d++) dirs[`dir${d}`] = wideTree(500, `d${d}-`);
    const root = memory.tree(dirs);
    const batchIds = 16;
    const { s } = sources(memory, { batchIds });
    const report = await descend([root], s);
    // 20 000 files: a level-by-level walk would hold all 20 000 file ids at once.
    expect(report.objectsLoaded).toBeGreaterThan(20_000);
    expect(report.frontierIdsMax).toBeLessThan(6000);
  });

  test("a deep chain of directories", async () => {
    const memory = new MemoryObjects();
    let literal: TreeLiteral = { end: "bottom" };
    for (let i = 0; i < LIMITS.treeDepthMax - 1; i++) literal = { [`l${i}`]: literal };
    const root = memory.tree(literal);
    const { s, calls } = sources(memory);
    const report = await descend([root], s);
    expect(calls.loaded.length).toBe(memory.objectCount);
    expect(report.frontierIdsMax).toBeLessThanOrEqual(2);
  });

  test("with prunesPassed the walk keeps no set: the caller's have() says what it stored", async () => {
    const memory = new MemoryObjects();
    const root = memory.tree({ a: "same", b: "same", c: { x: "same" } });
    const stored = new Set<string>();
    const all = new Map(memory.all().map((o) => [idToHex(o.id), o.bytes]));
    let loads = 0;
    await descend([root], {
      prunesPassed: true,
      batchIds: 1,
      have: async (ids) => ids.map((id) => stored.has(idToHex(id))),
      load: async (ids, held) => {
        loads += ids.filter((_, i) => !held[i]).length;
        return ids.map((id, i) => (held[i] ? undefined : all.get(idToHex(id))));
      },
      settled: (ids) => ids.forEach((id) => stored.add(idToHex(id))),
    });
    expect(loads).toBe(memory.objectCount);
  });

  test("bytes that are not an object throw, unless the caller takes them", async () => {
    const junk = new Uint8Array([1, 2, 3]);
    const id = new Uint8Array(32) as unknown as ObjectId;
    await expect(descend([id], { load: async () => [junk] })).rejects.toThrow();
    const seen: ObjectId[] = [];
    await descend([id], { load: async () => [junk], undecodable: (bad) => seen.push(bad) });
    expect(seen.length).toBe(1);
  });
});
