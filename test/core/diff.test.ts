import { describe, expect, test } from "bun:test";
import { comparePaths, diffTrees, missingChunks, unsharedLeaves, type DiffOptions, type TreeDiff } from "../../src/core/diff.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { readEntryChunks } from "../../src/core/pages.ts";
import { blake3 } from "../../src/core/blake3.ts";
import { DEFAULT_MTIME_MS, dir, file, MemoryObjects, symlink, type TreeLiteral } from "../helpers/memory-objects.ts";
import { createPrng } from "../helpers/prng.ts";

type Paths = Partial<Record<keyof TreeDiff, string[]>>;

function pathsOf(diff: TreeDiff): Required<Paths> {
  return {
    added: diff.added.map((e) => e.path),
    removed: diff.removed.map((e) => e.path),
    modified: diff.modified.map((e) => e.path),
    typeChanged: diff.typeChanged.map((e) => e.path),
  };
}

const none: Required<Paths> = { added: [], removed: [], modified: [], typeChanged: [] };

const base: TreeLiteral = {
  "a.txt": "alpha",
  docs: { "guide.md": "# guide", img: { "logo.png": "png" } },
  link: { symlink: "a.txt" },
  empty: {},
};

describe("diffTrees: table", () => {
  const cases: [string, TreeLiteral | null, TreeLiteral | null, Paths, DiffOptions?][] = [
    ["identical trees", base, { ...base }, {}],
    ["both sides empty", null, null, {}],
    ["an empty directory and null", {}, null, {}],
    ["everything added from nothing", null, base, { added: ["a.txt", "docs", "docs/guide.md", "docs/img", "docs/img/logo.png", "empty", "link"] }],
    ["everything removed", base, null, { removed: ["a.txt", "docs", "docs/guide.md", "docs/img", "docs/img/logo.png", "empty", "link"] }],
    ["a file added", base, { ...base, "b.txt": "beta" }, { added: ["b.txt"] }],
    ["a file removed", base, { ...base, "a.txt": undefined! }, { removed: ["a.txt"] }],
    ["content modified", base, { ...base, "a.txt": "ALPHA" }, { modified: ["a.txt"] }],
    ["mode modified", base, { ...base, "a.txt": file("alpha", { mode: 0o755 }) }, { modified: ["a.txt"] }],
    ["mtime only: no change by default", base, { ...base, "a.txt": file("alpha", { mtimeMs: DEFAULT_MTIME_MS + 1 }) }, {}],
    ["mtime only, with compareMtime", base, { ...base, "a.txt": file("alpha", { mtimeMs: DEFAULT_MTIME_MS + 1 }) }, { modified: ["a.txt"] }, { compareMtime: true }],
    ["file -> directory", base, { ...base, "a.txt": { inner: "x", sub: { deeper: "y" } } }, { typeChanged: ["a.txt"], added: ["a.txt/inner", "a.txt/sub", "a.txt/sub/deeper"] }],
    ["directory -> file", base, { ...base, docs: "now a file" }, { typeChanged: ["docs"], removed: ["docs/guide.md", "docs/img", "docs/img/logo.png"] }],
    ["file -> symlink", base, { ...base, "a.txt": { symlink: "elsewhere" } }, { typeChanged: ["a.txt"] }],
    ["symlink target changed", base, { ...base, link: { symlink: "docs" } }, { modified: ["link"] }],
    ["symlink mode changed", base, { ...base, link: symlink("a.txt", { mode: 0o755 }) }, { modified: ["link"] }],
    ["a nested file added in an existing directory", base, { ...base, docs: { ...(base.docs as TreeLiteral), img: { "logo.png": "png", "new.svg": "svg" } } }, { added: ["docs/img/new.svg"] }],
    ["a nested file modified", base, { ...base, docs: { ...(base.docs as TreeLiteral), img: { "logo.png": "PNG" } } }, { modified: ["docs/img/logo.png"] }],
    ["new nested directories", base, { ...base, x: { y: { z: "deep" } } }, { added: ["x", "x/y", "x/y/z"] }],
    ["an empty directory added", { "a.txt": "alpha" }, { "a.txt": "alpha", e: {} }, { added: ["e"] }],
    ["an empty directory removed", base, { ...base, empty: undefined! }, { removed: ["empty"] }],
    ["a directory's mode changed", base, { ...base, empty: dir({}, { mode: 0o700 }) }, { modified: ["empty"] }],
    ["a directory's mtime only changed", base, { ...base, empty: dir({}, { mtimeMs: 1 }) }, {}],
    ["a directory's mode and a file below changed", base, { ...base, docs: dir({ ...(base.docs as TreeLiteral), "guide.md": "new" }, { mode: 0o700 }) }, { modified: ["docs", "docs/guide.md"] }],
    ["a directory added, collapsed", base, { ...base, x: { y: { z: "deep" } } }, { added: ["x"] }, { collapseDirectories: true }],
    ["a directory removed, collapsed", base, { ...base, docs: undefined! }, { removed: ["docs"] }, { collapseDirectories: true }],
    ["file -> directory, collapsed", base, { ...base, "a.txt": { inner: "x" } }, { typeChanged: ["a.txt"] }, { collapseDirectories: true }],
    [
      "paths in tree order: a directory right before what is under it",
      { a: { b: "1" } },
      { a: { b: "1", z: "2" }, "a-c": "3", "a.d": "4", B: "5" },
      { added: ["B", "a/z", "a-c", "a.d"] },
    ],
  ];

  test.each(cases)("%s", async (_name, a, b, expected, options) => {
    const memory = new MemoryObjects();
    const idA = a === null ? null : memory.tree(stripUndefined(a));
    const idB = b === null ? null : memory.tree(stripUndefined(b));
    const diff = await diffTrees(idA, idB, memory.load, options);
    expect(pathsOf(diff)).toEqual({ ...none, ...expected });
    // Swapping the sides swaps added and removed.
    const back = await diffTrees(idB, idA, memory.load, options);
    expect(pathsOf(back)).toEqual({ ...none, ...expected, added: expected.removed ?? [], removed: expected.added ?? [] });
  });
});

