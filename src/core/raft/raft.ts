// The Raft state machine (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm", and Ongaro's thesis), shaped after etcd's raft library: pure, driven from outside.
// tick(), step() and the propose/read/transfer calls change the state and queue messages; ready()
// hands out what to persist, send and apply; advance() is told it was done. The section numbers
// in comments are the paper's (§5.x, §7) or the thesis's (thesis §x).
//
// Roles: follower, preCandidate (asking for pre-votes at term+1 without raising its own term,
// thesis §9.6), candidate, leader. A member not in its own config never campaigns but follows a
// leader that appends to it (how a new member catches up).
import { applyConfigChange, configChangeProblem, decodeConfigEntry, encodeConfigEntry, RAFT_VOTERS_MAX } from "./config-change.ts";
import { Progress } from "./progress.ts";
import { committedIndex, isQuorum, quorumSize, tallyVotes } from "./quorum.ts";
import { RaftLog } from "./raft-log.ts";
import { PENDING_READS_MAX, ReadOnlyQueue } from "./read-only.ts";
import {
  ProposalDroppedError,
  type ClusterConfig,
  type ConfigChange,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type PersistedRaft,
  type RaftConfig,
  type RaftMember,
  type RaftNodeId,
  type RaftRole,
  type RaftStatus,
  type ReadState,
  type Ready,
  type Snapshot,
  type SoftState,
} from "./types.ts";

/**
 * The `context` of a vote request sent by a member told to campaign by its leader (timeoutNow,
 * thesis §3.10): it lets the candidate win votes from members that heard from that leader within
 * the election timeout, which the leader-lease rule would otherwise refuse.
 */
export const TRANSFER_CAMPAIGN_CONTEXT = new TextEncoder().encode("raft-transfer");

const EMPTY = new Uint8Array(0);

export class Raft implements RaftMember {
  readonly id: RaftNodeId;
  private readonly cfg: RaftConfig;
  private readonly log: RaftLog;

  private term: number;
  private vote: RaftNodeId | null;
  private role: RaftRole = "follower";
  private leader: RaftNodeId | null = null;

  /** The membership before the first entry kept (the snapshot's, else the bootstrap's). */
  private baseConfig: ClusterConfig;
  /** Indexes of the config entries in the log after the snapshot, ascending. */
  private configIndexes: number[] = [];
  /** The membership in force: the last config entry's in the log, else baseConfig. */
  private config: ClusterConfig;

  /** Ticks since the last election timeout reset (followers: since they heard from a leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  /** candidate/preCandidate: answers so far. */
  private votes = new Map<RaftNodeId, boolean>();
  /** leader: every other voter's progress. */
  private progress = new Map<RaftNodeId, Progress>();
  /** leader: the index of the latest config entry it appended (no new change until it commits). */
  private pendingConfigIndex = 0;
  private transferee: RaftNodeId | null = null;
  private readOnly = new ReadOnlyQueue();
  /** leader: reads that arrived before it committed an entry of its term. */
  private readsBeforeCommit: { context: Uint8Array; from: RaftNodeId }[] = [];

  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;

  constructor(config: RaftConfig, persisted: PersistedRaft) {
    checkConfig(config);
    this.cfg = config;
    this.id = config.id;
    this.log = RaftLog.restore(persisted.snapshot, persisted.entries, persisted.hardState.commit, persisted.applied);
    this.term = persisted.hardState.term;
    this.vote = persisted.hardState.vote;
    this.baseConfig = cloneConfig(persisted.snapshot ? persisted.snapshot.meta.config : persisted.config);
    for (const entry of persisted.entries) if (entry.kind === "config") this.configIndexes.push(entry.index);
    this.config = this.configInForce();
    this.prevHard = this.hardState();
    this.prevSoft = this.softState();
    this.resetRandomizedElectionTimeout();
  }

  // ---- RaftMember -------------------------------------------------------------------------

  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  campaign(): void {
    this.hup(false);
  }

