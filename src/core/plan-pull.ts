// What a pull does at each path of one directory, decided from three trees: the version the
// directory last synced (base), the directory as scanned now (local) and the version pulled
// (remote).
//
// The plan is made one directory at a time from the entries of that directory on each side, so
// a pull of a tree of a million files never holds more than one directory's entries per level
// of nesting. A path the node did not change is kept whatever the directory did to it. Where the
// node changed a path, the decision follows what the directory did there since base:
//
//   local as base          node's entry written over it (replace), or the path deleted
//   local already = node   kept
//   local absent           node's entry written (write); a deletion kept absent
//   local changed too      local moved to a conflict copy, then the node's entry written;
//                          a path deleted on the node but changed here is kept
//
// The plan says what to expect; the executor (client/apply-pull.ts) checks the disk right before
// each rename or unlink and never replaces anything the last synced version does not hold
// exactly, whatever the plan said. Changes at or below a path this copy does not read are held
// back, not applied. A directory is descended into where the node changed something below it,
// with the ids of that directory on each side.
//
// "Changed" follows diffTrees: a directory's own change is its kind or mode (its id changes with
// anything below it); a file or link changes with its kind, id, mode or target, never its mtime.
import { idEquals, type ObjectId } from "./id.ts";
import { compareNames, type TreeEntry } from "./objects.ts";

/** How the node's entry differs from base's at a path (null: the node did not change it). */
export type RemoteChange = "added" | "removed" | "modified" | "typeChanged";

export type PullAction =
  /** Nothing to do here: the node did not change the path, or the directory already has its entry. */
  | "keep"
  /** Nothing local at the path: the node's entry is written. */
  | "write"
  /** The directory holds base's entry: it is replaced by the node's (checked on disk first). */
  | "replace"
  /** Changed here and on the node: the local entry goes to a conflict copy, the node's is written. */
  | "conflict-copy"
  /** Deleted on the node, and not changed here: removed if still base's entry on disk (checked first). */
  | "delete"
  /** Deleted on the node but changed here: kept, and reported. */
  | "keep-changed"
  /** A directory on both sides whose own entry is unchanged (or already the node's): only what is below it changes. */
  | "descend"
  /** Changed on the node at or below a path this copy does not read: not applied, reported. */
  | "hold-back"
  /** A name this copy keeps for itself (its state directory, its temp files): never written or removed. */
  | "reserved";

export interface PlannedPath {
  name: string;
  base: TreeEntry | null;
  local: TreeEntry | null;
  remote: TreeEntry | null;
  remoteChange: RemoteChange | null;
  /** Whether the directory changed this path itself since base (as diffTrees(base, local) reports it). */
  localChanged: boolean;
  action: PullAction;
  /**
   * The directory below this path to plan next, with its tree on each side (null where that
   * side holds no directory here), or null when nothing below it changed on the node. Set for
   * held-back paths too (their changes are counted), never below a reserved name.
   */
  below: { base: ObjectId | null; local: ObjectId | null; remote: ObjectId | null } | null;
}

export interface PlanOptions {
  /** Every change in this directory is held back (it sits below a path not read here). */
  heldBack?: boolean;
  /** Whether the node's change at this name is held back (a path not read here, or above one it would remove). */
  holdsBack?: (name: string, base: TreeEntry | null, remote: TreeEntry | null) => boolean;
  /** Names the pull never writes or removes here. */
  reserved?: (name: string) => boolean;
}

/** Whether two entries differ as diffTrees reports it (directories by kind and mode alone). */
export function changedAt(before: TreeEntry | null, after: TreeEntry | null): boolean {
  if (before === null || after === null) return before !== after;
  if (before.kind !== after.kind) return true;
  if (before.kind === "dir") return before.mode !== after.mode;
  return !sameContent(before, after);
}

/** Kind, id, mode and target equal (mtime ignored): the same bytes a user can read. */
function sameContent(x: TreeEntry, y: TreeEntry): boolean {
  if (x.kind !== y.kind || x.mode !== y.mode || x.target !== y.target) return false;
  if (x.id === null || y.id === null) return x.id === y.id;
  return idEquals(x.id, y.id);
}

