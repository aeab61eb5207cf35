// Materialize: writes trees and files into a directory, never outside it.
//
// Every file is written to a temp file beside its final name, given its mode and mtime, made
// durable (fsynced, or with its group: group-sync.ts), then renamed over the old name, so a
// reader sees the old file or the new one, never a mix; the directories touched are fsynced at
// the end so the renames survive a power cut.
// Each path component is checked with lstat on the way down: a symlink where a directory
// should be is refused, so a tree (or a hostile server) cannot make us write through a link.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  futimesSync,
  fchmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  lutimesSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { syncedMode } from "../core/file-mode.ts";
import { splitRelativePath } from "../core/names.ts";
import type { ChunkRef, TreeEntry } from "../core/objects.ts";
import { readEntryChunks, readTreeEntries, type ObjectLoader } from "../core/pages.ts";
import { handlesResolveNames, openDirectoryInside, pathInHandle, setDirectoryAttributes, UnsafePathError, withShortPath } from "./directory-handle.ts";
import { TEMP_FILE_PREFIX } from "./scanner.ts";
import type { FileGroupSync } from "./group-sync.ts";

export { setDirectoryAttributes, UnsafePathError };

/** Supplies chunk bytes by id (from a local store, a remote node, or an existing local file). */
export interface ChunkSource {
  getChunks(ids: readonly ObjectId[]): Promise<Uint8Array[]>;
  /**
   * The writer is done with these bytes (a batch getChunks returned, all of it written): a
   * source that owns them may free them now rather than wait for the collector.
   */
  release?(chunks: readonly Uint8Array[]): void;
}

/** Tracks directories whose entries changed, so each is fsynced once at the end. */
export class DirectorySyncer {
  private readonly dirs = new Set<string>();
  /** Directories removed or moved away (and not made again since): nothing at or below them is synced. */
  private readonly gone = new Set<string>();
  add(dir: string): void {
    this.dirs.add(dir);
    // An entry changed in dir: dir and every directory above it exist (again).
    if (this.gone.size > 0) for (let at = dir; ; at = dirname(at)) {
      this.gone.delete(at);
      if (dirname(at) === at) break;
    }
  }
  /**
   * A directory was removed (or moved away): it, and everything that was below it, leaves the
   * set (there is nothing left there to fsync); its parent, whose entry changed, joins it.
   * O(depth) per call, so a pull removing many directories stays linear.
   */
  removed(dir: string, parent: string): void {
    this.dirs.delete(dir);
    this.gone.add(dir);
    this.add(parent);
  }
  private isGone(dir: string): boolean {
    if (this.gone.size === 0) return false;
    for (let at = dir; ; at = dirname(at)) {
      if (this.gone.has(at)) return true;
      if (dirname(at) === at) return false;
    }
  }
  /** The directories waiting for an fsync (for tests and reports). */
  pending(): string[] {
    return [...this.dirs].filter((dir) => !this.isGone(dir));
  }
  flush(): void {
    for (const dir of this.pending()) fsyncDirectory(dir);
    this.dirs.clear();
    this.gone.clear();
  }
}

