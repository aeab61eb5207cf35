// The rules a folder's tree keeps across objects, which no single object can show.
//
// decodeObject checks one object alone: its fields, its names sorted within that one node, its
// sizes adding up within it. A tree is more than its nodes: a directory paged into many nodes
// is one sorted list only if the pages fit together, and an entry is usable only if it names
// an object of the right kind. This checker walks a tree from its root and enforces:
//   - a page of a level-n node is a node of the same kind at level n-1 (leaves at level 0);
//   - a tree page starts with the name its parent records for it (so it is not empty), and all
//     its names sort before the next page's first name: the entries of a directory, read page
//     after page, are strictly sorted and unique (no name twice, whatever its kinds);
//   - a file page holds the bytes its parent records for it, and a file node the bytes its
//     directory entry records;
//   - a "dir" entry names a tree node, a "file" entry a file node, the root is a tree node;
//   - a file entry that names its one chunk ("c", tree format 2) names a stored chunk of exactly
//     its size whose bytes are not a structured object (see objects.ts decodesAsObject);
//   - directories nest at most LIMITS.treeDepthMax deep;
//   - every object and chunk below the root is stored (what is not is reported, not thrown).
// What an earlier check established about an object is given back as its summary (kind,
// level, first and last name or size, nesting height), so a subtree checked before is matched
// against its summary without being read: the cost is that of what is new. A summary is exactly
// what was checked, so it never vouches for more (a file node never passes as a directory).
import { idToHex, type ObjectId } from "./id.ts";
import { DecodeError } from "./encoding.ts";
import { LIMITS } from "./limits.ts";
import { compareNames, decodeObject, decodesAsObject, isFileLeaf, isTreeLeaf, type StructuredObject } from "./objects.ts";

/** What a successful check established about a tree node and everything below it. */
export interface TreeSummary {
  kind: "tree";
  level: number;
  /** First and last name of the entries below it, in order; null for an empty directory. */
  firstName: string | null;
  lastName: string | null;
  /** How many directories deep the entries below it nest (0: no subdirectory). */
  heightDirs: number;
}

/** What a successful check established about a file node and everything below it. */
export interface FileSummary {
  kind: "file";
  level: number;
  sizeBytes: number;
}

export type NodeSummary = TreeSummary | FileSummary;

export interface CheckedNode {
  id: ObjectId;
  summary: NodeSummary;
}

/** A tree breaks a structural rule: names the object, where it sits, and the rule. */
export class TreeStructureError extends Error {
  override name = "TreeStructureError";
  constructor(readonly objectId: ObjectId, readonly path: string, readonly rule: string) {
    super(`object ${idToHex(objectId)} at ${path === "" ? "the root" : JSON.stringify(path)}: ${rule}`);
  }
}

export interface StructureSources {
  /** Raw bytes of structured objects, in order; undefined for one that is not stored. */
  getMany(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]>;
  /** Which chunks are stored, in order. */
  hasMany(ids: readonly ObjectId[]): Promise<boolean[]>;
  /** What an earlier check established about an object, if one did. */
  known(id: ObjectId): NodeSummary | undefined | Promise<NodeSummary | undefined>;
  /**
   * `known` for many ids at once, one answer per id, in order. When given, each batch of the
   * walk asks it once for the places it takes (at most BATCH_SIZE), instead of `known` per place.
   */
  knownMany?(ids: readonly ObjectId[]): Promise<(NodeSummary | undefined)[]>;
  /**
   * Takes what the check established, in batches of at most RECORD_BATCH_NODES, each node once
   * it and everything below it are checked and stored (children before parents). With it, the
   * check holds only its frontier, never the whole tree, and `checked` stays empty: a node's
   * summary is a fact about its own subtree, true whatever the rest of the tree turns out to
   * be, so what is recorded stays true even when the check later fails elsewhere. What is
   * recorded must be findable through `known` from then on (or is read again when met again).
   */
  record?(nodes: CheckedNode[]): Promise<void> | void;
  /**
   * Lengths of chunks already known to be stored and not to decode as a structured object, one
   * answer per id, in order (undefined: not known, the chunk is read). When given, a "c" entry
   * whose chunk it knows is settled from that length instead of a read of the chunk.
   */
  chunkLengths?(ids: readonly ObjectId[]): Promise<(number | undefined)[]>;
  /** Decodes bytes `getMany` gave (default decodeObject); a caller that decoded them already hands that back. */
  decode?(bytes: Uint8Array): StructuredObject;
}

