// The strong mode's Raft group on this node: drives the pure state machine (core/raft) with
// ticks, messages from peers and proposals, and carries out each Ready it hands back, one at a
// time and in order:
//
//   1. on a follower, for every moveHead entry about to be persisted, make sure this node holds
//      the whole closure of its versions (fetched by Merkle descent from the leader first, then
//      the other members; strong-fetch.ts): a follower acknowledges an append only once it holds
//      what the entry's head names, so an acknowledged head is readable from a majority. A
//      snapshot's heads and their history are fetched the same way before it is persisted;
//   2. persist snapshot, entries and hard state in one metadata.saveRaft (persist before send);
//   3. send the messages, batched per peer, one request in flight per peer (peer-sender.ts);
//   4. apply the snapshot, then the committed entries in order (strong-state-machine.ts), and
//      record the applied index; resolve proposals by (index, term) and read barriers once
//      applied reaches their read index;
//   5. advance.
//
// Everything it waits on is bounded: proposals and read barriers time out with
// ConsensusUnavailableError naming the last known leader; every request to a peer has a
// deadline. A Ready that cannot be carried out (the metadata store failed, a closure could not
// be fetched) is never half-sent: the member is dropped and built again from what is durable,
// as after a crash, which Raft is made to survive.
//
// Every input is injected (node, transport, timers, clock, random source), so the seeded
// simulation runs this same code.
import { decodeConfigEntry } from "../core/raft/config-change.ts";
import { Raft } from "../core/raft/raft.ts";
import { idToHex } from "../core/id.ts";
import {
  ProposalDroppedError,
  type ConfigChange,
  type Entry,
  type Message,
  type PersistedRaft,
  type RaftConfig,
  type RaftMember,
  type RaftNodeId,
  type RaftRole,
  type Ready,
  type Snapshot,
  type SoftState,
} from "../core/raft/types.ts";
import type { Clock, RandomSource, Timers } from "../node/clock.ts";
import { RAFT_SAVE_LIMITS, type StoredRaft } from "../node/metadata-records.ts";
import type { DsyncNode, ReplicaVersion } from "../node/node.ts";
import type { PeerTransport } from "../replication/transport.ts";
import { RaftRefusedError, RaftUnavailableError, RAFT_WIRE_LIMITS, type RaftReply } from "../wire/raft-message.ts";
import { MemberAddresses } from "./member-addresses.ts";
import { PeerSender } from "./peer-sender.ts";
import { decodeStrongCommand, encodeStrongCommand } from "./strong-command.ts";
import {
  ConsensusUnavailableError,
  NotLeaderError,
  type ApplyOutcome,
  type ConsensusStatus,
  type MemberAddress,
  type MemberStatus,
  type StrongCommand,
  type StrongConsensus,
} from "./strong-consensus.ts";
import { ensureVersionsHeld, fetchHeadWithHistory, replicaRecord, type SourceBound } from "./strong-fetch.ts";
import { checkMoveHead } from "./strong-move-check.ts";
import { decodeSnapshotState, encodeSnapshotState, SNAPSHOT_FOLDERS_MAX, SNAPSHOT_MEMBERS_MAX, StrongStateMachine, type StrongSnapshotState } from "./strong-state-machine.ts";

/** Defaults: a tick of 100 ms, a heartbeat every tick, an election after 6 to 12 ticks (failover well within 1.5 s). */
export const RAFT_TICK_MS = 100;
export const RAFT_HEARTBEAT_TICKS = 1;
export const RAFT_ELECTION_TICKS = 6;
/** The largest snapshot data made: what one request (with its envelope) and one saveRaft can carry. */
export const SNAPSHOT_DATA_BYTES_MAX = Math.min(RAFT_WIRE_LIMITS.snapshotDataBytesMax, RAFT_SAVE_LIMITS.maxBytes) - 1024 * 1024;
/** Applied entries between two compactions of the log into a snapshot. */
export const RAFT_COMPACT_EVERY = 1000;
/** Entries per append message, and appends in flight to one follower. */
export const RAFT_MAX_ENTRIES_PER_APPEND = 64;
export const RAFT_MAX_INFLIGHT_APPENDS = 32;
/** Deadline of one batch of messages to a peer (the transport has its own too). */
export const RAFT_SEND_TIMEOUT_MS = 2_000;
export const RAFT_SNAPSHOT_SEND_TIMEOUT_MS = 120_000;
/** How long a stopping leader waits for its successor to take over. */
export const LEADERSHIP_TRANSFER_WAIT_MS = 1_000;
/** After a failed Ready, how long before the member is built again from what is durable. */
export const RECOVERY_DELAY_MS = 1_000;
/** Between two rounds of asking the peers who they are (bootstrap, addresses). */
export const PEER_PROBE_INTERVAL_MS = 1_000;
/** Appends waiting for their closure to be fetched, at most; more are dropped (the leader sends again). */
export const APPENDS_WAITING_MAX = 64;
/**
 * How far past this node's term a message's terms may be: a term is one election, and a million
 * elections while a member was away do not happen (pre-vote keeps a cut-off member's term).
 */
export const RAFT_TERM_JUMP_MAX = 2 ** 20;
/** Proposals waiting at once, at most: a burst lands in one Ready, whose save carries at most RAFT_SAVE_LIMITS.maxEntries. */
export const RAFT_PROPOSALS_MAX = 1024;
/** Read barriers waiting at once, at most (each is a timer and a map entry). */
export const READ_BARRIERS_MAX = 4096;

export type MemberFactory = (config: RaftConfig, persisted: PersistedRaft) => RaftMember;

export interface RaftDriverOptions {
  node: DsyncNode;
  /** How peers are reached; absent (no cluster token), or without `raft`, the group is this node alone. */
  transport?: PeerTransport;
  /** The base URLs of --peers. */
  peers?: readonly string[];
  timers: Timers;
  clock: Clock;
  random: RandomSource;
  log: (line: string) => void;
  /** Builds the pure state machine; default core/raft/raft.ts's Raft (tests give a wrapped one). */
  createMember?: MemberFactory;
  tickMs?: number;
  heartbeatTicks?: number;
  electionTicks?: number;
  compactEvery?: number;
  /** The fingerprint of the certificate the peer at `address` presents (TLS peers), to tie a request's proof to a member id. */
  peerFingerprint?: (address: string) => Promise<string | undefined>;
}

