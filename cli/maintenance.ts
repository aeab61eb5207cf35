// dsync verify and dsync gc: against a running node (--remote) or a data folder directly (--data,
// with the node stopped).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sqliteIntegrity } from "../src/node/database-check.ts";
import { DsyncNode, type VerifyReport } from "../src/node/node.ts";
import { isDataFolder, openNode } from "../src/assemble.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { metadataLocationProblem } from "../src/node/metadata-location.ts";
import { counted } from "../src/core/plural.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { parseCount, printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

/** With --data: where the stopped node's metadata is, --metadata else DSYNC_METADATA (default: SQLite in the data folder). */
function metadataOf(flags: { metadata?: string }): string | undefined {
  const metadata = flags.metadata === undefined ? process.env.DSYNC_METADATA || undefined : String(flags.metadata);
  if (metadata === undefined) return undefined;
  const problem = metadataLocationProblem(metadata);
  if (problem) throw new UsageError(`--metadata: ${problem}`);
  return metadata;
}

async function withLocalNode<T>(dataDir: string, metadata: string | undefined, run: (node: DsyncNode) => Promise<T>): Promise<T> {
  if (!isDataFolder(dataDir)) {
    throw new Error(`${dataDir} is not a dsync data folder (it has no metadata.sqlite): name the --data folder of a stopped node`);
  }
  const node = await openNode({ dataDir, metadata });
  if (node.startupNotes.length > 0) process.stderr.write(terminalLines(node.startupNotes));
  try {
    return await run(node);
  } finally {
    await node.close();
  }
}

export async function verifyCommand(flags: { remote?: string; data?: string; metadata?: string; json?: boolean; repair?: boolean }): Promise<number> {
  const options = { repair: flags.repair === true };
  const metadata = metadataOf(flags);
  let report: VerifyReport;
  try {
    report = flags.data ? await withLocalNode(flags.data, metadata, (node) => node.verify(options)) : await remoteFor(flags).verify(options);
  } catch (error) {
    // The check of the folder's own SQLite files, for a node that keeps its metadata there.
    const onSqlite = (metadata === undefined || metadata === "sqlite") && flags.data !== undefined && existsSync(join(flags.data, "metadata.sqlite"));
    if (flags.data && onSqlite) return reportDamagedDatabases(flags.data, error, flags.json === true);
    throw error;
  }
  // With --repair, what was found and then repaired is healthy; anything still unrepaired is not.
  const found = options.repair ? 0 : report.corrupt.length + report.missing.length;
  const healthy =
    found === 0 && report.unrepairable.length === 0 && report.structure.length === 0 && report.metadataIntegrity === "ok" && report.indexIntegrity === "ok";
  if (flags.json) printJson({ healthy, ...report });
  else {
    const lines = [
      `checked ${counted(report.objectsChecked, "object")}: ${report.corrupt.length} corrupt, ${report.missing.length} missing, ${counted(report.structure.length, "invalid tree")}; metadata ${report.metadataIntegrity}`,
    ];
    for (const id of report.corrupt) lines.push(`  corrupt ${id}`);
    for (const id of report.missing) lines.push(`  missing ${id}`);
    for (const p of report.structure) lines.push(`  invalid tree in folder ${p.folder}, version ${p.version}: object ${p.object} at ${JSON.stringify(p.path)}: ${p.problem}`);
    if (report.indexIntegrity !== "ok") lines.push(`object index: ${report.indexIntegrity}`);
    lines.push(...repairLines(report, options.repair));
    process.stdout.write(terminalLines(lines));
  }
  return healthy ? 0 : 1;
}

/**
 * The data folder could not be opened or checked: SQLite's own check of each database, opened
 * on its own, says which is damaged. Rethrows when both are intact (the error is something else).
 */
function reportDamagedDatabases(dataDir: string, error: unknown, json: boolean): number {
  const metadataIntegrity = sqliteIntegrity(join(dataDir, "metadata.sqlite"));
  const indexIntegrity = sqliteIntegrity(join(dataDir, "objects", "index.sqlite"));
  if (metadataIntegrity === "ok" && indexIntegrity === "ok") throw error;
  const message = (error as Error).message ?? String(error);
  if (json) printJson({ healthy: false, error: message, metadataIntegrity, indexIntegrity });
  else {
    process.stdout.write(
      terminalLines([`cannot check ${dataDir}: ${message}`, `metadata database: ${metadataIntegrity}`, `object index: ${indexIntegrity}`]),
    );
  }
  return 1;
}

/** The repair part of verify's text output: what was repaired, and what remains with the versions that need it. */
function repairLines(report: VerifyReport, repairAsked: boolean): string[] {
  const lines: string[] = [];
  const remaining = report.unrepairable.length;
  if (repairAsked && report.repairFrom === "none") lines.push(`repair: no peers to fetch from; ${remaining} unrepairable`);
  else if (repairAsked) lines.push(`repair from peers: ${report.repaired.length} repaired, ${remaining} unrepairable`);
  else if (remaining > 0) lines.push(`${counted(remaining, "object needs", "objects need")} repair (dsync verify --repair fetches them from the node's peers)`);
  for (const id of report.repaired) lines.push(`  repaired ${id}`);
  for (const damaged of report.unrepairable) {
    const where = damaged.affected.map((a) => `${a.folder}@${a.version.slice(0, 12)}`).join(", ");
    lines.push(`  ${repairAsked ? "unrepairable" : "unrepaired"} ${damaged.id}${where ? ` needed by ${where}` : ""}`);
  }
  if (report.quarantined > 0) lines.push(`quarantined: ${report.quarantined} (${report.quarantinedUnneeded} needed by no kept version)`);
  return lines;
}

export async function gcCommand(flags: { remote?: string; data?: string; metadata?: string; graceMs?: string; dryRun?: boolean; json?: boolean }): Promise<number> {
  const options = { graceMs: parseCount(flags.graceMs, "--grace-ms"), dryRun: flags.dryRun === true };
  const metadata = metadataOf(flags);
  const report = flags.data ? await withLocalNode(flags.data, metadata, (node) => node.gc(options)) : await remoteFor(flags).gc(options);
  if (flags.json) printJson(report);
  else {
    const r = report as Record<string, unknown> & { versionsPruned: number; objectsDeleted: number; objectsMarked: number; bytesReclaimed: number };
    // A dry run reclaims nothing: it says what a real run would give back.
    const lines = [
      `${r.dryRun ? "would prune" : "pruned"} ${counted(r.versionsPruned, "version")}, ${r.dryRun ? "would delete" : "deleted"} ${counted(r.objectsDeleted, "object")} ` +
        `(${counted(r.objectsMarked, "reachable object")} kept), ${r.dryRun ? "would reclaim" : "reclaimed"} ${counted(r.bytesReclaimed, "byte")}`,
    ];
    // Numbers only when present: an older node's report has no quarantine fields.
    if (typeof r.quarantineDropped === "number" && r.quarantineDropped > 0) {
      lines.push(`${r.dryRun ? "would forget" : "forgot"} ${counted(r.quarantineDropped, "corrupt object")} no kept version needs`);
    }
    if (r.sweepHeldBack === true && typeof r.quarantinedNeeded === "number") {
      lines.push(
        `nothing deleted: kept versions need ${counted(r.quarantinedNeeded, "corrupt object")} awaiting repair, and what lies below a corrupt tree or file node is unknown (dsync verify --repair, then gc again)`,
      );
    }
    process.stdout.write(terminalLines(lines));
  }
  return 0;
}
