// The seam between a node and where its metadata lives: folders and their heads, the version
// index, the node's identity and small keyed values, and the objects known complete. Objects
// themselves live in the object store; this only indexes them.
//
// Every method is asynchronous, so an implementation may be a file in the data folder (SQLite,
// sqlite-metadata-store.ts) or a database server. The contracts below are what the node relies
// on, and what every implementation (and the conformance tests) must keep:
//
// - Durable when resolved: a call that changes something resolves only once the change would
//   survive a power cut (a head that was acknowledged is never lost).
// - Atomic per call: a call that changes several rows changes all of them or none, and a reader
//   never sees part of it. Nothing is atomic across two calls; the one way to move a head is
//   commitVersions, a compare-and-set, so two writers racing never both win.
// - "Not found" is undefined (one record) or an empty list; only calls that need an existing
//   folder to change it throw, with UnknownFolderError.
// - Ids (ObjectId) are 32 bytes; returned ids are copies the caller may keep.
// - A failure of the storage itself (a damaged file, a lost connection) rejects with the
//   implementation's own error; isDamage tells the ones that mean the store is damaged.
import type { ObjectId } from "../core/id.ts";
import type { Snapshot } from "../core/raft/types.ts";
import type { CheckedNode, NodeSummary } from "../core/tree-structure.ts";
import type {
  CommitConditions,
  ConsistencyMode,
  FolderDefaults,
  FolderPage,
  FolderRecord,
  MetadataStoreStat,
  NewVersionRecord,
  RaftSave,
  RetentionChange,
  StoredRaft,
  VersionPage,
  VersionRecord,
  VersionTotals,
} from "./metadata-records.ts";

export interface MetadataStore {
  // ---------- identity and keyed values ----------

  /** The value stored under `key` (e.g. "node_id", "scrub_position"), or undefined. */
  getMeta(key: string): Promise<string | undefined>;

  /** Stores `value` under `key`, replacing any earlier value; durable when resolved. */
  setMeta(key: string, value: string): Promise<void>;

  // ---------- folders ----------

  /** Every folder, ordered by name (byte order of the UTF-8 name). For the node's own passes; replies page (listFoldersPage). */
  listFolders(): Promise<FolderRecord[]>;

  /**
   * At most `limit` folders ordered by name, starting at `fromName` (inclusive) when given:
   * keyset paging, so a page costs the page. `next` is the name of the first folder after the
   * page (the `fromName` of the next call), null when nothing follows.
   */
  listFoldersPage(limit: number, fromName?: string): Promise<FolderPage>;

  /** The folder named `name`, or undefined. */
  getFolder(name: string): Promise<FolderRecord | undefined>;

  /** How many folders there are. */
  countFolders(): Promise<number>;

  /**
   * Creates the folder with no head and `defaults` (mode "eventual" and no retention limits
   * where absent), created and updated at `nowMs`, unless it exists, in which case nothing of
   * it changes (the defaults are not applied to it). Resolves to the folder as stored either way.
   * Atomic: two calls racing on one name create it once.
   */
  ensureFolder(name: string, nowMs: number, defaults?: FolderDefaults): Promise<FolderRecord>;

  /**
   * Changes a folder's retention (an absent field keeps its value, null removes the limit) and
   * sets its updatedMs to `nowMs`. Throws UnknownFolderError for a folder that does not exist.
   */
  setRetention(name: string, retention: RetentionChange, nowMs: number): Promise<void>;

  /**
   * Sets a folder's consistency mode and its updatedMs to `nowMs`, keeping its head, versions
   * and retention: a folder made eventual on one side of a partition becomes strong when the
   * Raft log creates it. Throws UnknownFolderError for a folder that does not exist.
   */
  setFolderMode(name: string, mode: ConsistencyMode, nowMs: number): Promise<void>;

  // ---------- heads and versions ----------