export function fsyncDirectory(dir: string): void {
  const fd = withShortPath(dir, (path) => openSync(path, "r"));
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/** Where a relative path lands: its absolute path, and its parent both absolute and relative. */
export interface ResolvedPath {
  absolutePath: string;
  parent: string;
  /** The parent relative to the root ("" for the root itself). */
  parentRelative: string;
  name: string;
}

/**
 * Resolves a relative path inside root, creating missing parent directories (mode 0o755 until
 * their own entry sets it) and refusing any parent that is not a real directory.
 */
export function prepareParents(
  root: string,
  relativePath: string,
  syncer?: DirectorySyncer,
  options: { create?: boolean } = {},
): ResolvedPath {
  const create = options.create ?? true;
  const parts = splitRelativePath(relativePath);
  const parentRelative = parts.slice(0, -1).join("/");
  // The walk holds each directory by a no-follow handle, and creates what is missing inside it.
  closeSync(openDirectoryInside(root, parentRelative, { create, onCreated: (dir) => syncer?.add(dir) }));
  const current = parentRelative === "" ? root : join(root, ...parts.slice(0, -1));
  const name = parts[parts.length - 1]!;
  return { absolutePath: join(current, name), parent: current, parentRelative, name };
}

/**
 * Runs `use` with the parent of a resolved path held open (no link followed on the way from
 * the root) and a function naming entries inside that parent. On Linux the names resolve
 * through the handle, so a parent swapped for a symlink after the check is never written
 * through; elsewhere they are plain paths below the checked parent.
 */
function inParent<T>(root: string, resolved: ResolvedPath, use: (at: (name: string) => string) => T): T {
  const fd = openDirectoryInside(root, resolved.parentRelative);
  try {
    return use((name) => (handlesResolveNames() ? pathInHandle(fd, name) : join(resolved.parent, name)));
  } finally {
    closeSync(fd);
  }
}

function tempName(): string {
  return TEMP_FILE_PREFIX + randomBytes(8).toString("hex");
}

/**
 * What a caller saw at a path when it decided to replace or remove it: a file or link's
 * identity, or null for nothing there. A write or removal given one checks, just before it
 * renames or unlinks, that the disk still holds exactly that; a user who edited or created the
 * file meanwhile (a pull's download can take minutes) gets ChangedMeanwhileError instead of
 * losing the edit. The check and the rename are two steps: microseconds, not minutes, remain.
 */
export type SeenEntry = { inode: bigint; sizeBytes: bigint; mtimeNs: bigint; ctimeNs: bigint } | null;

export class ChangedMeanwhileError extends Error {
  override name = "ChangedMeanwhileError";
}

/** The identity of what is at path now (no link followed at it), or null when nothing is. */
export function seenEntryAt(path: string): SeenEntry {
  try {
    const stats = withShortPath(path, (short) => lstatSync(short, { bigint: true }));
    return { inode: stats.ino, sizeBytes: stats.size, mtimeNs: stats.mtimeNs, ctimeNs: stats.ctimeNs };
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

function sameEntry(x: SeenEntry, y: SeenEntry): boolean {
  if (x === null || y === null) return x === y;
  return x.inode === y.inode && x.sizeBytes === y.sizeBytes && x.mtimeNs === y.mtimeNs && x.ctimeNs === y.ctimeNs;
}

/** Throws ChangedMeanwhileError when `seen` is given and the entry at target is no longer it. */
function checkStillSeen(target: string, seen: SeenEntry | undefined, absolutePath: string): void {
  if (seen === undefined) return;
  const now = seenEntryAt(target);
  if (now !== null && !sameEntry(now, seen)) {
    throw new ChangedMeanwhileError(seen === null ? `${absolutePath} was created here meanwhile` : `${absolutePath} was changed here meanwhile`);
  }
}

export interface FileWriteOptions {
  /** The file's chunks in order: a list, or runs of them as they are read (a huge file's leaf pages, one at a time). */
  chunks: readonly ChunkRef[] | AsyncIterable<readonly ChunkRef[]>;
  source: ChunkSource;
  mode: number;
  mtimeMs: number;
  syncer?: DirectorySyncer;
  /** What may be replaced: checked just before the rename (see SeenEntry); unchecked when absent. */
  replaces?: SeenEntry;
}

/** True when every byte is zero (such a chunk is left as a hole instead of being written). */
export function isAllZero(bytes: Uint8Array): boolean {
  const words = bytes.byteOffset % 8 === 0 ? Math.floor(bytes.length / 8) : 0;
  if (words > 0) {
    const view = new BigUint64Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) if (view[i] !== 0n) return false;
  }
  for (let i = words * 8; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function writeFully(fd: number, data: Uint8Array, position: number): void {
  let written = 0;
  while (written < data.length) written += writeSync(fd, data, written, data.length - written, position + written);
}

/** Where a chunk's bytes already are in the file being written: an offset, or a hole. */
type WrittenAt = number | "hole";

/**
 * Writes one file atomically. Each chunk is verified against its id before it is written.
 * A chunk that repeats within the file is fetched once: later copies are read back from the
 * temp file (and checked again); an all-zero chunk is not written at all, so runs of zeros
 * become holes (the file is truncated to its full size at the end).
 */
export async function writeFileAtomic(root: string, relativePath: string, options: FileWriteOptions): Promise<void> {
  const prepared = await prepareFileWrite(root, relativePath, options);
  try {
    prepared.commit(options.replaces);
  } catch (error) {
    prepared.discard();
    throw error;
  }
}

/** A file written to its temp name, not yet renamed over its path (see prepareFileWrite). */
export interface PreparedFile {
  /** Renames the temp file over the path, if the path still holds `replaces` (unchecked when undefined). */
  commit(replaces?: SeenEntry): void;
  /** Removes the temp file (when the group is abandoned, or the path is not to be written). */
  discard(): void;
}

/**
 * The first half of writeFileAtomic: the temp file, complete, with its mode and mtime. With a
 * `group`, the file is not fsynced here: the caller makes the whole group durable (group.sync())
 * before it commits any of them, so a rename never exposes bytes a power cut could lose.
 * Commit re-opens the parent from the root, so a parent swapped for a link meanwhile is refused.
 */
export async function prepareFileWrite(root: string, relativePath: string, options: FileWriteOptions & { group?: FileGroupSync }): Promise<PreparedFile> {
  const resolved = prepareParents(root, relativePath, options.syncer);
  const temp = tempName();
  await inParentAsync(root, resolved, async (at) => {
    const fd = openSync(at(temp), "wx+", 0o600);
    let kept = false;
    try {
      kept = options.group?.adopt(fd) ?? false;
      await writeChunks(fd, relativePath, options);
      // Permission bits alone: a tree never makes a setuid or setgid file (core/file-mode.ts).
      fchmodSync(fd, syncedMode(options.mode));
      futimesSync(fd, new Date(options.mtimeMs), new Date(options.mtimeMs));
      if (!options.group || options.group.fsyncEachFile) fsyncSync(fd);
      if (!kept) closeSync(fd);
    } catch (error) {
      if (!kept) {
        try {
          closeSync(fd);
        } catch {}
      }
      try {
        unlinkSync(at(temp));
      } catch {}
      throw writeFailure(error, resolved.absolutePath);
    }
  });
  let done = false;
  return {
    commit: (replaces?: SeenEntry) => {
      if (done) throw new Error(`${resolved.absolutePath}: temp file already committed or discarded`);
      inParent(root, resolved, (at) => {
        try {
          checkStillSeen(at(resolved.name), replaces, resolved.absolutePath);
          replaceWith(at(temp), at(resolved.name), resolved, options.syncer);
        } catch (error) {
          // Changed meanwhile: the caller may move the path aside and commit again.
          if (error instanceof ChangedMeanwhileError) throw error;
          done = true;
          try {
            unlinkSync(at(temp));
          } catch {}
          throw error;
        }
      });
      done = true;
      if (options.syncer) options.syncer.add(resolved.parent);
      else fsyncDirectory(resolved.parent);
    },
    discard: () => {
      if (done) return;
      done = true;
      try {
        inParent(root, resolved, (at) => unlinkSync(at(temp)));
      } catch {}
    },
  };
}

/** `inParent` for an async use: the parent's handle stays open while chunks are fetched. */
async function inParentAsync(root: string, resolved: ResolvedPath, use: (at: (name: string) => string) => Promise<void>): Promise<void> {
  const fd = openDirectoryInside(root, resolved.parentRelative);
  try {
    await use((name) => (handlesResolveNames() ? pathInHandle(fd, name) : join(resolved.parent, name)));
  } finally {
    closeSync(fd);
  }
}

async function writeChunks(fd: number, relativePath: string, options: FileWriteOptions): Promise<void> {
  const written = new Map<string, WrittenAt>();
  const remember = (key: string, at: WrittenAt) => {
    written.set(key, at);
    if (written.size > WRITTEN_CHUNKS_REMEMBERED_MAX) written.delete(written.keys().next().value!);
  };
  // Fetch in batches so memory stays bounded for huge files, a few in flight at once (written
  // in order as each arrives); each distinct chunk once.
  let toFetch: ChunkRef[] = [];
  let toFetchBytes = 0;
  let planned: { chunk: ChunkRef; position: number }[] = [];
  /** Chunks asked for in a batch not written yet: a repeat is copied from the file once it is. */
  const pendingFetch = new Set<string>();
  const inFlight: { fetching: Promise<Uint8Array[]>; toFetch: ChunkRef[]; planned: { chunk: ChunkRef; position: number }[] }[] = [];
  const copyFromFile = (chunk: ChunkRef, from: WrittenAt, position: number) => {
    if (from === "hole") return;
    const bytes = new Uint8Array(chunk.lengthBytes);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, from + done);
      if (n === 0) break;
      done += n;
    }
    if (done !== bytes.length || !idEquals(blake3(bytes), chunk.id)) {
      throw new Error(`chunk ${idToHex(chunk.id)} of ${relativePath} did not read back as written`);
    }
    writeFully(fd, bytes, position);
  };
  const verified = (data: Uint8Array | undefined, expected: ChunkRef): Uint8Array => {
    if (!data || data.length !== expected.lengthBytes || !idEquals(blake3(data), expected.id)) {
      throw new Error(`chunk ${idToHex(expected.id)} of ${relativePath} failed verification`);
    }
    return data;
  };
  /** Writes the oldest batch in flight, once its chunks arrive. */
  const writeOldest = async () => {
    const batch = inFlight.shift()!;
    let datas: Uint8Array[] | null = await batch.fetching;
    const fetched = new Map<string, Uint8Array>();
    for (let i = 0; i < batch.toFetch.length; i++) {
      const expected = batch.toFetch[i]!;
      fetched.set(idToHex(expected.id), verified(datas[i], expected));
    }
    const returned = datas;
    datas = null;
    for (const { chunk, position } of batch.planned) {
      const key = idToHex(chunk.id);
      const earlier = written.get(key);
      if (earlier !== undefined) {
        copyFromFile(chunk, earlier, position);
        continue;
      }
      // A repeat of a chunk whose place was forgotten meanwhile (a very long batch): fetched again.
      const data = fetched.get(key) ?? verified((await options.source.getChunks([chunk.id]))[0], chunk);
      if (isAllZero(data)) remember(key, "hole");
      else {
        writeFully(fd, data, position);
        remember(key, position);
      }
    }
    for (const chunk of batch.toFetch) pendingFetch.delete(idToHex(chunk.id));
    // The batch's bytes are written: nothing here holds them any more.
    fetched.clear();
    options.source.release?.(returned);
  };
  const flush = async () => {
    if (planned.length === 0) return;
    const ids = toFetch.map((c) => c.id);
    const fetching = ids.length > 0 ? options.source.getChunks(ids) : Promise.resolve([]);
    // Awaited in order by writeOldest; a failure while an earlier batch is written is not unhandled.
    fetching.catch(() => {});
    inFlight.push({ fetching, toFetch, planned });
    toFetch = [];
    toFetchBytes = 0;
    planned = [];
    while (inFlight.length >= BATCHES_IN_FLIGHT_MAX) await writeOldest();
  };
  let position = 0;
  const runs: Iterable<readonly ChunkRef[]> | AsyncIterable<readonly ChunkRef[]> = isChunkList(options.chunks) ? [options.chunks] : options.chunks;
  for await (const run of runs) for (const chunk of run) {
    const key = idToHex(chunk.id);
    const earlier = written.get(key);
    if (earlier !== undefined) copyFromFile(chunk, earlier, position);
    else {
      planned.push({ chunk, position });
      if (!pendingFetch.has(key)) {
        pendingFetch.add(key);
        toFetch.push(chunk);
        toFetchBytes += chunk.lengthBytes;
      }
      if (toFetchBytes >= LIMITS.batchBytesTarget || planned.length >= PLANNED_CHUNKS_MAX) await flush();
    }
    position += chunk.lengthBytes;
  }
  await flush();
  while (inFlight.length > 0) await writeOldest();
  // Holes at the end still count towards the size.
  ftruncateSync(fd, position);
}

/**
 * Batches of one file fetched at once (each ~LIMITS.batchBytesTarget): one written while the
 * next arrives. Four (LIMITS.transferConcurrency) bought no measurable time on a 1 GiB pull and
 * held ~10 MiB more at its peak (121-128 MiB in-process against 106-116 MiB with two).
 */
const BATCHES_IN_FLIGHT_MAX = 2;
/** A bound on chunk positions waiting for one fetch (a long run of one repeated chunk). */
const PLANNED_CHUNKS_MAX = 65_536;
/**
 * Distinct chunks whose position in the file (or hole) is remembered for copying a repeat,
 * the oldest forgotten beyond (a repeat further back is fetched again): 10 GiB of distinct
 * chunks would otherwise keep 160 000 entries.
 */
const WRITTEN_CHUNKS_REMEMBERED_MAX = 16_384;

function isChunkList(chunks: FileWriteOptions["chunks"]): chunks is readonly ChunkRef[] {
  return Array.isArray(chunks);
}

/**
 * Renames temp over target. Something in the way is replaced only when nothing is lost: a file
 * or link (its caller decided it may go), or an empty directory. A directory that still holds
 * entries is refused: its contents may exist nowhere else.
 */
function replaceWith(temp: string, target: string, resolved: ResolvedPath, syncer?: DirectorySyncer): void {
  try {
    const existing = lstatSync(target);
    if (existing.isDirectory()) {
      try {
        rmdirSync(target);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") {
          throw new UnsafePathError(`${resolved.absolutePath} is a directory that still holds entries; not replaced`);
        }
        if (code === "EBUSY") throw new UnsafePathError(busyMessage(resolved.absolutePath, "replaced"));
        throw error;
      }
      syncer?.removed(resolved.absolutePath, resolved.parent);
    }
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  renameSync(temp, target);
}

/** Creates a symlink atomically (never following anything at its place). */
export function writeSymlinkAtomic(root: string, relativePath: string, target: string, mtimeMs: number, syncer?: DirectorySyncer): void {
  const resolved = prepareParents(root, relativePath, syncer);
  inParent(root, resolved, (at) => {
    const temp = at(tempName());
    symlinkSync(target, temp);
    try {
      // lutimes never follows the last component, and the parent is the handle: the link's own time.
      try {
        lutimesSync(temp, new Date(mtimeMs), new Date(mtimeMs));
      } catch {}
      replaceWith(temp, at(resolved.name), resolved, syncer);
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {}
      throw error;
    }
  });
  if (syncer) syncer.add(resolved.parent);
  else fsyncDirectory(resolved.parent);
}

/**
 * Makes sure a directory exists at the path. A file or link in the way is replaced (its caller
 * decided it may go: a pull moves aside anything it cannot find in history first).
 */
export function ensureDirectory(root: string, relativePath: string, syncer?: DirectorySyncer): string {
  const resolved = prepareParents(root, relativePath, syncer);
  inParent(root, resolved, (at) => {
    const path = at(resolved.name);
    try {
      const stats = lstatSync(path);
      if (stats.isDirectory()) return;
      unlinkSync(path);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    mkdirSync(path, { mode: 0o755 });
    syncer?.add(resolved.parent);
  });
  return resolved.absolutePath;
}

/**
 * Removes a file, a link or an empty directory, without following links. A directory that
 * still holds entries is refused (UnsafePathError): nothing is ever removed recursively here.
 */
export function removeInside(root: string, relativePath: string, syncer?: DirectorySyncer, options: { seen?: SeenEntry } = {}): void {
  let resolved: ResolvedPath;
  try {
    resolved = prepareParents(root, relativePath, undefined, { create: false });
  } catch (error) {
    if (isMissing(error)) return; // a parent is gone: so is the path
    throw error;
  }
  inParent(root, resolved, (at) => {
    const path = at(resolved.name);
    let stats;
    try {
      stats = lstatSync(path);
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    // A directory goes only once empty (rmdir): its identity changes with every entry in it.
    if (!stats.isDirectory()) checkStillSeen(path, options.seen, resolved.absolutePath);
    if (stats.isDirectory()) {
      try {
        rmdirSync(path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") throw new UnsafePathError(`${resolved.absolutePath} still holds entries; not removed`);
        if (code === "EBUSY") throw new UnsafePathError(busyMessage(resolved.absolutePath, "removed"));
        throw error;
      }
      syncer?.removed(resolved.absolutePath, resolved.parent);
    } else {
      unlinkSync(path);
      syncer?.add(resolved.parent);
    }
  });
}

/**
 * Moves the entry at relativePath aside to `copyName` in the same directory (a conflict copy),
 * never replacing anything already there: ".1", ".2"... are appended until a name is free, and
 * the move itself cannot replace an entry that appears meanwhile (a hard link for files and
 * links, which fails on an existing name; a rename for directories, which fails on anything but
 * an empty directory). Returns the copy's path relative to the root.
 */
export function moveAsideInside(root: string, relativePath: string, copyName: string, syncer?: DirectorySyncer): string {
  const resolved = prepareParents(root, relativePath, syncer, { create: false });
  let isDirectory = false;
  const chosen = inParent(root, resolved, (at) => {
    const source = at(resolved.name);
    isDirectory = lstatSync(source).isDirectory();
    for (let n = 0; n < 10_000; n++) {
      const candidate = n === 0 ? copyName : `${copyName}.${n}`;
      if (exists(at(candidate))) continue;
      try {
        if (isDirectory) renameSync(source, at(candidate));
        else {
          linkSync(source, at(candidate));
          unlinkSync(source);
        }
        return candidate;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EEXIST" || code === "ENOTEMPTY" || code === "ENOTDIR" || code === "EISDIR") continue; // taken meanwhile
        if (code === "EBUSY") throw new UnsafePathError(busyMessage(resolved.absolutePath, "moved aside"));
        if (!isDirectory && (code === "EPERM" || code === "EXDEV" || code === "ENOTSUP")) {
          // A file system without hard links: rename, after the check above.
          renameSync(source, at(candidate));
          return candidate;
        }
        throw error;
      }
    }
    throw new UnsafePathError(`no free name beside ${resolved.absolutePath} for its conflict copy`);
  });
  // A directory moved away takes its pending fsyncs along (they would find nothing there).
  if (syncer && isDirectory) syncer.removed(resolved.absolutePath, resolved.parent);
  else if (syncer) syncer.add(resolved.parent);
  else fsyncDirectory(resolved.parent);
  return resolved.parentRelative === "" ? chosen : `${resolved.parentRelative}/${chosen}`;
}

/**
 * A directory that is a mount point (or otherwise in use) cannot be renamed or removed (EBUSY):
 * that is the user's arrangement, so the path is skipped and reported, never a failed pull.
 */
function busyMessage(absolutePath: string, what: string): string {
  return `${absolutePath} is a mount point or in use; not ${what}`;
}

/** An fs error of a file write, naming the file (ENOSPC alone says nothing of where). */
function writeFailure(error: unknown, absolutePath: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code !== "string" || error instanceof UnsafePathError || error instanceof ChangedMeanwhileError) return error;
  const named = new Error(`cannot write ${absolutePath}: ${(error as Error).message}; the file there is unchanged`, { cause: error });
  (named as NodeJS.ErrnoException).code = code;
  return named;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** Writes a whole tree into root (which may exist). Existing paths not in the tree are left alone. */
export async function materializeTree(root: string, treeId: ObjectId, load: ObjectLoader, source: ChunkSource): Promise<void> {
  mkdirSync(root, { recursive: true });
  const syncer = new DirectorySyncer();
  const writeDirectory = async (relativeDir: string, id: ObjectId, depth: number): Promise<void> => {
    if (depth > LIMITS.treeDepthMax) throw new UnsafePathError("tree deeper than allowed");
    const entries: TreeEntry[] = await readTreeEntries(id, load);
    for (const entry of entries) {
      const path = relativeDir === "" ? entry.name : `${relativeDir}/${entry.name}`;
      await writeEntry(root, path, entry, load, source, syncer, async (dirId) => writeDirectory(path, dirId, depth + 1));
    }
  };
  await writeDirectory("", treeId, 0);
  syncer.flush();
}

/** Writes one tree entry at path; directories recurse through `writeChildren`. */
export async function writeEntry(
  root: string,
  path: string,
  entry: TreeEntry,
  load: ObjectLoader,
  source: ChunkSource,
  syncer: DirectorySyncer,
  writeChildren: (dirId: ObjectId) => Promise<void>,
): Promise<void> {
  switch (entry.kind) {
    case "file": {
      const chunks = await readEntryChunks(entry, load);
      await writeFileAtomic(root, path, { chunks, source, mode: entry.mode, mtimeMs: entry.mtimeMs, syncer });
      break;
    }
    case "symlink":
      writeSymlinkAtomic(root, path, entry.target!, entry.mtimeMs, syncer);
      break;
    case "dir": {
      ensureDirectory(root, path, syncer);
      await writeChildren(entry.id!);
      setDirectoryAttributes(root, path, entry.mode, entry.mtimeMs);
      break;
    }
  }
}
