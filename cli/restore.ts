// dsync restore VERSION [DIR]: makes an earlier version the folder's content again, as a new
// version (history is kept), then brings DIR to it unless --no-pull.
import { pull } from "../src/client/pull.ts";
import { createProgress } from "../src/client/progress.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { parseMessage, printJson } from "./errors.ts";
import { targetFor } from "./remote-target.ts";

export async function restoreCommand(
  version: string,
  dir: string | undefined,
  flags: { remote?: string; folder?: string; message?: string; json?: boolean; pull?: boolean },
): Promise<number> {
  const { remote, folder } = targetFor(dir, flags);
  const result = await remote.restore(folder, String(version), parseMessage(flags.message));
  const pulled = flags.pull === false ? null : await pull(dir ?? ".", { remote: remote.baseUrl, folder, progress: createProgress(!flags.json) });
  if (flags.json) printJson({ folder, restored: String(version), version: result.version, pull: pulled });
  else {
    const lines = [`restored ${folder} to the content of ${String(version)}: new version ${result.version.slice(0, 12)}`];
    if (pulled) lines.push(`  ${dir ?? "."} now matches it (${pulled.files_written} files written, ${pulled.paths_removed} removed)`);
    process.stdout.write(terminalLines(lines));
  }
  return 0;
}
