// dsync folder create NAME --consistency strong|eventual: a folder made in a consistency mode
// before anything is pushed to it.
import { terminalLines } from "../src/core/terminal-text.ts";
import { ensureFolderMode, parseConsistency } from "../src/client/folder-mode.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { parseCount, printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

export async function folderCommand(
  action: string,
  name: string,
  flags: { remote?: string; consistency?: string; keepVersions?: string; keepDays?: string; json?: boolean },
): Promise<number> {
  if (action !== "create") throw new UsageError(`unknown folder action ${JSON.stringify(action)}: dsync folder create NAME`);
  const consistency = parseConsistency(flags.consistency) ?? "eventual";
  const remote = remoteFor(flags);
  const folder = await ensureFolderMode(remote, String(name), {
    consistency,
    keepVersions: parseCount(flags.keepVersions, "--keep-versions"),
    keepDays: parseCount(flags.keepDays, "--keep-days"),
  });
  if (flags.json) {
    printJson(folder);
    return 0;
  }
  const what = folder.created ? "made" : "exists already as";
  const mode = folder.mode === "eventual" ? "an eventual" : `a ${folder.mode}`;
  process.stdout.write(terminalLines([`folder ${folder.name} on ${remote.baseUrl}: ${what} ${mode} folder`]));
  return 0;
}
