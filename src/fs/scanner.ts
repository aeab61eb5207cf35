// The scanner: walks a directory into content-addressed objects.
//
// Files are read through one reused buffer and cut with FastCDC as they stream, so memory stays
// bounded whatever the file sizes. Each chunk is hashed and handed to the sink (which may store
// it, or only note it); file and tree nodes are built bottom-up and handed over too. Symlinks are
// recorded as links and never followed. Files unchanged since the last scan (size, mtime, ctime
// and inode all equal, per the stat cache) are not read again, and a directory whose entries
// are all as the last scan recorded them (directory-fingerprint.ts) takes the tree id recorded
// for them, with nothing read, built or hashed but its fingerprint.
//
// The scan also says exactly which paths it saw and did not store, and why (`notRead`): an
// ignored path, one it could not read, one it cannot sync. "Not stored" must never be taken for
// "deleted": the caller keeps the last synced entry at those paths (scan-local.ts, graft.ts).
// Names are read as bytes (directory-names.ts), so a name that is not UTF-8 is skipped by
// itself and never stands in for, or collides with, the file its lossy decoding would name.
//
// Only what is inside the root is read. The walk holds each directory by a handle opened without
// following a link and checked to be the directory it listed (device, inode), and names its
// entries through that handle (directory-handle.ts): a directory swapped for a link to
// elsewhere after it was listed is not gone through, and a file is opened without following a
// link or blocking and must be the regular file its lstat saw. A racing process that swaps an
// entry makes it unreadable for this scan (its synced entry stands), never a window outside.
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from "../core/fastcdc.ts";
import { forEachChunk, type ChunkVisit } from "./chunk-reader.ts";
import { ChunkWorkerFailure, ChunkWorkerPool, chunkThreadsFromEnvironment, SEGMENT_BYTES_DEFAULT, SegmentReadFailure, type FileChunking } from "./chunk-worker-pool.ts";
import { idEquals, type ObjectId } from "../core/id.ts";
import { decodesAsObject, type ChunkRef, type TreeEntry } from "../core/objects.ts";
import { syncedMode } from "../core/file-mode.ts";
import { validateName, validateSymlinkTarget } from "../core/names.ts";
import { buildTreeNodes, FileNodeBuilder, type SealedObject } from "../core/pages.ts";
import { decodeNameBytes, escapeNameBytes, readDirectoryNames, type DirectoryNames } from "./directory-names.ts";
import { handlesResolveNames, pathInHandle } from "./directory-handle.ts";
import { DirectoryFingerprint } from "./directory-fingerprint.ts";
import { entryCalls, type EntryCalls, type EntryStat } from "./entry-calls.ts";
import { IGNORE_FILE_NAME, ignoredInWalk, parseIgnoreFile, type IgnoreRules } from "./ignore.ts";
import { NoStatCache, RACY_WINDOW_NS, type StatCache, type StatCacheEntry } from "./stat-cache.ts";

/** Where the scan's output goes. */
export interface ScanSink {
  /** A chunk read from a file. `bytes` is a view into a reused buffer, valid only during the call: copy to keep it. */
  chunk?(id: ObjectId, bytes: Uint8Array): void | Promise<void>;
  /** A file or tree node the scan created. */
  object(sealed: SealedObject): void | Promise<void>;
  /** Whether a file node remembered by the stat cache is still at hand; a cache hit needs it. */
  hasObject?(id: ObjectId): boolean | Promise<boolean>;
}

export interface ScanOptions {
  sink: ScanSink;
  chunker?: ChunkerParams;
  statCache?: StatCache;
  /** Names skipped at the top level only (the sync state folder). */
  excludeTopLevel?: readonly string[];
  /** Size of the one read buffer; at least twice the chunker's max size. */
  readBufferBytes?: number;
  /** Wall clock in ns, for the racily-clean check; injected so tests can control it. */
  nowNs?: () => bigint;
  onProgress?: (progress: ScanProgress) => void;
  /**
   * The chunk list of a file node the stat cache remembers, when at hand: a file that changed
   * since is then checked chunk by chunk against it instead of being cut afresh (same result).
   */
  previousChunks?: (fileId: ObjectId) => Promise<readonly ChunkRef[] | undefined>;
  /**
   * Who cuts and hashes large files: a number of threads (1: this thread alone; default
   * DSYNC_CHUNK_THREADS, else the machine's cores), the workers started only once the scan
   * meets enough bytes to repay their start, and stopped at its end; or a pool the caller
   * started and stops, for several scans. The chunks are the same either way.
   */
  chunkThreads?: number | ChunkWorkerPool;
}

export interface ScanProgress {
  bytesRead: number;
  filesDone: number;
}

