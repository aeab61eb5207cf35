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
//   - directories nest at most LIMITS.treeDepthMax deep;
//   - every object and chunk below the root is stored (what is not is reported, not thrown).
// What an earlier check established about an object is given back as its summary (kind,
// level, first and last name or size, nesting height), so a subtree checked before is matched
// against its summary without being read: the cost is that of what is new. A summary is exactly
// what was checked, so it never vouches for more (a file node never passes as a directory).
import { idToHex, type ObjectId } from "./id.ts";
import { DecodeError } from "./encoding.ts";
import { LIMITS } from "./limits.ts";
import { compareNames, decodeObject, isFileLeaf, isTreeLeaf, type StructuredObject } from "./objects.ts";

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
  known(id: ObjectId): NodeSummary | undefined;
}

export interface StructureReport {
  /** Objects and chunks below the root that are not stored; when any is, nothing is `checked`. */
  missing: ObjectId[];
  /** Every object checked for the first time, with its summary (the root among them, unless known). */
  checked: CheckedNode[];
}

type Role =
  | { as: "dir"; depth: number }
  | { as: "tree-page"; level: number; firstName: string; before: string | null; depth: number }
  | { as: "file"; sizeBytes: number }
  | { as: "file-page"; level: number; sizeBytes: number };

interface Pending {
  id: ObjectId;
  role: Role;
  path: string;
}

/** A summary found in this run whose last name and height wait for the pages and directories below. */
interface Unresolved {
  summary: TreeSummary;
  /** The last page (inner nodes): its last name is this node's. */
  lastPage: ObjectId | null;
  /** Pages (inner nodes) and subdirectories (leaves): the height is the greatest of theirs. */
  below: ObjectId[];
  leaf: boolean;
}

const BATCH_SIZE = 512;
const PENDING = "pending" as const;

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
 * rule when not, PENDING when the summary's last name or height is still being worked out.
 */
