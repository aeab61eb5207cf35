// The deterministic merge of concurrent versions: the same versions give the same merge in any
// order; the later write keeps a contested name and the earlier is kept beside it; a
// modification beats a deletion; deletions propagate; no path one side has and the other did
// not delete is ever dropped.
import { describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { sealObject, type Version } from "../../src/core/objects.ts";
import { mergeConcurrent, writeFrontier, type KnownVersion, type VersionLookup } from "../../src/core/concurrent-merge.ts";
import { counterOf, joinVectors, withCounter } from "../../src/core/version-vector.ts";
import { MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";
import { createPrng } from "../helpers/prng.ts";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

class Graph {
  readonly objects = new MemoryObjects();
  private readonly versions = new Map<string, KnownVersion>();
  readonly lookup: VersionLookup = async (id) => this.versions.get(idToHex(id));

  add(version: Version): KnownVersion {
    const sealed = sealObject(version);
    const known = { id: sealed.id, version };
    this.versions.set(idToHex(sealed.id), known);
    return known;
  }

  /** A write by `author` on top of `parents`, with the next counter of that author. */
  write(author: string, parents: KnownVersion[], tree: TreeLiteral | ObjectId, wallMs: number): KnownVersion {
    const joined = joinVectors(...parents.map((p) => p.version.versionVector));
    const root = tree instanceof Uint8Array ? (tree as ObjectId) : this.objects.tree(tree as TreeLiteral);
    return this.add({
      kind: "version",
      root,
      parents: parents.map((p) => p.id),
      author,
      hlcWallMs: wallMs,
      hlcCounter: 0,
      message: "",
      versionVector: withCounter(joined, author, counterOf(joined, author) + 1),
      chunking: "test",
    });
  }

  async merge(...heads: KnownVersion[]) {
    const result = await mergeConcurrent(heads, this.lookup, this.objects.load);
    if ("single" in result) return { known: result.single, conflicts: [] };
    this.objects.putObjects(result.newObjects);
    return { known: this.add(result.version), conflicts: result.conflicts };
  }

  describe(root: ObjectId) {
    return this.objects.describe(root);
  }
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe("mergeConcurrent", () => {
  test("the later write keeps the name, the earlier is kept beside it, named after its writer", async () => {
    const g = new Graph();
    const base = g.write("n1", [], { "doc.txt": "base", "other.txt": "o" }, T0);
    const a = g.write("n1", [base], { "doc.txt": "from n1", "other.txt": "o" }, T0 + 1000);
    const b = g.write("n2", [base], { "doc.txt": "from n2", "other.txt": "o" }, T0 + 2000);
    const { known, conflicts } = await g.merge(a, b);
    expect(await g.describe(known.version.root)).toEqual({
      "doc.txt": "from n2",
      "doc.sync-conflict-20261125-120001-n1.txt": "from n1",
      "other.txt": "o",
    });
    expect(conflicts.map((c) => [c.path, c.kind, c.extraPaths])).toEqual([["doc.txt", "both-modified", ["doc.sync-conflict-20261125-120001-n1.txt"]]]);
    expect(known.version.author).toBe("");
    expect(known.version.parents.length).toBe(2);
    expect(known.version.versionVector).toEqual([{ node: "n1", counter: 2 }, { node: "n2", counter: 1 }]);
  });

  test("equal wall times are ordered by HLC counter, then by node id", async () => {
    const g = new Graph();
    const base = g.write("n1", [], { f: "base" }, T0);
    const a = g.write("zz", [base], { f: "zz" }, T0 + 5);
    const b = g.write("aa", [base], { f: "aa" }, T0 + 5);
    expect(await g.describe((await g.merge(a, b)).known.version.root)).toMatchObject({ f: "zz" });
    expect(await g.describe((await g.merge(b, a)).known.version.root)).toMatchObject({ f: "zz" });
  });

  test("three concurrent writes: every order of arrival gives the same merge version", async () => {
    const g = new Graph();
    const base = g.write("n1", [], { shared: "0", d: { x: "1", y: "1" }, gone: "g" }, T0);
    const a = g.write("n1", [base], { shared: "a", d: { x: "a", y: "1" }, gone: "g", onlyA: "a" }, T0 + 30);
    const b = g.write("n2", [base], { shared: "b", d: { x: "1", y: "b" }, onlyB: "b" }, T0 + 10);
    const c = g.write("n3", [base], { shared: "c", d: { x: "c", y: "1" }, gone: "g" }, T0 + 20);
    const ids = new Set<string>();
    for (const [p, q, r] of permutations([a, b, c])) {
      // All at once, and pairwise in this order (a merge of a merge stands for its writes).
      ids.add(idToHex((await g.merge(p!, q!, r!)).known.id));
      const first = (await g.merge(p!, q!)).known;
      ids.add(idToHex((await g.merge(first, r!)).known.id));
    }
    expect(ids.size).toBe(1);
    const merged = (await g.merge(a, b, c)).known;
    const tree = (await g.describe(merged.version.root)) as Record<string, unknown>;
    // a is the newest write: it keeps shared and d/x; the others are kept beside.
    expect(tree.shared).toBe("a");
    expect(tree.onlyA).toBe("a");
    expect(tree.onlyB).toBe("b");
    expect(tree.gone).toBeUndefined(); // deleted by b, untouched by a and c
    expect(tree["shared.sync-conflict-20261125-120000-n2"]).toBe("b");
    expect(tree["shared.sync-conflict-20261125-120000-n3"]).toBe("c");
    expect((tree.d as Record<string, unknown>).x).toBe("a");
    expect((tree.d as Record<string, unknown>).y).toBe("b");
    expect((tree.d as Record<string, unknown>)["x.sync-conflict-20261125-120000-n3"]).toBe("c");
  });

  test("a modification beats a deletion, in either order", async () => {
    const g = new Graph();
    const base = g.write("n1", [], { keep: "k", edited: "v1", dir: { inner: "i", other: "o" } }, T0);
    const deleter = g.write("n1", [base], { keep: "k" }, T0 + 50);
    const editor = g.write("n2", [base], { keep: "k", edited: "v2", dir: { inner: "i2", other: "o" } }, T0 + 10);
    for (const [x, y] of [[deleter, editor], [editor, deleter]] as const) {
      const { known, conflicts } = await g.merge(x, y);
      // The edited file survives; under the deleted directory only what was edited survives.
      expect(await g.describe(known.version.root)).toEqual({ keep: "k", edited: "v2", dir: { inner: "i2" } });
      expect(conflicts.map((c) => c.kind)).toEqual(["modify-delete", "modify-delete", "modify-delete"]);
    }
  });

  test("a deletion made after the common ancestor propagates and does not come back", async () => {
    const g = new Graph();
    const base = g.write("n1", [], { a: "1" }, T0);
    const added = g.write("n1", [base], { a: "1", tmp: "t" }, T0 + 1);
    // Both nodes have `added`; n2 deletes tmp, n1 edits a.
    const deleted = g.write("n2", [added], { a: "1" }, T0 + 2);
    const edited = g.write("n1", [added], { a: "2", tmp: "t" }, T0 + 3);
    const merged = (await g.merge(deleted, edited)).known;
    expect(await g.describe(merged.version.root)).toEqual({ a: "2" });
    // A later write on top of the merge, merged with a stale branch, still does not resurrect it.
    const later = g.write("n3", [merged], { a: "3" }, T0 + 10);
    const stale = g.write("n2", [deleted], { a: "1", fresh: "f" }, T0 + 5);
    expect(await g.describe((await g.merge(later, stale)).known.version.root)).toEqual({ a: "3", fresh: "f" });
  });

  test("histories with no common ancestor are joined, keeping every path", async () => {
    const g = new Graph();
    const a = g.write("n1", [], { same: "s", clash: "from n1", a: "a" }, T0 + 1);
    const b = g.write("n2", [], { same: "s", clash: "from n2", b: "b" }, T0 + 2);
    const { known } = await g.merge(a, b);
    expect(await g.describe(known.version.root)).toEqual({
      same: "s",
      clash: "from n2",
      "clash.sync-conflict-20261125-120000-n1": "from n1",
      a: "a",
      b: "b",
    });
  });

  test("a head that covers the other is not merged: the frontier is one write", async () => {
    const g = new Graph();
    const base = g.write("n1", [], { f: "1" }, T0);
    const next = g.write("n2", [base], { f: "2" }, T0 + 1);
    expect(idToHex((await writeFrontier([base, next], g.lookup))[0]!.id)).toBe(idToHex(next.id));
    const result = await g.merge(base, next);
    expect(idToHex(result.known.id)).toBe(idToHex(next.id));
  });

  test("random concurrent edits: no path is dropped that a side added or changed, and the order never matters", async () => {
    const names = ["a", "b", "c", "d/x", "d/y", "e/f/g"];
    for (let seed = 1; seed <= 40; seed++) {
      const prng = createPrng(seed);
      const g = new Graph();
      const randomTree = (from: Record<string, string>) => {
        const out = { ...from };
        for (let k = 0; k < 3; k++) {
          const name = names[prng.nextInt(names.length)]!;
          if (prng.nextInt(3) === 0) delete out[name];
          else out[name] = `v${prng.nextInt(1000)}`;
        }
        return out;
      };
      const toLiteral = (flat: Record<string, string>) => {
        const literal: TreeLiteral = {};
        for (const [path, content] of Object.entries(flat)) {
          const parts = path.split("/");
          let dir = literal as Record<string, unknown>;
          for (const part of parts.slice(0, -1)) dir = (dir[part] ??= {}) as Record<string, unknown>;
          dir[parts.at(-1)!] = content;
        }
        return literal;
      };
      const baseFlat = randomTree({});
      const base = g.write("n0", [], toLiteral(baseFlat), T0);
      const sides = ["n1", "n2", "n3"].map((node, i) => {
        const flat = randomTree(baseFlat);
        return { flat, known: g.write(node, [base], toLiteral(flat), T0 + 100 + prng.nextInt(50) * 3 + i) };
      });
      const ids = new Set<string>();
      for (const order of permutations(sides.map((s) => s.known))) ids.add(idToHex((await g.merge(...order)).known.id));
      expect(ids.size).toBe(1);
      const merged = (await g.merge(...sides.map((s) => s.known))).known;
      const flatMerged = flatten((await g.describe(merged.version.root)) as Record<string, unknown>);
      const contents = new Set(Object.values(flatMerged));
      for (const side of sides) {
        for (const [path, content] of Object.entries(side.flat)) {
          if (baseFlat[path] === content) continue; // unchanged on this side: another side may delete it
          // Added or changed on this side: still there, at its path or as a conflict copy.
          expect(flatMerged[path] === content || contents.has(content)).toBe(true);
        }
      }
    }
  });
});

function flatten(tree: Record<string, unknown>, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}/${name}` : name;
    if (typeof value === "string") out[path] = value;
    else if (value && typeof value === "object" && !("symlink" in value)) Object.assign(out, flatten(value as Record<string, unknown>, path));
  }
  return out;
}