/** Literals above use `undefined` to drop a key from a spread copy; helpers and symbols stay as they are. */
function stripUndefined(literal: TreeLiteral): TreeLiteral {
  const out: TreeLiteral = {};
  for (const [name, value] of Object.entries(literal)) {
    if (value === undefined) continue;
    out[name] = typeof value === "object" && !(value instanceof Uint8Array) && Object.getPrototypeOf(value) === Object.prototype && !Object.getOwnPropertySymbols(value).length ? stripUndefined(value as TreeLiteral) : value;
  }
  return out;
}

describe("diffTrees: entries", () => {
  test("a diff entry carries the entry of each side", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ f: "one", gone: "x" });
    const b = memory.tree({ f: file("two", { mode: 0o600 }), fresh: "y" });
    const diff = await diffTrees(a, b, memory.load);
    expect(diff.modified).toHaveLength(1);
    expect(diff.modified[0]!.before).toEqual(await memory.entryAt(a, "f"));
    expect(diff.modified[0]!.after).toEqual(await memory.entryAt(b, "f"));
    expect(diff.modified[0]!.after!.mode).toBe(0o600);
    expect(diff.removed).toEqual([{ path: "gone", before: (await memory.entryAt(a, "gone"))!, after: null }]);
    expect(diff.added).toEqual([{ path: "fresh", before: null, after: (await memory.entryAt(b, "fresh"))! }]);
  });

  test("identical roots load nothing", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree(base);
    memory.resetLoads();
    expect(pathsOf(await diffTrees(a, a, memory.load))).toEqual(none);
    expect(memory.loads).toBe(0);
  });

  test("a collapsed added directory is not loaded", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ keep: "k" });
    const b = memory.tree({ keep: "k", big: { one: "1", two: { three: "3" } } });
    memory.resetLoads();
    await diffTrees(a, b, memory.load, { collapseDirectories: true });
    expect(memory.loads).toBe(2);
  });

  test("comparePaths orders component by component", () => {
    const paths = ["a-c", "a/b", "a", "B", "a/b/c", "a.d", "é", "z"];
    expect([...paths].sort(comparePaths)).toEqual(["B", "a", "a/b", "a/b/c", "a-c", "a.d", "z", "é"]);
  });

  test("a root that is not a tree is refused", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ f: "x" });
    const fileId = (await memory.entryAt(a, "f"))!.id!;
    await expect(diffTrees(a, fileId, memory.load)).rejects.toThrow(/expected a tree/);
  });
});

// ---------- cost ----------

/**
 * 20 000 files: d0..d9 / s0..s9 / 150 files each, plus a chain deep/l1/l2/l3/big holding
 * 5 000 files (a paged directory).
 */
function largeTree(memory: MemoryObjects): ObjectId {
  const literal: TreeLiteral = {};
  for (let d = 0; d < 10; d++) {
    const top: TreeLiteral = {};
    for (let s = 0; s < 10; s++) {
      const leaf: TreeLiteral = {};
      for (let f = 0; f < 150; f++) leaf[`file-${f}.txt`] = `content of d${d}/s${s}/${f}`;
      top[`s${s}`] = leaf;
    }
    literal[`d${d}`] = top;
  }
  const big: TreeLiteral = {};
  for (let f = 0; f < 5000; f++) big[`file-${String(f).padStart(5, "0")}`] = `big ${f}`;
  literal.deep = { l1: { l2: { l3: { big, "notes.txt": "n" } } } };
  return memory.tree(literal);
}

