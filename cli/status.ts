// dsync status: how a node's folders stand against each of its peers. "behind" and "ahead" are
// this node's position: behind means the peer has writes this node lacks. Also each peer's lag and
// last contact, and what each folder holds and who changed it last.
import { terminalLines } from "../src/core/terminal-text.ts";
import { folderCountNotShown, summaryLines } from "../src/client/status-summary.ts";
import type { NodeStatus } from "../src/client/remote.ts";
import { waitForSync } from "../src/client/sync-wait.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { parseCount, printJson } from "./errors.ts";

/** How long --wait waits without --timeout-ms. */
export const WAIT_TIMEOUT_MS_DEFAULT = 60_000;
import { remoteFor } from "./remote-target.ts";

export async function statusCommand(flags: { remote?: string; json?: boolean; wait?: boolean; timeoutMs?: string }): Promise<number> {
  const remote = remoteFor(flags);
  const timeoutMs = parseCount(flags.timeoutMs, "--timeout-ms");
  if (timeoutMs !== undefined && !flags.wait) throw new UsageError("--timeout-ms goes with --wait");
  let status: NodeStatus;
  if (flags.wait) {
    // Until every folder is in sync with every peer, or the timeout (exit 1, saying what is not).
    // Each ask is one attempt (the wait asks again), ended when the wait is over.
    const waited = await waitForSync((signal) => remote.status({ signal, retry: false }), { timeoutMs: timeoutMs ?? WAIT_TIMEOUT_MS_DEFAULT });
    if (!waited.inSync) {
      const shown = waited.pending.slice(0, 20);
      const more = waited.pending.length - shown.length;
      const hint =
        waited.status !== undefined && folderCountNotShown(waited.status) > 0
          ? `(--wait sees the first ${waited.status.folders.length} folders of the status only)`
          : `(is every peer running? wait longer with --timeout-ms)`;
      throw new Error(`${remote.baseUrl} is not in sync after ${waited.waitedMs} ms: ${shown.join("; ")}${more > 0 ? `; and ${more} more` : ""} ${hint}`);
    }
    status = waited.status!;
  } else status = await remote.status();
  if (flags.json) {
    printJson(status);
    return 0;
  }
  // The same summary as the web dashboard's front page (src/client/status-summary.ts).
  const lines = summaryLines(status, remote.baseUrl, status.nowMs ?? Date.now());
  process.stdout.write(terminalLines(lines)); // paths and names escaped (core/terminal-text.ts)
  return 0;
}
