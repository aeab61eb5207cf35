// An in-memory object set for tests: sealed objects and chunks by id, a loader that counts its
// calls, and trees written as nested literals:
//   { "a.txt": "content", dir: { b: "x" }, link: { symlink: "target" } }
// A string is a file with that content, an object is a directory, and an object whose only key
// is "symlink" (with a string value) is a symlink. file(), dir() and symlink() give control over
// mode, mtime and chunking, and dir() also spells a directory holding a single file "symlink".
import { blake3 } from "../../src/core/blake3.ts";
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { decodeObject, type ChunkRef, type StructuredObject, type TreeEntry } from "../../src/core/objects.ts";
import { readEntryChunks, readFileChunks, readTreeEntries, type ObjectLoader, type SealedObject } from "../../src/core/pages.ts";
import { sealFile, sealTree } from "../../src/core/tree-builder.ts";

export const DEFAULT_MTIME_MS = 1_700_000_000_000;
export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;
export const SYMLINK_MODE = 0o777;

const SPEC = Symbol("tree literal spec");

interface Metadata {
  mode?: number;
  mtimeMs?: number;
}
export interface FileSpec extends Metadata {
  [SPEC]: "file";
  content: string | Uint8Array;
  /** Cut the content into fixed-size chunks of this many bytes; one chunk when absent. */
  chunkSizeBytes?: number;
}
export interface SymlinkSpec extends Metadata {
  [SPEC]: "symlink";
  target: string;
}
export interface DirSpec extends Metadata {
  [SPEC]: "dir";
  children: TreeLiteral;
}
export type EntryLiteral = string | Uint8Array | FileSpec | SymlinkSpec | DirSpec | TreeLiteral;
export interface TreeLiteral {
  [name: string]: EntryLiteral;
}

export function file(content: string | Uint8Array, options: Metadata & { chunkSizeBytes?: number } = {}): FileSpec {
  return { [SPEC]: "file", content, ...options };
}
export function symlink(target: string, options: Metadata = {}): SymlinkSpec {
  return { [SPEC]: "symlink", target, ...options };
}
export function dir(children: TreeLiteral, options: Metadata = {}): DirSpec {
  return { [SPEC]: "dir", children, ...options };
}

/** What describe() gives back: file contents as text, symlinks as { symlink }, directories as objects. */
export type Described = string | { symlink: string } | { [name: string]: Described };

