// The vocabulary of the Raft state machine (raft.ts): what goes in (messages, ticks, proposals),
// what comes out (Ready: state to persist, messages to send, entries to apply), and what the
// caller keeps durable between runs (PersistedRaft). Shaped after etcd's raft library: the
// algorithm is pure (no I/O, clock or randomness of its own); its driver persists, then sends,
// then applies, then calls advance().
//
// Indexes and terms are plain numbers (safe integers; a log would need 2^53 entries to overflow).

/** A member's id: the dsync node id (16 hex digits; node/node-id.ts says what one may be). */
export type RaftNodeId = string;

/** What must survive a crash before any message that depends on it is sent (Raft §5.1, Figure 2). */
export interface HardState {
  /** The latest term this member has seen. */
  term: number;
  /** Whom it voted for in `term`, or null. */
  vote: RaftNodeId | null;
  /** The highest index it knows committed (persisted so a restart applies no less than before). */
  commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

/**
 * "normal": an application command (`data`, opaque here; empty for the no-op a new leader
 * appends to commit entries of earlier terms, §5.4.2). "config": a single-server membership
 * change (`data` is an encoded ConfigChange, config-change.ts), effective on every member as
 * soon as it is appended to its log (thesis §4.1), one pending at a time.
 */
export type EntryKind = "normal" | "config";

export interface Entry {
  term: number;
  index: number;
  kind: EntryKind;
  data: Uint8Array;
}

/** A single-server membership change (Raft thesis §4.1). `address` is how peers reach an added member. */
export interface ConfigChange {
  type: "add" | "remove";
  node: RaftNodeId;
  /** The added member's base URL (empty for a removal). */
  address: string;
}

/** Who votes. Sorted by id, no duplicates. */
export interface ClusterConfig {
  voters: RaftNodeId[];
}

export interface SnapshotMeta {
  /** The last index the snapshot covers, and that entry's term. */
  index: number;
  term: number;
  /** The membership as of `index`. */
  config: ClusterConfig;
}

/** The applied state up to `meta.index`, as the application encoded it (opaque here). §7. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type MessageType =
  | "append" // leader -> follower: entries after (index, logTerm), and the leader's commit (§5.3)
  | "appendResponse" // follower -> leader: accepted up to `index`, or rejected with `rejectHint`
  | "vote" // candidate -> all (§5.2)
  | "voteResponse"
  | "preVote" // would-be candidate -> all, at term+1 without changing its own term (thesis §9.6)
  | "preVoteResponse"
  | "heartbeat" // leader -> follower: commit (bounded by the follower's match) and `context` for ReadIndex
  | "heartbeatResponse"
  | "snapshot" // leader -> follower whose next entry was compacted away (§7)
  | "timeoutNow" // leader -> transfer target: campaign at once, skipping pre-vote (thesis §3.10)
  | "readIndex" // follower -> leader: confirm leadership for a linearizable read (thesis §6.4)
  | "readIndexResponse"; // leader -> follower: the read's index (0 with reject: no leader able to serve)

export interface Message {
  type: MessageType;
  from: RaftNodeId;
  to: RaftNodeId;
  /** The sender's term (for preVote: the term it would campaign at). */
  term: number;
  /** append: the term of the entry at `index` (the one before `entries`); vote/preVote: the candidate's last log term. */
  logTerm: number;
  /** append: the index before `entries`; appendResponse: the last index accepted (or the rejected one); vote/preVote: the candidate's last index; readIndexResponse: the read index. */
  index: number;
  entries: Entry[];
  /** append/heartbeat: the leader's commit index. */
  commit: number;
  /** appendResponse, voteResponse, preVoteResponse, readIndexResponse. */
  reject: boolean;
  /**
   * appendResponse with reject: the largest index at or below the rejected one whose term is at
   * most the append's logTerm (that term in `logTerm`), so the leader skips a whole conflicting
   * term at once instead of probing one entry at a time (§5.3, conflict back-off).
   */
  rejectHint: number;
  snapshot?: Snapshot;
  /**
   * readIndex, heartbeat(Response), readIndexResponse: the read request's id, echoed back.
   * vote: TRANSFER_CAMPAIGN_CONTEXT (raft.ts) when the candidate campaigns because its leader
   * handed over (timeoutNow), which lets it win despite the leader-lease rule (thesis §3.10).
   */
  context?: Uint8Array;
}

export type RaftRole = "follower" | "preCandidate" | "candidate" | "leader";

/** What changes often and need not be persisted. */
export interface SoftState {
  leader: RaftNodeId | null;
  role: RaftRole;
}

/** A read that may be served once this member has applied up to `index` (thesis §6.4). */
export interface ReadState {
  index: number;
  /** The request id given to readIndex(). */
  context: Uint8Array;
}

/**
 * One batch of work for the driver, in this order: persist `snapshot`, `entries` (replacing any
 * stored entries from entries[0].index on) and `hardState`, durably and atomically; only then
 * send `messages`; then apply `snapshot` (if any) and `committedEntries` in order; then call
 * advance(ready). Messages a leader sends to its followers may be sent before its own entries
 * are durable (§10.2.1 of the thesis), but this implementation does not rely on it: the driver
 * persists first in every role.
 */
