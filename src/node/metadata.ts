// The node's metadata: folders and their heads, the version index, the node's identity, and
// the objects known to be complete: checked by an earlier commit, with everything below them
// present and structurally valid, each with the summary that check established (its kind,
// level, first and last name or size; see core/tree-structure.ts), so a later check matches a
// reference against the summary instead of re-reading the subtree.
//
// Objects themselves live in the object store; this database only indexes them. A head moves
// by compare-and-set inside one transaction with synchronous=FULL, so a head that was
// acknowledged survives a power cut, and a head never names a version that is not stored.
import { Database } from "bun:sqlite";
import type { ObjectId } from "../core/id.ts";
import type { CheckedNode, NodeSummary } from "../core/tree-structure.ts";

import { HeadMovedError, type ConsistencyMode, type FolderRecord, type VersionOrigin, type VersionRecord } from "./metadata-records.ts";

export { HeadMovedError, type ConsistencyMode, type FolderRecord, type VersionOrigin, type VersionRecord };

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

// 2: completeness marks carry the summary of what was checked (checked_nodes); the marks of
// schema 1 (complete_objects) said nothing of kind or order, so they are dropped, not trusted:
// they are only a cache, and the next commit re-checks what it needs.
const SCHEMA_VERSION = 2;

interface CheckedRow {
  kind: string;
  level: number;
  size_bytes: number | null;
  first_name: string | null;
  last_name: string | null;
  height_dirs: number | null;
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

export class Metadata {
  private readonly db: Database;

  constructor(path: string) {
    this.db = new Database(path, { create: true, strict: true });
    // FULL: a committed head (what a push acknowledges) must survive a power cut.
    this.db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
    this.db.exec(`
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
      CREATE TABLE IF NOT EXISTS checked_nodes (
        id BLOB PRIMARY KEY, kind TEXT NOT NULL, level INTEGER NOT NULL, size_bytes INTEGER,
        first_name TEXT, last_name TEXT, height_dirs INTEGER) WITHOUT ROWID;
    `);
    const version = this.getMeta("schema_version");
    if (version !== undefined && Number(version) > SCHEMA_VERSION) {
      throw new Error(`metadata schema ${version} is newer than this dsync understands (${SCHEMA_VERSION})`);
    }
    if (version === undefined || Number(version) < SCHEMA_VERSION) {
      this.db.transaction(() => {
        this.db.exec("DROP TABLE IF EXISTS complete_objects");
        this.setMeta("schema_version", String(SCHEMA_VERSION));
      }).immediate();
    }
  }

  getMeta(key: string): string | undefined {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value);
  }

  listFolders(): FolderRecord[] {
    return (this.db.query("SELECT * FROM folders ORDER BY name").all() as FolderRow[]).map(folderFromRow);
  }

  countFolders(): number {
    return (this.db.query("SELECT COUNT(*) AS n FROM folders").get() as { n: number }).n;
  }

  getFolder(name: string): FolderRecord | undefined {
    const row = this.db.query("SELECT * FROM folders WHERE name = ?").get(name) as FolderRow | null;
    return row ? folderFromRow(row) : undefined;
  }

  /** Creates the folder if absent; returns it either way. */
  ensureFolder(name: string, nowMs: number, defaults: { keepVersions?: number | null; keepDays?: number | null; mode?: ConsistencyMode } = {}): FolderRecord {
    this.db
      .query("INSERT OR IGNORE INTO folders (name, head, mode, keep_versions, keep_days, created_ms, updated_ms) VALUES (?, NULL, ?, ?, ?, ?, ?)")
      .run(name, defaults.mode ?? "eventual", defaults.keepVersions ?? null, defaults.keepDays ?? null, nowMs, nowMs);
    return this.getFolder(name)!;
  }

  setRetention(name: string, retention: { keepVersions?: number | null; keepDays?: number | null }, nowMs: number): void {
    const folder = this.getFolder(name);
    if (!folder) throw new Error(`no folder ${name}`);
    this.db
      .query("UPDATE folders SET keep_versions = ?, keep_days = ?, updated_ms = ? WHERE name = ?")
      .run(
        retention.keepVersions === undefined ? folder.keepVersions : retention.keepVersions,
        retention.keepDays === undefined ? folder.keepDays : retention.keepDays,
        nowMs,
        name,
      );
  }