interface ProposalWaiter {
  term: number;
  resolve(outcome: ApplyOutcome | undefined): void;
  reject(error: Error): void;
  timer: unknown;
}

interface ReadWaiter {
  context: Uint8Array;
  index: number | null;
  resolve(): void;
  reject(error: Error): void;
  timer: unknown;
}

type Phase = "new" | "starting" | "running" | "recovering" | "stopped";

export class RaftDriver implements StrongConsensus {
  readonly nodeId: RaftNodeId;
  private readonly stateMachine: StrongStateMachine;
  private readonly addresses: MemberAddresses;
  private member: RaftMember | null = null;
  private phase: Phase = "new";
  private soft: SoftState = { leader: null, role: "follower" };
  /** Voters of the group as last known (for the probe reply while the member is being rebuilt). */
  private voters: RaftNodeId[] | null = null;
  private applied = 0;
  private snapshotIndex = 0;
  private readonly proposals = new Map<number, ProposalWaiter>();
  private readonly reads = new Map<string, ReadWaiter>();
  private readCounter = 0;
  /** Inputs that arrived while a Ready was being carried out: the member takes them after advance. */
  private inbox: Array<(member: RaftMember) => void> = [];
  private tickQueued = false;
  private inReady = false;
  private looping = false;
  private tickTimer: unknown = null;
  private probeTimer: unknown = null;
  private readonly senders = new Map<RaftNodeId, PeerSender>();
  private readonly lastContactMs = new Map<RaftNodeId, number>();
  private lastLeaderContactMs: number | null = null;
  private readonly idOfFingerprint = new Map<string, RaftNodeId>();
  private appendChain: Promise<void> = Promise.resolve();
  /** Proposals and config changes not yet settled (bounded by RAFT_PROPOSALS_MAX). */
  private proposalsWaiting = 0;
  private appendsWaiting = 0;
  /** Bumped when the append chain is given up (abandonChain): what was queued on it is dropped. */
  private appendChainGeneration = 0;
  /** The term of the append whose closure the chain is fetching now, if any. */
  private appendFetchTerm: number | null = null;
  /** Histories fetched for a snapshot before it was persisted, by snapshot index: what installing it records. */
  private snapshotContent: { index: number; state: StrongSnapshotState; histories: Map<string, ReplicaVersion[]> } | null = null;
  private readonly loggedAt = new Map<string, number>();
  /** Leader changes seen since the start (metrics: dsync_raft_leader_changes_total). */
  leaderChanges = 0;
  /** This process, as its replies name it: another process answering with this node's id holds a copy of its data. */
  private readonly instance: string;
  /** The address of another process answering with this node's id, when one did at the last probe. */
  private twinAt: string | null = null;

  constructor(private readonly options: RaftDriverOptions) {
    this.nodeId = options.node.nodeId;
    // Checked again at apply time: a collection may have taken objects of an entry acknowledged long ago.
    this.stateMachine = new StrongStateMachine(options.node, options.log, (versions) =>
      ensureVersionsHeld(options.node, options.transport, this.sources(), versions.map((v) => ({ id: v.id, root: v.root })), 1, this.whileLeaderHeard("a committed move's versions")),
    );
    this.addresses = new MemberAddresses(options.node.metadata);
    // Not from options.random: a draw there would move every seeded simulation's schedule, and
    // the instance steers nothing but the comparison of two processes' answers.
    this.instance = crypto.randomUUID();
  }

  private get tickMs(): number {
    return this.options.tickMs ?? RAFT_TICK_MS;
  }

  /** Whether peers can be reached for Raft at all. */
  private get clustered(): boolean {
    return this.options.transport?.raft !== undefined && (this.options.peers ?? []).length > 0;
  }

  // ---------- lifecycle ----------

  async start(): Promise<void> {
    if (this.phase !== "new") return;
    this.phase = "starting";
    await this.addresses.load();
    this.scheduleTick();
    if (!this.clustered) {
      // Alone: the group is this node, started now (no peer to ask, nothing to wait for).
      try {
        await this.initialize();
      } catch (error) {
        this.recover(error);
      }
      return;
    }
    this.probePeers();
  }

  async stop(): Promise<void> {
    if (this.phase === "stopped") return;
    await this.transferLeadershipAway();
    this.phase = "stopped";
    if (this.tickTimer !== null) this.options.timers.clearTimeout(this.tickTimer);
    if (this.probeTimer !== null) this.options.timers.clearTimeout(this.probeTimer);
    this.tickTimer = this.probeTimer = null;
    for (const sender of this.senders.values()) sender.stop();
    this.inbox = [];
    const stopping = new ConsensusUnavailableError("this node's Raft group is stopping", this.leader());
    for (const waiter of this.proposals.values()) this.settle(waiter, () => waiter.reject(stopping));
    this.proposals.clear();
    for (const read of this.reads.values()) this.settleRead(read, () => read.reject(stopping));
    this.reads.clear();
    // A Ready being persisted lands before the caller closes the metadata (bounded).
    await this.idle(5_000);
  }

  /** A leader hands over to the most caught-up follower first, waiting at most LEADERSHIP_TRANSFER_WAIT_MS. */
  private async transferLeadershipAway(): Promise<void> {
    const member = this.member;
    if (!member || this.phase !== "running" || !this.isLeader()) return;
    const status = member.status();
    const candidates = Object.entries(status.progress)
      .filter(([id]) => id !== this.nodeId && status.config.voters.includes(id))
      .sort(([, a], [, b]) => Number(b.recentActive) - Number(a.recentActive) || b.match - a.match);
    const target = candidates[0]?.[0];
    if (!target) return;
    this.act((m) => m.transferLeadership(target));
    // Counted in sleeps, not by the wall clock: a clock that jumps back must not stretch the wait.
    const step = Math.min(50, this.tickMs);
    for (let waited = 0; this.isLeader() && waited < LEADERSHIP_TRANSFER_WAIT_MS; waited += step) await this.sleep(step);
    if (this.isLeader()) this.options.log(`dsync: leadership did not pass to ${target} within ${LEADERSHIP_TRANSFER_WAIT_MS} ms; stopping anyway (the others elect a leader)`);
  }

