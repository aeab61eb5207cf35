// dsync diff: compare two sides, each a local directory or a folder on a node
// (URL/FOLDER, optionally @VERSION), by Merkle descent: only subtrees whose ids differ are
// loaded, and a remote side is read through a BatchedRemoteLoader, so each level of the
// descent costs one request per remote side, however many branches it explores.
//
// Requests, for a remote side:
//   URL/FOLDER            1  GET /v1/folders/:folder          the head and the head's root
//                         L  POST /v1/objects/download        one per descent level that loads
//                                                             something of this side
//   URL/FOLDER@VERSION    1  GET /v1/folders/:folder/versions/:version   (names the root)
//                         L  as above
// A node whose folder record does not name the head's root (`root`, added to the API with
// replication) costs one request more for a head: its version object, through the first
// batched download. A directory side makes no request.
//
// L is at most the depth reached: the number of object levels from the root tree down to the
// deepest object loaded (directory pages, subdirectories, file nodes, file pages). When the
// sides differ along one path (one changed file), every level of that path is one round:
// diffTrees explores differing subtrees concurrently and unsharedLeaves loads one page level
// per round, then missingChunks loads the changed files' nodes level by level through the same
// loaders. Several changed paths at the same depth share those rounds. So, for one changed file:
//   two remote sides (heads or pinned versions)   2·depth + 2   (2·depth + 4 for two heads on
//                                                                nodes without `root`)
//   a directory and a remote side                  depth + 1
//
// Changes at different depths can cost more rounds than the depth (a branch that finishes
// early does not wait for the others), and a directory present on one side only is listed page
// by page (readTreeEntries), one round per page.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { diffTrees, missingChunks, type DiffEntry } from "../core/diff.ts";
import { idFromHex, idToHex, isIdHex, type ObjectId } from "../core/id.ts";
import { validateFolderName } from "../core/names.ts";
import { childRefs, decodeObject, type StructuredObject } from "../core/objects.ts";
import { graftEntries } from "../core/graft.ts";
import { scanDirectory, type NotReadPath, type SkipCause } from "../fs/scanner.ts";
import { MemoryObjectStore } from "../store/memory-store.ts";
import { BatchedRemoteLoader } from "./batched-remote-loader.ts";
import { openLocalCaches, STATE_DIR_NAME, type LocalCaches } from "./local-state.ts";
import { silentProgress, type Progress } from "./progress.ts";
import { scanIntoCache } from "./scan-local.ts";
import { RemoteError, RemoteNode } from "./remote.ts";
import { clientToken, UsageError } from "./sync-target.ts";
import { parseFingerprint } from "../wire/tls-fingerprint.ts";
import { TlsTrust } from "../wire/tls-trust.ts";

/** A remote side may pin its node's certificate after `#` (two nodes, two certificates: one --tls-fingerprint cannot name both). */
export type Side = { kind: "local"; dir: string } | { kind: "remote"; url: string; folder: string; version?: string; fingerprint?: string };

export function parseSide(spec: string): Side {
  if (/^https?:\/\//.test(spec)) {
    const url = new URL(spec);
    const parts = url.pathname.split("/").filter((p) => p !== "");
    const last = parts.pop();
    if (!last) throw new UsageError(`${spec}: name a folder, as in http://127.0.0.1:7700/FOLDER[@VERSION]`);
    const at = last.indexOf("@");
    const folder = decodeURIComponent(at === -1 ? last : last.slice(0, at));
    const version = at === -1 ? undefined : last.slice(at + 1);
    const problem = validateFolderName(folder);
    if (problem) throw new UsageError(`${spec}: ${problem}`);
    if (version !== undefined && !/^[0-9a-f]{4,64}$/.test(version)) throw new UsageError(`${spec}: a version is 4 to 64 hex digits`);
    const base = `${url.protocol}//${url.host}${parts.length ? "/" + parts.join("/") : ""}`;
    if (!url.hash) return { kind: "remote", url: base, folder, version };
    const fingerprint = parseFingerprint(decodeURIComponent(url.hash.slice(1)));
    if (fingerprint === null) throw new UsageError(`${spec}: after # comes the node's certificate fingerprint, sha256: and 64 hex digits`);
    if (url.protocol !== "https:") throw new UsageError(`${spec}: a fingerprint pins a TLS certificate; use the node's https:// URL`);
    return { kind: "remote", url: base, folder, version, fingerprint };
  }
  if (!existsSync(spec) || !statSync(spec).isDirectory()) throw new UsageError(`${spec} is neither a directory nor a URL/FOLDER`);
  return { kind: "local", dir: spec };
}

