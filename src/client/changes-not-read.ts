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
 * Decides, change by change, whether a change falls at or below a path not read here, and
 * counts what it sets aside by that path. Changes must come in tree order (a directory before
 * what is below it), as diffTrees lists them and a pull's directory-by-directory walk meets them.
 */
export class NotReadFilter {
  private readonly causes: Map<string, SkipCause>;
  /** Directories above some path not read: replacing one by a file or link would remove it. */
  private readonly holders = new Map<string, string>();
  /** Directories the node replaced by a file or link that hold a path not read: everything below is held back. */
  private readonly heldBack = new Map<string, string>();
  private readonly byRoot = new Map<string, number>();
  /** How many changes were set aside in all. */
  count = 0;

  constructor(private readonly scan: Pick<ScanResult, "notRead" | "ignoredAt">) {
    this.causes = new Map<string, SkipCause>(scan.notRead.map((p) => [p.path, p.cause]));
    for (const { path } of scan.notRead) {
      for (let slash = path.lastIndexOf("/"); slash > 0; slash = path.lastIndexOf("/", slash - 1)) {
        const parent = path.slice(0, slash);
        if (this.holders.has(parent)) break;
        this.holders.set(parent, path);
      }
    }
  }

  private notReadAtOrAbove(path: string): string | undefined {
    for (let end = path.indexOf("/"); end !== -1; end = path.indexOf("/", end + 1)) {
      if (this.causes.has(path.slice(0, end))) return path.slice(0, end);
    }
    return this.causes.has(path) ? path : undefined;
  }

  private heldBackAtOrAbove(path: string): string | undefined {
    if (this.heldBack.size === 0) return undefined;
    for (let end = path.indexOf("/"); end !== -1; end = path.indexOf("/", end + 1)) {
      const holder = this.heldBack.get(path.slice(0, end));
      if (holder !== undefined) return holder;
    }
    return this.heldBack.get(path);
  }

  /**
   * A directory the node replaced by a file or link, that holds a path not read, stays a
   * directory here: the whole change is held back, the removals below it included, so the copy
   * keeps the directory as last synced instead of a half-emptied one.
   */
  noteReplacement(change: DiffEntry): void {
    if (change.before?.kind === "dir" && change.after !== null && change.after.kind !== "dir") {
      const holder = this.holders.get(change.path);
      if (holder !== undefined) this.heldBack.set(change.path, holder);
    }
  }

  /** True when the change is set aside (and counted); false when the pull may apply it. */
  setsAside(change: DiffEntry): boolean {
    this.noteReplacement(change);
    let root = this.notReadAtOrAbove(change.path) ?? this.heldBackAtOrAbove(change.path);
    if (root === undefined) {
      root = this.scan.ignoredAt(change.path, (change.after ?? change.before)?.kind === "dir");
      if (root !== undefined) this.causes.set(root, "ignored");
    }
    if (root === undefined) return false;
    this.byRoot.set(root, (this.byRoot.get(root) ?? 0) + 1);
    this.count++;
    return true;
  }

  /** One entry per path not read that had changes on the node, at most `reportMax`. */
  skipped(reportMax = REPORTED_PATHS_MAX): SkippedPath[] {
    const skipped: SkippedPath[] = [];
    for (const [path, changes] of this.byRoot) {
      if (skipped.length >= reportMax) break;
      const cause = this.causes.get(path)!;
      skipped.push({ path, reason: `${REASONS[cause]}: ${changes} change(s) on the node not applied`, cause });
    }
    return skipped;
  }
}

/**
 * The diff without the changes at or below paths the scan did not read or that are ignored
 * here, nor a directory's replacement by a file or link when it holds one (with every change
 * below that directory).
 */
export function setAsideChangesNotRead(diff: TreeDiff, scan: Pick<ScanResult, "notRead" | "ignoredAt">, reportMax = REPORTED_PATHS_MAX): ChangesSetAside {
  const filter = new NotReadFilter(scan);
  // Replacements first: one holds back the removals below it, which the lists put before it.
  for (const change of diff.typeChanged) filter.noteReplacement(change);
  const keep = (change: DiffEntry) => !filter.setsAside(change);
  const filtered: TreeDiff = {
    added: diff.added.filter(keep),
    removed: diff.removed.filter(keep),
    modified: diff.modified.filter(keep),
    typeChanged: diff.typeChanged.filter(keep),
  };
  return { diff: filtered, skipped: filter.skipped(reportMax), count: filter.count };
}