describe("diffTrees: cost grows with the changes, not the tree", () => {
  const memory = new MemoryObjects();
  const root = largeTree(memory);

  test("the large tree is as described: 20 000 files, one directory paged", async () => {
    const bigDir = (await memory.entryAt(root, "deep/l1/l2/l3/big"))!;
    memory.resetLoads();
    const firstLoad = await memory.load(bigDir.id!);
    expect(firstLoad).toMatchObject({ kind: "tree" });
    expect((firstLoad as { level: number }).level).toBeGreaterThanOrEqual(1);
    const all = await diffTrees(null, root, memory.load);
    expect(all.added.filter((e) => e.after!.kind === "file")).toHaveLength(20_001);
  });

  // Each directory on the path that exists on both sides costs its root node on each side; the
  // paged directory costs, per side, one node per level down to the leaf holding the change; a
  // new directory is listed, one node each. The brief's bound is 4 x depth + a few pages; the
  // walk should do better: exactly this many.
  test.each([
    ["a file in the paged directory", "deep/l1/l2/l3/big/file-02500", "modified", 6, 0],
    ["a file in a small directory", "d4/s2/file-77.txt", "modified", 3, 0],
    ["a file added to the paged directory", "deep/l1/l2/l3/big/file-02500-new", "added", 6, 0],
    ["a file deleted from the paged directory", "deep/l1/l2/l3/big/file-04999", "removed", 6, 0],
    ["a file in new directories", "deep/l1/l2/l3/l4/l5/new.txt", "added", 5, 2],
  ] as const)("%s", async (_name, path, change, sharedDirectories, newDirectories) => {
    const bigLevel = ((await memory.load((await memory.entryAt(root, "deep/l1/l2/l3/big"))!.id!)) as { level: number }).level;
    const throughBig = path.includes("/big/");
    const changed = await memory.edit(root, path, change === "removed" ? null : "changed content");
    memory.resetLoads();
    const diff = await diffTrees(root, changed, memory.load);
    const loads = memory.loads;
    if (change === "added") expect(pathsOf(diff)).toEqual({ ...none, added: [...Array.from({ length: newDirectories }, (_, i) => path.split("/").slice(0, sharedDirectories + i).join("/")), path] });
    else expect(pathsOf(diff)).toEqual({ ...none, [change]: [path] });
    expect(loads).toBe(2 * sharedDirectories + (throughBig ? 2 * bigLevel : 0) + newDirectories);
    expect(loads).toBeLessThanOrEqual(4 * (sharedDirectories + newDirectories) + 4);
    console.log(`diff after ${change} ${path}: ${loads} objects loaded (${sharedDirectories + newDirectories} directories deep, tree of ${memory.objectCount} objects)`);
  });
});

describe("unsharedLeaves", () => {
  test("skips pages shared by the two sides and returns only the differing leaves", async () => {
    const memory = new MemoryObjects();
    const literal: TreeLiteral = {};
    for (let f = 0; f < 5000; f++) literal[`n${String(f).padStart(5, "0")}`] = `v${f}`;
    const a = memory.tree(literal);
    const b = memory.tree({ ...literal, n02000: "changed" });
    memory.resetLoads();
    const leaves = await unsharedLeaves("tree", [a], [b], memory.load);
    expect(leaves.a).toHaveLength(1);
    expect(leaves.b).toHaveLength(1);
    expect(leaves.a[0]!.entries.some((e) => e.name === "n02000")).toBe(true);
    expect(memory.loads).toBeLessThanOrEqual(8);
  });

  test("refuses a page whose level does not fit under its parent", async () => {
    const memory = new MemoryObjects();
    const leafTree = memory.tree({ a: "1" });
    const { sealObject } = await import("../../src/core/objects.ts");
    const bogus = { kind: "tree" as const, level: 2, pages: [{ id: leafTree, firstName: "a" }] };
    const sealed = sealObject(bogus);
    memory.putObjects([{ ...sealed, object: bogus }]);
    await expect(unsharedLeaves("tree", [sealed.id], [], memory.load)).rejects.toThrow(/level 0, its parent expects 1/);
  });
});

// ---------- missing chunks ----------

