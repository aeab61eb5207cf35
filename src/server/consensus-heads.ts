// The node's strong head mover (node/strong-heads.ts) over the cluster's Raft group: a strong
// folder's commit proposes "move head" and its creation "create folder", each resolved once
// committed on a majority and applied here (the apply does the metadata's compare-and-set on
// every member, this one included). The assembly hands it to the node (src/assemble.ts).
import { HeadMovedError } from "../node/metadata-records.ts";
import { systemTimers, type Clock, type Timers } from "../node/clock.ts";
import type { StrongHeads } from "../node/strong-heads.ts";
import type { StrongCommand, StrongConsensus } from "../consensus/strong-consensus.ts";
import { whileLeaderInContact } from "../consensus/leader-contact.ts";
import { headAsTheLogSet } from "../consensus/strong-state-machine.ts";
import type { MetadataStore } from "../node/metadata-store.ts";

/**
 * How long a proposal may take to commit and apply before the commit is answered 503 (no
 * quorum, leadership lost). It may still commit later: the answer says so.
 */
export const PROPOSE_TIMEOUT_MS = 10_000;

export function strongHeadsOver(consensus: StrongConsensus, clock: Clock, timers: Timers = systemTimers, metadata?: Pick<MetadataStore, "getMeta">): StrongHeads {
  // A proposal is answered 503 once this node has heard from no leader within an election
  // timeout (a leader cut off steps down, then waits no longer), not only at its deadline.
  const propose = (command: StrongCommand, what: string) => whileLeaderInContact({ consensus, clock, timers, leaderId: null, what }, () => consensus.propose(command, PROPOSE_TIMEOUT_MS));
  return {
    moveHead: async (folder, given, head, versions) => {
      // A folder the log turned strong from eventual: its old eventual head is no head to the
      // log, and a move from it is proposed as the log's first (else it would never apply).
      const expected = metadata ? await headAsTheLogSet(metadata, folder, given) : given;
      const outcome = await propose({ op: "moveHead", folder, expected, head, versions, atMs: clock.nowMs() }, `the commit to ${folder} was not committed (it may still be: dsync log shows whether it was)`);
      if (outcome.applied) return;
      // The log put another move first: nothing changed anywhere; the commit is merged again.
      if (outcome.reason === "head moved") throw new HeadMovedError(folder, given, outcome.head);
      throw new Error(`moving the head of ${folder} through the log was not applied: ${outcome.reason}`);
    },
    createFolder: async (name, retention) => {
      const outcome = await propose({ op: "createFolder", folder: name, keepVersions: retention.keepVersions, keepDays: retention.keepDays, atMs: clock.nowMs() }, `the creation of ${name} was not committed (it may still be)`);
      return outcome.applied ? "created" : "exists";
    },
    setRetention: async (folder, retention) => {
      const outcome = await propose({ op: "setRetention", folder, ...retention, atMs: clock.nowMs() }, `the retention change of ${folder} was not committed (it may still be)`);
      return outcome.applied ? "applied" : "unknown folder";
    },
    caughtUp: (timeoutMs) => consensus.readBarrier(timeoutMs),
  };
}
