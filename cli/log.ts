// dsync log [DIR]: a folder's versions, newest first, read from the node a page at a time.
import { formatBytes } from "../src/client/progress.ts";
import { RemoteError } from "../src/client/remote.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { terminalJsonLines, terminalLines } from "../src/core/terminal-text.ts";
import { counted } from "../src/core/plural.ts";
import { parseCount } from "./errors.ts";
import { drained, writeJsonDocument } from "./stdout.ts";
import { targetFor } from "./remote-target.ts";

export async function logCommand(
  dir: string | undefined,
  flags: { remote?: string; folder?: string; limit?: string; json?: boolean; jsonLines?: boolean; stale?: boolean },
): Promise<number> {
  if (flags.json && flags.jsonLines) throw new UsageError("--json and --json-lines: choose one");
  const limit = parseCount(flags.limit, "--limit");
  if (limit === 0) throw new UsageError("--limit takes a whole number from 1");
  const { remote, folder } = targetFor(dir, flags, { stale: flags.stale === true });
  const info = await remote.getFolder(folder);
  if (!info) throw new RemoteError("not-found", `the node at ${remote.baseUrl} has no folder named ${JSON.stringify(folder)}`);
  // Page by page from the node, each page written out before the next is asked for: memory
  // holds one page (at most 1000 versions) however long the history.
  const pages = remote.versionPages(folder, limit ?? Number.POSITIVE_INFINITY);
  if (flags.jsonLines) {
    for await (const page of pages) await drained(process.stdout.write(terminalJsonLines(page)));
    return 0;
  }
  if (flags.json) {
    // One JSON document, {folder, versions: [...]}, written as it comes (stdout.ts).
    await writeJsonDocument({ folder: info }, "versions", pages);
    return 0;
  }
  for await (const page of pages) {
    const lines = page.map((version) => {
      const head = version.id === info.head ? " (head)" : "";
      const parents = version.parents.length > 1 ? ` merge of ${version.parents.map((p) => p.slice(0, 12)).join(" + ")}` : "";
      // A replication merge has no author: every node computes the same one.
      const author = version.author ? `by ${version.author}` : "by replication";
      return (
        `${version.id.slice(0, 12)}${head}  ${version.time}  ${version.origin}${parents}  ${author}  ${counted(version.files, "file")}, ${formatBytes(version.bytes)}` +
        `${version.message ? `  ${version.message}` : ""}`
      );
    });
    // A message or an author may hold anything: each version stays one escaped line.
    await drained(process.stdout.write(terminalLines(lines)));
  }
  return 0;
}
