// The JSON the client API answers with for a folder, a version and a commit (docs/api.md): the
// server builds them (server/app.ts, whose builders are typed by these) and the client reads
// them (client/remote.ts, checked by reply-shapes.ts), so both ends name one definition and
// the client never imports the server's code. Ids are lowercase hex.
import type { ConflictKind } from "../core/merge.ts";
import type { EntryKind } from "../core/objects.ts";

export interface FolderJson {
  name: string;
  head: string | null;
  /** The head version's root tree, or null for a folder with no version. */
  root: string | null;
  mode: "eventual" | "strong";
  keepVersions: number | null;
  keepDays: number | null;
  createdMs: number;
  updatedMs: number;
}

export interface VersionJson {
  id: string;
  folder: string;
  sequence: number;
  root: string;
  parents: string[];
  author: string;
  /** The version's hybrid-logical-clock wall time as ISO 8601, and the clock itself. */
  time: string;
  hlcWallMs: number;
  hlcCounter: number;
  message: string;
  origin: "push" | "merge" | "restore" | "replica";
  files: number;
  bytes: number;
  createdMs: number;
}

/** A tree entry in a conflict: `size` in bytes, `id` null for a symlink. */
export interface EntryJson {
  kind: EntryKind;
  id: string | null;
  mode: number;
  size: number;
  mtimeMs: number;
  target: string | null;
}

/** A conflict of a merge: which side's entry stands at the path, what lost, and the copies made. */
export interface ConflictJson {
  path: string;
  kind: ConflictKind;
  winner: "ours" | "theirs" | "none" | "other";
  kept: EntryJson | null;
  losers: (EntryJson | null)[];
  copies: string[];
}

/** The answer of a commit or a restore. */
export interface CommitJson {
  version: string;
  pushed: string;
  parent: string | null;
  mergedWith: string | null;
  root: string;
  conflicts: ConflictJson[];
}
