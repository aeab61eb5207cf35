// The structured objects and their canonical encoding.
//
// Every structured object is a msgpack array that starts with a kind tag and a format number:
//   ["file",    1, level, sizeBytes, entries]    a file's chunk list, or one page of it
//   ["tree",    2, level, entries]               a directory's entries, or one page of them
//                                                (format 1, read still, has no "c" entries)
//   ["version", 1, root, parents, author, hlcWallMs, hlcCounter, message, versionVector, chunking]
// A chunk is not structured: it is raw bytes, and its id is the plain BLAKE3 of those bytes.
// Large lists are split into content-defined pages (see pages.ts): a node at level 0 holds
// entries, a node at level n > 0 holds references to nodes at level n-1 of the same kind.
// docs/format.md is the precise description; golden fixtures in the tests pin the bytes.
import { blake3 } from "./blake3.ts";
import { DecodeError, decodeMsgpack, encodeCanonical } from "./encoding.ts";
import { isObjectIdBytes, type ObjectId } from "./id.ts";
import { LIMITS } from "./limits.ts";
import { validateName, validateSymlinkTarget } from "./names.ts";

/** The format number of file nodes and versions. */
export const FORMAT_VERSION = 1;
/**
 * Trees have their own: format 2 added the "c" entry (a file whose content is exactly one
 * chunk, named by the chunk's id, with no file node). Trees are written in format 2; format 1
 * trees (no "c" entries) are still read, so a node's older versions stay valid as they are.
 */
export const TREE_FORMAT_VERSION = 2;
export const TREE_FORMATS_READ: readonly number[] = [1, 2];

export type EntryKind = "file" | "dir" | "symlink";
const KIND_CODES: Record<EntryKind, string> = { file: "f", dir: "d", symlink: "l" };
const KIND_BY_CODE: Record<string, EntryKind> = { f: "file", d: "dir", l: "symlink" };
/** The code of a file entry whose id names its one chunk (tree format 2). */
const CHUNK_FILE_CODE = "c";

/** One chunk of a file, in order. */
export interface ChunkRef {
  id: ObjectId;
  lengthBytes: number;
}

/** A reference from an inner page to the page below, with the bytes (files) it covers. */
export interface FilePageRef {
  id: ObjectId;
  sizeBytes: number;
}

/** Level 0 lists chunks; level n > 0 lists file nodes of level n-1 (pages of one long list). */
export type FileNode = FileLeaf | FileInner;
export interface FileLeaf { kind: "file"; level: 0; sizeBytes: number; chunks: ChunkRef[] }
export interface FileInner { kind: "file"; level: number; sizeBytes: number; pages: FilePageRef[] }

export interface TreeEntry {
  name: string;
  kind: EntryKind;
  /** Permission bits (0o7777 at most). */
  mode: number;
  mtimeMs: number;
  /** File size; 0 for directories and symlinks. */
  sizeBytes: number;
  /**
   * File node id (file) or tree node id (dir); null for symlinks. With `idNamesChunk`, a
   * file's id is that of its one chunk (the file is exactly that chunk; no file node).
   */
  id: ObjectId | null;
  /** A file whose id names its single chunk (tree code "c", format 2) rather than its file node. */
  idNamesChunk?: boolean;
  /** Link target, for symlinks only. */
  target: string | null;
}

export interface TreePageRef {
  id: ObjectId;
  /** Name of the first entry below this page, so lookups can descend by name. */
  firstName: string;
}

/** Level 0 lists entries; level n > 0 lists tree nodes of level n-1 (pages of one long list). */
export type TreeNode = TreeLeaf | TreeInner;
export interface TreeLeaf { kind: "tree"; level: 0; entries: TreeEntry[] }
export interface TreeInner { kind: "tree"; level: number; pages: TreePageRef[] }

export function isFileLeaf(node: FileNode): node is FileLeaf {
  return "chunks" in node;
}
export function isTreeLeaf(node: TreeNode): node is TreeLeaf {
  return "entries" in node;
}

export interface VersionVectorEntry {
  node: string;
  counter: number;
}

export interface Version {
  kind: "version";
  root: ObjectId;
  parents: ObjectId[];
  /** The node that created this version. */
  author: string;
  /** Hybrid logical clock: wall time in ms and a counter that orders events within one ms. */
  hlcWallMs: number;
  hlcCounter: number;
  message: string;
  /** Per-node counters, sorted by node; empty until replication fills it. */
  versionVector: VersionVectorEntry[];
  /** How files were cut, e.g. "fastcdc2020:16384:65536:262144". */
  chunking: string;
}

