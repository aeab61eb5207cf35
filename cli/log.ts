// dsync log [DIR]: a folder's versions, newest first.
import { formatBytes } from "../src/client/progress.ts";
import { RemoteError } from "../src/client/remote.ts";
import { terminalLines } from "../src/core/terminal-text.ts";
import { parseCount, printJson } from "./errors.ts";
import { targetFor } from "./remote-target.ts";

export async function logCommand(dir: string | undefined, flags: { remote?: string; folder?: string; limit?: string; json?: boolean }): Promise<number> {
  const { remote, folder } = targetFor(dir, flags);
  const info = await remote.getFolder(folder);
  if (!info) throw new RemoteError("not-found", `the node at ${remote.baseUrl} has no folder named ${JSON.stringify(folder)}`);
  const versions = await remote.listVersions(folder, parseCount(flags.limit, "--limit"));
  if (flags.json) {
    printJson({ folder: info, versions });
    return 0;
  }
  const lines: string[] = [];
  for (const version of versions) {
    const head = version.id === info.head ? " (head)" : "";
    const parents = version.parents.length > 1 ? ` merge of ${version.parents.map((p) => p.slice(0, 12)).join(" + ")}` : "";
    // A replication merge has no author: every node computes the same one.
    const author = version.author ? `by ${version.author}` : "by replication";
    lines.push(
      `${version.id.slice(0, 12)}${head}  ${version.time}  ${version.origin}${parents}  ${author}  ${version.files} files, ${formatBytes(version.bytes)}` +
        `${version.message ? `  ${version.message}` : ""}`,
    );
  }
  // A message or an author may hold anything: each version stays one escaped line.
  process.stdout.write(terminalLines(lines));
  return 0;
}
