// The stat cache: lets a scan skip re-reading a file whose size, mtime, ctime and inode are
// unchanged since the last scan, reusing the file node id computed then.
//
// Stored in a small SQLite database beside the synced directory's state (DIR/.dsync/).
// A file modified in the same clock tick as it was scanned would look unchanged afterwards
// ("racily clean"), so entries whose mtime is too close to the scan's start are not recorded.
import { Database } from "bun:sqlite";
import type { ObjectId } from "../core/id.ts";

export interface StatCacheEntry {
  sizeBytes: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  inode: bigint;
  mode: number;
  fileId: ObjectId;
  /** How many chunks the file has, so a cached file still counts in push reports. */
  chunkCount: number;
}

export interface StatCache {
  get(path: string): StatCacheEntry | undefined;
  set(path: string, entry: StatCacheEntry): void;
  /** Drops every path not set or confirmed during this scan, then persists. */
  finish(seenPaths: ReadonlySet<string>): void;
  /** Persists entries for files dsync itself just wrote (a pull), leaving other paths alone. */
  remember(entries: ReadonlyMap<string, StatCacheEntry>): void;
  /** How many files it remembers: about the last scan's count (a progress bar's total). */
  size(): number;
  close(): void;
}

/** Timestamps closer than this to the scan start are not trusted for caching. */
export const RACY_WINDOW_NS = 100_000_000n;

/** Entries set during a scan that are written to the database at once, so a huge scan holds few. */
const PENDING_ROWS_MAX = 8192;

interface StatCacheRow {
  path: string;
  size: number;
  mtime_ns: string;
  ctime_ns: string;
  inode: string;
  mode: number;
  file_id: Uint8Array;
  chunk_count: number;
}

export class SqliteStatCache implements StatCache {
  private readonly db: Database;
  private readonly pending = new Map<string, StatCacheEntry>();
  /** Every row, read in one query on first use: one lookup per file would cost more than the lstat. */
  private loaded: Map<string, StatCacheEntry> | undefined;
  /** Whether pending entries went to the database before finish() (then `loaded` lacks them). */
  private writtenEarly = false;

  constructor(path: string) {
    this.db = new Database(path, { create: true });
    this.db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    this.db.exec(`CREATE TABLE IF NOT EXISTS stat_cache (
      path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns TEXT NOT NULL, ctime_ns TEXT NOT NULL,
      inode TEXT NOT NULL, mode INTEGER NOT NULL, file_id BLOB NOT NULL, chunk_count INTEGER NOT NULL) WITHOUT ROWID`);
  }

  private rows(): Map<string, StatCacheEntry> {
    if (!this.loaded) {
      this.loaded = new Map();
      for (const row of this.db.query("SELECT * FROM stat_cache").all() as StatCacheRow[]) {
        this.loaded.set(row.path, {
          sizeBytes: row.size,
          mtimeNs: BigInt(row.mtime_ns),
          ctimeNs: BigInt(row.ctime_ns),
          inode: BigInt(row.inode),
          mode: row.mode,
          fileId: new Uint8Array(row.file_id) as ObjectId,
          chunkCount: row.chunk_count,
        });
      }
    }
    return this.loaded;
  }

  get(path: string): StatCacheEntry | undefined {
    return this.rows().get(path);
  }

  size(): number {
    return this.rows().size;
  }

  /** Forgets everything (when the objects it points at are gone). */
  clear(): void {
    this.db.exec("DELETE FROM stat_cache");
    this.loaded = new Map();
    this.pending.clear();
  }

  set(path: string, entry: StatCacheEntry): void {
    this.pending.set(path, entry);
    // A first scan of a million files would otherwise hold a million entries until finish().
    if (this.pending.size >= PENDING_ROWS_MAX) this.writePending();
  }

  /**
   * Writes the pending entries now, in one transaction. The paths are set during this scan, so
   * the scan never looks them up again: `loaded` is left as it was (it is reloaded after finish()).
   */
  private writePending(): void {
    const insert = this.db.prepare(
      "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ctime_ns, inode, mode, file_id, chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.db.transaction(() => {
      for (const [path, e] of this.pending) {
        insert.run(path, e.sizeBytes, e.mtimeNs.toString(), e.ctimeNs.toString(), e.inode.toString(), e.mode, e.fileId, e.chunkCount);
      }
    })();
    for (const path of this.pending.keys()) this.loaded?.delete(path);
    this.pending.clear();
    this.writtenEarly = true;
  }

  remember(entries: ReadonlyMap<string, StatCacheEntry>): void {
    const insert = this.db.prepare(
      "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ctime_ns, inode, mode, file_id, chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.db.transaction(() => {
      for (const [path, e] of entries) {
        insert.run(path, e.sizeBytes, e.mtimeNs.toString(), e.ctimeNs.toString(), e.inode.toString(), e.mode, e.fileId, e.chunkCount);
      }
    })();
    // Not added to `loaded`: a pull remembers every file it writes, a million for a large tree,
    // and no scan follows in the same process; a lookup reads the database again.
    this.loaded = undefined;
  }

  /** `seenPaths` must hold every remembered path the scan confirmed; paths not remembered need not be in it. */
  finish(seenPaths: ReadonlySet<string>): void {
    const insert = this.db.prepare(
      "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ctime_ns, inode, mode, file_id, chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    const remove = this.db.prepare("DELETE FROM stat_cache WHERE path = ?");
    const existing = [...this.rows().keys()];
    const gone = existing.filter((path) => !seenPaths.has(path));
    // An unchanged directory writes nothing (no transaction, no sync).
    if (gone.length === 0 && this.pending.size === 0) return this.forgetIfWrittenEarly();
    this.db.transaction(() => {
      for (const path of existing) if (!seenPaths.has(path)) remove.run(path);
      for (const [path, e] of this.pending) {
        insert.run(path, e.sizeBytes, e.mtimeNs.toString(), e.ctimeNs.toString(), e.inode.toString(), e.mode, e.fileId, e.chunkCount);
      }
    })();
    for (const path of existing) if (!seenPaths.has(path)) this.loaded?.delete(path);
    for (const [path, entry] of this.pending) this.loaded?.set(path, entry);
    this.pending.clear();
    this.forgetIfWrittenEarly();
  }

  /** After entries went to the database early, `loaded` lacks them: read it again if asked. */
  private forgetIfWrittenEarly(): void {
    if (!this.writtenEarly) return;
    this.loaded = undefined;
    this.writtenEarly = false;
  }

  close(): void {
    this.db.close();
  }
}

/** A stat cache that remembers nothing: every file is read. */
export class NoStatCache implements StatCache {
  get(): undefined {
    return undefined;
  }
  set(): void {}
  finish(): void {}
  remember(): void {}
  size(): number {
    return 0;
  }
  close(): void {}
}
