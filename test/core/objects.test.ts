import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { DecodeError, encodeCanonical } from "../../src/core/encoding.ts";
import { idFromBytes, idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { childRefs, decodeObject, encodeObject, peekKind, sealObject, type StructuredObject, type TreeEntry } from "../../src/core/objects.ts";

const text = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const idOf = (s: string) => idFromBytes(blake3(text(s)));

// ---------- golden fixtures ----------
// These bytes are the format: if one changes, every id ever stored changes with it.

const GOLDEN_FILE_ID = "2e905c77dcda360f4724a11bebcfc5fd96954dbe9a7ceb54ef037da93f59bea7";
const GOLDEN_FILE_HEX =
  "95a466696c6501000b9292c420955ddfbf1efade57480fbf6019f3ab768198a04a85e5bae4cf2d1ee04f03e18b0692c420d7894ae9716d38d2dfad0ec55424ca321ee12453d51f1b3adeb77d0475ed988c05";
const GOLDEN_EMPTY_TREE_ID = "714ee071cd75dab4fcac8ba75b65f65472b4f25e2a91a3535204364a167b6ac5";
const GOLDEN_EMPTY_TREE_HEX = "94a474726565010090";
const GOLDEN_TREE_ID = "f253cf5b8ccaff8fe34a8545d679dd1cfec1486ab0fce6955167b7fbbe5e8667";
const GOLDEN_TREE_HEX =
  "94a47472656501009397a9524541444d452e6d64a166cd01a4cb4278bcfe568000000bc4202e905c77dcda360f4724a11bebcfc5fd96954dbe9a7ceb54ef037da93f59bea7c0" +
  "97a46c696e6ba16ccd01ffcb4278bcfe5680100000c0a9524541444d452e6d64" +
  "97a3737263a164cd01edcb4278bcfe5680200000c420714ee071cd75dab4fcac8ba75b65f65472b4f25e2a91a3535204364a167b6ac5c0";
// Trees are written in format 2 (the same tree as above, its directory the format-2 empty tree);
// the format-1 bytes above are what dsync wrote before, and still decode.
const GOLDEN_EMPTY_TREE_2_ID = "fd7fa5c8cb97e11bea825200fbdfecc3ed94230ab7ee48b596753f262f1e5361";
const GOLDEN_EMPTY_TREE_2_HEX = "94a474726565020090";
const GOLDEN_TREE_2_ID = "0597ab0d6fcdd9d133804773271ad2c185c85f6eb6e80b813623afa8a2638831";
const GOLDEN_TREE_2_HEX =
  "94a47472656502009397a9524541444d452e6d64a166cd01a4cb4278bcfe568000000bc4202e905c77dcda360f4724a11bebcfc5fd96954dbe9a7ceb54ef037da93f59bea7c0" +
  "97a46c696e6ba16ccd01ffcb4278bcfe5680100000c0a9524541444d452e6d64" +
  "97a3737263a164cd01edcb4278bcfe5680200000c420fd7fa5c8cb97e11bea825200fbdfecc3ed94230ab7ee48b596753f262f1e5361c0";
const GOLDEN_VERSION_ID = "f60d2edbd243f636c9ca5ea680bc28bef8a1c8a164a36b5772fdcdd09e397763";
const GOLDEN_VERSION_HEX =
  "9aa776657273696f6e01c420f253cf5b8ccaff8fe34a8545d679dd1cfec1486ab0fce6955167b7fbbe5e866790a66e6f64652d61cb4278bcfe5687b00002a56669727374" +
  "9192a66e6f64652d6101be66617374636463323032303a31363338343a36353533363a323632313434";

const goldenFile: StructuredObject = {
  kind: "file",
  level: 0,
  sizeBytes: 11,
  chunks: [
    { id: idOf("hello "), lengthBytes: 6 },
    { id: idOf("world"), lengthBytes: 5 },
  ],
};
const goldenEmptyTree: StructuredObject = { kind: "tree", level: 0, entries: [] };
const goldenTree: StructuredObject = {
  kind: "tree",
  level: 0,
  entries: [
    { name: "README.md", kind: "file", mode: 0o644, mtimeMs: 1_700_000_000_000, sizeBytes: 11, id: idFromHex(GOLDEN_FILE_ID), target: null },
    { name: "link", kind: "symlink", mode: 0o777, mtimeMs: 1_700_000_000_001, sizeBytes: 0, id: null, target: "README.md" },
    { name: "src", kind: "dir", mode: 0o755, mtimeMs: 1_700_000_000_002, sizeBytes: 0, id: idFromHex(GOLDEN_EMPTY_TREE_ID), target: null },
  ],
};
const goldenTree2: StructuredObject = {
  kind: "tree",
  level: 0,
  entries: (goldenTree as { entries: TreeEntry[] }).entries.map((e) => (e.kind === "dir" ? { ...e, id: idFromHex(GOLDEN_EMPTY_TREE_2_ID) } : e)),
};
const goldenVersion: StructuredObject = {
  kind: "version",
  root: idFromHex(GOLDEN_TREE_ID),
  parents: [],
  author: "node-a",
  hlcWallMs: 1_700_000_000_123,
  hlcCounter: 2,
  message: "first",
  versionVector: [{ node: "node-a", counter: 1 }],
  chunking: "fastcdc2020:16384:65536:262144",
};

describe("golden fixtures", () => {
  test.each([
    ["file node", goldenFile, GOLDEN_FILE_HEX, GOLDEN_FILE_ID],
    ["empty tree", goldenEmptyTree, GOLDEN_EMPTY_TREE_2_HEX, GOLDEN_EMPTY_TREE_2_ID],
    ["tree with a file, a symlink and a dir", goldenTree2, GOLDEN_TREE_2_HEX, GOLDEN_TREE_2_ID],
    ["version", goldenVersion, GOLDEN_VERSION_HEX, GOLDEN_VERSION_ID],
  ] as const)("%s encodes to the pinned bytes and id", (_name, object, bytesHex, idHex) => {
    expect(hex(encodeObject(object))).toBe(bytesHex);
    const sealed = sealObject(object);
    expect(idToHex(sealed.id)).toBe(idHex);
    expect(idToHex(blake3(fromHex(bytesHex)))).toBe(idHex);
  });

  test.each([
    ["file node", goldenFile, GOLDEN_FILE_HEX],
    ["tree", goldenTree2, GOLDEN_TREE_2_HEX],
    ["format-1 tree", goldenTree, GOLDEN_TREE_HEX],
    ["format-1 empty tree", goldenEmptyTree, GOLDEN_EMPTY_TREE_HEX],
    ["version", goldenVersion, GOLDEN_VERSION_HEX],
  ] as const)("the pinned %s bytes decode to the object", (_name, object, bytesHex) => {
    expect(decodeObject(fromHex(bytesHex))).toEqual(object);
  });

  test("the format-1 ids are the BLAKE3 of their bytes", () => {
    expect(idToHex(blake3(fromHex(GOLDEN_TREE_HEX)))).toBe(GOLDEN_TREE_ID);
    expect(idToHex(blake3(fromHex(GOLDEN_EMPTY_TREE_HEX)))).toBe(GOLDEN_EMPTY_TREE_ID);
  });
});

// ---------- round trips ----------

const someId = (n: number) => idOf(`object ${n}`);

describe("decode(encode(x)) is x", () => {
  const cases: [string, StructuredObject][] = [
    ["file leaf", goldenFile],
    ["empty file", { kind: "file", level: 0, sizeBytes: 0, chunks: [] }],
    ["file inner node", { kind: "file", level: 2, sizeBytes: 30, pages: [{ id: someId(1), sizeBytes: 10 }, { id: someId(2), sizeBytes: 20 }] }],
    ["tree leaf", goldenTree],
    ["empty tree", goldenEmptyTree],
    ["tree inner node", { kind: "tree", level: 1, pages: [{ id: someId(3), firstName: "a" }, { id: someId(4), firstName: "m" }] }],
    [
      "tree with non-ASCII names in byte order and negative and large mtimes",
      {
        kind: "tree",
        level: 0,
        entries: [
          { name: "Z", kind: "symlink", mode: 0, mtimeMs: -1, sizeBytes: 0, id: null, target: "../../x" },
          { name: "é", kind: "file", mode: 0o7777, mtimeMs: Number.MAX_SAFE_INTEGER, sizeBytes: 2 ** 40, id: someId(5), target: null },
          { name: "\uffff", kind: "dir", mode: 0o700, mtimeMs: 0, sizeBytes: 0, id: someId(6), target: null },
          { name: "😀", kind: "dir", mode: 0o700, mtimeMs: 0, sizeBytes: 0, id: someId(7), target: null },
        ],
      },
    ],
    ["version with parents and a vector", { ...goldenVersion, parents: [someId(8), someId(9)], versionVector: [{ node: "a", counter: 3 }, { node: "b", counter: 0 }] } as StructuredObject],
  ];
  test.each(cases)("%s", (_name, object) => {
    expect(decodeObject(encodeObject(object))).toEqual(object);
  });
});

// ---------- the decoder rejects malformed input ----------

const idA = someId(10);
const entry = (name: string, overrides: Partial<Record<"kind" | "mode" | "mtime" | "size" | "id" | "target", unknown>> = {}): unknown[] => [
  name,
  "kind" in overrides ? overrides.kind : "f",
  "mode" in overrides ? overrides.mode : 0o644,
  "mtime" in overrides ? overrides.mtime : 0,
  "size" in overrides ? overrides.size : 1,
  "id" in overrides ? overrides.id : idA,
  "target" in overrides ? overrides.target : null,
];
const treeOf = (...entries: unknown[]) => ["tree", 1, 0, entries];
const versionArray = (overrides: Record<number, unknown> = {}) => {
  const fields: unknown[] = ["version", 1, idA, [], "node-a", 1, 0, "m", [], "fastcdc2020:16384:65536:262144"];
  for (const [index, value] of Object.entries(overrides)) fields[Number(index)] = value;
  return fields;
};
const validFileBytes = fromHex(GOLDEN_FILE_HEX);
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe("decodeObject", () => {
  // Each malformed case is one change away from a valid object; the controls show those decode.
  test.each([
    ["file", ["file", 1, 0, 2, [[idA, 2]]]],
    ["tree", treeOf(entry("a"), entry("b"))],
    ["tree sorted by UTF-8 bytes, not UTF-16 units", treeOf(entry("\uffff"), entry("😀"))],
    ["symlink", treeOf(entry("l", { kind: "l", size: 0, id: null, target: "t" }))],
    ["directory", treeOf(entry("d", { kind: "d", size: 0 }))],
    ["tree inner node", ["tree", 1, 1, [[idA, "a"], [someId(11), "b"]]]],
    ["file inner node", ["file", 1, 3, 7, [[idA, 7]]]],
    ["version", versionArray()],
  ])("accepts a valid %s", (_name, value) => {
    expect(() => decodeObject(encodeCanonical(value))).not.toThrow();
  });

  const malformedValues: [string, unknown][] = [
    ["a bare string", "file"],
    ["a map", new Map([["kind", "file"]])],
    ["an unknown kind tag", ["blob", 1, 0, 0, []]],
    ["a chunk-like tag", ["chunk", 1, 0, 0, []]],
    ["format 2", ["file", 2, 0, 0, []]],
    ["format 0", ["tree", 0, 0, []]],
    ["format as a string", ["file", "1", 0, 0, []]],
    ["a file with a missing field", ["file", 1, 0, 0]],
    ["a file with an extra field", ["file", 1, 0, 0, [], null]],
    ["a file whose chunk sizes do not add up", ["file", 1, 0, 3, [[idA, 2]]]],
    ["a file whose page sizes do not add up", ["file", 1, 1, 10, [[idA, 2], [someId(11), 3]]]],
    ["a negative file size", ["file", 1, 0, -2, [[idA, -2]]]],
    ["a negative chunk size", ["file", 1, 0, 0, [[idA, -1], [someId(11), 1]]]],
    ["an empty chunk", ["file", 1, 0, 0, [[idA, 0]]]],
    ["a non-integer chunk size", ["file", 1, 0, 1.5, [[idA, 1.5]]]],
    ["a chunk size beyond 2^53", ["file", 1, 0, 2 ** 54, [[idA, 2 ** 54]]]],
    ["level 33", ["file", 1, 33, 1, [[idA, 1]]]],
    ["a huge level", ["tree", 1, 2 ** 31, [[idA, "a"]]]],
    ["a negative level", ["file", 1, -1, 1, [[idA, 1]]]],
    ["a non-integer level", ["tree", 1, 0.5, []]],
    ["a chunk entry without its size", ["file", 1, 0, 1, [[idA]]]],
    ["an id of 31 bytes", ["file", 1, 0, 1, [[idA.subarray(0, 31), 1]]]],
    ["an id as hex text", ["file", 1, 0, 1, [[idToHex(idA), 1]]]],
    ["a file inner node without pages", ["file", 1, 1, 0, []]],
    ["unsorted names", treeOf(entry("b"), entry("a"))],
    ["duplicate names", treeOf(entry("a"), entry("a"))],
    ["names in UTF-16 order, not byte order", treeOf(entry("😀"), entry("\uffff"))],
    ['the name ".."', treeOf(entry(".."))],
    ['the name "."', treeOf(entry("."))],
    ["an empty name", treeOf(entry(""))],
    ["a name with '/'", treeOf(entry("a/b"))],
    ["a name with '\\'", treeOf(entry("a\\b"))],
    ["a name with NUL", treeOf(entry("a\0b"))],
    ["a name longer than 255 bytes", treeOf(entry("é".repeat(128)))],
    ["a name that is not a string", treeOf(entry(7 as unknown as string))],
    ["an entry with 6 fields", treeOf(entry("a").slice(0, 6))],
    ["an unknown entry kind", treeOf(entry("a", { kind: "x" }))],
    ["a symlink with an id", treeOf(entry("l", { kind: "l", size: 0, target: "t" }))],
    ["a symlink without a target", treeOf(entry("l", { kind: "l", size: 0, id: null }))],
    ["a symlink with an empty target", treeOf(entry("l", { kind: "l", size: 0, id: null, target: "" }))],
    ["a symlink with a size", treeOf(entry("l", { kind: "l", size: 1, id: null, target: "t" }))],
    ["a file entry with a target", treeOf(entry("a", { target: "t" }))],
    ["a file entry without an id", treeOf(entry("a", { id: null }))],
    ["a directory with a size", treeOf(entry("d", { kind: "d", size: 5 }))],
    ["mode beyond 0o7777", treeOf(entry("a", { mode: 0o10000 }))],
    ["a negative mode", treeOf(entry("a", { mode: -1 }))],
    ["a non-integer mode", treeOf(entry("a", { mode: 1.5 }))],
    ["a non-integer mtime", treeOf(entry("a", { mtime: 0.5 }))],
    ["a negative entry size", treeOf(entry("a", { size: -1 }))],
    ["a size as a string", treeOf(entry("a", { size: "1" }))],
    ["a tree inner node without pages", ["tree", 1, 1, []]],
    ["a tree page named '..'", ["tree", 1, 1, [[idA, ".."]]]],
    ["tree pages out of order", ["tree", 1, 1, [[idA, "b"], [someId(11), "a"]]]],
    ["too many entries in one node", ["file", 1, 0, LIMITS.pageEntriesMax + 1, Array.from({ length: LIMITS.pageEntriesMax + 1 }, () => [idA, 1])]],
    ["a version with a missing field", versionArray().slice(0, 9)],
    ["a version with too many parents", versionArray({ 3: Array.from({ length: LIMITS.versionParentsMax + 1 }, (_, i) => someId(i)) })],
    ["a version whose root is not an id", versionArray({ 2: null })],
    ["a version counter beyond 32 bits", versionArray({ 6: 2 ** 32 })],
    ["a negative version wall time", versionArray({ 5: -1 })],
    ["an unsorted version vector", versionArray({ 8: [["b", 1], ["a", 1]] })],
    ["a duplicate version vector node", versionArray({ 8: [["a", 1], ["a", 2]] })],
  ];
  test.each(malformedValues)("rejects %s", (_name, value) => {
    expect(() => decodeObject(encodeCanonical(value))).toThrow(DecodeError);
  });

  test.each([
    ["empty input", new Uint8Array(0)],
    ["truncated bytes", validFileBytes.subarray(0, validFileBytes.length - 1)],
    ["a truncated header", validFileBytes.subarray(0, 3)],
    ["trailing bytes", concat(validFileBytes, new Uint8Array([0xc0]))],
    ["two objects back to back", concat(validFileBytes, validFileBytes)],
    ["a reserved msgpack byte", new Uint8Array([0xc1])],
    ["an object over the size limit", new Uint8Array(LIMITS.structuredObjectBytesMax + 1).fill(0x90)],
  ])("rejects %s", (_name, bytes) => {
    expect(() => decodeObject(bytes)).toThrow(DecodeError);
  });
});

// ---------- peekKind and childRefs ----------

describe("peekKind", () => {
  test.each([
    ["a file node", fromHex(GOLDEN_FILE_HEX), "file"],
    ["a tree node", fromHex(GOLDEN_TREE_HEX), "tree"],
    ["a version", fromHex(GOLDEN_VERSION_HEX), "version"],
    ["chunk bytes", text("hello world, this is a chunk"), undefined],
    ["empty input", new Uint8Array(0), undefined],
    ["an array with another tag", encodeCanonical(["blob", 1, 0, 0, []]), undefined],
    ["a tag that is not a string", encodeCanonical([7, 1, 0, 0, []]), undefined],
    ["a bare string", encodeCanonical("tree-like text"), undefined],
  ] as const)("%s", (_name, bytes, kind) => {
    expect(peekKind(bytes)).toBe(kind);
  });
});

describe("childRefs", () => {
  const hexes = (ids: ObjectId[]) => ids.map(idToHex);
  const fileEntry: TreeEntry = { name: "f", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: 1, id: someId(20), target: null };
  const dirEntry: TreeEntry = { name: "g", kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: someId(21), target: null };
  const linkEntry: TreeEntry = { name: "h", kind: "symlink", mode: 0o777, mtimeMs: 0, sizeBytes: 0, id: null, target: "f" };
  test.each([
    ["a file leaf names its chunks", goldenFile, [], [idOf("hello "), idOf("world")]],
    ["a file inner node names its pages", { kind: "file", level: 1, sizeBytes: 3, pages: [{ id: someId(22), sizeBytes: 3 }] }, [someId(22)], []],
    ["a tree leaf names files and directories, not symlinks", { kind: "tree", level: 0, entries: [fileEntry, dirEntry, linkEntry] }, [someId(20), someId(21)], []],
    ["a tree inner node names its pages", { kind: "tree", level: 1, pages: [{ id: someId(23), firstName: "a" }] }, [someId(23)], []],
    ["a version names its root, not its parents", { ...goldenVersion, parents: [someId(24)] }, [idFromHex(GOLDEN_TREE_ID)], []],
  ] as [string, StructuredObject, ObjectId[], ObjectId[]][])("%s", (_name, object, objects, chunks) => {
    const refs = childRefs(object);
    expect(hexes(refs.objects)).toEqual(hexes(objects));
    expect(hexes(refs.chunks)).toEqual(hexes(chunks));
  });
});