  /**
   * Builds the member from what the metadata holds, deciding the bootstrap the first time.
   * False when it must wait (peers not all reachable yet).
   */
  private async initialize(): Promise<boolean> {
    const metadata = this.options.node.metadata;
    let stored = await metadata.loadRaft();
    if (!stored) {
      const voters = await this.decideBootstrap();
      if (voters === undefined) return false;
      await metadata.saveRaft({ bootstrapConfig: voters === null ? null : { voters } });
      if (voters === null) this.options.log("dsync: the peers already run a Raft group; this node waits to be added (dsync cluster add)");
      else this.options.log(`dsync: Raft group started with ${voters.length} member(s): ${voters.join(", ")}`);
      stored = await metadata.loadRaft();
      if (!stored) throw new Error("the metadata store kept no Raft state after saving it");
    }
    if (this.phase === "stopped") return false;
    if (stored.snapshot && stored.applied < stored.snapshot.meta.index) {
      // Stored before a crash, not installed yet: bring its heads and install it now.
      await this.fetchSnapshotContent(stored.snapshot, this.otherAddresses());
      await this.installSnapshot(stored.snapshot);
      stored = { ...stored, applied: stored.snapshot.meta.index };
    }
    const persisted = persistedFrom(stored);
    this.applied = persisted.applied;
    this.snapshotIndex = stored.snapshot?.meta.index ?? 0;
    this.member = (this.options.createMember ?? ((config, from) => new Raft(config, from)))(this.raftConfig(), persisted);
    this.voters = this.member.status().config.voters;
    this.phase = "running";
    this.soft = { leader: null, role: "follower" };
    // Alone in its group: no one to wait for, it leads at once.
    if (this.voters.length === 1 && this.voters[0] === this.nodeId) this.member.campaign();
    this.kick();
    return true;
  }

