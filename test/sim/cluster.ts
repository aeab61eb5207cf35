// A simulated cluster of dsync nodes running the real replication code (DsyncNode,
// PeerService, Replicator, assembled by src/assemble.ts as a serving node's are, from the
// simulation's memory store, clock, timers and network) over the in-memory network, with
// crashes, restarts and a random client workload, and the checks made once the faults stop.
//
// One run, for one seed:
// 1. Fault phase: clients push to random live nodes; messages are delayed, lost, duplicated;
//    the network splits into partitions for a while; nodes crash and come back.
// 2. Heal: no more pushes or faults, partitions healed, crashed nodes restarted. The run goes
//    on until every node agrees on every folder's head (then a little longer, to see that the
//    agreement holds), or a deadline passes.
// 3. Checks: same folders and heads everywhere; every acknowledged version recorded on every
//    node and reachable from the head; every head's whole tree stored on every node.
//
// With the retention fault on (config.retention, off by default): during the fault phase random
// live nodes keep only a few versions of one of their folders (setRetention), and garbage
// collections (node.gc with a grace of a few simulated seconds) run on random live nodes until
// the checks, then once more on every node. Retention is local, so "every acknowledged version
// recorded everywhere" no longer holds; the checks become: every acknowledged version is
// recorded on every node, or that node pruned it, or retention on some node pruned it or a
// version after it (the history it would have come by); every acknowledged write is covered by
// the final head's version vector; every head's whole tree is stored, also right after every
// collection. Agreement, forward-only heads and the vector rules are checked as always.
//
// A node's durable state is its MemoryObjectStore and its Metadata; a crash keeps them and
// throws away everything else (the DsyncNode, its Replicator, PeerService and Repairer, and all calls and
// store writes it had in flight: see durable-store.ts). A restart opens a new DsyncNode over
// the same two.
import { idEquals, idToHex, type ObjectId } from "../../src/core/id.ts";
import type { MergeConflict } from "../../src/core/merge.ts";
import { isReplicationMerge } from "../../src/core/concurrent-merge.ts";
import { decodeObject } from "../../src/core/objects.ts";
import { compareVectors, counterOf, coversDot, joinVectors, vectorToRecord, withCounter, type VersionVector } from "../../src/core/version-vector.ts";
import type { Clock, RandomSource } from "../../src/node/clock.ts";
import { IncompleteTreeError } from "../../src/node/closure.ts";
import { walkClosure } from "../../src/node/walk.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import type { DsyncNode, CommitResult } from "../../src/node/node.ts";
import type { Repairer } from "../../src/node/repair.ts";
import type { Replicator } from "../../src/replication/replicator.ts";
import { assembleNodeOver } from "../../src/assemble.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { Network, type Incarnation, type NetworkConfig, type NetworkStats } from "./network.ts";
import { IncarnationStore } from "./durable-store.ts";
import { Scheduler, SimRandom } from "./scheduler.ts";
import { applyRandomEdits, conflictCopiesIn, emptyDir, readTree, sealSimTree } from "./workload.ts";

export interface SimConfig {
  seed: number;
  nodes: number;
  folders: string[];
  /** Length of the phase with pushes and faults. */
  faultPhaseMs: number;
  /** How long after healing the nodes have to agree. */
  healDeadlineMs: number;
  /** How long agreement must hold before the checks. */
  settleMs: number;
  /** Longest simulated time one store write takes (0: writes are instant, but still separate events). */
  maxWriteMs: number;
  /** The replicators' full-comparison period. */
  intervalMs: number;
  pushGapMs: [number, number];
  /** Share of pushes whose client holds an older version than the node's head. */
  staleRate: number;
  /** Share of client actions that restore an older version instead of pushing. */
  restoreRate: number;
  /** Chance that a node (other than the first) joins only later in the fault phase, empty. */
  lateJoinRate: number;
  /** Each node's wall clock is off by up to this much, either way. */
  maxClockSkewMs: number;
  /** Mean gap between fault decisions (partition, crash). */
  chaosGapMs: [number, number];
  partitionRate: number;
  partitionMs: [number, number];
  crashRate: number;
  /** Chance that a store write (during the fault phase) is accompanied by a crash of its node. */
  crashInWriteRate: number;
  downMs: [number, number];
  network: NetworkConfig;
  /** The retention and garbage collection fault; null (the default) leaves both out. */
  retention: RetentionConfig | null;
  /**
   * Whether a push's node tells its peers what it stored before the commit (streamed
   * replication: they fetch it ahead of the head); default true. The pinned seeds of
   * regressions.test.ts were found without it and keep their course with it off.
   */
  streamPushes: boolean;
}

export interface RetentionConfig {
  /** The keepVersions a retention decision gives a node's folder. */
  keepVersions: [number, number];
  /** Gap between retention decisions (in the fault phase): a random live node keeps few versions of one of its folders. */
  setGapMs: [number, number];
  /** Gap between garbage collections on a random live node (they go on after healing, until the checks). */
  gcGapMs: [number, number];
  /** The grace period of one collection (objects used more recently are kept). */
  graceMs: [number, number];
}

/** The retention fault as retention.test.ts runs it: windows of 2-6 versions, a collection every 0.2-1.2 s with 1-4 s of grace. */
export function retentionOverrides(): Partial<SimConfig> {
  return { retention: { keepVersions: [2, 6], setGapMs: [300, 1_500], gcGapMs: [200, 1_200], graceMs: [1_000, 4_000] } };
}

