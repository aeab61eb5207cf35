// The JSON a node answers with, checked before the client uses it. A node may be old, broken or
// hostile: a folder list whose head is a number, a version whose parents are not ids, a status
// whose node id is an object would otherwise crash the CLI halfway through its output or reach
// code that trusts the types. Each check names the field that is wrong. Text fields may hold
// anything (the CLI escapes what it prints); names a node sends are checked against the folder
// name rule by whoever uses them as names (`dsync ls` says which are invalid).
import { isIdHex } from "../core/id.ts";
import type { CommitInfo, FolderInfo, NodeStatus, VersionInfo } from "./remote.ts";

/** A reply that is not what the API documents; the message names the field. */
export class MalformedReplyError extends Error {
  override name = "MalformedReplyError";
}

type Check = (value: unknown) => boolean;
const isString: Check = (value) => typeof value === "string";
const isCount: Check = (value) => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isNumber: Check = (value) => typeof value === "number" && Number.isFinite(value);
const nullable = (check: Check): Check => (value) => value === null || check(value);
const optional = (check: Check): Check => (value) => value === undefined || check(value);
const isIdList: Check = (value) => Array.isArray(value) && value.every(isIdHex);

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new MalformedReplyError(`${where} is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new MalformedReplyError(`${where} is not a list`);
  return value;
}

function fields<T>(value: unknown, where: string, checks: Record<string, Check>): T {
  const object = record(value, where);
  for (const [field, check] of Object.entries(checks)) {
    if (!check(object[field])) throw new MalformedReplyError(`${where}.${field} is missing or of the wrong type`);
  }
  return object as T;
}

const FOLDER_FIELDS: Record<string, Check> = {
  name: isString,
  head: nullable(isIdHex),
  root: optional(nullable(isIdHex)),
  mode: isString,
  keepVersions: optional(nullable(isCount)),
  keepDays: optional(nullable(isCount)),
};

const VERSION_FIELDS: Record<string, Check> = {
  id: isIdHex,
  root: optional(isIdHex),
  parents: isIdList,
  author: isString,
  time: isString,
  message: isString,
  origin: isString,
  files: isCount,
  bytes: isCount,
};

export function folderReply(value: unknown, where = "the folder"): FolderInfo {
  return fields<FolderInfo>(value, where, FOLDER_FIELDS);
}

export function folderListReply(value: unknown): FolderInfo[] {
  return list(record(value, "the folder list").folders, "the folder list's folders").map((folder, i) => folderReply(folder, `folders[${i}]`));
}

export function versionListReply(value: unknown): VersionInfo[] {
  return list(record(value, "the version list").versions, "the version list's versions").map((version, i) => fields<VersionInfo>(version, `versions[${i}]`, VERSION_FIELDS));
}

/** One page of a list and the cursor of the next (null on the last; absent from a node that does not page, whose one reply is everything). */
export interface ListPage<T> {
  items: T[];
  next: string | null;
}

function nextCursor(value: unknown, where: string): string | null {
  const next = record(value, where).next;
  if (next === undefined || next === null) return null;
  if (typeof next !== "string" || next.length === 0 || next.length > 2048) throw new MalformedReplyError(`${where}.next is not a cursor`);
  return next;
}

export function versionPageReply(value: unknown): ListPage<VersionInfo> {
  return { items: versionListReply(value), next: nextCursor(value, "the version list") };
}

export function folderPageReply(value: unknown): ListPage<FolderInfo> {
  return { items: folderListReply(value), next: nextCursor(value, "the folder list") };
}

/** One version, as a pull or a diff uses it: what it is and which tree it names. */
export function versionReply(value: unknown): VersionInfo {
  return fields<VersionInfo>(value, "the version", { id: isIdHex, root: isIdHex, parents: isIdList });
}

export function statusReply(value: unknown): NodeStatus {
  const status = fields<NodeStatus>(value, "the status", { node: isString, peers: Array.isArray, folders: Array.isArray, foldersTotal: optional(isNumber) });
  status.peers.forEach((peer, i) =>
    fields(peer, `peers[${i}]`, { address: isString, node: nullable(isString), reachable: nullable((v) => typeof v === "boolean"), lastError: nullable(isString) }),
  );
  status.folders.forEach((folder, i) => {
    fields(folder, `folders[${i}]`, { name: isString, mode: isString, head: nullable(isIdHex), peers: Array.isArray });
    folder.peers.forEach((peer, j) =>
      fields(peer, `folders[${i}].peers[${j}]`, {
        peer: isString,
        node: nullable(isString),
        head: nullable(isString),
        state: isString,
        behindWrites: isNumber,
        aheadWrites: isNumber,
      }),
    );
  });
  // The cluster's log (absent from older nodes, null without one).
  const consensus = (status as { consensus?: unknown }).consensus;
  if (consensus !== undefined && consensus !== null) {
    const checked = fields<NonNullable<NodeStatus["consensus"]>>(consensus, "the status's consensus", {
      nodeId: isString,
      role: isString,
      term: isCount,
      leader: nullable((v) => typeof v === "object" && v !== null && isString((v as Record<string, unknown>).id) && nullable(isString)((v as Record<string, unknown>).address)),
      commit: isCount,
      applied: isCount,
      lastIndex: isCount,
      members: Array.isArray,
    });
    checked.members.forEach((member, i) =>
      fields(member, `consensus.members[${i}]`, { id: isString, address: nullable(isString), match: nullable(isCount), lastContactMs: nullable(isNumber), self: (v) => typeof v === "boolean" }),
    );
  }
  return status;
}

const isEntryOrNull: Check = (value) =>
  value === null ||
  (typeof value === "object" &&
    !Array.isArray(value) &&
    isString((value as Record<string, unknown>).kind) &&
    nullable(isIdHex)((value as Record<string, unknown>).id) &&
    optional(nullable(isString))((value as Record<string, unknown>).target));

/** A commit's or a restore's answer: the versions it names, and the conflicts push prints. */
export function commitReply(value: unknown): CommitInfo {
  const commit = fields<CommitInfo>(value, "the commit", {
    version: isIdHex,
    pushed: isIdHex,
    parent: nullable(isIdHex),
    mergedWith: nullable(isIdHex),
    root: isIdHex,
    conflicts: Array.isArray,
  });
  commit.conflicts.forEach((conflict, i) =>
    fields(conflict, `conflicts[${i}]`, {
      path: isString,
      kind: isString,
      winner: isString,
      kept: isEntryOrNull,
      losers: (v) => Array.isArray(v) && v.every(isEntryOrNull),
      copies: (v) => Array.isArray(v) && v.every(isString),
    }),
  );
  return commit;
}
