// The deterministic simulation of strong folders: 3 or 5 dsync nodes assembled as the
// replication simulation's are (src/assemble.ts's assembleNodeOver, with the simulated clock,
// timers, random source and network), so the real Raft driver (src/consensus) and the real
// commit path run, under a seeded schedule of faults, with every client operation on a strong
// folder recorded and the history checked for linearizability at the end.
//
// One run, for one seed:
// 1. Setup: the nodes start; one or two strong folders are created through the log (a client
//    asks random nodes until the leader takes it), and an eventual folder by a first push.
// 2. Fault phase. Clients, one operation at a time each, push to strong folders through random
//    live nodes (a follower answers NotLeaderError: the client tries the leader it names, or
//    another node), read strong heads linearizably (readBarrier, then the head), and push to the
//    eventual folder. Each operation is recorded with the simulated clock: invoke, then ok with
//    {before, after} (or the head read), fail when known not to have happened (refused by a
//    follower, head moved), unknown when it timed out or its node crashed under it. Each push
//    carries a unique message ("op-17"), so an unknown one is resolved from the final history.
//    Faults meanwhile: partitions (random splits, the leader alone, links cut one way: the
//    leader hears nobody, or nobody hears it, or one link), kill -9 and restart (the metadata
//    loses every write not landed yet, durable-metadata.ts; the object store too,
//    durable-store.ts), some of them timed to a Raft save, clean stops and restarts (a leader
//    hands over first), paused nodes (no events for a while, then everything late, timers
//    included), clock jumps (a node's wall clock leaps minutes forward or back: Raft counts
//    ticks), and the network's loss, duplication and reordering of messages. Some runs compact
//    the log every few entries, so lagging and restarted members install snapshots.
//    Until a push through a node that has not applied a strong folder's creation is safe there
//    (see guardUnknownFolder), clients push only through nodes that hold the folder as strong.
// 3. Heal: faults stop, partitions heal, paused nodes resume, crashed ones restart; the clients'
//    last operations end; the run goes on until the log has settled (one leader, everything
//    committed and applied everywhere) and every node agrees on every folder's head, then a
//    little longer.
// 4. Checks: Raft's safety as it went (strong-safety.ts: one leader per term, terms and commit
//    forward only, committed entries never changed, one history of heads per strong folder);
//    each strong folder's history linearizable (a budget-exhausted check counts as a failure,
//    not a pass); every acknowledged push in every node's history, reachable from the head; the
//    log's history of heads is the final head's first-parent chain; the eventual folder
//    converged with every acknowledged push on every node.
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { ConsensusUnavailableError, NotLeaderError, type StrongConsensus } from "../../src/consensus/strong-consensus.ts";
import type { Clock, RandomSource, Timers } from "../../src/node/clock.ts";
import { HeadMovedError } from "../../src/node/metadata-records.ts";
import type { DsyncNode, CommitResult } from "../../src/node/node.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { assembleNodeOver } from "../../src/assemble.ts";
import type { NodeServices } from "../../src/server/serve.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { checkLinearizable, describeResult } from "../helpers/linearizability/checker.ts";
import { HistoryRecorder, type OperationHandle } from "../helpers/linearizability/history.ts";
import {
  headRegisterModel,
  lostAcknowledgedPushes,
  PUSH,
  pushOutputsFromVersions,
  READ,
  resolveIndeterminatePushes,
  type Head,
  type HeadOperation,
  type PushOutput,
} from "../helpers/linearizability/head-register.ts";
import { incarnationMetadata } from "./durable-metadata.ts";
import { IncarnationStore } from "./durable-store.ts";
import { Network, type Incarnation, type NetworkConfig, type NetworkStats } from "./network.ts";
import { drainMicrotasks, Scheduler, SimRandom } from "./scheduler.ts";
import { RaftSafety } from "./strong-safety.ts";
import { applyRandomEdits, emptyDir, readTree, sealSimTree } from "./workload.ts";

export interface StrongSimConfig {
  seed: number;
  /** 3 or 5. */
  nodes: number;
  strongFolders: string[];
  eventualFolder: string;
  /** Length of the phase with client operations and faults. */
  faultPhaseMs: number;
  /** How long after healing the nodes have to agree. */
  healDeadlineMs: number;
  /** How long agreement must hold before the checks. */
  settleMs: number;
  /** Longest simulated time an object store write takes. */
  maxWriteMs: number;
  /** Longest simulated time a metadata write (the Raft log's included) takes to land. */
  maxDiskMs: number;
  /** Applied entries between two compactions of the Raft log (small: lagging members get snapshots). */
  compactEvery: number;
  /** Clients, each running one operation at a time. */
  clients: number;
  /** Gap between one client's operations. */
  clientGapMs: [number, number];
  /** Share of a client's operations that read a strong head (linearizably). */
  readShare: number;
  /** Share that push to the eventual folder. */
  eventualShare: number;
  /** Share of strong pushes whose client holds an older version than the node's head. */
  staleRate: number;
  /** Nodes a client tries for one push or read before it gives up (known not to have happened). */
  attempts: number;
  /** How long a client waits for one answer before it counts the operation indeterminate. */
  clientTimeoutMs: number;
  /** The read barrier's wait. */
  readTimeoutMs: number;
  /** Gap between fault decisions. */
  chaosGapMs: [number, number];
  faults: {
    partition: number;
    /** Of partitions: the leader alone on one side. */
    isolateLeader: number;
    /** Of partitions: links cut one way instead of both. */
    oneWay: number;
    crash: number;
    /** Of crashes: the leader's. */
    crashLeader: number;
    /** Chance that a Raft save (saveRaft) is accompanied by a crash of its node, before or just after it lands. */
    crashInSave: number;
    /** A clean stop and restart (the leader hands its leadership over first), mostly of the leader. */
    gracefulRestart: number;
    pause: number;
    clockJump: number;
  };
  partitionMs: [number, number];
  downMs: [number, number];
  pauseMs: [number, number];
  /** Size of a clock jump, either way. */
  clockJumpMs: [number, number];
  /** Each node's wall clock starts off by up to this much. */
  maxClockSkewMs: number;
  network: NetworkConfig;
  /** A broken disk that acknowledges the Raft log's writes before they land (durable-metadata.ts): only to see the checks fail. */
  acknowledgeEarly: boolean;
  /** Reads that skip the read barrier and answer the node's own head: only to see the checks fail. */
  staleReads: boolean;
  /**
   * A client pushes to a strong folder only through a node that holds it as strong (else it
   * tries another). Off, a node that has not applied the folder's createFolder yet commits the
   * push as an eventual folder of that name and acknowledges it (STRONG_SIM_UNGUARDED=1 turns it off).
   */
  guardUnknownFolder: boolean;
}

