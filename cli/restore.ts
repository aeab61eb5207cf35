// dsync restore VERSION [DIR]: makes an earlier version the folder's content again, as a new
// version (history is kept), then brings DIR to it unless --no-pull.
import { compare } from "../src/client/compare.ts";
import { readSyncState } from "../src/client/local-state.ts";
import { pull, type PullReport } from "../src/client/pull.ts";
import { createProgress, progressWanted } from "../src/client/progress.ts";
import { RemoteNode } from "../src/client/remote.ts";
import { clientToken, resolveSyncTarget } from "../src/client/sync-target.ts";
import { counted } from "../src/core/plural.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { parseMessage, printJson } from "./errors.ts";
import { targetFor } from "./remote-target.ts";

/**
 * The restore is recorded on the node, but DIR does not match it: local changes were kept (a
 * file changed here since the last sync is never overwritten). Not 0, so a script does not take
 * DIR for the restored content; not 1, since the new version exists and running again is safe.
 * The same code as a push that could not read some paths.
 */
export const EXIT_RESTORED_NOT_MATCHING = 3;

/** A path where DIR differs from the restored version, and why (the pull's reason when it gave one). */
export interface KeptDifference {
  path: string;
  /** A (only here), D (only in the version), M (content differs), T (kind differs). */
  change: "A" | "D" | "M" | "T";
  reason: string;
}

export async function restoreCommand(
  version: string,
  dir: string | undefined,
  flags: { remote?: string; folder?: string; message?: string; json?: boolean; pull?: boolean; rebind?: boolean; progress?: boolean },
): Promise<number> {
  const directory = dir ?? ".";
  const willPull = flags.pull !== false;
  // A pull into DIR must be allowed before anything changes on the node.
  const { remote, folder } = willPull
    ? (() => {
        const target = resolveSyncTarget(directory, readSyncState(directory), flags);
        return { remote: new RemoteNode(target.remote, clientToken()), folder: target.folder };
      })()
    : targetFor(dir, flags);
  const message = parseMessage(flags.message);
  const result = await remote.restore(folder, String(version), message);
  const pulled = willPull ? await pullRestored(directory, remote.baseUrl, folder, result.version, flags) : null;
  // Against what the pull brought DIR to: the head, which a push from elsewhere may have moved past the restore.
  const kept = pulled ? await differencesKept(directory, `${remote.baseUrl}/${encodeURIComponent(folder)}@${pulled.version}`, pulled) : [];
  const matches = pulled !== null && kept.length === 0;
  if (flags.json) printJson({ folder, restored: String(version), version: result.version, matches: pulled ? matches : null, kept, pull: pulled });
  else {
    const lines = [`restored ${folder} to the content of ${String(version)}: new version ${result.version.slice(0, 12)}`];
    if (pulled) {
      const work = `${counted(pulled.files_written, "file")} written, ${counted(pulled.paths_removed, "path")} removed`;
      if (pulled.version !== result.version) lines.push(`  the folder moved on since: ${directory} was brought to its head, ${pulled.version.slice(0, 12)}`);
      if (matches) lines.push(`  ${directory} now matches it (${work})`);
      else {
        lines.push(`  ${directory} does not match it: ${counted(kept.length, "local change")} kept (${work})`);
        for (const difference of kept) lines.push(`  ${difference.change} ${difference.path}: ${difference.reason}`);
        lines.push(`  push ${directory} to keep these changes in the folder, or remove them and pull to match the version`);
      }
    }
    process.stdout.write(terminalLines(lines)); // paths and names escaped (core/terminal-text.ts)
  }
  return pulled && !matches ? EXIT_RESTORED_NOT_MATCHING : 0;
}

/** The pull after the restore: if it fails, the new version exists all the same, and the message says so. */
async function pullRestored(directory: string, remoteUrl: string, folder: string, version: string, flags: { json?: boolean; progress?: boolean; rebind?: boolean }) {
  try {
    return await pull(directory, { remote: remoteUrl, folder, rebind: flags.rebind === true, progress: createProgress(progressWanted(flags)) });
  } catch (error) {
    throw new Error(
      `restored ${folder} on the node (new version ${version.slice(0, 12)}), but bringing ${directory} to it failed: ${(error as Error).message}; ` +
        `run dsync pull ${directory} to finish`,
    );
  }
}

/**
 * Where DIR still differs from the version after the pull, each with the pull's reason when it
 * named the path (a conflict kept, a path skipped), else that it was changed here since the last
 * sync. Measured, not inferred: a pull keeps local changes it has no reason to report.
 */
async function differencesKept(directory: string, versionSpec: string, pulled: PullReport): Promise<KeptDifference[]> {
  // From the version to DIR: added is what only DIR holds.
  const report = await compare(versionSpec, directory);
  const reasons = new Map<string, string>();
  for (const skipped of pulled.skipped) reasons.set(skipped.path, `not written: ${skipped.reason}`);
  for (const conflict of pulled.conflicts) {
    reasons.set(conflict.path, conflict.reason);
    if (conflict.keptAs) reasons.set(conflict.keptAs, `your version of ${conflict.path}, kept as a conflict copy (${conflict.reason})`);
  }
  const differences: KeptDifference[] = [];
  const add = (paths: string[], change: KeptDifference["change"]) => {
    for (const path of paths) differences.push({ path, change, reason: reasons.get(path) ?? "changed here since the last sync; kept" });
  };
  add(report.added, "A");
  add(report.removed, "D");
  add(report.modified, "M");
  add(report.typeChanged, "T");
  return differences.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