function normalize(literal: EntryLiteral): FileSpec | SymlinkSpec | DirSpec {
  if (typeof literal === "string" || literal instanceof Uint8Array) return file(literal);
  if (SPEC in literal) return literal as FileSpec | SymlinkSpec | DirSpec;
  const keys = Object.keys(literal);
  if (keys.length === 1 && keys[0] === "symlink" && typeof literal.symlink === "string") return symlink(literal.symlink);
  return dir(literal as TreeLiteral);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class MemoryObjects {
  private readonly objects = new Map<string, Uint8Array>();
  private readonly chunkBytes = new Map<string, Uint8Array>();
  /** Calls to load since the last resetLoads(). */
  loads = 0;
  /** Ids (hex) passed to load since the last resetLoads(), in call order. */
  loadedIds: string[] = [];

  /** Counts every call, then decodes the stored bytes as a real store would. */
  readonly load: ObjectLoader = async (id) => {
    this.loads++;
    this.loadedIds.push(idToHex(id));
    return this.peek(id);
  };

  /** Loads without counting, for the test's own inspection. */
  private readonly quietLoad: ObjectLoader = async (id) => this.peek(id);

  private peek(id: ObjectId): StructuredObject {
    const bytes = this.objects.get(idToHex(id));
    if (bytes === undefined) throw new Error(`no object ${idToHex(id)}`);
    return decodeObject(bytes);
  }

  /** Every structured object and chunk held, as id and bytes (to put into a store). */
  all(): { id: ObjectId; bytes: Uint8Array }[] {
    const out: { id: ObjectId; bytes: Uint8Array }[] = [];
    for (const map of [this.chunkBytes, this.objects]) for (const [key, bytes] of map) out.push({ id: idFromHex(key), bytes });
    return out;
  }

  resetLoads(): void {
    this.loads = 0;
    this.loadedIds = [];
  }

  get objectCount(): number {
    return this.objects.size;
  }

  has(id: ObjectId): boolean {
    return this.objects.has(idToHex(id)) || this.chunkBytes.has(idToHex(id));
  }

  putObjects(objects: readonly SealedObject[]): void {
    for (const object of objects) this.objects.set(idToHex(object.id), object.bytes);
  }

  putChunk(bytes: Uint8Array): ChunkRef {
    const id = blake3(bytes);
    this.chunkBytes.set(idToHex(id), bytes);
    return { id, lengthBytes: bytes.length };
  }

  chunk(id: ObjectId): Uint8Array | undefined {
    return this.chunkBytes.get(idToHex(id));
  }

  /** Stores a file's chunks and nodes and returns its entry. */
  fileEntry(name: string, spec: FileSpec): TreeEntry {
    const bytes = typeof spec.content === "string" ? textEncoder.encode(spec.content) : spec.content;
    const step = spec.chunkSizeBytes ?? Math.max(bytes.length, 1);
    const chunks: ChunkRef[] = [];
    for (let offset = 0; offset < bytes.length; offset += step) chunks.push(this.putChunk(bytes.subarray(offset, offset + step)));
    const sealed = sealFile(chunks);
    this.putObjects(sealed.objects);
    return { name, kind: "file", mode: spec.mode ?? FILE_MODE, mtimeMs: spec.mtimeMs ?? DEFAULT_MTIME_MS, sizeBytes: sealed.sizeBytes, id: sealed.id, target: null };
  }

  /** Stores whatever a literal needs and returns the entry naming it. */
  entry(name: string, literal: EntryLiteral): TreeEntry {
    const spec = normalize(literal);
    const mtimeMs = spec.mtimeMs ?? DEFAULT_MTIME_MS;
    switch (spec[SPEC]) {
      case "file":
        return this.fileEntry(name, spec);
      case "symlink":
        return { name, kind: "symlink", mode: spec.mode ?? SYMLINK_MODE, mtimeMs, sizeBytes: 0, id: null, target: spec.target };
      case "dir":
        return { name, kind: "dir", mode: spec.mode ?? DIR_MODE, mtimeMs, sizeBytes: 0, id: this.tree(spec.children), target: null };
    }
  }

  /** Stores a directory given as a literal and returns its id. */
  tree(literal: TreeLiteral): ObjectId {
    const sealed = sealTree(Object.entries(literal).map(([name, child]) => this.entry(name, child)));
    this.putObjects(sealed.objects);
    return sealed.id;
  }

  /** Seals and stores a directory from entries. */
  treeFromEntries(entries: readonly TreeEntry[]): ObjectId {
    const sealed = sealTree(entries);
    this.putObjects(sealed.objects);
    return sealed.id;
  }

  /**
   * A copy of the tree with the entry at path replaced (null: removed), creating missing
   * directories on the way. Only the directories on the path are rebuilt, as a scanner would.
   */
  async edit(root: ObjectId, path: string, literal: EntryLiteral | null): Promise<ObjectId> {
    const [name, ...rest] = path.split("/");
    const entries = await readTreeEntries(root, this.quietLoad);
    const others = entries.filter((e) => e.name !== name);
    const current = entries.find((e) => e.name === name);
    let replacement: TreeEntry | null;
    if (rest.length === 0) {
      replacement = literal === null ? null : this.entry(name!, literal);
    } else {
      const childRoot = current?.kind === "dir" ? current.id! : this.tree({});
      const base = current?.kind === "dir" ? current : this.entry(name!, {});
      replacement = { ...base, id: await this.edit(childRoot, rest.join("/"), literal) };
    }
    return this.treeFromEntries(replacement ? [...others, replacement] : others);
  }

  async entryAt(root: ObjectId, path: string): Promise<TreeEntry | null> {
    let current: ObjectId = root;
    const parts = path.split("/");
    for (let i = 0; i < parts.length; i++) {
      const entry = (await readTreeEntries(current, this.quietLoad)).find((e) => e.name === parts[i]);
      if (entry === undefined) return null;
      if (i === parts.length - 1) return entry;
      if (entry.kind !== "dir") return null;
      current = entry.id!;
    }
    return null;
  }

  /** A file's content, from its entry (or its file node's id). */
  async fileText(file: ObjectId | TreeEntry): Promise<string> {
    const parts: Uint8Array[] = [];
    const chunks = file instanceof Uint8Array ? await readFileChunks(file, this.quietLoad) : await readEntryChunks(file, this.quietLoad);
    for (const chunk of chunks) {
      const bytes = this.chunk(chunk.id);
      if (bytes === undefined) throw new Error(`no chunk ${idToHex(chunk.id)}`);
      parts.push(bytes);
    }
    return textDecoder.decode(Buffer.concat(parts));
  }

  /** The tree read back as a literal (contents only; use entryAt for modes and mtimes). */
  async describe(root: ObjectId): Promise<{ [name: string]: Described }> {
    const out: { [name: string]: Described } = {};
    for (const entry of await readTreeEntries(root, this.quietLoad)) {
      if (entry.kind === "dir") out[entry.name] = await this.describe(entry.id!);
      else if (entry.kind === "symlink") out[entry.name] = { symlink: entry.target! };
      else out[entry.name] = await this.fileText(entry);
    }
    return out;
  }

  /** Ids reachable from root that are not stored (objects and chunks): empty for a complete tree. */
  async missingBelow(root: ObjectId): Promise<string[]> {
    const missing = new Set<string>();
    const visit = async (id: ObjectId, chunk: boolean): Promise<void> => {
      const key = idToHex(id);
      if (chunk) {
        if (!this.chunkBytes.has(key)) missing.add(key);
        return;
      }
      if (!this.objects.has(key)) {
        missing.add(key);
        return;
      }
      const object = this.peek(id);
      if (object.kind === "tree" && "entries" in object) for (const e of object.entries) if (e.id) await visit(e.id, false);
      if ((object.kind === "tree" || object.kind === "file") && "pages" in object) for (const p of object.pages) await visit(p.id, false);
      if (object.kind === "file" && "chunks" in object) for (const c of object.chunks) await visit(c.id, true);
    };
    await visit(root, false);
    return [...missing].sort();
  }
}