  /**
   * In one atomic step: checks the folder's head is `expectedHead` (null: no head yet), records
   * `versions` (as recordVersions does) and moves the head to `newHead`, setting updatedMs to
   * `nowMs`. This compare-and-set is the only way a head moves. Throws HeadMovedError when the
   * head is not `expectedHead`, and UnknownFolderError when the folder does not exist; then
   * nothing is changed. The caller records `newHead` here or earlier: a head never names a
   * version the store does not hold. `conditions.onlyIfMode`: the folder's mode is checked in
   * the same step, FolderModeChangedError (nothing changed) when it is another.
   */
  commitVersions(folder: string, expectedHead: ObjectId | null, newHead: ObjectId, versions: readonly NewVersionRecord[], nowMs: number, conditions?: CommitConditions): Promise<void>;

  /**
   * Records versions without moving the head (history received from a peer), atomically.
   * Each version not yet recorded in the folder gets the next sequence, in the order given; one
   * already recorded (same folder and id) is left as it is and takes no sequence. A sequence is
   * never given twice in a folder, not even after the newest versions were deleted: it is above
   * every sequence the folder ever had. Throws UnknownFolderError for a folder that does not exist.
   */
  recordVersions(folder: string, versions: readonly NewVersionRecord[]): Promise<void>;

  /** The version `id` of `folder`, or undefined (also for an unknown folder). */
  getVersion(folder: string, id: ObjectId): Promise<VersionRecord | undefined>;

  /** getVersion for many ids at once: one answer per id, in the order given (undefined where not recorded). */
  getVersions(folder: string, ids: readonly ObjectId[]): Promise<(VersionRecord | undefined)[]>;

  /**
   * The versions of `folder` whose lowercase hex id starts with `hexPrefix` (0 to 64 hex
   * digits, any case), at most `limit` (default 1000), ordered by id. Anything else than hex
   * digits matches nothing: an empty list, never an error.
   */
  findVersionsByPrefix(folder: string, hexPrefix: string, limit?: number): Promise<VersionRecord[]>;

  /**
   * The versions of `folder`, newest first (sequence descending), at most `limit` (default all).
   * For the node's own passes (retention, verify); replies page (listVersionsPage).
   */
  listVersions(folder: string, limit?: number): Promise<VersionRecord[]>;

  /**
   * One page of a folder's history, newest first: at most `limit` versions whose sequence is
   * below `beforeSequence` (from the newest when absent). Keyset paging on (folder, sequence):
   * the cost is that of the page however long the history, and a version recorded while someone
   * pages sorts above every cursor handed out, so it never shifts a later page. `next` is the
   * sequence of the page's last (oldest) version when older ones remain, else null.
   * An unknown folder is an empty last page.
   */
  listVersionsPage(folder: string, limit: number, beforeSequence?: number): Promise<VersionPage>;

  /** Per folder that has versions: how many and the sum of their totalBytes (one aggregate, for metrics). Any order. */
  versionTotals(): Promise<VersionTotals[]>;

  /**
   * The greatest hybrid-logical-clock stamp (wall time, then counter) of any version recorded,
   * in any folder; zero when there is none. A node's clock starts from it.
   */
  latestHlc(): Promise<{ wallMs: number; counter: number }>;

  /**
   * Deletes these versions of `folder` (retention), atomically; ids not recorded are ignored.
   * Their sequences are not given again. The caller never deletes a folder's head.
   */
  deleteVersions(folder: string, ids: readonly ObjectId[]): Promise<void>;

  // ---------- completeness marks (checked_nodes) ----------
  //
  // An object is marked complete once a check established that it and everything below it are
  // stored and structurally valid, with the summary that check established (its kind, level,
  // first and last name or size; core/tree-structure.ts). The marks are a cache: losing them
  // costs a re-check, never correctness; a mark that is wrong would let a broken tree through.

  /** Whether `id` is marked complete. */
  isComplete(id: ObjectId): Promise<boolean>;

  /** The summary `id` was marked complete with, or undefined when it is not marked. */
  completeSummary(id: ObjectId): Promise<NodeSummary | undefined>;

