// The mass-deletion guard: a push that would delete most of a folder's files is refused
// unless asked for.
//
// The case it is for: a directory that is empty or not mounted, or whose files were removed
// by mistake, pushed over a folder that other copies pull from. Every version stays in history,
// but each copy's next pull would delete its files. Deletions are counted against the tree the
// push is made on (the one the directory last synced, which the node merges against), after
// paths not read were given back their synced entries: an ignored or unreadable file is never
// a deletion. A first push (no base) deletes nothing. The check runs before anything is sent.
import { diffTrees } from "../core/diff.ts";
import { idEquals, type ObjectId } from "../core/id.ts";
import type { ObjectLoader } from "../core/pages.ts";

export interface DeletionLimits {
  /** A push deleting more than this share of the base's files (0–100) ... */
  maxDeletePercent: number;
  /** ... and at least this many files is refused. */
  minFiles: number;
}

/** Like rclone's --max-delete and Dropbox's warning on mass deletes: more than half, and at least 100 files. */
export const DEFAULT_DELETION_LIMITS: DeletionLimits = { maxDeletePercent: 50, minFiles: 100 };

export interface DeletionCount {
  /** Files of the base that the pushed tree no longer holds (a file replaced by a directory or link counts). */
  deletedFiles: number;
  baseFiles: number;
  /** A few of the deleted paths, in tree order, for the message. */
  examples: string[];
}

const EXAMPLES_MAX = 3;

/** Counts the files `pushed` deletes from `base`; `pushedFiles` is how many files `pushed` holds. */
export async function countDeletedFiles(base: ObjectId, pushed: ObjectId, pushedFiles: number, load: ObjectLoader): Promise<DeletionCount> {
  if (idEquals(base, pushed)) return { deletedFiles: 0, baseFiles: pushedFiles, examples: [] };
  const diff = await diffTrees(base, pushed, load);
  const deleted = [...diff.removed, ...diff.typeChanged].filter((change) => change.before?.kind === "file");
  const added = [...diff.added, ...diff.typeChanged].filter((change) => change.after?.kind === "file").length;
  return {
    deletedFiles: deleted.length,
    baseFiles: pushedFiles - added + deleted.length,
    examples: deleted.slice(0, EXAMPLES_MAX).map((change) => change.path),
  };
}

export class DeletionGuardError extends Error {
  constructor(message: string, readonly count: DeletionCount) {
    super(message);
    this.name = "DeletionGuardError";
  }
}

export function exceedsLimits(count: DeletionCount, limits: DeletionLimits): boolean {
  return count.deletedFiles >= limits.minFiles && count.deletedFiles * 100 > limits.maxDeletePercent * count.baseFiles;
}

/** Throws DeletionGuardError when the count exceeds the limits; `dir` and `folder` name the push in the message. */
export function checkDeletions(count: DeletionCount, limits: DeletionLimits, where: { dir: string; folder: string; pushedFiles: number }): void {
  if (!exceedsLimits(count, limits)) return;
  const percent = Math.round((count.deletedFiles * 100) / Math.max(count.baseFiles, 1));
  const hint = where.pushedFiles === 0 ? ` ${where.dir} holds no files: is it the right directory, and is it mounted?` : "";
  throw new DeletionGuardError(
    `refusing to push ${where.dir}: it would delete ${count.deletedFiles} of the ${count.baseFiles} files of folder ${where.folder} (${percent}%), ` +
      `e.g. ${count.examples.join(", ")}.${hint} Nothing was sent. The guard refuses deleting more than ${limits.maxDeletePercent}% of the files ` +
      `when that is at least ${limits.minFiles} files; to push these deletions, run again with --allow-deletes.`,
    count,
  );
}