  private raftConfig(): RaftConfig {
    const random = this.options.random;
    return {
      id: this.nodeId,
      electionTicks: this.options.electionTicks ?? RAFT_ELECTION_TICKS,
      heartbeatTicks: this.options.heartbeatTicks ?? RAFT_HEARTBEAT_TICKS,
      preVote: true,
      checkQuorum: true,
      randomInt: (bound) => {
        const b = random.bytes(4);
        return (((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!) % bound;
      },
      maxEntriesPerAppend: RAFT_MAX_ENTRIES_PER_APPEND,
      maxInflightAppends: RAFT_MAX_INFLIGHT_APPENDS,
    };
  }

  /**
   * The voters to start a new group with, null to wait to be added, undefined to ask again
   * later. Only when every peer answered and none runs a group does this node start one: of
   * itself and all its peers, the same on every initial member when their --peers agree. A peer
   * that runs a group naming this node (an initial member that started first) gives its voters.
   */
  private async decideBootstrap(): Promise<RaftNodeId[] | null | undefined> {
    if (!this.clustered) return [this.nodeId];
    const replies = await this.askPeers();
    for (const reply of replies) {
      if (reply?.voters && reply.voters.length > 0) return reply.voters.includes(this.nodeId) ? [...reply.voters].sort() : null;
    }
    if (replies.some((reply) => reply === undefined)) return undefined;
    return [...new Set([this.nodeId, ...replies.map((reply) => reply!.node)])].sort();
  }

  /** Asks every peer who it is (an empty batch), learning ids, addresses and certificates; undefined for a peer that did not answer. */
  private async askPeers(): Promise<(RaftReply | undefined)[]> {
    const transport = this.options.transport!;
    return Promise.all(
      (this.options.peers ?? []).map(async (address) => {
        try {
          const reply = await transport.raft!(address, []);
          if (reply.node === this.nodeId) {
            if (reply.instance !== undefined && reply.instance !== this.instance) {
              // Another process with this node's id (a data folder copied, or this one a copy):
              // two voters under one id could each vote in a term and elect two leaders.
              this.twinAt = address;
              this.logOnce(`twin:${address}`, `dsync: the node at ${address} answers with this node's id, ${this.nodeId}: one of the two runs on a copy of the other's data folder. This node takes no part in the Raft group while it answers; stop one of them (a copy is made a node of its own by removing its node-id file and its metadata, then dsync cluster add)`);
              return undefined;
            }
            // Counted as answered, and left out of the group (it would be this node twice).
            this.logOnce(`self:${address}`, `dsync: peer ${address} is this node itself; it is left out of the Raft group`);
            return { node: this.nodeId, voters: null };
          }
          await this.addresses.set(reply.node, address);
          // Which certificate is this member's (TLS peers): a request proving another is not its.
          const fingerprint = await this.options.peerFingerprint?.(address).catch(() => undefined);
          if (fingerprint) this.idOfFingerprint.set(fingerprint, reply.node);
          return reply;
        } catch {
          return undefined;
        }
      }),
    );
  }

  /** Until the member runs and every peer's id is known: ask the peers again every PEER_PROBE_INTERVAL_MS. */
  private probePeers(): void {
    if (this.phase === "stopped") return;
    void (async () => {
      try {
        if (this.phase === "starting") {
          // Before this node's votes and acknowledgements go anywhere: no other process holds its id.
          this.twinAt = null;
          if ((await metadataHoldsRaft(this.options.node)) && this.phase === "starting") await this.askPeers();
          if (this.twinAt === null) await this.initialize();
        }
        // A member restarted from its stored state still learns at once where its peers are.
        if (this.phase === "running" && (this.options.peers ?? []).some((address) => this.addresses.idAt(address) === undefined)) await this.askPeers();
      } catch (error) {
        this.logOnce("init", `dsync: starting the Raft group failed: ${(error as Error).message}; trying again`);
      }
      const unknown = (this.options.peers ?? []).some((address) => this.addresses.idAt(address) === undefined);
      if (this.phase === "starting" || (this.phase === "running" && unknown)) {
        this.probeTimer = this.options.timers.setTimeout(() => this.probePeers(), PEER_PROBE_INTERVAL_MS);
      }
    })();
  }

  private scheduleTick(): void {
    this.tickTimer = this.options.timers.setTimeout(() => {
      if (this.phase === "stopped") return;
      if (this.member) {
        if (this.inReady) {
          // A slow Ready (a fetch, a slow disk) does not become an election: one tick waits, not many.
          if (!this.tickQueued) {
            this.tickQueued = true;
            this.inbox.push((m) => {
              this.tickQueued = false;
              m.tick();
            });
          }
        } else {
          this.member.tick();
          this.kick();
        }
      }
      if (this.isLeader()) this.lastLeaderContactMs = this.options.clock.nowMs();
      this.scheduleTick();
    }, this.tickMs);
  }

  // ---------- the loop ----------

  /** Runs `input` on the member now, or after the Ready being carried out; dropped when there is no member. */
  private act(input: (member: RaftMember) => void): void {
    if (!this.member || this.phase === "stopped") return;
    if (this.inReady || this.looping) this.inbox.push(input);
    else {
      this.runInput(input, this.member);
      this.kick();
    }
  }

  /** One input; one that throws (a transfer to a non-member, say) is logged and changes nothing else. */
  private runInput(input: (member: RaftMember) => void, member: RaftMember): void {
    try {
      input(member);
    } catch (error) {
      this.options.log(`dsync: the Raft group refused an input: ${(error as Error).message}`);
    }
  }

  private kick(): void {
    if (!this.looping) void this.run();
  }

  private async run(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      for (;;) {
        const member = this.member;
        if (!member || this.phase === "stopped") break;
        const inputs = this.inbox;
        this.inbox = [];
        for (const input of inputs) this.runInput(input, member);
        if (!member.hasReady()) {
          if (this.inbox.length === 0) break;
          continue;
        }
        const ready = member.ready();
        this.inReady = true;
        try {
          await this.carryOut(ready);
        } finally {
          this.inReady = false;
        }
        if (this.member !== member) break;
        member.advance(ready);
        this.resolveReads();
        await this.maybeCompact(member);
      }
    } catch (error) {
      this.recover(error);
    } finally {
      this.looping = false;
    }
  }

  /** Steps 1 to 4 of a Ready (advance is the caller's). */
  private async carryOut(ready: Ready): Promise<void> {
    const metadata = this.options.node.metadata;
    if (ready.softState) this.noteSoftState(ready.softState);
    // 1. What the entries and snapshot name is here before anything is persisted or acknowledged.
    if (ready.snapshot) await this.fetchSnapshotContent(ready.snapshot, this.sources());
    if (ready.entries.length > 0 && this.soft.role !== "leader") await this.ensureEntriesHeld(ready.entries, 2);
    // 2. Persist before send.
    if (ready.hardState || ready.entries.length > 0 || ready.snapshot) {
      await metadata.saveRaft({ hardState: ready.hardState, entries: ready.entries.length > 0 ? ready.entries : undefined, snapshot: ready.snapshot });
    }
    for (const entry of ready.entries) if (entry.kind === "config") await this.learnAddressOf(entry);
    if (ready.hardState) this.voters = this.member?.status().config.voters ?? this.voters;
    if (ready.hardState && this.appendFetchTerm !== null && ready.hardState.term > this.appendFetchTerm) this.abandonChain(ready.hardState.term);
    // 3. Send.
    this.send(ready.messages);
    // 4. Apply.
    if (ready.snapshot) await this.installSnapshot(ready.snapshot);
    for (const entry of ready.committedEntries) await this.applyEntry(entry);
    if (ready.committedEntries.length > 0) await metadata.setRaftApplied(this.applied);
    for (const state of ready.readStates) {
      const read = this.reads.get(idToHex(state.context));
      if (read) read.index = state.index;
    }
    this.voters = this.member?.status().config.voters ?? this.voters;
  }

  private noteSoftState(soft: SoftState): void {
    const before = this.soft.leader;
    this.soft = { ...soft };
    if (soft.leader !== null && soft.leader !== before) {
      const term = this.member?.status().term ?? 0;
      this.options.log(`dsync: the Raft group's leader is ${soft.leader === this.nodeId ? "this node" : soft.leader} (term ${term})`);
      this.leaderChanges++;
      this.lastLeaderContactMs = this.options.clock.nowMs();
      // Reads asked while no one led were dropped by the member: ask the new leader.
      for (const read of this.reads.values()) {
        if (read.index === null) this.inbox.push((m) => m.readIndex(read.context));
      }
    }
  }

  /**
   * A Ready that could not be carried out (the metadata store failed, a closure could not be
   * fetched): nothing of it was sent. The member is dropped and, after RECOVERY_DELAY_MS, built
   * again from what is durable, as after a crash.
   */
  private recover(error: unknown): void {
    if (this.phase === "stopped") return;
    // Once a minute at most: an outage of the metadata store fails every attempt until it is back.
    this.logOnce("recover", `dsync: the Raft group stopped on an error, restarting it from what is stored in ${RECOVERY_DELAY_MS} ms: ${(error as Error)?.message ?? String(error)}`);
    this.member = null;
    this.phase = "recovering";
    this.inbox = [];
    this.tickQueued = false;
    this.soft = { leader: null, role: "follower" };
    this.snapshotContent = null;
    const unavailable = new ConsensusUnavailableError("this node's Raft group is restarting after an error", null);
    for (const read of this.reads.values()) this.settleRead(read, () => read.reject(unavailable));
    this.reads.clear();
    // Proposals stay: they may still commit; their own deadlines settle them.
    const again = () => {
      if (this.phase !== "recovering") return;
      this.phase = "starting";
      this.initialize().then(
        (started) => {
          if (!started && this.phase === "starting") this.options.timers.setTimeout(again, RECOVERY_DELAY_MS);
        },
        (failure: unknown) => {
          this.phase = "recovering";
          this.logOnce("recover-again", `dsync: restarting the Raft group failed: ${(failure as Error).message}; trying again`);
          this.options.timers.setTimeout(again, RECOVERY_DELAY_MS);
        },
      );
    };
    this.options.timers.setTimeout(again, RECOVERY_DELAY_MS);
  }

  /** Resolves once no Ready is being carried out, or after `timeoutMs`. */
  private async idle(timeoutMs: number): Promise<void> {
    for (let waited = 0; this.looping && waited < timeoutMs; waited += 10) await this.sleep(10);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.options.timers.setTimeout(resolve, ms));
  }

