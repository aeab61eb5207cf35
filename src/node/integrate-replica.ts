// Taking in versions a peer sent: each recorded once its version object and its whole tree are
// here and valid, and the folder's head moved by version vectors (fast-forward, or a
// deterministic merge of concurrent heads: core/concurrent-merge.ts), so every node that holds
// the same versions ends on the same head. Runs under the node's write lock; the head moves only
// by the metadata's compare-and-set.
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import type { MergeConflict } from "../core/merge.ts";
import { sealObject, type Version } from "../core/objects.ts";
import { isReplicationMerge, mergeConcurrent, type KnownVersion } from "../core/concurrent-merge.ts";
import { compareVectors } from "../core/version-vector.ts";
import { IncompleteTreeError } from "./closure.ts";
import type { ConsistencyMode, NewVersionRecord, VersionOrigin } from "./metadata-records.ts";
import { nodeIdProblem } from "./node-id.ts";
import { UserError } from "./user-error.ts";
import type { WriteContext } from "./write-context.ts";

/** A version received from a peer: its verified object, plus the counts the peer reported. */
export interface ReplicaVersion {
  id: ObjectId;
  version: Version;
  files: number;
  totalBytes: number;
}

export interface IntegrateResult {
  /** The folder's head afterwards. */
  head: ObjectId;
  /** What happened to the head: unchanged, fast-forwarded to the peer's, or a new merge. */
  outcome: "unchanged" | "fast-forward" | "merged";
  recorded: number;
  conflicts: MergeConflict[];
}

/**
 * Why a version from a peer names someone it may not, or undefined: its author (a node id, or
 * none for a replication merge) and every node of its version vector must be node ids. They end
 * up in file names (a conflict copy is named after the author) and in every node's history, so
 * a peer cannot slip control characters, "/" or a 128-character name into them.
 */
export function replicaVersionNamesProblem(version: Version): string | undefined {
  if (!isReplicationMerge(version)) {
    const problem = nodeIdProblem(version.author);
    if (problem) return `its author is not a node id: ${problem}`;
  }
  for (const entry of version.versionVector) {
    const problem = nodeIdProblem(entry.node);
    if (problem) return `its version vector names a node that is not a node id: ${problem}`;
  }
  return undefined;
}

/**
 * Takes in versions a peer sent (their objects and every tree below them already stored and
 * verified by the caller) and moves the head by their version vectors: a peer head this
 * node's head already covers changes nothing but history; one that covers this node's head
 * is taken as it is; a concurrent one is merged deterministically (concurrent-merge.ts), so
 * every node that holds the same versions ends on the same head.
 */
export async function integrateReplicaVersions(
  ctx: WriteContext,
  folderName: string,
  mode: ConsistencyMode,
  versions: readonly ReplicaVersion[],
  remoteHead: ObjectId,
): Promise<IntegrateResult> {
  const folder = await ctx.metadata.ensureFolder(folderName, ctx.clock.nowMs(), { ...ctx.folderDefaults, mode });
  const records: NewVersionRecord[] = [];
  // Nothing is recorded without its version object: the caller stored it, but a collection
  // since then may have deleted it (no kept version reached it yet).
  const recorded = await ctx.metadata.getVersions(folderName, versions.map((item) => item.id));
  const fresh = versions.filter((_, i) => recorded[i] === undefined);
  const stored = await ctx.store.hasMany(fresh.map((item) => item.id));
  const lacking = fresh.filter((_, i) => !stored[i]).map((item) => item.id);
  if (lacking.length > 0) throw new IncompleteTreeError(lacking);
  for (const item of fresh) {
    // Nothing is recorded whose tree is not all here and valid.
    await ctx.checkClosure(item.version.root);
    ctx.writer.receive({ wallMs: item.version.hlcWallMs, counter: item.version.hlcCounter });
    const origin: VersionOrigin = isReplicationMerge(item.version) ? "merge" : "replica";
    records.push(ctx.writer.record(item.id, item.version, origin, item.files, item.totalBytes));
  }
  if (records.length > 0) await ctx.metadata.recordVersions(folderName, records);
  const head = folder.head;
  // Each move below checks the mode in its own step: a folder the log turned strong since is
  // refused (FolderModeChangedError), never moved by a replica.
  const remoteRecord = await ctx.metadata.getVersion(folderName, remoteHead);
  if (!remoteRecord) throw new UserError(`the peer's head ${idToHex(remoteHead)} was not among the versions received`, 422);
  const unchanged = { head: head ?? remoteHead, outcome: "unchanged" as const, recorded: records.length, conflicts: [] };
  if (head !== null && idEquals(head, remoteHead)) return unchanged;
  if (head === null) {
    await ctx.metadata.commitVersions(folderName, null, remoteHead, [], ctx.clock.nowMs(), { onlyIfMode: mode });
    return { head: remoteHead, outcome: "fast-forward", recorded: records.length, conflicts: [] };
  }
  const ours: KnownVersion = { id: head, version: await ctx.decodeVersion(head) };
  const theirs: KnownVersion = { id: remoteHead, version: await ctx.decodeVersion(remoteHead) };
  const order = compareVectors(ours.version.versionVector, theirs.version.versionVector);
  if (order === "after") return unchanged;
  if (order === "before" || (order === "equal" && Buffer.compare(remoteHead, head) > 0)) {
    // "equal" with different ids: two merges of the same writes built over different
    // histories (retention pruned a base on one node). The greater id wins everywhere.
    await ctx.metadata.commitVersions(folderName, head, remoteHead, [], ctx.clock.nowMs(), { onlyIfMode: mode });
    return { head: remoteHead, outcome: "fast-forward", recorded: records.length, conflicts: [] };
  }
  if (order === "equal") return unchanged;

  const merged = await mergeConcurrent([ours, theirs], ctx.versionLookup(folderName), ctx.load);
  if ("single" in merged) {
    // Only when a parent of a merge is missing here (pruned by retention) can the frontier
    // shrink to one write; the head then moves only if that write covers it, never back.
    const covers = compareVectors(merged.single.version.versionVector, ours.version.versionVector);
    if (idEquals(merged.single.id, head) || (covers !== "after" && covers !== "equal")) return unchanged;
    await ctx.metadata.commitVersions(folderName, head, merged.single.id, [], ctx.clock.nowMs(), { onlyIfMode: mode });
    return { head: merged.single.id, outcome: "fast-forward", recorded: records.length, conflicts: [] };
  }
  await ctx.store.putMany(merged.newObjects.map((o) => ({ id: o.id, bytes: o.bytes })));
  await ctx.checkClosure(merged.root);
  const sealed = sealObject(merged.version);
  await ctx.store.putMany([{ id: sealed.id, bytes: sealed.bytes }]);
  const newest = (await ctx.metadata.getVersion(folderName, merged.frontier.at(-1)!.id))!;
  const mergeRecord = ctx.writer.record(sealed.id, merged.version, "merge", newest.files, newest.totalBytes);
  await ctx.metadata.commitVersions(folderName, head, sealed.id, [mergeRecord], ctx.clock.nowMs(), { onlyIfMode: mode });
  return { head: sealed.id, outcome: "merged", recorded: records.length + 1, conflicts: merged.conflicts };
}
