// A pull leaves alone what this copy does not read.
//
// An ignored path is one this copy stopped syncing: the node's changes there are not written,
// replaced or deleted here (as in Syncthing). An unreadable or unsupported one (a FIFO where a
// file was) holds something dsync could not look at, so writing over it could destroy bytes
// that exist nowhere else. So every change at or below a path the local scan did not read, or
// at a path this copy's .dsyncignore rules leave out (a file the node added there), is set
// aside and reported, one line per such path (bounded), and the rest of the pull goes on.
import type { DiffEntry, TreeDiff } from "../core/diff.ts";
import type { ScanResult, SkipCause, SkippedPath } from "../fs/scanner.ts";

export interface ChangesSetAside {
  /** The changes the pull may apply. */
  diff: TreeDiff;
  /** One entry per path not read that had changes on the node, at most `reportMax`. */
  skipped: SkippedPath[];
  /** How many changes were set aside in all. */
  count: number;
}

const REASONS: Record<SkipCause, string> = {
  ignored: "ignored here",
  unreadable: "could not be read here",
  unsupported: "holds something dsync does not sync here",
};

export const REPORTED_PATHS_MAX = 100;

/**
 * The diff without the changes at or below paths the scan did not read or that are ignored
 * here, nor a directory's replacement by a file or link when it holds one (with every change
 * below that directory).
 */
export function setAsideChangesNotRead(diff: TreeDiff, scan: Pick<ScanResult, "notRead" | "ignoredAt">, reportMax = REPORTED_PATHS_MAX): ChangesSetAside {
  const notRead = scan.notRead;
  const causes = new Map<string, SkipCause>(notRead.map((p) => [p.path, p.cause]));
  /** Directories above some path not read: replacing one by a file or link would remove it. */
  const holders = new Map<string, string>();
  for (const { path } of notRead) {
    for (let slash = path.lastIndexOf("/"); slash > 0; slash = path.lastIndexOf("/", slash - 1)) {
      const parent = path.slice(0, slash);
      if (holders.has(parent)) break;
      holders.set(parent, path);
    }
  }
  const notReadAtOrAbove = (path: string): string | undefined => {
    for (let end = path.indexOf("/"); end !== -1; end = path.indexOf("/", end + 1)) {
      if (causes.has(path.slice(0, end))) return path.slice(0, end);
    }
    return causes.has(path) ? path : undefined;
  };
  // A directory the node replaced by a file or link, that holds a path not read, stays a
  // directory here: the whole change is held back, the removals below it included, so the copy
  // keeps the directory as last synced instead of a half-emptied one.
  const heldBack = new Map<string, string>();
  for (const change of diff.typeChanged) {
    if (change.before?.kind !== "dir" || change.after === null || change.after.kind === "dir") continue;
    const holder = holders.get(change.path);
    if (holder !== undefined) heldBack.set(change.path, holder);
  }
  const heldBackAtOrAbove = (path: string): string | undefined => {
    if (heldBack.size === 0) return undefined;
    for (let end = path.indexOf("/"); end !== -1; end = path.indexOf("/", end + 1)) {
      const holder = heldBack.get(path.slice(0, end));
      if (holder !== undefined) return holder;
    }
    return heldBack.get(path);
  };
  const byRoot = new Map<string, number>();
  let count = 0;
  const keep = (change: DiffEntry): boolean => {
    let root = notReadAtOrAbove(change.path) ?? heldBackAtOrAbove(change.path);
    if (root === undefined) {
      root = scan.ignoredAt(change.path, (change.after ?? change.before)?.kind === "dir");
      if (root !== undefined) causes.set(root, "ignored");
    }
    if (root === undefined) return true;
    byRoot.set(root, (byRoot.get(root) ?? 0) + 1);
    count++;
    return false;
  };
  const filtered: TreeDiff = {
    added: diff.added.filter(keep),
    removed: diff.removed.filter(keep),
    modified: diff.modified.filter(keep),
    typeChanged: diff.typeChanged.filter(keep),
  };
  const skipped: SkippedPath[] = [];
  for (const [path, changes] of byRoot) {
    if (skipped.length >= reportMax) break;
    const cause = causes.get(path)!;
    skipped.push({ path, reason: `${REASONS[cause]}: ${changes} change(s) on the node not applied`, cause });
  }
  return { diff: filtered, skipped, count };
}
