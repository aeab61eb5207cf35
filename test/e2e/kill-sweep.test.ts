// A sample of the kill sweep (scripts/kill-sweep.ts) in the suite: the same code, about 20 points
// over every phase with a fixed seed. Where a kill lands (before, during or after the operation)
// depends on the machine's speed and never fails the test; a lost acknowledged version, a verify
// or integrity failure, a temp file left behind or a pulled tree that is not its version does.
import { expect, test } from "bun:test";
import { DEFAULT_PHASES, formatSummary, runKillSweep } from "../../scripts/kill-sweep.ts";

const SEED = 20261201;
const POINTS = 20;

test("kill sweep sample: SIGKILL at 20 seeded points loses nothing and leaves nothing half done", async () => {
  const summary = await runKillSweep({ seed: SEED, points: POINTS, epochPoints: 10, fullPullEvery: 5 });
  if (summary.failures.length > 0) console.error(formatSummary(summary));
  expect(summary.failures).toEqual([]);
  expect(summary.versionsLost).toBe(0);
  expect(summary.points).toBe(POINTS);
  // Every phase ran its share (the schedule depends on the seed only).
  for (const phase of DEFAULT_PHASES) expect(summary.pointsByPhase[phase]).toBeGreaterThanOrEqual(Math.floor(POINTS / DEFAULT_PHASES.length));
  expect(summary.killsDelivered).toBeGreaterThan(0);
  expect(summary.acknowledgedVersions).toBeGreaterThan(0);
  expect(summary.fullPullsCompared).toBeGreaterThan(0);
  expect(summary.sqliteFilesChecked).toBeGreaterThan(0);
}, 90_000);
