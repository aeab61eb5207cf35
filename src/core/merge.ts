// Three-way merge of directory trees.
//
// Path by path, with base the common ancestor (null: none, as if it were an empty directory):
// 1. ours and theirs equal (kind, id, mode, target): take it — theirs, so its mtime wins.
// 2. one side unchanged from base: take the other side, a deletion included.
// 3. both changed:
//    - two directories: merge them recursively, base's entry as the base if it was a directory;
//    - two files or two symlinks, base of the same kind, and content (id or target) changed on
//      one side only and mode on one side only: combine them, no conflict (a chmod on one side
//      and an edit on the other are two compatible changes);
//    - one side deleted, the other modified: the modification stays, because a deletion must
//      never destroy a concurrent modification. Conflict "modify-delete". When both were
//      directories the deletion still applies to everything below that the other side left
//      untouched: the directory is merged against an empty one, and it is kept only if
//      something survives (or the other side changed its mode);
//    - anything else: resolveConflict(path, ours, theirs, base) decides. The default keeps
//      theirs: the server merges an incoming push as theirs onto its current head as ours, so
//      theirs is the later writer. Conflict "both-modified" or "both-added", naming the loser
//      so the overwritten content stays findable in history.
// "Unchanged" compares content and mode, not mtime: touching a file is not a change.
// Directory modes are merged three-way; when both sides changed one, theirs wins, unreported.
//
// A resolver may return extra entries to put beside the path (a later mode keeps the loser as
// "name.sync-conflict-<time>-<node>.ext"). Extras are placed after every regular entry of the
// directory is decided, so they never displace one. An extra whose name is taken is dropped if
// it equals the entry already there, and otherwise renamed "stem-1.ext", "stem-2.ext", ...: the
// first free name, the stem shortened if needed to stay within the name limit.
//
// Deterministic: the result depends only on the three trees and the resolver, never on loading
// order. Directories are walked in name order one at a time, so the resolver sees conflicts in
// tree order. Rebuilt directories go through sealTree (sorted, canonical pages); a directory
// that one rule takes whole keeps its id and is not loaded. A directory changed on both sides
// is read in full on all three sides, since its new pages are built from the whole list.
import { comparePaths, differOnlyInForm, entriesEqual, joinPath, sameFileContent } from "./diff.ts";
import { idEquals, idToHex, type ObjectId } from "./id.ts";
import { LIMITS } from "./limits.ts";
import { validateName } from "./names.ts";
import { compareNames, type TreeEntry } from "./objects.ts";
import { readTreeEntries, type ObjectLoader, type SealedObject } from "./pages.ts";
import { sealTree } from "./tree-builder.ts";

export type ConflictKind = "modify-delete" | "both-modified" | "both-added";

export interface ConflictResolution {
  /** The entry to put at the path (its name must be the path's name), or null to delete it. */
  keep: TreeEntry | null;
  /** Entries to add beside it in the same directory. */
  extra?: TreeEntry[];
}

export type ConflictResolver = (
  path: string,
  ours: TreeEntry,
  theirs: TreeEntry,
  base: TreeEntry | null,
) => ConflictResolution | Promise<ConflictResolution>;

export interface MergeConflict {
  path: string;
  kind: ConflictKind;
  base: TreeEntry | null;
  ours: TreeEntry | null;
  theirs: TreeEntry | null;
  /** Whose entry now stands at path: a side, "none" when it was deleted, "other" for a resolver's own entry. */
  winner: "ours" | "theirs" | "none" | "other";
  /** The entry at path after the merge. */
  kept: TreeEntry | null;
  /** Entries of ours and theirs no longer at path; their ids stay reachable through the merged versions' parents. */
  losers: TreeEntry[];
  /** Paths where the resolver's extra entries ended up, after renaming away collisions. */
  extraPaths: string[];
}

export interface MergeInput {
  base: ObjectId | null;
  ours: ObjectId;
  theirs: ObjectId;
  load: ObjectLoader;
  resolveConflict?: ConflictResolver;
}

export interface MergeResult {
  root: ObjectId;
  /** Every tree node the merge built that it did not load, children before parents: store them in this order. */
  newObjects: SealedObject[];
  /** In tree order of their paths. */
  conflicts: MergeConflict[];
}

/** The default resolver: theirs, the later writer, wins. */
export const theirsWins: ConflictResolver = (_path, _ours, theirs) => ({ keep: theirs });

export async function mergeTrees(input: MergeInput): Promise<MergeResult> {
  const run = new MergeRun(input.load, input.resolveConflict ?? theirsWins);
  const root = await run.mergeDirectory("", input.base, input.ours, input.theirs, 0);
  return { root, newObjects: run.newObjects, conflicts: run.conflicts() };
}

interface EntryOutcome {
  entry: TreeEntry | null;
  extra?: TreeEntry[];
  conflict?: MergeConflict;
}

