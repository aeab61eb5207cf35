// The deterministic merge of concurrent versions, as replication makes it.
//
// A folder's history is a graph of versions. Writes (a push, a restore, a node's merge of a
// stale push) carry their author's dot in the version vector; a replication merge carries none
// and has author "" (see version-vector.ts). When a node learns of a version concurrent with
// its head, the new head is the merge of the *write frontier*: the writes covered by either
// side that no other covered write has seen. The merge is a function of that set alone:
//
// 1. Sort the frontier by stamp (HLC wall time, HLC counter, author node id, version id),
//    oldest first.
// 2. Fold: start from the oldest write's tree; merge each next write in three ways, with the
//    best common ancestor of that write and the writes already folded in as the base
//    (maximal among common ancestors; ties broken by the greater stamp).
// 3. Where both sides changed a path, the later write (the one being folded in) keeps the
//    name; the earlier content is kept beside it as "name.sync-conflict-<time>-<node>.ext",
//    named after the newest folded write that holds exactly that content. A modification beats
//    a deletion. A path one side has and the other did not delete is always kept.
// 4. The merge version: parents = the frontier (sorted by id), author "", stamp and chunking of
//    the newest frontier write, vector = the join of the parents' vectors, fixed message.
//
// Nodes that hold the same versions therefore build the same merge, byte for byte, whatever
// order the versions reached them in. Pure: the graph and the objects come in as loaders.
import { compareNames, decodeObject, type TreeEntry, type Version } from "./objects.ts";
import { TreeLookup } from "./tree-lookup.ts";
import { conflictCopyName } from "./conflict-name.ts";
import { entriesEqual } from "./diff.ts";
import { idToHex, type ObjectId } from "./id.ts";
import { LIMITS } from "./limits.ts";
import { mergeTrees, type ConflictResolver, type MergeConflict } from "./merge.ts";
import { readTreeEntries, type ObjectLoader, type SealedObject } from "./pages.ts";
import { compareVectors, coversDot, counterOf, joinVectors } from "./version-vector.ts";

export interface KnownVersion {
  id: ObjectId;
  version: Version;
}

/** The version graph as far as this node knows it: undefined for a version it does not hold. */
export type VersionLookup = (id: ObjectId) => Promise<KnownVersion | undefined>;

export const MERGE_AUTHOR = "";

export function isReplicationMerge(version: Version): boolean {
  return version.author === MERGE_AUTHOR;
}

/** Total order on versions: HLC wall time, HLC counter, author, then id bytes. */
export function compareStamps(a: KnownVersion, b: KnownVersion): number {
  const x = a.version;
  const y = b.version;
  if (x.hlcWallMs !== y.hlcWallMs) return x.hlcWallMs - y.hlcWallMs;
  if (x.hlcCounter !== y.hlcCounter) return x.hlcCounter - y.hlcCounter;
  const byAuthor = compareNames(x.author, y.author);
  if (byAuthor !== 0) return byAuthor;
  return Buffer.compare(a.id, b.id);
}

/** A write's own dot: its author and the counter it gave itself. */
function dotOf(write: KnownVersion): { node: string; counter: number } {
  return { node: write.version.author, counter: counterOf(write.version.versionVector, write.version.author) };
}

/**
 * The writes behind some heads that no other of them has seen. A replication merge stands for
 * its parents, unless the graph lacks one of them (pruned by retention here, or never sent by a
 * peer that had pruned it): the merge then stands for itself, since only its own tree and
 * vector still hold what that parent brought.
 */
export async function writeFrontier(heads: readonly KnownVersion[], lookup: VersionLookup): Promise<KnownVersion[]> {
  const writes = new Map<string, KnownVersion>();
  const expand = async (item: KnownVersion, depth: number): Promise<void> => {
    if (!isReplicationMerge(item.version)) {
      writes.set(idToHex(item.id), item);
      return;
    }
    if (depth > LIMITS.versionParentsMax) throw new Error("replication merges nested too deep");
    const parents: KnownVersion[] = [];
    for (const parent of item.version.parents) {
      const known = await lookup(parent);
      if (!known) {
        writes.set(idToHex(item.id), item);
        return;
      }
      parents.push(known);
    }
    for (const parent of parents) await expand(parent, depth + 1);
  };
  for (const head of heads) await expand(head, 0);
  const all = [...writes.values()];
  return all.filter((w) => !all.some((other) => other !== w && hasSeen(other, w))).sort(compareStamps);
}

/**
 * Whether frontier candidate `other` has seen everything `w` stands for. Between writes: its
 * vector covers w's dot. Where a merge stands for itself: its vector covers the other's, and
 * between equal vectors a write is kept over a merge, and the greater id among merges.
 */
function hasSeen(other: KnownVersion, w: KnownVersion): boolean {
  if (!isReplicationMerge(other.version) && !isReplicationMerge(w.version)) {
    const dot = dotOf(w);
    return coversDot(other.version.versionVector, dot.node, dot.counter) && !isSameDot(other, w);
  }
  const order = compareVectors(other.version.versionVector, w.version.versionVector);
  if (order === "after") return true;
  if (order !== "equal") return false;
  if (!isReplicationMerge(w.version)) return false;
  return !isReplicationMerge(other.version) || Buffer.compare(other.id, w.id) > 0;
}

function isSameDot(a: KnownVersion, b: KnownVersion): boolean {
  const x = dotOf(a);
  const y = dotOf(b);
  return x.node === y.node && x.counter === y.counter;
}