  propose(data: Uint8Array): { index: number; term: number } {
    this.checkCanPropose();
    return this.appendOwn("normal", data);
  }

  proposeConfigChange(change: ConfigChange): { index: number; term: number } {
    this.checkCanPropose();
    if (this.pendingConfigIndex > this.log.committed) throw new ProposalDroppedError("config change pending", this.id);
    const problem = configChangeProblem(this.config, change);
    if (problem !== undefined) throw new RangeError(`raft config change refused: ${problem}`);
    const voters = applyConfigChange(this.config, change).voters;
    const appended = this.appendOwn("config", encodeConfigEntry({ change, voters }));
    return appended;
  }

  readIndex(context: Uint8Array): void {
    if (this.role === "leader") this.leaderReadIndex(context, this.id);
    else if (this.leader !== null) this.send({ type: "readIndex", to: this.leader, context });
    // No leader known: nothing to ask; the caller times out and retries.
  }

  transferLeadership(to: RaftNodeId): void {
    if (this.role !== "leader") return;
    if (to === this.id) {
      // Handing leadership to itself: it keeps it, and a transfer in progress is called off.
      this.transferee = null;
      return;
    }
    if (!this.config.voters.includes(to) || this.transferee === to) return;
    this.transferee = to;
    // The transfer is abandoned after an election timeout (tickLeader).
    this.electionElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to });
    else this.sendAppend(to, true);
  }

  reportUnreachable(to: RaftNodeId): void {
    const pr = this.role === "leader" ? this.progress.get(to) : undefined;
    if (pr && pr.state === "replicate") pr.becomeProbe();
  }

  reportSnapshot(to: RaftNodeId, ok: boolean): void {
    const pr = this.role === "leader" ? this.progress.get(to) : undefined;
    if (!pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat's) before sending again.
    pr.probeSent = true;
  }

  step(m: Message): void {
    if (!isWellFormed(m)) return;
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const force = m.type === "vote" && sameBytes(m.context, TRANSFER_CAMPAIGN_CONTEXT);
        // The leader lease (thesis §4.2.3, §9.6): a member that heard from a leader within the
        // election timeout does not help unseat it, so a member coming back from a partition
        // cannot disrupt a healthy leader. Pre-votes are always refused then; votes only with
        // check-quorum (without it, a leader may be gone without anyone noticing soon enough).
        const inLease = this.leader !== null && this.electionElapsed < this.cfg.electionTicks;
        if (!force && inLease && (m.type === "preVote" || this.cfg.checkQuorum)) return;
      }
      if (m.type === "preVote" || (m.type === "preVoteResponse" && !m.reject)) {
        // A pre-vote asks at a term in the sender's future and changes no one's term; a granted
        // pre-vote answer comes at that future term too.
      } else if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (m.type === "append" || m.type === "heartbeat") {
        // A leader of an older term (partitioned away, or stale) learns of this term and steps
        // down. Needed with check-quorum and pre-vote: the member that raised its term may not
        // win votes for a while, and the old leader would never hear of it otherwise.
        this.send({ type: "appendResponse", to: m.from });
      } else if (m.type === "preVote") {
        this.send({ type: "preVoteResponse", to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case "vote":
      case "preVote":
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case "leader": this.stepLeader(m); return;
      case "candidate":
      case "preCandidate": this.stepCandidate(m); return;
      case "follower": this.stepFollower(m); return;
    }
  }

  hasReady(): boolean {
    return (
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      this.log.pendingSnapshot !== undefined ||
      this.log.unstableFrom <= this.log.lastIndex() ||
      this.log.hasNextCommittedEntries() ||
      !sameHardState(this.hardState(), this.prevHard) ||
      !sameSoftState(this.softState(), this.prevSoft)
    );
  }

  ready(): Ready {
    const hard = this.hardState();
    const soft = this.softState();
    const entries = this.log.unstableEntries();
    const snapshot = this.log.pendingSnapshot;
    const committedEntries = this.log.nextCommittedEntries();
    const hardChanged = !sameHardState(hard, this.prevHard);
    const ready: Ready = {
      entries,
      committedEntries,
      messages: this.messages,
      readStates: this.readStates,
      mustSync: entries.length > 0 || snapshot !== undefined || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
    };
    if (hardChanged) ready.hardState = hard;
    if (!sameSoftState(soft, this.prevSoft)) ready.softState = soft;
    if (snapshot) ready.snapshot = snapshot;
    // Handed out: the next Ready holds only what happens from now on.
    this.messages = [];
    this.readStates = [];
    this.prevHard = hard;
    this.prevSoft = soft;
    this.log.pendingSnapshot = undefined;
    this.log.unstableFrom = this.log.lastIndex() + 1;
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted) this.log.applying = Math.max(this.log.applying, lastCommitted.index);
    return ready;
  }

  advance(ready: Ready): void {
    let applied = this.log.applied;
    if (ready.snapshot) applied = Math.max(applied, ready.snapshot.meta.index);
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted) applied = Math.max(applied, lastCommitted.index);
    this.log.applied = Math.min(applied, this.log.applying);
  }

  compact(index: number, data: Uint8Array): Snapshot {
    if (!Number.isSafeInteger(index) || index <= this.log.snapshotIndex || index > this.log.applied) {
      throw new RangeError(`raft compact(${index}): must be after the snapshot (${this.log.snapshotIndex}) and at most applied (${this.log.applied})`);
    }
    const snapshot: Snapshot = { meta: { index, term: this.log.term(index)!, config: this.configAt(index) }, data };
    this.baseConfig = cloneConfig(snapshot.meta.config);
    this.configIndexes = this.configIndexes.filter((i) => i > index);
    this.log.compact(snapshot);
    return snapshot;
  }

  status(): RaftStatus {
    const progress: RaftStatus["progress"] = {};
    if (this.role === "leader") for (const [id, pr] of this.progress) progress[id] = pr.view();
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      config: cloneConfig(this.config),
      progress,
      pendingConfigIndex: this.role === "leader" && this.pendingConfigIndex > this.log.committed ? this.pendingConfigIndex : 0,
      transferee: this.transferee,
    };
  }

  /** The entries held in [from, to] (those compacted away are left out), for status pages and tests. */
  entriesBetween(from: number, to: number): Entry[] {
    return this.log.slice(Math.max(from, this.log.firstIndex()), to) ?? [];
  }

  // ---- roles ------------------------------------------------------------------------------

  private promotable(): boolean {
    return this.config.voters.includes(this.id);
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.progress.clear();
    this.transferee = null;
    this.readOnly.clear();
    this.readsBeforeCommit = [];
    this.pendingConfigIndex = 0;
  }

  private becomeFollower(term: number, leader: RaftNodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    // Neither the term nor the vote changes (thesis §9.6); the old leader is no longer followed.
    this.votes.clear();
    this.progress.clear();
    this.transferee = null;
    this.readOnly.clear();
    this.readsBeforeCommit = [];
    this.role = "preCandidate";
    this.leader = null;
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    const last = this.log.lastIndex();
    for (const id of this.config.voters) if (id !== this.id) this.progress.set(id, this.newProgress(last + 1));
    // Entries of earlier terms may hold a config change not known committed; no new change until
    // the no-op below commits (thesis §4.1, and the single-server change bug of 2015).
    this.pendingConfigIndex = last + 1;
    // §5.4.2 / §8: an empty entry of the new term lets earlier terms' entries commit.
    this.appendOwn("normal", EMPTY);
  }

  private newProgress(next: number): Progress {
    const pr = new Progress(next, this.cfg.maxInflightAppends);
    pr.recentActive = true;
    return pr;
  }

  /** The election timeout fired, or campaign() was called. */
  private hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (this.cfg.preVote && !transfer) this.startElection("preVote", false);
    else this.startElection("vote", transfer);
  }

  private startElection(kind: "vote" | "preVote", transfer: boolean): void {
    let term: number;
    if (kind === "preVote") {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    this.votes.set(this.id, true);
    if (tallyVotes(this.config, this.votes).outcome === "won") {
      // A single voter: nothing to ask.
      if (kind === "preVote") this.startElection("vote", false);
      else this.becomeLeader();
      return;
    }
    for (const id of this.config.voters) {
      if (id === this.id) continue;
      this.send({
        type: kind,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context: transfer ? TRANSFER_CAMPAIGN_CONTEXT : undefined,
      });
    }
  }

  // ---- ticks ------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // Thesis §6.2: a leader that has not heard from a quorum for an election timeout may be
        // cut off; it steps down so that clients look for the real leader.
        const active = isQuorum(this.config, (id) => id === this.id || this.progress.get(id)?.recentActive === true);
        if (!active) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const pr of this.progress.values()) pr.recentActive = false;
      }
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      this.transferee = null;
      for (const pr of this.progress.values()) pr.electionTimeoutPassed();
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.lastContext());
    }
  }

  private resetRandomizedElectionTimeout(): void {
    const ticks = this.cfg.electionTicks;
    const r = this.cfg.randomInt(ticks);
    // §5.2: in [electionTicks, 2*electionTicks); an answer out of range is clamped, not trusted.
    this.randomizedElectionTimeout = ticks + (Number.isInteger(r) ? Math.min(Math.max(r, 0), ticks - 1) : 0);
  }

  // ---- votes ------------------------------------------------------------------------------

  private handleVoteRequest(m: Message): void {
    // One vote per term (§5.2): granted again to the same candidate (a retried request); a
    // pre-vote for a future term binds nothing. §5.4.1: only to a log at least as up to date.
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leader === null) ||
      (m.type === "preVote" && m.term > this.term);
    const responseType: MessageType = m.type === "vote" ? "voteResponse" : "preVoteResponse";
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted answer carries the term asked about, so the pre-candidate counts it.
      this.send({ type: responseType, to: m.from, term: m.term });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    const expected: MessageType = this.role === "preCandidate" ? "preVoteResponse" : "voteResponse";
    switch (m.type) {
      case "append":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "snapshot":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case "readIndex":
        this.send({ type: "readIndexResponse", to: m.from, reject: true, context: m.context });
        return;
      default:
        break;
    }
    if (m.type !== expected) return;
    this.votes.set(m.from, !m.reject);
    const outcome = tallyVotes(this.config, this.votes).outcome;
    if (outcome === "won") {
      if (this.role === "preCandidate") this.startElection("vote", false);
      else this.becomeLeader();
    } else if (outcome === "lost") {
      // A pre-vote lost or a vote lost at this term: wait for the next timeout as a follower.
      this.becomeFollower(this.term, null);
    }
  }

  // ---- follower ---------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case "snapshot":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        return;
      case "timeoutNow":
        // Thesis §3.10: the leader hands over; campaign at once, skipping pre-vote.
        this.hup(true);
        return;
      case "readIndex":
        // Only the leader serves reads; a follower asked directly says no at once.
        this.send({ type: "readIndexResponse", to: m.from, reject: true, context: m.context });
        return;
      case "readIndexResponse":
        if (!m.reject && m.context !== undefined) this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      // Already committed here: say so, and the leader skips ahead.
      this.send({ type: "appendResponse", to: m.from, index: this.log.committed });
      return;
    }
    if (!this.entriesFollow(m)) return;
    const before = this.log.lastIndex();
    const result = this.log.maybeAppend(m.index, m.logTerm, m.entries);
    if (result) {
      this.afterAppend(result.truncatedFrom, before, m.entries);
      this.log.commitTo(Math.min(m.commit, result.lastNew));
      this.send({ type: "appendResponse", to: m.from, index: result.lastNew });
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) return; // would replace a committed entry: refused, unanswered
    // §5.3: the consistency check failed. The hint lets the leader skip a whole conflicting term.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: "appendResponse", to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  /** The entries of an append must follow its index without gaps, in term order, each valid. */
  private entriesFollow(m: Message): boolean {
    let term = m.logTerm;
    for (let i = 0; i < m.entries.length; i++) {
      const entry = m.entries[i]!;
      if (entry.index !== m.index + 1 + i || entry.term < term || entry.term > m.term) return false;
      term = entry.term;
      if (entry.kind === "config") {
        try {
          decodeConfigEntry(entry.data);
        } catch {
          return false;
        }
      }
    }
    return true;
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(its commit, this member's match): never past what matches here.
    if (m.commit <= this.log.lastIndex()) this.log.commitTo(m.commit);
    this.send({ type: "heartbeatResponse", to: m.from, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot!;
    const { index, term } = snapshot.meta;
    if (index <= this.log.committed) {
      this.send({ type: "appendResponse", to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // The log already holds it: only the commit moves (§7: entries after it are kept). Only
      // the log up to `index` is known to match the leader's; what follows may be an older
      // term's divergent suffix, so the answer claims no more than `index`.
      this.log.commitTo(index);
      this.send({ type: "appendResponse", to: m.from, index });
      return;
    }
    // §7: a snapshot newer than anything here replaces the log and the membership.
    this.log.installSnapshot(snapshot);
    this.baseConfig = cloneConfig(snapshot.meta.config);
    this.configIndexes = [];
    this.config = this.configInForce();
    this.send({ type: "appendResponse", to: m.from, index: this.log.lastIndex() });
  }

  // ---- leader -----------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "appendResponse": this.handleAppendResponse(m); return;
      case "heartbeatResponse": this.handleHeartbeatResponse(m); return;
      case "readIndex": this.leaderReadIndex(m.context ?? EMPTY, m.from); return;
      default: return;
    }
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    // An answer about entries this leader never had is not from a correct member: ignored.
    if (m.index > this.log.lastIndex()) return;
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(Math.min(m.rejectHint, this.log.lastIndex()), m.logTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.sendAppend(m.from, false);
      return;
    }
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    if (this.maybeCommit()) {
      if (this.role !== "leader") return;
      this.broadcastAppend();
    } else if (wasPaused) {
      // It was waiting for this answer: tell it the commit at least.
      this.sendAppend(m.from, true);
    }
    // Stream on while the window allows.
    while (this.role === "leader" && this.progress.get(m.from) === pr && this.sendAppend(m.from, false)) { /* next batch */ }
    if (this.transferee === m.from && pr.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to: m.from });
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.heartbeatAnswered();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.context === undefined || m.context.length === 0) return;
    const acks = this.readOnly.ack(m.from, m.context);
    if (!acks) return;
    if (!isQuorum(this.config, (id) => id === this.id || acks.has(id))) return;
    for (const read of this.readOnly.release(m.context)) this.answerRead(read.index, read.context, read.requesters);
  }

  private leaderReadIndex(context: Uint8Array, from: RaftNodeId): void {
    if (this.transferee !== null && from !== this.id) {
      // The leadership is moving: the new leader answers the retry.
      this.send({ type: "readIndexResponse", to: from, reject: true, context });
      return;
    }
    if (this.log.term(this.log.committed) !== this.term) {
      // Thesis §6.4: until an entry of its term commits, a new leader does not know the commit
      // index of the cluster; the read waits for the no-op.
      if (this.readsBeforeCommit.length < PENDING_READS_MAX) this.readsBeforeCommit.push({ context, from });
      return;
    }
    if (this.config.voters.length === 1 && this.config.voters[0] === this.id) {
      this.answerRead(this.log.committed, context, [from]);
      return;
    }
    if (!this.readOnly.add(this.log.committed, context, from)) return;
    this.broadcastHeartbeat(context);
  }

  private answerRead(index: number, context: Uint8Array, requesters: RaftNodeId[]): void {
    for (const to of requesters) {
      if (to === this.id) this.readStates.push({ index, context });
      else this.send({ type: "readIndexResponse", to, index, context });
    }
  }

  /** §5.3, §5.4.2: commit what a majority holds, but only by counting replicas of an entry of this term. */
  private maybeCommit(): boolean {
    const index = committedIndex(this.config, (id) => (id === this.id ? this.log.lastIndex() : this.progress.get(id)?.match ?? 0));
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    this.afterLeaderCommit();
    return true;
  }

  private afterLeaderCommit(): void {
    if (this.readsBeforeCommit.length > 0 && this.log.term(this.log.committed) === this.term) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const read of waiting) this.leaderReadIndex(read.context, read.from);
    }
    // Thesis §4.2.2: a leader removed from the config leads until the change commits, then steps down.
    const lastConfig = this.configIndexes[this.configIndexes.length - 1] ?? 0;
    if (!this.promotable() && lastConfig <= this.log.committed) {
      this.broadcastAppend();
      this.becomeFollower(this.term, null);
    }
  }

  private checkCanPropose(): void {
    if (this.role !== "leader") throw new ProposalDroppedError("not leader", this.leader);
    if (this.transferee !== null) throw new ProposalDroppedError("leadership transfer in progress", this.id);
  }

  /** The leader appends one entry of its term and replicates it. */
  private appendOwn(kind: "normal" | "config", data: Uint8Array): { index: number; term: number } {
    const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, kind, data };
    this.log.append([entry]);
    if (kind === "config") {
      this.configIndexes.push(entry.index);
      this.pendingConfigIndex = entry.index;
      this.applyConfig();
    }
    this.maybeCommit();
    if (this.role === "leader") this.broadcastAppend();
    return { index: entry.index, term: entry.term };
  }

  /** The config in force changed on the leader: progress follows the voter list. */
  private applyConfig(): void {
    this.config = this.configInForce();
    if (this.role !== "leader") return;
    const last = this.log.lastIndex();
    for (const id of this.config.voters) {
      if (id !== this.id && !this.progress.has(id)) this.progress.set(id, this.newProgress(last));
    }
    for (const id of [...this.progress.keys()]) if (!this.config.voters.includes(id)) this.progress.delete(id);
    if (this.transferee !== null && !this.config.voters.includes(this.transferee)) this.transferee = null;
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) this.sendAppend(id, true);
  }

  private broadcastHeartbeat(context: Uint8Array | undefined): void {
    for (const [id, pr] of this.progress) {
      this.send({ type: "heartbeat", to: id, commit: Math.min(pr.match, this.log.committed), context });
    }
  }

  /** Sends `to` what it lacks (entries, or the snapshot if they are compacted away); false if nothing was sent. */
  private sendAppend(to: RaftNodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.slice(pr.next, this.log.lastIndex(), this.cfg.maxEntriesPerAppend);
    if (prevTerm === undefined || entries === undefined) {
      // §7: the follower's next entry is compacted away. Not to a member that has not answered
      // lately (check-quorum's view): a whole snapshot would likely go nowhere.
      const snapshot = this.log.latestSnapshot;
      if (!snapshot || !pr.recentActive) return false;
      pr.becomeSnapshot(snapshot.meta.index);
      this.send({ type: "snapshot", to, snapshot });
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: "append", to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentAppend(entries.length, prevIndex + entries.length);
    return true;
  }

  // ---- follower log changes ---------------------------------------------------------------

  private afterAppend(truncatedFrom: number, lastBefore: number, entries: Entry[]): void {
    let changed = false;
    if (truncatedFrom > 0) {
      // Entries from truncatedFrom on were replaced: a config entry among them is undone.
      const kept = this.configIndexes.filter((i) => i < truncatedFrom);
      if (kept.length !== this.configIndexes.length) changed = true;
      this.configIndexes = kept;
    }
    const from = truncatedFrom > 0 ? truncatedFrom : lastBefore + 1;
    for (const entry of entries) {
      if (entry.index >= from && entry.kind === "config") {
        this.configIndexes.push(entry.index);
        changed = true;
      }
    }
    if (changed) this.applyConfig();
  }

  // ---- membership -------------------------------------------------------------------------

  private configInForce(): ClusterConfig {
    const last = this.configIndexes[this.configIndexes.length - 1];
    if (last === undefined) return cloneConfig(this.baseConfig);
    return { voters: decodeConfigEntry(this.log.entry(last)!.data).voters };
  }

  /** The membership as of `index` (for a snapshot taken there). */
  private configAt(index: number): ClusterConfig {
    const at = this.configIndexes.filter((i) => i <= index);
    const last = at[at.length - 1];
    if (last === undefined) return cloneConfig(this.baseConfig);
    return { voters: decodeConfigEntry(this.log.entry(last)!.data).voters };
  }

  // ---- plumbing ---------------------------------------------------------------------------

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { leader: this.leader, role: this.role };
  }

  private send(fields: Partial<Message> & { type: MessageType; to: RaftNodeId }): void {
    const m: Message = {
      type: fields.type,
      from: this.id,
      to: fields.to,
      term: fields.term ?? this.term,
      logTerm: fields.logTerm ?? 0,
      index: fields.index ?? 0,
      entries: fields.entries ?? [],
      commit: fields.commit ?? 0,
      reject: fields.reject ?? false,
      rejectHint: fields.rejectHint ?? 0,
    };
    if (fields.snapshot) m.snapshot = fields.snapshot;
    if (fields.context !== undefined) m.context = fields.context;
    this.messages.push(m);
  }
}

