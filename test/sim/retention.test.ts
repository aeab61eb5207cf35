// The replication simulation with the retention fault on (SimConfig.retention in cluster.ts):
// during the fault phase random live nodes keep only 2 to 6 versions of one of their folders,
// and garbage collections with 1-4 s of grace (simulated) run on random live nodes, through the
// faults and after healing, then once more on every node with no grace before the checks.
//
// Retention is local, so an acknowledged version may be missing from some nodes. The checks:
// - every node agrees on every folder's head and root once healed (a run that never settles
//   fails), and heads never move backwards by version vector;
// - every head's whole tree is stored, after every collection and at the end (node.verify());
// - the vector rules hold for every recorded version, and no two versions share a dot;
// - every acknowledged version is recorded on every node, or that node pruned it, or retention
//   on some node pruned it or a version after it (the history it would have come by);
// - every acknowledged write is covered by the final head's version vector.
//
// Seeds: 1-60 by default (about 12 s). SIM_RETENTION_SEEDS=N runs seeds 1..N, =A-B seeds A..B:
//   SIM_RETENTION_SEEDS=500 node_modules/.bin/bun test test/sim/retention.test.ts
//   SIM_RETENTION_SEEDS=17-17 node_modules/.bin/bun test test/sim/retention.test.ts
// A failing seed prints one line with its first failure and how to rerun it alone; seeds that
// once failed get a named test in regressions.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { failureLine, retentionOverrides, runSimulation, seedsFromEnv } from "./cluster.ts";

const DEFAULT_SEEDS = 60;
const VARIABLE = "SIM_RETENTION_SEEDS";
const seeds = seedsFromEnv(process.env[VARIABLE], DEFAULT_SEEDS, VARIABLE);
const range = `${seeds[0]}-${seeds.at(-1)}`;

// As in simulation.test.ts: name the seed that was running if the test runner ends the test.
let running: number | null = null;
afterEach(() => {
  if (running !== null) console.error(`simulation seed ${running} failed: it was running when the test ended (see the error above); rerun with ${VARIABLE}=${running}-${running}`);
  running = null;
});

describe("replication simulation with retention and garbage collection", () => {
  test(
    `seeds ${range} converge with whole heads while nodes prune and collect (${VARIABLE}=N or A-B for other seeds)`,
    async () => {
      const started = performance.now();
      const failed: number[] = [];
      const totals = {
        pushes: 0,
        partitions: 0,
        crashes: 0,
        merges: 0,
        settings: 0,
        collections: 0,
        versionsPruned: 0,
        objectsDeleted: 0,
        acksPrunedHere: 0,
        acksCutUpstream: 0,
        mergesOverPrunedHistory: 0,
        pullsRefused: 0,
      };
      let slowestAgreementMs = 0;
      for (const seed of seeds) {
        running = seed;
        const report = await runSimulation(seed, retentionOverrides());
        running = null;
        if (report.failures.length > 0) {
          console.error(failureLine(report, "", VARIABLE));
          failed.push(seed);
        }
        const r = report.retention;
        totals.pushes += report.pushes.acknowledged;
        totals.partitions += report.faults.partitions;
        totals.crashes += report.faults.crashes;
        totals.merges += report.merges.replication;
        totals.settings += r.settings;
        totals.collections += r.collections;
        totals.versionsPruned += r.versionsPruned;
        totals.objectsDeleted += r.objectsDeleted;
        totals.acksPrunedHere += r.acksPrunedHere;
        totals.acksCutUpstream += r.acksCutUpstream;
        totals.mergesOverPrunedHistory += r.mergesOverPrunedHistory;
        totals.pullsRefused += r.pullsRefusedForCollectedVersion + r.pullsRefusedForCollectedTree;
        slowestAgreementMs = Math.max(slowestAgreementMs, report.agreedAfterHealMs ?? 0);
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `simulation with retention: ${seeds.length} seeds (${range}) in ${seconds} s; ${totals.pushes} pushes acknowledged, ` +
          `${totals.partitions} partitions, ${totals.crashes} crashes, ${totals.merges} replication merges ` +
          `(${totals.mergesOverPrunedHistory} over a merge standing in for its pruned parents); ${totals.settings} retention settings, ` +
          `${totals.collections} collections pruning ${totals.versionsPruned} versions and deleting ${totals.objectsDeleted} objects, ` +
          `${totals.pullsRefused} pulls refused for objects collected meanwhile; acknowledged versions missing at the end: ` +
          `${totals.acksPrunedHere} pruned there, ${totals.acksCutUpstream} cut off by pruning elsewhere; ` +
          `slowest agreement ${slowestAgreementMs} ms after healing; ${failed.length} failed${failed.length ? `: ${failed.join(", ")}` : ""}`,
      );
      expect(failed).toEqual([]);
      // The runs must reach the paths they are there to test.
      if (seeds.length >= 20) {
        expect(totals.partitions).toBeGreaterThan(0);
        expect(totals.crashes).toBeGreaterThan(0);
        expect(totals.versionsPruned).toBeGreaterThan(0);
        expect(totals.objectsDeleted).toBeGreaterThan(0);
        expect(totals.acksPrunedHere).toBeGreaterThan(0);
        expect(totals.acksCutUpstream).toBeGreaterThan(0);
        expect(totals.mergesOverPrunedHistory).toBeGreaterThan(0);
      }
    },
    Math.max(60_000, seeds.length * 3_000),
  );

  test("one retention seed run twice gives the same trace and the same heads", async () => {
    const first = await runSimulation(17, retentionOverrides());
    const second = await runSimulation(17, retentionOverrides());
    expect(first.failures).toEqual([]);
    expect(first.retention.objectsDeleted).toBeGreaterThan(0);
    expect(second.traceHash).toBe(first.traceHash);
    expect(second.heads).toEqual(first.heads);
  }, 60_000);
});