export interface StructureReport {
  /** Objects and chunks below the root that are not stored; when any is, nothing is `checked`. */
  missing: ObjectId[];
  /** Every object checked for the first time, with its summary (the root among them, unless known); empty when `record` took them. */
  checked: CheckedNode[];
}

type Role =
  | { as: "dir"; depth: number }
  | { as: "tree-page"; level: number; firstName: string; before: string | null; depth: number }
  | { as: "file"; sizeBytes: number }
  | { as: "file-page"; level: number; sizeBytes: number }
  | { as: "chunk-file"; sizeBytes: number }
  /**
   * An object checked for itself, from no parent (an upload's tree or file node at ingest): a
   * tree node as a directory at depth 0, a file node as a file of its own size. Its summary is
   * what any place that names it is matched against later, so nothing is vouched for that a
   * check from a root would not establish.
   */
  | { as: "node" };

/** A place an object is named from: what it must be there, and whose check waits for it. */
interface Pending {
  id: ObjectId;
  role: Role;
  path: string;
  /** The node that names it (null for the root). */
  parent: Open | null;
}

/**
 * A node read in this run that waits for what is below it: its last name (inner tree nodes) and
 * height (tree nodes) come from its children, and it is complete once every child is.
 */
interface Open {
  id: ObjectId;
  summary: NodeSummary;
  /** Children not complete yet: entries or pages, and for a file leaf its chunks. */
  remaining: number;
  /** Chunks of a file leaf not yet found stored. */
  chunksLeft: number;
  /** A tree leaf (heights come from subdirectories, one deeper) rather than an inner node (from pages). */
  leaf: boolean;
  lastPage: ObjectId | null;
  /** Every place that names it, matched against its summary once that is final. */
  namedFrom: Pending[];
}

/** Objects read from the store per request. */
const BATCH_SIZE = 512;
/**
 * Chunks that "c" entries name are read whole (their length and their bytes are checked), in
 * reads of at most this many, claiming at most CHUNK_READ_BYTES_MAX between them: an honest
 * tree's read holds a few MiB. (A claim can lie; a read still holds at most this many chunks.)
 */
const CHUNK_READ_IDS_MAX = 32;
const CHUNK_READ_BYTES_MAX = 4 * 1024 * 1024;
/** Summaries recorded per `record` call (one bounded transaction of marks). */
export const RECORD_BATCH_NODES = 4096;
/** Recent summaries kept in memory for objects named again in the same tree (with `record`; older ones are asked of `known`). */
const RECENT_SUMMARIES_MAX = 65_536;
/**
 * Past this many places waiting on the stack, a batch takes at most STACK_GROWERS_MAX tree nodes
 * (each can name up to LIMITS.pageEntriesMax more), so the frontier stays bounded while the
 * file entries on top drain.
 */
const STACK_ITEMS_SOFT_MAX = 16_384;
const STACK_GROWERS_MAX = 8;

function describe(role: Role): string {
  switch (role.as) {
    case "dir":
      return "a directory";
    case "tree-page":
      return `a level-${role.level} page of a directory`;
    case "file":
      return "a file";
    case "file-page":
      return `a level-${role.level} page of a file`;
    case "chunk-file":
      return "a file named by its chunk";
    case "node":
      return "an object";
  }
}

