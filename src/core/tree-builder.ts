// Sealing a directory or a file that was put together in memory (merge output, scanners, tests).
//
// buildTreeNodes trusts its input: entries sorted, names valid and unique. This is the checked
// way in: it sorts the entries itself, refuses duplicate or unsafe names, and decodes every node
// it produced, so a tree sealed here is never one that a peer's decoder would reject.
import { type ObjectId } from "./id.ts";
import { validateName } from "./names.ts";
import { decodeObject, type ChunkRef, type FileNode, type TreeEntry, type TreeNode } from "./objects.ts";
import { buildFileNodes, buildTreeNodes, type SealedObject } from "./pages.ts";

export interface SealedTree {
  /** Id of the root node: the directory's id. */
  id: ObjectId;
  /** Every node of the directory, pages first and the root last (the order to store them in). */
  objects: SealedObject<TreeNode>[];
}

export interface SealedFile {
  id: ObjectId;
  sizeBytes: number;
  /** Every node of the file, pages first and the root last. */
  objects: SealedObject<FileNode>[];
}

/** Entries sorted by name in the byte-wise UTF-8 order trees use, without re-encoding per comparison. */
export function sortEntriesByName(entries: readonly TreeEntry[]): TreeEntry[] {
  const keyed = entries.map((entry) => ({ entry, key: Buffer.from(entry.name) }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  return keyed.map((k) => k.entry);
}

/** Seals a directory from its entries, in any order. Throws on an invalid or duplicate name or an entry the format rejects. */
export function sealTree(entries: readonly TreeEntry[]): SealedTree {
  const sorted = sortEntriesByName(entries);
  for (let i = 0; i < sorted.length; i++) {
    const name = sorted[i]!.name;
    const problem = validateName(name);
    if (problem) throw new Error(`cannot build a tree with the name ${JSON.stringify(name)}: ${problem}`);
    if (i > 0 && sorted[i - 1]!.name === name) throw new Error(`cannot build a tree with two entries named ${JSON.stringify(name)}`);
  }
  const objects = buildTreeNodes(sorted);
  // The decoder is the one definition of a valid node (symlinks without ids, sizes, modes...).
  for (const sealed of objects) decodeObject(sealed.bytes);
  return { id: objects[objects.length - 1]!.id, objects };
}

/** Seals a file from its chunk list, in order. */
export function sealFile(chunks: readonly ChunkRef[]): SealedFile {
  const objects = buildFileNodes(chunks);
  const root = objects[objects.length - 1]!;
  return { id: root.id, sizeBytes: root.object.sizeBytes, objects };
}
