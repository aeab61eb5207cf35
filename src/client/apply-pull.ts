// Applying a pull to a directory: walks the three trees (base, local, remote) directory by
// directory, asks core/plan-pull.ts what to do at each path, and does it with the safety rules
// below. Only one directory's entries per level of nesting, a bounded group of file writes and
// a bounded queue of removals are held at once, so memory stays flat however large the tree.
//
// What may be replaced or deleted: only what the last synced version (base) holds exactly, so it
// stays in history. The scan records less than the disk holds (ignored paths, FIFOs, names it
// cannot store, unreadable files), so the disk itself is walked to find the rest, right before
// anything is moved or removed. Anything else goes to a conflict copy or stays, and is reported.
// Writes and removals run after the plan: each checks that the disk still holds what was there
// when it was decided (an edit made meanwhile is moved aside or kept).
//
// Order: paths in tree order (a directory before what is below it); each file group's chunks
// are fetched together; removals (deepest first) and directory modes and mtimes follow the
// writes that precede them, so a directory's attributes are set once nothing below it changes.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { differOnlyInForm, diffTrees, entriesEqual, joinPath, sameFileContent } from "../core/diff.ts";
import { idToHex, type ObjectId } from "../core/id.ts";
import { conflictCopyName } from "../core/conflict-name.ts";
import { syncedMode } from "../core/file-mode.ts";
import { LIMITS } from "../core/limits.ts";
import type { ChunkRef, TreeEntry } from "../core/objects.ts";
import { entryChunkPages, readEntryChunks, readTreeEntries, type ObjectLoader } from "../core/pages.ts";
import { planPull, type PlannedPath } from "../core/plan-pull.ts";
import {
  ChangedMeanwhileError,
  DirectorySyncer,
  ensureDirectory,
  moveAsideInside,
  prepareParents,
  removeInside,
  setDirectoryAttributes,
  prepareFileWrite,
  writeSymlinkAtomic,
  type PreparedFile,
  seenEntryAt,
  UnsafePathError,
  type SeenEntry,
} from "../fs/materialize.ts";
import { TEMP_FILE_PREFIX, type ScanResult } from "../fs/scanner.ts";
import { withShortPath } from "../fs/directory-handle.ts";
import { FileGroupSync } from "../fs/group-sync.ts";
import type { StatCache, StatCacheEntry } from "../fs/stat-cache.ts";
import { NotReadFilter } from "./changes-not-read.ts";
import { STATE_DIR_NAME } from "./local-state.ts";
import type { Progress } from "./progress.ts";
import type { ChunkSource } from "../fs/materialize.ts";
import { LOCAL_CHUNKS_REMEMBERED_MAX } from "./pull-chunk-source.ts";

export interface PullConflict {
  path: string;
  /** Where the local content was moved to, or null when it was kept in place. */
  keptAs: string | null;
  reason: string;
}

export interface ApplyPullInput {
  dir: string;
  /** The trees: what the directory last synced (null: nothing), what it holds now, what is pulled. */
  base: ObjectId | null;
  local: ObjectId;
  remote: ObjectId;
  load: ObjectLoader;
  scan: Pick<ScanResult, "notRead" | "skipped" | "ignoredAt">;
  source: PullChunks;
  syncer: DirectorySyncer;
  statCache: Pick<StatCache, "remember">;
  progress: Progress;
  nowMs: () => number;
  /** The durability of each group of file writes (a test injects a failing one); by default syncfs, or an fsync per file. */
  newFileGroupSync?: () => FileGroupSync;
  /** Called once each group of file writes is done with (pull.ts looks at the process's memory there). */
  afterGroup?: () => void;
}

export interface ApplyPullResult {
  filesWritten: number;
  pathsRemoved: number;
  bytesWritten: number;
  conflicts: PullConflict[];
  /** Changes not applied because this copy does not read their paths, one line per such path (bounded), then every path this pull could not apply. */
  skipped: { path: string; reason: string }[];
  /** How many changes on the node were set aside as not read here. */
  notApplied: number;
  /** The paths this pull could not apply (not those not read): the directory still holds base's entry there, or its own. */
  heldBack: string[];
}