function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/** Where a page sits: the path of its directory or file, then which page of which node. */
function pagePath(path: string, index: number, parentLevel: number): string {
  return `${path === "" ? "" : `${path} `}(page ${index} of a level-${parentLevel} node)`;
}

/**
 * Whether a summary fits the place an object is named from: undefined when it does, the broken
 * rule when not. Only a final summary is matched (a node is settled once its children are).
 */
function matchSummary(role: Role, summary: NodeSummary): string | undefined {
  if (role.as === "node") return summary.kind === "tree" && summary.heightDirs > LIMITS.treeDepthMax ? `directories nest deeper than ${LIMITS.treeDepthMax}` : undefined;
  // A summary is only ever of a structured object (a node), which such an entry must not name.
  if (role.as === "chunk-file") return `${describe(role)} must name a chunk, this is a ${summary.kind} node`;
  if (role.as === "dir" || role.as === "tree-page") {
    if (summary.kind !== "tree") return `${describe(role)} must be a tree node, this is a ${summary.kind} node`;
    if (role.as === "tree-page") {
      if (summary.level !== role.level) return `${describe(role)} must be at level ${role.level}, this node is at level ${summary.level}`;
      if (summary.firstName !== role.firstName) {
        return `the parent says this page starts with ${JSON.stringify(role.firstName)}, it starts with ${summary.firstName === null ? "nothing (it is empty)" : JSON.stringify(summary.firstName)}`;
      }
    }
    if (role.as === "tree-page" && role.before !== null && summary.lastName !== null && compareNames(summary.lastName, role.before) >= 0) {
      return `names must be unique and sorted across pages: ${JSON.stringify(summary.lastName)} in this page, ${JSON.stringify(role.before)} in the next`;
    }
    if (role.depth + summary.heightDirs > LIMITS.treeDepthMax) return `directories nest deeper than ${LIMITS.treeDepthMax}`;
    return undefined;
  }
  if (summary.kind !== "file") return `${describe(role)} must be a file node, this is a ${summary.kind} node`;
  if (role.as === "file-page" && summary.level !== role.level) return `${describe(role)} must be at level ${role.level}, this node is at level ${summary.level}`;
  if (summary.sizeBytes !== role.sizeBytes) {
    return role.as === "file"
      ? `the directory entry says the file holds ${role.sizeBytes} bytes, its node holds ${summary.sizeBytes}`
      : `the parent says this page holds ${role.sizeBytes} bytes, it holds ${summary.sizeBytes}`;
  }
  return undefined;
}

/**
 * Checks the whole structure of the tree below `rootId` (a directory). Throws
 * TreeStructureError at the first broken rule; reports what is not stored; returns (or hands
 * to `sources.record`) what it checked for the first time.
 *
 * The walk is depth first with a bounded frontier, and a node is settled bottom-up: once its
 * children are complete, its summary is final, it is matched against every place that names it,
 * and its parent is told. Without `record`, memory holds one summary per object read, like any
 * walk; with it, only the open nodes (the path being walked and what waits beside it), the
 * places still to visit and a bounded set of recent summaries, whatever the size of the tree.
 */