export type StructuredObject = FileNode | TreeNode | Version;

// ---------- encoding ----------

export function encodeObject(object: StructuredObject): Uint8Array {
  switch (object.kind) {
    case "file":
      return encodeCanonical([
        "file",
        FORMAT_VERSION,
        object.level,
        object.sizeBytes,
        isFileLeaf(object)
          ? object.chunks.map((c) => [c.id, c.lengthBytes])
          : object.pages.map((p) => [p.id, p.sizeBytes]),
      ]);
    case "tree":
      return encodeCanonical([
        "tree",
        TREE_FORMAT_VERSION,
        object.level,
        isTreeLeaf(object)
          ? object.entries.map((e) => [
              e.name,
              e.idNamesChunk === true && e.kind === "file" ? CHUNK_FILE_CODE : KIND_CODES[e.kind],
              e.mode,
              e.mtimeMs,
              e.sizeBytes,
              e.id,
              e.target,
            ])
          : object.pages.map((p) => [p.id, p.firstName]),
      ]);
    case "version":
      return encodeCanonical([
        "version",
        FORMAT_VERSION,
        object.root,
        object.parents,
        object.author,
        object.hlcWallMs,
        object.hlcCounter,
        object.message,
        object.versionVector.map((v) => [v.node, v.counter]),
        object.chunking,
      ]);
  }
}

/** Encodes an object and names it: the id is the BLAKE3 of the encoded bytes. */
export function sealObject(object: StructuredObject): { id: ObjectId; bytes: Uint8Array } {
  const bytes = encodeObject(object);
  return { id: blake3(bytes), bytes };
}

// ---------- decoding, with validation ----------

function fail(message: string): never {
  throw new DecodeError(message);
}

function expectArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) fail(`${what}: expected an array`);
  return value;
}

function expectInt(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(`${what}: expected an integer in [${min}, ${max}]`);
  }
  return value;
}

function expectId(value: unknown, what: string): ObjectId {
  if (!isObjectIdBytes(value)) fail(`${what}: expected a 32-byte id`);
  return new Uint8Array(value) as ObjectId;
}

function expectString(value: unknown, what: string, maxBytes: number): string {
  if (typeof value !== "string") fail(`${what}: expected a string`);
  if (Buffer.byteLength(value) > maxBytes) fail(`${what}: longer than ${maxBytes} bytes`);
  return value;
}

function expectLevel(value: unknown): number {
  return expectInt(value, "level", 0, 32);
}

/** Peeks at the kind tag without validating the rest; undefined for anything that is not a structured object. */
export function peekKind(bytes: Uint8Array): StructuredObject["kind"] | undefined {
  // fixarray header 0x90-0x9f, then a fixstr tag
  if (bytes.length < 6 || (bytes[0]! & 0xf0) !== 0x90) return undefined;
  const tagLength = bytes[1]! - 0xa0;
  if (tagLength < 4 || tagLength > 7) return undefined;
  const tag = new TextDecoder().decode(bytes.subarray(2, 2 + tagLength));
  return tag === "file" || tag === "tree" || tag === "version" ? tag : undefined;
}

/**
 * Decodes and validates a structured object. Anything malformed — wrong types, unsorted or
 * duplicate names, names that could escape a directory, sizes that do not add up — is a
 * DecodeError, so no caller ever sees an object that breaks the format's rules.
 */
export function decodeObject(bytes: Uint8Array): StructuredObject {
  if (bytes.length > LIMITS.structuredObjectBytesMax) fail(`object larger than ${LIMITS.structuredObjectBytesMax} bytes`);
  const top = expectArray(decodeMsgpack(bytes), "object");
  const [tag, format] = top;
  if (tag !== "file" && tag !== "tree" && tag !== "version") fail(`unknown object kind ${JSON.stringify(tag)}`);
  const formatKnown = tag === "tree" ? TREE_FORMATS_READ.includes(format as number) : format === FORMAT_VERSION;
  if (!formatKnown) fail(`unsupported ${tag} format ${JSON.stringify(format)}`);
  switch (tag) {
    case "file":
      return decodeFile(top);
    case "tree":
      return decodeTree(top, format as number);
    case "version":
      return decodeVersion(top);
  }
}

