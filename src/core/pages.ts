// Content-defined paging of long lists (a big file's chunk list, a big directory's entries).
//
// A list is cut into pages where an entry's boundary hash matches a pattern, as prolly trees
// and bup's hashsplit do: the cut points depend on the entries themselves, not on their
// positions, so inserting or removing an entry changes only the page that holds it and the
// pages above it. Pages are grouped again the same way, level by level, until one node is
// left: that node is the file's or directory's id. An edit in a 10 GiB file therefore writes
// O(log n) small objects, not a new 150 000-entry list.
//
// Boundary hashes: a chunk or page id is already uniformly random, so its first four bytes are
// used as is; a tree entry uses a hash of its name (not of its content), so editing a file does
// not move the cut points of the directory that lists it.
import { type ObjectId } from "./id.ts";
import { LIMITS } from "./limits.ts";
import {
  isFileLeaf,
  isTreeLeaf,
  sealObject,
  type ChunkRef,
  type FileNode,
  type StructuredObject,
  type TreeEntry,
  type TreeNode,
} from "./objects.ts";

export interface SealedObject<T extends StructuredObject = StructuredObject> {
  id: ObjectId;
  bytes: Uint8Array;
  object: T;
}

/** Loads and decodes a structured object by id (from a store, a cache or a peer). */
export type ObjectLoader = (id: ObjectId) => Promise<StructuredObject>;

const BOUNDARY_MASK = (1 << LIMITS.pageEntriesAvgLog2) - 1;