export interface Ready {
  /** Present when it changed since the last Ready. */
  softState?: SoftState;
  /** Present when it changed since the last Ready. */
  hardState?: HardState;
  /** New or replaced entries to persist, in index order. */
  entries: Entry[];
  /**
   * A snapshot received from the leader, to persist and then apply in place of the state. It is
   * only handed out when the log does not hold its index with its term, so it replaces every
   * stored entry.
   */
  snapshot?: Snapshot;
  /** Entries known committed and not yet handed out, in index order; apply them in order. */
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** Whether `hardState`, `entries` or `snapshot` must be fsynced before `messages` go out. */
  mustSync: boolean;
}

/** What the driver loaded from its durable store to start a member again (or nothing, the first time). */
export interface PersistedRaft {
  hardState: HardState;
  /** The latest snapshot kept, if the log was ever compacted. */
  snapshot?: Snapshot;
  /** Every entry kept after the snapshot (or from index 1), in order, without gaps. */
  entries: Entry[];
  /**
   * The bootstrap membership: the one before any entry (identical on every initial member; empty
   * on a member added later, which learns it from the log or a snapshot). When `snapshot` is
   * present its meta.config is used instead. The constructor scans `entries` for config entries
   * and applies them on top (each carries the whole voter list it results in, config-change.ts),
   * so the membership at the end of the log need not be stored, and a truncated change is undone.
   * Passing the membership at the end of `entries` instead also works, except that a config
   * entry truncated away after a restart could then not be undone.
   */
  config: ClusterConfig;
  /** The highest index the application has applied (at least the snapshot's index). */
  applied: number;
}

export interface RaftConfig {
  id: RaftNodeId;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [electionTicks, 2*electionTicks) (§5.2). */
  electionTicks: number;
  /** Ticks between a leader's heartbeats; less than electionTicks. */
  heartbeatTicks: number;
  /** Pre-vote (thesis §9.6): a partitioned member that comes back does not disrupt the leader by raising the term. */
  preVote: boolean;
  /** Check-quorum (thesis §6.2): a leader that has not heard from a quorum for an election timeout steps down. */
  checkQuorum: boolean;
  /** Randomness as an input: an integer in [0, bound) for each randomized election timeout. */
  randomInt(bound: number): number;
  /** At most this many entries in one append message. */
  maxEntriesPerAppend: number;
  /** At most this many append messages in flight to one follower before it answers. */
  maxInflightAppends: number;
}

/** Where replication to one follower stands, as the leader sees it (for status). */
export interface FollowerProgress {
  /** Highest index known replicated on it. */
  match: number;
  /** Next index to send it. */
  next: number;
  state: "probe" | "replicate" | "snapshot";
  /** Whether it answered within the last election timeout (check-quorum's view). */
  recentActive: boolean;
}

export interface RaftStatus {
  id: RaftNodeId;
  role: RaftRole;
  term: number;
  vote: RaftNodeId | null;
  leader: RaftNodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  config: ClusterConfig;
  /** Only on a leader: every other voter's progress. */
  progress: Record<RaftNodeId, FollowerProgress>;
  /**
   * On the leader: the index of a config entry not yet committed (one pending change at a time;
   * just after an election, the new leader's first entry, since no change is taken before it
   * commits), or 0.
   */
  pendingConfigIndex: number;
  /** The member leadership is being transferred to, or null. */
  transferee: RaftNodeId | null;
}

/** Thrown by propose* when this member cannot take a proposal now (not leader, or a transfer is in progress). */
export class ProposalDroppedError extends Error {
  constructor(
    readonly reason: "not leader" | "leadership transfer in progress" | "config change pending",
    readonly leader: RaftNodeId | null,
  ) {
    super(`raft proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/**
 * The state machine's public face (raft.ts implements it; raft-driver in src/consensus drives
 * it). Every method is synchronous and deterministic given the same inputs and randomInt answers.
 */
export interface RaftMember {
  /** One unit of logical time: election and heartbeat timeouts are counted in ticks. */
  tick(): void;
  /** A message from another member (or a response), already decoded and validated for shape. Messages of a lower term are answered or dropped as Raft says. */
  step(message: Message): void;
  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void;
  /** Appends an application command on the leader; returns where it went. Throws ProposalDroppedError otherwise. */
  propose(data: Uint8Array): { index: number; term: number };
  /** Appends a membership change on the leader (one pending at a time); throws ProposalDroppedError otherwise. */
  proposeConfigChange(change: ConfigChange): { index: number; term: number };
  /** Asks for a linearizable read point; a ReadState with this context appears in a later Ready (or never, if leadership is lost: the caller times out). */
  readIndex(context: Uint8Array): void;
  /** On the leader: hands leadership to `to` once it is caught up (timeoutNow). */
  transferLeadership(to: RaftNodeId): void;
  /** Tells the leader a follower could not be reached (it probes again instead of streaming). */
  reportUnreachable(to: RaftNodeId): void;
  /** Tells the leader whether sending a snapshot to `to` worked. */
  reportSnapshot(to: RaftNodeId, ok: boolean): void;
  hasReady(): boolean;
  /** Everything new since the previous Ready, handed out once: a driver that cannot carry a Ready out starts the member again from its store. */
  ready(): Ready;
  /** The driver did everything `ready` asked (persisted, sent, applied). */
  advance(ready: Ready): void;
  /**
   * The application took a snapshot of its state at `index` (≤ applied): entries up to it are
   * dropped from memory; the returned snapshot is what the driver stores in their place.
   */
  compact(index: number, data: Uint8Array): Snapshot;
  status(): RaftStatus;
}