/** Where the chunks come from: pull-chunk-source.ts (local files, else the node). */
export interface PullChunks extends ChunkSource {
  /** Whether a chunk can be had without the network (not verified until read). */
  hasLocally(id: ObjectId): boolean;
  /** Fetches these chunks into memory for the files about to be written. */
  prefetch(chunks: readonly ChunkRef[]): Promise<void>;
  /** The chunks of a file this pull wrote (from `startOffsetBytes` on), to read them back from for later files. */
  noteLocalFile(absolutePath: string, chunks: readonly ChunkRef[], startOffsetBytes?: number): void;
  /** The chunks of a file the current group replaces (its old version), until the group is written. */
  noteReplacedFile(absolutePath: string, chunks: readonly ChunkRef[]): void;
  /** Drops what prefetch brought and the replaced files' chunks, once the group is written. */
  releasePrefetched(): void;
}

interface FileJob {
  path: string;
  entry: TreeEntry;
  /** The chunk list of a file no larger than a group; null for a larger one, whose chunks are read page by page as it is written. */
  chunks: ChunkRef[] | null;
  /** What was at the path when the write was decided: it is replaced only if still there. */
  replaces: SeenEntry;
}

/** Chunk bytes of one group of small files, fetched together. */
const PREFETCH_GROUP_BYTES = 16 * 1024 * 1024;
/** Files in one group. */
const GROUP_FILES_MAX = 2048;
/** Removals and directory attributes queued before the writes ahead of them are flushed. */
const DEFERRED_MAX = 4096;

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

const isDirEntry = (entry: TreeEntry | null) => entry?.kind === "dir";

