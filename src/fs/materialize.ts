// Materialize: writes trees and files into a directory, never outside it.
//
// Every file is written to a temp file beside its final name, fsynced, given its mode and
// mtime, then renamed over the old name, so a reader sees the old file or the new one, never
// a mix; the directories touched are fsynced at the end so the renames survive a power cut.
// Each path component is checked with lstat on the way down: a symlink where a directory
// should be is refused, so a tree (or a hostile server) cannot make us write through a link.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  futimesSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  chmodSync,
  writeSync,
  lutimesSync,
} from "node:fs";
import { join } from "node:path";
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { splitRelativePath } from "../core/names.ts";
import type { ChunkRef, TreeEntry } from "../core/objects.ts";
import { readFileChunks, readTreeEntries, type ObjectLoader } from "../core/pages.ts";
import { TEMP_FILE_PREFIX } from "./scanner.ts";

/** Supplies chunk bytes by id (from a local store, a remote node, or an existing local file). */
export interface ChunkSource {
  getChunks(ids: readonly ObjectId[]): Promise<Uint8Array[]>;
}

export class UnsafePathError extends Error {
  override name = "UnsafePathError";
}

/** Tracks directories whose entries changed, so each is fsynced once at the end. */
export class DirectorySyncer {
  private readonly dirs = new Set<string>();
  add(dir: string): void {
    this.dirs.add(dir);
  }
  flush(): void {
    for (const dir of this.dirs) fsyncDirectory(dir);
    this.dirs.clear();
  }
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
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
): { absolutePath: string; parent: string } {
  const create = options.create ?? true;
  const parts = splitRelativePath(relativePath);
  let current = root;
  for (const part of parts.slice(0, -1)) {
    const next = join(current, part);
    try {
      const stats = lstatSync(next);
      if (stats.isSymbolicLink()) throw new UnsafePathError(`refusing to write through the symlink ${next}`);
      if (!stats.isDirectory()) throw new UnsafePathError(`${next} is in the way: expected a directory`);
    } catch (error) {
      if (!isMissing(error) || !create) throw error;
      mkdirSync(next, { mode: 0o755 });
      syncer?.add(current);
    }
    current = next;
  }
  return { absolutePath: join(current, parts[parts.length - 1]!), parent: current };
}

function tempPathIn(parent: string): string {
  return join(parent, TEMP_FILE_PREFIX + randomBytes(8).toString("hex"));
}

export interface FileWriteOptions {
  chunks: readonly ChunkRef[];
  source: ChunkSource;
  mode: number;
  mtimeMs: number;
  syncer?: DirectorySyncer;
}

/** Writes one file atomically. Each chunk is verified against its id before it is written. */
export async function writeFileAtomic(root: string, relativePath: string, options: FileWriteOptions): Promise<void> {
  const { absolutePath, parent } = prepareParents(root, relativePath, options.syncer);
  const temp = tempPathIn(parent);
  const fd = openSync(temp, "wx", 0o600);
  try {
    let position = 0;
    // Fetch in batches so memory stays bounded for huge files.
    let batch: ChunkRef[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const datas = await options.source.getChunks(batch.map((c) => c.id));
      for (let i = 0; i < batch.length; i++) {
        const data = datas[i]!;
        const expected = batch[i]!;
        if (data.length !== expected.lengthBytes || !idEquals(blake3(data), expected.id)) {
          throw new Error(`chunk ${idToHex(expected.id)} of ${relativePath} failed verification`);
        }
        let written = 0;
        while (written < data.length) written += writeSync(fd, data, written, data.length - written, position + written);
        position += data.length;
      }
      batch = [];
      batchBytes = 0;
    };
    for (const chunk of options.chunks) {
      batch.push(chunk);
      batchBytes += chunk.lengthBytes;
      if (batchBytes >= LIMITS.batchBytesTarget) await flush();
    }
    await flush();
    fchmodSync(fd, options.mode & 0o7777);
    fsyncSync(fd);
    futimesSync(fd, new Date(options.mtimeMs), new Date(options.mtimeMs));
    closeSync(fd);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(temp);
    } catch {}
    throw error;
  }
  replaceWith(temp, absolutePath);
  if (options.syncer) options.syncer.add(parent);
  else fsyncDirectory(parent);
}

/** Renames temp over target; a directory in the way is removed first (a type change). */
function replaceWith(temp: string, target: string): void {
  try {
    const existing = lstatSync(target);
    if (existing.isDirectory()) rmSync(target, { recursive: true, force: true });
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  renameSync(temp, target);
}

/** Creates a symlink atomically (never following anything at its place). */
export function writeSymlinkAtomic(root: string, relativePath: string, target: string, mtimeMs: number, syncer?: DirectorySyncer): void {
  const { absolutePath, parent } = prepareParents(root, relativePath, syncer);
  const temp = tempPathIn(parent);
  symlinkSync(target, temp);
  try {
    lutimesSync(temp, new Date(mtimeMs), new Date(mtimeMs));
  } catch {}
  replaceWith(temp, absolutePath);
  if (syncer) syncer.add(parent);
  else fsyncDirectory(parent);
}

/** Makes sure a directory exists at the path (replacing a file or link that is in the way). */
export function ensureDirectory(root: string, relativePath: string, syncer?: DirectorySyncer): string {
  const { absolutePath, parent } = prepareParents(root, relativePath, syncer);
  try {
    const stats = lstatSync(absolutePath);
    if (stats.isDirectory()) return absolutePath;
    unlinkSync(absolutePath);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  mkdirSync(absolutePath, { mode: 0o755 });
  syncer?.add(parent);
  return absolutePath;
}

/** Removes a path (recursively for directories) without following links. */
export function removeInside(root: string, relativePath: string, syncer?: DirectorySyncer): void {
  let resolved: { absolutePath: string; parent: string };
  try {
    resolved = prepareParents(root, relativePath, undefined, { create: false });
  } catch (error) {
    if (isMissing(error)) return; // a parent is gone: so is the path
    throw error;
  }
  const { absolutePath, parent } = resolved;
  rmSync(absolutePath, { recursive: true, force: true });
  syncer?.add(parent);
}

/** Applies a directory's mode and mtime, after its contents are written. */
export function setDirectoryAttributes(absolutePath: string, mode: number, mtimeMs: number): void {
  chmodSync(absolutePath, mode & 0o7777);
  utimesSync(absolutePath, new Date(mtimeMs), new Date(mtimeMs));
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
      const chunks = await readFileChunks(entry.id!, load);
      await writeFileAtomic(root, path, { chunks, source, mode: entry.mode, mtimeMs: entry.mtimeMs, syncer });
      break;
    }
    case "symlink":
      writeSymlinkAtomic(root, path, entry.target!, entry.mtimeMs, syncer);
      break;
    case "dir": {
      const absolute = ensureDirectory(root, path, syncer);
      await writeChildren(entry.id!);
      setDirectoryAttributes(absolute, entry.mode, entry.mtimeMs);
      break;
    }
  }
}
