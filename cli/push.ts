// dsync push [DIR]: sends a directory to a node as a new version of its folder.
import { terminalLines } from "../src/core/terminal-text.ts";
import { push } from "../src/client/push.ts";
import { createProgress, progressWanted, formatBytes } from "../src/client/progress.ts";
import { DEFAULT_DELETION_LIMITS } from "../src/client/deletion-guard.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { counted } from "../src/core/plural.ts";
import { parseCount, parseMessage, printJson } from "./errors.ts";

/**
 * The push committed, but some paths could not be read (their last synced entries were kept).
 * Not 0: like restic's 3 and rsync's 23, a script must not take it for a complete copy; not 1:
 * the version exists, and running again is safe.
 */
export const EXIT_PUSHED_WITH_UNREADABLE = 3;

export interface PushFlags {
  progress?: boolean;
  remote?: string;
  folder?: string;
  message?: string;
  json?: boolean;
  keepVersions?: string;
  keepDays?: string;
  allowDeletes?: boolean;
  maxDeletePercent?: string;
  maxDeleteMinFiles?: string;
  rebind?: boolean;
}

function deletionLimits(flags: PushFlags) {
  const percent = parseCount(flags.maxDeletePercent, "--max-delete-percent");
  if (percent !== undefined && percent > 100) throw new UsageError(`--max-delete-percent takes a whole number from 0 to 100, got ${percent}`);
  return {
    maxDeletePercent: percent ?? DEFAULT_DELETION_LIMITS.maxDeletePercent,
    minFiles: parseCount(flags.maxDeleteMinFiles, "--max-delete-min-files") ?? DEFAULT_DELETION_LIMITS.minFiles,
  };
}

export async function pushCommand(dir: string | undefined, flags: PushFlags): Promise<number> {
  const report = await push(dir ?? ".", {
    remote: flags.remote,
    folder: flags.folder,
    message: parseMessage(flags.message),
    keepVersions: parseCount(flags.keepVersions, "--keep-versions"),
    keepDays: parseCount(flags.keepDays, "--keep-days"),
    progress: createProgress(progressWanted(flags)),
    allowDeletes: flags.allowDeletes === true,
    rebind: flags.rebind === true,
    deletionLimits: deletionLimits(flags),
  });
  const code = report.unreadable > 0 ? EXIT_PUSHED_WITH_UNREADABLE : 0;
  if (report.unreadable > 0) {
    const paths = report.unreadable === 1 ? "1 path could not be read; the pushed version keeps its" : `${report.unreadable} paths could not be read; the pushed version keeps their`;
    process.stderr.write(terminalLines([`dsync: warning: ${paths} last synced content (exit ${code})`]));
  }
  if (flags.json) {
    printJson(report);
    return code;
  }
  const out: string[] = [];
  out.push(`pushed ${report.folder} to ${report.remote}: version ${report.version.slice(0, 12)}`);
  out.push(
    `  ${counted(report.files, "file")}, ${formatBytes(report.bytes)} in ${counted(report.chunks, "chunk")}; ` +
      `sent ${counted(report.chunks_sent, "chunk")} and ${counted(report.objects_sent - report.chunks_sent, "node")}, ${formatBytes(report.bytes_sent)} ` +
      `(${formatBytes(report.wire_bytes_sent)} on the wire, ${counted(report.requests, "request")}, ${(report.elapsed_ms / 1000).toFixed(2)} s)`,
  );
  if (report.merged) out.push(`  the folder had moved on: merged with the newer head (this push is ${report.pushed.slice(0, 12)}); pull to get the other changes`);
  for (const conflict of report.conflicts) {
    const lost = conflict.losers.map((l) => (l ? `${l.kind} ${l.id ? l.id.slice(0, 12) : l.target}` : "")).join(", ");
    out.push(`  conflict at ${conflict.path} (${conflict.kind}): ${conflict.winner === "theirs" ? "this push's version" : "the node's version"} kept; overwritten ${lost} stays in history`);
  }
  for (const skipped of report.skipped) out.push(`  skipped ${skipped.path}: ${skipped.reason}`);
  if (report.ignored > 0 || report.kept > 0) {
    out.push(`  ${counted(report.ignored, "ignored path")}; ${counted(report.kept, "path")} not read kept as last synced`);
  }
  process.stdout.write(terminalLines(out)); // paths and names escaped (core/terminal-text.ts)
  return code;
}
