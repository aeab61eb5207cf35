// The node's metadata in SQLite: `metadata.sqlite` in the data folder, a MetadataStore
// (metadata-store.ts, whose contracts this keeps). Folders and their heads, the version index,
// the node's identity, and the objects known complete with the summary their check established.
//
// A head moves by compare-and-set inside one IMMEDIATE transaction with synchronous=FULL, so a
// head that was acknowledged survives a power cut, and a head never names a version that is not
// stored. SQLite answers synchronously and in-process; the methods are asynchronous only because
// the seam is (another store may be across a network).
//
// The schema changes by the steps in MIGRATIONS, each in one transaction with the new version
// written in it (meta `schema_version`), so a crash mid-upgrade leaves the file at the last
// complete step and the next open goes on from there. A file at a newer schema than the last
// step here is refused and left as it is.
import { Database } from "bun:sqlite";
import { existsSync, statSync } from "node:fs";
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { ClusterConfig, Entry, EntryKind, Snapshot } from "../core/raft/types.ts";
import type { CheckedNode, NodeSummary } from "../core/tree-structure.ts";
import { isSqliteDamage } from "../store/sqlite-damage.ts";
import { MetadataDamagedError, metadataDamage } from "./metadata-damage.ts";
import {
  FolderModeChangedError,
  HeadMovedError,
  type CommitConditions,
  MetadataSchemaTooNewError,
  UnknownFolderError,
  type ConsistencyMode,
  type FolderDefaults,
  type FolderPage,
  type FolderRecord,
  type MetadataStoreStat,
  type NewVersionRecord,
  type RaftSave,
  type RetentionChange,
  type StoredRaft,
  type VersionOrigin,
  type VersionPage,
  type VersionRecord,
  type VersionTotals,
} from "./metadata-records.ts";
import type { MetadataStore } from "./metadata-store.ts";
import { nodeIdProblem } from "./node-id.ts";
import { checkCompaction, planRaftSave, raftLogProblems, raftSaveLookups, validateCompaction, validateRaftSave, type RaftLogFacts } from "./raft-save-plan.ts";

/** One step of the schema: from `version - 1` to `version`, run inside one transaction. */
interface Migration {
  version: number;
  /** Why the step exists, for whoever reads the list. */
  why: string;
  up(db: Database): void;
}