function matchSummary(role: Role, summary: NodeSummary, resolved: boolean): string | undefined | typeof PENDING {
  if (role.as === "dir" || role.as === "tree-page") {
    if (summary.kind !== "tree") return `${describe(role)} must be a tree node, this is a ${summary.kind} node`;
    if (role.as === "tree-page") {
      if (summary.level !== role.level) return `${describe(role)} must be at level ${role.level}, this node is at level ${summary.level}`;
      if (summary.firstName !== role.firstName) {
        return `the parent says this page starts with ${JSON.stringify(role.firstName)}, it starts with ${summary.firstName === null ? "nothing (it is empty)" : JSON.stringify(summary.firstName)}`;
      }
    }
    if (!resolved) return PENDING;
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
 * TreeStructureError at the first broken rule; reports what is not stored; returns what it
 * checked for the first time. Memory holds one summary per object read, like any walk.
 */
export async function checkTreeStructure(rootId: ObjectId, sources: StructureSources): Promise<StructureReport> {
  const summaries = new Map<string, NodeSummary>();
  const checked: CheckedNode[] = [];
  const unresolved = new Map<string, Unresolved>();
  const missing: ObjectId[] = [];
  const missingKeys = new Set<string>();
  const deferred: Pending[] = [];
  const chunkIds: ObjectId[] = [];
  const stack: Pending[] = [{ id: rootId, role: { as: "dir", depth: 0 }, path: "" }];

  const summaryOf = (id: ObjectId): NodeSummary | undefined => summaries.get(idToHex(id)) ?? sources.known(id);
  const isResolved = (id: ObjectId) => !unresolved.has(idToHex(id));
  const match = (item: Pending, summary: NodeSummary) => {
    const problem = matchSummary(item.role, summary, isResolved(item.id));
    if (problem === PENDING) deferred.push(item);
    else if (problem !== undefined) throw new TreeStructureError(item.id, item.path, problem);
  };
  const flushChunks = async (final: boolean) => {
    while (chunkIds.length >= BATCH_SIZE || (final && chunkIds.length > 0)) {
      const batch = chunkIds.splice(0, BATCH_SIZE);
      const present = await sources.hasMany(batch);
      present.forEach((ok, i) => ok || missing.push(batch[i]!));
    }
  };

  while (stack.length > 0) {
    const batch = stack.splice(Math.max(0, stack.length - BATCH_SIZE));
    const toLoad: Pending[] = [];
    const again: Pending[] = [];
    const loading = new Set<string>();
    for (const item of batch) {
      const key = idToHex(item.id);
      if (missingKeys.has(key)) continue;
      const summary = summaryOf(item.id);
      if (summary) match(item, summary);
      else if (loading.has(key)) again.push(item);
      else {
        loading.add(key);
        toLoad.push(item);
      }
    }
    const bytesList = await sources.getMany(toLoad.map((item) => item.id));
    for (let i = 0; i < toLoad.length; i++) {
      const item = toLoad[i]!;
      const bytes = bytesList[i];
      if (!bytes) {
        missing.push(item.id);
        missingKeys.add(idToHex(item.id));
        continue;
      }
      let object: StructuredObject;
      try {
        object = decodeObject(bytes);
      } catch (error) {
        if (error instanceof DecodeError) throw new TreeStructureError(item.id, item.path, `not a valid object: ${error.message}`);
        throw error;
      }
      const summary = checkNode(item, object, stack, chunkIds, unresolved);
      summaries.set(idToHex(item.id), summary);
      checked.push({ id: item.id, summary });
    }
    for (const item of again) if (!missingKeys.has(idToHex(item.id))) match(item, summaryOf(item.id)!);
    await flushChunks(false);
  }
  await flushChunks(true);
  if (missing.length > 0) return { missing, checked: [] };

  resolveSummaries(unresolved, summaryOf);
  for (const item of deferred) {
    const problem = matchSummary(item.role, summaryOf(item.id)!, true);
    if (problem !== undefined) throw new TreeStructureError(item.id, item.path, problem as string);
  }
  return { missing, checked };
}

/** Checks one object read from the store against the place it is named from; queues what it names. */
function checkNode(item: Pending, object: StructuredObject, stack: Pending[], chunkIds: ObjectId[], unresolved: Map<string, Unresolved>): NodeSummary {
  const { role, path } = item;
  const broken = (rule: string): never => {
    throw new TreeStructureError(item.id, path, rule);
  };
  if (object.kind === "version") return broken(`${describe(role)} must be a ${role.as.startsWith("file") ? "file" : "tree"} node, this is a version`);
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
      const subdirectories: ObjectId[] = [];
      for (const entry of object.entries) {
        const entryPath = joinPath(path, entry.name);
        if (entry.kind === "dir") {
          if (role.depth + 1 > LIMITS.treeDepthMax) broken(`directories nest deeper than ${LIMITS.treeDepthMax}`);
          subdirectories.push(entry.id!);
          stack.push({ id: entry.id!, role: { as: "dir", depth: role.depth + 1 }, path: entryPath });
        } else if (entry.kind === "file") {
          stack.push({ id: entry.id!, role: { as: "file", sizeBytes: entry.sizeBytes }, path: entryPath });
        }
      }
      const summary: TreeSummary = { kind: "tree", level: 0, firstName, lastName, heightDirs: 0 };
      if (subdirectories.length > 0) unresolved.set(idToHex(item.id), { summary, lastPage: null, below: subdirectories, leaf: true });
      return summary;
    }
    const pages = object.pages;
    const lastFirstName = pages.at(-1)!.firstName;
    if (before !== null && compareNames(lastFirstName, before) >= 0) {
      broken(`names must be unique and sorted across pages: ${JSON.stringify(lastFirstName)} in this page, ${JSON.stringify(before)} in the next`);
    }
    pages.forEach((page, index) => {
      const next = pages[index + 1]?.firstName ?? before;
      stack.push({ id: page.id, role: { as: "tree-page", level: object.level - 1, firstName: page.firstName, before: next, depth: role.depth }, path: pagePath(path, index, object.level) });
    });
    const summary: TreeSummary = { kind: "tree", level: object.level, firstName, lastName: null, heightDirs: 0 };
    unresolved.set(idToHex(item.id), { summary, lastPage: pages.at(-1)!.id, below: pages.map((p) => p.id), leaf: false });
    return summary;
  }
  if (role.as !== "file" && role.as !== "file-page") return broken(`${describe(role)} must be a tree node, this is a file node`);
  const summary: FileSummary = { kind: "file", level: object.level, sizeBytes: object.sizeBytes };
  const problem = matchSummary(role, summary, true);
  if (problem) broken(problem);
  if (isFileLeaf(object)) chunkIds.push(...object.chunks.map((c) => c.id));
  else {
    object.pages.forEach((page, index) => {
      stack.push({ id: page.id, role: { as: "file-page", level: object.level - 1, sizeBytes: page.sizeBytes }, path: pagePath(path, index, object.level) });
    });
  }
  return summary;
}

/**
 * Fills in last names and heights, children before parents (the nodes form a DAG: pages sit one
 * level lower, subdirectories are named by hash, so no object can be below itself).
 */
function resolveSummaries(unresolved: Map<string, Unresolved>, summaryOf: (id: ObjectId) => NodeSummary | undefined): void {
  const finished = new Set<string>();
  const onPath = new Set<string>();
  for (const start of unresolved.keys()) {
    if (finished.has(start)) continue;
    const stack: { key: string; expanded: boolean }[] = [{ key: start, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const entry = unresolved.get(top.key)!;
      if (!top.expanded) {
        if (finished.has(top.key)) {
          stack.pop();
          continue;
        }
        top.expanded = true;
        onPath.add(top.key);
        for (const id of entry.below) {
          const key = idToHex(id);
          if (onPath.has(key)) throw new Error(`object ${key} lies below itself`);
          if (unresolved.has(key) && !finished.has(key)) stack.push({ key, expanded: false });
        }
        continue;
      }
      stack.pop();
      onPath.delete(top.key);
      finished.add(top.key);
      let height = 0;
      for (const id of entry.below) {
        const below = summaryOf(id) as TreeSummary;
        height = Math.max(height, entry.leaf ? below.heightDirs + 1 : below.heightDirs);
      }
      entry.summary.heightDirs = height;
      if (entry.lastPage) entry.summary.lastName = (summaryOf(entry.lastPage) as TreeSummary).lastName;
    }
  }
  unresolved.clear();
}
