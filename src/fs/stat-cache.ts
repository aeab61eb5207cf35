// The stat cache: lets a scan skip re-reading a file whose size, mtime, ctime and inode are
// unchanged since the last scan, reusing the file node id computed then.
//
// Stored in a small SQLite database beside the synced directory's state (DIR/.dsync/).
// A file modified in the same clock tick as it was scanned would look unchanged afterwards
// ("racily clean"), so entries whose mtime is too close to the scan's start are not recorded.
import { Database, type Statement } from "bun:sqlite";
import type { ObjectId } from "../core/id.ts";

export interface StatCacheEntry {
  sizeBytes: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  inode: bigint;
  mode: number;
  fileId: ObjectId;
  /** `fileId` names the file's one chunk (its tree entry has no file node); absent: a file node. */
  idNamesChunk?: boolean;
  /** How many chunks the file has, so a cached file still counts in push reports. */
  chunkCount: number;
}

/** What the cache remembers of one directory: its files by name, and which subdirectories hold remembered files. */
export interface StatCacheDirectory {
  readonly files: ReadonlyMap<string, StatCacheEntry>;
  /** Names of child directories with remembered files somewhere below them. */
  readonly subdirectories: ReadonlySet<string>;
}

/**
 * What a scan recorded of a directory all of whose entries it stored, so the next scan can take
 * its tree id without building, encoding or hashing the tree (scanner.ts says when).
 */
export interface DirectoryRecord {
  /** A digest of every entry's name, kind and what fixes its tree entry (stat, link target, subdirectory's tree id). */
  fingerprint: Uint8Array;
  treeId: ObjectId;
  /** Chunks across the directory's own files, so a reused directory still counts them. */
  chunkCount: number;
}

export interface StatCache {
  /** One path's entry (a point lookup; a scan uses `directory`). */
  get(path: string): StatCacheEntry | undefined;
  /**
   * What is remembered directly in the directory at `relativePath` ("" for the root): one
   * indexed range query as a scan enters it, so a scan holds only the directories it is inside.
   */
  directory(relativePath: string): StatCacheDirectory;
  /**
   * The scan is done with a directory: remembered files in it not named in `seenFiles`, and
   * everything below remembered subdirectories not in `seenSubdirectories`, are dropped at finish().
   */
  leaveDirectory(relativePath: string, remembered: StatCacheDirectory, seenFiles: ReadonlySet<string>, seenSubdirectories: ReadonlySet<string>): void;
  set(path: string, entry: StatCacheEntry): void;
  /** The record of the directory at `relativePath` from an earlier scan (one point lookup). */
  directoryRecord(relativePath: string): DirectoryRecord | undefined;
  /** Records a directory for the next scan (written with the entries). */
  setDirectoryRecord(relativePath: string, record: DirectoryRecord): void;
  /** Drops what leaveDirectory found gone, writes what was set, then persists. */
  finish(): void;
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
  file_id_names_chunk: number;
}

/**
 * Rows read per query at most while listing a directory's entries. A row below a subdirectory
 * ends its query (the walk jumps past the subdirectory), so the rows after it in the batch are
 * read for nothing: the first query, and each after a jump, reads one row, and each query of
 * the directory's own files twice as many as the last, up to this. Rows read for nothing are
 * then at most as many as rows used. At 512 per query, the root of a cache of 1 000 000 files
 * in 1 000 directories read 512 000 rows to use 1 000, and a first push's client grew by
 * ~110 MB in that one call at the end of its scan.
 */
const DIRECTORY_ROWS_BATCH = 512;

/** Paths of gone files (or prefixes of gone subtrees) held before they are dropped at once. */
const PENDING_DROPS_MAX = 8192;

const INSERT_ROW =
  "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ctime_ns, inode, mode, file_id, chunk_count, file_id_names_chunk) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

function entryOfRow(row: StatCacheRow): StatCacheEntry {
  const entry: StatCacheEntry = {
    sizeBytes: row.size,
    mtimeNs: BigInt(row.mtime_ns),
    ctimeNs: BigInt(row.ctime_ns),
    inode: BigInt(row.inode),
    mode: row.mode,
    fileId: new Uint8Array(row.file_id) as ObjectId,
    chunkCount: row.chunk_count,
  };
  if (row.file_id_names_chunk === 1) entry.idNamesChunk = true;
  return entry;
}

/**
 * The cache in SQLite, keyed by path. Paths sort bytewise, so everything below a directory `d`
 * lies between `d/` and `d0` ('0' follows '/'): a directory's own files are read by walking that
 * range and jumping over each subdirectory's range, one index seek per subdirectory, never
 * reading rows deeper down. Nothing is held for the whole tree.
 */