/** Draws a run's shape from its seed (the same random source then drives the run). */
export function strongConfigForSeed(seed: number, random: SimRandom, overrides: Partial<StrongSimConfig> = {}): StrongSimConfig {
  const config: StrongSimConfig = {
    seed,
    nodes: random.chance(0.65) ? 3 : 5,
    strongFolders: random.chance(0.5) ? ["ledger"] : ["ledger", "books"],
    eventualFolder: "docs",
    faultPhaseMs: random.between(4_000, 7_000),
    healDeadlineMs: 60_000,
    settleMs: 1_000,
    maxWriteMs: 3,
    maxDiskMs: random.pick([1, 3, 8]),
    compactEvery: random.pick([4, 10, 1_000]),
    clients: random.between(2, 3),
    clientGapMs: [20, 400],
    readShare: 0.35,
    eventualShare: 0.15,
    staleRate: 0.2,
    attempts: 4,
    clientTimeoutMs: 8_000,
    readTimeoutMs: 2_000,
    chaosGapMs: [300, 1_500],
    faults: { partition: 0.35, isolateLeader: 0.35, oneWay: 0.3, crash: 0.3, crashLeader: 0.5, crashInSave: 0.01, gracefulRestart: 0.1, pause: 0.15, clockJump: 0.15 },
    partitionMs: [300, 4_000],
    downMs: [100, 3_000],
    pauseMs: [200, 3_000],
    clockJumpMs: [1_000, 600_000],
    maxClockSkewMs: random.pick([0, 50, 30_000]),
    network: {
      minDelayMs: 1,
      maxDelayMs: random.between(5, 40),
      timeoutMs: 1_000,
      dropRate: random.pick([0, 0.01, 0.03]),
      duplicateRate: random.pick([0, 0.02, 0.05]),
    },
    acknowledgeEarly: false,
    staleReads: false,
    guardUnknownFolder: process.env.STRONG_SIM_UNGUARDED !== "1",
  };
  return { ...config, ...overrides, faults: { ...config.faults, ...overrides.faults }, network: { ...config.network, ...overrides.network } };
}

export interface StrongSimReport {
  seed: number;
  config: StrongSimConfig;
  /** Empty when every check passed. */
  failures: string[];
  traceHash: string;
  events: number;
  simulatedMs: number;
  agreedAfterHealMs: number | null;
  /** Strong folder operations by how they ended; landed/never: unknown pushes resolved by the final history. */
  /** toUnknownFolder: push attempts through a node that did not hold the folder as strong (with guardUnknownFolder off). */
  operations: { toUnknownFolder: number; pushes: number; pushesOk: number; pushesFailed: number; pushesUnknown: number; landed: number; neverLanded: number; reads: number; readsOk: number; readsFailed: number; redirects: number };
  eventual: { pushes: number; acknowledged: number; acknowledgedOnMinority: number };
  faults: { partitions: number; leaderIsolations: number; oneWay: number; crashes: number; leaderCrashes: number; crashesInSave: number; cleanStops: number; pauses: number; clockJumps: number; restarts: number; diskWritesLost: number; storeWritesCut: number };
  raft: {
    terms: number;
    committedIndex: number;
    headMoves: number;
    snapshotsInstalled: number;
    compactions: number;
    observations: number;
    /** Times a node's Raft group was rebuilt from what is stored after a Ready it could not carry out, and the first few reasons. */
    recoveries: number;
    recoveryReasons: string[];
  };
  network: NetworkStats;
}

interface StrongNode {
  id: string;
  /** How far this node's wall clock is off simulated time (clock jumps change it). */
  offsetMs: number;
  clock: Clock;
  store: MemoryObjectStore;
  metadata: SqliteMetadataStore;
  incarnation: Incarnation;
  services: NodeServices | null;
  /** Whether this incarnation's Raft group has started (loaded what is stored). */
  started: boolean;
  /** Called when this incarnation crashes: what waits on it learns it will never hear back. */
  onCrash: Set<() => void>;
}

type Attempt<T> = { kind: "ok"; value: T } | { kind: "refused"; leader: string | null; why: string } | { kind: "unknown"; why: string };

interface EventualAck {
  node: string;
  version: ObjectId;
}

export class StrongCluster {
  readonly scheduler: Scheduler;
  readonly network: Network;
  readonly nodes: StrongNode[] = [];
  readonly failures: string[] = [];
  readonly report: StrongSimReport;
  readonly safety: RaftSafety;
  readonly history: HistoryRecorder;
  private readonly eventualAcks: EventualAck[] = [];
  private readonly createdFolders = new Set<string>();
  private healed = false;
  /** Nodes whose clean stop is under way (they come back once it ends). */
  private readonly stopping = new Set<string>();
  /** Set when the fault phase starts (the setup runs without faults). */
  private faultsOn = false;
  private incarnations = 0;
  private operationNumber = 0;
  /** Client requests waiting for an answer (or for their timeout). */
  private waiting = 0;
  /** Client operations under way (between their attempts too). */
  private operating = 0;
  private readonly nodeRandom: RandomSource = { bytes: (length) => Uint8Array.from({ length }, () => this.random.int(256)) };