/**
 * Every schema this code knows, oldest first. A step is never edited once released: a file
 * made by that release is upgraded by exactly these statements. The CREATEs say IF NOT EXISTS
 * because the releases before this list made the same tables without recording a step for them.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    why: "node identity and keyed values, folders with their heads and retention, the version index (keyset paging on folder, sequence), completeness marks",
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS folders (
          name TEXT PRIMARY KEY, head BLOB, mode TEXT NOT NULL DEFAULT 'eventual',
          keep_versions INTEGER, keep_days INTEGER, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS versions (
          folder TEXT NOT NULL REFERENCES folders(name), id BLOB NOT NULL, sequence INTEGER NOT NULL,
          root BLOB NOT NULL, parents BLOB NOT NULL, author TEXT NOT NULL,
          hlc_wall_ms INTEGER NOT NULL, hlc_counter INTEGER NOT NULL, message TEXT NOT NULL,
          origin TEXT NOT NULL, files INTEGER NOT NULL, total_bytes INTEGER NOT NULL, created_ms INTEGER NOT NULL,
          PRIMARY KEY (folder, id)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS versions_by_sequence ON versions (folder, sequence);
        CREATE TABLE IF NOT EXISTS complete_objects (id BLOB PRIMARY KEY) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    why:
      "completeness marks carry the summary of what was checked (checked_nodes); the bare marks of schema 1 said nothing of kind or order, " +
      "so they are dropped, not trusted: they are only a cache, and the next commit re-checks what it needs",
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS checked_nodes (
          id BLOB PRIMARY KEY, kind TEXT NOT NULL, level INTEGER NOT NULL, size_bytes INTEGER,
          first_name TEXT, last_name TEXT, height_dirs INTEGER) WITHOUT ROWID;
        DROP TABLE IF EXISTS complete_objects;
      `);
    },
  },
  {
    version: 3,
    why:
      "the strong mode's Raft group: its hard state, bootstrap membership and applied index (raft_state, one row), " +
      "its log by index (raft_entries) and its latest snapshot (raft_snapshot, one row), beside the folders they change",
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS raft_state (
          id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote TEXT, commit_index INTEGER NOT NULL,
          applied INTEGER NOT NULL, bootstrap_config TEXT);
        CREATE TABLE IF NOT EXISTS raft_entries (
          log_index INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('normal', 'config')),
          data BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS raft_snapshot (
          id INTEGER PRIMARY KEY CHECK (id = 1), log_index INTEGER NOT NULL, term INTEGER NOT NULL, config TEXT NOT NULL,
          data BLOB NOT NULL);
      `);
    },
  },
];

/** The schema this code writes: the last step's. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

const SCHEMA_VERSION_KEY = "schema_version";

interface FolderRow {
  name: string;
  head: Uint8Array | null;
  mode: string;
  keep_versions: number | null;
  keep_days: number | null;
  created_ms: number;
  updated_ms: number;
}

interface VersionRow {
  folder: string;
  id: Uint8Array;
  sequence: number;
  root: Uint8Array;
  parents: Uint8Array;
  author: string;
  hlc_wall_ms: number;
  hlc_counter: number;
  message: string;
  origin: string;
  files: number;
  total_bytes: number;
  created_ms: number;
}

interface CheckedRow {
  kind: string;
  level: number;
  size_bytes: number | null;
  first_name: string | null;
  last_name: string | null;
  height_dirs: number | null;
}

interface RaftStateRow {
  term: number;
  vote: string | null;
  commit_index: number;
  applied: number;
  bootstrap_config: string | null;
}

interface RaftEntryRow {
  log_index: number;
  term: number;
  kind: string;
  data: Uint8Array;
}

interface RaftSnapshotRow {
  log_index: number;
  term: number;
  config: string;
  data: Uint8Array;
}

function entryFromRow(row: RaftEntryRow): Entry {
  return { term: row.term, index: row.log_index, kind: row.kind as EntryKind, data: new Uint8Array(row.data) };
}

function snapshotFromRow(row: RaftSnapshotRow): Snapshot {
  return { meta: { index: row.log_index, term: row.term, config: JSON.parse(row.config) as ClusterConfig }, data: new Uint8Array(row.data) };
}

function summaryFromRow(row: CheckedRow): NodeSummary {
  if (row.kind === "file") return { kind: "file", level: row.level, sizeBytes: row.size_bytes! };
  return { kind: "tree", level: row.level, firstName: row.first_name, lastName: row.last_name, heightDirs: row.height_dirs! };
}

function asId(bytes: Uint8Array): ObjectId {
  return new Uint8Array(bytes) as ObjectId;
}

function joinIds(ids: readonly ObjectId[]): Uint8Array {
  const out = new Uint8Array(ids.length * 32);
  ids.forEach((id, i) => out.set(id, i * 32));
  return out;
}

function splitIds(bytes: Uint8Array): ObjectId[] {
  const out: ObjectId[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(asId(bytes.subarray(i, i + 32)));
  return out;
}

function folderFromRow(row: FolderRow): FolderRecord {
  return {
    name: row.name,
    head: row.head ? asId(row.head) : null,
    mode: row.mode as ConsistencyMode,
    keepVersions: row.keep_versions,
    keepDays: row.keep_days,
    createdMs: row.created_ms,
    updatedMs: row.updated_ms,
  };
}

function versionFromRow(row: VersionRow): VersionRecord {
  return {
    folder: row.folder,
    id: asId(row.id),
    sequence: row.sequence,
    root: asId(row.root),
    parents: splitIds(row.parents),
    author: row.author,
    hlcWallMs: row.hlc_wall_ms,
    hlcCounter: row.hlc_counter,
    message: row.message,
    origin: row.origin as VersionOrigin,
    files: row.files,
    totalBytes: row.total_bytes,
    createdMs: row.created_ms,
  };
}

/** The schema a database is at: 0 for one with no tables yet. */
function schemaVersionOf(db: Database): number {
  const hasMeta = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== null;
  if (!hasMeta) return 0;
  const row = db.query("SELECT value FROM meta WHERE key = ?").get(SCHEMA_VERSION_KEY) as { value: string } | null;
  // Every release wrote its version when it made the file; tables without one are a file made
  // by a crash between the first CREATE and that write, so still at the first step.
  if (row === null) return 0;
  const version = Number(row.value);
  if (!Number.isSafeInteger(version) || version < 0) throw new Error(`metadata schema_version is not a version: ${JSON.stringify(row.value)}`);
  return version;
}

