// dsync push [DIR]: sends a directory to a node as a new version of its folder.
import { terminalLines } from "../src/core/terminal-text.ts";
import { push } from "../src/client/push.ts";
import { createProgress, progressWanted, formatBytes } from "../src/client/progress.ts";
import { DEFAULT_DELETION_LIMITS } from "../src/client/deletion-guard.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { counted } from "../src/core/plural.ts";
import { parseCount, parseMessage, printJson } from "./errors.ts";
import { previewPush } from "../src/client/push-preview.ts";
import { ensureFolderModeFor, parseConsistency } from "../src/client/folder-mode.ts";
import { parseCompressSetting } from "../src/client/upload-compression.ts";

/**
 * The push committed, but some paths could not be read (their last synced entries were kept).
 * Not 0: like restic's 3 and rsync's 23, a script must not take it for a complete copy; not 1:
 * the version exists, and running again is safe.
 */
export const EXIT_PUSHED_WITH_UNREADABLE = 3;

export interface PushFlags {
  dryRun?: boolean;
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
  consistency?: string;
  compress?: string;
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
  const consistency = parseConsistency(flags.consistency);
  const compress = parseCompressSetting(flags.compress);
  if (consistency && flags.dryRun) throw new UsageError("--consistency makes the folder, which --dry-run does not: run dsync folder create first, or leave one out");
  if (flags.dryRun) return dryRun(dir ?? ".", flags);
  // The folder in the mode asked before anything is sent: in the other mode, nothing is pushed.
  if (consistency) {
    await ensureFolderModeFor(dir ?? ".", {
      remote: flags.remote,
      folder: flags.folder,
      rebind: flags.rebind === true,
      consistency,
      keepVersions: parseCount(flags.keepVersions, "--keep-versions"),
      keepDays: parseCount(flags.keepDays, "--keep-days"),
    });
  }
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
    compress,
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

/**
 * push --dry-run: lists what the push would send (new and changed paths), skip (paths not read,
 * with why) and delete, and what the node lacks; sends and records nothing. Exits as the push
 * would: 1 when the deletion guard would refuse it, 3 when some paths could not be read.
 */
async function dryRun(dir: string, flags: PushFlags): Promise<number> {
  const preview = await previewPush(dir, {
    remote: flags.remote,
    folder: flags.folder,
    rebind: flags.rebind === true,
    allowDeletes: flags.allowDeletes === true,
    deletionLimits: deletionLimits(flags),
    progress: createProgress(progressWanted(flags)),
  });
  const unreadable = preview.skipped.some((s) => s.cause === "unreadable");
  const code = preview.refused ? 1 : unreadable ? EXIT_PUSHED_WITH_UNREADABLE : 0;
  if (flags.json) {
    printJson(preview);
    return code;
  }
  const shown = (p: { path: string; kind: string }) => (p.kind === "dir" ? `${p.path}/` : p.path);
  const out: string[] = [];
  const base = preview.parent ? `on version ${preview.parent.slice(0, 12)}` : "a first push from here";
  out.push(`dry run: would push ${dir} to ${preview.remote}, folder ${preview.folder} (${base}); nothing sent, nothing recorded`);
  for (const p of preview.new) out.push(`  new      ${shown(p)}`);
  for (const p of preview.changed) out.push(`  changed  ${shown(p)}`);
  for (const p of preview.deleted) out.push(`  deleted  ${shown(p)}`);
  for (const s of preview.skipped) out.push(`  skipped  ${s.path}: ${s.reason}`);
  out.push(
    `  ${counted(preview.new.length, "new path")}, ${counted(preview.changed.length, "changed path")}, ${counted(preview.deleted.length, "deleted path")}, ` +
      `${counted(preview.skipped.length, "path")} skipped; would send ${counted(preview.chunks_to_send, "chunk")} and ` +
      `${counted(preview.objects_to_send - preview.chunks_to_send, "node")}, ${formatBytes(preview.bytes_to_send)}`,
  );
  if (preview.head !== null && preview.head !== preview.parent) {
    out.push(`  the folder's head on the node is ${preview.head.slice(0, 12)}, not this push's base: the node would merge the two (conflicts kept beside)`);
  }
  if (preview.refused) out.push(`  the push would be refused: ${preview.refused}`);
  process.stdout.write(terminalLines(out)); // paths and names escaped (core/terminal-text.ts)
  return code;
}