/** Draws a run's shape from its seed (the same random source then drives the run). */
export function configForSeed(seed: number, random: SimRandom, overrides: Partial<SimConfig> = {}): SimConfig {
  const nodes = random.between(3, 7);
  const config: SimConfig = {
    seed,
    nodes,
    folders: random.chance(0.5) ? ["docs"] : ["docs", "photos"],
    faultPhaseMs: random.between(6_000, 9_000),
    healDeadlineMs: 120_000,
    settleMs: 2_000,
    intervalMs: random.pick([1_000, 2_000]),
    maxWriteMs: 3,
    pushGapMs: [200, 500],
    staleRate: 0.2,
    restoreRate: 0.05,
    lateJoinRate: 0.15,
    maxClockSkewMs: random.pick([0, 50, 2_000, 30_000]),
    chaosGapMs: [500, 3_000],
    partitionRate: 0.35,
    partitionMs: [300, 5_000],
    crashRate: 0.3,
    crashInWriteRate: 0.003,
    downMs: [100, 4_000],
    network: {
      minDelayMs: 1,
      maxDelayMs: random.between(10, 80),
      timeoutMs: 1_000,
      dropRate: random.pick([0, 0.01, 0.03, 0.06]),
      duplicateRate: random.pick([0, 0.02, 0.05]),
    },
    retention: null,
    streamPushes: true,
  };
  return { ...config, ...overrides, network: { ...config.network, ...overrides.network } };
}

export interface Ack {
  folder: string;
  node: string;
  pushed: ObjectId;
  version: ObjectId;
  /** The acknowledged write's own counter (its dot is node:dot); read from its vector just after. */
  dot: number;
}

export interface SimReport {
  seed: number;
  config: SimConfig;
  /** Empty when every check passed. */
  failures: string[];
  traceHash: string;
  /** Folder → head id (hex) as agreed at the end (from the first node when they differ). */
  heads: Record<string, string | null>;
  events: number;
  simulatedMs: number;
  /** Simulated time from healing to agreement, or null when the nodes never agreed. */
  agreedAfterHealMs: number | null;
  /** Client writes: pushes and restores. */
  pushes: { attempted: number; acknowledged: number; staleParent: number; restores: number; lostToCrash: number; mergedOnPush: number };
  /** writesCut: store writes a crash caught in flight. */
  faults: { partitions: number; crashes: number; restarts: number; writesCut: number; lateJoins: number };
  /** Replication merges made (on any node), and their conflicts. */
  merges: { replication: number; conflicts: number; conflictsWithCopy: number; conflictCopies: number };
  /** Conflict copies present in the final heads' trees. */
  conflictCopiesInHeads: number;
  network: NetworkStats;
  /** objectsFetchedAhead: fetched on a peer's stored-objects notice, before any head named them (streamed replication). */
  replication: { pulls: number; pullFailures: number; versionsReceived: number; objectsFetched: number; objectsFetchedAhead: number };
  /**
   * The retention fault (all zero when off). acksPrunedHere: (node, acknowledged version) pairs
   * where the node pruned the version itself; acksCutUpstream: where it never received it
   * because retention elsewhere pruned it or a version after it; restoresOfPruned: restores
   * refused because the version was pruned before the restore committed;
   * mergesOverPrunedHistory: replication merges with a merge among their parents (one that
   * stood for itself, its own parents pruned); pullsRefusedFor…: integrations refused because a
   * collection deleted a version object or a tree object the pull had stored;
   * collectedVersionReads: vector reads of a version collected meanwhile (a head that moved on).
   */
  retention: {
    settings: number;
    collections: number;
    versionsPruned: number;
    objectsDeleted: number;
    acksPrunedHere: number;
    acksCutUpstream: number;
    restoresOfPruned: number;
    mergesOverPrunedHistory: number;
    pullsRefusedForCollectedVersion: number;
    pullsRefusedForCollectedTree: number;
    collectedVersionReads: number;
  };
}

interface SimNode {
  id: string;
  /** This node's wall clock (skewed from simulated time). */
  clock: Clock;
  store: MemoryObjectStore;
  metadata: SqliteMetadataStore;
  incarnation: Incarnation;
  node: DsyncNode | null;
  replicator: Replicator | null;
  repairer: Repairer | null;
  /** "folder/version id (hex)" of every version this node's collections pruned (retention runs only). */
  pruned: Set<string>;
}

export class Cluster {
  readonly scheduler: Scheduler;
  readonly network: Network;
  readonly nodes: SimNode[] = [];
  readonly acks: Ack[] = [];
  readonly failures: string[] = [];
  readonly report: SimReport;
  private healed = false;
  /** Set once the final checks begin: no more collections are started. */
  private checking = false;
  private incarnations = 0;
  /** Retention runs: "folder/version id" → parents (hex), of every version any node recorded. */
  private readonly graph = new Map<string, string[]>();
  /** The nodes' random source: the run's own, so whatever a node draws is part of its seed's course. */
  private readonly nodeRandom: RandomSource = { bytes: (length) => Uint8Array.from({ length }, () => this.random.int(256)) };