/** What one side lacks relative to the other, to become equal to it. */
export interface Lacks {
  /** nodes + chunks. */
  objects: number;
  /** nodeBytes + chunkBytes. */
  bytes: number;
  /** Tree and file nodes (pages included) of the other side's differing paths that this side does not have there. */
  nodes: number;
  /** Their encoded size. */
  nodeBytes: number;
  /** Chunks of the other side's added or changed files that none of this side's removed or changed files hold (missingChunks). */
  chunks: number;
  chunkBytes: number;
}

export interface SideReport {
  spec: string;
  /** The root compared: for a directory, its scan with every path not read taken from the other side. */
  root: string;
  /**
   * A directory's paths not read (ignored, unreadable, unsupported): not compared, as a push
   * keeps their synced entries (never a difference). Counts by cause, and the first paths.
   */
  notRead: { ignored: number; unreadable: number; unsupported: number; paths: NotReadPath[] };
  /** Requests made to this side's node (0 for a directory). */
  requests: number;
  lacks: Lacks;
}

export interface CompareReport {
  identical: boolean;
  a: SideReport;
  b: SideReport;
  added: string[];
  removed: string[];
  modified: string[];
  typeChanged: string[];
  /** Requests made to nodes, both sides together. */
  requests: number;
  /** Objects the descent loaded (each side's, and the file nodes behind the chunk counts). */
  objectsLoaded: number;
  /** Object levels from the root trees down to the deepest object loaded (0 when the roots are equal). */
  depth: number;
}

/** One side, resolved to a root and a way to read its objects. */
export interface ResolvedSide {
  root: ObjectId;
  /** A directory's paths not read by its scan. */
  notRead?: NotReadPath[];
  /** The object's bytes, or undefined when this side does not hold it. */
  get(id: ObjectId): Promise<Uint8Array | undefined>;
  remote?: RemoteNode;
}

export const SIDE_A = 1;
export const SIDE_B = 2;

/**
 * The diff's loader over two sides. Each id is asked of the side whose tree named it (a root,
 * or a child of an object of that side), so each remote sees only its own ids; an object one
 * side lacks after all is asked of the other. It also records, for each object loaded, which
 * sides' trees reference it and how deep, for the depth and the "lacks" counts.
 */
export class TwoSidedLoader {
  objectsLoaded = 0;
  depth = 0;
  /**
   * Hex id → the sides (bit mask, low 2 bits) whose roots or loaded objects reference it, and
   * the shallowest depth it was seen at (the bits above), packed in one number: every entry of
   * every leaf loaded passes through here, and a number costs less than an object per entry.
   */
  private readonly known = new Map<string, number>();
  /** Hex id → encoded size, for every object loaded. */
  private readonly loaded = new Map<string, number>();

  constructor(private readonly sides: readonly [ResolvedSide, ResolvedSide]) {}

  addRoot(id: ObjectId, side: number): void {
    this.note(idToHex(id), side | (1 << 2));
  }

  private note(key: string, packed: number): void {
    const current = this.known.get(key);
    if (current === undefined) this.known.set(key, packed);
    else {
      const merged = ((current | packed) & 3) | (Math.min(current >>> 2, packed >>> 2) << 2);
      if (merged !== current) this.known.set(key, merged);
    }
  }

  readonly load = async (id: ObjectId): Promise<StructuredObject> => {
    this.objectsLoaded++;
    const key = idToHex(id);
    const packed = this.known.get(key) ?? (SIDE_A | SIDE_B | (1 << 2));
    const sides = packed & 3;
    const depth = packed >>> 2;
    // The sides whose trees name the id first; among them a directory before a node.
    const rank = (index: number) => (sides & (index === 0 ? SIDE_A : SIDE_B) ? 0 : 2) + (this.sides[index]!.remote ? 1 : 0);
    const order = rank(0) <= rank(1) ? [0, 1] : [1, 0];
    let bytes: Uint8Array | undefined;
    for (const index of order) {
      bytes = await this.sides[index]!.get(id);
      if (bytes !== undefined) break;
    }
    if (bytes === undefined) throw new Error(`object ${key} was found on neither side`);
    const object = decodeObject(bytes);
    if (!this.loaded.has(key)) {
      this.loaded.set(key, bytes.length);
      this.depth = Math.max(this.depth, depth);
    }
    const childPacked = sides | ((depth + 1) << 2);
    for (const child of childRefs(object).objects) this.note(idToHex(child), childPacked);
    return object;
  };

