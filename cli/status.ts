// dsync status: how a node's folders stand against each of its peers. "behind" and "ahead" are
// this node's position: behind means the peer has writes this node lacks. Also each peer's lag and
// last contact, and what each folder holds and who changed it last.
import { terminalLines } from "../src/core/terminal-text.ts";
import { summaryLines } from "../src/client/status-summary.ts";
import { printJson } from "./errors.ts";
import { remoteFor } from "./remote-target.ts";

export async function statusCommand(flags: { remote?: string; json?: boolean }): Promise<number> {
  const remote = remoteFor(flags);
  const status = await remote.status();
  if (flags.json) {
    printJson(status);
    return 0;
  }
  // The same summary as the web dashboard's front page (src/client/status-summary.ts).
  const lines = summaryLines(status, remote.baseUrl, status.nowMs ?? Date.now());
  process.stdout.write(terminalLines(lines)); // paths and names escaped (core/terminal-text.ts)
  return 0;
}