  constructor(
    readonly config: SimConfig,
    readonly random: SimRandom,
  ) {
    this.scheduler = new Scheduler();
    this.network = new Network(this.scheduler, random, { ...config.network });
    this.report = {
      seed: config.seed,
      config,
      failures: this.failures,
      traceHash: "",
      heads: {},
      events: 0,
      simulatedMs: 0,
      agreedAfterHealMs: null,
      pushes: { attempted: 0, acknowledged: 0, staleParent: 0, restores: 0, lostToCrash: 0, mergedOnPush: 0 },
      faults: { partitions: 0, crashes: 0, restarts: 0, writesCut: 0, lateJoins: 0 },
      merges: { replication: 0, conflicts: 0, conflictsWithCopy: 0, conflictCopies: 0 },
      conflictCopiesInHeads: 0,
      network: this.network.stats,
      replication: { pulls: 0, pullFailures: 0, versionsReceived: 0, objectsFetched: 0, objectsFetchedAhead: 0 },
      retention: {
        settings: 0,
        collections: 0,
        versionsPruned: 0,
        objectsDeleted: 0,
        acksPrunedHere: 0,
        acksCutUpstream: 0,
        restoresOfPruned: 0,
        mergesOverPrunedHistory: 0,
        pullsRefusedForCollectedVersion: 0,
        pullsRefusedForCollectedTree: 0,
        collectedVersionReads: 0,
      },
    };
    for (let i = 1; i <= config.nodes; i++) {
      const id = `n${i}`;
      const skewMs = random.between(-config.maxClockSkewMs, config.maxClockSkewMs);
      const clock: Clock = { nowMs: () => this.scheduler.nowMs() + skewMs };
      const sim: SimNode = {
        id,
        clock,
        // used_ms follows the node's own (simulated, skewed) clock, as the node's GC does.
        store: new MemoryObjectStore({ nowMs: () => clock.nowMs() }),
        metadata: SqliteMetadataStore.open(":memory:"),
        incarnation: { address: id, number: 0, alive: false },
        node: null,
        replicator: null,
        repairer: null,
        pruned: new Set(),
      };
      if (config.retention) this.recordGraph(sim);
      this.nodes.push(sim);
    }
  }

  /**
   * Retention runs: keeps, across crashes (the metadata is durable), the parents of every version
   * any node records and the versions each node prunes, for the checks.
   */
  private recordGraph(sim: SimNode): void {
    const metadata = sim.metadata;
    const note = (folder: string, versions: readonly { id: ObjectId; parents: ObjectId[] }[]) => {
      for (const v of versions) this.graph.set(`${folder}/${idToHex(v.id)}`, v.parents.map(idToHex));
    };
    const commitVersions = metadata.commitVersions.bind(metadata);
    metadata.commitVersions = async (folder, expectedHead, newHead, versions, nowMs) => {
      await commitVersions(folder, expectedHead, newHead, versions, nowMs);
      note(folder, versions);
    };
    const recordVersions = metadata.recordVersions.bind(metadata);
    metadata.recordVersions = async (folder, versions) => {
      await recordVersions(folder, versions);
      note(folder, versions);
    };
    const deleteVersions = metadata.deleteVersions.bind(metadata);
    metadata.deleteVersions = async (folder, ids) => {
      const head = (await metadata.getFolder(folder))?.head;
      if (head && ids.some((id) => idEquals(id, head))) this.failures.push(`${sim.id}: retention pruned the head ${idToHex(head).slice(0, 12)} of ${folder}`);
      await deleteVersions(folder, ids);
      for (const id of ids) sim.pruned.add(`${folder}/${idToHex(id)}`);
    };
  }

  private addresses(): string[] {
    return this.nodes.map((n) => n.id);
  }

  /**
   * Starts (or restarts) a node over its durable store and metadata. The incarnation is taken
   * at once, so a second start is refused and a crash while the node opens ends this one.
   */
  async start(sim: SimNode): Promise<void> {
    if (sim.incarnation.alive) throw new Error(`${sim.id} is already running`);
    const incarnation: Incarnation = { address: sim.id, number: ++this.incarnations, alive: true };
    sim.incarnation = incarnation;
    const store = new IncarnationStore(sim.store, incarnation, this.scheduler, this.random, this.config.maxWriteMs, {
      onWrite: (delayMs) => this.maybeCrashDuringWrite(sim, incarnation, delayMs),
      onCut: () => this.report.faults.writesCut++,
    });
    // Assembled as a serving node is (src/assemble.ts), from the simulation's parts: its store
    // and metadata, its skewed clock, its scheduler's timers and its network as the transport.
    const { node, replicator, peerService, repairer } = await assembleNodeOver(store, sim.metadata, {
      dataDir: `/nonexistent/sim/${sim.id}`,
      nodeId: sim.id,
      clock: sim.clock,
      random: this.nodeRandom,
      peers: this.addresses().filter((a) => a !== sim.id),
      transport: this.network.transportFor(incarnation),
      timers: this.scheduler.timers(`${sim.id}#${incarnation.number}`, () => incarnation.alive),
      syncIntervalMs: this.config.intervalMs,
      // The scrub reads every stored object back at its rate: a disk's decay, which a memory
      // store does not have; the runs are about replication under faults.
      scrubBytesPerSecond: 0,
      log: () => {},
    });
    if (!replicator || !peerService) throw new Error(`${sim.id}: assembled without replication (no transport)`);
    if (!incarnation.alive) return;
    this.countMerges(sim, node);
    await this.watchHeads(sim, node);
    if (!incarnation.alive) return;
    sim.node = node;
    sim.replicator = replicator;
    sim.repairer = repairer ?? null;
    this.network.attach(incarnation, peerService);
    replicator.start();
    void repairer?.start().catch((error: unknown) => this.failures.push(`${sim.id}: starting repair failed: ${(error as Error).message}`));
  }

  /** Kills a node: its replicator stops, it leaves the network, its calls in flight never settle. */
  crash(sim: SimNode): void {
    if (!sim.incarnation.alive) return;
    this.collectStats(sim);
    sim.incarnation.alive = false;
    sim.replicator?.stop();
    sim.repairer?.stop();
    this.network.detach(sim.id);
    sim.node = null;
    sim.replicator = null;
    sim.repairer = null;
    this.report.faults.crashes++;
    this.scheduler.note(`crash ${sim.id}`);
  }

  private collectStats(sim: SimNode): void {
    const stats = sim.replicator?.stats;
    if (!stats) return;
    this.report.replication.pulls += stats.pulls;
    this.report.replication.pullFailures += stats.pullFailures;
    this.report.replication.versionsReceived += stats.versionsReceived;
    this.report.replication.objectsFetched += stats.objectsFetched;
    this.report.replication.objectsFetchedAhead += stats.objectsFetchedAhead;
  }