/**
 * Why a path was not stored: `unreadable` (an error reading it: permissions, I/O), `ignored`
 * (a .dsyncignore rule), `unsupported` (something dsync does not sync: a FIFO, socket or
 * device, a name or link target the format refuses).
 */
export type SkipCause = "unreadable" | "ignored" | "unsupported";

export interface SkippedPath {
  path: string;
  reason: string;
  cause?: SkipCause;
}

/** A path the scan saw and did not store, whose last synced entry (if any) stands for it. */
export interface NotReadPath {
  /** The tree path, '/'-joined (always a valid tree path). */
  path: string;
  cause: SkipCause;
}

export interface ScanResult {
  rootId: ObjectId;
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of file sizes. */
  totalBytes: number;
  /** Bytes actually read (files not served by the stat cache). */
  bytesRead: number;
  filesRead: number;
  filesFromCache: number;
  /** Chunk references across files read this time. */
  chunksRead: number;
  /** Chunk references across all files (read now or known from the stat cache). */
  chunks: number;
  /** Files read through the worker threads (chunk-worker-pool.ts; the scanning thread may have cut some of their segments while the workers started); the rest were cut on the scanning thread. */
  filesOnWorkers: number;
  /** Paths not stored, with the reason, for reports (ignored paths are counted, not listed here). */
  skipped: SkippedPath[];
  /**
   * Every path the scan saw and did not store whose name a tree can hold: ignored, unreadable
   * or unsupported. Nothing below one of them is listed. Names that are not valid UTF-8 or
   * that the format refuses are only in `skipped` (no tree can hold them).
   */
  notRead: NotReadPath[];
  /**
   * Whether this directory's .dsyncignore rules leave out a path it may not hold (one a pull
   * would bring): the shortest ignored prefix of the path, or undefined. Uses the rules of the
   * deepest directory on the path that the scan read.
   */
  ignoredAt(path: string, isDirectory: boolean): string | undefined;
  /** Temp files a crashed write left behind (never synced; a writer may remove them). */
  tempLeftovers: string[];
}

/** Names dsync itself writes while materializing; a leftover from a crash is never synced. */
export const TEMP_FILE_PREFIX = ".dsync-tmp-";

const READ_BUFFER_BYTES_DEFAULT = 4 * 1024 * 1024;

/** Files from this size are cut by the worker threads (when there are any); smaller ones cost more to hand over than to cut. */
export const WORKER_FILE_BYTES_MIN = 1024 * 1024;
/**
 * The workers start at the first file of this size, or once files of WORKER_FILE_BYTES_MIN and
 * more add up to it: starting them costs some 30 ms of both cores, what one thread cuts and
 * hashes of ~40 MB, so a scan of a few small files never pays it.
 */
const WORKERS_START_BYTES = 32 * 1024 * 1024;
/** Files opened and handed to the workers ahead of their turn, per directory, so both cores are busy while the scan takes the current one. */
const FILES_AHEAD_MAX = 8;

export async function scanDirectory(rootPath: string, options: ScanOptions): Promise<ScanResult> {
  const scanner = new Scanner(options);
  // The root itself must be readable: a scan of nothing would look like a deleted folder.
  let rootId: ObjectId;
  // The root as named (it may be a link the user chose); below it, nothing is followed.
  const rootFd = openSync(rootPath, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    rootId = await scanner.scanDirectoryAt("", rootPath, rootFd, [], readDirectoryNames(handleOf(rootFd, rootPath)));
  } catch (error) {
    // The root's own rules decide what the whole directory syncs: without them, nothing is scanned.
    if (error instanceof IgnoreFileUnreadable && error.path === IGNORE_FILE_NAME) {
      throw new Error(`cannot read ${join(rootPath, IGNORE_FILE_NAME)}: ${(error.cause as Error)?.message ?? error.message}; nothing was scanned (fix its permissions, or remove it)`);
    }
    throw error;
  } finally {
    closeSync(rootFd);
    // Workers it started itself (none before a large file): stopped however the scan ended.
    await scanner.stopWorkers();
  }
  scanner.statCache.finish();
  return {
    rootId,
    ...scanner.counts,
    skipped: scanner.skipped,
    notRead: scanner.notRead,
    ignoredAt: (path, isDirectory) => scanner.ignoredAt(path, isDirectory),
    tempLeftovers: scanner.tempLeftovers,
  };
}

/**
 * Reads an ignore file (following a symlink, so one file can be shared). Opened without
 * blocking and checked to be a regular file: reading a FIFO named .dsyncignore would hang the
 * scan. Something that is not a regular file (a FIFO, a directory) holds no rules: undefined
 * (the walk reports it like any such entry). An error opening or reading one throws.
 */
