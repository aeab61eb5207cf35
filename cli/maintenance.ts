// dsync verify and dsync gc: against a running node (--remote) or a data folder directly (--data,
// with the node stopped).
import { DsyncNode } from "../src/node/node.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { parseCount, printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

async function withLocalNode<T>(dataDir: string, run: (node: DsyncNode) => Promise<T>): Promise<T> {
  if (!DsyncNode.exists(dataDir)) throw new UsageError(`${dataDir} is not a dsync data folder`);
  const node = await DsyncNode.open({ dataDir });
  try {
    return await run(node);
  } finally {
    await node.close();
  }
}

export async function verifyCommand(flags: { remote?: string; data?: string; json?: boolean }): Promise<number> {
  const report = flags.data ? await withLocalNode(flags.data, (node) => node.verify()) : await remoteFor(flags).verify();
  const healthy = report.corrupt.length === 0 && report.missing.length === 0 && report.structure.length === 0 && report.metadataIntegrity === "ok";
  if (flags.json) printJson({ healthy, ...report });
  else {
    const lines = [
      `checked ${report.objectsChecked} objects: ${report.corrupt.length} corrupt, ${report.missing.length} missing, ${report.structure.length} invalid trees; metadata ${report.metadataIntegrity}`,
    ];
    for (const id of report.corrupt) lines.push(`  corrupt ${id}`);
    for (const id of report.missing) lines.push(`  missing ${id}`);
    for (const p of report.structure) lines.push(`  invalid tree in folder ${p.folder}, version ${p.version}: object ${p.object} at ${JSON.stringify(p.path)}: ${p.problem}`);
    process.stdout.write(terminalLines(lines));
  }
  return healthy ? 0 : 1;
}

export async function gcCommand(flags: { remote?: string; data?: string; graceMs?: string; dryRun?: boolean; json?: boolean }): Promise<number> {
  const options = { graceMs: parseCount(flags.graceMs, "--grace-ms"), dryRun: flags.dryRun === true };
  const report = flags.data ? await withLocalNode(flags.data, (node) => node.gc(options)) : await remoteFor(flags).gc(options);
  if (flags.json) printJson(report);
  else {
    const r = report as Record<string, unknown>;
    process.stdout.write(terminalLines([
      `${r.dryRun ? "would prune" : "pruned"} ${r.versionsPruned} versions, ${r.dryRun ? "would delete" : "deleted"} ${r.objectsDeleted} objects ` +
        `(${r.objectsMarked} reachable kept), reclaimed ${r.bytesReclaimed} bytes`,
    ]));
  }
  return 0;
}