/** Every version reachable from `starts` through parents, the starts included. */
async function ancestry(starts: readonly KnownVersion[], lookup: VersionLookup): Promise<Map<string, KnownVersion>> {
  const seen = new Map<string, KnownVersion>();
  let frontier = [...starts];
  while (frontier.length > 0) {
    const next: KnownVersion[] = [];
    for (const item of frontier) {
      const key = idToHex(item.id);
      if (seen.has(key)) continue;
      seen.set(key, item);
      for (const parent of item.version.parents) {
        if (seen.has(idToHex(parent))) continue;
        const known = await lookup(parent);
        if (known) next.push(known);
      }
    }
    frontier = next;
  }
  return seen;
}

/**
 * The best common ancestor of `one` and any of `others`: among versions that are ancestors of
 * both, one no other common ancestor descends from, the greatest stamp on a tie. Null when the
 * histories share nothing this node knows of.
 */
export async function bestCommonAncestor(others: readonly KnownVersion[], one: KnownVersion, lookup: VersionLookup): Promise<KnownVersion | null> {
  const [mine, theirs] = await Promise.all([ancestry([one], lookup), ancestry(others, lookup)]);
  const common = [...mine.entries()].filter(([key]) => theirs.has(key)).map(([, v]) => v);
  if (common.length === 0) return null;
  // An ancestor of a common ancestor is a common ancestor too, so this walk stays inside `mine`.
  const below = new Set<string>();
  let frontier = common.flatMap((v) => v.version.parents.map(idToHex));
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const key of frontier) {
      if (below.has(key)) continue;
      below.add(key);
      const known = mine.get(key);
      if (known) next.push(...known.version.parents.map(idToHex));
    }
    frontier = next;
  }
  const maximal = common.filter((v) => !below.has(idToHex(v.id)));
  return maximal.sort(compareStamps).at(-1)!;
}

export interface ConcurrentMergeResult {
  /** The merge version's fields (seal it to get its id). */
  version: Version;
  root: ObjectId;
  /** Tree nodes the merge built, children first. */
  newObjects: SealedObject[];
  conflicts: MergeConflict[];
  frontier: KnownVersion[];
}

/**
 * Merges heads that are pairwise concurrent. Returns `{ single }` when their write frontier is a
 * single write (one side already has everything the other has): that write is the result.
 */
export async function mergeConcurrent(heads: readonly KnownVersion[], lookup: VersionLookup, load: ObjectLoader): Promise<ConcurrentMergeResult | { single: KnownVersion }> {
  const frontier = await writeFrontier(heads, lookup);
  if (frontier.length === 0) throw new Error("nothing to merge");
  if (frontier.length === 1) return { single: frontier[0]! };
  if (frontier.length > LIMITS.versionParentsMax) {
    throw new Error(`${frontier.length} concurrent writes, more than a version may name (${LIMITS.versionParentsMax})`);
  }
  let root = frontier[0]!.version.root;
  const newObjects: SealedObject[] = [];
  // Each step reads the tree the step before it built, which is not stored yet.
  const built = new Map<string, SealedObject>();
  const loadBuiltOrStored: ObjectLoader = async (id) => {
    const own = built.get(idToHex(id));
    return own ? decodeObject(own.bytes) : load(id);
  };
  const conflicts: MergeConflict[] = [];
  for (let i = 1; i < frontier.length; i++) {
    const folded = frontier.slice(0, i);
    const incoming = frontier[i]!;
    const base = await bestCommonAncestor(folded, incoming, lookup);
    const step = await mergeTrees({
      base: base?.version.root ?? null,
      ours: root,
      theirs: incoming.version.root,
      load: loadBuiltOrStored,
      resolveConflict: keepLoserBeside(folded, load),
    });
    root = step.root;
    newObjects.push(...step.newObjects);
    for (const object of step.newObjects) built.set(idToHex(object.id), object);
    conflicts.push(...step.conflicts);
  }
  const newest = frontier.at(-1)!.version;
  const version: Version = {
    kind: "version",
    root,
    parents: frontier.map((v) => v.id).sort((a, b) => Buffer.compare(a, b)),
    author: MERGE_AUTHOR,
    hlcWallMs: newest.hlcWallMs,
    hlcCounter: newest.hlcCounter,
    message: `merge of ${frontier.length} concurrent versions`,
    versionVector: joinVectors(...frontier.map((v) => v.version.versionVector)),
    chunking: newest.chunking,
  };
  return { version, root, newObjects, conflicts, frontier };
}

/**
 * The resolver both merges use: the incoming side (theirs, the later write) keeps the name, and
 * our entry is kept beside it as a conflict copy named after the newest of `writers` whose
 * tree holds exactly that entry (the last of them when none does).
 */
export function keepLoserBeside(writers: readonly KnownVersion[], load: ObjectLoader): ConflictResolver {
  // The writers' trees are stored; each is read only as far as conflicted paths lead.
  const lookups = writers.map((w) => new TreeLookup(w.version.root, load));
  return async (path, ours, theirs) => {
    let writer = writers.at(-1)!;
    for (let i = writers.length - 1; i >= 0; i--) {
      if (entriesEqual((await lookups[i]!.entryAt(path)) ?? null, ours)) {
        writer = writers[i]!;
        break;
      }
    }
    const who = writer.version.author === MERGE_AUTHOR ? "merge" : writer.version.author;
    const copy: TreeEntry = { ...ours, name: conflictCopyName(ours.name, writer.version.hlcWallMs, who) };
    return { keep: theirs, extra: [copy] };
  };
}

/** A resolver for merging a push onto a head: the loser is named after the head's writers. */
export async function headLoserResolver(head: KnownVersion, lookup: VersionLookup, load: ObjectLoader): Promise<ConflictResolver> {
  // A replication merge stands for its parents: the content came from one of them.
  const writers = isReplicationMerge(head.version) ? await writeFrontier([head], lookup) : [head];
  return keepLoserBeside(writers.length > 0 ? writers : [head], load);
}