describe("missingChunks", () => {
  const hexes = (chunks: { id: Uint8Array }[]) => chunks.map((c) => idToHex(c.id));
  const prng = createPrng(42);
  const bigContent = prng.bytes(3000 * 16);

  test("a one-byte edit in a paged file: one chunk each way, a few pages loaded", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ dir: { "big.bin": file(bigContent, { chunkSizeBytes: 16 }) }, other: "o" });
    const edited = new Uint8Array(bigContent);
    edited[1500 * 16 + 3]! ^= 0xff;
    const b = memory.tree({ dir: { "big.bin": file(edited, { chunkSizeBytes: 16 }) }, other: "o" });
    const fileA = (await memory.entryAt(a, "dir/big.bin"))!.id!;
    const fileLevel = ((await memory.load(fileA)) as { level: number }).level;
    expect(fileLevel).toBeGreaterThanOrEqual(1);
    memory.resetLoads();
    const missing = await missingChunks(a, b, memory.load);
    expect(hexes(missing.missingInA.chunks)).toEqual([idToHex(blake3(edited.subarray(1500 * 16, 1501 * 16)))]);
    expect(hexes(missing.missingInB.chunks)).toEqual([idToHex(blake3(bigContent.subarray(1500 * 16, 1501 * 16)))]);
    expect(missing.missingInA.totalBytes).toBe(16);
    expect(missing.missingInB.totalBytes).toBe(16);
    // 2 trees per side (root, dir), then per side one file node per level down to the leaf.
    expect(memory.loads).toBeLessThanOrEqual(2 * 2 + 2 * (fileLevel + 1));
  });

  test("an added file: its chunks, minus those the removed files already have", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ old: file("aaaabbbbcccc", { chunkSizeBytes: 4 }), keep: "k" });
    const b = memory.tree({ new: file("bbbbccccdddd", { chunkSizeBytes: 4 }), keep: "k" });
    const missing = await missingChunks(a, b, memory.load);
    const id = (s: string) => idToHex(blake3(new TextEncoder().encode(s)));
    expect(hexes(missing.missingInA.chunks)).toEqual([id("dddd")]);
    expect(hexes(missing.missingInB.chunks)).toEqual([id("aaaa")]);
    expect(missing.missingInA.totalBytes).toBe(4);
  });

  test("a whole tree against nothing: every chunk, sorted by id, counted once", async () => {
    const memory = new MemoryObjects();
    const b = memory.tree({ x: file("1111222211112222", { chunkSizeBytes: 4 }), d: { y: file("3333", { chunkSizeBytes: 4 }) }, l: { symlink: "x" } });
    const missing = await missingChunks(null, b, memory.load);
    const expected = ["1111", "2222", "3333"].map((s) => idToHex(blake3(new TextEncoder().encode(s)))).sort();
    expect(hexes(missing.missingInA.chunks)).toEqual(expected);
    expect(missing.missingInA.totalBytes).toBe(12);
    expect(missing.missingInB).toEqual({ chunks: [], totalBytes: 0 });
  });

  test("a moved file costs no file loads and no chunks", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ from: { "big.bin": file(bigContent, { chunkSizeBytes: 16 }) } });
    const b = memory.tree({ to: { "big.bin": file(bigContent, { chunkSizeBytes: 16 }) } });
    memory.resetLoads();
    const missing = await missingChunks(a, b, memory.load);
    expect(missing.missingInA.chunks).toEqual([]);
    expect(missing.missingInB.chunks).toEqual([]);
    expect(memory.loads).toBe(4); // the two roots, "from" and "to"
  });

  test("a mode change moves no chunks", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ f: file("abc") });
    const b = memory.tree({ f: file("abc", { mode: 0o755 }) });
    const missing = await missingChunks(a, b, memory.load);
    expect(missing.missingInA.chunks).toEqual([]);
    expect(missing.missingInB.chunks).toEqual([]);
  });

  test("the reported chunks are exactly what readFileChunks finds missing, on a random edit", async () => {
    const memory = new MemoryObjects();
    const a = memory.tree({ f: file(bigContent, { chunkSizeBytes: 16 }) });
    // Append 100 new chunks and drop the first 50: the file's pages shift at both ends.
    const tail = createPrng(43).bytes(100 * 16);
    const content = new Uint8Array([...bigContent.subarray(50 * 16), ...tail]);
    const b = memory.tree({ f: file(content, { chunkSizeBytes: 16 }) });
    const missing = await missingChunks(a, b, memory.load);
    const all = async (root: ObjectId) => new Set((await readEntryChunks((await memory.entryAt(root, "f"))!, memory.load)).map((c) => idToHex(c.id)));
    const [inA, inB] = [await all(a), await all(b)];
    expect(new Set(hexes(missing.missingInA.chunks))).toEqual(new Set([...inB].filter((h) => !inA.has(h))));
    expect(new Set(hexes(missing.missingInB.chunks))).toEqual(new Set([...inA].filter((h) => !inB.has(h))));
    expect(missing.missingInA.chunks).toHaveLength(100);
    expect(missing.missingInB.chunks).toHaveLength(50);
  });
});
