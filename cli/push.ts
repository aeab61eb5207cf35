// dsync push [DIR]: sends a directory to a node as a new version of its folder.
import { terminalLines } from "../src/core/terminal-text.ts";
import { push } from "../src/client/push.ts";
import { createProgress, formatBytes } from "../src/client/progress.ts";
import { parseCount, printJson } from "./errors.ts";

export interface PushFlags {
  remote?: string;
  folder?: string;
  message?: string;
  json?: boolean;
  keepVersions?: string;
  keepDays?: string;
}

export async function pushCommand(dir: string | undefined, flags: PushFlags): Promise<number> {
  const report = await push(dir ?? ".", {
    remote: flags.remote,
    folder: flags.folder,
    message: flags.message === undefined ? undefined : String(flags.message),
    keepVersions: parseCount(flags.keepVersions, "--keep-versions"),
    keepDays: parseCount(flags.keepDays, "--keep-days"),
    progress: createProgress(!flags.json),
  });
  if (flags.json) {
    printJson(report);
    return 0;
  }
  const out: string[] = [];
  out.push(`pushed ${report.folder} to ${report.remote}: version ${report.version.slice(0, 12)}`);
  out.push(
    `  ${report.files} files, ${formatBytes(report.bytes)} in ${report.chunks} chunks; ` +
      `sent ${report.chunks_sent} chunks and ${report.objects_sent - report.chunks_sent} nodes, ${formatBytes(report.bytes_sent)} ` +
      `(${formatBytes(report.wire_bytes_sent)} on the wire, ${report.requests} requests, ${(report.elapsed_ms / 1000).toFixed(2)} s)`,
  );
  if (report.merged) out.push(`  the folder had moved on: merged with the newer head (this push is ${report.pushed.slice(0, 12)}); pull to get the other changes`);
  for (const conflict of report.conflicts) {
    const lost = conflict.losers.map((l) => (l ? `${l.kind} ${l.id ? l.id.slice(0, 12) : l.target}` : "")).join(", ");
    out.push(`  conflict at ${conflict.path} (${conflict.kind}): ${conflict.winner === "theirs" ? "this push's version" : "the node's version"} kept; overwritten ${lost} stays in history`);
  }
  for (const skipped of report.skipped) out.push(`  skipped ${skipped.path}: ${skipped.reason}`);
  process.stdout.write(terminalLines(out)); // paths and names escaped (core/terminal-text.ts)
  return 0;
}
