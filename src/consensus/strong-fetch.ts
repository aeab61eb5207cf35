// Bringing what a strong folder's log entry or snapshot names to this node before it is
// acknowledged: the version objects and the whole tree of each, by the replication's Merkle
// descent (replication/fetch-closure.ts), from the leader first and then the other members.
// A member acknowledges an entry only once it holds everything the entry's head names, so a
// head acknowledged by a majority is readable from a majority.
import { parentsFirst } from "../core/parents-first.ts";
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { decodeObject, type Version } from "../core/objects.ts";
import { EMPTY_VECTOR, type VersionVector } from "../core/version-vector.ts";
import type { NewVersionRecord } from "../node/metadata-records.ts";
import type { DsyncNode, ReplicaVersion } from "../node/node.ts";
import { fetchClosure } from "../replication/fetch-closure.ts";
import type { PeerTransport } from "../replication/transport.ts";

/** What a log entry names of one version: its id and its tree's root. */
export interface NamedVersion {
  id: ObjectId;
  root: ObjectId;
}

export class StrongFetchError extends Error {
  override name = "StrongFetchError";
}

/**
 * Whether this node holds every version of `versions` (its object, a version whose root is the
 * one named) and the whole, valid tree below each root: the check a commit makes
 * (DsyncNode.checkClosure). Cheap once held: a checked root is marked complete.
 */
