// Pull: bring a directory to a version of a folder, changing only what differs and moving only
// the chunks the directory cannot find locally.
//
// Three trees are compared: the version the directory last synced (base), the directory as it
// is now (local), and the version being pulled (remote). Remote changes are applied where the
// directory still matches base. Where the directory changed a path too, the local content is
// never overwritten silently: it is renamed to a conflict copy and reported. A path deleted
// remotely but changed locally is kept.
import { existsSync, mkdirSync, lstatSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../core/blake3.ts";
import { diffTrees, entriesEqual, type DiffEntry } from "../core/diff.ts";
import { idEquals, idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { conflictCopyName } from "../core/conflict-name.ts";
import { syncedMode } from "../core/file-mode.ts";
import { LIMITS } from "../core/limits.ts";
import type { ChunkRef, TreeEntry } from "../core/objects.ts";
import { readFileChunks, readTreeEntries, type ObjectLoader } from "../core/pages.ts";
import {
  ChangedMeanwhileError,
  DirectorySyncer,
  ensureDirectory,
  moveAsideInside,
  prepareParents,
  removeInside,
  setDirectoryAttributes,
  writeFileAtomic,
  writeSymlinkAtomic,
  seenEntryAt,
  UnsafePathError,
  type ChunkSource,
  type SeenEntry,
} from "../fs/materialize.ts";
import { TEMP_FILE_PREFIX } from "../fs/scanner.ts";
import { withShortPath } from "../fs/directory-handle.ts";
import type { StatCacheEntry } from "../fs/stat-cache.ts";
import { FileChunkReader, type ChunkLocation } from "./file-chunks.ts";
import { INTERRUPTED_TARGETS_MAX, resumedBase } from "./interrupted-pull.ts";
import { HELD_BACK_PATHS_MAX, stillHeldBack, storedEmptyTree, withEntriesOf } from "./held-back.ts";
import { openLocalCaches, readSyncState, STATE_DIR_NAME, writeSyncState } from "./local-state.ts";
import { silentProgress, type Progress } from "./progress.ts";
import { RemoteError, RemoteNode } from "./remote.ts";
import { cachedRemoteLoader, fetchNodeClosure } from "./remote-objects.ts";
import { scanIntoCache } from "./scan-local.ts";
import { setAsideChangesNotRead } from "./changes-not-read.ts";
import { clientToken, resolveSyncTarget } from "./sync-target.ts";
import { TreeLookup } from "../core/tree-lookup.ts";

export interface PullOptions {
  remote?: string;
  folder?: string;
  /** A version id (or unique prefix); the folder's head when absent. */
  version?: string;
  progress?: Progress;
  /** Sync DIR with this remote and folder although it remembers others (sync-target.ts). */
  rebind?: boolean;
  /** Time for conflict copy names; injected for tests. */
  nowMs?: () => number;
}

export interface PullConflict {
  path: string;
  /** Where the local content was moved to, or null when it was kept in place. */
  keptAs: string | null;
  reason: string;
}

export interface PullReport {
  remote: string;
  folder: string;
  version: string;
  root: string;
  /** The version the directory was in sync with before (null on a first pull). */
  previous: string | null;
  files_written: number;
  paths_removed: number;
  bytes_written: number;
  chunks_fetched: number;
  /** Chunk bytes fetched from the node (before wire compression). */
  bytes_fetched: number;
  chunks_reused: number;
  nodes_fetched: number;
  wire_bytes_sent: number;
  wire_bytes_received: number;
  requests: number;
  conflicts: PullConflict[];
  skipped: { path: string; reason: string }[];
  /** Changes on the node not applied because this copy does not read their paths (ignored, unreadable); grouped in skipped. */
  not_applied: number;
  /** Paths in skipped this pull could not apply: the next pull retries them, and a push keeps the node's entry there (held-back.ts). */
  held_back: number;
  /** False when more than HELD_BACK_PATHS_MAX paths were held back: the version is then not recorded as synced (the next pull finishes it). */
  recorded: boolean;
  elapsed_ms: number;
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash === -1 ? "" : path.slice(0, slash);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Serves chunks from local files where possible, else from the node, in bounded batches. */
class PullChunkSource implements ChunkSource {
  readonly local = new Map<string, ChunkLocation>();
  readonly prefetched = new Map<string, Uint8Array>();
  readonly reader = new FileChunkReader();
  chunksFetched = 0;
  bytesFetched = 0;
  chunksReused = 0;

  constructor(private readonly remote: RemoteNode, private readonly onFetched: (bytes: number) => void = () => {}) {}

  /** Whether a chunk can be had without the network (not verified until read). */
  hasLocally(id: ObjectId): boolean {
    const key = idToHex(id);
    return this.prefetched.has(key) || this.local.has(key);
  }

  /** Downloads chunks into memory, a few requests of ~4 MiB at a time. */
  async prefetch(chunks: readonly ChunkRef[]): Promise<void> {
    const batches: ObjectId[][] = [];
    let batch: ObjectId[] = [];
    let bytes = 0;
    for (const chunk of chunks) {
      batch.push(chunk.id);
      bytes += chunk.lengthBytes;
      if (bytes >= LIMITS.batchBytesTarget) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) batches.push(batch);
    for (let i = 0; i < batches.length; i += LIMITS.transferConcurrency) {
      const replies = await Promise.all(batches.slice(i, i + LIMITS.transferConcurrency).map((ids) => this.remote.download(ids)));
      for (const reply of replies) {
        if (reply.missing.length > 0) throw new RemoteError("rejected", `the node lacks chunk ${idToHex(reply.missing[0]!)} of its own tree`);
        for (const object of reply.objects) {
          if (!idEquals(blake3(object.bytes), object.id)) throw new RemoteError("rejected", `the node sent chunk ${idToHex(object.id)} with wrong bytes`);
          this.prefetched.set(idToHex(object.id), object.bytes);
          this.chunksFetched++;
          this.bytesFetched += object.bytes.length;
          this.onFetched(object.bytes.length);
        }
      }
    }
  }

  async getChunks(ids: readonly ObjectId[]): Promise<Uint8Array[]> {
    const out: (Uint8Array | undefined)[] = ids.map((id) => {
      const key = idToHex(id);
      const fetched = this.prefetched.get(key);
      if (fetched) return fetched;
      const location = this.local.get(key);
      if (!location) return undefined;
      const bytes = this.reader.tryRead(id, location);
      if (bytes) this.chunksReused++;
      else this.local.delete(key); // the local copy changed; fetch instead
      return bytes;
    });
    // Each distinct chunk once, however often the batch names it.
    const missing = [...new Map(ids.filter((_, i) => out[i] === undefined).map((id) => [idToHex(id), id])).values()];
    if (missing.length > 0) {
      const reply = await this.remote.download(missing);
      const counted = new Set<string>();
      const byId = new Map(reply.objects.map((o) => [idToHex(o.id), o.bytes]));
      for (let i = 0; i < ids.length; i++) {
        if (out[i] !== undefined) continue;
        const key = idToHex(ids[i]!);
        const bytes = byId.get(key);
        if (!bytes) throw new RemoteError("rejected", `the node lacks chunk ${key} of its own tree`);
        out[i] = bytes;
        if (counted.has(key)) continue;
        counted.add(key);
        this.chunksFetched++;
        this.bytesFetched += bytes.length;
        this.onFetched(bytes.length);
      }
    }
    return out as Uint8Array[];
  }

  /** Remembers where a file's chunks sit on disk, to reuse them for later files. */
  noteLocalFile(absolutePath: string, chunks: readonly ChunkRef[]): void {
    let offset = 0;
    for (const chunk of chunks) {
      const key = idToHex(chunk.id);
      if (!this.local.has(key)) this.local.set(key, { path: absolutePath, offsetBytes: offset, lengthBytes: chunk.lengthBytes });
      offset += chunk.lengthBytes;
    }
  }

  releasePrefetched(): void {
    this.prefetched.clear();
  }
}

interface FileJob {
  path: string;
  entry: TreeEntry;
  chunks: ChunkRef[];
  /** What was at the path when the write was decided: it is replaced only if still there. */
  replaces: SeenEntry;
}

const PREFETCH_GROUP_BYTES = 16 * 1024 * 1024;

export async function pull(dir: string, options: PullOptions = {}): Promise<PullReport> {
  const startMs = Date.now();
  const nowMs = options.nowMs ?? (() => Date.now());
  const progress = options.progress ?? silentProgress;
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a directory: pull into a directory (it is created if missing)`);
  // Nothing is created before the folder and version are found: a failed first pull leaves no
  // empty directory behind.
  const state = readSyncState(dir);
  const { remote: remoteUrl, folder, rebound } = resolveSyncTarget(dir, state, options);
  const remote = new RemoteNode(remoteUrl, clientToken());

  const folderInfo = await remote.getFolder(folder);
  if (!folderInfo) {
    throw new RemoteError("not-found", `the node at ${remoteUrl} has no folder named ${JSON.stringify(folder)} (dsync ls --remote ${remoteUrl} lists its folders)`);
  }
  let versionId: string;
  let rootHex: string;
  if (options.version) {
    const version = await remote.getVersion(folder, options.version);
    versionId = version.id;
    rootHex = version.root;
  } else {
    if (!folderInfo.head) throw new RemoteError("not-found", `folder ${folder} on ${remoteUrl} has no versions yet (push to it first)`);
    const version = await remote.getVersion(folder, folderInfo.head);
    versionId = version.id;
    rootHex = version.root;
  }
  const root = idFromHex(rootHex);
  const sameTarget = !rebound && state.remote === remoteUrl && state.folder === folder;
  mkdirSync(dir, { recursive: true });
  // A directory named through a link is the directory it names (as for push): everything
  // below it is reached without following any link.
  dir = realpathSync(dir);
  // The directory is bound to the folder from here on (with no last version until the pull
  // completes), so a pull interrupted midway is resumed by a bare `dsync pull DIR`.
  if (!sameTarget) writeSyncState(dir, { remote: remoteUrl, folder });
  const syncedBase = sameTarget && state.lastRoot ? idFromHex(state.lastRoot) : null;
  // Roots earlier pulls of this directory were moving to when they were cut short.
  const interruptedTargets = sameTarget ? state.pulling ?? [] : [];

  const caches = await openLocalCaches(dir);
  const source = new PullChunkSource(remote, (bytes) => progress.advance(bytes));
  const syncer = new DirectorySyncer();
  const conflicts: PullConflict[] = [];
  const skipped: { path: string; reason: string }[] = [];
  let filesWritten = 0;
  let pathsRemoved = 0;
  let bytesWritten = 0;
  try {
    const nodesFetched = await fetchNodeClosure(remote, root, caches.objects);
    const load: ObjectLoader = cachedRemoteLoader(remote, caches.objects);
    // Paths this copy does not read stand as last synced (ignored is not deleted), and the node's
    // changes there are set aside below (changes-not-read.ts).
    const scan = await scanIntoCache(dir, caches, progress, undefined, syncedBase ? { root: syncedBase, load } : undefined);
    const localRoot = scan.rootId;
    // What an interrupted pull already wrote is what its target holds, not a local edit.
    const resumed = await resumedBase(syncedBase, interruptedTargets.map(idFromHex), localRoot, load, caches.objects);
    // Where the last pull could not apply the node's change and the directory still holds what
    // it held then, the old entry is the base: the change is retried, not taken for a local edit.
    const heldBefore = sameTarget ? state.heldBack : undefined;
    const base = resumed === null ? null : await withEntriesOf(resumed, idFromHex(heldBefore?.root ?? rootHex), await stillHeldBack(localRoot, heldBefore, load, { whereUnreachable: true }), load, caches.objects);
    // Before the first write: remember where this pull goes, until the directory gets there.
    const pulling = [...interruptedTargets.filter((hex) => hex !== rootHex), rootHex].slice(-INTERRUPTED_TARGETS_MAX);
    writeSyncState(dir, { ...(sameTarget ? state : { remote: remoteUrl, folder }), pulling });
    // Temp files of an interrupted earlier write are ours and never synced: clear them away.
    for (const leftover of scan.tempLeftovers) {
      try {
        removeInside(dir, leftover, syncer);
      } catch {}
    }

    const notRead = setAsideChangesNotRead(await diffTrees(base, root, load), scan);
    const remoteChanges = notRead.diff;
    skipped.push(...notRead.skipped);
    // Paths not read stand as last synced anyway (scan-local.ts); what is skipped after them is held back.
    const heldBackFrom = skipped.length;
    const localChanges = await diffTrees(base, localRoot, load);
    const localByPath = new Map<string, DiffEntry>();
    for (const list of [localChanges.added, localChanges.removed, localChanges.modified, localChanges.typeChanged]) {
      for (const change of list) localByPath.set(change.path, change);
    }
    /** True when the directory changed this path, or anything below it, since the last sync. */
    const changedLocallyAtOrBelow = (path: string) => {
      for (const changed of localByPath.keys()) if (changed === path || changed.startsWith(path + "/")) return true;
      return false;
    };

    const moveAside = (path: string, reason: string) => {
      const keptAs = moveAsideInside(dir, path, conflictCopyName(nameOf(path), nowMs(), "local"), syncer);
      conflicts.push({ path, keptAs, reason });
    };

    // What may be replaced or deleted: only what the last synced version (base) holds exactly,
    // so it stays in history. The scan records less than the disk holds (ignored paths, FIFOs,
    // names it cannot store, unreadable files), so the disk itself is walked to find the rest.
    //
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
    /**
     * Why the entry on disk at path may not be replaced or deleted (it holds bytes the last
     * synced version does not), or null when it is absent or exactly base's entry `base`.
     */
    const notInHistory = async (path: string, base: TreeEntry | null): Promise<string | null> => {
      const onDisk = diskKindAt(path);
      if (onDisk === null) return null;
      const local = localByPath.get(path);
      if (local && local.after !== null) return "changed here and on the node";
      if (local || !base) return "never synced from here (ignored, unreadable or not a regular file)";
      if (skippedAtOrBelow(path)) return "not read here (ignored, unreadable or unsupported), at or below this path";
      if (onDisk !== base.kind) return "changed here and on the node";
      if (base.kind === "dir") {
        if (changedLocallyAtOrBelow(path)) return "directory replaced on the node while changed here";
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
    /** Where a removal was decided, what was there: a file edited since is kept. */
    const removalSeen = new Map<string, SeenEntry>();

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

    const fileJobs: FileJob[] = [];
    const writtenStats = new Map<string, StatCacheEntry>();
    const dirsToFinish = new Map<string, TreeEntry>();
    const removals: DiffEntry[] = [];
    /** Directories replaced by a file or link: the removals below them were done (or kept) with them. */
    const replacedDirectories: string[] = [];
    const upserts = [...remoteChanges.added, ...remoteChanges.modified, ...remoteChanges.typeChanged].sort((x, y) => (x.path < y.path ? -1 : 1));

    for (const change of upserts) {
      const after = change.after!;
      if (change.path === STATE_DIR_NAME || nameOf(change.path).startsWith(TEMP_FILE_PREFIX)) {
        skipped.push({ path: change.path, reason: "reserved name, not written" });
        continue;
      }
      if (change.path.split("/").some((part, i) => (i === 0 && part === STATE_DIR_NAME) || part.startsWith(TEMP_FILE_PREFIX))) continue;
      const local = localByPath.get(change.path);
      const localEntry = local ? local.after : change.before; // unchanged locally: still base
      if (entriesEqual(localEntry, after)) continue; // already what the remote has
      const onDisk = diskKindAt(change.path);
      // Writing into a directory that is already there loses nothing; anything else replaces
      // what is on disk, which must then be exactly base's (in history) or be moved aside.
      if (onDisk !== null && !(onDisk === "dir" && after.kind === "dir")) {
        const reason = await notInHistory(change.path, change.before);
        if (reason) {
          if (refuseUnsafe(() => moveAside(change.path, reason), change.path)) continue;
        } else if (onDisk === "dir") {
          try {
            await removeSyncedDirectory(change.path, change.before!);
          } catch (error) {
            if (!(error instanceof UnsafePathError)) throw error;
            skipped.push({ path: change.path, reason: error.message });
            continue;
          }
        }
        if (change.before?.kind === "dir") replacedDirectories.push(change.path);
      }
      if (after.kind === "dir") {
        if (!refuseUnsafe(() => ensureDirectory(dir, change.path, syncer), change.path)) dirsToFinish.set(change.path, after);
      } else if (after.kind === "symlink") {
        if (!refuseUnsafe(() => writeSymlinkAtomic(dir, change.path, after.target!, after.mtimeMs, syncer), change.path)) filesWritten++;
      } else {
        fileJobs.push({ path: change.path, entry: after, chunks: await readFileChunks(after.id!, load), replaces: seenAt(change.path) });
      }
    }

    for (const change of remoteChanges.removed) {
      if (change.path.split("/")[0] === STATE_DIR_NAME) continue;
      if (replacedDirectories.some((replaced) => change.path.startsWith(replaced + "/"))) continue;
      if (localByPath.has(change.path) && localByPath.get(change.path)!.after !== null) {
        conflicts.push({ path: change.path, keptAs: null, reason: "deleted on the node but changed here; kept" });
        continue;
      }
      removals.push(change);
      removalSeen.set(change.path, seenAt(change.path));
    }

    // Chunks the directory already holds: the old versions of the files being replaced.
    const modifiedBefore = new Map(remoteChanges.modified.map((c) => [c.path, c.before]));
    for (const job of fileJobs) {
      const before = modifiedBefore.get(job.path);
      if (before?.kind === "file" && !localByPath.has(job.path)) {
        source.noteLocalFile(join(dir, job.path), await readFileChunks(before.id!, load));
      }
    }

    const bytesToFetch = fileJobs.reduce((sum, job) => sum + job.chunks.filter((c) => !source.hasLocally(c.id)).reduce((s, c) => s + c.lengthBytes, 0), 0);
    progress.phase("pulling", bytesToFetch, fileJobs.length);
    let jobsDone = 0;
    // Files are written in groups whose missing chunks are fetched together (bounded memory,
    // few requests); a file larger than a group streams its chunks batch by batch.
    let group: FileJob[] = [];
    let groupBytes = 0;
    const writeGroup = async () => {
      const wanted = new Map<string, ChunkRef>();
      for (const job of group) {
        if (job.entry.sizeBytes > PREFETCH_GROUP_BYTES) continue;
        for (const chunk of job.chunks) if (!source.hasLocally(chunk.id)) wanted.set(idToHex(chunk.id), chunk);
      }
      await source.prefetch([...wanted.values()]);
      for (const job of group) {
        const write = (replaces: SeenEntry) =>
          writeFileAtomic(dir, job.path, { chunks: job.chunks, source, mode: job.entry.mode, mtimeMs: job.entry.mtimeMs, syncer, replaces });
        try {
          try {
            await write(job.replaces);
          } catch (error) {
            if (!(error instanceof ChangedMeanwhileError)) throw error;
            // Edited (or created) here since the plan: those bytes exist nowhere else.
            moveAside(job.path, `changed here while the pull ran (${error.message})`);
            await write(null);
          }
        } catch (error) {
          if (!(error instanceof UnsafePathError) && !(error instanceof ChangedMeanwhileError)) throw error;
          skipped.push({ path: job.path, reason: error.message });
          progress.advance(0, ++jobsDone);
          continue;
        }
        progress.advance(0, ++jobsDone);
        source.noteLocalFile(join(dir, job.path), job.chunks);
        // The file is exactly the node's content: remember it, so the next push need not read it.
        const written = withShortPath(join(dir, job.path), (short) => lstatSync(short, { bigint: true }));
        writtenStats.set(job.path, {
          sizeBytes: Number(written.size),
          mtimeNs: written.mtimeNs,
          ctimeNs: written.ctimeNs,
          inode: written.ino,
          mode: syncedMode(Number(written.mode & 0o7777n)),
          fileId: job.entry.id!,
          chunkCount: job.chunks.length,
        });
        filesWritten++;
        bytesWritten += job.entry.sizeBytes;
      }
      source.releasePrefetched();
      group = [];
      groupBytes = 0;
    };
    for (const job of fileJobs) {
      group.push(job);
      groupBytes += job.entry.sizeBytes;
      if (groupBytes >= PREFETCH_GROUP_BYTES || group.length >= 2048) await writeGroup();
    }
    await writeGroup();

    // Removals, deepest first; a directory that still holds local files is kept.
    removals.sort((x, y) => (x.path < y.path ? 1 : -1));
    for (const change of removals) {
      const absolute = join(dir, change.path);
      try {
        // Checks every parent with lstat: a path below a symlink is never touched.
        prepareParents(dir, change.path, undefined, { create: false });
        withShortPath(absolute, (short) => lstatSync(short));
      } catch (error) {
        if (error instanceof UnsafePathError) skipped.push({ path: change.path, reason: error.message });
        continue; // already gone, or not ours to remove
      }
      // A directory is emptied by the removals below it; anything else must be base's exactly.
      if (change.before?.kind !== "dir" || diskKindAt(change.path) !== "dir") {
        const reason = await notInHistory(change.path, change.before);
        if (reason) {
          conflicts.push({ path: change.path, keptAs: null, reason: `deleted on the node, kept here: ${reason}` });
          continue;
        }
      }
      try {
        // Never recursive: a directory goes only once empty (what is left in it was never synced);
        // a file goes only if it is still what was there when the removal was decided.
        removeInside(dir, change.path, syncer, { seen: removalSeen.get(change.path) });
      } catch (error) {
        if (error instanceof ChangedMeanwhileError) {
          conflicts.push({ path: change.path, keptAs: null, reason: `deleted on the node, kept here: ${error.message}` });
          continue;
        }
        if (!(error instanceof UnsafePathError)) throw error;
        if (change.before?.kind === "dir" && diskKindAt(change.path) === "dir") {
          conflicts.push({ path: change.path, keptAs: null, reason: "deleted on the node but holds local files; kept" });
        } else skipped.push({ path: change.path, reason: error.message });
        continue;
      }
      pathsRemoved++;
    }

    // What this pull could not apply: the directory still holds base's entry there (or its own).
    const heldBack = [...new Set(skipped.slice(heldBackFrom).map((s) => s.path))];
    // Directory modes and mtimes last, deepest first, for every directory on a changed path.
    const changedPaths = [...upserts, ...removals].map((c) => c.path);
    const lookup = new TreeLookup(root, load);
    for (const path of changedPaths) {
      for (let parent = parentOf(path); parent !== ""; parent = parentOf(parent)) {
        if (dirsToFinish.has(parent)) break;
        const entry = await lookup.entryAt(parent);
        if (entry?.kind === "dir") dirsToFinish.set(parent, entry);
      }
    }
    for (const [path, entry] of [...dirsToFinish].sort((x, y) => (x[0] < y[0] ? 1 : -1))) {
      try {
        setDirectoryAttributes(dir, path, entry.mode, entry.mtimeMs);
      } catch (error) {
        skipped.push({ path, reason: `cannot set directory attributes: ${(error as Error).message}` });
      }
    }
    syncer.flush();
    caches.statCache.remember(writtenStats);
    progress.done();
    const recorded = heldBack.length <= HELD_BACK_PATHS_MAX;
    if (recorded) {
      let heldRoot = base;
      // A first pull: what the directory holds at those paths is its own, against nothing synced.
      if (heldRoot === null && heldBack.length > 0) heldRoot = await storedEmptyTree(caches.objects);
      writeSyncState(dir, {
        remote: remoteUrl,
        folder,
        lastVersion: versionId,
        lastRoot: rootHex,
        ...(heldBack.length > 0 ? { heldBack: { root: idToHex(heldRoot!), paths: heldBack } } : {}),
      });
    }
    // Beyond the bound, state.json keeps this pull as one that did not finish (`pulling`): the
    // next pull compares with the last synced version and this target, and a push waits for it.
    return {
      remote: remoteUrl,
      folder,
      version: versionId,
      root: rootHex,
      previous: sameTarget ? state.lastVersion ?? null : null,
      files_written: filesWritten,
      paths_removed: pathsRemoved,
      bytes_written: bytesWritten,
      chunks_fetched: source.chunksFetched,
      bytes_fetched: source.bytesFetched,
      chunks_reused: source.chunksReused,
      nodes_fetched: nodesFetched,
      wire_bytes_sent: remote.counters.wireBytesSent,
      wire_bytes_received: remote.counters.wireBytesReceived,
      requests: remote.counters.requests,
      conflicts,
      skipped: [...skipped, ...scan.skipped],
      not_applied: notRead.count,
      held_back: heldBack.length,
      recorded,
      elapsed_ms: Date.now() - startMs,
    };
  } finally {
    source.reader.closeAll();
    await caches.close();
  }
}


