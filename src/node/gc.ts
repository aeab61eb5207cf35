// Retention and garbage collection.
//
// 1. Retention prunes each folder's version index: the head is always kept, plus the newest
//    `keepVersions` versions and every version younger than `keepDays` (either rule keeps).
// 2. Mark: everything reachable from a kept version, and everything a push touched within the
//    grace period (objects it uploaded or was told are present) with all that lies below them.
// 3. Quarantined objects (found corrupt, no good copy yet) that nothing marked reaches are
//    forgotten, so repack may reclaim their damaged records: no kept version will ever ask for
//    them. One a kept version still needs stays quarantined; and while one that is not a chunk
//    is among them, what lies below it is unknown (its bytes cannot be read), so nothing is
//    deleted: its children may be the only copies of what its good copy will name.
// 4. Completeness is forgotten for every unmarked object, then unmarked objects older than
//    the grace period are deleted and the space reclaimed: deleting index rows frees nothing
//    (packs are append-only), so the store repacks, and the report gives what the data folder
//    really shrank by on the file system.
// GC runs under the node's write lock, so no commit interleaves with it. A push that was told
// an object is present before GC deleted it fails its closure check at commit (the object is
// no longer marked complete) and the client uploads it again; a head can never dangle.
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { allocatedBytesUnder } from "./disk-usage.ts";
import type { DsyncNode } from "./node.ts";
import { walkClosure, type WalkStart } from "./walk.ts";

export interface GcOptions {
  /** Objects used more recently than this are kept even if unreachable (pushes in flight). */
  graceMs?: number;
  /** Report what would be deleted without deleting. */
  dryRun?: boolean;
}

export interface GcReport {
  versionsPruned: number;
  versionsKept: number;
  objectsMarked: number;
  objectsDeleted: number;
  /** Bytes the data folder's files took on the file system before gc minus after (0 on a dry run, never negative). */
  bytesReclaimed: number;
  /** Quarantined objects no kept version needs, forgotten (so repack reclaims their damaged records). */
  quarantineDropped: number;
  /**
   * Quarantined objects a kept version still needs (they stay quarantined, awaiting repair).
   * When any of them is not a chunk, what lies below it is unknown and nothing was deleted: `sweepHeldBack`.
   */
  quarantinedNeeded: number;
  sweepHeldBack: boolean;
  dryRun: boolean;
}

export const GC_GRACE_MS_DEFAULT = 15 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export async function collectGarbage(node: DsyncNode, options: GcOptions): Promise<GcReport> {
  const nowMs = node.clock.nowMs();
  const graceMs = options.graceMs ?? GC_GRACE_MS_DEFAULT;
  const dryRun = options.dryRun ?? false;
  // Before anything is written: pruning and unmarking grow SQLite's log, and that counts against what gc frees.
  const allocatedBytesBefore = dryRun ? 0 : allocatedBytesUnder(node.dataDir);
  // On a full disk the first deletion would fail for want of room in SQLite's log: the reserve gives it that room.
  if (!dryRun) node.spaceReserve?.release();
  let report: GcReport;
  try {
    report = await collect(node, nowMs, graceMs, dryRun);
  } finally {
    if (!dryRun) node.spaceReserve?.refill();
  }
  // Measured, not computed from the index: a pack only gives space back when it is rewritten or
  // removed. After the reserve is made again, so it is not counted as freed.
  if (!dryRun) report.bytesReclaimed = Math.max(0, allocatedBytesBefore - allocatedBytesUnder(node.dataDir));
  return report;
}

/** Retention, mark and sweep; bytesReclaimed is left at 0 for the caller to measure. */
async function collect(node: DsyncNode, nowMs: number, graceMs: number, dryRun: boolean): Promise<GcReport> {
  let versionsPruned = 0;
  const starts: WalkStart[] = [];

  for (const folder of await node.metadata.listFolders()) {
    const versions = await node.metadata.listVersions(folder.name); // newest first
    const prune: ObjectId[] = [];
    versions.forEach((version, index) => {
      const isHead = folder.head !== null && idToHex(folder.head) === idToHex(version.id);
      const noRule = folder.keepVersions === null && folder.keepDays === null;
      const byCount = folder.keepVersions !== null && index < folder.keepVersions;
      const byAge = folder.keepDays !== null && version.createdMs >= nowMs - folder.keepDays * DAY_MS;
      if (isHead || noRule || byCount || byAge) starts.push({ id: version.id, kind: "structured" });
      else prune.push(version.id);
    });
    if (prune.length > 0 && !dryRun) await node.metadata.deleteVersions(folder.name, prune);
    versionsPruned += prune.length;
  }
  // Objects put or touched within the grace period belong to pushes that may still commit.
  const cutoffMs = nowMs - graceMs;
  const unused = new Set<string>();
  for await (const id of node.store.listUnusedSince(cutoffMs)) unused.add(idToHex(id));
  for await (const id of node.store.list()) if (!unused.has(idToHex(id))) starts.push({ id, kind: "unknown" });

  // A quarantined object reads as missing; what the walk took it for says whether anything lies below it.
  const missingKinds = new Map<string, WalkStart["kind"]>();
  const marked = await walkClosure(starts, node.store, { onMissing: (id, kind) => missingKinds.set(idToHex(id), kind) });

  const quarantined = (await node.store.listQuarantine({ unrepairedOnly: true })).map((record) => record.id);
  const unneededQuarantine = quarantined.filter((id) => !marked.has(idToHex(id)));
  const neededQuarantine = quarantined.filter((id) => marked.has(idToHex(id)));
  const sweepHeldBack = neededQuarantine.some((id) => missingKinds.get(idToHex(id)) !== "chunk");

  const unmarkedComplete = (await node.metadata.listCompleteIds()).filter((id) => !marked.has(idToHex(id)));
  const doomed: ObjectId[] = [];
  if (!sweepHeldBack) for (const key of unused) if (!marked.has(key)) doomed.push(idFromHex(key));

  let objectsDeleted = doomed.length;
  let quarantineDropped = unneededQuarantine.length;
  if (!dryRun) {
    // Completeness first: once it is gone, no commit can rely on what is about to be deleted.
    await node.metadata.unmarkComplete(unmarkedComplete);
    // The store re-checks the time of last use as it deletes: a push that touched an object
    // after it was chosen keeps it.
    objectsDeleted = await node.store.deleteUnusedSince(doomed, cutoffMs);
    quarantineDropped = await node.store.dropQuarantined(unneededQuarantine);
    await node.store.repack();
  }
  return {
    versionsPruned,
    versionsKept: starts.filter((s) => s.kind === "structured").length,
    objectsMarked: marked.size,
    objectsDeleted,
    bytesReclaimed: 0,
    quarantineDropped,
    quarantinedNeeded: neededQuarantine.length,
    sweepHeldBack,
    dryRun,
  };
}
