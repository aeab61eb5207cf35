// Format-1 trees, as dsync wrote them before tree format 2: what a node holding older versions
// has stored. The bytes this makes are pinned against test/fixtures/objects-tree-format-1.json
// (made by the format-1 encoder), so tests can build old trees that are exactly the old ones.
import { blake3 } from "../../src/core/blake3.ts";
import { encodeCanonical } from "../../src/core/encoding.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { isTreeLeaf, type TreeEntry, type TreeNode } from "../../src/core/objects.ts";
import { nameBoundaryHash, splitIntoPages } from "../../src/core/pages.ts";

const CODES = { file: "f", dir: "d", symlink: "l" } as const;

/** The format-1 bytes of a tree node; one whose entries name a chunk has no format-1 form. */
export function encodeTreeFormat1(node: TreeNode): Uint8Array {
  if (isTreeLeaf(node)) {
    if (node.entries.some((e) => e.idNamesChunk)) throw new Error("a format-1 tree cannot name a file's chunk");
    return encodeCanonical(["tree", 1, 0, node.entries.map((e) => [e.name, CODES[e.kind], e.mode, e.mtimeMs, e.sizeBytes, e.id, e.target])]);
  }
  return encodeCanonical(["tree", 1, node.level, node.pages.map((p) => [p.id, p.firstName])]);
}

/** A directory of sorted entries in format 1 (one leaf, or pages cut by names as format 2 cuts them), root last. */
export function sealTreeFormat1(entries: readonly TreeEntry[]): { id: ObjectId; objects: { id: ObjectId; bytes: Uint8Array }[] } {
  const objects: { id: ObjectId; bytes: Uint8Array }[] = [];
  const seal = (node: TreeNode) => {
    const bytes = encodeTreeFormat1(node);
    const id = blake3(bytes);
    objects.push({ id, bytes });
    return id;
  };
  let current = splitIntoPages(entries, (e) => nameBoundaryHash(e.name)).map((page) => ({ id: seal({ kind: "tree", level: 0, entries: page }), firstName: page[0]?.name ?? "" }));
  for (let level = 1; current.length > 1; level++) {
    const nodeLevel = level;
    current = splitIntoPages(current, (ref) => (ref.id[0]! | (ref.id[1]! << 8) | (ref.id[2]! << 16) | (ref.id[3]! << 24)) >>> 0).map((page) => ({
      id: seal({ kind: "tree", level: nodeLevel, pages: page }),
      firstName: page[0]!.firstName,
    }));
  }
  return { id: current[0]!.id, objects };
}