export async function holdsVersions(node: DsyncNode, versions: readonly NamedVersion[]): Promise<boolean> {
  const present = await node.hasObjects(versions.map((v) => v.id));
  if (present.includes(false)) return false;
  for (const v of versions) {
    try {
      const version = await node.decodeVersion(v.id);
      if (!idEquals(version.root, v.root)) return false;
      await node.checkClosure(v.root);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Bounds the fetch from one source: returns `fetch` itself to let it run to its own deadline, or
 * a promise that also rejects once that source is given up (a leader no longer heard from).
 */
export type SourceBound = <T>(source: string, fetch: Promise<T>) => Promise<T>;

/**
 * Makes sure this node holds `versions` whole (holdsVersions), fetching what it lacks from
 * `sources` in order (the leader first), each tried in turn for `rounds` rounds, each fetch
 * bounded by `bound` when given. Throws StrongFetchError naming the last failure when no source
 * could supply them.
 */
export async function ensureVersionsHeld(
  node: DsyncNode,
  transport: PeerTransport | undefined,
  sources: readonly string[],
  versions: readonly NamedVersion[],
  rounds = 2,
  bound?: SourceBound,
): Promise<void> {
  if (versions.length === 0 || (await holdsVersions(node, versions))) return;
  if (!transport || sources.length === 0) throw new StrongFetchError(`this node lacks version ${idToHex(versions[0]!.id)} and has no member to fetch it from`);
  let last: unknown;
  for (let round = 0; round < rounds; round++) {
    for (const source of sources) {
      try {
        const fetch = fetchVersionsFrom(node, transport, source, versions);
        await (bound ? bound(source, fetch) : fetch);
        if (await holdsVersions(node, versions)) return;
        last = new Error(`${source} sent versions whose trees are not whole`);
      } catch (error) {
        last = error;
      }
    }
  }
  throw new StrongFetchError(`could not fetch version ${idToHex(versions[0]!.id)} from ${sources.join(", ")}: ${(last as Error)?.message ?? "no answer"}`);
}

async function fetchVersionsFrom(node: DsyncNode, transport: PeerTransport, source: string, versions: readonly NamedVersion[]): Promise<void> {
  const ids = versions.map((v) => v.id);
  const present = await node.hasObjects(ids);
  const lacking = ids.filter((_, i) => !present[i]);
  if (lacking.length > 0) {
    const reply = await transport.download(source, lacking);
    if (reply.missing.length > 0) throw new StrongFetchError(`${source} lacks version ${idToHex(reply.missing[0]!)}`);
    const asked = new Set(lacking.map(idToHex));
    for (const object of reply.objects) if (!asked.has(idToHex(object.id))) throw new StrongFetchError(`${source} sent object ${idToHex(object.id)} that was not asked for`);
    // putObjects hashes each object against its id.
    await node.putObjects(reply.objects);
  }
  for (const v of versions) {
    const version = await node.decodeVersion(v.id);
    if (!idEquals(version.root, v.root)) throw new StrongFetchError(`version ${idToHex(v.id)} has root ${idToHex(version.root)}, not the ${idToHex(v.root)} the log names`);
  }
  await fetchClosure(node, transport, source, versions.map((v) => v.root));
}

/**
 * A strong folder's head as a snapshot names it, with every version behind it this node lacks
 * (paged as the replicator asks, replicator.ts), each version's object and tree stored here and
 * checked. Returns the versions to record, parents before children, as records for the metadata.
 */
export async function fetchHeadWithHistory(
  node: DsyncNode,
  transport: PeerTransport,
  source: string,
  folder: string,
  head: ObjectId,
  known: VersionVector = EMPTY_VECTOR,
): Promise<ReplicaVersion[]> {
  const received = new Map<string, ReplicaVersion & { bytes: Uint8Array }>();
  let pending: ObjectId[] = [];
  let resumeFrom: ObjectId[] | undefined;
  for (;;) {
    const page = await transport.history(source, { folder, head, known, resumeFrom });
    const before = received.size;
    for (const item of page.versions) {
      const id = blake3(item.bytes);
      const key = idToHex(id);
      if (received.has(key)) continue;
      const object = decodeObject(item.bytes);
      if (object.kind !== "version") throw new StrongFetchError(`${source} sent a ${object.kind} object as history`);
      received.set(key, { id, version: object, files: item.files, totalBytes: item.totalBytes, bytes: item.bytes });
    }
    if (received.size === before && page.more.length > 0) throw new StrongFetchError(`${source} sent a history page with nothing new that asks to go on`);
    const candidates = [...pending, ...page.more];
    pending = [];
    const lacking = new Set<string>();
    for (const id of candidates) {
      const key = idToHex(id);
      if (lacking.has(key) || received.has(key) || (await node.hasVersion(folder, id))) continue;
      lacking.add(key);
      pending.push(id);
    }
    if (pending.length === 0) break;
    resumeFrom = pending.slice(0, LIMITS.historyResumeIdsMax);
    pending = pending.slice(LIMITS.historyResumeIdsMax);
  }
  if (!received.has(idToHex(head)) && !(await node.hasVersion(folder, head))) throw new StrongFetchError(`${source} did not send the head ${idToHex(head)} of ${folder}`);
  const versions = parentsFirst([...received.values()]);
  const fresh: (ReplicaVersion & { bytes: Uint8Array })[] = [];
  for (const v of versions) if (!(await node.hasVersion(folder, v.id))) fresh.push(v);
  await node.putObjects(fresh.map((v) => ({ id: v.id, bytes: v.bytes })));
  await fetchClosure(node, transport, source, fresh.map((v) => v.version.root));
  for (const v of fresh) await node.checkClosure(v.version.root);
  return fresh.map(({ bytes: _bytes, ...rest }) => rest);
}

/** A received version as the metadata records it (its origin by its kind: a merge has two parents or more). */
export function replicaRecord(item: ReplicaVersion, nowMs: number): NewVersionRecord {
  return {
    id: item.id,
    root: item.version.root,
    parents: item.version.parents,
    author: item.version.author,
    hlcWallMs: item.version.hlcWallMs,
    hlcCounter: item.version.hlcCounter,
    message: item.version.message,
    origin: item.version.parents.length > 1 ? "merge" : "replica",
    files: item.files,
    totalBytes: item.totalBytes,
    createdMs: nowMs,
  };
}
