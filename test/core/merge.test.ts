import { describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { mergeTrees, suffixedName, type ConflictKind, type ConflictResolver, type MergeResult } from "../../src/core/merge.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { DEFAULT_MTIME_MS, dir, file, MemoryObjects, symlink, type TreeLiteral } from "../helpers/memory-objects.ts";
import { createPrng } from "../helpers/prng.ts";

interface Merged {
  memory: MemoryObjects;
  result: MergeResult;
  ids: { base: ObjectId | null; ours: ObjectId; theirs: ObjectId };
}

/** Builds the three trees, merges them, stores what the merge built and checks nothing is missing. */
async function merge(base: TreeLiteral | null, ours: TreeLiteral, theirs: TreeLiteral, resolveConflict?: ConflictResolver): Promise<Merged> {
  const memory = new MemoryObjects();
  const ids = { base: base === null ? null : memory.tree(base), ours: memory.tree(ours), theirs: memory.tree(theirs) };
  memory.resetLoads();
  const result = await mergeTrees({ ...ids, load: memory.load, resolveConflict });
  // newObjects holds only objects the merge did not load (so it never re-sends what it read).
  const loaded = new Set(memory.loadedIds);
  for (const object of result.newObjects) expect(loaded.has(idToHex(object.id))).toBe(false);
  memory.putObjects(result.newObjects);
  expect(await memory.missingBelow(result.root)).toEqual([]);
  return { memory, result, ids };
}

type ExpectedConflict = [path: string, kind: ConflictKind, winner: "ours" | "theirs" | "none" | "other"];

const cases: [name: string, base: TreeLiteral | null, ours: TreeLiteral, theirs: TreeLiteral, merged: TreeLiteral, conflicts: ExpectedConflict[]][] = [
  // equal sides, one side unchanged
  ["nothing changed", { a: "1" }, { a: "1" }, { a: "1" }, { a: "1" }, []],
  ["the same change on both sides", { a: "1", b: "x" }, { a: "2", b: "x" }, { a: "2", b: "x" }, { a: "2", b: "x" }, []],
  ["the same addition on both sides", { a: "1" }, { a: "1", n: "new" }, { a: "1", n: "new" }, { a: "1", n: "new" }, []],
  ["the same deletion on both sides", { a: "1", b: "2" }, { a: "1" }, { a: "1" }, { a: "1" }, []],
  ["only ours modified", { a: "1", b: "2" }, { a: "1*", b: "2" }, { a: "1", b: "2" }, { a: "1*", b: "2" }, []],
  ["only theirs modified", { a: "1", b: "2" }, { a: "1", b: "2" }, { a: "1", b: "2*" }, { a: "1", b: "2*" }, []],
  ["ours deleted, theirs unchanged", { a: "1", b: "2" }, { b: "2" }, { a: "1", b: "2" }, { b: "2" }, []],
  ["theirs deleted, ours unchanged", { a: "1", b: "2" }, { a: "1", b: "2" }, { a: "1" }, { a: "1" }, []],
  ["different files changed on each side", { a: "1", b: "2" }, { a: "1*", b: "2" }, { a: "1", b: "2*" }, { a: "1*", b: "2*" }, []],
  ["different files added on each side", { a: "1" }, { a: "1", o: "ours" }, { a: "1", t: "theirs" }, { a: "1", o: "ours", t: "theirs" }, []],
  ["a deletion on one side, an addition on the other", { a: "1", b: "2" }, { b: "2" }, { a: "1", b: "2", c: "3" }, { b: "2", c: "3" }, []],

  // both changed the same path
  ["both modified differently: theirs wins", { a: "1" }, { a: "ours" }, { a: "theirs" }, { a: "theirs" }, [["a", "both-modified", "theirs"]]],
  ["both added the same path with different content", { x: "x" }, { x: "x", a: "ours" }, { x: "x", a: "theirs" }, { x: "x", a: "theirs" }, [["a", "both-added", "theirs"]]],
  ["both added the same path, same content", { x: "x" }, { x: "x", a: "same" }, { x: "x", a: "same" }, { x: "x", a: "same" }, []],
  ["symlink retargeted on both sides", { l: { symlink: "a" } }, { l: { symlink: "b" } }, { l: { symlink: "c" } }, { l: { symlink: "c" } }, [["l", "both-modified", "theirs"]]],
  ["ours made a directory, theirs edited the file", { f: "1" }, { f: { inner: "x" } }, { f: "2" }, { f: "2" }, [["f", "both-modified", "theirs"]]],
  ["theirs made a symlink, ours edited the file", { f: "1" }, { f: "2" }, { f: { symlink: "t" } }, { f: { symlink: "t" } }, [["f", "both-modified", "theirs"]]],

  // delete vs modify
  ["ours deleted, theirs modified: the modification stays", { a: "1", k: "k" }, { k: "k" }, { a: "1*", k: "k" }, { a: "1*", k: "k" }, [["a", "modify-delete", "theirs"]]],
  ["theirs deleted, ours modified: the modification stays", { a: "1", k: "k" }, { a: "1*", k: "k" }, { k: "k" }, { a: "1*", k: "k" }, [["a", "modify-delete", "ours"]]],
  ["ours deleted, theirs changed the mode", { a: "1" }, {}, { a: file("1", { mode: 0o755 }) }, { a: file("1", { mode: 0o755 }) }, [["a", "modify-delete", "theirs"]]],
  ["ours deleted, theirs replaced the file by a symlink", { a: "1" }, {}, { a: { symlink: "x" } }, { a: { symlink: "x" } }, [["a", "modify-delete", "theirs"]]],
  ["ours only touched the mtime, theirs deleted", { a: "1", k: "k" }, { a: file("1", { mtimeMs: 5 }), k: "k" }, { k: "k" }, { k: "k" }, []],
  ["theirs only touched the mtime, ours deleted", { a: "1", k: "k" }, { k: "k" }, { a: file("1", { mtimeMs: 5 }), k: "k" }, { k: "k" }, []],
  [
    "ours deleted a directory, theirs edited a file in it: only that file survives",
    { d: { x: "1", y: "2", sub: { z: "3" } }, k: "k" },
    { k: "k" },
    { d: { x: "1*", y: "2", sub: { z: "3" } }, k: "k" },
    { d: { x: "1*" }, k: "k" },
    [
      ["d", "modify-delete", "theirs"],
      ["d/x", "modify-delete", "theirs"],
    ],
  ],
  [
    "theirs deleted a directory, ours edited deep inside it",
    { d: { sub: { z: "3", w: "4" }, y: "2" } },
    { d: { sub: { z: "3*", w: "4" }, y: "2" } },
    {},
    { d: { sub: { z: "3*" } } },
    [
      ["d", "modify-delete", "ours"],
      ["d/sub", "modify-delete", "ours"],
      ["d/sub/z", "modify-delete", "ours"],
    ],
  ],
  ["ours deleted a directory, theirs added a file in it", { d: { x: "1" } }, {}, { d: { x: "1", n: "new" } }, { d: { n: "new" } }, [["d", "modify-delete", "theirs"]]],
  ["ours deleted a directory, theirs only deleted inside it: gone, no conflict", { d: { x: "1", y: "2" } }, {}, { d: { x: "1" } }, {}, []],
  ["ours deleted an empty directory, theirs changed its mode", { d: {} }, {}, { d: dir({}, { mode: 0o700 }) }, { d: dir({}, { mode: 0o700 }) }, [["d", "modify-delete", "theirs"]]],

  // recursion
  ["both added different files in the same new directory", {}, { n: { a: "a" } }, { n: { b: "b" } }, { n: { a: "a", b: "b" } }, []],
  [
    "both added a directory with a clashing file",
    {},
    { n: { x: "ours", a: "a" } },
    { n: { x: "theirs", b: "b" } },
    { n: { a: "a", b: "b", x: "theirs" } },
    [["n/x", "both-added", "theirs"]],
  ],
  [
    "nested changes on each side merge level by level",
    { top: { mid: { a: "1", b: "2" }, c: "3" }, same: { s: "s" } },
    { top: { mid: { a: "1*", b: "2" }, c: "3", o: "o" }, same: { s: "s" } },
    { top: { mid: { a: "1", b: "2*" }, c: "3*" }, same: { s: "s" } },
    { top: { mid: { a: "1*", b: "2*" }, c: "3*", o: "o" }, same: { s: "s" } },
    [],
  ],
  ["a nested conflict names the full path", { d: { e: { f: "1" } } }, { d: { e: { f: "o" } } }, { d: { e: { f: "t" } } }, { d: { e: { f: "t" } } }, [["d/e/f", "both-modified", "theirs"]]],
  ["a file on the base, directories on both sides: merged as new directories", { d: "file" }, { d: { a: "a" } }, { d: { b: "b" } }, { d: { a: "a", b: "b" } }, []],

  // no common ancestor
  ["no base: disjoint trees union", null, { a: "1" }, { b: "2" }, { a: "1", b: "2" }, []],
  ["no base: the same path with different content", null, { a: "ours", s: "same" }, { a: "theirs", s: "same" }, { a: "theirs", s: "same" }, [["a", "both-added", "theirs"]]],

  // modes and mtimes
  ["ours changed the mode, theirs the content: both kept", { a: "1" }, { a: file("1", { mode: 0o755 }) }, { a: "2" }, { a: file("2", { mode: 0o755 }) }, []],
  ["theirs changed the mode, ours the content: both kept", { a: "1" }, { a: file("2", { mtimeMs: 7 }) }, { a: file("1", { mode: 0o700 }) }, { a: file("2", { mode: 0o700, mtimeMs: 7 }) }, []],
  ["ours retargeted a symlink, theirs changed its mode", { l: { symlink: "a" } }, { l: { symlink: "b" } }, { l: symlink("a", { mode: 0o755 }) }, { l: symlink("b", { mode: 0o755 }) }, []],
  ["both changed the mode differently: theirs wins", { a: "1" }, { a: file("1", { mode: 0o700 }) }, { a: file("1", { mode: 0o600 }) }, { a: file("1", { mode: 0o600 }) }, [["a", "both-modified", "theirs"]]],
  ["same content, different mtimes: theirs' mtime", { a: "1" }, { a: file("2", { mtimeMs: 10 }) }, { a: file("2", { mtimeMs: 20 }) }, { a: file("2", { mtimeMs: 20 }) }, []],
  ["ours changed a directory's mode, theirs its content", { d: { a: "1" } }, { d: dir({ a: "1" }, { mode: 0o700 }) }, { d: { a: "2" } }, { d: dir({ a: "2" }, { mode: 0o700 }) }, []],
];

describe("mergeTrees: table", () => {
  test.each(cases)("%s", async (_name, base, ours, theirs, expected, expectedConflicts) => {
    const { memory, result, ids } = await merge(base, ours, theirs);
    expect(await memory.describe(result.root)).toEqual(await memory.describe(memory.tree(expected)));
    // The same id as the expected tree built from scratch: canonical pages, modes and mtimes included.
    expect(idToHex(result.root)).toBe(idToHex(memory.tree(expected)));
    expect(result.conflicts.map((c) => [c.path, c.kind, c.winner])).toEqual(expectedConflicts);
    for (const conflict of result.conflicts) {
      expect(conflict.kept).toEqual(await memory.entryAt(result.root, conflict.path));
      expect(conflict.ours).toEqual(await memory.entryAt(ids.ours, conflict.path));
      expect(conflict.theirs).toEqual(await memory.entryAt(ids.theirs, conflict.path));
      expect(conflict.base).toEqual(ids.base === null ? null : await memory.entryAt(ids.base, conflict.path));
    }
  });

  test.each(cases)("%s, merged again: the same root", async (_name, base, ours, theirs) => {
    const first = await merge(base, ours, theirs);
    const second = await merge(base, ours, theirs);
    expect(idToHex(second.result.root)).toBe(idToHex(first.result.root));
    expect(second.result.newObjects.map((o) => idToHex(o.id))).toEqual(first.result.newObjects.map((o) => idToHex(o.id)));
  });
});

describe("mergeTrees: conflicts", () => {
  test("the loser is named with its id, so the overwritten content can be found", async () => {
    const { memory, result, ids } = await merge({ a: "1" }, { a: "ours" }, { a: "theirs" });
    const [conflict] = result.conflicts;
    const oursEntry = (await memory.entryAt(ids.ours, "a"))!;
    expect(conflict!.losers).toEqual([oursEntry]);
    expect(await memory.fileText(conflict!.losers[0]!)).toBe("ours");
    expect(conflict!.extraPaths).toEqual([]);
  });

  test("a modify-delete conflict loses no content", async () => {
    const { result } = await merge({ a: "1" }, {}, { a: "2" });
    expect(result.conflicts[0]!.losers).toEqual([]);
    expect(result.conflicts[0]!.ours).toBeNull();
  });

  test("the resolver is asked in tree order, with ours, theirs and base", async () => {
    const calls: [string, string | null, string | null, string | null][] = [];
    const kindOf = (e: TreeEntry | null) => (e === null ? null : e.kind);
    const resolver: ConflictResolver = (path, ours, theirs, base) => {
      calls.push([path, kindOf(ours), kindOf(theirs), kindOf(base)]);
      return { keep: theirs };
    };
    await merge(
      { b: "1", a: { z: "1" }, "a-b": "1" },
      { b: "o", a: { z: "o" }, "a-b": "o", n: "o" },
      { b: "t", a: { z: "t" }, "a-b": { symlink: "t" }, n: { x: "t" } },
      resolver,
    );
    expect(calls).toEqual([
      ["a/z", "file", "file", "file"],
      ["a-b", "file", "symlink", "file"],
      ["b", "file", "file", "file"],
      ["n", "file", "dir", null],
    ]);
  });

  test("a resolver that keeps ours", async () => {
    const { memory, result } = await merge({ a: "1" }, { a: "ours" }, { a: "theirs" }, (_p, ours) => ({ keep: ours }));
    expect(await memory.describe(result.root)).toEqual({ a: "ours" });
    expect(result.conflicts[0]).toMatchObject({ winner: "ours" });
    expect(result.conflicts[0]!.losers.map((e) => e.id && idToHex(e.id))).toEqual([idToHex(result.conflicts[0]!.theirs!.id!)]);
  });

  test("a resolver that deletes both", async () => {
    const { memory, result } = await merge({ a: "1", k: "k" }, { a: "ours", k: "k" }, { a: "theirs", k: "k" }, () => ({ keep: null }));
    expect(await memory.describe(result.root)).toEqual({ k: "k" });
    expect(result.conflicts[0]).toMatchObject({ winner: "none", kept: null });
    expect(result.conflicts[0]!.losers).toHaveLength(2);
  });

  test("a resolver keeping ours as a conflict copy beside theirs", async () => {
    const copy: ConflictResolver = (path, ours, theirs) => {
      const dot = ours.name.lastIndexOf(".");
      return { keep: theirs, extra: [{ ...ours, name: `${ours.name.slice(0, dot)}.sync-conflict-20240101-120000-nodeA${ours.name.slice(dot)}` }] };
    };
    const { memory, result } = await merge({ d: { "report.txt": "v1" } }, { d: { "report.txt": "ours" } }, { d: { "report.txt": "theirs" } }, copy);
    expect(await memory.describe(result.root)).toEqual({ d: { "report.txt": "theirs", "report.sync-conflict-20240101-120000-nodeA.txt": "ours" } });
    expect(result.conflicts[0]!.extraPaths).toEqual(["d/report.sync-conflict-20240101-120000-nodeA.txt"]);
  });

  test("extra names that collide are suffixed, in a fixed order, and an identical extra is dropped", async () => {
    const resolver: ConflictResolver = (path, ours, theirs) => ({
      keep: theirs,
      extra: [
        { ...ours, name: "taken.txt" }, // collides with a regular entry
        { ...ours, name: "taken.txt" }, // collides with the extra just placed
        { ...theirs, name: "same.txt" }, // identical to the regular entry there: dropped
        { ...ours, name: path === "a" ? "b-copy" : "a-copy" },
      ],
    });
    const { memory, result } = await merge(
      { a: "1", b: "1", "taken.txt": "t", "taken-1.txt": "t1", "same.txt": "theirs-a" },
      { a: "ours-a", b: "ours-b", "taken.txt": "t", "taken-1.txt": "t1", "same.txt": "theirs-a" },
      { a: "theirs-a", b: "theirs-b", "taken.txt": "t", "taken-1.txt": "t1", "same.txt": "theirs-a" },
      resolver,
    );
    expect(await memory.describe(result.root)).toEqual({
      a: "theirs-a",
      "a-copy": "ours-b",
      b: "theirs-b",
      "b-copy": "ours-a",
      "same.txt": "theirs-a",
      "same-1.txt": "theirs-b",
      "taken.txt": "t",
      "taken-1.txt": "t1",
      "taken-2.txt": "ours-a",
      "taken-3.txt": "ours-a",
      "taken-4.txt": "ours-b",
      "taken-5.txt": "ours-b",
    });
    expect(result.conflicts.map((c) => c.extraPaths)).toEqual([
      ["taken-2.txt", "taken-3.txt", "b-copy"],
      ["taken-4.txt", "taken-5.txt", "same-1.txt", "a-copy"],
    ]);
  });

  test("a resolver keeping an entry under another name is refused", async () => {
    const bad: ConflictResolver = (_p, _o, theirs) => ({ keep: { ...theirs, name: "elsewhere" } });
    await expect(merge({ a: "1" }, { a: "o" }, { a: "t" }, bad)).rejects.toThrow(/kept an entry named "elsewhere"/);
  });

  test.each(["..", "a/b", ""])("a resolver adding an entry named %p is refused", async (name) => {
    const bad: ConflictResolver = (_p, ours, theirs) => ({ keep: theirs, extra: [{ ...ours, name }] });
    await expect(merge({ a: "1" }, { a: "o" }, { a: "t" }, bad)).rejects.toThrow(/conflict resolver added an entry/);
  });

  test.each([
    ["report.txt", 1, "report-1.txt"],
    ["archive.tar.gz", 2, "archive.tar-2.gz"],
    [".profile", 1, ".profile-1"],
    ["Makefile", 3, "Makefile-3"],
    ["x".repeat(251) + ".txt", 1, "x".repeat(249) + "-1.txt"],
    ["é".repeat(125) + ".txt", 10, "é".repeat(124) + "-10.txt"],
  ])("suffixedName(%p, %p) is %p", (name, n, expected) => {
    expect(suffixedName(name, n)).toBe(expected);
    expect(Buffer.byteLength(suffixedName(name, n))).toBeLessThanOrEqual(255);
  });
});

describe("mergeTrees: ids and objects", () => {
  test("one side unchanged: the other side's root is the result, nothing loaded or built", async () => {
    for (const [ours, theirs, expected] of [
      ["base", "changed", "changed"],
      ["changed", "base", "changed"],
      ["changed", "changed", "changed"],
    ] as const) {
      const memory = new MemoryObjects();
      const trees = { base: memory.tree({ a: "1" }), changed: memory.tree({ a: "2" }) };
      memory.resetLoads();
      const result = await mergeTrees({ base: trees.base, ours: trees[ours], theirs: trees[theirs], load: memory.load });
      expect(idToHex(result.root)).toBe(idToHex(trees[expected]));
      expect(result.newObjects).toEqual([]);
      expect(memory.loads).toBe(0);
    }
  });

  test("unchanged subtrees keep their ids and are not loaded", async () => {
    const big: TreeLiteral = {};
    for (let i = 0; i < 300; i++) big[`f${i}`] = `v${i}`;
    const base = { untouched: { big }, theirsOnly: { x: "1" }, work: { a: "1", b: "2" } };
    const { memory, result, ids } = await merge(
      base,
      { ...base, work: { a: "1*", b: "2" } },
      { ...base, theirsOnly: { x: "2" }, work: { a: "1", b: "2*" } },
    );
    for (const path of ["untouched", "theirsOnly"]) {
      const from = path === "untouched" ? ids.base! : ids.theirs;
      expect(idToHex((await memory.entryAt(result.root, path))!.id!)).toBe(idToHex((await memory.entryAt(from, path))!.id!));
    }
    // root and work on three sides: nothing under untouched or theirsOnly.
    expect(memory.loads).toBe(6);
    expect(result.newObjects.map((o) => o.object.kind)).toEqual(["tree", "tree"]);
  });

  test("newObjects come children first", async () => {
    const { result } = await merge({ a: { b: { c: "1" } } }, { a: { b: { c: "o", d: "o" } } }, { a: { b: { c: "1", e: "t" } } });
    const position = new Map(result.newObjects.map((o, i) => [idToHex(o.id), i]));
    result.newObjects.forEach((object, index) => {
      const children = object.object.kind === "tree" && "entries" in object.object ? object.object.entries : [];
      for (const child of children) {
        const at = child.id ? position.get(idToHex(child.id)) : undefined;
        if (at !== undefined) expect(at).toBeLessThan(index);
      }
    });
    expect(result.newObjects).toHaveLength(3);
  });

  test("a paged directory edited on both sides merges to the canonical paging, whatever the load order", async () => {
    const big: TreeLiteral = {};
    for (let i = 0; i < 3000; i++) big[`entry-${String(i).padStart(4, "0")}`] = `v${i}`;
    const ours = { ...big, "entry-0100": "ours", "entry-new-ours": "o" };
    const theirs = { ...big, "entry-2900": "theirs" };
    delete (theirs as TreeLiteral)["entry-1500"];
    const expected: TreeLiteral = { ...ours, "entry-2900": "theirs" };
    delete expected["entry-1500"];

    const memory = new MemoryObjects();
    const ids = { base: memory.tree({ d: big }), ours: memory.tree({ d: ours }), theirs: memory.tree({ d: theirs }) };
    const expectedRoot = memory.tree({ d: expected });
    const rootLevel = (await memory.load((await memory.entryAt(ids.base, "d"))!.id!)) as { level: number };
    expect(rootLevel.level).toBeGreaterThanOrEqual(1);

    // A loader that answers after a pseudo-random number of turns, so loads complete out of order.
    const prng = createPrng(9);
    const shuffled = async (id: ObjectId) => {
      for (let i = prng.nextInt(5); i > 0; i--) await Promise.resolve();
      return memory.load(id);
    };
    const first = await mergeTrees({ ...ids, load: memory.load });
    const second = await mergeTrees({ ...ids, load: shuffled });
    expect(idToHex(first.root)).toBe(idToHex(expectedRoot));
    expect(idToHex(second.root)).toBe(idToHex(expectedRoot));
    expect(second.newObjects.map((o) => idToHex(o.id))).toEqual(first.newObjects.map((o) => idToHex(o.id)));
    expect(first.conflicts).toEqual([]);
  });

  test("a conflict's mtime is theirs when theirs wins", async () => {
    const { memory, result } = await merge({ a: "1" }, { a: file("o", { mtimeMs: DEFAULT_MTIME_MS + 5 }) }, { a: file("t", { mtimeMs: DEFAULT_MTIME_MS + 1 }) });
    expect((await memory.entryAt(result.root, "a"))!.mtimeMs).toBe(DEFAULT_MTIME_MS + 1);
  });
});