  /**
   * Records versions and moves the head from `expectedHead` to `newHead` atomically.
   * Throws HeadMovedError (changing nothing) when the head is no longer `expectedHead`.
   */
  commitVersions(folder: string, expectedHead: ObjectId | null, newHead: ObjectId, versions: Omit<VersionRecord, "sequence" | "folder">[], nowMs: number): void {
    const run = this.db.transaction(() => {
      const current = this.getFolder(folder);
      if (!current) throw new Error(`no folder ${folder}`);
      const same = current.head === null ? expectedHead === null : expectedHead !== null && Buffer.compare(current.head, expectedHead) === 0;
      if (!same) throw new HeadMovedError(folder, expectedHead, current.head);
      this.insertVersions(folder, versions);
      this.db.query("UPDATE folders SET head = ?, updated_ms = ? WHERE name = ?").run(newHead, nowMs, folder);
    });
    run.immediate();
  }

  /** Records versions without moving the head (history received from a peer). */
  recordVersions(folder: string, versions: Omit<VersionRecord, "sequence" | "folder">[]): void {
    this.db.transaction(() => this.insertVersions(folder, versions)).immediate();
  }

  private insertVersions(folder: string, versions: Omit<VersionRecord, "sequence" | "folder">[]): void {
    // A sequence is never given twice in a folder, even after the newest versions were pruned:
    // a paging cursor names a sequence, and a version recorded while someone pages must sort
    // above every cursor handed out. The highest ever given is kept beside the versions.
    const highKey = `sequence_high/${folder}`;
    const next = this.db.query("SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM versions WHERE folder = ?").get(folder) as { next: number };
    let sequence = Math.max(next.next, Number(this.getMeta(highKey) ?? 0) + 1);
    const insert = this.db.query(
      `INSERT OR IGNORE INTO versions (folder, id, sequence, root, parents, author, hlc_wall_ms, hlc_counter, message, origin, files, total_bytes, created_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const v of versions) {
      const result = insert.run(folder, v.id, sequence, v.root, joinIds(v.parents), v.author, v.hlcWallMs, v.hlcCounter, v.message, v.origin, v.files, v.totalBytes, v.createdMs);
      if (result.changes > 0) sequence++;
    }
    this.setMeta(highKey, String(sequence - 1));
  }

  getVersion(folder: string, id: ObjectId): VersionRecord | undefined {
    const row = this.db.query("SELECT * FROM versions WHERE folder = ? AND id = ?").get(folder, id) as VersionRow | null;
    return row ? versionFromRow(row) : undefined;
  }

  /** Versions whose hex id starts with prefix (for short ids typed by people). */
  findVersionsByPrefix(folder: string, hexPrefix: string, limit = 1000): VersionRecord[] {
    // The ids with this prefix are exactly those from the prefix padded with 0s to the prefix
    // padded with fs: a range of the primary key (folder, id), read in O(log n), not a scan.
    const prefix = hexPrefix.toLowerCase();
    if (!/^[0-9a-f]{0,64}$/.test(prefix)) return [];
    const low = Buffer.from(prefix.padEnd(64, "0"), "hex");
    const high = Buffer.from(prefix.padEnd(64, "f"), "hex");
    const rows = this.db.query("SELECT * FROM versions WHERE folder = ? AND id BETWEEN ? AND ? ORDER BY id LIMIT ?").all(folder, low, high, limit) as VersionRow[];
    return rows.map(versionFromRow);
  }

  /** Newest first, all of them: for the node's own passes (retention, verify), never a reply (listVersionsPage). */
  listVersions(folder: string, limit = Number.MAX_SAFE_INTEGER): VersionRecord[] {
    return (this.db.query("SELECT * FROM versions WHERE folder = ? ORDER BY sequence DESC LIMIT ?").all(folder, limit) as VersionRow[]).map(versionFromRow);
  }

  /**
   * One page of a folder's history, newest first: at most `limit` versions whose sequence is
   * below `beforeSequence` (all when absent). Keyset paging on versions_by_sequence (folder,
   * sequence): the cost is that of the page, however long the history, and a version recorded
   * while someone pages gets a sequence above every one listed, so it never shifts a later page.
   * `next` is the sequence to ask below for the page after, null when this page is the last.
   */
  listVersionsPage(folder: string, limit: number, beforeSequence?: number): { versions: VersionRecord[]; next: number | null } {
    // One more than asked says whether anything older remains, without a count over the history.
    const rows = (
      beforeSequence === undefined
        ? this.db.query("SELECT * FROM versions WHERE folder = ? ORDER BY sequence DESC LIMIT ?").all(folder, limit + 1)
        : this.db.query("SELECT * FROM versions WHERE folder = ? AND sequence < ? ORDER BY sequence DESC LIMIT ?").all(folder, beforeSequence, limit + 1)
    ) as VersionRow[];
    const versions = rows.slice(0, limit).map(versionFromRow);
    return { versions, next: rows.length > limit ? versions.at(-1)!.sequence : null };
  }

  /**
   * One page of folders by name: at most `limit`, from `fromName` on (keyset on the primary key).
   * `next` is the name the page after starts at, null when this page is the last.
   */
  listFoldersPage(limit: number, fromName?: string): { folders: FolderRecord[]; next: string | null } {
    const rows = (
      fromName === undefined
        ? this.db.query("SELECT * FROM folders ORDER BY name LIMIT ?").all(limit + 1)
        : this.db.query("SELECT * FROM folders WHERE name >= ? ORDER BY name LIMIT ?").all(fromName, limit + 1)
    ) as FolderRow[];
    return { folders: rows.slice(0, limit).map(folderFromRow), next: rows.length > limit ? rows[limit]!.name : null };
  }

  /** Per folder: how many versions are kept and the sum of their file bytes (one aggregate query, for metrics). */
  versionTotals(): { folder: string; versions: number; totalBytes: number }[] {
    return this.db.query("SELECT folder, COUNT(*) AS versions, COALESCE(SUM(total_bytes), 0) AS totalBytes FROM versions GROUP BY folder").all() as {
      folder: string;
      versions: number;
      totalBytes: number;
    }[];
  }

  /**
   * The latest hybrid-logical-clock stamp of any version recorded here (zero when none), which
   * a node's clock starts from. Asked of SQLite, so opening a node does not read its history.
   */
  latestHlc(): { wallMs: number; counter: number } {
    const row = this.db.query("SELECT hlc_wall_ms, hlc_counter FROM versions ORDER BY hlc_wall_ms DESC, hlc_counter DESC LIMIT 1").get() as
      | { hlc_wall_ms: number; hlc_counter: number }
      | null;
    return row ? { wallMs: row.hlc_wall_ms, counter: row.hlc_counter } : { wallMs: 0, counter: 0 };
  }

  deleteVersions(folder: string, ids: readonly ObjectId[]): void {
    const remove = this.db.query("DELETE FROM versions WHERE folder = ? AND id = ?");
    this.db.transaction(() => {
      for (const id of ids) remove.run(folder, id);
    }).immediate();
  }

  isComplete(id: ObjectId): boolean {
    return this.db.query("SELECT 1 FROM checked_nodes WHERE id = ?").get(id) !== null;
  }

  /** What the check that marked an object complete established about it; undefined if none did. */
  completeSummary(id: ObjectId): NodeSummary | undefined {
    const row = this.db.query("SELECT kind, level, size_bytes, first_name, last_name, height_dirs FROM checked_nodes WHERE id = ?").get(id) as CheckedRow | null;
    return row ? summaryFromRow(row) : undefined;
  }

  /** Marks objects complete with what their check established (only ever the output of a check). */
  markComplete(nodes: readonly CheckedNode[]): void {
    if (nodes.length === 0) return;
    const insert = this.db.query(
      "INSERT OR IGNORE INTO checked_nodes (id, kind, level, size_bytes, first_name, last_name, height_dirs) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.db.transaction(() => {
      for (const { id, summary: s } of nodes) {
        if (s.kind === "file") insert.run(id, "file", s.level, s.sizeBytes, null, null, null);
        else insert.run(id, "tree", s.level, null, s.firstName, s.lastName, s.heightDirs);
      }
    }).immediate();
  }

  /** Forgets completeness for objects about to be deleted; must commit before they are deleted. */
  unmarkComplete(ids: readonly ObjectId[]): void {
    const remove = this.db.query("DELETE FROM checked_nodes WHERE id = ?");
    this.db.transaction(() => {
      for (const id of ids) remove.run(id);
    }).immediate();
  }

  listCompleteIds(): ObjectId[] {
    return (this.db.query("SELECT id FROM checked_nodes").all() as { id: Uint8Array }[]).map((r) => asId(r.id));
  }

  integrityCheck(): string {
    const row = this.db.query("PRAGMA integrity_check").get() as { integrity_check: string };
    return row.integrity_check;
  }

  close(): void {
    this.db.close();
  }
}