/**
 * Brings a database to the newest schema this code knows, one step per transaction (the step
 * and its version written together). Refuses, changing nothing, a schema newer than that.
 * `migrations` is a parameter for the tests of the mechanism; the node always runs MIGRATIONS.
 */
export function migrateSqliteMetadata(db: Database, location: string, migrations: readonly Migration[] = MIGRATIONS): number {
  const known = migrations.at(-1)?.version ?? 0;
  let version = schemaVersionOf(db);
  if (version > known) throw new MetadataSchemaTooNewError(location, version, known);
  for (const step of migrations) {
    if (step.version <= version) continue;
    db.transaction(() => {
      step.up(db);
      db.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(SCHEMA_VERSION_KEY, String(step.version));
    }).immediate();
    version = step.version;
  }
  return version;
}

export class SqliteMetadataStore implements MetadataStore {
  private closed = false;

  private constructor(
    private readonly db: Database,
    readonly path: string,
    private readonly schemaVersion: number,
  ) {}

  /**
   * Opens (or makes) the metadata database at `path`, once SQLite's quick check of an existing
   * file passed (metadata-damage.ts), and brings it to the current schema. Damage, found by the
   * check or by the open itself, is a MetadataDamagedError that names the file and the way to
   * recover, and nothing is changed; so is a schema newer than this code knows.
   */
  static open(path: string): SqliteMetadataStore {
    const damage = existsSync(path) ? metadataDamage(path) : undefined;
    if (damage !== undefined) {
      // The id goes into the message: one the damaged file holds is named only if it is an id.
      const nodeId = damage.nodeId !== undefined && nodeIdProblem(damage.nodeId) === undefined ? damage.nodeId : undefined;
      throw new MetadataDamagedError(path, damage.problem, nodeId);
    }
    let db: Database | undefined;
    try {
      db = new Database(path, { create: true, strict: true });
      // FULL: a committed head (what a push acknowledges) must survive a power cut.
      db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
      const version = migrateSqliteMetadata(db, path);
      return new SqliteMetadataStore(db, path, version);
    } catch (error) {
      db?.close();
      if (!isSqliteDamage(error)) throw error;
      throw new MetadataDamagedError(path, (error as Error).message, undefined);
    }
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.metaValue(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.db.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value);
  }

  private metaValue(key: string): string | undefined {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value;
  }

  async listFolders(): Promise<FolderRecord[]> {
    return (this.db.query("SELECT * FROM folders ORDER BY name").all() as FolderRow[]).map(folderFromRow);
  }

  async countFolders(): Promise<number> {
    return (this.db.query("SELECT COUNT(*) AS n FROM folders").get() as { n: number }).n;
  }

  async getFolder(name: string): Promise<FolderRecord | undefined> {
    return this.folder(name);
  }

  private folder(name: string): FolderRecord | undefined {
    const row = this.db.query("SELECT * FROM folders WHERE name = ?").get(name) as FolderRow | null;
    return row ? folderFromRow(row) : undefined;
  }

  async ensureFolder(name: string, nowMs: number, defaults: FolderDefaults = {}): Promise<FolderRecord> {
    this.db
      .query("INSERT OR IGNORE INTO folders (name, head, mode, keep_versions, keep_days, created_ms, updated_ms) VALUES (?, NULL, ?, ?, ?, ?, ?)")
      .run(name, defaults.mode ?? "eventual", defaults.keepVersions ?? null, defaults.keepDays ?? null, nowMs, nowMs);
    return this.folder(name)!;
  }

  async setRetention(name: string, retention: RetentionChange, nowMs: number): Promise<void> {
    this.db.transaction(() => {
      const folder = this.folder(name);
      if (!folder) throw new UnknownFolderError(name);
      this.db
        .query("UPDATE folders SET keep_versions = ?, keep_days = ?, updated_ms = ? WHERE name = ?")
        .run(
          retention.keepVersions === undefined ? folder.keepVersions : retention.keepVersions,
          retention.keepDays === undefined ? folder.keepDays : retention.keepDays,
          nowMs,
          name,
        );
    }).immediate();
  }

