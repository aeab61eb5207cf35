// The kill sweep's tally: what was tried, where the kills landed, and every failure by point.
export const PHASES = ["push", "pull", "gc", "replication", "client-pull", "repair"] as const;
export type Phase = (typeof PHASES)[number];

/** Where a kill landed relative to the operation it was aimed at. */
export type Landing = "before" | "during" | "after";

export interface SweepSummary {
  seed: number;
  points: number;
  pointsByPhase: Partial<Record<Phase, number>>;
  /** Per phase: kills that landed before the operation reached the node, during it, after it ended. */
  landingsByPhase: Partial<Record<Phase, Record<Landing, number>>>;
  /** SIGKILLs sent to a live process (a client that had already exited is not killed). */
  killsDelivered: number;
  /** Pushes whose client exited 0 with a version id. */
  acknowledgedVersions: number;
  /** Acknowledged versions missing from the log, or with another root; also any version once listed that vanished. */
  versionsLost: number;
  /** Pushes killed before their acknowledgement whose version landed anyway (checked whole by a pull). */
  unacknowledgedLanded: number;
  /** Killed pushes that left a version that is neither the whole pushed tree nor a merge with it. */
  partialPushes: number;
  verifyRuns: number;
  verifyFailures: number;
  sqliteFilesChecked: number;
  integrityFailures: number;
  /** Temp files visible in a pulled directory after the next pull. */
  leftoverTempFiles: number;
  /** Pulls after a killed pull that failed. */
  nextPullFailures: number;
  /** Pulled directories that did not match their version (dsync diff, or the tree pushed). */
  mismatchedPulls: number;
  /** Real pulls of acknowledged versions compared file by file with what was pushed. */
  fullPullsCompared: number;
  replicationFailures: number;
  repairFailures: number;
  /** Operations no kill touched that failed (each ends its epoch early). */
  operationFailures: number;
  restarts: number;
  /** Nodes that did not come back after a kill. */
  restartFailures: number;
  epochs: number;
  wallMs: number;
  /** Median wall time of a point (kill, restart and checks included). */
  pointMsMedian: number;
  calibration: Record<string, { durationMs: number; bytes: number }>;
  /** One line per failed check: point, phase, what. Empty means the sweep passed. */
  failures: string[];
}

export function emptySummary(seed: number): SweepSummary {
  return {
    seed,
    points: 0,
    pointsByPhase: {},
    landingsByPhase: {},
    killsDelivered: 0,
    acknowledgedVersions: 0,
    versionsLost: 0,
    unacknowledgedLanded: 0,
    partialPushes: 0,
    verifyRuns: 0,
    verifyFailures: 0,
    sqliteFilesChecked: 0,
    integrityFailures: 0,
    leftoverTempFiles: 0,
    nextPullFailures: 0,
    mismatchedPulls: 0,
    fullPullsCompared: 0,
    replicationFailures: 0,
    repairFailures: 0,
    operationFailures: 0,
    restarts: 0,
    restartFailures: 0,
    epochs: 0,
    wallMs: 0,
    pointMsMedian: 0,
    calibration: {},
    failures: [],
  };
}

export function countLanding(summary: SweepSummary, phase: Phase, landing: Landing): void {
  const byPhase = (summary.landingsByPhase[phase] ??= { before: 0, during: 0, after: 0 });
  byPhase[landing]++;
}

export function formatSummary(summary: SweepSummary): string {
  const lines: string[] = [];
  const phases = PHASES.filter((phase) => summary.pointsByPhase[phase] !== undefined);
  lines.push(`kill sweep, seed ${summary.seed}: ${summary.points} points in ${(summary.wallMs / 1000).toFixed(1)} s (median point ${summary.pointMsMedian} ms), ${summary.epochs} epochs`);
  for (const phase of phases) {
    const landed = summary.landingsByPhase[phase] ?? { before: 0, during: 0, after: 0 };
    lines.push(`  ${phase.padEnd(12)} ${String(summary.pointsByPhase[phase]).padStart(5)} points: killed before ${landed.before}, during ${landed.during}, after ${landed.after}`);
  }
  lines.push(`  kills delivered         ${summary.killsDelivered} (restarts ${summary.restarts}, failed restarts ${summary.restartFailures})`);
  lines.push(`  acknowledged versions   ${summary.acknowledgedVersions}`);
  lines.push(`  versions lost           ${summary.versionsLost}`);
  lines.push(`  unacknowledged landed   ${summary.unacknowledgedLanded} (whole); partial pushes ${summary.partialPushes}`);
  lines.push(`  verify failures         ${summary.verifyFailures} of ${summary.verifyRuns} runs`);
  lines.push(`  integrity failures      ${summary.integrityFailures} (${summary.sqliteFilesChecked} SQLite files checked)`);
  lines.push(`  leftover temp files     ${summary.leftoverTempFiles}`);
  lines.push(`  next-pull failures      ${summary.nextPullFailures}; pulled trees not matching their version ${summary.mismatchedPulls}`);
  lines.push(`  full pulls compared     ${summary.fullPullsCompared}`);
  lines.push(`  replication failures    ${summary.replicationFailures}; repair failures ${summary.repairFailures}`);
  lines.push(`  operations failed with no kill ${summary.operationFailures}`);
  for (const [key, value] of Object.entries(summary.calibration)) lines.push(`  calibration ${key}: ${Math.round(value.durationMs)} ms, ${value.bytes} B`);
  lines.push(summary.failures.length === 0 ? "  PASS: nothing lost, every check clean" : `  FAIL: ${summary.failures.length} failed checks`);
  for (const failure of summary.failures) lines.push(`    ${failure}`);
  return lines.join("\n");
}
