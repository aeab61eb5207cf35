// Named strong simulation seeds, and the runs that show the checks can fail.
//
// A seed that fails in strong-simulation.test.ts gets a test here, with a comment on what
// broke, once the cause is fixed. Any change to the consensus code or the harness changes the
// course of every run (the seed drives every delay and choice): a pinned seed that still passes
// but no longer goes through what it is pinned for is picked again (the report says what each
// run went through).
import { describe, expect, test } from "bun:test";
import { runStrongSimulation, strongFailureLine, type StrongSimConfig, type StrongSimReport } from "./strong-cluster.ts";

/** Runs seeds from `first` until one fails in a way `matches` accepts (at most `count`); returns that report, or null. */
async function firstFailure(first: number, count: number, overrides: Partial<StrongSimConfig>, matches: RegExp): Promise<StrongSimReport | null> {
  for (let seed = first; seed < first + count; seed++) {
    const report = await runStrongSimulation(seed, overrides);
    if (report.failures.some((failure) => matches.test(failure))) return report;
  }
  return null;
}

/** Clients that push through any node, holding the folder or not, on a network that loses and duplicates messages but never splits; no crashes. */
const UNGUARDED_NO_SPLITS: Partial<StrongSimConfig> = {
  guardUnknownFolder: false,
  faults: { partition: 0, isolateLeader: 0, oneWay: 0, crash: 0, crashLeader: 0, crashInSave: 0, gracefulRestart: 0, pause: 0, clockJump: 0.2 },
};

describe("pinned strong simulation seeds", () => {
  // Failed (seed 1 of the first build, and most seeds since with the clients unguarded): a push
  // to a strong folder through a node that had not applied the folder's createFolder yet was
  // committed there as a new *eventual* folder and acknowledged; replication spread it, the log
  // later turned it strong, and the acknowledged push was not in the strong history ("acknowledged
  // push op-1 to ledger ((none) -> ...) is not in the history"). Fixed in node.ts (9e83a32): a
  // commit naming a folder the node does not hold first takes a read barrier, so it applies the
  // creation and goes the strong way. Seeds 4 (five nodes) and 11 (three) each send such a push;
  // with the barrier taken out both fail again. (Still open: a node whose Raft group is starting,
  // or on a side with no quorum, goes on without the barrier; the default runs keep clients off
  // nodes that do not hold the folder until that is fixed: guardUnknownFolder.)
  for (const [seed, nodes] of [
    [4, 5],
    [11, 3],
  ] as const) {
    test(`seed ${seed}: a push through a node that has not applied the strong folder's creation goes through the log`, async () => {
      const report = await runStrongSimulation(seed, UNGUARDED_NO_SPLITS);
      if (report.failures.length > 0) console.error(strongFailureLine(report));
      expect(report.failures).toEqual([]);
      expect(report.config.nodes).toBe(nodes);
      expect(report.operations.toUnknownFolder).toBeGreaterThan(0);
      expect(report.operations.pushesOk).toBeGreaterThan(5);
    }, 60_000);
  }
});

describe("the strong simulation's checks can fail", () => {
  // A disk that says "synced" before the Raft log's writes land (durable-metadata.ts's
  // acknowledgeEarly): a vote or an appended entry acknowledged and then lost at a crash. Slow
  // writes and frequent crashes, so many are in flight when a node dies.
  test("a disk that acknowledges the log's writes before they land is caught", async () => {
    const report = await firstFailure(
      1,
      30,
      {
        acknowledgeEarly: true,
        maxDiskMs: 150,
        healDeadlineMs: 10_000,
        faults: { partition: 0.2, isolateLeader: 0.3, oneWay: 0.2, crash: 0.9, crashLeader: 0.7, crashInSave: 0.05, gracefulRestart: 0, pause: 0, clockJump: 0 },
      },
      /two leaders in term|committed|went back|restarted (at|with)|overwrote|not linearizable|acknowledged push/,
    );
    expect(report).not.toBeNull();
    console.log(`caught, with the disk acknowledging early (this test's settings): ${strongFailureLine(report!)}`);
  }, 120_000);

  // Reads that skip the read barrier answer a follower's (or a deposed leader's) own head: stale
  // under partitions, and the linearizability check must say so.
  test("reads without the read barrier are caught as not linearizable", async () => {
    const report = await firstFailure(
      1,
      30,
      { staleReads: true, readShare: 0.6, faults: { partition: 0.8, isolateLeader: 0.7, oneWay: 0.2, crash: 0.1, crashLeader: 0.5, crashInSave: 0, gracefulRestart: 0, pause: 0.2, clockJump: 0 } },
      /not linearizable/,
    );
    expect(report).not.toBeNull();
    console.log(`caught, with reads skipping the barrier (this test's settings): ${strongFailureLine(report!)}`);
  }, 120_000);
});