  /**
   * Counts the conflicts of every replication merge this node makes; in retention runs also the
   * merges that had to stand a merge in for its pruned parents, and the pulls refused because a
   * collection took objects they had fetched.
   */
  private countMerges(sim: SimNode, node: DsyncNode): void {
    const integrate = node.integrateReplica.bind(node);
    node.integrateReplica = async (...args) => {
      let result;
      try {
        result = await integrate(...args);
      } catch (error) {
        if (error instanceof IncompleteTreeError) {
          const versions = new Set(args[2].map((v) => idToHex(v.id)));
          if (error.missing.some((id) => versions.has(idToHex(id)))) this.report.retention.pullsRefusedForCollectedVersion++;
          else this.report.retention.pullsRefusedForCollectedTree++;
        }
        throw error;
      }
      if (result.outcome === "merged") {
        this.report.merges.replication++;
        this.countConflicts(result.conflicts);
        const parents = (await sim.metadata.getVersion(args[0], result.head))?.parents ?? [];
        const parentRecords = await sim.metadata.getVersions(args[0], parents);
        if (parentRecords.some((record) => record?.author === "")) this.report.retention.mergesOverPrunedHistory++;
      }
      return result;
    };
    if (!this.config.retention) return;
    const vectorOf = node.vectorOf.bind(node);
    node.vectorOf = (id) =>
      vectorOf(id).catch((error) => {
        this.report.retention.collectedVersionReads++;
        throw error;
      });
  }

  /**
   * A head only ever moves forward: to a version whose vector covers the old head's (a write on
   * top of it, a fast-forward, a merge), or, between two merges of the same writes, to the
   * greater id. Checked at every move, in order.
   */
  private async watchHeads(sim: SimNode, node: DsyncNode): Promise<void> {
    let checks = Promise.resolve();
    const last = new Map<string, { head: ObjectId; vector: VersionVector }>();
    for (const folder of await sim.metadata.listFolders()) {
      if (folder.head) checks = checks.then(async () => void last.set(folder.name, { head: folder.head!, vector: await node.vectorOf(folder.head) }));
    }
    node.onHeadChanged((folder, head) => {
      checks = checks.then(async () => {
        let vector: VersionVector;
        try {
          vector = await node.vectorOf(head);
        } catch (error) {
          // A head that has moved on may be pruned and collected before this check reads it;
          // the next move is then checked against the one before (forward is transitive).
          const current = (await sim.metadata.getFolder(folder))?.head;
          if (current && idEquals(current, head)) this.failures.push(`${sim.id}: the head ${idToHex(head).slice(0, 12)} of ${folder} cannot be read: ${(error as Error).message}`);
          return;
        }
        const before = last.get(folder);
        last.set(folder, { head, vector });
        if (!before || idEquals(before.head, head)) return;
        const order = compareVectors(vector, before.vector);
        if (order === "after" || (order === "equal" && Buffer.compare(head, before.head) > 0)) return;
        this.failures.push(
          `${sim.id}: head of ${folder} moved from ${idToHex(before.head).slice(0, 12)} ${vectorText(before.vector)} to ${idToHex(head).slice(0, 12)} ${vectorText(vector)} (${order})`,
        );
      });
    });
  }

  private countConflicts(conflicts: readonly MergeConflict[]): void {
    for (const conflict of conflicts) {
      this.report.merges.conflicts++;
      if (conflict.extraPaths.length > 0) this.report.merges.conflictsWithCopy++;
      this.report.merges.conflictCopies += conflict.extraPaths.length;
    }
  }

  private liveNodes(): SimNode[] {
    return this.nodes.filter((n) => n.incarnation.alive);
  }

  // ---------- workload ----------

  private schedulePushes(): void {
    const tick = () => {
      if (this.healed) return;
      void this.startPush();
      this.scheduler.schedule(this.random.between(...this.config.pushGapMs), "push", tick);
    };
    this.scheduler.schedule(this.random.between(...this.config.pushGapMs), "push", tick);
  }

  /**
   * A client reads a version from a live node, edits it, uploads the objects, and commits a
   * little later (the head may move meanwhile: the node then merges the push onto it).
   */
  private async startPush(): Promise<void> {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const sim = this.random.pick(live);
    const node = sim.node!;
    const incarnation = sim.incarnation;
    const folder = this.random.pick(this.config.folders);
    const number = ++this.report.pushes.attempted;
    const head = (await node.metadata.getFolder(folder))?.head ?? null;
    if (head !== null && this.random.chance(this.config.restoreRate)) {
      await this.restoreOn(sim, folder, number);
      return;
    }
    let parent = head;
    if (head !== null && this.random.chance(this.config.staleRate)) {
      // A client that synced an older version, or (now and then) one pushing into the folder
      // for the first time.
      const versions = await node.metadata.listVersions(folder);
      parent = this.random.chance(0.1) ? null : this.random.pick(versions).id;
      if (parent === null || !idEquals(parent, head)) this.report.pushes.staleParent++;
    }
    const commitDelayMs = this.random.between(1, 40);
    // The edits are drawn now, before any await, so the draws keep their place in the sequence.
    const editRandom = new SimRandom(this.random.int(0x1_0000_0000));
    const tag = `${sim.id}/${number}`;
    const nowMs = sim.clock.nowMs();
    void (async () => {
      try {
        const tree = parent === null ? emptyDir() : await readTree(node, (await node.metadata.getVersion(folder, parent))!.root);
        const edits = applyRandomEdits(tree, editRandom, tag, nowMs);
        const sealed = sealSimTree(tree);
        await node.putObjects(sealed.objects);
        // As the upload route does once a group is durable: the peers fetch it ahead of the head.
        if (this.config.streamPushes && incarnation.alive) sim.replicator?.objectsStored(folder, sealed.objects);
        this.scheduler.note(`push ${tag} ${folder} ${edits.join(", ")}`);
        this.scheduler.schedule(commitDelayMs, `commit ${tag}`, () => {
          if (!incarnation.alive) {
            // The node died while the client was uploading: no acknowledgement.
            this.report.pushes.lostToCrash++;
            return;
          }
          void node
            .commit({ folder, root: sealed.root, parent, message: `push ${tag}`, chunking: "sim", files: sealed.files, totalBytes: sealed.totalBytes })
            .then((result) => this.acknowledge(sim, folder, tag, result))
            .catch((error) => this.failures.push(`push ${tag} to ${sim.id} failed: ${(error as Error).message}`));
        });
      } catch (error) {
        this.failures.push(`preparing push ${tag} on ${sim.id} failed: ${(error as Error).stack}`);
      }
    })();
  }