function decodeFile(top: unknown[]): FileNode {
  if (top.length !== 5) fail("file: expected 5 fields");
  const level = expectLevel(top[2]);
  const sizeBytes = expectInt(top[3], "file size", 0);
  const raw = expectArray(top[4], "file entries");
  if (raw.length > LIMITS.pageEntriesMax) fail("file: too many entries in one node");
  let total = 0;
  const refs = raw.map((item, index) => {
    const pair = expectArray(item, `file entry ${index}`);
    if (pair.length !== 2) fail(`file entry ${index}: expected [id, size]`);
    const id = expectId(pair[0], `file entry ${index} id`);
    const size = expectInt(pair[1], `file entry ${index} size`, level === 0 ? 1 : 0);
    total += size;
    return { id, size };
  });
  if (total !== sizeBytes) fail(`file: entries add up to ${total} bytes, header says ${sizeBytes}`);
  if (level > 0 && refs.length === 0) fail("file: an inner node needs at least one page");
  if (level === 0) return { kind: "file", level: 0, sizeBytes, chunks: refs.map((r) => ({ id: r.id, lengthBytes: r.size })) };
  return { kind: "file", level, sizeBytes, pages: refs.map((r) => ({ id: r.id, sizeBytes: r.size })) };
}

/** Byte-wise comparison of names as UTF-8, the order tree entries are kept in. */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 code units below the surrogates (U+D800) sort like UTF-8 bytes, so the common case
  // needs no encoding; anything else is compared as UTF-8.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x >= 0xd800 || y >= 0xd800) return Buffer.compare(Buffer.from(a), Buffer.from(b));
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}

function decodeTree(top: unknown[], format: number): TreeNode {
  if (top.length !== 4) fail("tree: expected 4 fields");
  const level = expectLevel(top[2]);
  const raw = expectArray(top[3], "tree entries");
  if (raw.length > LIMITS.pageEntriesMax) fail("tree: too many entries in one node");
  if (level > 0) {
    if (raw.length === 0) fail("tree: an inner node needs at least one page");
    const pages = raw.map((item, index) => {
      const pair = expectArray(item, `tree page ${index}`);
      if (pair.length !== 2) fail(`tree page ${index}: expected [id, firstName]`);
      const firstName = expectString(pair[1], `tree page ${index} name`, LIMITS.nameLengthBytesMax);
      const problem = validateName(firstName);
      if (problem) fail(`tree page ${index}: ${problem}`);
      return { id: expectId(pair[0], `tree page ${index} id`), firstName };
    });
    checkSorted(pages.map((p) => p.firstName));
    return { kind: "tree", level, pages };
  }
  const entries = raw.map((item, index): TreeEntry => {
    const fields = expectArray(item, `tree entry ${index}`);
    if (fields.length !== 7) fail(`tree entry ${index}: expected 7 fields`);
    const name = expectString(fields[0], `tree entry ${index} name`, LIMITS.nameLengthBytesMax * 4);
    const problem = validateName(name);
    if (problem) fail(`tree entry ${JSON.stringify(name)}: ${problem}`);
    const namesChunk = fields[1] === CHUNK_FILE_CODE && format >= 2;
    const kind = namesChunk ? "file" : KIND_BY_CODE[fields[1] as string];
    if (!kind) fail(`tree entry ${JSON.stringify(name)}: unknown kind ${JSON.stringify(fields[1])}${fields[1] === CHUNK_FILE_CODE ? ` in a format-${format} tree` : ""}`);
    const mode = expectInt(fields[2], `tree entry ${JSON.stringify(name)} mode`, 0, 0o7777);
    const mtimeMs = expectInt(fields[3], `tree entry ${JSON.stringify(name)} mtime`, Number.MIN_SAFE_INTEGER);
    const sizeBytes = expectInt(fields[4], `tree entry ${JSON.stringify(name)} size`, 0);
    let id: ObjectId | null = null;
    let target: string | null = null;
    if (kind === "symlink") {
      if (fields[5] !== null) fail(`symlink ${JSON.stringify(name)}: must not carry an id`);
      target = expectString(fields[6], `symlink ${JSON.stringify(name)} target`, LIMITS.symlinkTargetLengthBytesMax);
      const targetProblem = validateSymlinkTarget(target);
      if (targetProblem) fail(`symlink ${JSON.stringify(name)}: ${targetProblem}`);
      if (sizeBytes !== 0) fail(`symlink ${JSON.stringify(name)}: size must be 0`);
    } else {
      id = expectId(fields[5], `tree entry ${JSON.stringify(name)} id`);
      if (fields[6] !== null) fail(`tree entry ${JSON.stringify(name)}: only symlinks have a target`);
      if (kind === "dir" && sizeBytes !== 0) fail(`directory ${JSON.stringify(name)}: size must be 0`);
      // A chunk holds at least one byte (an empty file keeps its shared, empty file node).
      if (namesChunk && (sizeBytes < 1 || sizeBytes > LIMITS.objectBytesMax)) fail(`file ${JSON.stringify(name)}: a file named by its chunk holds 1 to ${LIMITS.objectBytesMax} bytes, this says ${sizeBytes}`);
    }
    return namesChunk ? { name, kind, mode, mtimeMs, sizeBytes, id, target, idNamesChunk: true } : { name, kind, mode, mtimeMs, sizeBytes, id, target };
  });
  checkSorted(entries.map((e) => e.name));
  return { kind: "tree", level: 0, entries };
}

