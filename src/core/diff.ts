// Comparing two directory trees through their Merkle structure.
//
// Equal ids mean equal contents, so the walk never enters a subdirectory, a directory page or a
// file page whose id is the same on both sides. The number of objects it loads grows with the
// number of changes times the depth of the tree, not with the size of the tree.
//
// What counts as a change (entriesEqual):
// - same kind, id, mode and symlink target: equal. The mtime is ignored unless asked for:
//   a scanner or a copy can touch mtimes without changing anything a user can read, and a user
//   who asks "what differs?" expects silence when contents and modes match. A file entry in
//   the other form of the same bytes (named by its one chunk on one side, by a file node of
//   that one chunk on the other: tree formats 1 and 2) is equal too, after loading that node.
// - a directory is reported as modified only for its own mode (or mtime, when asked); a change
//   below it shows up as the changed paths below it, not as the directory itself.
// - a directory that exists on one side only is reported as that directory AND every path under
//   it, so `added`/`removed` list every path that appears or disappears. collapseDirectories
//   reports the directory alone and does not load what is under it.
// - a kind change (file -> dir, dir -> symlink, ...) is in `typeChanged`; what is under a
//   directory on one side of it is listed in added/removed, as for a one-sided directory.
//
// Paths are '/'-joined and sorted in tree order: component by component, so a directory comes
// right before everything under it.
import { idEquals, idToHex, type ObjectId } from "./id.ts";
import { LIMITS } from "./limits.ts";
import { compareNames, isFileLeaf, isTreeLeaf, type ChunkRef, type FileLeaf, type StructuredObject, type TreeEntry, type TreeLeaf } from "./objects.ts";
import { readTreeEntries, type ObjectLoader } from "./pages.ts";

export interface DiffEntry {
  /** '/'-joined path relative to the compared roots. */
  path: string;
  /** The entry on side a; null when the path does not exist there. */
  before: TreeEntry | null;
  /** The entry on side b; null when the path does not exist there. */
  after: TreeEntry | null;
}

export interface TreeDiff {
  added: DiffEntry[];
  removed: DiffEntry[];
  /** Same kind on both sides, different content, mode or target (or mtime, with compareMtime). */
  modified: DiffEntry[];
  /** A different kind on each side (file, dir, symlink). */
  typeChanged: DiffEntry[];
}

export interface DiffOptions {
  /** Report a directory present on one side only as that one path, without loading or listing what is under it. Default false. */
  collapseDirectories?: boolean;
  /** Count a difference in mtime alone as a modification. Default false. */
  compareMtime?: boolean;
}

// ---------- entries and paths ----------

/** Whether two entries (either may be absent) are the same content: kind, id, mode, target, and mtime when asked. */
export function entriesEqual(x: TreeEntry | null, y: TreeEntry | null, options: { compareMtime?: boolean } = {}): boolean {
  if (x === null || y === null) return x === y;
  if (x.kind !== y.kind || x.mode !== y.mode || x.target !== y.target) return false;
  if (options.compareMtime && x.mtimeMs !== y.mtimeMs) return false;
  if (x.id === null || y.id === null) return x.id === y.id;
  if ((x.idNamesChunk === true) !== (y.idNamesChunk === true)) return false;
  return idEquals(x.id, y.id);
}

/**
 * Two file entries alike but for the form of their id (one names its one chunk, the other its
 * file node, as a tree of format 1 and one of format 2 may for the same bytes): sameFileContent
 * says whether they hold the same bytes.
 */
export function differOnlyInForm(x: TreeEntry, y: TreeEntry, options: { compareMtime?: boolean } = {}): boolean {
  if (x.kind !== "file" || y.kind !== "file" || (x.idNamesChunk === true) === (y.idNamesChunk === true)) return false;
  if (x.mode !== y.mode || x.sizeBytes !== y.sizeBytes) return false;
  return !options.compareMtime || x.mtimeMs === y.mtimeMs;
}

/** Whether a file named by its one chunk and one named by its file node hold the same bytes: the node is a single leaf of that chunk. */
export async function sameFileContent(x: TreeEntry, y: TreeEntry, load: ObjectLoader): Promise<boolean> {
  const [single, node] = x.idNamesChunk ? [x, y] : [y, x];
  const object = await load(node.id!);
  if (object.kind !== "file" || !isFileLeaf(object) || object.chunks.length !== 1) return false;
  return idEquals(object.chunks[0]!.id, single.id!);
}