export function readIgnoreFile(path: string): string | undefined {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/** The path that reaches the directory open as `fd` (at `absolutePath`) through its handle. */
function handleOf(fd: number, absolutePath: string): string {
  return handlesResolveNames() ? `/proc/self/fd/${fd}` : absolutePath;
}

/** The path naming `name` inside the directory open as `fd`, resolved through the handle. */
function entryOf(fd: number, absoluteDir: string, name: string): string {
  return handlesResolveNames() ? pathInHandle(fd, name) : join(absoluteDir, name);
}

/** An fs error whose message names the path a person knows instead of the handle's. */
function naming(error: unknown, handlePath: string, absolutePath: string): Error {
  const named = error as Error;
  if (handlePath !== absolutePath && typeof named.message === "string") named.message = named.message.split(handlePath).join(absolutePath);
  return named;
}

/** A file or directory that is not, by the time it is opened, the entry its lstat saw. */
class ChangedWhileScanned extends Error {
  constructor(absolutePath: string) {
    super(`${absolutePath} changed while it was scanned (swapped for another entry); scan again`);
  }
}

/** A .dsyncignore that is there and cannot be read (permissions, not a regular file, I/O). */
export class IgnoreFileUnreadable extends Error {
  constructor(readonly path: string, override readonly cause: unknown) {
    super(`cannot read its ignore file ${path}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** A file opened and handed to the workers ahead of its turn. */
interface OpenedAhead {
  fd: number;
  opened: EntryStat;
  chunking: FileChunking;
}

/** An error of the sink while a file was read: it fails the scan, it does not make the file unreadable. */
class SinkFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

class Scanner {
  readonly statCache: StatCache;
  readonly skipped: SkippedPath[] = [];
  readonly notRead: NotReadPath[] = [];
  /** The ignore rules in force in each directory read, by its relative path. */
  private readonly rulesByDirectory = new Map<string, IgnoreRules[]>();
  readonly tempLeftovers: string[] = [];
  readonly counts = { files: 0, directories: 0, symlinks: 0, totalBytes: 0, bytesRead: 0, filesRead: 0, filesFromCache: 0, chunksRead: 0, chunks: 0, filesOnWorkers: 0 };
  private readonly params: ChunkerParams;
  /** The chunker's descriptor, which leads every directory fingerprint. */
  private readonly chunking: string;
  private readonly calls: EntryCalls = entryCalls();
  private readonly buffer: Uint8Array;
  private readonly startNs: bigint;
  /** Threads that cut and hash: 1 for this thread alone. */
  private readonly chunkThreads: number;
  /** The workers, once started (or the caller's pool). */
  private pool: ChunkWorkerPool | undefined;
  /** Bytes of files large enough for the workers met before they were started. */
  private workerBytesSeen = 0;

  constructor(private readonly options: ScanOptions) {
    this.params = options.chunker ?? DEFAULT_CHUNKER_PARAMS;
    this.chunking = `fastcdc2020:${this.params.minSizeBytes}:${this.params.avgSizeBytes}:${this.params.maxSizeBytes}`;
    this.statCache = options.statCache ?? new NoStatCache();
    this.startNs = (options.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n))();
    const threads = options.chunkThreads ?? chunkThreadsFromEnvironment();
    if (threads instanceof ChunkWorkerPool) {
      this.pool = threads;
      this.chunkThreads = threads.threads;
    } else {
      if (!Number.isSafeInteger(threads) || threads < 1) throw new Error(`chunkThreads must be a whole number from 1, got ${threads}`);
      this.chunkThreads = threads;
    }
    // With workers, room for a segment too: the segments this thread cuts itself use this buffer.
    const segmentBuffer = this.chunkThreads > 1 ? (this.pool?.segmentBytes ?? SEGMENT_BYTES_DEFAULT) + this.params.maxSizeBytes : 0;
    const size = Math.max(options.readBufferBytes ?? READ_BUFFER_BYTES_DEFAULT, this.params.maxSizeBytes * 2, segmentBuffer);
    this.buffer = new Uint8Array(size);
  }

  /** Stops the workers this scan started (a caller's pool is the caller's to stop). */
  async stopWorkers(): Promise<void> {
    if (this.pool && this.pool !== this.options.chunkThreads) await this.pool.close();
    this.pool = undefined;
  }

  /**
   * The workers to cut a file of `sizeBytes` with, started here when the scan has met enough
   * large files to repay their start; undefined for this thread.
   */
  private workersFor(sizeBytes: number): ChunkWorkerPool | undefined {
    if (this.chunkThreads < 2 || sizeBytes < WORKER_FILE_BYTES_MIN) return undefined;
    if (!this.pool) {
      this.workerBytesSeen += sizeBytes;
      if (sizeBytes < WORKERS_START_BYTES && this.workerBytesSeen < WORKERS_START_BYTES) return undefined;
      this.pool = new ChunkWorkerPool({ threads: workerThreadsFor(this.chunkThreads) });
    }
    return this.pool;
  }

  /** The workers for a file opened ahead of its turn: only once started (or started by this file's size alone), its bytes counted at its turn. */
  private workersAhead(sizeBytes: number): ChunkWorkerPool | undefined {
    if (this.chunkThreads < 2 || sizeBytes < WORKER_FILE_BYTES_MIN) return undefined;
    if (!this.pool && sizeBytes >= WORKERS_START_BYTES) this.pool = new ChunkWorkerPool({ threads: workerThreadsFor(this.chunkThreads) });
    return this.pool;
  }

  /**
   * Opens the file `from` (whose turn it is) and the ones after it that the stat cache does not
   * know (so none is a cache hit, and none has an old chunk list to check) and that are large
   * enough for the workers, and hands them over, up to FILES_AHEAD_MAX ahead. A file that cannot
   * be opened as seen is left for its turn, which reports it in order. Files reach the workers
   * in the order they are taken, so the one being taken is never stuck behind later ones for a
   * segment buffer.
   */
  private openAhead(files: readonly { name: string; stats: EntryStat }[], from: number, remembered: ReadonlyMap<string, StatCacheEntry>, dirFd: number, dirPath: string, ahead: Map<number, OpenedAhead>): void {
    for (let i = from; i < files.length && i <= from + FILES_AHEAD_MAX; i++) {
      if (ahead.has(i)) continue;
      const { name, stats } = files[i]!;
      if (remembered.has(name) || stats.sizeBytes < WORKER_FILE_BYTES_MIN) continue;
      // Each file's bytes count towards starting the workers once, at its turn.
      const pool = i === from ? this.workersFor(stats.sizeBytes) : this.workersAhead(stats.sizeBytes);
      if (!pool) continue;
      let fd: number;
      try {
        fd = this.calls.openAt(dirFd, dirPath, name, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch {
        continue;
      }
      const opened = this.calls.fstat(fd);
      if (opened.kind !== "file" || !opened.sameFile(stats)) {
        closeSync(fd);
        continue;
      }
      ahead.set(i, { fd, opened, chunking: pool.submitFile(fd, opened.sizeBytes, this.params) });
    }
  }

  ignoredAt(path: string, isDirectory: boolean): string | undefined {
    const parts = path.split("/");
    let depth = parts.length - 1;
    while (depth > 0 && !this.rulesByDirectory.has(parts.slice(0, depth).join("/"))) depth--;
    const rules = this.rulesByDirectory.get(parts.slice(0, depth).join("/")) ?? [];
    // As in git, an ignored directory leaves out everything below it.
    for (let i = depth; i < parts.length; i++) {
      const prefix = parts.slice(0, i + 1).join("/");
      if (ignoredInWalk(rules, prefix, i < parts.length - 1 || isDirectory)) return prefix;
    }
    return undefined;
  }

  /** A path the scan did not store; `path` must be a valid tree path unless `treePath` is false. */
  private skip(path: string, reason: string, cause: SkipCause, treePath = true): void {
    this.skipped.push({ path, reason, cause });
    if (treePath) this.notRead.push({ path, cause });
  }

  /**
   * The rules in force in a directory: the inherited ones and its own .dsyncignore. Throws
   * IgnoreFileUnreadable when that file is there and cannot be read: its rules are unknown, so
   * nothing in the directory can be told apart from what it meant to exclude.
   */
  private rulesOf(relativePath: string, absolutePath: string, fd: number, inheritedRules: IgnoreRules[], listing: DirectoryNames): IgnoreRules[] {
    if (!listing.names.includes(IGNORE_FILE_NAME)) return inheritedRules;
    let text: string | undefined;
    const path = entryOf(fd, absolutePath, IGNORE_FILE_NAME);
    try {
      text = readIgnoreFile(path);
    } catch (error) {
      throw new IgnoreFileUnreadable(relativePath === "" ? IGNORE_FILE_NAME : `${relativePath}/${IGNORE_FILE_NAME}`, naming(error, path, join(absolutePath, IGNORE_FILE_NAME)));
    }
    return text === undefined ? inheritedRules : [...inheritedRules, parseIgnoreFile(text, relativePath)];
  }

  /** Scans the directory open as `fd` (at absolutePath, listed as `listing`); the caller closes fd. */
  async scanDirectoryAt(relativePath: string, absolutePath: string, fd: number, inheritedRules: IgnoreRules[], listing: DirectoryNames): Promise<ObjectId> {
    const ruleSets = this.rulesOf(relativePath, absolutePath, fd, inheritedRules, listing);
    const names = listing.names;
    for (const escaped of listing.undecodable) {
      this.skip(relativePath === "" ? escaped : `${relativePath}/${escaped}`, "the name is not valid UTF-8; not synced", "unsupported", false);
    }
    this.rulesByDirectory.set(relativePath, ruleSets);
    // First every entry is looked at (and every subdirectory scanned), files only by lstat: when
    // the fingerprint of what was seen is the one recorded last time, with the tree still at
    // hand, that tree id is this directory's, and no file is opened, no stat cache row read, no
    // tree built. Otherwise the files are taken in turn, through the stat cache as before.
    const record = this.statCache.directoryRecord(relativePath);
    const fingerprint = new DirectoryFingerprint(this.chunking);
    // Whether every entry was stored, each file on a stat the stat cache holds (or now takes):
    // only then may this directory be recorded for the next scan.
    let recordable = true;
    // Files are placed in `entries` (in tree order) once taken: null until then, and for good when skipped.
    // Names and stats alone (paths are made again when a file is taken): a flat directory of a
    // million files holds these while its subdirectories are scanned.
    const files: { name: string; stats: EntryStat; at: number }[] = [];
    const seenSubdirectories = new Set<string>();
    const entries: (TreeEntry | null)[] = [];
    for (const name of names) {
      const childRelative = relativePath === "" ? name : `${relativePath}/${name}`;
      if (relativePath === "" && this.options.excludeTopLevel?.includes(name)) continue;
      if (name.startsWith(TEMP_FILE_PREFIX)) {
        this.tempLeftovers.push(childRelative);
        continue;
      }
      const nameProblem = validateName(name);
      if (nameProblem) {
        this.skip(childRelative, nameProblem, "unsupported", false);
        continue;
      }
      const childAbsolute = relativePath === "" ? join(absolutePath, name) : `${absolutePath}/${name}`;
      let stats: EntryStat;
      try {
        stats = this.calls.lstatAt(fd, absolutePath, name);
      } catch (error) {
        this.skip(childRelative, `cannot stat: ${naming(error, entryOf(fd, absolutePath, name), childAbsolute).message}`, "unreadable");
        recordable = false;
        continue;
      }
      const kind = stats.kind;
      // Nothing above is ignored (the walk does not go below an ignored directory).
      if (ignoredInWalk(ruleSets, childRelative, kind === "directory")) {
        this.notRead.push({ path: childRelative, cause: "ignored" });
        continue;
      }
      // Permission bits alone: setuid, setgid and sticky are never synced (core/file-mode.ts).
      const mode = syncedMode(stats.mode & 0o7777);
      const mtimeMs = stats.mtimeMs;
      if (kind === "directory") {
        // Only listing the directory counts as "cannot read it": any other error (the sink's,
        // say) is a failure of the scan, never a reason to leave the directory out.
        let childFd: number;
        let listing: DirectoryNames;
        try {
          childFd = this.openListedDirectory(fd, absolutePath, name, childAbsolute, stats);
        } catch (error) {
          this.skip(childRelative, `cannot read directory: ${(error as Error).message}`, "unreadable");
          recordable = false;
          continue;
        }
        let id: ObjectId;
        try {
          const handle = handleOf(childFd, childAbsolute);
          try {
            listing = readDirectoryNames(handle);
          } catch (error) {
            this.skip(childRelative, `cannot read directory: ${naming(error, handle, childAbsolute).message}`, "unreadable");
            recordable = false;
            continue;
          }
          try {
            id = await this.scanDirectoryAt(childRelative, childAbsolute, childFd, ruleSets, listing);
          } catch (error) {
            // Only this directory's own ignore file: one deeper down was handled there.
            if (!(error instanceof IgnoreFileUnreadable) || error.path !== `${childRelative}/${IGNORE_FILE_NAME}`) throw error;
            // Without its rules the directory is not read at all: its synced entry stands for it.
            this.skip(childRelative, error.message, "unreadable");
            recordable = false;
            continue;
          }
        } finally {
          closeSync(childFd);
        }
        seenSubdirectories.add(name);
        this.counts.directories++;
        fingerprint.directory(name, mode, mtimeMs, id);
        entries.push({ name, kind: "dir", mode, mtimeMs, sizeBytes: 0, id, target: null });
      } else if (kind === "file") {
        fingerprint.file(name, stats);
        files.push({ name, stats, at: entries.length });
        entries.push(null);
      } else if (kind === "symlink") {
        const childPath = entryOf(fd, absolutePath, name);
        let targetBytes: Buffer;
        try {
          targetBytes = readlinkSync(childPath, "buffer");
        } catch (error) {
          this.skip(childRelative, `cannot read link: ${naming(error, childPath, childAbsolute).message}`, "unreadable");
          recordable = false;
          continue;
        }
        // As for names: a lossy decoding would store a link to somewhere else.
        const target = decodeNameBytes(targetBytes);
        if (target === undefined) {
          this.skip(childRelative, `the link target ${escapeNameBytes(targetBytes)} is not valid UTF-8`, "unsupported");
          recordable = false;
          continue;
        }
        const targetProblem = validateSymlinkTarget(target);
        if (targetProblem) {
          this.skip(childRelative, targetProblem, "unsupported");
          recordable = false;
          continue;
        }
        this.counts.symlinks++;
        fingerprint.symlink(name, mode, mtimeMs, target);
        entries.push({ name, kind: "symlink", mode, mtimeMs, sizeBytes: 0, id: null, target });
      } else {
        this.skip(childRelative, "not a regular file, directory or symlink", "unsupported");
        recordable = false;
      }
    }
    const digest = fingerprint.digest();
    if (
      recordable &&
      record !== undefined &&
      idEquals(record.fingerprint, digest) &&
      (!this.options.sink.hasObject || (await this.options.sink.hasObject(record.treeId)))
    ) {
      // The same entries, each file on the stat its id was taken for: the same tree. The stat
      // cache's rows for these files stand as they are (the same names, nothing gone).
      for (const file of files) this.counts.totalBytes += file.stats.sizeBytes;
      this.counts.files += files.length;
      this.counts.filesFromCache += files.length;
      this.counts.chunks += record.chunkCount;
      this.options.onProgress?.({ bytesRead: this.counts.bytesRead, filesDone: this.counts.files });
      return record.treeId;
    }
    // This directory's remembered files alone, dropped when it is done: memory follows the
    // directories the walk is inside, not the tree. What the walk sees is noted so the cache
    // forgets the rest (files gone, ignored or unreadable; subdirectories not scanned).
    const remembered = this.statCache.directory(relativePath);
    const seenFiles = new Set<string>();
    let chunkCount = 0;
    // Files handed to the workers ahead of their turn, by index in `files`.
    const ahead = new Map<number, OpenedAhead>();
    try {
      for (let index = 0; index < files.length; index++) {
        const { name, stats, at } = files[index]!;
        if (this.chunkThreads > 1) this.openAhead(files, index, remembered.files, fd, absolutePath, ahead);
        const early = ahead.get(index);
        ahead.delete(index);
        seenFiles.add(name);
        const childRelative = relativePath === "" ? name : `${relativePath}/${name}`;
        const childAbsolute = relativePath === "" ? join(absolutePath, name) : `${absolutePath}/${name}`;
        const file = await this.scanFileAt(childRelative, childAbsolute, fd, absolutePath, name, stats, remembered.files.get(name), early, ahead.size === 0);
        if (!file) {
          recordable = false;
          continue;
        }
        if (!file.cachedAsSeen) recordable = false;
        chunkCount += file.chunkCount;
        this.counts.files++;
        this.counts.totalBytes += file.sizeBytes;
        // Per file too, not only per block read: files the stat cache serves advance the count.
        this.options.onProgress?.({ bytesRead: this.counts.bytesRead, filesDone: this.counts.files });
        const mode = syncedMode(stats.mode & 0o7777);
        entries[at] = file.idNamesChunk
          ? { name, kind: "file", mode, mtimeMs: file.mtimeMs, sizeBytes: file.sizeBytes, id: file.id, target: null, idNamesChunk: true }
          : { name, kind: "file", mode, mtimeMs: file.mtimeMs, sizeBytes: file.sizeBytes, id: file.id, target: null };
      }
    } finally {
      // A scan that failed midway: no worker reads a file once it is closed.
      for (const early of ahead.values()) {
        await early.chunking.abandon();
        closeSync(early.fd);
      }
    }
    this.statCache.leaveDirectory(relativePath, remembered, seenFiles, seenSubdirectories);
    const nodes = buildTreeNodes(entries.filter((entry) => entry !== null));
    for (const node of nodes) await this.options.sink.object(node);
    const treeId = nodes[nodes.length - 1]!.id;
    if (recordable) this.statCache.setDirectoryRecord(relativePath, { fingerprint: digest, treeId, chunkCount });
    return treeId;
  }

  /** Opens a directory child without following a link, and checks it is the directory lstat saw. */
  private openListedDirectory(dirFd: number, dirPath: string, name: string, absolutePath: string, seen: EntryStat): number {
    let fd: number;
    try {
      fd = this.calls.openAt(dirFd, dirPath, name, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ELOOP" || code === "ENOTDIR") throw new ChangedWhileScanned(absolutePath);
      throw naming(error, entryOf(dirFd, dirPath, name), absolutePath);
    }
    const opened = this.calls.fstat(fd);
    if (opened.kind !== "directory" || !opened.sameFile(seen)) {
      closeSync(fd);
      throw new ChangedWhileScanned(absolutePath);
    }
    return fd;
  }

  /** Reads the file `name` in the directory open as `dirFd` (at `dirPath`), which lstat saw as `stats`. */
  private async scanFileAt(
    relativePath: string,
    absolutePath: string,
    dirFd: number,
    dirPath: string,
    name: string,
    stats: EntryStat,
    cached: StatCacheEntry | undefined,
    early: OpenedAhead | undefined,
    workersIdle: boolean,
  ): Promise<{ id: ObjectId; idNamesChunk: boolean; sizeBytes: number; mtimeMs: number; chunkCount: number; cachedAsSeen: boolean } | undefined> {
    const mode = syncedMode(stats.mode & 0o7777);
    if (
      !early &&
      cached &&
      cached.sizeBytes === stats.sizeBytes &&
      cached.mtimeNs === stats.mtimeNs &&
      cached.ctimeNs === stats.ctimeNs &&
      cached.inode === stats.inode &&
      // A file named by its one chunk has no node to keep (the cache never holds chunks).
      (cached.idNamesChunk || !this.options.sink.hasObject || (await this.options.sink.hasObject(cached.fileId)))
    ) {
      this.counts.filesFromCache++;
      this.counts.chunks += cached.chunkCount;
      if (cached.mode !== mode) this.statCache.set(relativePath, { ...cached, mode });
      return { id: cached.fileId, idNamesChunk: cached.idNamesChunk === true, sizeBytes: cached.sizeBytes, mtimeMs: stats.mtimeMs, chunkCount: cached.chunkCount, cachedAsSeen: true };
    }
    let fd: number;
    let opened: EntryStat;
    if (early) ({ fd, opened } = early);
    else {
      try {
        // Never through a link, never blocking on a FIFO swapped in since the lstat.
        fd = this.calls.openAt(dirFd, dirPath, name, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const message = code === "ELOOP" ? new ChangedWhileScanned(absolutePath).message : naming(error, entryOf(dirFd, dirPath, name), absolutePath).message;
        this.skip(relativePath, `cannot open: ${message}`, "unreadable");
        return undefined;
      }
      opened = this.calls.fstat(fd);
      if (opened.kind !== "file" || !opened.sameFile(stats)) {
        closeSync(fd);
        this.skip(relativePath, `cannot open: ${new ChangedWhileScanned(absolutePath).message}`, "unreadable");
        return undefined;
      }
    }
    let builder: FileNodeBuilder;
    let onlyChunkIsObject = false;
    let chunking = early?.chunking;
    try {
      const previous = early || !cached
        ? undefined
        : cached.idNamesChunk
          ? [{ id: cached.fileId, lengthBytes: cached.sizeBytes }]
          : this.options.previousChunks
            ? await this.options.previousChunks(cached.fileId).catch(() => undefined)
            : undefined;
      // A changed file with no old chunk list to check goes to the workers too, when none are
      // busy with files after it (those would hold the buffers it waits for).
      if (!chunking && previous === undefined && workersIdle) chunking = this.workersFor(opened.sizeBytes)?.submitFile(fd, opened.sizeBytes, this.params);
      ({ builder, firstChunkIsObject: onlyChunkIsObject } = await this.readChunks(fd, previous, opened.sizeBytes, chunking));
    } catch (error) {
      // The sink failing (a full cache, a failed upload) fails the scan, and so does a worker
      // failing; only reading the file makes it "unreadable".
      if (error instanceof SinkFailure) throw error.cause;
      if (error instanceof ChunkWorkerFailure) throw error;
      const message = error instanceof SegmentReadFailure ? naming(error, entryOf(dirFd, dirPath, name), absolutePath).message : (error as Error).message;
      this.skip(relativePath, `cannot read: ${message}`, "unreadable");
      return undefined;
    } finally {
      // No worker reads the file once it is closed.
      await chunking?.abandon();
      closeSync(fd);
    }
    const sizeBytes = builder.sizeBytes;
    // A file of exactly one chunk is named by that chunk: no file node to store, send or check.
    // Unless the chunk's bytes are themselves a structured object (a file that holds one, as a
    // copy of dsync's test fixtures does): that stays behind a file node, as the format requires.
    const single = builder.onlyChunk !== undefined && !onlyChunkIsObject ? builder.onlyChunk : undefined;
    let id: ObjectId;
    if (single) id = single.id;
    else {
      const nodes = builder.finish();
      for (const node of nodes) await this.options.sink.object(node);
      id = builder.rootId;
    }

    this.counts.filesRead++;
    // What is cached is the stat taken once the file was open, before a byte of it was read. A
    // change while it is read (or after) sets its mtime and ctime to a time after the scan's
    // start, while a stat cached here is older than the start by RACY_WINDOW_NS (else it is not
    // cached): the next scan finds the stat changed and reads the file again, so bytes hashed
    // mid-change are never taken for the file's. This saves the fstat after reading that used
    // to check the same. A file that shrank while read (fewer bytes than that stat's size) is
    // not cached; one that grew is read up to that size.
    const openedMtimeNs = opened.mtimeNs;
    const openedCtimeNs = opened.ctimeNs;
    const stable = openedMtimeNs === stats.mtimeNs && opened.sizeBytes === stats.sizeBytes && sizeBytes === opened.sizeBytes;
    const racy = this.startNs - openedMtimeNs < RACY_WINDOW_NS || this.startNs - openedCtimeNs < RACY_WINDOW_NS;
    this.counts.chunks += builder.chunkCount;
    this.counts.chunksRead += builder.chunkCount;
    const remembered = stable && !racy;
    if (remembered) {
      const entry: StatCacheEntry = { sizeBytes, mtimeNs: openedMtimeNs, ctimeNs: openedCtimeNs, inode: opened.inode, mode, fileId: id, chunkCount: builder.chunkCount };
      if (single) entry.idNamesChunk = true;
      this.statCache.set(relativePath, entry);
    }
    // The directory's fingerprint holds the lstat: it stands for this id only if the cache now holds that very stat.
    const cachedAsSeen = remembered && opened.sameIdentity(stats);
    return { id, idNamesChunk: single !== undefined, sizeBytes, mtimeMs: opened.mtimeMs, chunkCount: builder.chunkCount, cachedAsSeen };
  }

  /**
   * Streams a file through the reused buffer, cutting and hashing chunks as they complete and
   * sealing its leaf pages as they fill, so memory does not grow with the file's size.
   */
  private async readChunks(
    fd: number,
    previous: readonly ChunkRef[] | undefined,
    sizeBytes: number,
    chunking: FileChunking | undefined,
  ): Promise<{ builder: FileNodeBuilder; firstChunkIsObject: boolean }> {
    const sink = this.options.sink;
    const builder = new FileNodeBuilder();
    let firstChunkIsObject = false;
    const visit = async ({ id, bytes }: ChunkVisit) => {
      try {
        if (sink.chunk) await sink.chunk(id, bytes);
        if (builder.chunkCount === 0) firstChunkIsObject = decodesAsObject(bytes);
        const leaf = builder.add({ id, lengthBytes: bytes.length });
        if (leaf) await sink.object(leaf);
      } catch (error) {
        throw new SinkFailure(error);
      }
    };
    const onRead = (n: number) => {
      this.counts.bytesRead += n;
      this.options.onProgress?.({ bytesRead: this.counts.bytesRead, filesDone: this.counts.files });
    };
    // The workers' chunks are the ones this thread would cut (chunk-worker-pool.ts).
    if (chunking) {
      // The read buffer is idle meanwhile: segments this thread cuts itself are cut there.
      await chunking.forEachChunk(visit, onRead, this.buffer.buffer as ArrayBuffer);
      this.counts.filesOnWorkers++;
    } else await forEachChunk(fd, this.buffer, this.params, visit, onRead, previous, sizeBytes);
    return { builder, firstChunkIsObject };
  }
}

/**
 * Worker threads for a scan that cuts and hashes on `chunkThreads` threads: the scanning thread
 * is one of them (it cuts a segment itself whenever no worker has taken it, and it has the
 * stitching, the sink and the upload besides). One worker per core took the storing thread's
 * core away on 2 cores: the engine's scan -> store fell from 699 to 392 MB/s against one thread,
 * and a push of one 1 GiB file peaked 10-15 MB higher for no gain; one worker fewer gives 719 MB/s
 * and a push 5-10% faster than one thread (docs/benchmarks.md, "Both cores").
 */
export function workerThreadsFor(chunkThreads: number): number {
  return Math.max(1, chunkThreads - 1);
}
