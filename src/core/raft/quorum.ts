// Majorities over one membership: the highest index a majority of voters holds (what a leader
// may commit, §5.3/§5.4.2) and the outcome of an election's votes (§5.2). Always computed over
// the config in force now (thesis §4.1: a config takes effect as soon as it is in the log).
import type { ClusterConfig, RaftNodeId } from "./types.ts";

/** Votes needed out of `voterCount` (a strict majority); 0 voters never reach a quorum. */
export function quorumSize(voterCount: number): number {
  return voterCount === 0 ? Number.POSITIVE_INFINITY : Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters have at least: `matchOf` gives each voter's
 * match index. 0 when there are no voters (nothing can be committed by nobody).
 */
export function committedIndex(config: ClusterConfig, matchOf: (id: RaftNodeId) => number): number {
  const count = config.voters.length;
  if (count === 0) return 0;
  const matches = config.voters.map(matchOf).sort((a, b) => b - a);
  return matches[quorumSize(count) - 1]!;
}

export type VoteOutcome = "won" | "lost" | "pending";

/** The outcome of an election given the answers so far (only voters of `config` count). */
export function tallyVotes(config: ClusterConfig, votes: ReadonlyMap<RaftNodeId, boolean>): { granted: number; rejected: number; outcome: VoteOutcome } {
  let granted = 0;
  let rejected = 0;
  for (const id of config.voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = quorumSize(config.voters.length);
  const outcome: VoteOutcome = granted >= needed ? "won" : config.voters.length - rejected < needed ? "lost" : "pending";
  return { granted, rejected, outcome };
}

/** Whether the members `active` says yes to form a majority of `config`. */
export function isQuorum(config: ClusterConfig, active: (id: RaftNodeId) => boolean): boolean {
  return config.voters.filter(active).length >= quorumSize(config.voters.length);
}
