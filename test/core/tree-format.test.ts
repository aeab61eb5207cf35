// Tree formats 1 and 2: the exact bytes and ids of a small tree in each (test/fixtures/objects-
// tree-format-*.json), format 1 still read, and the rules of the "c" entry (a file named by its
// one chunk): only in format 2, one byte at least, its id a chunk for every walker.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { encodeCanonical } from "../../src/core/encoding.ts";
import { idFromHex, idToHex } from "../../src/core/id.ts";
import { childRefs, decodeObject, decodesAsObject, encodeObject, isTreeLeaf, type TreeEntry, type TreeNode } from "../../src/core/objects.ts";
import { childrenOf } from "../../src/core/descend.ts";
import { readEntryChunks } from "../../src/core/pages.ts";
import { encodeTreeFormat1 } from "../helpers/tree-format-1.ts";
import format1 from "../fixtures/objects-tree-format-1.json";
import format2 from "../fixtures/objects-tree-format-2.json";

interface Fixture {
  format: number;
  entries: { name: string; code: string; mode: number; mtimeMs: number; sizeBytes: number; id: string | null; target: string | null }[];
  hex: string;
  id: string;
}

const KINDS: Record<string, TreeEntry["kind"]> = { f: "file", c: "file", d: "dir", l: "symlink" };

function treeOf(fixture: Fixture): TreeNode {
  return {
    kind: "tree",
    level: 0,
    entries: fixture.entries.map((e) => {
      const entry: TreeEntry = { name: e.name, kind: KINDS[e.code]!, mode: e.mode, mtimeMs: e.mtimeMs, sizeBytes: e.sizeBytes, id: e.id === null ? null : idFromHex(e.id), target: e.target };
      return e.code === "c" ? { ...entry, idNamesChunk: true } : entry;
    }),
  };
}

const bytesOf = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));
const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
/** A leaf's raw fields with the format number put in by hand (what a hostile or older writer could send). */
const rawTree = (format: number, entries: unknown[][]) => encodeCanonical(["tree", format, 0, entries]);
const someId = () => blake3(new TextEncoder().encode("some chunk"));

describe("golden trees", () => {
  test("format 2: the encoder writes exactly the fixture's bytes, and its id is their BLAKE3", () => {
    const bytes = encodeObject(treeOf(format2 as Fixture));
    expect(hexOf(bytes)).toBe(format2.hex);
    expect(idToHex(blake3(bytes))).toBe(format2.id);
    expect(bytes[6]).toBe(2);
  });

  test("format 2 decodes to its entries, the chunk-named file marked as such", () => {
    const decoded = decodeObject(bytesOf(format2.hex));
    expect(decoded).toEqual(treeOf(format2 as Fixture));
    const entries = (decoded as TreeNode & { entries: TreeEntry[] }).entries;
    expect(entries.filter((e) => e.idNamesChunk).map((e) => e.name)).toEqual(["hello.txt"]);
  });

  test("format 1 (bytes of the format-1 encoder) still decodes, with no entry naming a chunk", () => {
    const decoded = decodeObject(bytesOf(format1.hex));
    expect(idToHex(blake3(bytesOf(format1.hex)))).toBe(format1.id);
    expect(decoded).toEqual(treeOf(format1 as Fixture));
    expect(isTreeLeaf(decoded as TreeNode) && (decoded as TreeNode & { entries: TreeEntry[] }).entries.some((e) => e.idNamesChunk)).toBe(false);
  });

  test("the tests' format-1 encoder gives the format-1 fixture's bytes", () => {
    expect(hexOf(encodeTreeFormat1(treeOf(format1 as Fixture)))).toBe(format1.hex);
  });

  test("the empty directory in format 2", () => {
    const bytes = bytesOf("94a474726565020090");
    expect(decodeObject(bytes)).toEqual({ kind: "tree", level: 0, entries: [] });
    expect(hexOf(encodeObject({ kind: "tree", level: 0, entries: [] }))).toBe("94a474726565020090");
    expect(idToHex(blake3(bytes))).toBe(format2.entries.find((e) => e.name === "src")!.id!);
  });
});

describe("the chunk-named file entry", () => {
  const entry = (code: string, sizeBytes: number, id: Uint8Array | null = someId()) => ["f.txt", code, 0o644, 0, sizeBytes, id, null];

  test("is refused in a format-1 tree", () => {
    expect(() => decodeObject(rawTree(1, [entry("c", 10)]))).toThrow(/unknown kind "c" in a format-1 tree/);
  });

  test("holds one byte at least (an empty file keeps its file node)", () => {
    expect(() => decodeObject(rawTree(2, [entry("c", 0)]))).toThrow(/named by its chunk holds 1 to/);
    expect(decodeObject(rawTree(2, [entry("c", 1)]))).toMatchObject({ entries: [{ sizeBytes: 1, idNamesChunk: true }] });
  });

  test("needs an id and no target", () => {
    expect(() => decodeObject(rawTree(2, [entry("c", 10, null)]))).toThrow(/expected a 32-byte id/);
    expect(() => decodeObject(rawTree(2, [["f.txt", "c", 0o644, 0, 10, someId(), "x"]]))).toThrow(/only symlinks have a target/);
  });

  test("an unknown format or code is refused", () => {
    expect(() => decodeObject(rawTree(3, []))).toThrow(/unsupported tree format 3/);
    expect(() => decodeObject(rawTree(2, [entry("x", 10)]))).toThrow(/unknown kind "x"/);
  });

  test("its id is a chunk, with the entry's size, to every walker", () => {
    const tree = decodeObject(bytesOf(format2.hex));
    const chunkId = format2.entries.find((e) => e.code === "c")!.id!;
    const refs = childRefs(tree);
    expect(refs.chunks.map(idToHex)).toEqual([chunkId]);
    expect(refs.objects.map(idToHex)).not.toContain(chunkId);
    expect(childrenOf(tree).chunks.map((c) => [idToHex(c.id), c.lengthBytes])).toEqual([[chunkId, 12]]);
  });

  test("its chunks are itself, without a load", async () => {
    const id = someId();
    const chunks = await readEntryChunks({ id, sizeBytes: 10, idNamesChunk: true }, async () => {
      throw new Error("nothing to load");
    });
    expect(chunks).toEqual([{ id, lengthBytes: 10 }]);
  });

  test("bytes that decode as a structured object are told apart from chunks", () => {
    expect(decodesAsObject(bytesOf(format2.hex))).toBe(true);
    expect(decodesAsObject(bytesOf(format1.hex))).toBe(true);
    expect(decodesAsObject(new TextEncoder().encode("hello world\n"))).toBe(false);
    // An array that is not an object, and an object cut short.
    expect(decodesAsObject(encodeCanonical([1, 2, 3]))).toBe(false);
    expect(decodesAsObject(bytesOf(format2.hex).subarray(0, 20))).toBe(false);
  });
});