  // ---------- closures ----------

  /** Where to fetch what an entry names: the leader first, then the other members. */
  private sources(): string[] {
    const leader = this.soft.leader && this.soft.leader !== this.nodeId ? this.addresses.get(this.soft.leader) : undefined;
    const others = this.otherAddresses().filter((address) => address !== leader);
    return leader ? [leader, ...others] : others;
  }

  private otherAddresses(): string[] {
    const out: string[] = [];
    for (const [id, address] of this.addresses.entries()) if (id !== this.nodeId) out.push(address);
    for (const address of this.options.peers ?? []) if (!out.includes(address)) out.push(address);
    return out;
  }

  /**
   * Bounds a fetch made at apply time: the one from the leader is given up (for the next member)
   * once the leader is not heard from for the longest election timeout. A committed entry cannot
   * be dropped as an append can (abandonChain): it must be applied before the next, with the loop
   * waiting on it, so a leader stopped mid-fetch (SIGSTOP) would hold this member (no vote, no
   * append) for the download's two-minute deadline. A majority acknowledged the entry, each
   * holding what it names; a leader that is alive sends heartbeats every tick, even while it
   * serves a long fetch, so that one runs to its own deadline. Other members' fetches do too.
   */
  private whileLeaderHeard(what: string): SourceBound {
    const leader = this.soft.leader && this.soft.leader !== this.nodeId ? this.soft.leader : null;
    const leaderAddress = leader ? this.addresses.get(leader) : undefined;
    const lostAfterMs = 2 * (this.options.electionTicks ?? RAFT_ELECTION_TICKS) * this.tickMs;
    const pollMs = Math.max(10, Math.min(200, lostAfterMs / 4));
    return <T>(source: string, fetch: Promise<T>): Promise<T> => {
      if (leader === null || source !== leaderAddress) return fetch;
      const startedMs = this.options.clock.nowMs();
      let done = false;
      let timer: unknown = null;
      const lost = new Promise<never>((_, reject) => {
        const check = () => {
          timer = null;
          if (done) return;
          const heardMs = Math.max(startedMs, this.lastContactMs.get(leader) ?? 0);
          if (this.options.clock.nowMs() - heardMs <= lostAfterMs) {
            timer = this.options.timers.setTimeout(check, pollMs);
            return;
          }
          this.logOnce("fetch-leader-lost", `dsync: gave up fetching ${what} from the leader ${leader}: not heard from within ${lostAfterMs} ms; asking the other members`);
          reject(new Error(`the leader ${leader} was not heard from within ${lostAfterMs} ms`));
        };
        timer = this.options.timers.setTimeout(check, pollMs);
      });
      // The loser of the race is not waited for: its rejection is taken here, not reported as unhandled.
      fetch.catch(() => {});
      return Promise.race([fetch, lost]).finally(() => {
        done = true;
        if (timer !== null) this.options.timers.clearTimeout(timer);
      });
    };
  }

  /** Fetches what the moveHead entries name (every version's object and whole tree), bounded; throws when it cannot. */
  private async ensureEntriesHeld(entries: readonly Entry[], rounds: number, leaderFirst?: RaftNodeId): Promise<void> {
    const versions = [];
    const moves: Extract<StrongCommand, { op: "moveHead" }>[] = [];
    for (const entry of entries) {
      if (entry.kind !== "normal" || entry.data.length === 0) continue;
      let command: StrongCommand;
      try {
        command = decodeStrongCommand(entry.data);
      } catch {
        continue; // applied as nothing, on every member alike (applyEntry)
      }
      if (command.op === "moveHead") {
        versions.push(...command.versions.map((v) => ({ id: v.id, root: v.root })));
        moves.push(command);
      }
    }
    if (versions.length === 0) return;
    let sources = this.sources();
    const first = leaderFirst ? this.addresses.get(leaderFirst) : undefined;
    if (first) sources = [first, ...sources.filter((s) => s !== first)];
    await ensureVersionsHeld(this.options.node, this.options.transport, sources, versions, rounds);
    // Held, and as its objects say: a move whose records lie, or whose head does not build on the head it moves from, is not acknowledged.
    for (const move of moves) await checkMoveHead((id) => this.options.node.decodeVersion(id), move);
  }

