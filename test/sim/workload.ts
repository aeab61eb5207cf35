// What the simulated clients do: read a version's tree from a node into memory, change a few
// paths from a small shared pool (so nodes often change the same path at once), and seal the
// result into objects ready to upload, as a client's scanner would.
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import type { ChunkRef, TreeEntry } from "../../src/core/objects.ts";
import { readEntryChunks, readTreeEntries } from "../../src/core/pages.ts";
import { sealFile, sealTree } from "../../src/core/tree-builder.ts";
import type { DsyncNode } from "../../src/node/node.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import type { SimRandom } from "./scheduler.ts";

export const FILE_MODE = 0o644;
export const EXEC_MODE = 0o755;
export const DIR_MODE = 0o755;
export const SYMLINK_MODE = 0o777;

/** Content is cut into chunks of at most this many bytes, so some files span several chunks. */
const CHUNK_BYTES = 48;

export type SimEntry =
  | { kind: "file"; mode: number; mtimeMs: number; content: string }
  | { kind: "symlink"; mode: number; mtimeMs: number; target: string }
  | SimDir;
export interface SimDir {
  kind: "dir";
  mode: number;
  mtimeMs: number;
  children: Map<string, SimEntry>;
}

/** The paths clients touch: few, so concurrent changes to one path are common. */
export const FILE_PATHS = ["a.txt", "b.txt", "notes/todo.md", "notes/ideas.md", "notes/old/2024.md", "src/main.ts", "src/lib/util.ts", "src/lib/io.ts", "img/logo.svg"];
export const DIR_PATHS = ["notes", "notes/old", "src", "src/lib", "img"];
/** Contents several clients may write independently (the same change made twice is no conflict). */
const COMMON_CONTENTS = ["", "hello\n", "TODO: everything\n", "x".repeat(100)];

export function emptyDir(mtimeMs = 0): SimDir {
  return { kind: "dir", mode: DIR_MODE, mtimeMs, children: new Map() };
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Reads a stored tree into memory (file contents included). */
export async function readTree(node: DsyncNode, root: ObjectId): Promise<SimDir> {
  const dir = emptyDir();
  for (const entry of await readTreeEntries(root, node.load)) {
    dir.children.set(entry.name, await readEntry(node, entry));
  }
  return dir;
}

async function readEntry(node: DsyncNode, entry: TreeEntry): Promise<SimEntry> {
  if (entry.kind === "dir") {
    const inner = await readTree(node, entry.id!);
    return { ...inner, mode: entry.mode, mtimeMs: entry.mtimeMs };
  }
  if (entry.kind === "symlink") return { kind: "symlink", mode: entry.mode, mtimeMs: entry.mtimeMs, target: entry.target! };
  const chunks = await readEntryChunks(entry, node.load);
  const datas = await node.getObjects(chunks.map((c) => c.id));
  const parts = datas.map((bytes, i) => {
    if (!bytes) throw new Error(`chunk ${i} of a file in a stored tree is missing`);
    return bytes;
  });
  return { kind: "file", mode: entry.mode, mtimeMs: entry.mtimeMs, content: decoder.decode(Buffer.concat(parts)) };
}

export interface SealedSimTree {
  root: ObjectId;
  /** Chunks, then file and tree nodes bottom-up: the order a client uploads them in. */
  objects: StoredObject[];
  files: number;
  totalBytes: number;
}

export function sealSimTree(dir: SimDir): SealedSimTree {
  const out: SealedSimTree = { root: null as unknown as ObjectId, objects: [], files: 0, totalBytes: 0 };
  out.root = sealDir(dir, out);
  return out;
}

function sealDir(dir: SimDir, out: SealedSimTree): ObjectId {
  const entries: TreeEntry[] = [];
  for (const [name, entry] of dir.children) {
    if (entry.kind === "dir") {
      entries.push({ name, kind: "dir", mode: entry.mode, mtimeMs: entry.mtimeMs, sizeBytes: 0, id: sealDir(entry, out), target: null });
    } else if (entry.kind === "symlink") {
      entries.push({ name, kind: "symlink", mode: entry.mode, mtimeMs: entry.mtimeMs, sizeBytes: 0, id: null, target: entry.target });
    } else {
      const bytes = encoder.encode(entry.content);
      const chunks: ChunkRef[] = [];
      for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
        const chunk = bytes.slice(offset, offset + CHUNK_BYTES);
        const id = blake3(chunk);
        out.objects.push({ id, bytes: chunk });
        chunks.push({ id, lengthBytes: chunk.length });
      }
      const sealed = sealFile(chunks);
      for (const object of sealed.objects) out.objects.push({ id: object.id, bytes: object.bytes });
      out.files++;
      out.totalBytes += bytes.length;
      entries.push({ name, kind: "file", mode: entry.mode, mtimeMs: entry.mtimeMs, sizeBytes: sealed.sizeBytes, id: sealed.id, target: null });
    }
  }
  const sealed = sealTree(entries);
  for (const object of sealed.objects) out.objects.push({ id: object.id, bytes: object.bytes });
  return sealed.id;
}