  async setFolderMode(name: string, mode: ConsistencyMode, nowMs: number): Promise<void> {
    const result = this.db.query("UPDATE folders SET mode = ?, updated_ms = ? WHERE name = ?").run(mode, nowMs, name);
    if (result.changes === 0) throw new UnknownFolderError(name);
  }

  async commitVersions(folder: string, expectedHead: ObjectId | null, newHead: ObjectId, versions: readonly NewVersionRecord[], nowMs: number, conditions: CommitConditions = {}): Promise<void> {
    this.db.transaction(() => {
      const current = this.folder(folder);
      if (!current) throw new UnknownFolderError(folder);
      if (conditions.onlyIfMode !== undefined && current.mode !== conditions.onlyIfMode) throw new FolderModeChangedError(folder, expectedHead, current.head, current.mode);
      const same = current.head === null ? expectedHead === null : expectedHead !== null && Buffer.compare(current.head, expectedHead) === 0;
      if (!same) throw new HeadMovedError(folder, expectedHead, current.head);
      this.insertVersions(folder, versions);
      this.db.query("UPDATE folders SET head = ?, updated_ms = ? WHERE name = ?").run(newHead, nowMs, folder);
    }).immediate();
  }

  async recordVersions(folder: string, versions: readonly NewVersionRecord[]): Promise<void> {
    this.db.transaction(() => {
      if (!this.folder(folder)) throw new UnknownFolderError(folder);
      this.insertVersions(folder, versions);
    }).immediate();
  }

