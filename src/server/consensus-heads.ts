// The node's strong head mover (node/strong-heads.ts) over the cluster's Raft group: a strong
// folder's commit proposes "move head" and its creation "create folder", each resolved once
// committed on a majority and applied here (the apply does the metadata's compare-and-set on
// every member, this one included). The assembly hands it to the node (src/assemble.ts).
import { HeadMovedError } from "../node/metadata-records.ts";
import type { Clock } from "../node/clock.ts";
import type { StrongHeads } from "../node/strong-heads.ts";
import type { StrongConsensus } from "../consensus/strong-consensus.ts";

/**
 * How long a proposal may take to commit and apply before the commit is answered 503 (no
 * quorum, leadership lost). It may still commit later: the answer says so.
 */
export const PROPOSE_TIMEOUT_MS = 10_000;

export function strongHeadsOver(consensus: StrongConsensus, clock: Clock): StrongHeads {
  return {
    moveHead: async (folder, expected, head, versions) => {
      const outcome = await consensus.propose({ op: "moveHead", folder, expected, head, versions, atMs: clock.nowMs() }, PROPOSE_TIMEOUT_MS);
      if (outcome.applied) return;
      // The log put another move first: nothing changed anywhere; the commit is merged again.
      if (outcome.reason === "head moved") throw new HeadMovedError(folder, expected, outcome.head);
      throw new Error(`moving the head of ${folder} through the log was not applied: ${outcome.reason}`);
    },
    createFolder: async (name, retention) => {
      const outcome = await consensus.propose({ op: "createFolder", folder: name, keepVersions: retention.keepVersions, keepDays: retention.keepDays, atMs: clock.nowMs() }, PROPOSE_TIMEOUT_MS);
      return outcome.applied ? "created" : "exists";
    },
    caughtUp: (timeoutMs) => consensus.readBarrier(timeoutMs),
  };
}