  /** A client asks a node to make an older version's content the head again. */
  private async restoreOn(sim: SimNode, folder: string, number: number): Promise<void> {
    const node = sim.node!;
    const target = this.random.pick(await node.metadata.listVersions(folder));
    const tag = `${sim.id}/${number}`;
    this.report.pushes.restores++;
    this.scheduler.note(`restore ${tag} ${folder} ${idToHex(target.id)}`);
    void node
      .restore(folder, idToHex(target.id))
      .then((result) => this.acknowledge(sim, folder, tag, result))
      .catch((error) => {
        // A collection may prune the version (and delete its tree) before the restore commits:
        // the node then refuses it, and nothing is acknowledged.
        if (error instanceof IncompleteTreeError && sim.pruned.has(`${folder}/${idToHex(target.id)}`)) {
          this.report.retention.restoresOfPruned++;
          this.scheduler.note(`restore ${tag} refused: ${idToHex(target.id)} was pruned`);
          return;
        }
        this.failures.push(`restore ${tag} on ${sim.id} failed: ${(error as Error).message}`);
      });
  }

  private acknowledge(sim: SimNode, folder: string, tag: string, result: CommitResult): void {
    const ack: Ack = { folder, node: sim.id, pushed: result.pushed, version: result.version, dot: 0 };
    this.acks.push(ack);
    // The version was stored before the acknowledgement (a store read schedules no event).
    void sim.store.get(result.version).then((bytes) => {
      const object = bytes && decodeObject(bytes);
      if (object && object.kind === "version") ack.dot = counterOf(object.versionVector, sim.id);
      else this.failures.push(`acknowledged version ${idToHex(result.version).slice(0, 12)} of ${sim.id} is not stored`);
    });
    this.report.pushes.acknowledged++;
    if (result.mergedWith !== null) this.report.pushes.mergedOnPush++;
    this.scheduler.note(`ack ${tag} ${idToHex(result.version)}`);
  }

  // ---------- faults ----------

  private scheduleChaos(): void {
    const tick = () => {
      if (this.healed) return;
      this.chaos();
      this.scheduler.schedule(this.random.between(...this.config.chaosGapMs), "chaos", tick);
    };
    this.scheduler.schedule(this.random.between(...this.config.chaosGapMs), "chaos", tick);
  }

  private chaos(): void {
    if (!this.network.partitioned && this.random.chance(this.config.partitionRate)) {
      const groups = this.randomSplit();
      this.network.partition(groups);
      this.report.faults.partitions++;
      this.scheduler.note(`partition ${groups.map((g) => g.join("+")).join(" | ")}`);
      this.scheduler.schedule(this.random.between(...this.config.partitionMs), "heal partition", () => {
        if (this.healed) return;
        this.network.heal();
        this.scheduler.note("partition healed");
      });
    }
    const live = this.liveNodes();
    if (live.length > 1 && this.random.chance(this.config.crashRate)) {
      const victim = this.random.pick(live);
      this.crash(victim);
      this.scheduleRestart(victim);
    }
  }

  /** Now and then a node crashes while one of its writes is in flight (or just after it lands). */
  private maybeCrashDuringWrite(sim: SimNode, incarnation: Incarnation, delayMs: number): void {
    if (this.healed || !this.random.chance(this.config.crashInWriteRate) || this.liveNodes().length < 2) return;
    this.scheduler.schedule(this.random.between(0, delayMs), `crash ${sim.id} during a write`, () => {
      if (this.healed || sim.incarnation !== incarnation || !incarnation.alive) return;
      this.crash(sim);
      this.scheduleRestart(sim);
    });
  }

  private scheduleRestart(sim: SimNode): void {
    this.scheduler.schedule(this.random.between(...this.config.downMs), `restart ${sim.id}`, () => {
      if (!sim.incarnation.alive) void this.restart(sim);
    });
  }

  private async restart(sim: SimNode): Promise<void> {
    this.report.faults.restarts++;
    this.scheduler.note(`restart ${sim.id}`);
    await this.start(sim);
  }

  /** Two (sometimes three) non-empty groups of nodes. */
  private randomSplit(): string[][] {
    const order = this.random.shuffle(this.addresses());
    const count = order.length >= 4 && this.random.chance(0.3) ? 3 : 2;
    const groups: string[][] = Array.from({ length: count }, () => []);
    order.forEach((address, i) => groups[i < count ? i : this.random.int(count)]!.push(address));
    return groups;
  }

  // ---------- retention and garbage collection ----------