  constructor(
    readonly config: StrongSimConfig,
    readonly random: SimRandom,
  ) {
    this.scheduler = new Scheduler();
    this.network = new Network(this.scheduler, random, { ...config.network });
    this.safety = new RaftSafety(new Set(config.strongFolders));
    this.history = new HistoryRecorder(() => this.scheduler.nowMs());
    this.report = {
      seed: config.seed,
      config,
      failures: this.failures,
      traceHash: "",
      events: 0,
      simulatedMs: 0,
      agreedAfterHealMs: null,
      operations: { toUnknownFolder: 0, pushes: 0, pushesOk: 0, pushesFailed: 0, pushesUnknown: 0, landed: 0, neverLanded: 0, reads: 0, readsOk: 0, readsFailed: 0, redirects: 0 },
      eventual: { pushes: 0, acknowledged: 0, acknowledgedOnMinority: 0 },
      faults: { partitions: 0, leaderIsolations: 0, oneWay: 0, crashes: 0, leaderCrashes: 0, crashesInSave: 0, cleanStops: 0, pauses: 0, clockJumps: 0, restarts: 0, diskWritesLost: 0, storeWritesCut: 0 },
      raft: { terms: 0, committedIndex: 0, headMoves: 0, snapshotsInstalled: 0, compactions: 0, observations: 0, recoveries: 0, recoveryReasons: [] },
      network: this.network.stats,
    };
    for (let i = 1; i <= config.nodes; i++) {
      const id = `n${i}`;
      const sim: StrongNode = {
        id,
        offsetMs: random.between(-config.maxClockSkewMs, config.maxClockSkewMs),
        clock: { nowMs: () => this.scheduler.nowMs() + sim.offsetMs },
        store: null as unknown as MemoryObjectStore,
        metadata: SqliteMetadataStore.open(":memory:"),
        incarnation: { address: id, number: 0, alive: false },
        services: null,
        started: false,
        onCrash: new Set(),
      };
      sim.store = new MemoryObjectStore({ nowMs: () => sim.clock.nowMs() });
      this.nodes.push(sim);
    }
  }

  private addresses(): string[] {
    return this.nodes.map((n) => n.id);
  }

  private byId(id: string | null | undefined): StrongNode | undefined {
    return id ? this.nodes.find((n) => n.id === id) : undefined;
  }

  private consensusOf(sim: StrongNode): StrongConsensus {
    const consensus = sim.services?.consensus;
    if (!consensus) throw new Error(`${sim.id}: assembled without consensus`);
    return consensus;
  }

  /** Timers on simulated time for one incarnation: skipped once it crashed, held while it is paused (then late). */
  private timersFor(sim: StrongNode, incarnation: Incarnation): Timers {
    return {
      setTimeout: (callback, delayMs) => {
        const event = this.scheduler.schedule(Math.max(0, delayMs), `timer ${sim.id}#${incarnation.number}`, () => {
          if (!incarnation.alive) return;
          this.network.whenAwake(sim.id, () => {
            if (incarnation.alive && !event.cancelled) callback();
          });
        });
        return event;
      },
      clearTimeout: (handle) => this.scheduler.cancel(handle as ReturnType<Scheduler["schedule"]>),
    };
  }

  // ---------- node lives ----------

  async start(sim: StrongNode): Promise<void> {
    if (sim.incarnation.alive) throw new Error(`${sim.id} is already running`);
    const incarnation: Incarnation = { address: sim.id, number: ++this.incarnations, alive: true };
    sim.incarnation = incarnation;
    sim.started = false;
    const store = new IncarnationStore(sim.store, incarnation, this.scheduler, this.random, this.config.maxWriteMs, {
      onCut: () => this.report.faults.storeWritesCut++,
    });
    const metadata = incarnationMetadata(sim.metadata, incarnation, this.scheduler, this.random, {
      maxWriteMs: this.config.maxDiskMs,
      acknowledgeEarly: this.config.acknowledgeEarly,
      whenAwake: (run) => this.network.whenAwake(sim.id, run),
      onWrite: (method, delayMs) => this.maybeCrashInSave(sim, incarnation, method, delayMs),
      onLanded: (method, args) => this.safety.landed(sim.id, method, args),
      onLost: () => this.report.faults.diskWritesLost++,
    });
    const services = await assembleNodeOver(store, metadata, {
      dataDir: `/nonexistent/sim/${sim.id}`,
      nodeId: sim.id,
      clock: sim.clock,
      random: this.nodeRandom,
      peers: this.addresses().filter((a) => a !== sim.id),
      transport: this.network.transportFor(incarnation),
      timers: this.timersFor(sim, incarnation),
      syncIntervalMs: 2_000,
      raftCompactEvery: this.config.compactEvery,
      scrubBytesPerSecond: 0,
      log: (line) => this.nodeLog(sim, line),
    });
    if (!incarnation.alive) return;
    if (!services.peerService || !services.replicator) throw new Error(`${sim.id}: assembled without replication (no transport)`);
    sim.services = services;
    this.network.attach(incarnation, services.peerService);
    services.replicator.start();
    await this.consensusOf(sim).start();
    if (!incarnation.alive) return;
    // Its status is read from now on: before, the group has not loaded what is stored.
    sim.started = true;
    this.scheduler.note(`started ${sim.id}#${incarnation.number}`);
  }

  /** What a node logs: its Raft group restarting from what is stored (after a Ready it could not carry out) is counted and kept in the trace. */
  private nodeLog(sim: StrongNode, line: string): void {
    if (!/Raft group stopped on an error|restarting the Raft group failed/.test(line)) return;
    this.report.raft.recoveries++;
    if (this.report.raft.recoveryReasons.length < 5) this.report.raft.recoveryReasons.push(`${sim.id}: ${line}`);
    this.scheduler.note(`${sim.id} log: ${line}`);
  }

  /** kill -9: nothing is stopped cleanly; its timers, calls and writes in flight die with it. */
  crash(sim: StrongNode): void {
    if (!sim.incarnation.alive) return;
    sim.incarnation.alive = false;
    sim.services?.replicator?.stop();
    sim.services?.repairer?.stop();
    this.network.detach(sim.id);
    this.network.discardPaused(sim.id);
    sim.services = null;
    sim.started = false;
    // A clean stop it was in the middle of ends with the process.
    this.stopping.delete(sim.id);
    this.report.faults.crashes++;
    this.scheduler.note(`crash ${sim.id}`);
    const waiting = [...sim.onCrash];
    sim.onCrash.clear();
    for (const wake of waiting) wake();
  }

