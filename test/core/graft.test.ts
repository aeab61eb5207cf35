// graftEntries: the entries of a source tree put back at given paths of a target tree, rebuilding
// only the directories on those paths; countEntries: what grafted entries hold.
import { describe, expect, test } from "bun:test";
import { countEntries, graftEntries } from "../../src/core/graft.ts";
import { idEquals, idToHex } from "../../src/core/id.ts";
import { readTreeEntries } from "../../src/core/pages.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

describe("graftEntries", () => {
  test("puts the source's files and directories back at the given paths; everything else stays the target's", async () => {
    const store = new MemoryObjects();
    const base = store.tree({ "a.txt": "a", "x.bin": "old bin", docs: { "n.md": "n", "y.bin": "deep bin" }, cache: { "c1": "1", "c2": "2" } });
    // A scan that ignored *.bin and cache/, and where a.txt changed.
    const scanned = store.tree({ "a.txt": "a2", docs: { "n.md": "n" } });
    const result = await graftEntries(scanned, base, ["x.bin", "docs/y.bin", "cache"], store.load);
    store.putObjects(result.objects);
    expect(await store.describe(result.root)).toEqual({ "a.txt": "a2", "x.bin": "old bin", docs: { "n.md": "n", "y.bin": "deep bin" }, cache: { c1: "1", c2: "2" } });
    expect(result.grafted.map((g) => g.path).sort()).toEqual(["cache", "docs/y.bin", "x.bin"]);
    // The grafted directory is the source's own node, not a copy.
    expect(idEquals(result.grafted.find((g) => g.path === "cache")!.entry.id!, (await store.entryAt(base, "cache"))!.id!)).toBe(true);
    expect(await store.missingBelow(result.root)).toEqual([]);
  });

  test("a path the source lacks changes nothing, and no directory is rebuilt", async () => {
    const store = new MemoryObjects();
    const base = store.tree({ "a.txt": "a" });
    const scanned = store.tree({ "a.txt": "a", sub: { "b.txt": "b" } });
    const result = await graftEntries(scanned, base, ["sub/new.bin", "fifo"], store.load);
    expect(idToHex(result.root)).toBe(idToHex(scanned));
    expect(result.objects).toEqual([]);
    expect(result.grafted).toEqual([]);
  });

  test("no source (a first sync) or no paths: the target as it is", async () => {
    const store = new MemoryObjects();
    const scanned = store.tree({ "a.txt": "a" });
    expect(idToHex((await graftEntries(scanned, null, ["a.txt"], store.load)).root)).toBe(idToHex(scanned));
    const base = store.tree({ "b.txt": "b" });
    expect(idToHex((await graftEntries(scanned, base, [], store.load)).root)).toBe(idToHex(scanned));
  });

  test("grafting the base's entries for every path not read gives back the base when nothing else changed", async () => {
    const store = new MemoryObjects();
    const base = store.tree({ keep: "k", "v.bin": "v", deep: { er: { "w.bin": "w", "z.txt": "z" } } });
    const scanned = store.tree({ keep: "k", deep: { er: { "z.txt": "z" } } });
    const result = await graftEntries(scanned, base, ["v.bin", "deep/er/w.bin"], store.load);
    expect(idToHex(result.root)).toBe(idToHex(base));
  });

  test("a large (paged) directory: the grafted entry lands in the right page and the result equals a tree built whole", async () => {
    const store = new MemoryObjects();
    const names: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) names[`f${String(i).padStart(5, "0")}.txt`] = `content ${i}`;
    const base = store.tree({ big: { ...names, "m.bin": "bin" } });
    const scanned = store.tree({ big: names });
    const bigNode = (await store.entryAt(scanned, "big"))!;
    expect((await store.load(bigNode.id!)).kind).toBe("tree");
    expect("pages" in (await store.load(bigNode.id!))).toBe(true);
    const result = await graftEntries(scanned, base, ["big/m.bin"], store.load);
    store.putObjects(result.objects);
    expect(idToHex(result.root)).toBe(idToHex(base));
    expect((await readTreeEntries((await store.entryAt(result.root, "big"))!.id!, store.load)).length).toBe(3001);
  });

  test("the source's entry replaces one the target has at that path; a parent the target lacks is skipped", async () => {
    const store = new MemoryObjects();
    const base = store.tree({ "a.txt": "base a", gone: { "g.txt": "g" } });
    const scanned = store.tree({ "a.txt": "scanned a" });
    const result = await graftEntries(scanned, base, ["a.txt", "gone/g.txt"], store.load);
    store.putObjects(result.objects);
    expect(await store.describe(result.root)).toEqual({ "a.txt": "base a" });
  });
});

describe("countEntries", () => {
  test("counts files, bytes, symlinks and directories, all the way down", async () => {
    const store = new MemoryObjects();
    const root = store.tree({ "a.txt": "abc", link: { symlink: "a.txt" }, d: { "b.txt": "12345", e: { "c.txt": "" } } });
    const entries = await readTreeEntries(root, store.load);
    expect(await countEntries(entries, store.load)).toEqual({ files: 3, directories: 2, symlinks: 1, bytes: 8 });
  });
});