  private scheduleRetention(retention: RetentionConfig): void {
    const keepTick = () => {
      if (this.healed) return;
      void this.keepFewVersions(retention);
      this.scheduler.schedule(this.random.between(...retention.setGapMs), "retention", keepTick);
    };
    this.scheduler.schedule(this.random.between(...retention.setGapMs), "retention", keepTick);
    const gcTick = () => {
      if (this.checking) return;
      const live = this.liveNodes();
      if (live.length > 0) void this.collectGarbage(this.random.pick(live), this.random.between(...retention.graceMs));
      this.scheduler.schedule(this.random.between(...retention.gcGapMs), "gc", gcTick);
    };
    this.scheduler.schedule(this.random.between(...retention.gcGapMs), "gc", gcTick);
  }

  /** A random live node keeps only a few versions of one of its folders from now on. */
  private async keepFewVersions(retention: RetentionConfig): Promise<void> {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const sim = this.random.pick(live);
    const node = sim.node!;
    const folders = await sim.metadata.listFolders();
    if (folders.length === 0) return;
    const folder = this.random.pick(folders).name;
    const keepVersions = this.random.between(...retention.keepVersions);
    await node.setRetention(folder, { keepVersions });
    this.report.retention.settings++;
    this.scheduler.note(`retention ${sim.id} ${folder} keep ${keepVersions}`);
  }

  /** One collection on a live node, then a check that its heads are still whole. */
  private collectGarbage(sim: SimNode, graceMs: number): Promise<void> {
    const incarnation = sim.incarnation;
    this.report.retention.collections++;
    return sim.node!.gc({ graceMs }).then(
      async (gc) => {
        this.report.retention.versionsPruned += gc.versionsPruned;
        this.report.retention.objectsDeleted += gc.objectsDeleted;
        this.scheduler.note(`gc ${sim.id} pruned ${gc.versionsPruned} deleted ${gc.objectsDeleted}`);
        if (incarnation.alive) await this.checkHeadsWhole(sim, `after a collection with ${graceMs} ms of grace`);
      },
      (error) => void this.failures.push(`gc on ${sim.id} failed: ${(error as Error)?.stack ?? String(error)}`),
    );
  }

  /** Every object below every head of a node is stored (read from its disk, whatever the completeness marks say). */
  private async checkHeadsWhole(sim: SimNode, when: string): Promise<void> {
    for (const folder of await sim.metadata.listFolders()) {
      if (!folder.head) continue;
      const missing: string[] = [];
      await walkClosure([{ id: folder.head, kind: "structured" }], sim.store, { onMissing: (id) => missing.push(idToHex(id)) });
      if (missing.length > 0) {
        this.failures.push(`${sim.id}: the head ${idToHex(folder.head).slice(0, 12)} of ${folder.name} lacks ${missing.length} object(s) ${when}, e.g. ${missing[0]!.slice(0, 12)}`);
      }
    }
  }

  /** After agreement: one last collection on every node, no grace, so everything retention allows goes. */
  private async finalCollections(): Promise<void> {
    this.checking = true;
    let pending = this.nodes.length;
    for (const sim of this.nodes) void this.collectGarbage(sim, 0).finally(() => pending--);
    const done = await this.scheduler.runUntil(this.scheduler.nowMs() + 10_000, () => pending === 0 || this.failures.length > 0);
    if (!done && pending > 0) this.failures.push(`${pending} final collection(s) did not finish within 10 s`);
  }

