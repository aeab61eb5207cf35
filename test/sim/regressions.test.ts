// Named simulation seeds. A seed that fails in simulation.test.ts or retention.test.ts gets a
// test here, with a comment on what broke, once the cause is fixed.
//
// Without retention no seed has failed so far: 1-1000 at the default size, a few hundred more
// each with a harsh network (15% of messages lost, 10% delivered twice, 150 ms timeouts), with
// many crashes (most of them in the middle of a store write), and at 20-30 s of faults. The
// first seeds below are pinned because each goes through partitions, crashes and conflict
// copies together. They run with a fault decision at every chaos tick (partitionRate and
// crashRate 1), so partitions and crashes happen whatever course a run takes; conflict copies
// are checked too, as these seeds make dozens. Any change to the replication code or the
// harness changes the course of every run (the seed drives every delay and choice): if a run
// still passes but no longer makes a conflict copy, pick another seed (runSimulation's report
// says what each run went through). The same holds for the retention seeds and the counter
// each one checks: the three below were picked again (17 -> 1, 46 -> 8, 30 -> 26) when the
// node's metadata calls became asynchronous, which moved every run's course.
import { describe, expect, test } from "bun:test";
import { failureLine, retentionOverrides, runSimulation, type RetentionConfig, type SimConfig, type SimReport } from "./cluster.ts";

// These seeds were found before pushes streamed to the peers; without it they run the course they were pinned for.
const FAULTS_EVERY_TICK: Partial<SimConfig> = { partitionRate: 1, crashRate: 1, streamPushes: false };

async function run(seed: number): Promise<SimReport> {
  const report = await runSimulation(seed, FAULTS_EVERY_TICK);
  if (report.failures.length > 0) console.error(failureLine(report));
  expect(report.failures).toEqual([]);
  expect(report.faults.partitions).toBeGreaterThan(0);
  expect(report.faults.crashes).toBeGreaterThan(0);
  expect(report.merges.conflictCopies).toBeGreaterThan(0);
  expect(report.pushes.acknowledged).toBeGreaterThan(10);
  return report;
}

describe("pinned simulation seeds", () => {
  // Six nodes, one folder; several crashes land in the middle of store writes.
  test("seed 22: crashes mid-write between partitions, with conflicts", async () => {
    const report = await run(22);
    expect(report.config.nodes).toBe(6);
  });

  // The lossiest network of the default draws (6% of messages lost), a node joining late, restores.
  test("seed 21: a lossy network, a late joiner and restores, with conflicts", async () => {
    const report = await run(21);
    expect(report.config.network.dropRate).toBeGreaterThan(0.05);
  });

  // Two folders, clocks up to 30 s apart, messages lost and duplicated.
  test("seed 26: two folders and skewed clocks through partitions and crashes, with conflicts", async () => {
    const report = await run(26);
    expect(report.config.folders.length).toBe(2);
    expect(report.config.maxClockSkewMs).toBe(30_000);
  });
});

/** A retention run with other windows and grace than retention.test.ts uses. */
function retention(changes: Partial<RetentionConfig>): Partial<SimConfig> {
  return { retention: { ...retentionOverrides().retention!, ...changes } };
}

async function runRetention(seed: number, overrides: Partial<SimConfig>): Promise<SimReport> {
  const report = await runSimulation(seed, { streamPushes: false, ...overrides });
  if (report.failures.length > 0) console.error(failureLine(report, "", "SIM_RETENTION_SEEDS"));
  expect(report.failures).toEqual([]);
  expect(report.retention.versionsPruned).toBeGreaterThan(0);
  expect(report.retention.objectsDeleted).toBeGreaterThan(0);
  return report;
}

describe("pinned simulation seeds with retention", () => {
  // Failed in retention.test.ts (15 of seeds 1-60 did): "n1: head of docs moved from 91fdfef7d76c
  // {n1:6,...} to 34ed8d34a2c3 {n1:1,...} (concurrent)". A node's head was a replication merge,
  // one of whose parents (a merge holding the node's own writes) retention had pruned; the write
  // frontier skipped the missing parent, so the next replication merge left out those writes and
  // its vector did not cover the old head. Fixed in concurrent-merge.ts: a merge with a parent
  // missing stands for itself in the frontier. Six nodes, one folder, partitions and crashes.
  test("retention seed 1 (was 17): a merge over a merge whose parent was pruned keeps that parent's writes", async () => {
    const report = await runRetention(1, retentionOverrides());
    expect(report.retention.mergesOverPrunedHistory).toBeGreaterThan(0);
    expect(report.faults.partitions).toBeGreaterThan(0);
    expect(report.faults.crashes).toBeGreaterThan(0);
  });

  // The same failure on three nodes (n3 lost its own write n3:1 from its head's vector).
  test("retention seed 8 (was 46): the same on three nodes and two folders", async () => {
    const report = await runRetention(8, retentionOverrides());
    expect(report.config.nodes).toBe(3);
    expect(report.retention.mergesOverPrunedHistory).toBeGreaterThan(0);
  });

  // Failed with windows of 1-3 versions: "unhandled rejection: UserError: object 01cb82e80d12...
  // is not stored on this node" in Replicator.nudgeIfBehind. It lists the folders, then sends a
  // notice per folder, one round trip each; a later folder's listed head had meanwhile moved on
  // and been pruned and collected, and reading its vector threw outside any catch. Fixed in
  // replicator.ts (the read is inside the try). Seeds 88 and 130 failed the same way.
  test("retention seed 26 (was 30; keep 1-3 versions): a nudge meets a head collected since the listing", async () => {
    const report = await runRetention(26, retention({ keepVersions: [1, 3], setGapMs: [200, 800], gcGapMs: [100, 600] }));
    expect(report.config.folders.length).toBe(2);
    expect(report.retention.collectedVersionReads).toBeGreaterThan(0);
  });

  // Failed with a grace of 50-300 ms, shorter than a pull: "no agreement 120 s after healing:
  // folder photos: n1=206fc7cde351 n2=206fc7cde351 n3=643bb6f1b3a4". A pull stores the peer's
  // version objects, then fetches their trees; a collection in between deleted the version
  // objects (no kept version reached them yet), and integrateReplica, which checked only the
  // trees, recorded the versions and moved the head to one whose object was gone. Fixed in
  // node.ts: integrateReplica refuses versions whose objects are missing, and the pull is
  // retried. (Grace below a push's upload time also fails pushes, as designed, so the grace here
  // stays above the clients' 1-40 ms between upload and commit.)
  test("retention seed 9 (grace shorter than a pull): a version object collected before the pull integrates it", async () => {
    const report = await runRetention(9, retention({ keepVersions: [1, 4], setGapMs: [200, 800], gcGapMs: [100, 500], graceMs: [50, 300] }));
    expect(report.retention.pullsRefusedForCollectedVersion).toBeGreaterThan(0);
  });
});