export async function applyPull(input: ApplyPullInput): Promise<ApplyPullResult> {
  const { dir, load, scan, source, syncer, progress, nowMs } = input;
  const conflicts: PullConflict[] = [];
  const skipped: { path: string; reason: string }[] = [];
  /** Directories whose mode or mtime could not be set: reported, not held back (their entries were applied). */
  const attributesNotSet: { path: string; reason: string }[] = [];
  const notRead = new NotReadFilter(scan);
  let filesWritten = 0;
  let pathsRemoved = 0;
  let bytesWritten = 0;

  const entriesOf = async (id: ObjectId | null): Promise<TreeEntry[]> => (id === null ? [] : await readTreeEntries(id, load));

  const moveAside = (path: string, reason: string) => {
    const keptAs = moveAsideInside(dir, path, conflictCopyName(nameOf(path), nowMs(), "local"), syncer);
    conflicts.push({ path, keptAs, reason });
  };

  // Paths the scan did not read (ignored, unreadable, unsupported) and every directory above
  // one: even where the local tree stands in base's entry for them, their bytes are unknown.
  const notReadOrAbove = new Set<string>();
  for (const { path } of [...scan.skipped, ...scan.notRead]) {
    for (let at = path; at !== "" && !notReadOrAbove.has(at); at = parentOf(at)) notReadOrAbove.add(at);
  }
  const skippedAtOrBelow = (path: string) => notReadOrAbove.has(path);

  /** The first entry on disk below `path` that base's directory `dirId` does not hold, or null. */
  const firstUnsyncedBelow = async (path: string, dirId: ObjectId): Promise<string | null> => {
    const synced = new Map((await readTreeEntries(dirId, load)).map((e) => [e.name, e]));
    for (const found of withShortPath(join(dir, path), (short) => readdirSync(short, { withFileTypes: true }))) {
      const child = `${path}/${found.name}`;
      const entry = synced.get(found.name);
      if (!entry) {
        if (found.name.startsWith(TEMP_FILE_PREFIX) && !found.isDirectory()) continue; // a half-written file of ours
        return child;
      }
      const kind = found.isDirectory() ? "dir" : found.isSymbolicLink() ? "symlink" : found.isFile() ? "file" : "other";
      if (kind !== entry.kind) return child;
      if (kind === "dir") {
        const deeper = await firstUnsyncedBelow(child, entry.id!);
        if (deeper) return deeper;
      }
    }
    return null;
  };
  /** What is on disk at path: its kind, or null when nothing is (or the path is below a link: writes are refused there). */
  const diskKindAt = (path: string): string | null => {
    try {
      const { absolutePath } = prepareParents(dir, path, undefined, { create: false });
      const stats = withShortPath(absolutePath, (short) => lstatSync(short));
      return stats.isDirectory() ? "dir" : stats.isSymbolicLink() ? "symlink" : stats.isFile() ? "file" : "other";
    } catch {
      return null;
    }
  };
  /** True when the directory changed this path, or anything below it, since the last sync. */
  const changedLocallyAtOrBelow = async (planned: PlannedPath): Promise<boolean> => {
    if (planned.localChanged) return true;
    if (!isDirEntry(planned.base) || !isDirEntry(planned.local)) return false;
    const below = await diffTrees(planned.base!.id, planned.local!.id, load, { collapseDirectories: true });
    return below.added.length + below.removed.length + below.modified.length + below.typeChanged.length > 0;
  };
  /**
   * Why the entry on disk at path may not be replaced or deleted (it holds bytes the last
   * synced version does not), or null when it is absent or exactly base's entry.
   */
  const notInHistory = async (path: string, planned: PlannedPath): Promise<string | null> => {
    const base = planned.base;
    const onDisk = diskKindAt(path);
    if (onDisk === null) return null;
    if (planned.localChanged && planned.local !== null) return "changed here and on the node";
    if (planned.localChanged || !base) return "never synced from here (ignored, unreadable or not a regular file)";
    if (skippedAtOrBelow(path)) return "not read here (ignored, unreadable or unsupported), at or below this path";
    if (onDisk !== base.kind) return "changed here and on the node";
    if (base.kind === "dir") {
      if (await changedLocallyAtOrBelow(planned)) return "directory replaced on the node while changed here";
      const unsynced = await firstUnsyncedBelow(path, base.id!);
      if (unsynced) return `directory replaced on the node while it holds ${unsynced}, never synced`;
    }
    return null;
  };
  /** Removes a directory that holds exactly base's entries: each one, deepest first, never recursively. */
  const removeSyncedDirectory = async (path: string, base: TreeEntry): Promise<void> => {
    for (const child of await readTreeEntries(base.id!, load)) {
      const childPath = `${path}/${child.name}`;
      if (child.kind === "dir") await removeSyncedDirectory(childPath, child);
      else removeInside(dir, childPath, syncer);
    }
    for (const name of withShortPath(join(dir, path), (short) => readdirSync(short))) if (name.startsWith(TEMP_FILE_PREFIX)) removeInside(dir, `${path}/${name}`, syncer);
    removeInside(dir, path, syncer);
  };
  /**
   * What is at path now (null for nothing, or a path below a link or a file). Writes and
   * removals run long after the scan and the plan: each checks the disk still holds this.
   */
  const seenAt = (path: string): SeenEntry => {
    try {
      return seenEntryAt(prepareParents(dir, path, undefined, { create: false }).absolutePath);
    } catch {
      return null;
    }
  };
  /** Runs a write; a path that would go through a symlink is skipped and reported instead. */
  const refuseUnsafe = (write: () => unknown, path: string): boolean => {
    try {
      write();
      return false;
    } catch (error) {
      if (!(error instanceof UnsafePathError)) throw error;
      skipped.push({ path, reason: error.message });
      return true;
    }
  };

  // ---------- deferred work: file writes in groups, then the removals and attributes queued behind them ----------

  let group: FileJob[] = [];
  let groupBytes = 0;
  let jobsDone = 0;
  let deferred: (() => Promise<void>)[] = [];

  const writeGroup = async () => {
    const wanted = new Map<string, ChunkRef>();
    for (const job of group) {
      if (job.chunks === null) continue;
      for (const chunk of job.chunks) if (!source.hasLocally(chunk.id)) wanted.set(idToHex(chunk.id), chunk);
    }
    await source.prefetch([...wanted.values()]);
    const writtenStats = new Map<string, StatCacheEntry>();
    // The group's files go to temp names first, then are made durable together (one syncfs,
    // not an fsync each), then renamed, each rename checking the path still holds what the
    // plan saw; nothing is renamed before it is durable.
    const fileSync = input.newFileGroupSync?.() ?? new FileGroupSync();
    const prepared: { job: FileJob; file: PreparedFile; chunkCount: number; tail: LargeFileTail | null }[] = [];
    try {
      for (const job of group) {
        let chunkCount = job.chunks?.length ?? 0;
        // A large file's last chunks, kept as they stream by: the source remembers no more of
        // them than that, and a second walk of the file's pages after it is written made garbage
        // in proportion to its size with no collection in between (10 GiB peaked 44 MiB above 1 GiB).
        const tail: LargeFileTail | null = job.chunks === null ? { chunks: [], offsetBytes: 0 } : null;
        const streamed = async function* () {
          chunkCount = 0;
          for await (const run of entryChunkPages(job.entry, load)) {
            chunkCount += run.length;
            keepTail(tail!, run);
            yield run;
          }
        };
        try {
          const file = await prepareFileWrite(dir, job.path, { chunks: job.chunks ?? streamed(), source, mode: job.entry.mode, mtimeMs: job.entry.mtimeMs, syncer, group: fileSync });
          prepared.push({ job, file, chunkCount, tail });
        } catch (error) {
          if (!(error instanceof UnsafePathError)) throw error;
          skipped.push({ path: job.path, reason: error.message });
          progress.advance(0, ++jobsDone);
        }
      }
      // What prefetch brought is written: its memory goes before the wait for the disk.
      source.releasePrefetched();
      fileSync.sync();
    } catch (error) {
      fileSync.close();
      for (const { file } of prepared) file.discard();
      throw error;
    }
    let committed = 0;
    try {
      for (const { job, file, chunkCount, tail } of prepared) {
        committed++;
        try {
          try {
            file.commit(job.replaces);
          } catch (error) {
            if (!(error instanceof ChangedMeanwhileError)) throw error;
            // Edited (or created) here since the plan: those bytes exist nowhere else.
            moveAside(job.path, `changed here while the pull ran (${error.message})`);
            file.commit(null);
          }
        } catch (error) {
          if (!(error instanceof UnsafePathError) && !(error instanceof ChangedMeanwhileError)) throw error;
          file.discard();
          skipped.push({ path: job.path, reason: error.message });
          progress.advance(0, ++jobsDone);
          continue;
        }
        progress.advance(0, ++jobsDone);
        if (job.chunks) source.noteLocalFile(join(dir, job.path), job.chunks);
        else if (tail) {
          trimTail(tail);
          source.noteLocalFile(join(dir, job.path), tail.chunks, tail.offsetBytes);
        }
        // The file is exactly the node's content: remember it, so the next push need not read it.
        const written = withShortPath(join(dir, job.path), (short) => lstatSync(short, { bigint: true }));
        writtenStats.set(job.path, {
          sizeBytes: Number(written.size),
          mtimeNs: written.mtimeNs,
          ctimeNs: written.ctimeNs,
          inode: written.ino,
          mode: syncedMode(Number(written.mode & 0o7777n)),
          fileId: job.entry.id!,
          ...(job.entry.idNamesChunk ? { idNamesChunk: true } : {}),
          chunkCount,
        });
        filesWritten++;
        bytesWritten += job.entry.sizeBytes;
      }
    } finally {
      for (const { file } of prepared.slice(committed)) file.discard();
    }
    // Files durable, renames not yet: the directories are fsynced at the end. A stat entry for a file
    // lost to a crash names a path no longer there, which a scan drops.
    if (writtenStats.size > 0) input.statCache.remember(writtenStats);
    group = [];
    groupBytes = 0;
    input.afterGroup?.();
  };
  /** Writes the files planned so far, then does what was queued behind them. */
  const flush = async () => {
    await writeGroup();
    const queued = deferred;
    deferred = [];
    for (const run of queued) await run();
  };
  const enqueueFile = async (job: FileJob) => {
    group.push(job);
    groupBytes += job.entry.sizeBytes;
    if (groupBytes >= PREFETCH_GROUP_BYTES || group.length >= GROUP_FILES_MAX) await flush();
  };
  const defer = async (run: () => Promise<void>) => {
    deferred.push(run);
    if (deferred.length >= DEFERRED_MAX) await flush();
  };

  // ---------- applying one path ----------

  /** The node's entry written at path (write, replace, conflict copy): false when it was not (skipped). */
  const upsert = async (path: string, planned: PlannedPath): Promise<"written" | "skipped" | "directory"> => {
    const after = planned.remote!;
    const onDisk = diskKindAt(path);
    // Writing into a directory that is already there loses nothing; anything else replaces
    // what is on disk, which must then be exactly base's (in history) or be moved aside.
    if (onDisk !== null && !(onDisk === "dir" && after.kind === "dir")) {
      const reason = await notInHistory(path, planned);
      if (reason) {
        if (refuseUnsafe(() => moveAside(path, reason), path)) return "skipped";
      } else if (onDisk === "dir") {
        try {
          await removeSyncedDirectory(path, planned.base!);
        } catch (error) {
          if (!(error instanceof UnsafePathError)) throw error;
          skipped.push({ path, reason: error.message });
          return "skipped";
        }
      }
    }
    if (after.kind === "dir") {
      return refuseUnsafe(() => ensureDirectory(dir, path, syncer), path) ? "skipped" : "directory";
    }
    if (after.kind === "symlink") {
      if (refuseUnsafe(() => writeSymlinkAtomic(dir, path, after.target!, after.mtimeMs, syncer), path)) return "skipped";
      filesWritten++;
      return "written";
    }
    // Chunks the directory already holds: the old version of a file being replaced.
    if (planned.remoteChange === "modified" && planned.base?.kind === "file" && !planned.localChanged) {
      source.noteReplacedFile(join(dir, path), await readEntryChunks(planned.base, load));
    }
    const chunks = after.sizeBytes > PREFETCH_GROUP_BYTES ? null : await readEntryChunks(after, load);
    await enqueueFile({ path, entry: after, chunks, replaces: seenAt(path) });
    return "written";
  };

  /** A removal, decided now and done after the writes ahead of it (deepest first: the walk queues a directory after what is below it). */
  const remove = async (path: string, planned: PlannedPath) => {
    const seen = seenAt(path);
    await defer(async () => {
      const absolute = join(dir, path);
      try {
        // Checks every parent with lstat: a path below a symlink is never touched.
        prepareParents(dir, path, undefined, { create: false });
        withShortPath(absolute, (short) => lstatSync(short));
      } catch (error) {
        if (error instanceof UnsafePathError) skipped.push({ path, reason: error.message });
        return; // already gone, or not ours to remove
      }
      // A directory is emptied by the removals below it; anything else must be base's exactly.
      if (planned.base?.kind !== "dir" || diskKindAt(path) !== "dir") {
        const reason = await notInHistory(path, planned);
        if (reason) {
          conflicts.push({ path, keptAs: null, reason: `deleted on the node, kept here: ${reason}` });
          return;
        }
      }
      try {
        // Never recursive: a directory goes only once empty (what is left in it was never synced);
        // a file goes only if it is still what was there when the removal was decided.
        removeInside(dir, path, syncer, { seen });
      } catch (error) {
        if (error instanceof ChangedMeanwhileError) {
          conflicts.push({ path, keptAs: null, reason: `deleted on the node, kept here: ${error.message}` });
          return;
        }
        if (!(error instanceof UnsafePathError)) throw error;
        if (planned.base?.kind === "dir" && diskKindAt(path) === "dir") {
          conflicts.push({ path, keptAs: null, reason: "deleted on the node but holds local files; kept" });
        } else skipped.push({ path, reason: error.message });
        return;
      }
      pathsRemoved++;
    });
  };

  const reservedAt = (prefix: string) => (name: string) => (prefix === "" && name === STATE_DIR_NAME) || name.startsWith(TEMP_FILE_PREFIX);

  /**
   * Plans and applies one directory, then the directories below it, in tree order. Returns
   * whether the node changed any path below `prefix` that this pull acted on (its parents then
   * get their modes and mtimes set).
   */
  const walk = async (prefix: string, ids: NonNullable<PlannedPath["below"]>, depth: number): Promise<boolean> => {
    if (depth > LIMITS.treeDepthMax) throw new Error(`tree deeper than ${LIMITS.treeDepthMax} levels at ${JSON.stringify(prefix)}`);
    const [base, local, remote] = await alignFileForms(...(await Promise.all([entriesOf(ids.base), entriesOf(ids.local), entriesOf(ids.remote)])), load);
    const plan = planPull(base, local, remote, {
      holdsBack: (name, before, after) => notRead.setsAside({ path: joinPath(prefix, name), before, after }),
      reserved: reservedAt(prefix),
    });
    let changedHere = false;
    for (const planned of plan) {
      const path = joinPath(prefix, planned.name);
      let finish = false;
      switch (planned.action) {
        case "keep":
          // A change on the node the directory already has still counts for its parents' attributes.
          if (planned.remoteChange !== null) changedHere = true;
          break;
        case "hold-back":
          break;
        case "reserved":
          // Never written; never removed either (a removal of one is left alone without a word).
          if (planned.remote === null) break;
          changedHere = true;
          skipped.push({ path, reason: "reserved name, not written" });
          break;
        case "descend":
          // A directory here and there: written only where the node changed its own mode.
          if (planned.remoteChange === null) break;
          changedHere = true;
          finish = (await upsert(path, planned)) === "directory";
          break;
        case "write":
        case "replace":
        case "conflict-copy":
          changedHere = true;
          // A directory written or skipped: what is below it is still planned (and reported, if skipped too).
          finish = (await upsert(path, planned)) === "directory";
          break;
        case "keep-changed":
          conflicts.push({ path, keptAs: null, reason: "deleted on the node but changed here; kept" });
          break;
        case "delete":
          changedHere = true;
          break;
      }
      if (planned.below) {
        const changedBelow = await walk(path, planned.below, depth + 1);
        if (changedBelow && planned.remote?.kind === "dir") finish = true;
        if (changedBelow) changedHere = true;
      }
      // After what is below it: a directory is removed once emptied, its attributes set once filled.
      if (planned.action === "delete") await remove(path, planned);
      if (finish) {
        const entry = planned.remote!;
        await defer(async () => {
          try {
            setDirectoryAttributes(dir, path, entry.mode, entry.mtimeMs);
          } catch (error) {
            attributesNotSet.push({ path, reason: `cannot set directory attributes: ${(error as Error).message}` });
          }
        });
      }
    }
    return changedHere;
  };

  await walk("", { base: input.base, local: input.local, remote: input.remote }, 0);
  await flush();

  const setAside = notRead.skipped();
  // What this pull could not apply: the directory still holds base's entry there (or its own).
  const heldBack = [...new Set(skipped.map((s) => s.path))];
  return { filesWritten, pathsRemoved, bytesWritten, conflicts, skipped: [...setAside, ...skipped, ...attributesNotSet], notApplied: notRead.count, heldBack };
}

