// How a strong folder's head moves: through the cluster's log, never by this node's own
// compare-and-set. The node is handed one by the assembly (src/assemble.ts, over the Raft
// group of src/consensus); the node's commit path (commit.ts) calls it where an eventual
// folder's head would be moved by metadata.commitVersions. Applying the log's command does that
// compare-and-set on every member, this one included, so the node itself must not.
import type { ObjectId } from "../core/id.ts";
import type { NewVersionRecord } from "./metadata-records.ts";

/** Moves a folder's head from `expected` to `head`, recording `versions` with it (the compare-and-set of metadata.commitVersions, or the log's). */
export type HeadMover = (folder: string, expected: ObjectId | null, head: ObjectId, versions: NewVersionRecord[]) => Promise<void>;

export interface StrongHeads {
  /**
   * Proposes the move and resolves once it is committed on a majority and applied here. Throws
   * HeadMovedError when, as the log ordered it, the head was no longer `expected` (nothing
   * changed); the consensus's own errors (not the leader, no quorum) pass through as they are.
   */
  moveHead: HeadMover;
  /** Creates a strong folder through the log; "exists" when the log already held one of that name. */
  createFolder(name: string, retention: { keepVersions: number | null; keepDays: number | null }): Promise<"created" | "exists">;
  /**
   * Changes a strong folder's retention through the log (an absent field is unchanged), so every
   * member keeps the same versions; "unknown folder" when the log holds no strong folder of that name.
   */
  setRetention(folder: string, retention: { keepVersions?: number | null; keepDays?: number | null }): Promise<"applied" | "unknown folder">;
  /**
   * Resolves once this node has applied every entry the log committed before the call (a
   * linearizable read point); rejects when that cannot be had within `timeoutMs` (no leader
   * with a quorum answers: a minority side).
   */
  caughtUp(timeoutMs: number): Promise<void>;
}