  /** Count and bytes of the loaded objects referenced by one side only. */
  onlyOn(side: number): { count: number; bytes: number } {
    let count = 0;
    let bytes = 0;
    for (const [key, size] of this.loaded) {
      if (((this.known.get(key) ?? 0) & 3) !== side) continue;
      count++;
      bytes += size;
    }
    return { count, bytes };
  }
}

async function resolveLocal(dir: string, closers: (() => Promise<void>)[], progress: Progress): Promise<ResolvedSide> {
  if (existsSync(join(dir, STATE_DIR_NAME, "state.json"))) {
    // A synced directory: its stat cache spares reading unchanged files.
    const caches: LocalCaches = await openLocalCaches(dir);
    closers.push(() => caches.close());
    const scan = await scanIntoCache(dir, caches, progress);
    return { root: scan.rootId, notRead: scan.notRead, get: async (id) => scan.newObjects.get(idToHex(id)) ?? (await caches.objects.get(id)) };
  }
  const store = new MemoryObjectStore();
  let lastBytes = 0;
  progress.phase("scanning", 0);
  const scan = await scanDirectory(dir, {
    excludeTopLevel: [STATE_DIR_NAME],
    sink: { object: (sealed) => store.put(sealed.id, sealed.bytes) },
    onProgress: ({ bytesRead, filesDone }) => {
      progress.advance(bytesRead - lastBytes, filesDone);
      lastBytes = bytesRead;
    },
  });
  return { root: scan.rootId, notRead: scan.notRead, get: (id) => store.get(id) };
}

/** How many paths not read to list in a report (all are counted). */
export const NOT_READ_LISTED_MAX = 100;

function notReadReport(notRead: readonly NotReadPath[] = []): SideReport["notRead"] {
  const count = (cause: SkipCause) => notRead.filter((p) => p.cause === cause).length;
  return { ignored: count("ignored"), unreadable: count("unreadable"), unsupported: count("unsupported"), paths: notRead.slice(0, NOT_READ_LISTED_MAX) };
}

/**
 * A directory side as a push would send it: at every path its scan did not read, the entry the
 * other side has there (what a push keeps, the synced entry, is what the other side holds when
 * they are in sync), so an ignored or unreadable path is never a difference. Both sides are
 * grafted from the other's scanned tree, not from each other's grafted one.
 */
async function graftNotRead(sides: [ResolvedSide, ResolvedSide]): Promise<[ResolvedSide, ResolvedSide]> {
  const raw = sides;
  const out = [...sides] as [ResolvedSide, ResolvedSide];
  for (const [index, side] of raw.entries()) {
    if (!side.notRead || side.notRead.length === 0) continue;
    const other = raw[1 - index]!;
    const built = new Map<string, Uint8Array>();
    const get = async (id: ObjectId) => built.get(idToHex(id)) ?? (await side.get(id));
    const load = async (id: ObjectId) => {
      const bytes = (await get(id)) ?? (await other.get(id));
      if (bytes === undefined) throw new Error(`object ${idToHex(id)} was found on neither side`);
      return decodeObject(bytes);
    };
    const graft = await graftEntries(side.root, other.root, side.notRead.map((p) => p.path), load);
    for (const sealed of graft.objects) built.set(idToHex(sealed.id), sealed.bytes);
    out[index] = { ...side, root: graft.root, get };
  }
  return out;
}