export async function checkTreeStructure(rootId: ObjectId, sources: StructureSources, rootAs: "dir" | "node" = "dir"): Promise<StructureReport> {
  const recording = sources.record !== undefined;
  const recent = new Map<string, NodeSummary>();
  const open = new Map<string, Open>();
  const checked: CheckedNode[] = [];
  let toRecord: CheckedNode[] = [];
  const missing: ObjectId[] = [];
  const missingKeys = new Set<string>();
  const stack: Pending[] = [{ id: rootId, role: rootAs === "node" ? { as: "node" } : { as: "dir", depth: 0 }, path: "", parent: null }];
  const chunkQueue: { id: ObjectId; owner: Open }[] = [];
  /** Chunks found stored in this run (bounded like `recent`): a chunk many files share is asked about once. */
  const presentChunks = new Set<string>();
  /** Lengths of the chunks "c" entries named, read and found to be chunks in this run (bounded like `recent`). */
  const chunkLengths = new Map<string, number>();
  let rootComplete = false;

  // Settles complete nodes bottom-up with an explicit queue (a deep tree must not deepen the call stack).
  const settle = (first: Pending, firstSummary: NodeSummary) => {
    const queue: [Pending, NodeSummary][] = [[first, firstSummary]];
    while (queue.length > 0) {
      const [item, summary] = queue.pop()!;
      const problem = matchSummary(item.role, summary);
      if (problem !== undefined) throw new TreeStructureError(item.id, item.path, problem);
      const parent = item.parent;
      if (parent === null) {
        rootComplete = true;
        continue;
      }
      if (parent.summary.kind === "tree" && summary.kind === "tree") {
        const height = parent.leaf ? summary.heightDirs + 1 : summary.heightDirs;
        if (height > parent.summary.heightDirs) parent.summary.heightDirs = height;
        if (!parent.leaf && parent.lastPage === item.id) parent.summary.lastName = summary.lastName;
      }
      parent.remaining -= 1;
      if (parent.remaining === 0) queue.push(...complete(parent));
    }
  };
  // A node whose children are all complete: its summary is final; returns the places waiting on it.
  const complete = (node: Open): [Pending, NodeSummary][] => {
    const key = idToHex(node.id);
    open.delete(key);
    recent.set(key, node.summary);
    const done = { id: node.id, summary: node.summary };
    if (recording) toRecord.push(done);
    else checked.push(done);
    const waiting = node.namedFrom.map((item): [Pending, NodeSummary] => [item, node.summary]);
    node.namedFrom = [];
    return waiting;
  };
  const release = (node: Open) => {
    node.remaining -= 1;
    if (node.remaining === 0) for (const [item, summary] of complete(node)) settle(item, summary);
  };
  // A "c" entry whose chunk is stored and is no structured object: its size must be the chunk's length.
  const settleChunkFile = (item: Pending, lengthBytes: number) => {
    const sizeBytes = (item.role as { sizeBytes: number }).sizeBytes;
    if (lengthBytes !== sizeBytes) throw new TreeStructureError(item.id, item.path, `the directory entry says the file holds ${sizeBytes} bytes, its chunk holds ${lengthBytes}`);
    release(item.parent!);
  };
  const readChunkFiles = async (all: readonly Pending[]) => {
    let items = all;
    if (sources.chunkLengths !== undefined) {
      const lengths = await sources.chunkLengths(all.map((item) => item.id));
      items = all.filter((item, i) => {
        const lengthBytes = lengths[i];
        if (lengthBytes === undefined) return true;
        if (chunkLengths.size >= RECENT_SUMMARIES_MAX) chunkLengths.clear();
        chunkLengths.set(idToHex(item.id), lengthBytes);
        settleChunkFile(item, lengthBytes);
        return false;
      });
    }
    // What is to be read is first asked for a summary: a node an earlier check established is
    // refused by it (a "c" entry must name a chunk), without being read again.
    if (items.length > 0) {
      const summaries = sources.knownMany ? await sources.knownMany(items.map((item) => item.id)) : await Promise.all(items.map((item) => sources.known(item.id)));
      summaries.forEach((summary, i) => {
        if (summary !== undefined) settle(items[i]!, summary);
      });
    }
    let at = 0;
    while (at < items.length) {
      const group: Pending[] = [];
      let claimed = 0;
      while (at < items.length && group.length < CHUNK_READ_IDS_MAX && (group.length === 0 || claimed + (items[at]!.role as { sizeBytes: number }).sizeBytes <= CHUNK_READ_BYTES_MAX)) {
        claimed += (items[at]!.role as { sizeBytes: number }).sizeBytes;
        group.push(items[at++]!);
      }
      const bytesList = await sources.getMany(group.map((item) => item.id));
      group.forEach((item, i) => {
        const bytes = bytesList[i];
        const key = idToHex(item.id);
        if (!bytes) {
          missing.push(item.id);
          missingKeys.add(key);
          return;
        }
        if (decodesAsObject(bytes)) throw new TreeStructureError(item.id, item.path, `${describe(item.role)} must name a chunk, this is a structured object`);
        if (chunkLengths.size >= RECENT_SUMMARIES_MAX) chunkLengths.clear();
        chunkLengths.set(key, bytes.length);
        settleChunkFile(item, bytes.length);
      });
    }
  };
  const flushChunks = async (all: boolean) => {
    while (chunkQueue.length >= BATCH_SIZE || (all && chunkQueue.length > 0)) {
      const batch = chunkQueue.splice(0, BATCH_SIZE);
      // Each distinct chunk is asked about once per batch, and not at all once found stored.
      const keys = batch.map((c) => idToHex(c.id));
      const askedAt = new Map<string, number>();
      const toAsk: ObjectId[] = [];
      batch.forEach((c, i) => {
        const key = keys[i]!;
        if (!presentChunks.has(key) && !askedAt.has(key)) askedAt.set(key, toAsk.push(c.id) - 1);
      });
      const present = toAsk.length === 0 ? [] : await sources.hasMany(toAsk);
      const stored = keys.map((key) => presentChunks.has(key) || present[askedAt.get(key)!] === true);
      if (presentChunks.size + toAsk.length > RECENT_SUMMARIES_MAX) presentChunks.clear();
      for (const [key, at] of askedAt) if (present[at]) presentChunks.add(key);
      for (let i = 0; i < batch.length; i++) {
        const { id, owner } = batch[i]!;
        const key = keys[i]!;
        if (!stored[i]) {
          if (!missingKeys.has(key)) {
            missing.push(id);
            missingKeys.add(key);
          }
          continue;
        }
        owner.chunksLeft -= 1;
        if (owner.chunksLeft === 0) release(owner);
      }
    }
  };
  const flushRecords = async () => {
    if (!recording || toRecord.length === 0) return;
    while (toRecord.length > 0) await sources.record!(toRecord.splice(0, RECORD_BATCH_NODES));
    // What was recorded is found through `known` from now on.
    if (recent.size > RECENT_SUMMARIES_MAX) recent.clear();
  };
  /** Where a place stands before its object is read: settled, waiting on an open node, skipped, or to be read. */
  const place = async (item: Pending, asked?: Map<string, NodeSummary | undefined>): Promise<"read" | "done"> => {
    const key = idToHex(item.id);
    if (missingKeys.has(key)) return "done";
    if (item.role.as === "chunk-file") {
      const lengthBytes = chunkLengths.get(key);
      if (lengthBytes !== undefined) {
        settleChunkFile(item, lengthBytes);
        return "done";
      }
      // Its summary, if it has one, is asked for only if it is to be read (readChunkFiles):
      // chunk lengths known from elsewhere say it is no node as surely.
      return "read";
    }
    const summary = recent.get(key) ?? (asked?.has(key) ? asked.get(key) : await sources.known(item.id));
    if (summary) {
      settle(item, summary);
      return "done";
    }
    const waitingOn = open.get(key);
    if (waitingOn) {
      waitingOn.namedFrom.push(item);
      return "done";
    }
    return "read";
  };
  /** What earlier checks established about the places of one batch, in one knownMany (when the sources have it). */
  const askKnown = async (items: readonly Pending[]): Promise<Map<string, NodeSummary | undefined> | undefined> => {
    if (sources.knownMany === undefined) return undefined;
    const ids: ObjectId[] = [];
    const keys: string[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      if (item.role.as === "chunk-file") continue;
      const key = idToHex(item.id);
      if (seen.has(key) || missingKeys.has(key) || recent.has(key) || open.has(key)) continue;
      seen.add(key);
      ids.push(item.id);
      keys.push(key);
    }
    const answers = ids.length === 0 ? [] : await sources.knownMany(ids);
    return new Map(keys.map((key, i) => [key, answers[i]]));
  };

  while (stack.length > 0) {
    const toLoad: Pending[] = [];
    const again: Pending[] = [];
    const loading = new Set<string>();
    // The top of the stack, in the order it was pushed (entries and pages in their order).
    const taken: Pending[] = [];
    let growers = 0;
    while (stack.length > 0 && taken.length < BATCH_SIZE) {
      if (stack.length > STACK_ITEMS_SOFT_MAX && growers >= STACK_GROWERS_MAX) break;
      const item = stack.pop()!;
      taken.push(item);
      if (item.role.as === "dir" || item.role.as === "tree-page") growers += 1;
    }
    taken.reverse();
    const asked = await askKnown(taken);
    for (const item of taken) {
      if ((await place(item, asked)) === "done") continue;
      const key = idToHex(item.id);
      if (loading.has(key)) again.push(item);
      else {
        loading.add(key);
        toLoad.push(item);
      }
    }
    const chunkFiles = toLoad.filter((item) => item.role.as === "chunk-file");
    if (chunkFiles.length > 0) await readChunkFiles(chunkFiles);
    const nodesToLoad = chunkFiles.length === 0 ? toLoad : toLoad.filter((item) => item.role.as !== "chunk-file");
    const bytesList = await sources.getMany(nodesToLoad.map((item) => item.id));
    for (let i = 0; i < nodesToLoad.length; i++) {
      const item = nodesToLoad[i]!;
      const bytes = bytesList[i];
      if (!bytes) {
        missing.push(item.id);
        missingKeys.add(idToHex(item.id));
        continue;
      }
      let object: StructuredObject;
      try {
        object = sources.decode ? sources.decode(bytes) : decodeObject(bytes);
      } catch (error) {
        if (error instanceof DecodeError) throw new TreeStructureError(item.id, item.path, `not a valid object: ${error.message}`);
        throw error;
      }
      const node = checkNode(item, object, stack, chunkQueue);
      open.set(idToHex(item.id), node);
      // The node's own place counts as one child until every child is queued, so it cannot complete early.
      release(node);
      if (chunkQueue.length >= BATCH_SIZE) await flushChunks(false);
    }
    await flushChunks(true);
    for (const item of again) if ((await place(item)) === "read") stack.push(item);
    await flushRecords();
  }
  await flushRecords();
  if (missing.length > 0) return { missing, checked: [] };
  if (!rootComplete) throw new Error(`the check of ${idToHex(rootId)} ended with ${open.size} node(s) never complete (an object below itself?)`);
  return { missing, checked };
}