/**
 * The same bytes in the two forms of a file entry (named by its one chunk, or by a file node:
 * a format-1 history against a scan that names small files by their chunk) are no change: a
 * local file that only changed form is taken as base's entry, and when the local file did
 * change, a node's entry that only changed form is taken as base, so neither makes a conflict.
 */
async function alignFileForms(base: TreeEntry[], local: TreeEntry[], remote: TreeEntry[], load: ObjectLoader): Promise<[TreeEntry[], TreeEntry[], TreeEntry[]]> {
  const mixed = (list: TreeEntry[]) => list.some((e) => e.idNamesChunk);
  if (!mixed(base) && !mixed(local) && !mixed(remote)) return [base, local, remote];
  const byName = (list: TreeEntry[]) => new Map(list.map((e) => [e.name, e]));
  const baseAt = byName(base);
  const remoteAt = byName(remote);
  const sameBytes = async (x: TreeEntry | undefined, y: TreeEntry | undefined) => x !== undefined && y !== undefined && differOnlyInForm(x, y) && (await sameFileContent(x, y, load));
  const alignedLocal = await Promise.all(local.map(async (entry) => ((await sameBytes(entry, baseAt.get(entry.name))) ? baseAt.get(entry.name)! : entry)));
  const localAt = byName(alignedLocal);
  const alignedBase = await Promise.all(
    base.map(async (entry) => {
      const there = remoteAt.get(entry.name);
      const localChanged = !entriesEqual(localAt.get(entry.name) ?? null, entry);
      return localChanged && (await sameBytes(entry, there)) ? there! : entry;
    }),
  );
  return [alignedBase, alignedLocal, remote];
}