  private insertVersions(folder: string, versions: readonly NewVersionRecord[]): void {
    // A sequence is never given twice in a folder, even after the newest versions were pruned:
    // a paging cursor names a sequence, and a version recorded while someone pages must sort
    // above every cursor handed out. The highest ever given is kept beside the versions.
    const highKey = `sequence_high/${folder}`;
    const next = this.db.query("SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM versions WHERE folder = ?").get(folder) as { next: number };
    let sequence = Math.max(next.next, Number(this.metaValue(highKey) ?? 0) + 1);
    const insert = this.db.query(
      `INSERT OR IGNORE INTO versions (folder, id, sequence, root, parents, author, hlc_wall_ms, hlc_counter, message, origin, files, total_bytes, created_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const v of versions) {
      const result = insert.run(folder, v.id, sequence, v.root, joinIds(v.parents), v.author, v.hlcWallMs, v.hlcCounter, v.message, v.origin, v.files, v.totalBytes, v.createdMs);
      if (result.changes > 0) sequence++;
    }
    this.db.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(highKey, String(sequence - 1));
  }

  async getVersion(folder: string, id: ObjectId): Promise<VersionRecord | undefined> {
    return this.version(folder, id);
  }

  async getVersions(folder: string, ids: readonly ObjectId[]): Promise<(VersionRecord | undefined)[]> {
    return ids.map((id) => this.version(folder, id));
  }

  private version(folder: string, id: ObjectId): VersionRecord | undefined {
    const row = this.db.query("SELECT * FROM versions WHERE folder = ? AND id = ?").get(folder, id) as VersionRow | null;
    return row ? versionFromRow(row) : undefined;
  }

  async findVersionsByPrefix(folder: string, hexPrefix: string, limit = 1000): Promise<VersionRecord[]> {
    // The ids with this prefix are exactly those from the prefix padded with 0s to the prefix
    // padded with fs: a range of the primary key (folder, id), read in O(log n), not a scan.
    const prefix = hexPrefix.toLowerCase();
    if (!/^[0-9a-f]{0,64}$/.test(prefix)) return [];
    const low = Buffer.from(prefix.padEnd(64, "0"), "hex");
    const high = Buffer.from(prefix.padEnd(64, "f"), "hex");
    const rows = this.db.query("SELECT * FROM versions WHERE folder = ? AND id BETWEEN ? AND ? ORDER BY id LIMIT ?").all(folder, low, high, limit) as VersionRow[];
    return rows.map(versionFromRow);
  }

  async listVersions(folder: string, limit = Number.MAX_SAFE_INTEGER): Promise<VersionRecord[]> {
    return (this.db.query("SELECT * FROM versions WHERE folder = ? ORDER BY sequence DESC LIMIT ?").all(folder, limit) as VersionRow[]).map(versionFromRow);
  }

  async listVersionsPage(folder: string, limit: number, beforeSequence?: number): Promise<VersionPage> {
    // One more than asked says whether anything older remains, without a count over the history.
    const rows = (
      beforeSequence === undefined
        ? this.db.query("SELECT * FROM versions WHERE folder = ? ORDER BY sequence DESC LIMIT ?").all(folder, limit + 1)
        : this.db.query("SELECT * FROM versions WHERE folder = ? AND sequence < ? ORDER BY sequence DESC LIMIT ?").all(folder, beforeSequence, limit + 1)
    ) as VersionRow[];
    const versions = rows.slice(0, limit).map(versionFromRow);
    return { versions, next: rows.length > limit ? versions.at(-1)!.sequence : null };
  }

  async listFoldersPage(limit: number, fromName?: string): Promise<FolderPage> {
    const rows = (
      fromName === undefined
        ? this.db.query("SELECT * FROM folders ORDER BY name LIMIT ?").all(limit + 1)
        : this.db.query("SELECT * FROM folders WHERE name >= ? ORDER BY name LIMIT ?").all(fromName, limit + 1)
    ) as FolderRow[];
    return { folders: rows.slice(0, limit).map(folderFromRow), next: rows.length > limit ? rows[limit]!.name : null };
  }

  async versionTotals(): Promise<VersionTotals[]> {
    return this.db.query("SELECT folder, COUNT(*) AS versions, COALESCE(SUM(total_bytes), 0) AS totalBytes FROM versions GROUP BY folder").all() as VersionTotals[];
  }

  async latestHlc(): Promise<{ wallMs: number; counter: number }> {
    // Asked of SQLite, so opening a node does not read its history.
    const row = this.db.query("SELECT hlc_wall_ms, hlc_counter FROM versions ORDER BY hlc_wall_ms DESC, hlc_counter DESC LIMIT 1").get() as
      | { hlc_wall_ms: number; hlc_counter: number }
      | null;
    return row ? { wallMs: row.hlc_wall_ms, counter: row.hlc_counter } : { wallMs: 0, counter: 0 };
  }

  async deleteVersions(folder: string, ids: readonly ObjectId[]): Promise<void> {
    const remove = this.db.query("DELETE FROM versions WHERE folder = ? AND id = ?");
    this.db.transaction(() => {
      for (const id of ids) remove.run(folder, id);
    }).immediate();
  }

  async isComplete(id: ObjectId): Promise<boolean> {
    return this.db.query("SELECT 1 FROM checked_nodes WHERE id = ?").get(id) !== null;
  }

  async completeSummary(id: ObjectId): Promise<NodeSummary | undefined> {
    return this.summary(id);
  }

  async completeSummaries(ids: readonly ObjectId[]): Promise<(NodeSummary | undefined)[]> {
    // One statement per LIMITS.indexLookupBatchIds ids (a shorter batch repeats its last id,
    // which IN ignores), so a commit's check of a big tree asks thousands of times, not millions.
    const size = LIMITS.indexLookupBatchIds;
    const select = this.db.query(
      `SELECT id, kind, level, size_bytes, first_name, last_name, height_dirs FROM checked_nodes WHERE id IN (${Array(size).fill("?").join(", ")})`,
    );
    const found = new Map<string, NodeSummary>();
    for (let start = 0; start < ids.length; start += size) {
      const batch: Uint8Array[] = ids.slice(start, start + size);
      while (batch.length < size) batch.push(batch[batch.length - 1]!);
      for (const row of select.all(...batch) as (CheckedRow & { id: Uint8Array })[]) found.set(idToHex(row.id as ObjectId), summaryFromRow(row));
    }
    return ids.map((id) => found.get(idToHex(id)));
  }

  private summary(id: ObjectId): NodeSummary | undefined {
    const row = this.db.query("SELECT kind, level, size_bytes, first_name, last_name, height_dirs FROM checked_nodes WHERE id = ?").get(id) as CheckedRow | null;
    return row ? summaryFromRow(row) : undefined;
  }

  async markComplete(nodes: readonly CheckedNode[]): Promise<void> {
    if (nodes.length === 0) return;
    const insert = this.db.query(
      "INSERT OR IGNORE INTO checked_nodes (id, kind, level, size_bytes, first_name, last_name, height_dirs) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    // In id order: inserts into the id index then land near each other (a batch of a big
    // tree's marks in walk order, scattered over the index, took several times as long).
    const sorted = [...nodes].sort((a, b) => Buffer.compare(a.id, b.id));
    this.db.transaction(() => {
      for (const { id, summary: s } of sorted) {
        if (s.kind === "file") insert.run(id, "file", s.level, s.sizeBytes, null, null, null);
        else insert.run(id, "tree", s.level, null, s.firstName, s.lastName, s.heightDirs);
      }
    }).immediate();
  }

  async unmarkComplete(ids: readonly ObjectId[]): Promise<void> {
    const remove = this.db.query("DELETE FROM checked_nodes WHERE id = ?");
    this.db.transaction(() => {
      for (const id of ids) remove.run(id);
    }).immediate();
  }

  async unmarkAllComplete(): Promise<void> {
    this.db.exec("DELETE FROM checked_nodes");
  }

  async listCompleteIds(): Promise<ObjectId[]> {
    return (this.db.query("SELECT id FROM checked_nodes").all() as { id: Uint8Array }[]).map((r) => asId(r.id));
  }

  // ---------- the Raft log and hard state ----------

  async loadRaft(): Promise<StoredRaft | undefined> {
    // One read transaction: a save landing between the statements cannot mix two states.
    return this.db.transaction(() => {
      const state = this.db.query("SELECT term, vote, commit_index, applied, bootstrap_config FROM raft_state WHERE id = 1").get() as RaftStateRow | null;
      if (state === null) return undefined;
      const snapshotRow = this.db.query("SELECT log_index, term, config, data FROM raft_snapshot WHERE id = 1").get() as RaftSnapshotRow | null;
      const entries = (this.db.query("SELECT log_index, term, kind, data FROM raft_entries ORDER BY log_index").all() as RaftEntryRow[]).map(entryFromRow);
      const stored: StoredRaft = {
        hardState: { term: state.term, vote: state.vote, commit: state.commit_index },
        entries,
        bootstrapConfig: state.bootstrap_config === null ? null : (JSON.parse(state.bootstrap_config) as ClusterConfig),
        applied: state.applied,
      };
      if (snapshotRow) stored.snapshot = snapshotFromRow(snapshotRow);
      return stored;
    }).deferred();
  }

  async saveRaft(save: RaftSave): Promise<void> {
    validateRaftSave(save);
    this.db.transaction(() => {
      const plan = planRaftSave(save, this.raftFacts(raftSaveLookups(save)));
      this.ensureRaftState();
      if (plan.snapshot) this.putSnapshot(plan.snapshot);
      if (plan.dropAllEntries) this.db.query("DELETE FROM raft_entries").run();
      else if (plan.dropEntriesThrough > 0) this.db.query("DELETE FROM raft_entries WHERE log_index <= ?").run(plan.dropEntriesThrough);
      if (plan.replaceFrom > 0) {
        this.db.query("DELETE FROM raft_entries WHERE log_index >= ?").run(plan.replaceFrom);
        const insert = this.db.query("INSERT INTO raft_entries (log_index, term, kind, data) VALUES (?, ?, ?, ?)");
        for (const e of plan.entries) insert.run(e.index, e.term, e.kind, e.data);
      }
      if (plan.hardState) {
        const { term, vote, commit } = plan.hardState;
        this.db.query("UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 1").run(term, vote, commit);
      }
      if (plan.bootstrapConfig !== undefined) {
        const config = plan.bootstrapConfig === null ? null : JSON.stringify({ voters: plan.bootstrapConfig.voters });
        this.db.query("UPDATE raft_state SET bootstrap_config = ? WHERE id = 1").run(config);
      }
    }).immediate();
  }

  async compactRaft(snapshot: Snapshot): Promise<void> {
    validateCompaction(snapshot);
    this.db.transaction(() => {
      checkCompaction(snapshot, this.raftFacts([snapshot.meta.index]));
      this.ensureRaftState();
      this.putSnapshot(snapshot);
      this.db.query("DELETE FROM raft_entries WHERE log_index <= ?").run(snapshot.meta.index);
      this.db.query("UPDATE raft_state SET applied = MAX(applied, ?) WHERE id = 1").run(snapshot.meta.index);
    }).immediate();
  }

  async setRaftApplied(index: number): Promise<void> {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`an applied index must be a non-negative safe integer, not ${index}`);
    this.db.transaction(() => {
      this.ensureRaftState();
      this.db.query("UPDATE raft_state SET applied = MAX(applied, ?) WHERE id = 1").run(index);
    }).immediate();
  }

  /** What planRaftSave needs to know of the stored log; call inside the write transaction. */
  private raftFacts(lookups: number[]): RaftLogFacts {
    const snapshot = this.db.query("SELECT log_index, term FROM raft_snapshot WHERE id = 1").get() as { log_index: number; term: number } | null;
    const last = this.db.query("SELECT MAX(log_index) AS last FROM raft_entries").get() as { last: number | null };
    const state = this.db.query("SELECT term FROM raft_state WHERE id = 1").get() as { term: number } | null;
    const termOf = this.db.query("SELECT term FROM raft_entries WHERE log_index = ?");
    const terms = new Map<number, number>();
    for (const index of lookups) {
      const row = termOf.get(index) as { term: number } | null;
      if (row) terms.set(index, row.term);
    }
    return {
      snapshot: snapshot ? { index: snapshot.log_index, term: snapshot.term } : undefined,
      lastIndex: last.last ?? snapshot?.log_index ?? 0,
      hardTerm: state?.term,
      termAt: (index) => terms.get(index),
    };
  }

  private ensureRaftState(): void {
    this.db.query("INSERT OR IGNORE INTO raft_state (id, term, vote, commit_index, applied, bootstrap_config) VALUES (1, 0, NULL, 0, 0, NULL)").run();
  }

  private putSnapshot(snapshot: Snapshot): void {
    this.db
      .query("INSERT OR REPLACE INTO raft_snapshot (id, log_index, term, config, data) VALUES (1, ?, ?, ?, ?)")
      .run(snapshot.meta.index, snapshot.meta.term, JSON.stringify({ voters: snapshot.meta.config.voters }), snapshot.data);
  }

  async integrityCheck(): Promise<string> {
    const rows = this.db.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
    const pages = rows.map((row) => row.integrity_check).join("; ");
    if (pages !== "ok") return pages;
    // The file is sound; what its Raft rows say of each other is the rest.
    const log = this.db.query("SELECT COUNT(*) AS n, MIN(log_index) AS lo, MAX(log_index) AS hi FROM raft_entries").get() as { n: number; lo: number | null; hi: number | null };
    const drops = this.db.query("SELECT COUNT(*) AS n FROM raft_entries a JOIN raft_entries b ON b.log_index = a.log_index + 1 WHERE b.term < a.term").get() as { n: number };
    const snapshot = this.db.query("SELECT log_index FROM raft_snapshot WHERE id = 1").get() as { log_index: number } | null;
    const state = this.db.query("SELECT commit_index FROM raft_state WHERE id = 1").get() as { commit_index: number } | null;
    const problems = raftLogProblems({
      entries: log.n,
      minIndex: log.lo,
      maxIndex: log.hi,
      snapshotIndex: snapshot?.log_index ?? null,
      termDrops: drops.n,
      hasState: state !== null,
      commit: state?.commit_index ?? 0,
    });
    return problems.length === 0 ? "ok" : problems.join("; ");
  }

  isDamage(error: unknown): boolean {
    return isSqliteDamage(error);
  }

  async stat(): Promise<MetadataStoreStat> {
    const count = (table: string) => (this.db.query(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    // The database and its write-ahead log: what a backup of the data folder copies. A database
    // in memory (tests) has no file to measure.
    let sizeBytes: number | null = null;
    if (this.path !== ":memory:") {
      sizeBytes = 0;
      for (const file of [this.path, `${this.path}-wal`]) {
        try {
          sizeBytes += statSync(file).size;
        } catch {
          // No log yet (or after a checkpoint): it takes nothing.
        }
      }
    }
    return {
      backend: "sqlite",
      location: this.path,
      sizeBytes,
      folders: count("folders"),
      versions: count("versions"),
      checkedNodes: count("checked_nodes"),
      schemaVersion: this.schemaVersion,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
