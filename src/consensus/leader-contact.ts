// Whether this member is in touch with the leader of the cluster's log, and waits bounded by
// that: a request handed to the leader, a proposal, a read barrier. A member cut off from the
// others (its links blackholed: nothing fails, nothing arrives) would otherwise wait out the whole
// allowance of what it asked for; a leader not heard from within an election timeout is taken as
// lost (the members are electing another, or this node is on a minority side), and the wait ends
// at once with ConsensusUnavailableError naming the leader last known. A leader that is alive
// keeps sending heartbeats every tick, even while it fetches a long commit's objects from this
// node, so such a commit still completes.
import type { Clock, Timers } from "../node/clock.ts";
import { RAFT_ELECTION_TICKS, RAFT_TICK_MS } from "./raft-driver.ts";
import { ConsensusUnavailableError, type ConsensusStatus, type MemberAddress, type StrongConsensus } from "./strong-consensus.ts";

/** A leader not heard from for this long is lost: the longest election timeout (twice the base, as the driver randomizes it). */
export const LEADER_CONTACT_LOST_MS = 2 * RAFT_ELECTION_TICKS * RAFT_TICK_MS;
/** How often a wait on the leader looks whether it is still in contact. */
export const LEADER_CONTACT_POLL_MS = 200;

/**
 * Whether `status` shows this member in contact with member `leaderId` as the leader (or with
 * any leader, when `leaderId` is null): the leader it names and heard from within `lostAfterMs`.
 * A member that was the leader and is no longer is judged by when this node last heard from it.
 */
export function inContactWithLeader(status: ConsensusStatus, nowMs: number, leaderId: string | null = null, lostAfterMs = LEADER_CONTACT_LOST_MS): boolean {
  const fresh = (atMs: number | null) => atMs !== null && nowMs - atMs <= lostAfterMs;
  // Any leader: heard from one lately (during an election that is the last one, for an election timeout).
  if (leaderId === null) return fresh(status.lastLeaderContactMs);
  if (status.leader !== null && status.leader.id === leaderId) return fresh(status.lastLeaderContactMs);
  if (leaderId === status.nodeId) return false;
  return fresh(status.members.find((m) => m.id === leaderId)?.lastContactMs ?? null);
}

/** Whether this member heard from a leader once and has not within an election timeout since (a member just started that never did is still waiting for its first). */
export function leaderContactLost(status: ConsensusStatus, nowMs: number): boolean {
  return status.lastLeaderContactMs !== null && !inContactWithLeader(status, nowMs);
}

export interface LeaderContactWatch {
  consensus: StrongConsensus;
  clock: Clock;
  timers: Timers;
  /** The leader the wait depends on; null: whichever leads (a proposal or a read barrier, which any leader may settle). */
  leaderId: string | null;
  /** What was waited for, for the 503's message ("the leader did not answer the commit this node handed it"). */
  what: string;
}

/**
 * Runs `work` and resolves with its result, unless contact with the leader is lost first: then
 * `work`'s signal is aborted and this rejects ConsensusUnavailableError naming the leader last
 * known. `work` itself keeps its own deadline.
 */
export async function whileLeaderInContact<T>(watch: LeaderContactWatch, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: unknown = null;
  let lastLeader: MemberAddress | null = watch.consensus.leader();
  const lost = new Promise<never>((_, reject) => {
    const check = () => {
      timer = null;
      const status = watch.consensus.status();
      if (status.leader !== null) lastLeader = status.leader;
      const nowMs = watch.clock.nowMs();
      // Waiting on whichever leads, a member that never heard from one (just started) waits for its first election.
      const inContact = watch.leaderId === null ? !leaderContactLost(status, nowMs) : inContactWithLeader(status, nowMs, watch.leaderId);
      if (inContact) {
        timer = watch.timers.setTimeout(check, LEADER_CONTACT_POLL_MS);
        return;
      }
      const named = watch.leaderId === null ? lastLeader : (status.members.find((m) => m.id === watch.leaderId) ?? lastLeader);
      // This node itself (a leader cut off, stepped down) is no leader to send the client to.
      const leader = named && named.id !== status.nodeId ? { id: named.id, address: named.address } : null;
      const error = new ConsensusUnavailableError(`${watch.what}: this node lost contact with the leader of the cluster's log (not heard from within ${LEADER_CONTACT_LOST_MS} ms)`, leader);
      controller.abort(error);
      reject(error);
    };
    timer = watch.timers.setTimeout(check, LEADER_CONTACT_POLL_MS);
  });
  // The loser of the race is not waited for; its rejection is taken here so it is not reported as unhandled.
  lost.catch(() => {});
  const running = work(controller.signal);
  running.catch(() => {});
  try {
    return await Promise.race([running, lost]);
  } finally {
    if (timer !== null) watch.timers.clearTimeout(timer);
  }
}
