// The seam between the strong mode's Raft group (raft-driver.ts) and what uses it: the node's
// commits to strong folders, the server's linearizable reads, status and membership changes.
// One Raft group per cluster orders the head changes of every strong folder; every member
// applies the same commands in the same order to its own metadata.
import type { ObjectId } from "../core/id.ts";
import type { ConfigChange, RaftNodeId, RaftRole } from "../core/raft/types.ts";
import type { NewVersionRecord } from "../node/metadata-records.ts";

/** The commands a strong folder's history is made of, in the log (encoded by strong-command.ts). */
export type StrongCommand =
  | {
      op: "createFolder";
      folder: string;
      keepVersions: number | null;
      keepDays: number | null;
      /** The proposer's clock when proposed: the created/updated time every member records. */
      atMs: number;
    }
  | {
      op: "moveHead";
      folder: string;
      /** The head the proposer's commit was made on (null: the folder's first version). */
      expected: ObjectId | null;
      head: ObjectId;
      /** Versions recorded with the move (the pushed one and, after a stale parent, the merge). */
      versions: NewVersionRecord[];
      atMs: number;
    }
  | {
      /** A strong folder's retention, the same on every member (what gc then prunes stays each node's own). */
      op: "setRetention";
      folder: string;
      /** Absent: unchanged; null: no limit. */
      keepVersions?: number | null;
      keepDays?: number | null;
      atMs: number;
    };

/** What applying a command did on this member (the same on every member: the log is the order). */
export type ApplyOutcome =
  | { applied: true }
  /** moveHead whose `expected` was not the head when it was applied: nothing changed. */
  | { applied: false; reason: "head moved"; head: ObjectId | null }
  /** createFolder of a name that exists already (its mode and retention are unchanged). */
  | { applied: false; reason: "exists" }
  /** setRetention of a folder that is not a strong folder (nothing changed). */
  | { applied: false; reason: "unknown folder" };

export interface MemberAddress {
  id: RaftNodeId;
  /** Base URL peers reach it at; null when not known yet. */
  address: string | null;
}

export interface MemberStatus extends MemberAddress {
  /** Only on the leader: highest index known replicated there. */
  match: number | null;
  /** When this member last heard from it (ms since epoch), null never. */
  lastContactMs: number | null;
  /** Whether it is this node. */
  self: boolean;
}

export interface ConsensusStatus {
  nodeId: RaftNodeId;
  role: RaftRole;
  term: number;
  leader: MemberAddress | null;
  commit: number;
  applied: number;
  lastIndex: number;
  members: MemberStatus[];
  /** When this member last heard from a leader (or is one), ms since epoch; null never. */
  lastLeaderContactMs: number | null;
}

export interface StrongConsensus {
  /**
   * Appends `command` to the log (this node must be the leader; else NotLeaderError naming the
   * leader it knows) and resolves once it is committed on a majority and applied here, with
   * what applying it did. Rejects ConsensusUnavailableError when that does not happen within
   * `timeoutMs` (no quorum, leadership lost): the command may still commit later (indeterminate).
   */
  propose(command: StrongCommand, timeoutMs: number): Promise<ApplyOutcome>;

  /**
   * ReadIndex (Raft thesis §6.4): resolves once this node has applied every entry committed
   * before the call, as confirmed by a quorum through the leader, so a read made after it is
   * linearizable. Rejects ConsensusUnavailableError within `timeoutMs` when no leader with a
   * quorum answers (a minority side of a partition).
   */
  readBarrier(timeoutMs: number): Promise<void>;

  /** The leader this node knows of (itself included), or null. */
  leader(): MemberAddress | null;
  isLeader(): boolean;
  status(): ConsensusStatus;

  /** A membership change through the log (on the leader; one at a time), resolved once applied here. */
  changeMembership(change: ConfigChange, timeoutMs: number): Promise<void>;

  start(): Promise<void>;
  /** Stops ticking and sending; a leader first hands leadership to the most caught-up follower (bounded wait). */
  stop(): Promise<void>;
}

/** This node is not the leader; `leader` is the one it knows, if any. */
export class NotLeaderError extends Error {
  constructor(readonly leader: MemberAddress | null) {
    super(leader ? `this node is not the leader; the leader is ${leader.address ?? leader.id}` : "this node is not the leader, and no leader is known");
    this.name = "NotLeaderError";
  }
}

/**
 * HTTP 503: a strong folder cannot be written or read linearizably here now (no leader with a
 * quorum within the wait: this node is on a minority side, or an election is under way).
 */
export class ConsensusUnavailableError extends Error {
  readonly status = 503;
  constructor(
    message: string,
    readonly leader: MemberAddress | null,
  ) {
    super(message);
    this.name = "ConsensusUnavailableError";
  }
}