  /**
   * Versions some node pruned, with everything before them: a node may lack one of these
   * because the history it would have come by was cut (a peer sends history down to the first
   * version it no longer holds).
   */
  private cutByRetention(folder: string): Set<string> {
    const cut = new Set<string>();
    let frontier: string[] = [];
    for (const sim of this.nodes) for (const key of sim.pruned) if (key.startsWith(`${folder}/`)) frontier.push(key.slice(folder.length + 1));
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const hex of frontier) {
        if (cut.has(hex)) continue;
        cut.add(hex);
        next.push(...(this.graph.get(`${folder}/${hex}`) ?? []));
      }
      frontier = next;
    }
    return cut;
  }

  private async heal(): Promise<void> {
    this.healed = true;
    this.network.heal();
    this.network.stopFaults();
    for (const sim of this.nodes) {
      if (sim.incarnation.alive) continue;
      // A late joiner whose time had not come yet starts now; the others restart.
      if (sim.incarnation.number === 0) await this.start(sim);
      else await this.restart(sim);
    }
    this.scheduler.note("healed");
  }

  // ---------- the run ----------

  async run(): Promise<SimReport> {
    // Outside a test runner (which fails the test itself), a rejection the nodes let escape is a failure of the run.
    const unhandled = (reason: unknown) => this.failures.push(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    process.on("unhandledRejection", unhandled);
    try {
      for (const [i, sim] of this.nodes.entries()) {
        if (i === 0 || !this.random.chance(this.config.lateJoinRate)) {
          await this.start(sim);
          continue;
        }
        // A node that joins the cluster later, with nothing yet.
        this.report.faults.lateJoins++;
        this.scheduler.schedule(this.random.between(0, Math.round(this.config.faultPhaseMs * 0.7)), `join ${sim.id}`, () => {
          if (!sim.incarnation.alive && !this.healed) void this.start(sim);
        });
      }
      this.schedulePushes();
      this.scheduleChaos();
      if (this.config.retention) this.scheduleRetention(this.config.retention);
      const healAt = this.scheduler.startMs + this.config.faultPhaseMs;
      await this.scheduler.runUntil(healAt, () => this.failures.length > 0);
      if (this.failures.length === 0) {
        await this.heal();
        const deadline = healAt + this.config.healDeadlineMs;
        let lastCheckMs = 0;
        const agreed = await this.scheduler.runUntil(deadline, async () => {
          if (this.failures.length > 0) return true;
          const now = this.scheduler.nowMs();
          if (now - lastCheckMs < 100) return false;
          lastCheckMs = now;
          return (await this.disagreement()) === null;
        });
        if (this.failures.length === 0) {
          if (!agreed) this.failures.push(`no agreement ${this.config.healDeadlineMs / 1000} s after healing: ${await this.disagreement()}`);
          else {
            this.report.agreedAfterHealMs = this.scheduler.nowMs() - healAt;
            await this.scheduler.runUntil(this.scheduler.nowMs() + this.config.settleMs, () => this.failures.length > 0);
            if (this.config.retention && this.failures.length === 0) await this.finalCollections();
            if (this.failures.length === 0) {
              try {
                await this.checkInvariants();
              } catch (error) {
                this.failures.push(`the checks failed to run: ${(error as Error)?.stack ?? String(error)}`);
              }
            }
          }
        }
      }
      this.failures.push(...this.scheduler.errors);
    } finally {
      process.off("unhandledRejection", unhandled);
      for (const sim of this.nodes) {
        this.collectStats(sim);
        sim.replicator?.stop();
        sim.incarnation.alive = false;
      }
    }
    for (const folder of await this.folderNames()) {
      const head = (await this.nodes[0]!.metadata.getFolder(folder))?.head ?? null;
      this.report.heads[folder] = head ? idToHex(head) : null;
      this.scheduler.note(`final ${folder} ${this.report.heads[folder]}`);
    }
    this.report.traceHash = this.scheduler.traceHash();
    this.report.events = this.scheduler.eventsRun;
    this.report.simulatedMs = this.scheduler.elapsedMs();
    for (const sim of this.nodes) await sim.metadata.close();
    return this.report;
  }

  private async folderNames(): Promise<string[]> {
    const names = new Set<string>();
    for (const sim of this.nodes) for (const folder of await sim.metadata.listFolders()) names.add(folder.name);
    return [...names].sort();
  }

  /** Null when every node runs and all agree on every folder's head; else what differs. */
  async disagreement(): Promise<string | null> {
    // A node whose start is still opening it has its incarnation but no node yet: not up.
    const down = this.nodes.filter((n) => !n.incarnation.alive || n.node === null);
    if (down.length > 0) return `down: ${down.map((n) => n.id).join(", ")}`;
    for (const folder of await this.folderNames()) {
      const heads: string[] = [];
      for (const sim of this.nodes) {
        const record = await sim.metadata.getFolder(folder);
        heads.push(record ? (record.head ? idToHex(record.head).slice(0, 12) : "empty") : "absent");
      }
      if (new Set(heads).size > 1) return `folder ${folder}: ${this.nodes.map((sim, i) => `${sim.id}=${heads[i]}`).join(" ")}`;
    }
    return null;
  }

  private async checkInvariants(): Promise<void> {
    const problem = await this.disagreement();
    if (problem) {
      this.failures.push(`agreement did not hold for ${this.config.settleMs} ms: ${problem}`);
      return;
    }
    const folders = await this.folderNames();
    const dots = new Map<string, string>();
    const cut = new Map(this.config.retention ? folders.map((f) => [f, this.cutByRetention(f)]) : []);
    for (const sim of this.nodes) {
      const node = sim.node!;
      const names = (await sim.metadata.listFolders()).map((f) => f.name).sort();
      if (names.join("\n") !== folders.join("\n")) this.failures.push(`${sim.id} has folders [${names}] but the cluster has [${folders}]`);
      for (const folder of folders) {
        const head = (await sim.metadata.getFolder(folder))?.head;
        if (!head) {
          this.failures.push(`${sim.id} has no head for ${folder}`);
          continue;
        }
        const acks = this.acks.filter((a) => a.folder === folder);
        // Every acknowledged write is in the head's history by its vector, pruned or not.
        const headVector = await node.vectorOf(head);
        for (const ack of acks) {
          if (ack.dot === 0 || !coversDot(headVector, ack.node, ack.dot)) {
            this.failures.push(`${sim.id}: the head of ${folder} ${vectorText(headVector)} does not cover ${ack.node}:${ack.dot}, acknowledged as ${idToHex(ack.version).slice(0, 12)}`);
          }
        }
        if (this.config.retention) {
          // Retention is local: a node may lack an acknowledged version it pruned, or one it
          // never received because retention elsewhere cut the history it would have come by.
          for (const ack of acks) {
            for (const [what, id] of [["pushed", ack.pushed], ["version", ack.version]] as const) {
              const key = idToHex(id);
              if (await sim.metadata.getVersion(folder, id)) continue;
              if (sim.pruned.has(`${folder}/${key}`)) this.report.retention.acksPrunedHere++;
              else if (cut.get(folder)!.has(key)) this.report.retention.acksCutUpstream++;
              else this.failures.push(`${sim.id} lacks ${what} ${key.slice(0, 12)} acknowledged by ${ack.node} in ${folder}, and no node pruned it or a version after it`);
            }
          }
          continue;
        }
        const reachable = await this.ancestry(sim, folder, head);
        for (const ack of acks) {
          for (const [what, id] of [["pushed", ack.pushed], ["version", ack.version]] as const) {
            const key = idToHex(id);
            if (!(await sim.metadata.getVersion(folder, id))) this.failures.push(`${sim.id} lacks ${what} ${key.slice(0, 12)} acknowledged by ${ack.node} in ${folder}`);
            else if (!reachable.has(key)) this.failures.push(`${sim.id}: ${what} ${key.slice(0, 12)} acknowledged by ${ack.node} is not reachable from the head of ${folder}`);
          }
        }
      }
      await this.checkVectors(sim, folders, dots);
      if (this.config.retention) await this.checkHeadsWhole(sim, "after the final collection");
      const verified = await node.verify();
      if (verified.missing.length > 0) this.failures.push(`${sim.id} lacks ${verified.missing.length} object(s) below its heads, e.g. ${verified.missing[0]!.slice(0, 12)}`);
      if (verified.corrupt.length > 0) this.failures.push(`${sim.id} holds ${verified.corrupt.length} corrupt object(s)`);
    }
    const first = this.nodes[0]!;
    for (const folder of folders) {
      const head = (await first.metadata.getFolder(folder))!.head!;
      const root = (await first.metadata.getVersion(folder, head))!.root;
      for (const sim of this.nodes) {
        const record = await sim.metadata.getVersion(folder, head);
        const stored = await sim.node!.decodeVersion(head);
        if (!record || !idEquals(record.root, root) || !idEquals(stored.root, root)) this.failures.push(`${sim.id}: the head of ${folder} does not have the root ${idToHex(root).slice(0, 12)} the others have`);
      }
      this.report.conflictCopiesInHeads += (await conflictCopiesIn(first.node!, root)).length;
    }
  }

  /**
   * The version vector rules, on every version a node records: a replication merge carries the
   * join of its parents' vectors; a write adds to that join its author's next counter (its dot);
   * a push recorded as it arrived with a stale parent carries none. No two versions anywhere
   * share a dot, since peers skip sending writes by their dots.
   */
  private async checkVectors(sim: SimNode, folders: readonly string[], dots: Map<string, string>): Promise<void> {
    const node = sim.node!;
    for (const folder of folders) {
      for (const record of await sim.metadata.listVersions(folder)) {
        const key = idToHex(record.id);
        const version = await node.decodeVersion(record.id);
        const parents = [];
        for (const parent of version.parents) {
          if (!(await sim.metadata.getVersion(folder, parent))) continue;
          parents.push(await node.decodeVersion(parent));
        }
        if (parents.length < version.parents.length) continue; // reported by the ancestry check when reachable
        const joined = joinVectors(...parents.map((p) => p.versionVector));
        let expected: VersionVector;
        if (isReplicationMerge(version)) expected = joined;
        else if (version.versionVector.length === 0) continue;
        else expected = withCounter(joined, version.author, counterOf(joined, version.author) + 1);
        if (compareVectors(version.versionVector, expected) !== "equal") {
          this.failures.push(`${sim.id}: version ${key.slice(0, 12)} in ${folder} has vector ${vectorText(version.versionVector)}, expected ${vectorText(expected)}`);
          continue;
        }
        if (isReplicationMerge(version)) continue;
        const dot = `${folder}/${version.author}:${counterOf(version.versionVector, version.author)}`;
        const holder = dots.get(dot);
        if (holder === undefined) dots.set(dot, key);
        else if (holder !== key) this.failures.push(`two versions share the dot ${dot}: ${holder.slice(0, 12)} and ${key.slice(0, 12)}`);
      }
    }
  }

  /** Version ids (hex) reachable from head through parents; a parent the node does not record is a failure. */
  private async ancestry(sim: SimNode, folder: string, head: ObjectId): Promise<Set<string>> {
    const seen = new Set<string>();
    let frontier = [head];
    const holes: string[] = [];
    while (frontier.length > 0) {
      const next: ObjectId[] = [];
      for (const id of frontier) {
        const key = idToHex(id);
        if (seen.has(key)) continue;
        const record = await sim.metadata.getVersion(folder, id);
        if (!record) {
          holes.push(key);
          continue;
        }
        seen.add(key);
        next.push(...record.parents);
      }
      frontier = next;
    }
    if (holes.length > 0) this.failures.push(`${sim.id}: ${holes.length} version(s) in the history of ${folder} are not recorded, e.g. ${holes[0]!.slice(0, 12)}`);
    return seen;
  }
}