/** The last chunks of a large file as it streams by, and where the first of them starts. */
interface LargeFileTail {
  chunks: ChunkRef[];
  offsetBytes: number;
}

/** Adds a run to a file's tail, dropping from its front once it holds twice what is remembered. */
function keepTail(tail: LargeFileTail, run: readonly ChunkRef[]): void {
  for (const chunk of run) tail.chunks.push(chunk);
  if (tail.chunks.length >= 2 * LOCAL_CHUNKS_REMEMBERED_MAX) trimTail(tail);
}

/** Cuts a tail to the LOCAL_CHUNKS_REMEMBERED_MAX chunks the source would keep of it. */
function trimTail(tail: LargeFileTail): void {
  const drop = tail.chunks.length - LOCAL_CHUNKS_REMEMBERED_MAX;
  if (drop <= 0) return;
  for (let i = 0; i < drop; i++) tail.offsetBytes += tail.chunks[i]!.lengthBytes;
  tail.chunks = tail.chunks.slice(drop);
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash === -1 ? "" : path.slice(0, slash);
}

/** What a pull will write, counted before it starts (for the progress bar): files and bytes the directory does not already hold, roughly. */
export async function countPlannedWrites(base: ObjectId | null, local: ObjectId, remote: ObjectId, load: ObjectLoader): Promise<{ files: number; bytes: number }> {
  const total = { files: 0, bytes: 0 };
  const entriesOf = async (id: ObjectId | null): Promise<TreeEntry[]> => (id === null ? [] : await readTreeEntries(id, load));
  const visit = async (ids: NonNullable<PlannedPath["below"]>, depth: number): Promise<void> => {
    if (depth > LIMITS.treeDepthMax) return;
    const [b, l, r] = await Promise.all([entriesOf(ids.base), entriesOf(ids.local), entriesOf(ids.remote)]);
    for (const planned of planPull(b, l, r)) {
      if ((planned.action === "write" || planned.action === "replace" || planned.action === "conflict-copy") && planned.remote?.kind === "file") {
        total.files++;
        if (planned.remoteChange === "modified" && planned.base?.kind === "file" && !planned.localChanged) {
          const held = new Set((await readEntryChunks(planned.base, load)).map((c) => idToHex(c.id)));
          for (const chunk of await readEntryChunks(planned.remote, load)) if (!held.has(idToHex(chunk.id))) total.bytes += chunk.lengthBytes;
        } else total.bytes += planned.remote.sizeBytes;
      }
      if (planned.below) await visit(planned.below, depth + 1);
    }
  };
  await visit({ base, local, remote }, 0);
  return total;
}