  /** completeSummary for many ids at once: one answer per id, in the order given. */
  completeSummaries(ids: readonly ObjectId[]): Promise<(NodeSummary | undefined)[]>;

  /**
   * Marks objects complete with their summaries (only ever the output of a check), atomically.
   * An object already marked keeps its first summary (a check of the same bytes says the same).
   */
  markComplete(nodes: readonly CheckedNode[]): Promise<void>;

  /**
   * Forgets the marks of these objects, atomically, durable when resolved: called before the
   * objects are deleted, so a mark never outlives what it vouches for. Unmarked ids are ignored.
   */
  unmarkComplete(ids: readonly ObjectId[]): Promise<void>;

  /** Forgets every mark at once (atomically, durable when resolved): once anything is quarantined, no mark can be trusted. */
  unmarkAllComplete(): Promise<void>;

  /** Every object marked complete, in no particular order. */
  listCompleteIds(): Promise<ObjectId[]>;

  // ---------- the strong mode's Raft log and hard state ----------
  //
  // One Raft group per cluster (src/consensus): its log, hard state, latest snapshot, the
  // membership it was started with and the applied index live here, beside the folders they
  // change, durable like every other write. Only the node's Raft driver calls these, one call at
  // a time. Entries and snapshots come back as copies the caller may keep.

  /**
   * What this node stored of its Raft group, or undefined when it never stored any (no saveRaft,
   * compactRaft or setRaftApplied was ever made). Entries are those after the snapshot (from
   * index 1 without one), in order, without gaps; an absent hard state reads as term 0, no vote,
   * commit 0.
   */
  loadRaft(): Promise<StoredRaft | undefined>;

  /**
   * One atomic, durable step (resolved only once it would survive a power cut), in this order:
   * - `snapshot` replaces every entry at or below its index; when the stored log does not hold
   *   the snapshot's index with its term, it replaces every entry (the snapshot is newer than the
   *   log). A snapshot older than the one kept is refused.
   * - `entries` (consecutive, terms not decreasing) replace every stored entry from
   *   entries[0].index on (a conflicting suffix is truncated) and must follow the last index kept
   *   without a gap, with a term not below the entry before them. Entries at or below the
   *   snapshot's index are committed and covered by it: they are left out.
   * - `hardState` replaces the stored one; its term never goes back, and its commit is not past
   *   the last index kept.
   * - `bootstrapConfig` replaces the stored one.
   * At most RAFT_SAVE_LIMITS.maxEntries entries and RAFT_SAVE_LIMITS.maxBytes bytes of entry and
   * snapshot data per call. A call that breaks a rule rejects with RaftStorageError and changes nothing.
   */
  saveRaft(save: RaftSave): Promise<void>;

  /**
   * Keeps `snapshot` (the application's state at an index it applied, within RAFT_SAVE_LIMITS.maxBytes)
   * in place of the kept one and drops every entry at or below its index, atomically and
   * durably; the applied index becomes at least the snapshot's. The log must hold the snapshot's
   * index with its term (or it is the kept snapshot's), and it must not be older than the kept
   * snapshot: else RaftStorageError, and nothing is changed.
   */
  compactRaft(snapshot: Snapshot): Promise<void>;

  /** Records that the application applied every entry up to `index`, durably. Never goes back: a lower index is ignored. */
  setRaftApplied(index: number): Promise<void>;

  // ---------- health ----------

  /**
   * The store's own structural check: "ok" when it finds nothing, else what it found, in words.
   * A check that cannot run at all rejects.
   */
  integrityCheck(): Promise<string>;

  /** Whether an error one of this store's calls rejected with means the store itself is damaged (not a bad argument, not a head that moved). */
  isDamage(error: unknown): boolean;

  /** What the store is and holds: backend, location, size, counts, schema. */
  stat(): Promise<MetadataStoreStat>;

  /** Lets go of the store (files, connections). No call may be made after; a second close does nothing. */
  close(): Promise<void>;
}