function checkSorted(names: string[]): void {
  for (let i = 1; i < names.length; i++) {
    if (compareNames(names[i - 1]!, names[i]!) >= 0) {
      fail(`tree: names must be unique and sorted (${JSON.stringify(names[i - 1])} before ${JSON.stringify(names[i])})`);
    }
  }
}

function decodeVersion(top: unknown[]): Version {
  if (top.length !== 10) fail("version: expected 10 fields");
  const root = expectId(top[2], "version root");
  const parentsRaw = expectArray(top[3], "version parents");
  if (parentsRaw.length > LIMITS.versionParentsMax) fail("version: too many parents");
  const parents = parentsRaw.map((p, i) => expectId(p, `version parent ${i}`));
  const author = expectString(top[4], "version author", 128);
  const hlcWallMs = expectInt(top[5], "version hlc wall time", 0);
  const hlcCounter = expectInt(top[6], "version hlc counter", 0, 0xffffffff);
  const message = expectString(top[7], "version message", LIMITS.messageLengthBytesMax);
  const vector = expectArray(top[8], "version vector").map((item, i) => {
    const pair = expectArray(item, `version vector entry ${i}`);
    if (pair.length !== 2) fail(`version vector entry ${i}: expected [node, counter]`);
    return { node: expectString(pair[0], `version vector node ${i}`, 128), counter: expectInt(pair[1], `version vector counter ${i}`, 0) };
  });
  for (let i = 1; i < vector.length; i++) {
    if (compareNames(vector[i - 1]!.node, vector[i]!.node) >= 0) fail("version vector: nodes must be unique and sorted");
  }
  const chunking = expectString(top[9], "version chunking", 256);
  return { kind: "version", root, parents, author, hlcWallMs, hlcCounter, message, versionVector: vector, chunking };
}

/**
 * Whether bytes decode as a structured object. A file's one chunk whose bytes do is kept behind
 * a file node, never named by a "c" entry (writers ask this, and the structure check refuses such
 * an entry): so no id is both a chunk a tree names directly and a node a walk descends into, and
 * walks that key what they passed by id alone (gc's mark, descents) never take one for the other.
 */
export function decodesAsObject(bytes: Uint8Array): boolean {
  return decodeIfObject(bytes) !== undefined;
}

/** The structured object the bytes decode as, or undefined when they do not (decodesAsObject). */
export function decodeIfObject(bytes: Uint8Array): StructuredObject | undefined {
  const first = bytes[0];
  // Every object is a msgpack array: fixarray, array16 or array32.
  if (first === undefined || !((first & 0xf0) === 0x90 || first === 0xdc || first === 0xdd)) return undefined;
  if (bytes.length > LIMITS.structuredObjectBytesMax) return undefined;
  try {
    return decodeObject(bytes);
  } catch {
    return undefined;
  }
}

/**
 * The ids an object names directly, split by what they name: structured objects (decode them
 * to go further down) and chunks (raw bytes, the leaves of the graph). A version's parents are
 * history, not content, so they are not children: a version's closure is its root tree.
 */
export function childRefs(object: StructuredObject): { objects: ObjectId[]; chunks: ObjectId[] } {
  switch (object.kind) {
    case "file":
      return isFileLeaf(object) ? { objects: [], chunks: object.chunks.map((c) => c.id) } : { objects: object.pages.map((p) => p.id), chunks: [] };
    case "tree": {
      if (!isTreeLeaf(object)) return { objects: object.pages.map((p) => p.id), chunks: [] };
      const objects: ObjectId[] = [];
      const chunks: ObjectId[] = [];
      for (const e of object.entries) if (e.id !== null) (e.idNamesChunk ? chunks : objects).push(e.id);
      return { objects, chunks };
    }
    case "version":
      return { objects: [object.root], chunks: [] };
  }
}
