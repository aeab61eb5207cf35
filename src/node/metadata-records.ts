// The records a node's metadata store holds and the errors it raises, shared by every
// implementation of MetadataStore (metadata-store.ts): the SQLite one in the data folder and any
// other. Plain data and errors only; nothing here knows how or where they are stored.
import { idToHex, type ObjectId } from "../core/id.ts";
import type { ClusterConfig, Entry, HardState, Snapshot } from "../core/raft/types.ts";

export type ConsistencyMode = "eventual" | "strong";

export interface FolderRecord {
  name: string;
  /** The version the folder is at; null until its first commit. */
  head: ObjectId | null;
  mode: ConsistencyMode;
  /** Retention: how many versions to keep, and for how many days; null for no limit. */
  keepVersions: number | null;
  keepDays: number | null;
  createdMs: number;
  updatedMs: number;
}

export type VersionOrigin = "push" | "merge" | "restore" | "replica";

export interface VersionRecord {
  folder: string;
  id: ObjectId;
  /** Order of arrival at this node, per folder: increasing, never given twice (see MetadataStore). */
  sequence: number;
  root: ObjectId;
  parents: ObjectId[];
  author: string;
  hlcWallMs: number;
  hlcCounter: number;
  message: string;
  origin: VersionOrigin;
  files: number;
  totalBytes: number;
  createdMs: number;
}

/** A version as it is handed to the store: the store gives it its folder and sequence. */
export type NewVersionRecord = Omit<VersionRecord, "sequence" | "folder">;

/** The retention and mode a folder is created with when it does not exist yet. */
export interface FolderDefaults {
  keepVersions?: number | null;
  keepDays?: number | null;
  mode?: ConsistencyMode;
}

/** A change of retention: an absent field keeps its value, null removes the limit. */
export interface RetentionChange {
  keepVersions?: number | null;
  keepDays?: number | null;
}

/** One page of folders by name; `next` is the name the page after starts at, null on the last. */
export interface FolderPage {
  folders: FolderRecord[];
  next: string | null;
}

/** One page of a folder's history, newest first; `next` is the sequence to ask below for the page after, null on the last. */
export interface VersionPage {
  versions: VersionRecord[];
  next: number | null;
}

/** Per folder: how many versions are kept and the sum of their file bytes. */
export interface VersionTotals {
  folder: string;
  versions: number;
  totalBytes: number;
}

/** What a metadata store says of itself, for `dsync status` and the metrics. */
export interface MetadataStoreStat {
  /** Which implementation: "sqlite", "postgres", ... */
  backend: string;
  /** Where it is, for people: a file path, or a database URL without its password. */
  location: string;
  /** The bytes the store takes where that is known (a file and its journal), else null. */
  sizeBytes: number | null;
  folders: number;
  versions: number;
  /** Objects marked complete (checked_nodes). */
  checkedNodes: number;
  /** The schema version the store is at. */
  schemaVersion: number;
}

/** A compare-and-set of a head found it moved: nothing was changed. */
export class HeadMovedError extends Error {
  override name = "HeadMovedError";
  constructor(readonly folder: string, readonly expected: ObjectId | null, readonly actual: ObjectId | null) {
    super(`head of ${folder} is ${actual ? idToHex(actual) : "empty"}, expected ${expected ? idToHex(expected) : "empty"}`);
  }
}

/**
 * A compare-and-set asked to move the head only while the folder is in one mode found it in the
 * other (the Raft log turned an eventual folder strong since the commit read its mode): nothing
 * was changed. A HeadMovedError, so a commit is made again, now through the log.
 */
export class FolderModeChangedError extends HeadMovedError {
  override name = "FolderModeChangedError";
  constructor(folder: string, expected: ObjectId | null, actual: ObjectId | null, readonly mode: ConsistencyMode) {
    super(folder, expected, actual);
    this.message = `folder ${folder} is ${mode} now: its head was not moved`;
  }
}

/** What a compare-and-set of a head also requires. */
export interface CommitConditions {
  /** Moves the head only while the folder is in this mode (else FolderModeChangedError): an eventual commit must never move a strong folder's head. */
  onlyIfMode?: ConsistencyMode;
}

/** A call that needs an existing folder was given one the store does not hold: nothing was changed. */
export class UnknownFolderError extends Error {
  override name = "UnknownFolderError";
  constructor(readonly folder: string) {
    super(`no folder ${folder}`);
  }
}

/** The store was written by a newer dsync (a schema this code does not know): it is not opened, and nothing is changed. */
export class MetadataSchemaTooNewError extends Error {
  override name = "MetadataSchemaTooNewError";
  constructor(readonly location: string, readonly found: number, readonly known: number) {
    super(
      `the metadata at ${location} is at schema ${found}, newer than this dsync understands (${known}); ` +
        "it was written by a newer dsync: run that version (nothing was changed)",
    );
  }
}

// ---------- the strong mode's Raft state (MetadataStore.loadRaft, saveRaft, compactRaft) ----------

/** What this node kept of its Raft group, as loadRaft returns it. */
export interface StoredRaft {
  hardState: HardState;
  /** The latest snapshot kept (the log was compacted or a leader sent one), if any. */
  snapshot?: Snapshot;
  /** Every entry kept after the snapshot (or from index 1), in index order, without gaps. */
  entries: Entry[];
  /** The membership the group was started with on this node, null when it was not set (a member waiting to be added). */
  bootstrapConfig: ClusterConfig | null;
  /**
   * The highest index the application recorded as applied (setRaftApplied). It may be below the
   * snapshot's index: a snapshot received from a leader is stored before it is installed, and
   * a crash between the two leaves it to be installed again.
   */
  applied: number;
}

/** One durable step of the Raft driver (saveRaft): what a Ready asks to persist. Absent parts are kept as they are. */
export interface RaftSave {
  hardState?: HardState;
  /** Consecutive entries; they replace every stored entry from entries[0].index on. */
  entries?: readonly Entry[];
  /** A snapshot received from the leader. */
  snapshot?: Snapshot;
  /** The membership this node starts the group with (null: none, wait to be added). */
  bootstrapConfig?: ClusterConfig | null;
}

/** What one saveRaft or compactRaft may store at most: a Ready of the driver is far below, a bug or a hostile leader is not. */
export const RAFT_SAVE_LIMITS = {
  /** Entries in one call (the driver's appends carry at most RaftConfig.maxEntriesPerAppend). */
  maxEntries: 4096,
  /** Bytes of entry data plus snapshot data in one call. */
  maxBytes: 64 * 1024 * 1024,
} as const;

/**
 * A Raft save or compaction refused for what it asks (a gap after the kept log, entries out of
 * order, a term that went back, a snapshot older than the kept one, too much in one call, a
 * malformed field): nothing was changed.
 */
export class RaftStorageError extends Error {
  override name = "RaftStorageError";
  constructor(
    readonly reason: "gap" | "order" | "term went back" | "older snapshot" | "not in log" | "too large" | "malformed",
    detail: string,
  ) {
    super(`raft storage refused (${reason}): ${detail}`);
  }
}