class MergeRun {
  readonly newObjects: SealedObject[] = [];
  /** Ids of objects already stored somewhere: loaded by this merge, or already emitted by it. */
  private readonly known = new Set<string>();
  private readonly found: MergeConflict[] = [];
  private readonly load: ObjectLoader;

  constructor(
    load: ObjectLoader,
    private readonly resolve: ConflictResolver,
  ) {
    this.load = async (id) => {
      this.known.add(idToHex(id));
      return load(id);
    };
  }

  conflicts(): MergeConflict[] {
    // Stable: a directory's own conflict is found after its children's, tree order puts it first.
    const keyed = this.found.map((conflict, index) => ({ conflict, index }));
    keyed.sort((x, y) => comparePaths(x.conflict.path, y.conflict.path) || x.index - y.index);
    return keyed.map((k) => k.conflict);
  }

  /** Merges three versions of a directory (base null: none, an empty directory) and seals the result. */
  async mergeDirectory(path: string, base: ObjectId | null, ours: ObjectId, theirs: ObjectId, depth: number): Promise<ObjectId> {
    // The rules applied to the whole directory: equal ids need no loading and keep their id.
    if (idEquals(ours, theirs)) return theirs;
    if (base !== null && idEquals(base, ours)) return theirs;
    if (base !== null && idEquals(base, theirs)) return ours;
    return this.seal(await this.mergeEntries(path, base, ours, theirs, depth));
  }

  /** The merged entries of a directory, in any order. */
  private async mergeEntries(path: string, base: ObjectId | null, ours: ObjectId | null, theirs: ObjectId | null, depth: number): Promise<TreeEntry[]> {
    if (depth > LIMITS.treeDepthMax) throw new Error(`tree deeper than ${LIMITS.treeDepthMax} levels at ${JSON.stringify(path)}`);
    // Two sides may name the same directory (a side that changed only the directory's mode): read it once.
    const reads = new Map<string, Promise<TreeEntry[]>>();
    const list = (id: ObjectId | null): Promise<TreeEntry[]> => {
      if (id === null) return Promise.resolve([]);
      const key = idToHex(id);
      if (!reads.has(key)) reads.set(key, readTreeEntries(id, this.load));
      return reads.get(key)!;
    };
    const [baseEntries, ourEntries, theirEntries] = await Promise.all([list(base), list(ours), list(theirs)]);
    const merged: TreeEntry[] = [];
    const pendingExtras: { extra: TreeEntry[]; conflict: MergeConflict }[] = [];
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < baseEntries.length || j < ourEntries.length || k < theirEntries.length) {
      let name: string | undefined;
      for (const candidate of [baseEntries[i], ourEntries[j], theirEntries[k]]) {
        if (candidate && (name === undefined || compareNames(candidate.name, name) < 0)) name = candidate.name;
      }
      const b = baseEntries[i]?.name === name ? baseEntries[i++]! : null;
      const o = ourEntries[j]?.name === name ? ourEntries[j++]! : null;
      const t = theirEntries[k]?.name === name ? theirEntries[k++]! : null;
      const outcome = await this.mergeEntry(joinPath(path, name!), name!, b, o, t, depth);
      if (outcome.entry) merged.push(outcome.entry);
      if (outcome.conflict) this.found.push(outcome.conflict);
      if (outcome.extra && outcome.extra.length > 0) pendingExtras.push({ extra: outcome.extra, conflict: outcome.conflict! });
    }
    if (pendingExtras.length > 0) placeExtras(path, merged, pendingExtras);
    return merged;
  }

  private seal(entries: readonly TreeEntry[]): ObjectId {
    const sealed = sealTree(entries);
    for (const object of sealed.objects) {
      const key = idToHex(object.id);
      if (this.known.has(key)) continue;
      this.known.add(key);
      this.newObjects.push(object);
    }
    return sealed.id;
  }

  private async sameContent(x: TreeEntry | null, y: TreeEntry | null): Promise<boolean> {
    return x !== null && y !== null && differOnlyInForm(x, y) && (await sameFileContent(x, y, this.load));
  }

  private async mergeEntry(path: string, name: string, b: TreeEntry | null, o: TreeEntry | null, t: TreeEntry | null, depth: number): Promise<EntryOutcome> {
    if (entriesEqual(o, t)) return { entry: t };
    if (entriesEqual(o, b)) return { entry: t };
    if (entriesEqual(t, b)) return { entry: o };
    // A file whose entry only changed form (its one chunk named directly, or through a file
    // node: a format-1 tree against a format-2 one) did not change: the same rules, by content.
    if (await this.sameContent(o, t)) return { entry: t };
    if (await this.sameContent(o, b)) return { entry: t };
    if (await this.sameContent(t, b)) return { entry: o };

    if (o?.kind === "dir" && t?.kind === "dir") {
      const baseDir = b?.kind === "dir" ? b : null;
      const id = await this.mergeDirectory(path, baseDir?.id ?? null, o.id!, t.id!, depth + 1);
      const mode = baseDir !== null && t.mode === baseDir.mode ? o.mode : t.mode;
      return { entry: { ...t, id, mode } };
    }

    if (o !== null && t !== null) {
      const combined = combineFieldwise(b, o, t);
      if (combined) return { entry: combined };
      return this.resolveBothChanged(path, name, b, o, t);
    }

    // One side deleted (so base had the entry), the other modified it.
    const base = b!;
    const modifier = (o ?? t)!;
    const modifierSide = o !== null ? "ours" : "theirs";
    let kept = modifier;
    if (base.kind === "dir" && modifier.kind === "dir") {
      // Apply the deletion to everything below that the modifying side left alone.
      const entries = await this.mergeEntries(
        path,
        base.id,
        modifierSide === "ours" ? modifier.id : null,
        modifierSide === "theirs" ? modifier.id : null,
        depth + 1,
      );
      if (entries.length === 0 && modifier.mode === base.mode) return { entry: null };
      kept = { ...modifier, id: this.seal(entries) };
    }
    return {
      entry: kept,
      conflict: { path, kind: "modify-delete", base, ours: o, theirs: t, winner: modifierSide, kept, losers: [], extraPaths: [] },
    };
  }

  private async resolveBothChanged(path: string, name: string, b: TreeEntry | null, o: TreeEntry, t: TreeEntry): Promise<EntryOutcome> {
    const resolution = await this.resolve(path, o, t, b);
    const keep = resolution.keep;
    if (keep !== null && keep.name !== name) {
      throw new Error(`conflict resolver kept an entry named ${JSON.stringify(keep.name)} at ${JSON.stringify(path)}`);
    }
    const winner = keep === null ? "none" : entriesEqual(keep, t) ? "theirs" : entriesEqual(keep, o) ? "ours" : "other";
    const losers = [o, t].filter((side) => !entriesEqual(side, keep));
    const conflict: MergeConflict = { path, kind: b === null ? "both-added" : "both-modified", base: b, ours: o, theirs: t, winner, kept: keep, losers, extraPaths: [] };
    return { entry: keep, extra: resolution.extra, conflict };
  }
}