export function joinPath(prefix: string, name: string): string {
  return prefix === "" ? name : `${prefix}/${name}`;
}

// '/' is mapped below every byte a name can hold (names never contain NUL), so plain byte order
// on the key is component-by-component order: "a" < "a/b" < "a-c".
function pathSortKey(path: string): Buffer {
  const key = Buffer.from(path);
  for (let i = 0; i < key.length; i++) if (key[i] === 0x2f) key[i] = 0;
  return key;
}

/** Tree order of '/'-joined paths: component by component, each compared as names are. */
export function comparePaths(x: string, y: string): number {
  return Buffer.compare(pathSortKey(x), pathSortKey(y));
}

/** Sorts items by a path in tree order. */
export function sortByPath<T>(items: readonly T[], pathOf: (item: T) => string): T[] {
  const keyed = items.map((item) => ({ item, key: pathSortKey(pathOf(item)) }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  return keyed.map((k) => k.item);
}

// ---------- the shared-page descent ----------

interface Slot {
  key: string;
  id: ObjectId;
  /** The level the parent says this node has; undefined for roots. */
  expectedLevel: number | undefined;
  node: (StructuredObject & { level: number; kind: "file" | "tree" }) | undefined;
}

function uniqueSlots(slots: readonly Slot[]): Slot[] {
  const seen = new Set<string>();
  return slots.filter((slot) => {
    if (seen.has(slot.key)) return false;
    seen.add(slot.key);
    return true;
  });
}

function makeSlot(id: ObjectId, expectedLevel: number | undefined): Slot {
  return { key: idToHex(id), id, expectedLevel, node: undefined };
}

export function unsharedLeaves(kind: "tree", rootsA: readonly ObjectId[], rootsB: readonly ObjectId[], load: ObjectLoader): Promise<{ a: TreeLeaf[]; b: TreeLeaf[] }>;
export function unsharedLeaves(kind: "file", rootsA: readonly ObjectId[], rootsB: readonly ObjectId[], load: ObjectLoader): Promise<{ a: FileLeaf[]; b: FileLeaf[] }>;
/**
 * The level-0 nodes (leaves) under rootsA and rootsB that are not shared with the other side,
 * loading only nodes that are not shared.
 *
 * Nodes are expanded from the highest level down, and at each level the ids present on both
 * sides are dropped before anything below them is loaded. An id names one node at one level,
 * so by the time level n is compared, every level-n node of either side that is not inside a
 * node already dropped as shared is present. For directories this is exact: a name found in a
 * leaf of one side cannot also sit in a shared page of the other, because names in a tree are
 * unique and a shared page is in both trees. For files (whose chunk lists may repeat pages) it
 * is exact as sets of leaves. Leaves come back in list order when each side has one root.
 */
export async function unsharedLeaves(
  kind: "tree" | "file",
  rootsA: readonly ObjectId[],
  rootsB: readonly ObjectId[],
  load: ObjectLoader,
): Promise<{ a: (TreeLeaf | FileLeaf)[]; b: (TreeLeaf | FileLeaf)[] }> {
  let a = uniqueSlots(rootsA.map((id) => makeSlot(id, undefined)));
  let b = uniqueSlots(rootsB.map((id) => makeSlot(id, undefined)));
  for (let round = 0; ; round++) {
    // Levels go down by one per round and the decoder caps them at 32; more rounds mean a broken graph.
    if (round > 40) throw new Error(`${kind} pages nested deeper than the format allows`);
    const keysA = new Set(a.map((s) => s.key));
    const keysB = new Set(b.map((s) => s.key));
    a = a.filter((s) => !keysB.has(s.key));
    b = b.filter((s) => !keysA.has(s.key));
    await Promise.all(
      [...a, ...b]
        .filter((slot) => slot.node === undefined)
        .map(async (slot) => {
          const object = await load(slot.id);
          if (object.kind !== kind) throw new Error(`object ${slot.key} is a ${object.kind}, expected a ${kind}`);
          if (slot.expectedLevel !== undefined && object.level !== slot.expectedLevel) {
            throw new Error(`${kind} page ${slot.key} has level ${object.level}, its parent expects ${slot.expectedLevel}`);
          }
          slot.node = object;
        }),
    );
    let top = 0;
    for (const slot of a) top = Math.max(top, slot.node!.level);
    for (const slot of b) top = Math.max(top, slot.node!.level);
    if (top === 0) break;
    const expand = (slots: Slot[]): Slot[] =>
      uniqueSlots(
        slots.flatMap((slot) => {
          const node = slot.node!;
          if (node.level !== top) return [slot];
          if (isInner(node)) return node.pages.map((page) => makeSlot(page.id, top - 1));
          return [slot];
        }),
      );
    a = expand(a);
    b = expand(b);
  }
  return { a: a.map((s) => s.node as TreeLeaf | FileLeaf), b: b.map((s) => s.node as TreeLeaf | FileLeaf) };
}

function isInner(node: StructuredObject): node is StructuredObject & { pages: { id: ObjectId }[] } {
  return (node.kind === "tree" && !isTreeLeaf(node)) || (node.kind === "file" && !isFileLeaf(node));
}

// ---------- the diff ----------

/**
 * Compares directory trees a and b (null: an empty directory) and lists what changed from a
 * to b. `before` is always a's entry and `after` b's.
 */
export async function diffTrees(a: ObjectId | null, b: ObjectId | null, load: ObjectLoader, options: DiffOptions = {}): Promise<TreeDiff> {
  const out: TreeDiff = { added: [], removed: [], modified: [], typeChanged: [] };
  const collapse = options.collapseDirectories ?? false;

  const listOneSided = async (prefix: string, treeId: ObjectId, side: "added" | "removed", depth: number): Promise<void> => {
    if (depth > LIMITS.treeDepthMax) throw new Error(`tree deeper than ${LIMITS.treeDepthMax} levels at ${JSON.stringify(prefix)}`);
    const entries = await readTreeEntries(treeId, load);
    const below: Promise<void>[] = [];
    for (const entry of entries) {
      const path = joinPath(prefix, entry.name);
      out[side].push(side === "added" ? { path, before: null, after: entry } : { path, before: entry, after: null });
      if (entry.kind === "dir") below.push(listOneSided(path, entry.id!, side, depth + 1));
    }
    await Promise.all(below);
  };

  const oneSided = (path: string, entry: TreeEntry, side: "added" | "removed", depth: number): Promise<void> | undefined => {
    out[side].push(side === "added" ? { path, before: null, after: entry } : { path, before: entry, after: null });
    if (entry.kind === "dir" && !collapse) return listOneSided(path, entry.id!, side, depth + 1);
    return undefined;
  };

  const compareDirectories = async (prefix: string, idA: ObjectId | null, idB: ObjectId | null, depth: number): Promise<void> => {
    if (idA !== null && idB !== null && idEquals(idA, idB)) return;
    if (depth > LIMITS.treeDepthMax) throw new Error(`tree deeper than ${LIMITS.treeDepthMax} levels at ${JSON.stringify(prefix)}`);
    const leaves = await unsharedLeaves("tree", idA ? [idA] : [], idB ? [idB] : [], load);
    const entriesA = leaves.a.flatMap((leaf) => leaf.entries);
    const entriesB = leaves.b.flatMap((leaf) => leaf.entries);
    const below: (Promise<void> | undefined)[] = [];
    let i = 0;
    let j = 0;
    while (i < entriesA.length || j < entriesB.length) {
      const x = entriesA[i];
      const y = entriesB[j];
      const order = x === undefined ? 1 : y === undefined ? -1 : compareNames(x.name, y.name);
      if (order < 0) {
        below.push(oneSided(joinPath(prefix, x!.name), x!, "removed", depth));
        i++;
        continue;
      }
      if (order > 0) {
        below.push(oneSided(joinPath(prefix, y!.name), y!, "added", depth));
        j++;
        continue;
      }
      i++;
      j++;
      const path = joinPath(prefix, x!.name);
      if (x!.kind !== y!.kind) {
        out.typeChanged.push({ path, before: x!, after: y! });
        if (!collapse && x!.kind === "dir") below.push(listOneSided(path, x!.id!, "removed", depth + 1));
        if (!collapse && y!.kind === "dir") below.push(listOneSided(path, y!.id!, "added", depth + 1));
        continue;
      }
      if (x!.kind === "dir") {
        // A directory's id changes with anything below it; only its own metadata makes it "modified".
        if (x!.mode !== y!.mode || (options.compareMtime && x!.mtimeMs !== y!.mtimeMs)) out.modified.push({ path, before: x!, after: y! });
        below.push(compareDirectories(path, x!.id!, y!.id!, depth + 1));
        continue;
      }
      if (entriesEqual(x!, y!, options)) continue;
      const change = { path, before: x!, after: y! };
      // The same bytes in the two forms of a file entry are no change.
      if (differOnlyInForm(x!, y!, options)) below.push(sameFileContent(x!, y!, load).then((same) => void (same || out.modified.push(change))));
      else out.modified.push(change);
    }
    await Promise.all(below);
  };

  await compareDirectories("", a, b, 0);
  return {
    added: sortByPath(out.added, (e) => e.path),
    removed: sortByPath(out.removed, (e) => e.path),
    modified: sortByPath(out.modified, (e) => e.path),
    typeChanged: sortByPath(out.typeChanged, (e) => e.path),
  };
}

// ---------- the chunks one side lacks ----------

export interface ChunkSet {
  /** Sorted by id. */
  chunks: ChunkRef[];
  totalBytes: number;
}

export interface MissingChunks {
  /** Chunks that b's added or changed files reference and a's removed or changed files do not: what a needs to become b. */
  missingInA: ChunkSet;
  /** The same the other way: what b needs to become a. */
  missingInB: ChunkSet;
}

/**
 * The chunks each side lacks, found by comparing only the files the diff names: every file on a
 * that was removed, modified or replaced, against every file on b that was added, modified or
 * replaced. File pages shared by the two sides are skipped as in unsharedLeaves, so a small edit
 * to a huge file loads a few pages, and a file that moved keeps its id and costs nothing.
 *
 * Never too small: a chunk left out is one a provably has (it is in one of a's changed files).
 * It may be too large: a chunk that a holds only in an unchanged file, or only in a file page
 * shared with b, is still listed. It is the list to ask a store "which of these do you lack?".
 *
 * `known`: diffTrees(a, b, load) with the default options, when the caller has already
 * computed it (the result is the same; the trees are not walked a second time).
 */
export async function missingChunks(a: ObjectId | null, b: ObjectId | null, load: ObjectLoader, known?: TreeDiff): Promise<MissingChunks> {
  const diff = known ?? (await diffTrees(a, b, load));
  const filesA: ObjectId[] = [];
  const filesB: ObjectId[] = [];
  // Files whose entries name their one chunk have no node to load: the chunk is the entry's.
  const singleA: ChunkRef[] = [];
  const singleB: ChunkRef[] = [];
  for (const list of [diff.added, diff.removed, diff.modified, diff.typeChanged]) {
    for (const { before, after } of list) {
      if (before?.kind === "file") before.idNamesChunk ? singleA.push({ id: before.id!, lengthBytes: before.sizeBytes }) : filesA.push(before.id!);
      if (after?.kind === "file") after.idNamesChunk ? singleB.push({ id: after.id!, lengthBytes: after.sizeBytes }) : filesB.push(after.id!);
    }
  }
  const leaves = await unsharedLeaves("file", filesA, filesB, load);
  const chunksA = chunkMap(leaves.a);
  const chunksB = chunkMap(leaves.b);
  for (const chunk of singleA) chunksA.set(idToHex(chunk.id), chunk);
  for (const chunk of singleB) chunksB.set(idToHex(chunk.id), chunk);
  return { missingInA: difference(chunksB, chunksA), missingInB: difference(chunksA, chunksB) };
}

function chunkMap(leaves: readonly FileLeaf[]): Map<string, ChunkRef> {
  const map = new Map<string, ChunkRef>();
  for (const leaf of leaves) for (const chunk of leaf.chunks) map.set(idToHex(chunk.id), chunk);
  return map;
}

function difference(from: Map<string, ChunkRef>, minus: Map<string, ChunkRef>): ChunkSet {
  const keys = [...from.keys()].filter((key) => !minus.has(key)).sort();
  const chunks = keys.map((key) => from.get(key)!);
  return { chunks, totalBytes: chunks.reduce((sum, c) => sum + c.lengthBytes, 0) };
}