/**
 * Checks one object read from the store against the place it is named from; queues the places
 * it names (and the chunks of a file leaf). Returns it open, with one extra child to release
 * once the caller has registered it.
 */
function checkNode(named: Pending, object: StructuredObject, stack: Pending[], chunkQueue: { id: ObjectId; owner: Open }[]): Open {
  // An object checked for itself takes the role its kind gives it (a version is refused below).
  const item: Pending =
    named.role.as !== "node" || object.kind === "version" ? named : { ...named, role: object.kind === "tree" ? { as: "dir", depth: 0 } : { as: "file", sizeBytes: object.sizeBytes } };
  const { role, path } = item;
  const broken = (rule: string): never => {
    throw new TreeStructureError(item.id, path, rule);
  };
  const opened = (summary: NodeSummary, leaf: boolean, lastPage: ObjectId | null): Open => ({ id: item.id, summary, remaining: 1, chunksLeft: 0, leaf, lastPage, namedFrom: [item] });
  if (object.kind === "version") return broken(`${describe(role)} must be a ${role.as.startsWith("file") ? "file" : "tree"} node, this is a version`);
  if (role.as === "chunk-file") return broken(`${describe(role)} must name a chunk, this is a ${object.kind} node`);
  if (object.kind === "tree") {
    if (role.as !== "dir" && role.as !== "tree-page") return broken(`${describe(role)} must be a file node, this is a tree node`);
    if (role.as === "tree-page" && object.level !== role.level) broken(`${describe(role)} must be at level ${role.level}, this node is at level ${object.level}`);
    const firstName = isTreeLeaf(object) ? (object.entries[0]?.name ?? null) : object.pages[0]!.firstName;
    if (role.as === "tree-page" && firstName !== role.firstName) {
      broken(`the parent says this page starts with ${JSON.stringify(role.firstName)}, it starts with ${firstName === null ? "nothing (it is empty)" : JSON.stringify(firstName)}`);
    }
    const before = role.as === "tree-page" ? role.before : null;
    if (isTreeLeaf(object)) {
      const lastName = object.entries.at(-1)?.name ?? null;
      if (before !== null && lastName !== null && compareNames(lastName, before) >= 0) {
        broken(`names must be unique and sorted across pages: ${JSON.stringify(lastName)} in this page, ${JSON.stringify(before)} in the next`);
      }
      const node = opened({ kind: "tree", level: 0, firstName, lastName, heightDirs: 0 }, true, null);
      for (const entry of object.entries) {
        const entryPath = joinPath(path, entry.name);
        if (entry.kind === "dir") {
          if (role.depth + 1 > LIMITS.treeDepthMax) broken(`directories nest deeper than ${LIMITS.treeDepthMax}`);
          stack.push({ id: entry.id!, role: { as: "dir", depth: role.depth + 1 }, path: entryPath, parent: node });
          node.remaining += 1;
        } else if (entry.kind === "file") {
          const role: Role = entry.idNamesChunk ? { as: "chunk-file", sizeBytes: entry.sizeBytes } : { as: "file", sizeBytes: entry.sizeBytes };
          stack.push({ id: entry.id!, role, path: entryPath, parent: node });
          node.remaining += 1;
        }
      }
      return node;
    }
    const pages = object.pages;
    const lastFirstName = pages.at(-1)!.firstName;
    if (before !== null && compareNames(lastFirstName, before) >= 0) {
      broken(`names must be unique and sorted across pages: ${JSON.stringify(lastFirstName)} in this page, ${JSON.stringify(before)} in the next`);
    }
    const node = opened({ kind: "tree", level: object.level, firstName, lastName: null, heightDirs: 0 }, false, pages.at(-1)!.id);
    pages.forEach((page, index) => {
      const next = pages[index + 1]?.firstName ?? before;
      stack.push({ id: page.id, role: { as: "tree-page", level: object.level - 1, firstName: page.firstName, before: next, depth: role.depth }, path: pagePath(path, index, object.level), parent: node });
      node.remaining += 1;
    });
    return node;
  }
  if (role.as !== "file" && role.as !== "file-page") return broken(`${describe(role)} must be a tree node, this is a file node`);
  const summary: FileSummary = { kind: "file", level: object.level, sizeBytes: object.sizeBytes };
  const problem = matchSummary(role, summary);
  if (problem) broken(problem);
  const node = opened(summary, false, null);
  if (isFileLeaf(object)) {
    if (object.chunks.length > 0) {
      node.remaining += 1;
      node.chunksLeft = object.chunks.length;
      for (const chunk of object.chunks) chunkQueue.push({ id: chunk.id, owner: node });
    }
  } else {
    object.pages.forEach((page, index) => {
      stack.push({ id: page.id, role: { as: "file-page", level: object.level - 1, sizeBytes: page.sizeBytes }, path: pagePath(path, index, object.level), parent: node });
      node.remaining += 1;
    });
  }
  return node;
}