/** The entry at a path, or undefined. */
export function entryAt(root: SimDir, path: string): SimEntry | undefined {
  let current: SimEntry = root;
  for (const part of path.split("/")) {
    if (current.kind !== "dir") return undefined;
    const next = current.children.get(part);
    if (!next) return undefined;
    current = next;
  }
  return current;
}

/** Puts an entry at a path; a file or symlink standing where a directory is needed is replaced by one. */
export function setPath(root: SimDir, path: string, entry: SimEntry, mtimeMs: number): void {
  const parts = path.split("/");
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    let next = dir.children.get(part);
    if (!next || next.kind !== "dir") {
      next = emptyDir(mtimeMs);
      dir.children.set(part, next);
    }
    dir = next;
  }
  dir.children.set(parts.at(-1)!, entry);
}

export function deletePath(root: SimDir, path: string): boolean {
  const parts = path.split("/");
  const parent = parts.length === 1 ? root : entryAt(root, parts.slice(0, -1).join("/"));
  if (!parent || parent.kind !== "dir") return false;
  return parent.children.delete(parts.at(-1)!);
}

/** Every file and symlink path in the tree. */
export function leafPaths(dir: SimDir, prefix = ""): string[] {
  const out: string[] = [];
  for (const [name, entry] of dir.children) {
    const path = prefix ? `${prefix}/${name}` : name;
    if (entry.kind === "dir") out.push(...leafPaths(entry, path));
    else out.push(path);
  }
  return out;
}

/** Applies 1–3 random edits as a client would make them; returns a short description of each. */
export function applyRandomEdits(tree: SimDir, random: SimRandom, tag: string, nowMs: number): string[] {
  const done: string[] = [];
  const edits = random.between(1, 3);
  for (let n = 0; n < edits; n++) {
    const roll = random.int(100);
    const content = random.chance(0.3) ? random.pick(COMMON_CONTENTS) : `${tag} edit ${n}\n`.repeat(random.between(1, 4));
    const file = (): SimEntry => ({ kind: "file", mode: FILE_MODE, mtimeMs: nowMs, content });
    if (roll < 45) {
      const path = random.pick(FILE_PATHS);
      const existing = entryAt(tree, path);
      const mode = existing?.kind === "file" ? existing.mode : FILE_MODE;
      setPath(tree, path, { kind: "file", mode, mtimeMs: nowMs, content }, nowMs);
      done.push(`write ${path}`);
    } else if (roll < 60) {
      const path = random.pick(FILE_PATHS);
      if (deletePath(tree, path)) done.push(`delete ${path}`);
    } else if (roll < 67) {
      const path = random.pick(DIR_PATHS);
      if (deletePath(tree, path)) done.push(`delete dir ${path}`);
    } else if (roll < 73) {
      // A directory becomes a file.
      const path = random.pick(DIR_PATHS);
      setPath(tree, path, file(), nowMs);
      done.push(`dir->file ${path}`);
    } else if (roll < 79) {
      // A file becomes a directory.
      const path = random.pick(FILE_PATHS);
      setPath(tree, `${path}/inner.txt`, file(), nowMs);
      done.push(`file->dir ${path}`);
    } else if (roll < 87) {
      const path = random.pick(FILE_PATHS);
      const existing = entryAt(tree, path);
      if (existing?.kind === "file") {
        existing.mode = existing.mode === FILE_MODE ? EXEC_MODE : FILE_MODE;
        done.push(`chmod ${path}`);
      }
    } else if (roll < 92) {
      const path = random.pick(FILE_PATHS);
      setPath(tree, path, { kind: "symlink", mode: SYMLINK_MODE, mtimeMs: nowMs, target: random.pick(["a.txt", "../b.txt", "notes"]) }, nowMs);
      done.push(`symlink ${path}`);
    } else {
      // Remove any existing file: conflict copies too, so trees do not only grow.
      const paths = leafPaths(tree);
      if (paths.length > 0) {
        const path = random.pick(paths);
        deletePath(tree, path);
        done.push(`delete ${path}`);
      }
    }
  }
  return done;
}

/** Names of conflict copies anywhere in a stored tree. */
export async function conflictCopiesIn(node: DsyncNode, root: ObjectId): Promise<string[]> {
  const out: string[] = [];
  const visit = async (id: ObjectId, prefix: string) => {
    for (const entry of await readTreeEntries(id, node.load)) {
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.name.includes(".sync-conflict-")) out.push(path);
      if (entry.kind === "dir") await visit(entry.id!, path);
    }
  };
  await visit(root, "");
  return out;
}