  /** Now and then a node dies while a Raft save is in flight (or just after it lands): persist-before-send is what keeps that safe. */
  private maybeCrashInSave(sim: StrongNode, incarnation: Incarnation, method: string, delayMs: number): void {
    if (method !== "saveRaft" || this.healed || !this.faultsOn || !this.random.chance(this.config.faults.crashInSave) || this.liveNodes().length < 2) return;
    this.scheduler.schedule(this.random.between(0, delayMs + 1), `crash ${sim.id} in a save`, () => {
      if (this.healed || sim.incarnation !== incarnation || !incarnation.alive) return;
      this.report.faults.crashesInSave++;
      this.crash(sim);
      this.scheduleRestart(sim);
    });
  }

  /** A clean stop, as serve's shutdown makes it (a leader hands over first, bounded), then a restart a little later. */
  private async stopCleanly(sim: StrongNode): Promise<void> {
    const incarnation = sim.incarnation;
    const services = sim.services;
    if (!services) return;
    this.report.faults.cleanStops++;
    this.scheduler.note(`stop ${sim.id}`);
    this.stopping.add(sim.id);
    services.replicator?.stop();
    await this.consensusOf(sim)
      .stop()
      .catch((error) => this.failures.push(`${sim.id}: stopping its Raft group failed: ${(error as Error)?.stack ?? String(error)}`));
    this.stopping.delete(sim.id);
    if (sim.incarnation !== incarnation || !incarnation.alive) return;
    // What the process still had in flight goes with it, as at any exit.
    this.crash(sim);
    this.report.faults.crashes--;
    this.scheduleRestart(sim);
  }

  private scheduleRestart(sim: StrongNode): void {
    // After healing too: a clean stop that began before it ends after it, and its node must come back.
    this.scheduler.schedule(this.random.between(...this.config.downMs), `restart ${sim.id}`, () => {
      if (!sim.incarnation.alive) void this.restart(sim);
    });
  }

  private async restart(sim: StrongNode): Promise<void> {
    this.report.faults.restarts++;
    this.scheduler.note(`restart ${sim.id}`);
    await this.start(sim).catch((error) => this.failures.push(`${sim.id} failed to restart: ${(error as Error)?.stack ?? String(error)}`));
  }

  private liveNodes(): StrongNode[] {
    return this.nodes.filter((n) => n.incarnation.alive && n.services !== null);
  }

  /** The leader as most live nodes know it (a node's own claim first), or undefined. */
  private knownLeader(): StrongNode | undefined {
    for (const sim of this.liveNodes()) if (this.consensusOf(sim).isLeader()) return sim;
    return undefined;
  }

  /** Reads every live node's Raft status (after every event). */
  private observe(): void {
    for (const sim of this.nodes) {
      if (!sim.incarnation.alive || !sim.started || sim.services === null || this.network.isPaused(sim.id)) continue;
      const status = this.consensusOf(sim).status();
      // While the driver builds its member (starting after a restart, which may wait on peers
      // for a stored snapshot's content, or rebuilding after a failed Ready) its status reads
      // all zeros: nothing of the member to judge yet. A member rebuilt from what is stored is
      // a new life, as after a restart: judged against its disk, not its last status (a commit
      // index learnt but not yet saved is forgotten then, as Raft allows).
      if (status.term === 0 && status.lastIndex === 0 && status.commit === 0) {
        this.safety.rebuilding(sim.id);
        continue;
      }
      this.safety.observe(sim.id, sim.incarnation.number, status);
    }
  }

  /**
   * Runs `work` on a node incarnation as a client waiting for its answer would: "unknown" when
   * the node crashes first or no answer comes within the client's timeout.
   */
  private answerFrom<T>(sim: StrongNode, work: (node: DsyncNode, consensus: StrongConsensus) => Promise<T>, classify: (error: unknown) => Attempt<T>): Promise<Attempt<T>> {
    const services = sim.services;
    if (!sim.incarnation.alive || !services) return Promise.resolve({ kind: "refused", leader: null, why: "node down" });
    this.waiting++;
    return new Promise<Attempt<T>>((resolve) => {
      let done = false;
      const finish = (attempt: Attempt<T>) => {
        if (done) return;
        done = true;
        this.waiting--;
        sim.onCrash.delete(onCrash);
        this.scheduler.cancel(timeout);
        resolve(attempt);
      };
      const onCrash = () => finish({ kind: "unknown", why: `${sim.id} crashed` });
      sim.onCrash.add(onCrash);
      const timeout = this.scheduler.schedule(this.config.clientTimeoutMs, `client timeout on ${sim.id}`, () => finish({ kind: "unknown", why: `no answer from ${sim.id} within ${this.config.clientTimeoutMs} ms` }));
      // A paused node takes the request, and answers it, only once it resumes.
      this.network.whenAwake(sim.id, () => {
        if (done || !sim.incarnation.alive) return;
        const consensus = this.consensusOf(sim);
        work(services.node, consensus).then(
          (value) => this.network.whenAwake(sim.id, () => finish({ kind: "ok", value })),
          (error) => this.network.whenAwake(sim.id, () => finish(classify(error))),
        );
      });
    });
  }

  // ---------- clients ----------

  /** Where a client goes after a refusal: the leader it was told of, else a random live node it has not tried. */
  private nextTarget(leader: string | null, tried: Set<string>): StrongNode | undefined {
    const named = this.byId(leader);
    if (named && named.incarnation.alive && named.services) return named;
    const untried = this.liveNodes().filter((n) => !tried.has(n.id));
    const pool = untried.length > 0 ? untried : this.liveNodes();
    return pool.length > 0 ? this.random.pick(pool) : undefined;
  }

  /** How a strong operation's error ends it: refused (known not to have happened) or unknown. */
  private classifyStrong<T>(error: unknown): Attempt<T> {
    if (error instanceof FolderNotHereError) return { kind: "refused", leader: null, why: error.message };
    if (error instanceof NotLeaderError) return { kind: "refused", leader: error.leader?.id ?? null, why: error.message };
    if (error instanceof HeadMovedError) return { kind: "refused", leader: null, why: error.message };
    if (error instanceof ConsensusUnavailableError) return { kind: "unknown", why: error.message };
    // Anything else is not an answer a client of a strong folder should get: investigate.
    this.failures.push(`unexpected error from a strong operation: ${(error as Error)?.stack ?? String(error)}`);
    return { kind: "unknown", why: String(error) };
  }