async function resolveRemote(side: Extract<Side, { kind: "remote" }>, stale: boolean): Promise<ResolvedSide> {
  const remote = new RemoteNode(side.url, clientToken(), { ...(side.fingerprint ? { trust: new TlsTrust(side.url, { fingerprint: side.fingerprint }) } : {}), stale });
  const loader = new BatchedRemoteLoader(remote, { label: `the node at ${side.url}` });
  let root: ObjectId;
  if (side.version !== undefined) {
    // One request: the version record names its root, and the node checks it is the folder's.
    root = idFromHex((await remote.getVersion(side.folder, side.version)).root);
  } else {
    // One request: the folder record names the head and its root.
    const folder = await remote.getFolder(side.folder);
    if (!folder) throw new RemoteError("not-found", `${side.url} has no folder named ${JSON.stringify(side.folder)}`);
    if (!folder.head) throw new RemoteError("not-found", `folder ${side.folder} on ${side.url} has no versions yet`);
    if (isIdHex(folder.root)) return { root: idFromHex(folder.root), get: (id) => loader.fetch(id), remote };
    // A node that does not send the root: the head's version object names it (one request more,
    // verified against the head id like every other object).
    const bytes = await loader.fetch(idFromHex(folder.head));
    if (!bytes) throw new RemoteError("rejected", `the node at ${side.url} lacks the version object of the head of ${side.folder}`);
    const version = decodeObject(bytes);
    if (version.kind !== "version") throw new RemoteError("rejected", `the head of ${side.folder} on ${side.url} is a ${version.kind}, not a version`);
    root = version.root;
  }
  return { root, get: (id) => loader.fetch(id), remote };
}

export async function compare(specA: string, specB: string, options: { progress?: Progress; stale?: boolean } = {}): Promise<CompareReport> {
  const specs = [parseSide(specA), parseSide(specB)];
  const closers: (() => Promise<void>)[] = [];
  const progress = options.progress ?? silentProgress;
  const resolveSide = (side: Side) => (side.kind === "local" ? resolveLocal(side.dir, closers, progress) : resolveRemote(side, options.stale === true));
  try {
    // Both sides at once, but one after the other when a bar is drawn: one scan per bar.
    const settled: PromiseSettledResult<ResolvedSide>[] = [];
    if (progress.shown) for (const side of specs) settled.push(...(await Promise.allSettled([resolveSide(side)])));
    else settled.push(...(await Promise.allSettled(specs.map(resolveSide))));
    progress.done();
    for (const result of settled) if (result.status === "rejected") throw result.reason;
    const [a, b] = await graftNotRead(settled.map((r) => (r as PromiseFulfilledResult<ResolvedSide>).value) as [ResolvedSide, ResolvedSide]);

    const loader = new TwoSidedLoader([a, b]);
    loader.addRoot(a.root, SIDE_A);
    loader.addRoot(b.root, SIDE_B);
    const diff = await diffTrees(a.root, b.root, loader.load);
    // The chunks each side lacks: the changed files' nodes, loaded level by level through the
    // same batched loaders, after the descent (the diff is passed in, not recomputed).
    const chunks = await missingChunks(a.root, b.root, loader.load, diff);

    const lacks = (otherSide: number, missing: { chunks: unknown[]; totalBytes: number }): Lacks => {
      const nodes = loader.onlyOn(otherSide);
      return {
        objects: nodes.count + missing.chunks.length,
        bytes: nodes.bytes + missing.totalBytes,
        nodes: nodes.count,
        nodeBytes: nodes.bytes,
        chunks: missing.chunks.length,
        chunkBytes: missing.totalBytes,
      };
    };
    const requestsOf = (side: ResolvedSide) => side.remote?.counters.requests ?? 0;
    const paths = (list: DiffEntry[]) => list.map((d) => d.path);
    return {
      identical: diff.added.length + diff.removed.length + diff.modified.length + diff.typeChanged.length === 0,
      a: { spec: specA, root: idToHex(a.root), notRead: notReadReport(a.notRead), requests: requestsOf(a), lacks: lacks(SIDE_B, chunks.missingInA) },
      b: { spec: specB, root: idToHex(b.root), notRead: notReadReport(b.notRead), requests: requestsOf(b), lacks: lacks(SIDE_A, chunks.missingInB) },
      added: paths(diff.added),
      removed: paths(diff.removed),
      modified: paths(diff.modified),
      typeChanged: paths(diff.typeChanged),
      requests: requestsOf(a) + requestsOf(b),
      objectsLoaded: loader.objectsLoaded,
      depth: loader.depth,
    };
  } finally {
    for (const close of closers) await close();
  }
}