function vectorText(vector: VersionVector): string {
  return JSON.stringify(vectorToRecord(vector));
}

/** One simulation run for one seed. */
export async function runSimulation(seed: number, overrides: Partial<SimConfig> = {}): Promise<SimReport> {
  const random = new SimRandom(seed);
  const config = configForSeed(seed, random, overrides);
  return new Cluster(config, random).run();
}

/** Seeds from SIM_SEEDS: "N" (seeds 1..N) or "A-B" (A..B inclusive); `fallback` seeds when unset. */
export function seedsFromEnv(value: string | undefined, fallback: number, variable = "SIM_SEEDS"): number[] {
  const text = value?.trim();
  let from = 1;
  let to = fallback;
  if (text) {
    const range = /^(\d+)-(\d+)$/.exec(text);
    if (range) {
      from = Number(range[1]);
      to = Number(range[2]);
    } else if (/^\d+$/.test(text)) to = Number(text);
    else throw new Error(`${variable} must be N or A-B, not ${JSON.stringify(text)}`);
  }
  const seeds: number[] = [];
  for (let seed = from; seed <= to; seed++) seeds.push(seed);
  return seeds;
}

/**
 * The long run (SIM_LONG=1): the fault phase at 20-30 s with pushes every 100-300 ms, the size a
 * longer soak uses; the default is scaled down so 200 seeds take well under a minute.
 */
export function longOverrides(seed: number): Partial<SimConfig> {
  return { faultPhaseMs: 20_000 + ((seed * 7919) % 10_001), pushGapMs: [100, 300] };
}

/** The one line a failing seed prints. */
export function failureLine(report: SimReport, rerunPrefix = "", variable = "SIM_SEEDS"): string {
  const more = report.failures.length > 1 ? ` (and ${report.failures.length - 1} more)` : "";
  return `simulation seed ${report.seed} failed: ${report.failures[0]}${more}; rerun with ${rerunPrefix}${variable}=${report.seed}-${report.seed}`;
}
