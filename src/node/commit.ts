// A push's commit: the pushed tree checked whole, recorded as a version, and the folder's head
// moved to it, or, when the head moved since the client's parent, merged three ways onto the
// head against their merge base (merge-base.ts). Runs under the node's write lock; the head
// moves only by a compare-and-set (ctx.moveHead: the metadata's commitVersions for an eventual
// folder, the cluster's log for a strong one, whose apply does the same compare-and-set on every
// member), after everything it names is stored: a crash at any point leaves at most
// unreferenced objects, never a head that names something missing.
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { mergeTrees, type MergeConflict } from "../core/merge.ts";
import { headLoserResolver, type KnownVersion } from "../core/concurrent-merge.ts";
import { counterOf, EMPTY_VECTOR, withCounter } from "../core/version-vector.ts";
import { findMergeBase } from "./merge-base.ts";
import type { VersionOrigin } from "./metadata-records.ts";
import type { WriteContext } from "./write-context.ts";

export interface CommitRequest {
  folder: string;
  root: ObjectId;
  /** The head the client last saw; null for a first push. */
  parent: ObjectId | null;
  message: string;
  chunking: string;
  files: number;
  totalBytes: number;
  origin?: VersionOrigin;
}

export interface CommitResult {
  /** The folder's new head. */
  version: ObjectId;
  /** The version made from the pushed tree (equal to `version` unless a merge happened). */
  pushed: ObjectId;
  parent: ObjectId | null;
  /** The head that was current when the push arrived, if it had moved since `parent`. */
  mergedWith: ObjectId | null;
  root: ObjectId;
  conflicts: MergeConflict[];
}

/**
 * Records a pushed tree as a new version and moves the folder's head to it. When the head
 * moved since the client's parent, the pushed tree is merged three ways with the head
 * against their common ancestor; the pushed side is the later writer and wins conflicts, and
 * the overwritten content stays reachable through the merge's first parent.
 *
 * Every write this node makes sits on top of its current head and carries the next counter
 * of this node in its version vector. A push with a stale parent is first recorded as it was
 * pushed, with an empty vector (it is history, never a head), and then merged onto the head by
 * a write that has both as parents.
 */
export async function commitPush(ctx: WriteContext, request: CommitRequest): Promise<CommitResult> {
  const folder = await ctx.metadata.ensureFolder(request.folder, ctx.clock.nowMs(), ctx.folderDefaults);
  // A parent this node does not know (pruned by retention, or never seen) gives no merge
  // base: the push is then merged without one, which keeps every path of both sides.
  await ctx.checkClosure(request.root);

  const head = folder.head;
  const headVector = await ctx.vectorOf(head);
  const nextVector = withCounter(headVector, ctx.nodeId, counterOf(headVector, ctx.nodeId) + 1);
  // Only a version of this folder is ever recorded as a parent: one it does not hold (pruned,
  // made up, or another folder's, whose id a writer of this one may have seen) is left out, so
  // no folder's history links into another's. Into a folder without a head there is nothing
  // to merge with, whatever parent the push names.
  const parent = request.parent !== null && (await ctx.metadata.getVersion(folder.name, request.parent)) ? request.parent : null;
  const headMatches = head === null || (parent !== null && idEquals(head, parent));
  if (headMatches) {
    const pushed = await ctx.writer.write({
      root: request.root,
      parents: head ? [head] : [],
      message: request.message,
      chunking: request.chunking,
      versionVector: nextVector,
    });
    const pushedRecord = ctx.writer.record(pushed.id, pushed.version, request.origin ?? "push", request.files, request.totalBytes);
    await ctx.moveHead(folder.name, head, pushed.id, [pushedRecord]);
    return { version: pushed.id, pushed: pushed.id, parent: request.parent, mergedWith: null, root: request.root, conflicts: [] };
  }

  // The head moved: record the push as pushed, then merge it onto the head.
  const pushed = await ctx.writer.write({
    root: request.root,
    parents: parent ? [parent] : [],
    message: request.message,
    chunking: request.chunking,
    versionVector: EMPTY_VECTOR,
  });
  const pushedRecord = ctx.writer.record(pushed.id, pushed.version, request.origin ?? "push", request.files, request.totalBytes);
  const headRecord = (await ctx.metadata.getVersion(folder.name, head!))!;
  const baseVersion = parent ? await findMergeBase(ctx.metadata, folder.name, head!, parent) : null;
  const baseRoot = baseVersion ? ((await ctx.metadata.getVersion(folder.name, baseVersion))?.root ?? null) : null;
  // The pushed side is the later writer and keeps contested names; what it displaced stays
  // beside it as a conflict copy, as in a replication merge.
  const headKnown: KnownVersion = { id: head!, version: await ctx.decodeVersion(head!) };
  const resolveConflict = await headLoserResolver(headKnown, ctx.versionLookup(folder.name), ctx.load);
  const merged = await mergeTrees({ base: baseRoot, ours: headRecord.root, theirs: request.root, load: ctx.load, resolveConflict });
  await ctx.store.putMany(merged.newObjects.map((o) => ({ id: o.id, bytes: o.bytes })));
  // The merged tree is marked by the same check as a pushed one: a mark is only ever what a check established.
  await ctx.checkClosure(merged.root);
  const mergeVersion = await ctx.writer.write({
    root: merged.root,
    parents: [head!, pushed.id],
    message: `merge ${idToHex(pushed.id).slice(0, 12)} into ${idToHex(head!).slice(0, 12)}`,
    chunking: request.chunking,
    versionVector: nextVector,
  });
  const mergeRecord = ctx.writer.record(mergeVersion.id, mergeVersion.version, "merge", request.files, request.totalBytes);
  await ctx.moveHead(folder.name, head, mergeVersion.id, [pushedRecord, mergeRecord]);
  return {
    version: mergeVersion.id,
    pushed: pushed.id,
    parent: request.parent,
    mergedWith: head,
    root: merged.root,
    conflicts: merged.conflicts,
  };
}