function idBoundaryHash(id: Uint8Array): number {
  return (id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0;
}

const textEncoder = new TextEncoder();

/** FNV-1a over the UTF-8 bytes, then a murmur3 finalizer so the low bits are well mixed. */
export function nameBoundaryHash(name: string): number {
  let h = 0x811c9dc5 | 0;
  let ascii = true;
  // ASCII names (the common case) are their own UTF-8 bytes: hash them without encoding.
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 0x80) {
      ascii = false;
      break;
    }
    h ^= code;
    h = Math.imul(h, 0x01000193);
  }
  if (!ascii) {
    h = 0x811c9dc5 | 0;
    const bytes = textEncoder.encode(name);
    for (let i = 0; i < bytes.length; i++) {
      h ^= bytes[i]!;
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Cuts a list into runs: a run ends after an entry whose hash matches, once it holds the minimum. */
export function splitIntoPages<T>(items: readonly T[], boundaryHash: (item: T) => number): T[][] {
  const pages: T[][] = [];
  let current: T[] = [];
  for (const item of items) {
    current.push(item);
    const atPattern = (boundaryHash(item) & BOUNDARY_MASK) === 0;
    if ((atPattern && current.length >= LIMITS.pageEntriesMin) || current.length >= LIMITS.pageEntriesMax) {
      pages.push(current);
      current = [];
    }
  }
  if (current.length > 0 || pages.length === 0) pages.push(current);
  return pages;
}

/**
 * Builds a file's node tree as its chunks arrive. A leaf page is sealed as soon as its last
 * chunk is known, so memory holds one page of chunk references and one reference per page,
 * not the whole chunk list of a huge file. The result is exactly that of buildFileNodes.
 */
export class FileNodeBuilder {
  private page: ChunkRef[] = [];
  private pageBytes = 0;
  private readonly leaves: { id: ObjectId; sizeBytes: number }[] = [];
  chunkCount = 0;
  sizeBytes = 0;

  /** Adds the next chunk; returns the leaf page it completed, if it completed one. */
  add(chunk: ChunkRef): SealedObject<FileNode> | undefined {
    this.page.push(chunk);
    this.pageBytes += chunk.lengthBytes;
    this.chunkCount++;
    this.sizeBytes += chunk.lengthBytes;
    const atPattern = (idBoundaryHash(chunk.id) & BOUNDARY_MASK) === 0;
    if ((atPattern && this.page.length >= LIMITS.pageEntriesMin) || this.page.length >= LIMITS.pageEntriesMax) return this.sealPage();
    return undefined;
  }

  private sealPage(): SealedObject<FileNode> {
    const node: FileNode = { kind: "file", level: 0, sizeBytes: this.pageBytes, chunks: this.page };
    const sealed = { ...sealObject(node), object: node };
    this.leaves.push({ id: sealed.id, sizeBytes: this.pageBytes });
    this.page = [];
    this.pageBytes = 0;
    return sealed;
  }

  /** The file's one chunk when it has exactly one (its tree entry may name it directly). */
  get onlyChunk(): ChunkRef | undefined {
    return this.chunkCount === 1 && this.leaves.length === 0 ? this.page[0] : undefined;
  }

  /** The file's root node, known once `finish()` has run. */
  get rootId(): ObjectId {
    if (this.root === undefined) throw new Error("FileNodeBuilder.rootId read before finish()");
    return this.root;
  }
  private root: ObjectId | undefined;

  /**
   * Seals what is left: the last leaf (an empty file is one empty leaf) and every inner node.
   * The root is `rootId`: usually the last object returned, but when the last chunk completed
   * the file's only leaf page, `add()` already handed that leaf out and nothing is left here.
   */
  finish(): SealedObject<FileNode>[] {
    const out: SealedObject<FileNode>[] = [];
    if (this.page.length > 0 || this.leaves.length === 0) out.push(this.sealPage());
    let current = this.leaves;
    for (let level = 1; current.length > 1; level++) {
      const nodeLevel = level;
      current = splitIntoPages(current, (ref) => idBoundaryHash(ref.id)).map((page) => {
        const node: FileNode = { kind: "file", level: nodeLevel, sizeBytes: page.reduce((sum, ref) => sum + ref.sizeBytes, 0), pages: page };
        const sealed = { ...sealObject(node), object: node };
        out.push(sealed);
        return { id: sealed.id, sizeBytes: node.sizeBytes };
      });
    }
    this.root = current[0]!.id;
    return out;
  }
}

/** Builds a file's node tree from its chunk list. The last object returned is the root. */
export function buildFileNodes(chunks: readonly ChunkRef[]): SealedObject<FileNode>[] {
  const builder = new FileNodeBuilder();
  const out: SealedObject<FileNode>[] = [];
  for (const chunk of chunks) {
    const leaf = builder.add(chunk);
    if (leaf) out.push(leaf);
  }
  out.push(...builder.finish());
  return out;
}

/** Builds a directory's node tree from its entries (which must be sorted by name). The last object is the root. */
export function buildTreeNodes(entries: readonly TreeEntry[]): SealedObject<TreeNode>[] {
  const out: SealedObject<TreeNode>[] = [];
  const seal = (node: TreeNode, firstName: string) => {
    const sealed = { ...sealObject(node), object: node, firstName };
    out.push(sealed);
    return sealed;
  };
  let level = 0;
  let current = splitIntoPages(entries, (e) => nameBoundaryHash(e.name)).map((page) =>
    seal({ kind: "tree", level: 0, entries: page }, page[0]?.name ?? ""),
  );
  while (current.length > 1) {
    level++;
    const nodeLevel = level;
    current = splitIntoPages(current, (s) => idBoundaryHash(s.id)).map((page) =>
      seal({ kind: "tree", level: nodeLevel, pages: page.map((s) => ({ id: s.id, firstName: s.firstName })) }, page[0]!.firstName),
    );
  }
  return out.map(({ id, bytes, object }) => ({ id, bytes, object }));
}

function expectKind<K extends StructuredObject["kind"]>(object: StructuredObject, kind: K, id: ObjectId): Extract<StructuredObject, { kind: K }> {
  if (object.kind !== kind) throw new Error(`object ${Buffer.from(id).toString("hex")} is a ${object.kind}, expected a ${kind}`);
  return object as Extract<StructuredObject, { kind: K }>;
}

/**
 * Every chunk of a file, in order, loading pages as needed. The pages of one level are asked
 * for together, so a loader that batches (a remote one) makes one round trip per level.
 */
export async function readFileChunks(rootId: ObjectId, load: ObjectLoader): Promise<ChunkRef[]> {
  const visit = async (id: ObjectId, depth: number): Promise<ChunkRef[]> => {
    if (depth > 32) throw new Error("file node tree too deep");
    const node = expectKind(await load(id), "file", id);
    if (isFileLeaf(node)) return node.chunks;
    return (await Promise.all(node.pages.map((page) => visit(page.id, depth + 1)))).flat();
  };
  // A copy: callers may change the list, and a loader may hand out cached objects.
  return [...(await visit(rootId, 0))];
}

/** What a tree entry says of a file's content: its id, and whether that id names its one chunk. */
export type FileContentRef = Pick<TreeEntry, "id" | "sizeBytes" | "idNamesChunk">;

/**
 * Every chunk of a file entry, in order: its one chunk when the entry names it directly (no
 * load), else its file node's chunks (readFileChunks).
 */
export async function readEntryChunks(entry: FileContentRef, load: ObjectLoader): Promise<ChunkRef[]> {
  if (entry.id === null) throw new Error("a file entry without an id");
  if (entry.idNamesChunk) return [{ id: entry.id, lengthBytes: entry.sizeBytes }];
  return readFileChunks(entry.id, load);
}

/** fileChunkPages for a file entry: one page of its one chunk when the entry names it directly. */
export async function* entryChunkPages(entry: FileContentRef, load: ObjectLoader): AsyncGenerator<readonly ChunkRef[]> {
  if (entry.id === null) throw new Error("a file entry without an id");
  if (entry.idNamesChunk) {
    yield [{ id: entry.id, lengthBytes: entry.sizeBytes }];
    return;
  }
  yield* fileChunkPages(entry.id, load);
}

/**
 * A file's chunks in order, one leaf page at a time: memory holds one page per level of the
 * file's node tree, never the whole list (a 10 GiB file has some 160 000 chunks).
 */
export async function* fileChunkPages(rootId: ObjectId, load: ObjectLoader): AsyncGenerator<readonly ChunkRef[]> {
  async function* visit(id: ObjectId, depth: number): AsyncGenerator<readonly ChunkRef[]> {
    if (depth > 32) throw new Error("file node tree too deep");
    const node = expectKind(await load(id), "file", id);
    if (isFileLeaf(node)) {
      yield node.chunks;
      return;
    }
    for (const page of node.pages) yield* visit(page.id, depth + 1);
  }
  yield* visit(rootId, 0);
}

/** Every entry of a directory, in name order, loading pages as needed (one level at a time, as above). */
export async function readTreeEntries(rootId: ObjectId, load: ObjectLoader): Promise<TreeEntry[]> {
  const visit = async (id: ObjectId, depth: number): Promise<TreeEntry[]> => {
    if (depth > 32) throw new Error("tree node tree too deep");
    const node = expectKind(await load(id), "tree", id);
    if (isTreeLeaf(node)) return node.entries;
    return (await Promise.all(node.pages.map((page) => visit(page.id, depth + 1)))).flat();
  };
  return [...(await visit(rootId, 0))];
}