/**
 * Two files or two symlinks changed on both sides, each field (content, mode) on at most one:
 * the entry with both changes, taking the mtime of the side whose content it keeps. Undefined
 * when some field changed on both sides, or base is not the same kind.
 */
function combineFieldwise(b: TreeEntry | null, o: TreeEntry, t: TreeEntry): TreeEntry | undefined {
  if (b === null || o.kind !== t.kind || b.kind !== o.kind || o.kind === "dir") return undefined;
  const content = (e: TreeEntry) => (e.kind === "symlink" ? `l:${e.target}` : `${e.idNamesChunk ? "c" : "f"}:${idToHex(e.id!)}`);
  const contentSide = pickChangedSide(content(b), content(o), content(t));
  const modeSide = pickChangedSide(b.mode, o.mode, t.mode);
  if (contentSide === undefined || modeSide === undefined) return undefined;
  const source = contentSide === "ours" ? o : t;
  return { ...source, mode: modeSide === "ours" ? o.mode : t.mode };
}

/** Which side's value a three-way merge of one field takes, or undefined when both sides changed it differently. */
function pickChangedSide<T>(base: T, ours: T, theirs: T): "ours" | "theirs" | undefined {
  if (ours === theirs || ours === base) return "theirs";
  if (theirs === base) return "ours";
  return undefined;
}

/** Puts the resolvers' extra entries into a directory's merged entries, renaming away name collisions. */
function placeExtras(path: string, merged: TreeEntry[], pending: readonly { extra: TreeEntry[]; conflict: MergeConflict }[]): void {
  const byName = new Map(merged.map((entry) => [entry.name, entry]));
  for (const { extra, conflict } of pending) {
    for (const entry of extra) {
      const problem = validateName(entry.name);
      if (problem) throw new Error(`conflict resolver added an entry named ${JSON.stringify(entry.name)} at ${JSON.stringify(path)}: ${problem}`);
      const existing = byName.get(entry.name);
      if (existing !== undefined && entriesEqual(existing, entry)) continue;
      let name = entry.name;
      for (let n = 1; byName.has(name); n++) name = suffixedName(entry.name, n);
      const placed = { ...entry, name };
      byName.set(name, placed);
      merged.push(placed);
      conflict.extraPaths.push(joinPath(path, name));
    }
  }
}

/** "report.txt" -> "report-2.txt"; ".profile" and "Makefile" take the suffix at the end. */
export function suffixedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  const split = dot > 0 ? dot : name.length;
  let stem = name.slice(0, split);
  const tail = `-${n}${name.slice(split)}`;
  while (stem.length > 0 && Buffer.byteLength(stem + tail) > LIMITS.nameLengthBytesMax) {
    stem = Array.from(stem).slice(0, -1).join("");
  }
  const candidate = stem + tail;
  const problem = validateName(candidate);
  if (problem || stem.length === 0) throw new Error(`no room to rename ${JSON.stringify(name)} away from a collision`);
  return candidate;
}