  /** A snapshot's heads and their histories, fetched and checked before it is persisted. */
  private async fetchSnapshotContent(snapshot: Snapshot, sources: readonly string[]): Promise<void> {
    const state = decodeSnapshotState(snapshot.data);
    const histories = new Map<string, ReplicaVersion[]>();
    const node = this.options.node;
    for (const folder of state.folders) {
      if (folder.head === null) continue;
      const local = await node.findFolder(folder.name);
      if (local?.head && idToHex(local.head) === idToHex(folder.head)) continue;
      if (await node.hasVersion(folder.name, folder.head)) continue;
      const transport = this.options.transport;
      if (!transport) throw new Error(`a snapshot names head ${idToHex(folder.head)} of ${folder.name}, and this node has no peer to fetch it from`);
      let last: unknown;
      let fetched: ReplicaVersion[] | undefined;
      const bound = this.whileLeaderHeard("the history a snapshot names");
      for (const source of sources) {
        try {
          fetched = await bound(source, fetchHeadWithHistory(node, transport, source, folder.name, folder.head, local?.head ? await node.vectorOf(local.head) : undefined));
          break;
        } catch (error) {
          last = error;
        }
      }
      if (!fetched) throw new Error(`could not fetch head ${idToHex(folder.head)} of ${folder.name} for a snapshot: ${(last as Error)?.message ?? "no member to ask"}`);
      histories.set(folder.name, fetched);
    }
    this.snapshotContent = { index: snapshot.meta.index, state, histories };
  }

  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    const content = this.snapshotContent?.index === snapshot.meta.index ? this.snapshotContent : null;
    if (!content) throw new Error(`snapshot at ${snapshot.meta.index} was not fetched before it was installed`);
    const nowMs = this.options.clock.nowMs();
    const records = new Map([...content.histories].map(([folder, versions]) => [folder, versions.map((v) => replicaRecord(v, nowMs))]));
    await this.stateMachine.install(content.state, records, nowMs);
    for (const { id, address } of content.state.addresses) if (id !== this.nodeId) await this.addresses.set(id, address);
    this.snapshotContent = null;
    this.applied = Math.max(this.applied, snapshot.meta.index);
    this.snapshotIndex = snapshot.meta.index;
    await this.options.node.metadata.setRaftApplied(snapshot.meta.index);
    // Proposals the snapshot covers: whether each made it is not known here.
    for (const [index, waiter] of this.proposals) {
      if (index > snapshot.meta.index) continue;
      this.proposals.delete(index);
      this.settle(waiter, () => waiter.reject(new ConsensusUnavailableError("the log moved past this proposal while this node caught up; it may or may not have been applied", this.leader())));
    }
  }

  // ---------- applying ----------

  private async learnAddressOf(entry: Entry): Promise<void> {
    try {
      const { change } = decodeConfigEntry(entry.data);
      if (change.type === "add" && change.node !== this.nodeId) await this.addresses.set(change.node, change.address);
    } catch {
      // A config entry this node cannot read: the member refuses it too (core/raft).
    }
  }

  private async applyEntry(entry: Entry): Promise<void> {
    let outcome: ApplyOutcome | undefined;
    let problem: string | undefined;
    if (entry.kind === "config") {
      await this.learnAddressOf(entry);
    } else if (entry.data.length > 0) {
      let command: StrongCommand | undefined;
      try {
        command = decodeStrongCommand(entry.data);
      } catch (error) {
        // Every member decodes the same bytes the same way: all skip it alike.
        problem = (error as Error).message;
        this.options.log(`dsync: log entry ${entry.index} is not a command this node reads (${problem}); nothing applied`);
      }
      if (command) outcome = await this.stateMachine.apply(command);
    }
    this.applied = entry.index;
    const waiter = this.proposals.get(entry.index);
    if (!waiter) return;
    this.proposals.delete(entry.index);
    if (waiter.term !== entry.term) {
      this.settle(waiter, () => waiter.reject(new ConsensusUnavailableError("the proposal was lost in a change of leader (another entry took its place in the log); it was not applied", this.leader())));
    } else if (problem !== undefined) {
      this.settle(waiter, () => waiter.reject(new Error(`the proposal could not be read back from the log: ${problem}`)));
    } else {
      this.settle(waiter, () => waiter.resolve(outcome));
    }
  }

  private async maybeCompact(member: RaftMember): Promise<void> {
    if (this.applied - this.snapshotIndex < (this.options.compactEvery ?? RAFT_COMPACT_EVERY)) return;
    const index = this.applied;
    const state = await this.stateMachine.state(this.addresses.entries());
    if (this.member !== member || this.applied !== index) return;
    if (state.folders.length > SNAPSHOT_FOLDERS_MAX || state.addresses.length > SNAPSHOT_MEMBERS_MAX) {
      // More than a follower decodes (decodeSnapshotState): the log is kept, as for size.
      this.logOnce("snapshot-count", `dsync: ${state.folders.length} strong folders and ${state.addresses.length} member addresses, above the ${SNAPSHOT_FOLDERS_MAX} and ${SNAPSHOT_MEMBERS_MAX} a snapshot may name; the Raft log is not compacted`);
      return;
    }
    const data = encodeSnapshotState(state);
    if (data.length > SNAPSHOT_DATA_BYTES_MAX) {
      // A snapshot no follower could take in one request: the log is kept instead (it only grows).
      this.logOnce("snapshot-size", `dsync: the strong folders' snapshot is ${data.length} bytes, above the ${SNAPSHOT_DATA_BYTES_MAX} a snapshot may be; the Raft log is not compacted`);
      return;
    }
    const snapshot = member.compact(index, data);
    await this.options.node.metadata.compactRaft(snapshot);
    this.snapshotIndex = index;
  }

  // ---------- sending ----------

  private send(messages: readonly Message[]): void {
    const byPeer = new Map<RaftNodeId, Message[]>();
    for (const message of messages) {
      const list = byPeer.get(message.to) ?? [];
      list.push(message);
      byPeer.set(message.to, list);
    }
    for (const [to, list] of byPeer) {
      const sender = this.senderFor(to);
      if (sender) sender.enqueue(list);
      else {
        this.logOnce(`address:${to}`, `dsync: no address known for Raft member ${to}; messages to it are dropped (give it in --peers)`);
        this.inbox.push((m) => m.reportUnreachable(to));
      }
    }
  }

  private senderFor(to: RaftNodeId): PeerSender | undefined {
    const existing = this.senders.get(to);
    if (existing) return existing;
    const transport = this.options.transport;
    if (!transport?.raft || this.addresses.get(to) === undefined) return undefined;
    const sender = new PeerSender({
      send: async (batch) => {
        const address = this.addresses.get(to)!;
        const reply = await transport.raft!(address, batch);
        if (reply.node !== to) throw new Error(`${address} is node ${reply.node}, not ${to}`);
      },
      onSent: (batch) => {
        if (batch.some((m) => m.snapshot)) this.act((m) => m.reportSnapshot(to, true));
      },
      onFailed: (batch, error) => {
        this.logOnce(`send:${to}`, `dsync: Raft messages to ${to} (${this.addresses.get(to)}) did not go: ${(error as Error)?.message ?? String(error)}`);
        if (batch.some((m) => m.snapshot)) this.act((m) => m.reportSnapshot(to, false));
        this.act((m) => m.reportUnreachable(to));
      },
      timers: this.options.timers,
      timeoutMs: RAFT_SEND_TIMEOUT_MS,
      snapshotTimeoutMs: RAFT_SNAPSHOT_SEND_TIMEOUT_MS,
    });
    this.senders.set(to, sender);
    return sender;
  }

  // ---------- receiving ----------

  /**
   * A batch of messages from a peer (POST /v1/peer/raft, or the simulation's network). Refused
   * whole (RaftRefusedError, nothing changed) when one is not for this node, when they are not
   * all from one sender, when the request's certificate belongs to another member, or when the
   * sender is not a member of this node's config (but a leader may reach a node that has no
   * config yet, or is not in its own: how an added member catches up).
   */
  async receiveRaft(messages: Message[], senderFingerprint: string | undefined): Promise<RaftReply> {
    const reply: RaftReply = { node: this.nodeId, voters: this.member ? this.member.status().config.voters : this.voters, instance: this.instance };
    if (messages.length === 0) return reply;
    const member = this.member;
    if (!member || this.phase !== "running") throw new RaftUnavailableError("this node's Raft group is not running yet");
    const from = messages[0]!.from;
    for (const message of messages) {
      if (message.to !== this.nodeId) throw new RaftRefusedError(`a message for ${message.to} was sent to ${this.nodeId}`);
      if (message.from !== from) throw new RaftRefusedError("a batch of Raft messages comes from one member");
    }
    if (from === this.nodeId) throw new RaftRefusedError("a message from this node's own id came from elsewhere");
    if (senderFingerprint !== undefined) {
      const owner = this.idOfFingerprint.get(senderFingerprint);
      if (owner !== undefined && owner !== from) throw new RaftRefusedError(`messages from ${from} came with the certificate of ${owner}`);
    }
    const voters = member.status().config.voters;
    if (!voters.includes(from)) {
      const outside = voters.length === 0 || !voters.includes(this.nodeId);
      const fromALeader = messages.every((m) => m.type === "append" || m.type === "heartbeat" || m.type === "snapshot");
      if (!outside || !fromALeader) throw new RaftRefusedError(`${from} is not a member of this node's Raft group`);
    }
    // Terms only grow: one message naming a term near 2^53 would leave the group no term to
    // elect in (the next is not a safe integer, which no member decodes), for good, since the term
    // is durable. A term far ahead of this node's is refused, so a member holding the cluster
    // token needs about 2^33 rounds of the group adopting its terms, not one message.
    const termMax = member.status().term + RAFT_TERM_JUMP_MAX;
    for (const message of messages) {
      const highest = Math.max(message.term, message.logTerm, message.snapshot?.meta.term ?? 0, ...message.entries.map((e) => e.term));
      if (highest > termMax) throw new RaftRefusedError(`a message from ${from} names term ${highest}, more than ${RAFT_TERM_JUMP_MAX} past this node's ${termMax - RAFT_TERM_JUMP_MAX}`);
    }
    const nowMs = this.options.clock.nowMs();
    this.lastContactMs.set(from, nowMs);
    if (from === this.soft.leader) this.lastLeaderContactMs = nowMs;
    for (const message of messages) {
      if (message.type === "append" && (this.appendsWaiting > 0 || this.namesVersions(message))) this.afterClosure(message);
      else this.act((m) => m.step(message));
    }
    return reply;
  }

  private namesVersions(message: Message): boolean {
    return message.entries.some((e) => e.kind === "normal" && e.data.length > 0);
  }

  /**
   * An append naming versions is stepped once what they name is here (fetched from its sender
   * first), in the order appends arrived; heartbeats and votes go on meanwhile, so a follower
   * busy fetching a large push still answers its leader. One that cannot be fetched is dropped:
   * the leader sends it again. The chain is given up when this member's term passes that of the
   * append it is fetching for (abandonChain).
   */
  private afterClosure(message: Message): void {
    if (this.appendsWaiting >= APPENDS_WAITING_MAX) return;
    this.appendsWaiting++;
    const generation = this.appendChainGeneration;
    this.appendChain = this.appendChain.then(async () => {
      if (generation !== this.appendChainGeneration) return;
      try {
        this.appendFetchTerm = message.term;
        await this.ensureEntriesHeld(message.entries, 1, message.from);
        if (generation !== this.appendChainGeneration) return;
        this.act((m) => m.step(message));
      } catch (error) {
        if (generation !== this.appendChainGeneration) return;
        this.logOnce(`fetch:${message.from}`, `dsync: an append from ${message.from} waits: ${(error as Error).message}`);
      } finally {
        if (generation === this.appendChainGeneration) {
          this.appendFetchTerm = null;
          this.appendsWaiting--;
        }
      }
    });
  }

  /**
   * The term passed that of the append whose closure the chain is fetching: that append and
   * what queued behind it are dropped (lost messages, to Raft: a leader sends again), and a new
   * chain starts. A leader that stopped answering mid-fetch (SIGSTOP, a frozen VM) would
   * otherwise hold the chain for the transport's whole deadline (two minutes for a download),
   * and with it every append of the next leader, so nothing of the new term could commit.
   * Stepped, the fetched append would be refused anyway (its term is past, durably: this runs
   * once the new term is saved). The fetch given up goes on alone to its own deadline and
   * changes nothing but the objects it stores (at most one a term).
   */
  private abandonChain(term: number): void {
    this.logOnce("abandon-chain", `dsync: gave up fetching what an append of term ${this.appendFetchTerm} names: this member is at term ${term} now`);
    this.appendChainGeneration++;
    this.appendChain = Promise.resolve();
    this.appendsWaiting = 0;
    this.appendFetchTerm = null;
  }

  // ---------- StrongConsensus ----------

  isLeader(): boolean {
    return this.member !== null && this.soft.role === "leader" && this.soft.leader === this.nodeId;
  }

  leader(): MemberAddress | null {
    const id = this.soft.leader;
    if (id === null) return null;
    return { id, address: id === this.nodeId ? null : (this.addresses.get(id) ?? null) };
  }

  async propose(command: StrongCommand, timeoutMs: number): Promise<ApplyOutcome> {
    this.requireRunning();
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
    const data = encodeStrongCommand(command);
    const outcome = await this.appendToLog(timeoutMs, (m) => m.propose(data));
    if (!outcome) throw new Error("the log applied the proposal as nothing");
    return outcome;
  }

  async changeMembership(change: ConfigChange, timeoutMs: number): Promise<void> {
    this.requireRunning();
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
    // Known before the entry is appended: the new member is in the config (and sent to) from then on.
    if (change.type === "add") await this.addresses.set(change.node, change.address);
    await this.appendToLog(timeoutMs, (m) => m.proposeConfigChange(change));
  }

  /** Appends through `append` and waits until that entry is applied here, at most `timeoutMs`. */
  private appendToLog(timeoutMs: number, append: (member: RaftMember) => { index: number; term: number }): Promise<ApplyOutcome | undefined> {
    if (this.proposalsWaiting >= RAFT_PROPOSALS_MAX) {
      return Promise.reject(new ConsensusUnavailableError(`${RAFT_PROPOSALS_MAX} proposals are waiting already; nothing was proposed`, this.leader()));
    }
    this.proposalsWaiting++;
    const waited = new Promise<ApplyOutcome | undefined>((resolve, reject) => {
      let index: number | null = null;
      const waiter: ProposalWaiter = {
        term: 0,
        resolve,
        reject,
        timer: this.options.timers.setTimeout(() => {
          if (index !== null) this.proposals.delete(index);
          reject(new ConsensusUnavailableError(`not committed within ${timeoutMs} ms (no quorum reached, or leadership changed): it may still be applied`, this.leader()));
        }, timeoutMs),
      };
      this.act((member) => {
        try {
          const at = append(member);
          index = at.index;
          waiter.term = at.term;
          this.proposals.set(at.index, waiter);
        } catch (error) {
          this.options.timers.clearTimeout(waiter.timer);
          if (error instanceof ProposalDroppedError) {
            reject(error.reason === "not leader" ? new NotLeaderError(this.addressOf(error.leader)) : new ConsensusUnavailableError(`the leader cannot take it now: ${error.reason}`, this.leader()));
          } else reject(error as Error);
        }
      });
    });
    const done = () => void this.proposalsWaiting--;
    waited.then(done, done);
    return waited;
  }

  async readBarrier(timeoutMs: number): Promise<void> {
    this.requireRunning();
    if (this.reads.size >= READ_BARRIERS_MAX) throw new ConsensusUnavailableError("too many linearizable reads waiting", this.leader());
    const context = new TextEncoder().encode(`${this.nodeId}:${++this.readCounter}`);
    const key = idToHex(context);
    await new Promise<void>((resolve, reject) => {
      const read: ReadWaiter = {
        context,
        index: null,
        resolve,
        reject,
        timer: this.options.timers.setTimeout(() => {
          this.reads.delete(key);
          reject(new ConsensusUnavailableError(`no leader with a quorum confirmed a read within ${timeoutMs} ms`, this.leader()));
        }, timeoutMs),
      };
      this.reads.set(key, read);
      this.act((m) => m.readIndex(context));
    });
  }

  private resolveReads(): void {
    for (const [key, read] of this.reads) {
      if (read.index === null || read.index > this.applied) continue;
      this.reads.delete(key);
      this.settleRead(read, () => read.resolve());
    }
  }

  private settle(waiter: ProposalWaiter, outcome: () => void): void {
    this.options.timers.clearTimeout(waiter.timer);
    outcome();
  }

  private settleRead(read: ReadWaiter, outcome: () => void): void {
    this.options.timers.clearTimeout(read.timer);
    outcome();
  }

  private requireRunning(): void {
    if (this.member === null || this.phase !== "running") {
      throw new ConsensusUnavailableError(this.phase === "stopped" ? "this node's Raft group is stopped" : "this node's Raft group is not running yet (waiting for its peers, or restarting)", this.leader());
    }
  }

  private addressOf(id: RaftNodeId | null): MemberAddress | null {
    return id === null ? null : { id, address: id === this.nodeId ? null : (this.addresses.get(id) ?? null) };
  }

  status(): ConsensusStatus {
    const member = this.member;
    const raft = member?.status();
    const voters = raft?.config.voters ?? this.voters ?? [];
    const members: MemberStatus[] = voters.map((id) => ({
      id,
      address: id === this.nodeId ? null : (this.addresses.get(id) ?? null),
      match: raft?.role === "leader" ? (id === this.nodeId ? raft.lastIndex : (raft.progress[id]?.match ?? 0)) : null,
      lastContactMs: id === this.nodeId ? this.options.clock.nowMs() : (this.lastContactMs.get(id) ?? null),
      self: id === this.nodeId,
    }));
    return {
      nodeId: this.nodeId,
      role: (raft?.role ?? "follower") as RaftRole,
      term: raft?.term ?? 0,
      leader: this.leader(),
      commit: raft?.commit ?? 0,
      applied: this.applied,
      lastIndex: raft?.lastIndex ?? 0,
      members,
      lastLeaderContactMs: this.isLeader() ? this.options.clock.nowMs() : this.lastLeaderContactMs,
    };
  }

  private logOnce(key: string, line: string): void {
    const nowMs = this.options.clock.nowMs();
    const last = this.loggedAt.get(key);
    if (last !== undefined && nowMs - last < 60_000) return;
    if (this.loggedAt.size > 1024) this.loggedAt.clear();
    this.loggedAt.set(key, nowMs);
    this.options.log(line);
  }
}

/** Whether this node has Raft state stored (a restart, as against a first start, which asks its peers anyway). */
async function metadataHoldsRaft(node: DsyncNode): Promise<boolean> {
  return (await node.metadata.loadRaft()) !== undefined;
}

/**
 * What the member starts from: the stored log and state, with the snapshot's config (or the
 * bootstrap one) under it; the member applies the config entries of the log on top (core/raft).
 */
export function persistedFrom(stored: StoredRaft): PersistedRaft {
  return {
    hardState: stored.hardState,
    snapshot: stored.snapshot,
    entries: stored.entries,
    config: stored.snapshot?.meta.config ?? stored.bootstrapConfig ?? { voters: [] },
    applied: Math.max(stored.applied, stored.snapshot?.meta.index ?? 0),
  };
}
