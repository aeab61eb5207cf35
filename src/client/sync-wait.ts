// dsync status --wait: waits, bounded, until a node's every folder is in sync with every peer
// (the same head, by what the peers last told the node), so a script can push to one node and
// then read from another. The clock and the pause are passed in, so the wait is tested without
// real time; the node is asked again every `intervalMs` until `timeoutMs` has passed.
import type { NodeStatus } from "./remote.ts";
import { folderCountNotShown } from "./status-summary.ts";

/** What still stands between the node and "in sync": one line per folder and peer (empty when in sync). */
export function notInSync(status: NodeStatus): string[] {
  const out: string[] = [];
  for (const folder of status.folders) {
    for (const peer of folder.peers) {
      if (peer.state !== "in-sync") out.push(`folder ${folder.name} on peer ${peer.peer}: ${peer.state === "unknown" ? "not listed by the peer yet" : peer.state}`);
    }
  }
  // The status describes at most a page of folders: the rest cannot be seen in sync, so they
  // are never taken to be.
  const notShown = folderCountNotShown(status);
  if (notShown > 0) {
    out.push(`${notShown} folders after the first ${status.folders.length} by name: the status describes only the first ${status.folders.length}, so whether they are in sync is not known`);
  }
  // A peer that never answered has listed nothing: its folders are not known to be in sync.
  for (const peer of status.peers) {
    if (peer.reachable !== true) out.push(`peer ${peer.address}: ${peer.reachable === null ? "not contacted yet" : `unreachable (${peer.lastError ?? "unknown error"})`}`);
  }
  return out;
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  nowMs?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface WaitResult {
  inSync: boolean;
  /** The last status the node gave (undefined when it never answered). */
  status: NodeStatus | undefined;
  /** What was not in sync at the last look (empty when in sync). */
  pending: string[];
  waitedMs: number;
  polls: number;
}

export const WAIT_INTERVAL_MS_DEFAULT = 200;

/**
 * The status, or a rejection once `ms` have passed; the request is then aborted (its socket
 * closed), not left running behind the wait.
 */
function withinMs<T>(ask: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no answer within ${ms} ms`);
      controller.abort(error);
      reject(error);
    }, Math.max(1, ms));
  });
  return Promise.race([ask(controller.signal), deadline]).finally(() => clearTimeout(timer));
}

export async function waitForSync(getStatus: (signal: AbortSignal) => Promise<NodeStatus>, options: WaitOptions): Promise<WaitResult> {
  const now = options.nowMs ?? (() => Date.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const intervalMs = options.intervalMs ?? WAIT_INTERVAL_MS_DEFAULT;
  const startMs = now();
  let polls = 0;
  let status: NodeStatus | undefined;
  for (;;) {
    let pending: string[];
    try {
      status = await withinMs(getStatus, Math.max(1, options.timeoutMs - (now() - startMs)));
      pending = notInSync(status);
    } catch (error) {
      // A node still starting, or one that stopped answering: asked again until the timeout.
      pending = [`the node: ${(error as Error).message}`];
    }
    polls++;
    const waitedMs = now() - startMs;
    if (pending.length === 0) return { inSync: true, status, pending, waitedMs, polls };
    // Waiting longer would not show the folders the status leaves out.
    if (status !== undefined && folderCountNotShown(status) > 0) return { inSync: false, status, pending, waitedMs, polls };
    if (waitedMs >= options.timeoutMs) return { inSync: false, status, pending, waitedMs, polls };
    await sleep(Math.min(intervalMs, options.timeoutMs - waitedMs));
  }
}