function remoteChangeOf(base: TreeEntry | null, remote: TreeEntry | null): RemoteChange | null {
  if (base === null) return remote === null ? null : "added";
  if (remote === null) return "removed";
  if (base.kind !== remote.kind) return "typeChanged";
  return changedAt(base, remote) ? "modified" : null;
}

const dirId = (entry: TreeEntry | null): ObjectId | null => (entry?.kind === "dir" ? entry.id : null);

/** Whether the node changed anything below this path (so the directory below is planned too). */
function changedBelow(base: TreeEntry | null, remote: TreeEntry | null): boolean {
  const b = dirId(base);
  const r = dirId(remote);
  if (b === null && r === null) return false;
  if (b === null || r === null) return true;
  return !idEquals(b, r);
}

/**
 * The plan for one directory, given its entries on each side in name order (as trees hold
 * them). Paths come out in name order; every name on any side appears once.
 */
export function planPull(base: readonly TreeEntry[], local: readonly TreeEntry[], remote: readonly TreeEntry[], options: PlanOptions = {}): PlannedPath[] {
  const out: PlannedPath[] = [];
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < base.length || j < local.length || k < remote.length) {
    // The smallest name on any side next.
    let name: string | undefined;
    for (const candidate of [base[i]?.name, local[j]?.name, remote[k]?.name]) {
      if (candidate !== undefined && (name === undefined || compareNames(candidate, name) < 0)) name = candidate;
    }
    const b = base[i]?.name === name ? base[i++]! : null;
    const l = local[j]?.name === name ? local[j++]! : null;
    const r = remote[k]?.name === name ? remote[k++]! : null;
    out.push(planPath(name!, b, l, r, options));
  }
  return out;
}

/** The decision at one path (the table test/core/plan-pull.test.ts pins). */
export function planPath(name: string, base: TreeEntry | null, local: TreeEntry | null, remote: TreeEntry | null, options: PlanOptions = {}): PlannedPath {
  const remoteChange = remoteChangeOf(base, remote);
  const localChanged = changedAt(base, local);
  const planned = (action: PullAction, below = changedBelow(base, remote)): PlannedPath => ({
    name,
    base,
    local,
    remote,
    remoteChange,
    localChanged,
    action,
    below: below ? { base: dirId(base), local: dirId(local), remote: dirId(remote) } : null,
  });
  if (remoteChange === null) {
    // The node changed nothing here; below a directory it may have.
    return planned(changedBelow(base, remote) ? (options.heldBack ? "hold-back" : "descend") : "keep");
  }
  if (options.heldBack || options.holdsBack?.(name, base, remote)) return planned("hold-back");
  // Neither written nor removed: a state directory or temp file of this copy is its own.
  if (options.reserved?.(name)) return planned("reserved", false);
  if (remote === null) {
    // Deleted on the node. A directory is emptied by the plans below it, then removed if empty.
    if (localChanged && local !== null) return planned("keep-changed");
    // Absent here too: still a removal, so whatever the scan did not record there (a FIFO, a
    // file that appeared since) is found on disk and kept.
    return planned("delete");
  }
  // What the directory holds here as the diff sees it: base's entry unless changed.
  const localEntry = localChanged ? local : base;
  if (localEntry !== null && remote.kind !== "dir" && sameContent(localEntry, remote)) return planned("keep");
  if (localEntry !== null && remote.kind === "dir" && localEntry.kind === "dir" && localEntry.mode === remote.mode && localEntry.id !== null && idEquals(localEntry.id, remote.id!)) return planned("keep");
  // A file or link replacing a directory takes what is below it along (or moves it aside whole):
  // nothing below is planned. A directory written is filled by the plan below it.
  const below = remote.kind === "dir" && changedBelow(base, remote);
  if (localEntry === null) return planned("write", below);
  if (localEntry.kind === "dir" && remote.kind === "dir") return planned("descend");
  return planned(localChanged ? "conflict-copy" : "replace", below);
}