export class SqliteStatCache implements StatCache {
  private readonly db: Database;
  private readonly pending = new Map<string, StatCacheEntry>();
  private readonly pendingDirectories = new Map<string, DirectoryRecord>();
  /** Paths of files found gone, and prefixes (`d/x/`) of subtrees found gone, not yet dropped. */
  private goneFiles: string[] = [];
  private goneSubtrees: string[] = [];
  /** Rows from (or after) ?1 below ?2, and the same for the root (no end), ?3 at most. */
  private readonly rowsFrom: Statement;
  private readonly rowsAfter: Statement;
  private readonly rootRowsFrom: Statement;
  private readonly rootRowsAfter: Statement;
  private readonly rowAt: Statement;
  private readonly directoryRecordAt: Statement;

  constructor(path: string) {
    this.db = new Database(path, { create: true });
    this.db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    this.db.exec(`CREATE TABLE IF NOT EXISTS stat_cache (
      path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns TEXT NOT NULL, ctime_ns TEXT NOT NULL,
      inode TEXT NOT NULL, mode INTEGER NOT NULL, file_id BLOB NOT NULL, chunk_count INTEGER NOT NULL,
      file_id_names_chunk INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`);
    // A cache from before files could be named by their one chunk: every id it holds is a file node's.
    const columns = this.db.prepare("PRAGMA table_info(stat_cache)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "file_id_names_chunk")) this.db.exec("ALTER TABLE stat_cache ADD COLUMN file_id_names_chunk INTEGER NOT NULL DEFAULT 0");
    // One row per directory a scan could record (scanner.ts); a cache from before it has none
    // and gains them as it scans.
    this.db.exec(`CREATE TABLE IF NOT EXISTS directory_records (
      path TEXT PRIMARY KEY, fingerprint BLOB NOT NULL, tree_id BLOB NOT NULL, chunk_count INTEGER NOT NULL) WITHOUT ROWID`);
    // Both bounds in the key's range: an end only tested per row ("?2 IS NULL OR path < ?2")
    // would let a directory's query read on through the rest of the table.
    this.rowsFrom = this.db.prepare("SELECT * FROM stat_cache WHERE path >= ?1 AND path < ?2 ORDER BY path LIMIT ?3");
    this.rowsAfter = this.db.prepare("SELECT * FROM stat_cache WHERE path > ?1 AND path < ?2 ORDER BY path LIMIT ?3");
    this.rootRowsFrom = this.db.prepare("SELECT * FROM stat_cache WHERE path >= ?1 ORDER BY path LIMIT ?2");
    this.rootRowsAfter = this.db.prepare("SELECT * FROM stat_cache WHERE path > ?1 ORDER BY path LIMIT ?2");
    this.rowAt = this.db.prepare("SELECT * FROM stat_cache WHERE path = ?");
    this.directoryRecordAt = this.db.prepare("SELECT fingerprint, tree_id, chunk_count FROM directory_records WHERE path = ?");
  }

  get(path: string): StatCacheEntry | undefined {
    const row = this.rowAt.get(path) as StatCacheRow | null;
    return row ? entryOfRow(row) : undefined;
  }

  directory(relativePath: string): StatCacheDirectory {
    const prefix = relativePath === "" ? "" : `${relativePath}/`;
    const end = relativePath === "" ? null : `${relativePath}0`;
    const files = new Map<string, StatCacheEntry>();
    const subdirectories = new Set<string>();
    let cursor = prefix;
    let inclusive = true;
    let limit = 1;
    for (;;) {
      const rows = (
        end === null
          ? (inclusive ? this.rootRowsFrom : this.rootRowsAfter).all(cursor, limit)
          : (inclusive ? this.rowsFrom : this.rowsAfter).all(cursor, end, limit)
      ) as StatCacheRow[];
      let jumped = false;
      for (const row of rows) {
        const rest = row.path.slice(prefix.length);
        const slash = rest.indexOf("/");
        if (slash < 0) {
          files.set(rest, entryOfRow(row));
          continue;
        }
        // A file deeper down: note its subdirectory and skip past everything below it.
        const subdirectory = rest.slice(0, slash);
        subdirectories.add(subdirectory);
        cursor = `${prefix}${subdirectory}0`;
        inclusive = true;
        jumped = true;
        break;
      }
      if (jumped) {
        limit = 1;
        continue;
      }
      if (rows.length < limit) break;
      cursor = rows[rows.length - 1]!.path;
      inclusive = false;
      limit = Math.min(limit * 2, DIRECTORY_ROWS_BATCH);
    }
    return { files, subdirectories };
  }

  leaveDirectory(relativePath: string, remembered: StatCacheDirectory, seenFiles: ReadonlySet<string>, seenSubdirectories: ReadonlySet<string>): void {
    const prefix = relativePath === "" ? "" : `${relativePath}/`;
    for (const name of remembered.files.keys()) if (!seenFiles.has(name)) this.goneFiles.push(prefix + name);
    for (const name of remembered.subdirectories) if (!seenSubdirectories.has(name)) this.goneSubtrees.push(`${prefix}${name}/`);
    // Safe at any time: the scan has left these paths and does not look them up again.
    if (this.goneFiles.length + this.goneSubtrees.length >= PENDING_DROPS_MAX) this.writePending();
  }

  size(): number {
    return (this.db.query("SELECT count(*) AS n FROM stat_cache").get() as { n: number }).n;
  }

  directoryRecord(relativePath: string): DirectoryRecord | undefined {
    const row = this.directoryRecordAt.get(relativePath) as { fingerprint: Uint8Array; tree_id: Uint8Array; chunk_count: number } | null;
    return row ? { fingerprint: new Uint8Array(row.fingerprint), treeId: new Uint8Array(row.tree_id) as ObjectId, chunkCount: row.chunk_count } : undefined;
  }

  setDirectoryRecord(relativePath: string, record: DirectoryRecord): void {
    this.pendingDirectories.set(relativePath, record);
    if (this.pendingDirectories.size >= PENDING_ROWS_MAX) this.writePending();
  }

  /** Forgets everything (when the objects it points at are gone). */
  clear(): void {
    this.db.exec("DELETE FROM stat_cache; DELETE FROM directory_records");
    this.pending.clear();
    this.pendingDirectories.clear();
    this.goneFiles = [];
    this.goneSubtrees = [];
  }

  set(path: string, entry: StatCacheEntry): void {
    this.pending.set(path, entry);
    // A first scan of a million files would otherwise hold a million entries until finish().
    if (this.pending.size >= PENDING_ROWS_MAX) this.writePending();
  }

  /**
   * Drops what was found gone and writes the pending entries, in one transaction. A path set
   * during a scan is never also found gone in it (a file seen is kept; a gone subtree was not
   * entered), so the order does not matter. An unchanged tree writes nothing (no transaction).
   */
  private writePending(): void {
    if (this.pending.size === 0 && this.pendingDirectories.size === 0 && this.goneFiles.length === 0 && this.goneSubtrees.length === 0) return;
    // Cached statements (query, not prepare): a first scan of 100 000 files writes 13 times.
    const insert = this.db.query(INSERT_ROW);
    const insertDirectory = this.db.query("INSERT OR REPLACE INTO directory_records (path, fingerprint, tree_id, chunk_count) VALUES (?, ?, ?, ?)");
    const removeFile = this.db.query("DELETE FROM stat_cache WHERE path = ?");
    // Everything below `d/x/` lies in [`d/x/`, `d/x0`).
    const removeSubtree = this.db.query("DELETE FROM stat_cache WHERE path >= ?1 AND path < ?2");
    // A gone directory's own record and its subdirectories' (a stale one could never be taken
    // wrongly, its fingerprint would have to match, but it would be kept for nothing).
    const removeDirectories = this.db.query("DELETE FROM directory_records WHERE path = ?1 OR (path >= ?2 AND path < ?3)");
    this.db.transaction(() => {
      for (const path of this.goneFiles) removeFile.run(path);
      for (const prefix of this.goneSubtrees) {
        removeSubtree.run(prefix, `${prefix.slice(0, -1)}0`);
        removeDirectories.run(prefix.slice(0, -1), prefix, `${prefix.slice(0, -1)}0`);
      }
      for (const [path, e] of this.pending) {
        // The times bound as integers (a TEXT column stores them as the same decimal text).
        insert.run(path, e.sizeBytes, e.mtimeNs, e.ctimeNs, e.inode.toString(), e.mode, e.fileId, e.chunkCount, e.idNamesChunk ? 1 : 0);
      }
      for (const [path, record] of this.pendingDirectories) insertDirectory.run(path, record.fingerprint, record.treeId, record.chunkCount);
    })();
    this.pending.clear();
    this.pendingDirectories.clear();
    this.goneFiles = [];
    this.goneSubtrees = [];
  }

  remember(entries: ReadonlyMap<string, StatCacheEntry>): void {
    const insert = this.db.prepare(INSERT_ROW);
    // Rows written from outside a scan: the records of every directory above them go, so the
    // next scan goes through each such directory's rows and drops what is not on disk (a file a
    // pull wrote in a directory removed since), instead of taking its record and keeping them.
    const above = new Set<string>();
    for (const path of entries.keys()) {
      for (let end = path.lastIndexOf("/"); end > 0; end = path.lastIndexOf("/", end - 1)) {
        const directory = path.slice(0, end);
        if (above.has(directory)) break;
        above.add(directory);
      }
    }
    if (entries.size > 0) above.add("");
    const removeDirectory = this.db.prepare("DELETE FROM directory_records WHERE path = ?");
    this.db.transaction(() => {
      for (const [path, e] of entries) {
        insert.run(path, e.sizeBytes, e.mtimeNs.toString(), e.ctimeNs.toString(), e.inode.toString(), e.mode, e.fileId, e.chunkCount, e.idNamesChunk ? 1 : 0);
      }
      for (const directory of above) removeDirectory.run(directory);
    })();
  }

  finish(): void {
    this.writePending();
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
  directory(): StatCacheDirectory {
    return { files: new Map(), subdirectories: new Set() };
  }
  leaveDirectory(): void {}
  set(): void {}
  directoryRecord(): undefined {
    return undefined;
  }
  setDirectoryRecord(): void {}
  finish(): void {}
  remember(): void {}
  size(): number {
    return 0;
  }
  close(): void {}
}
