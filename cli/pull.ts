// dsync pull [DIR]: brings a directory to the folder's head (or --version).
import { terminalLines } from "../src/core/terminal-text.ts";
import { pull } from "../src/client/pull.ts";
import { createProgress, progressWanted, formatBytes } from "../src/client/progress.ts";
import { counted } from "../src/core/plural.ts";
import { printJson } from "./errors.ts";

export interface PullFlags {
  progress?: boolean;
  remote?: string;
  folder?: string;
  version?: string;
  rebind?: boolean;
  stale?: boolean;
  json?: boolean;
}

export async function pullCommand(dir: string | undefined, flags: PullFlags): Promise<number> {
  const report = await pull(dir ?? ".", {
    remote: flags.remote,
    folder: flags.folder,
    version: flags.version === undefined ? undefined : String(flags.version),
    rebind: flags.rebind === true,
    stale: flags.stale === true,
    progress: createProgress(progressWanted(flags)),
  });
  if (flags.json) {
    printJson(report);
    return 0;
  }
  const out: string[] = [];
  out.push(`pulled ${report.folder} from ${report.remote}: version ${report.version.slice(0, 12)}`);
  out.push(
    `  wrote ${counted(report.files_written, "file")} (${formatBytes(report.bytes_written)}), removed ${counted(report.paths_removed, "path")}; ` +
      `fetched ${counted(report.chunks_fetched, "chunk")} (${formatBytes(report.bytes_fetched)}), reused ${counted(report.chunks_reused, "local chunk")}, ` +
      `${counted(report.requests, "request")}, ${(report.elapsed_ms / 1000).toFixed(2)} s`,
  );
  for (const conflict of report.conflicts) {
    out.push(`  conflict at ${conflict.path}: ${conflict.reason}${conflict.keptAs ? `; your version is now ${conflict.keptAs}` : ""}`);
  }
  for (const skipped of report.skipped) out.push(`  skipped ${skipped.path}: ${skipped.reason}`);
  if (!report.recorded) {
    out.push(`  not recorded as synced: ${counted(report.held_back, "path")} could not be written; the next pull finishes this one (push waits for it)`);
  } else if (report.held_back > 0) {
    out.push(`  ${counted(report.held_back, "skipped path")} held back: the next pull retries them, and a push keeps the node's version there`);
  }
  process.stdout.write(terminalLines(out)); // paths and names escaped (core/terminal-text.ts)
  return 0;
}