function checkConfig(config: RaftConfig): void {
  const positive = (n: number) => Number.isSafeInteger(n) && n >= 1;
  if (!positive(config.electionTicks)) throw new RangeError("raft electionTicks must be a positive integer");
  if (!positive(config.heartbeatTicks) || config.heartbeatTicks >= config.electionTicks) throw new RangeError("raft heartbeatTicks must be a positive integer below electionTicks");
  if (!positive(config.maxEntriesPerAppend)) throw new RangeError("raft maxEntriesPerAppend must be a positive integer");
  if (!positive(config.maxInflightAppends)) throw new RangeError("raft maxInflightAppends must be a positive integer");
}

const MESSAGE_TYPES = new Set<string>([
  "append", "appendResponse", "vote", "voteResponse", "preVote", "preVoteResponse", "heartbeat",
  "heartbeatResponse", "snapshot", "timeoutNow", "readIndex", "readIndexResponse",
]);

function isIndex(n: unknown): boolean {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** A message whose fields have the shapes the types promise (the decoder's job; checked again here, cheaply). */
function isWellFormed(m: Message): boolean {
  if (typeof m !== "object" || m === null || !MESSAGE_TYPES.has(m.type)) return false;
  if (typeof m.from !== "string" || typeof m.to !== "string") return false;
  if (!isIndex(m.term) || !isIndex(m.logTerm) || !isIndex(m.index) || !isIndex(m.commit) || !isIndex(m.rejectHint)) return false;
  if (typeof m.reject !== "boolean" || !Array.isArray(m.entries)) return false;
  for (const e of m.entries) {
    if (typeof e !== "object" || e === null || !isIndex(e.term) || !isIndex(e.index) || (e.kind !== "normal" && e.kind !== "config") || !(e.data instanceof Uint8Array)) return false;
  }
  if (m.context !== undefined && !(m.context instanceof Uint8Array)) return false;
  if (m.type === "snapshot") {
    const s = m.snapshot;
    if (!s || !isIndex(s.meta?.index) || !isIndex(s.meta?.term) || !(s.data instanceof Uint8Array) || !Array.isArray(s.meta.config?.voters)) return false;
    if (s.meta.index === 0 || s.meta.term === 0 || s.meta.term > m.term) return false;
    const voters = s.meta.config.voters as unknown[];
    if (voters.length > RAFT_VOTERS_MAX || !voters.every((id, i) => typeof id === "string" && (i === 0 || (voters[i - 1] as string) < id))) return false;
  }
  return true;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function cloneConfig(config: ClusterConfig): ClusterConfig {
  return { voters: [...config.voters] };
}