  private async createStrongFolders(): Promise<void> {
    for (const folder of this.config.strongFolders) {
      for (let attempt = 0; !this.createdFolders.has(folder); attempt++) {
        if (attempt > 200) {
          this.failures.push(`the strong folder ${folder} could not be created in ${attempt} attempts`);
          return;
        }
        const target = this.knownLeader() ?? (this.liveNodes().length > 0 ? this.random.pick(this.liveNodes()) : undefined);
        if (target) {
          const outcome = await this.answerFrom(target, (node) => node.createFolder(folder, "strong"), (error) => this.classifyStrong(error));
          if (outcome.kind === "ok") {
            this.createdFolders.add(folder);
            this.scheduler.note(`created strong ${folder} on ${target.id}`);
            break;
          }
          this.scheduler.note(`creating ${folder} on ${target.id}: ${outcome.why}`);
        }
        await this.sleep(200);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.schedule(ms, "client wait", resolve));
  }

  private async runClient(client: string): Promise<void> {
    while (!this.healed) {
      await this.sleep(this.random.between(...this.config.clientGapMs));
      if (this.healed) return;
      const roll = this.random.next();
      this.operating++;
      try {
        if (roll < this.config.eventualShare) await this.eventualPush(client);
        else {
          const ready = this.config.strongFolders.filter((f) => this.createdFolders.has(f));
          if (ready.length === 0) continue;
          const folder = this.random.pick(ready);
          if (roll < this.config.eventualShare + this.config.readShare) await this.strongRead(client, folder);
          else await this.strongPush(client, folder);
        }
      } finally {
        this.operating--;
      }
    }
  }

  private async strongPush(client: string, folder: string): Promise<void> {
    const message = `op-${++this.operationNumber}`;
    this.report.operations.pushes++;
    const handle: OperationHandle<PushOutput> = this.history.invoke(client, PUSH, { folder, message });
    this.scheduler.note(`${client} push ${folder} ${message}`);
    const tried = new Set<string>();
    let target = this.nextTarget(null, tried);
    for (let attempt = 0; attempt < this.config.attempts && target; attempt++) {
      tried.add(target.id);
      const outcome = await this.pushOnce(target, folder, message);
      if (outcome.kind === "ok") {
        const result = outcome.value;
        handle.ok({ before: result.mergedWith ? idToHex(result.mergedWith) : result.parent ? idToHex(result.parent) : null, after: idToHex(result.version) });
        this.report.operations.pushesOk++;
        this.scheduler.note(`${client} ${message} ok ${idToHex(result.version)}`);
        return;
      }
      if (outcome.kind === "unknown") {
        handle.unknown();
        this.report.operations.pushesUnknown++;
        this.scheduler.note(`${client} ${message} unknown: ${outcome.why}`);
        return;
      }
      this.report.operations.redirects++;
      this.scheduler.note(`${client} ${message} refused by ${target.id}: ${outcome.why}`);
      // A moment for an election to finish before the next node is asked.
      await this.sleep(this.random.between(20, 300));
      target = this.nextTarget(outcome.leader, tried);
    }
    handle.fail();
    this.report.operations.pushesFailed++;
    this.scheduler.note(`${client} ${message} failed`);
  }

  /** One push to one node: read its head (or an older version), edit, upload, commit. */
  private async pushOnce(sim: StrongNode, folder: string, message: string): Promise<Attempt<CommitResult>> {
    const stale = this.random.chance(this.config.staleRate);
    const editRandom = new SimRandom(this.random.int(0x1_0000_0000));
    return this.answerFrom(
      sim,
      async (node) => {
        const record = await node.metadata.getFolder(folder);
        if (record?.mode !== "strong") {
          if (this.config.guardUnknownFolder) throw new FolderNotHereError(sim.id, folder);
          this.report.operations.toUnknownFolder++;
        }
        let parent = record?.head ?? null;
        if (parent !== null && stale) {
          const versions = await node.metadata.listVersions(folder);
          parent = versions.length > 0 ? editRandom.pick(versions).id : parent;
        }
        const tree = parent === null ? emptyDir() : await readTree(node, (await node.metadata.getVersion(folder, parent))!.root);
        applyRandomEdits(tree, editRandom, message, sim.clock.nowMs());
        const sealed = sealSimTree(tree);
        await node.putObjects(sealed.objects);
        return node.commit({ folder, root: sealed.root, parent, message, chunking: "sim", files: sealed.files, totalBytes: sealed.totalBytes });
      },
      (error) => this.classifyStrong(error),
    );
  }

  private async strongRead(client: string, folder: string): Promise<void> {
    this.report.operations.reads++;
    const handle: OperationHandle<Head> = this.history.invoke(client, READ, { folder });
    const tried = new Set<string>();
    let target = this.nextTarget(null, tried);
    for (let attempt = 0; attempt < this.config.attempts && target; attempt++) {
      tried.add(target.id);
      const outcome = await this.answerFrom(
        target,
        async (node, consensus) => {
          if (!this.config.staleReads) await consensus.readBarrier(this.config.readTimeoutMs);
          const head = (await node.metadata.getFolder(folder))?.head ?? null;
          return head ? idToHex(head) : null;
        },
        (error) => this.classifyStrong<Head>(error),
      );
      if (outcome.kind === "ok") {
        handle.ok(outcome.value);
        this.report.operations.readsOk++;
        return;
      }
      if (outcome.kind === "unknown") break;
      await this.sleep(this.random.between(20, 300));
      target = this.nextTarget(outcome.leader, tried);
    }
    // A read that did not answer did nothing: it leaves the history.
    handle.fail();
    this.report.operations.readsFailed++;
  }

  /** A push to the eventual folder on a random live node, as the replication simulation makes them. */
  private async eventualPush(client: string): Promise<void> {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const sim = this.random.pick(live);
    const folder = this.config.eventualFolder;
    const number = ++this.operationNumber;
    this.report.eventual.pushes++;
    const editRandom = new SimRandom(this.random.int(0x1_0000_0000));
    const onMinority = this.onMinoritySide(sim.id);
    const outcome = await this.answerFrom(
      sim,
      async (node) => {
        const parent = (await node.metadata.getFolder(folder))?.head ?? null;
        const tree = parent === null ? emptyDir() : await readTree(node, (await node.metadata.getVersion(folder, parent))!.root);
        applyRandomEdits(tree, editRandom, `${client}/${number}`, sim.clock.nowMs());
        const sealed = sealSimTree(tree);
        await node.putObjects(sealed.objects);
        return node.commit({ folder, root: sealed.root, parent, message: `eventual ${number}`, chunking: "sim", files: sealed.files, totalBytes: sealed.totalBytes });
      },
      (error) => {
        this.failures.push(`a push to the eventual folder on ${sim.id} failed: ${(error as Error)?.message ?? String(error)}`);
        return { kind: "unknown", why: String(error) };
      },
    );
    if (outcome.kind !== "ok") return;
    this.eventualAcks.push({ node: sim.id, version: outcome.value.version });
    this.report.eventual.acknowledged++;
    if (onMinority) this.report.eventual.acknowledgedOnMinority++;
  }

  // ---------- faults ----------

  /** Partition sides as the chaos made them, to tell a minority side (for the eventual folder's count). */
  private sides: string[][] | null = null;

  private onMinoritySide(id: string): boolean {
    if (!this.sides) return false;
    const side = this.sides.find((group) => group.includes(id));
    return side !== undefined && side.length * 2 < this.config.nodes;
  }

  private scheduleChaos(): void {
    const tick = () => {
      if (this.healed) return;
      this.chaos();
      this.scheduler.schedule(this.random.between(...this.config.chaosGapMs), "chaos", tick);
    };
    this.scheduler.schedule(this.random.between(...this.config.chaosGapMs), "chaos", tick);
  }

  private chaos(): void {
    const faults = this.config.faults;
    const leader = this.knownLeader();
    if (!this.network.partitioned && this.random.chance(faults.partition)) this.partition(leader);
    const live = this.liveNodes();
    if (live.length > 1 && this.random.chance(faults.crash)) {
      const victim = leader && this.random.chance(faults.crashLeader) ? leader : this.random.pick(live);
      if (victim === leader) this.report.faults.leaderCrashes++;
      this.crash(victim);
      this.scheduleRestart(victim);
    }
    const running = this.liveNodes().filter((n) => !this.network.isPaused(n.id));
    if (running.length > 1 && this.random.chance(faults.gracefulRestart)) {
      const leaving = leader && running.includes(leader) && this.random.chance(0.7) ? leader : this.random.pick(running);
      void this.stopCleanly(leaving);
    }
    const awake = this.liveNodes().filter((n) => !this.network.isPaused(n.id));
    if (awake.length > 0 && this.random.chance(faults.pause)) {
      const victim = leader && awake.includes(leader) && this.random.chance(0.5) ? leader : this.random.pick(awake);
      this.network.pause(victim.id);
      this.report.faults.pauses++;
      this.scheduler.note(`pause ${victim.id}`);
      this.scheduler.schedule(this.random.between(...this.config.pauseMs), `resume ${victim.id}`, () => {
        this.network.resume(victim.id);
        this.scheduler.note(`resume ${victim.id}`);
      });
    }
    if (this.random.chance(faults.clockJump)) {
      const sim = this.random.pick(this.nodes);
      const jumpMs = this.random.between(...this.config.clockJumpMs) * (this.random.chance(0.5) ? -1 : 1);
      sim.offsetMs += jumpMs;
      this.report.faults.clockJumps++;
      this.scheduler.note(`clock ${sim.id} ${jumpMs > 0 ? "+" : ""}${jumpMs}`);
    }
  }

  private partition(leader: StrongNode | undefined): void {
    const faults = this.config.faults;
    const ids = this.addresses();
    if (this.random.chance(faults.oneWay)) {
      // A link (or every link of the leader) cut in one direction only.
      const center = leader && this.random.chance(0.7) ? leader.id : this.random.pick(ids);
      const how = this.random.int(3);
      const others = ids.filter((id) => id !== center);
      if (how === 0) for (const id of others) this.network.blockLink(id, center); // it hears nobody
      else if (how === 1) for (const id of others) this.network.blockLink(center, id); // nobody hears it
      else this.network.blockLink(center, this.random.pick(others));
      this.report.faults.oneWay++;
      this.scheduler.note(`one-way ${["nobody reaches", "nothing leaves", "one link from"][how]} ${center}`);
    } else {
      let groups: string[][];
      if (leader && this.random.chance(faults.isolateLeader)) {
        groups = [[leader.id], ids.filter((id) => id !== leader.id)];
        this.report.faults.leaderIsolations++;
      } else groups = this.randomSplit();
      this.network.partition(groups);
      this.sides = groups;
      this.scheduler.note(`partition ${groups.map((g) => g.join("+")).join(" | ")}`);
    }
    this.report.faults.partitions++;
    this.scheduler.schedule(this.random.between(...this.config.partitionMs), "heal partition", () => {
      if (this.healed) return;
      this.network.heal();
      this.sides = null;
      this.scheduler.note("partition healed");
    });
  }

  private randomSplit(): string[][] {
    const order = this.random.shuffle(this.addresses());
    const count = order.length >= 5 && this.random.chance(0.3) ? 3 : 2;
    const groups: string[][] = Array.from({ length: count }, () => []);
    order.forEach((address, i) => groups[i < count ? i : this.random.int(count)]!.push(address));
    return groups;
  }

  private async heal(): Promise<void> {
    this.healed = true;
    this.network.heal();
    this.sides = null;
    this.network.stopFaults();
    for (const sim of this.nodes) this.network.resume(sim.id);
    // Started, not awaited: a start writes to the metadata, whose writes land as events of the run.
    for (const sim of this.nodes) if (!sim.incarnation.alive) void this.restart(sim);
    this.scheduler.note("healed");
  }

  // ---------- the run ----------

  /** Runs events until `untilMs`, reading every node's status after each; stops early when `stop` says so or a check failed. */
  private async runObserved(untilMs: number, stop: () => boolean | Promise<boolean> = () => false): Promise<boolean> {
    return this.scheduler.runUntil(untilMs, async () => {
      this.observe();
      if (this.safety.failures.length > 0 || this.failures.length > 0) return true;
      return stop();
    });
  }

  async run(): Promise<StrongSimReport> {
    const unhandled = (reason: unknown) => this.failures.push(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    process.on("unhandledRejection", unhandled);
    try {
      // A start writes to the metadata, whose writes land as events: the run goes on meanwhile.
      let starting = this.nodes.length;
      for (const sim of this.nodes) {
        void this.start(sim)
          .catch((error) => this.failures.push(`${sim.id} failed to start: ${(error as Error)?.stack ?? String(error)}`))
          .finally(() => starting--);
      }
      // The starts run until their first write is queued.
      await drainMicrotasks();
      await this.runObserved(this.scheduler.nowMs() + 10_000, () => starting === 0);
      if (starting > 0) this.failures.push(`${starting} node(s) did not start within 10 s`);
      const setup = this.createStrongFolders();
      let setupDone = false;
      void setup.finally(() => (setupDone = true));
      // The folders are made before the faults start, so every run has something to check.
      await this.runObserved(this.scheduler.nowMs() + 30_000, () => setupDone);
      if (!setupDone && this.failures.length === 0) this.failures.push("the strong folders were not created within 30 s of a fault-free start");
      if (this.failures.length === 0 && this.safety.failures.length === 0) {
        const clients = Array.from({ length: this.config.clients }, (_, i) => this.runClient(`c${i + 1}`));
        void Promise.all(clients).catch((error) => this.failures.push(`a client failed: ${(error as Error)?.stack ?? String(error)}`));
        this.faultsOn = true;
        this.scheduleChaos();
        const healAt = this.scheduler.nowMs() + this.config.faultPhaseMs;
        await this.runObserved(healAt);
        if (this.failures.length === 0 && this.safety.failures.length === 0) {
          await this.heal();
          // The clients' last requests are answered (or time out) first: what they commit is part of what must agree.
          const attemptsMs = this.config.attempts * (this.config.clientTimeoutMs + 300);
          await this.runObserved(this.scheduler.nowMs() + attemptsMs, () => this.operating === 0 && this.waiting === 0);
          if (this.operating > 0) this.failures.push(`${this.operating} client operation(s) still under way ${attemptsMs} ms after healing`);
          let lastCheckMs = 0;
          const agreed = await this.runObserved(healAt + this.config.healDeadlineMs, async () => {
            const now = this.scheduler.nowMs();
            if (now - lastCheckMs < 100) return false;
            lastCheckMs = now;
            return (await this.disagreement()) === null;
          });
          if (this.failures.length === 0 && this.safety.failures.length === 0) {
            if (!agreed) this.failures.push(`no agreement ${this.config.healDeadlineMs / 1000} s after healing: ${await this.disagreement()}`);
            else {
              this.report.agreedAfterHealMs = this.scheduler.nowMs() - healAt;
              // Agreement must hold a while.
              await this.runObserved(this.scheduler.nowMs() + this.config.settleMs);
              if (this.failures.length === 0 && this.safety.failures.length === 0) {
                try {
                  await this.checkFinal();
                } catch (error) {
                  this.failures.push(`the checks failed to run: ${(error as Error)?.stack ?? String(error)}`);
                }
              }
            }
          }
        }
      }
      this.failures.unshift(...this.safety.failures);
      this.failures.push(...this.scheduler.errors);
    } finally {
      process.off("unhandledRejection", unhandled);
      for (const sim of this.nodes) {
        sim.services?.replicator?.stop();
        sim.incarnation.alive = false;
      }
    }
    this.report.traceHash = this.scheduler.traceHash();
    this.report.events = this.scheduler.eventsRun;
    this.report.simulatedMs = this.scheduler.elapsedMs();
    this.report.raft = {
      ...this.report.raft,
      terms: this.safety.terms(),
      committedIndex: this.safety.committedIndex(),
      headMoves: this.safety.headMoves,
      snapshotsInstalled: this.safety.snapshotsInstalled,
      compactions: this.safety.compactions,
      observations: this.safety.observations,
    };
    for (const sim of this.nodes) await sim.metadata.close();
    return this.report;
  }

  private folderNames(): string[] {
    return [...this.config.strongFolders.filter((f) => this.createdFolders.has(f)), this.config.eventualFolder].sort();
  }

  /** Null when every node runs and all agree on every folder's head (and the eventual folder exists everywhere once pushed); else what differs. */
  async disagreement(): Promise<string | null> {
    const down = this.nodes.filter((n) => !n.incarnation.alive || n.services === null || this.stopping.has(n.id));
    if (down.length > 0) return `down: ${down.map((n) => n.id).join(", ")}`;
    // The log settled first: a leader whose whole log is committed, applied on every node (an
    // entry proposed before healing may still commit after it, and move heads then).
    const statuses = this.nodes.map((n) => this.consensusOf(n).status());
    const leaders = statuses.filter((s) => s.role === "leader");
    if (leaders.length !== 1) return `log: ${leaders.length} leaders`;
    const leader = leaders[0]!;
    if (leader.commit < leader.lastIndex) return `log: the leader ${leader.nodeId} has committed ${leader.commit} of ${leader.lastIndex}`;
    const behind = statuses.filter((s) => s.applied < leader.commit);
    if (behind.length > 0) return `log: ${behind.map((s) => `${s.nodeId} applied ${s.applied} of ${leader.commit}`).join(", ")}`;
    for (const folder of this.folderNames()) {
      const heads: string[] = [];
      for (const sim of this.nodes) {
        const record = await sim.metadata.getFolder(folder);
        // An eventual folder without a head is as good as none: a crash between its creation and
        // its first commit leaves one on that node alone (nothing was acknowledged), and an empty
        // folder has nothing to replicate.
        if (!record && folder === this.config.eventualFolder) heads.push("eventual:empty");
        else heads.push(record ? `${record.mode === "strong" ? "" : "eventual:"}${record.head ? idToHex(record.head).slice(0, 12) : "empty"}` : "absent");
      }
      if (new Set(heads).size > 1) return `folder ${folder}: ${this.nodes.map((sim, i) => `${sim.id}=${heads[i]}`).join(" ")}`;
    }
    return null;
  }

  private async checkFinal(): Promise<void> {
    const problem = await this.disagreement();
    if (problem) {
      this.failures.push(`agreement did not hold: ${problem}`);
      return;
    }
    const first = this.nodes[0]!;
    const operations = this.history.history() as HeadOperation[];
    for (const folder of this.config.strongFolders.filter((f) => this.createdFolders.has(f))) {
      const record = (await first.metadata.getFolder(folder))!;
      if (record.mode !== "strong") this.failures.push(`${folder} is ${record.mode} at the end, not strong`);
      // The log's history of heads is the final head's first-parent chain.
      const chain: string[] = [];
      for (let id = record.head; id !== null; ) {
        chain.unshift(idToHex(id));
        const version = await first.metadata.getVersion(folder, id);
        if (!version) {
          this.failures.push(`${first.id}: the history of ${folder} names ${idToHex(id).slice(0, 12)}, which it does not record`);
          break;
        }
        id = version.parents[0] ?? null;
      }
      const logged = this.safety.history(folder);
      if (chain.join(",") !== logged.join(",")) {
        this.failures.push(`the final head chain of ${folder} (${chain.length} versions) is not the history the log made (${logged.length} moves): first difference at #${firstDifference(chain, logged)}`);
      }
      const versions = (await first.metadata.listVersions(folder)).map((v) => ({ id: idToHex(v.id), parents: v.parents.map(idToHex), message: v.message }));
      const lookupIn = pushOutputsFromVersions(versions);
      const lookup = (f: string, message: string) => (f === folder ? lookupIn(message) : null);
      const ofFolder = operations.filter((op) => op.input.folder === folder);
      for (const { operation, found } of lostAcknowledgedPushes(ofFolder, lookup)) {
        const push = operation.output as PushOutput;
        this.failures.push(
          `acknowledged push ${(operation.input as { message: string }).message} to ${folder} (${push.before?.slice(0, 12) ?? "(none)"} -> ${push.after.slice(0, 12)}) is ${found ? `in the history as ${found.before?.slice(0, 12) ?? "(none)"} -> ${found.after.slice(0, 12)}` : "not in the history"}`,
        );
      }
      const resolved = resolveIndeterminatePushes(ofFolder, lookup);
      for (const op of ofFolder) {
        if (op.kind !== PUSH || op.output !== undefined) continue;
        if (lookupIn((op.input as { message: string }).message)) this.report.operations.landed++;
        else this.report.operations.neverLanded++;
      }
      const verdict = checkLinearizable(headRegisterModel, resolved, { maxSteps: 2_000_000 });
      if (verdict.result !== "ok") this.failures.push(`${folder}: ${describeResult(headRegisterModel, verdict, resolved.length)}`);
      // Every node holds every version of the chain (so every acknowledged push) and the same head.
      for (const sim of this.nodes) {
        for (const hex of chain) {
          if (!(await sim.metadata.getVersion(folder, idFromHex(hex)))) {
            this.failures.push(`${sim.id} lacks ${hex.slice(0, 12)} of the history of ${folder}`);
            break;
          }
        }
      }
    }
    // The eventual folder: every acknowledged push recorded on every node and reachable from its head.
    const folder = this.config.eventualFolder;
    for (const sim of this.nodes) {
      const head = (await sim.metadata.getFolder(folder))?.head ?? null;
      if (this.eventualAcks.length === 0) continue;
      if (!head) {
        this.failures.push(`${sim.id} has no head for the eventual folder ${folder}`);
        continue;
      }
      const reachable = await this.ancestry(sim, folder, head);
      for (const ack of this.eventualAcks) {
        if (!reachable.has(idToHex(ack.version))) this.failures.push(`${sim.id}: ${idToHex(ack.version).slice(0, 12)}, acknowledged by ${ack.node} in ${folder}, is not reachable from its head`);
      }
    }
    for (const sim of this.nodes) {
      const verified = await sim.services!.node.verify();
      if (verified.missing.length > 0) this.failures.push(`${sim.id} lacks ${verified.missing.length} object(s) below its heads, e.g. ${verified.missing[0]!.slice(0, 12)}`);
      if (verified.corrupt.length > 0) this.failures.push(`${sim.id} holds ${verified.corrupt.length} corrupt object(s)`);
    }
  }

  private async ancestry(sim: StrongNode, folder: string, head: ObjectId): Promise<Set<string>> {
    const seen = new Set<string>();
    let frontier = [head];
    while (frontier.length > 0) {
      const next: ObjectId[] = [];
      for (const id of frontier) {
        const key = idToHex(id);
        if (seen.has(key)) continue;
        seen.add(key);
        const record = await sim.metadata.getVersion(folder, id);
        if (record) next.push(...record.parents);
      }
      frontier = next;
    }
    return seen;
  }
}

/** The node a client asked does not hold the strong folder yet (guardUnknownFolder): nothing was sent. */
class FolderNotHereError extends Error {
  constructor(node: string, folder: string) {
    super(`${node} does not hold ${folder} as a strong folder yet`);
  }
}

function firstDifference(a: readonly string[], b: readonly string[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * The harsh runs (SIM_HARSH=1), not part of the suite: 10% of messages lost and 10% delivered
 * twice, partitions, one-way cuts and pauses far more often, crashes during Raft saves and clean
 * restarts twice as often.
 */
export function harshOverrides(): Partial<StrongSimConfig> {
  return {
    network: { dropRate: 0.1, duplicateRate: 0.1 } as NetworkConfig,
    faults: { partition: 0.6, isolateLeader: 0.35, oneWay: 0.5, crash: 0.3, crashLeader: 0.5, crashInSave: 0.03, gracefulRestart: 0.2, pause: 0.4, clockJump: 0.3 },
  };
}

/** One strong simulation run for one seed. */
export async function runStrongSimulation(seed: number, overrides: Partial<StrongSimConfig> = {}): Promise<StrongSimReport> {
  const random = new SimRandom(seed);
  const config = strongConfigForSeed(seed, random, overrides);
  return new StrongCluster(config, random).run();
}

/** The one line a failing seed prints. */
export function strongFailureLine(report: StrongSimReport, rerunPrefix = ""): string {
  const more = report.failures.length > 1 ? ` (and ${report.failures.length - 1} more)` : "";
  // One line: a linearizability report's lines are joined, and a long one is cut.
  let first = (report.failures[0] ?? "").replace(/\n\s*/g, " | ");
  if (first.length > 1_500) first = `${first.slice(0, 1_500)}...`;
  return `strong simulation seed ${report.seed} failed: ${first}${more}; rerun with ${rerunPrefix}SIM_SEEDS=${report.seed}-${report.seed} node_modules/.bin/bun test test/sim/strong-simulation.test.ts`;
}

