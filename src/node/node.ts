// A dsync node: the operations the API exposes, over the object store and the metadata store
// it is given (src/assemble.ts picks them).
//
// Write ordering (each step durable before the next): objects (chunks, then the file and tree
// nodes that name them, as the client uploads them bottom-up), then the closure check, then the
// version object, then the head moves by compare-and-set in one synchronous=FULL transaction.
// A crash at any point leaves at most unreferenced objects (garbage), never a head that names
// something missing.
import { join } from "node:path";
import { hlcCompare, HLC_ZERO, type HlcTimestamp } from "../core/hlc.ts";
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { decodeObject, type StructuredObject, type Version } from "../core/objects.ts";
import type { MergeConflict } from "../core/merge.ts";
import type { KnownVersion, VersionLookup } from "../core/concurrent-merge.ts";
import { EMPTY_VECTOR, type VersionVector } from "../core/version-vector.ts";
import type { ObjectLoader } from "../core/pages.ts";
import { validateFolderName } from "../core/names.ts";
import { INDEX_FILE_NAME } from "../store/pack-store.ts";
import { isSqliteDamage, ObjectIndexDamagedError } from "../store/sqlite-damage.ts";
import { CorruptObjectError, type StoredObject } from "../store/object-store.ts";
import { METADATA_FILE_NAME, MetadataDamagedError } from "./metadata-damage.ts";
import type { SpaceReserve } from "./space-reserve.ts";
import { systemClock, systemRandom, type Clock, type RandomSource } from "./clock.ts";
import { verifyTreeClosure } from "./closure.ts";
import { FolderModeChangedError, HeadMovedError, type ConsistencyMode, type FolderPage, type FolderRecord, type MetadataStoreStat, type RetentionChange, type VersionPage, type VersionRecord, type VersionTotals } from "./metadata-records.ts";
import type { MetadataStore } from "./metadata-store.ts";
import { MetadataProbe, type MetadataAvailability } from "./metadata-probe.ts";
import { conflictCopiesMadeBy } from "./conflict-copies.ts";
import { Mutex } from "./mutex.ts";
import { nodeIdProblem } from "./node-id.ts";
import { CoalescingRunner } from "./coalesce.ts";
import type { Repairer } from "./repair.ts";
import { collectGarbage, type GcOptions, type GcReport } from "./gc.ts";
import { IngestMarks } from "./ingest-marks.ts";
import { EVENT_LOG_CAPACITY, EventLog, firstEventId } from "./events.ts";
import { commitPush, type CommitRequest, type CommitResult } from "./commit.ts";
import { integrateReplicaVersions, replicaVersionNamesProblem, type IntegrateResult, type ReplicaVersion } from "./integrate-replica.ts";
import { findMergeBase } from "./merge-base.ts";
import { HeadListeners, type HeadListener } from "./head-listeners.ts";
import type { NodeStore } from "./node-store.ts";
import { UserError } from "./user-error.ts";
import { integrityOf, verifyNode, type VerifyReport } from "./verify.ts";
import { VersionWriter } from "./version-writer.ts";
import type { WriteContext } from "./write-context.ts";
import type { StrongHeads } from "./strong-heads.ts";

export interface NodeOptions {
  dataDir: string;
  clock?: Clock;
  /** Source of the node id made on first start. */
  random?: RandomSource;
  /** Retention for folders created on this node, unless a push sets its own. */
  defaultKeepVersions?: number | null;
  defaultKeepDays?: number | null;
  /** Overrides the stored node id (it is then stored). */
  nodeId?: string;
  /** Where the metadata lives, for the message that names it damaged (default: metadata.sqlite in dataDir). */
  metadataLocation?: string;
}

export { type CommitRequest, type CommitResult } from "./commit.ts";
export { replicaVersionNamesProblem, type IntegrateResult, type ReplicaVersion } from "./integrate-replica.ts";
export { type HeadListener } from "./head-listeners.ts";
export { UserError } from "./user-error.ts";
export { type NodeStore } from "./node-store.ts";
export { type StrongHeads, type HeadMover } from "./strong-heads.ts";
export { type VerifyReport } from "./verify.ts";
export { nodeIdProblem };

/** The object store's directory inside a data folder. */
const OBJECTS_DIR_NAME = "objects";

/** How long a read of an object found corrupt waits for a peer's copy before it answers without it. */
export const READ_REPAIR_TIMEOUT_MS = 5_000;

/**
 * How many times a commit to a strong folder is merged again when the log finds the head moved
 * under it: a leader new in its term may read its head before it applied the entries of the
 * term before (the log, not this node's read, is the order). Each try is one proposal.
 */
export const STRONG_COMMIT_ATTEMPTS = 3;

/**
 * How long a commit to (or the creation of) a folder this node does not hold waits to learn
 * whether the log made it strong a moment ago and this node has not applied that yet. Past it
 * (no leader answers: a minority side) the folder is taken as new and made eventual, as on a
 * node alone.
 */
export const UNKNOWN_FOLDER_CATCH_UP_MS = 2_000;

/** A folder exists already in the other consistency mode (HTTP 409, naming the mode it has). */
export class FolderModeError extends UserError {
  override name = "FolderModeError";
  constructor(
    readonly folder: string,
    readonly mode: ConsistencyMode,
  ) {
    super(`folder ${JSON.stringify(folder)} exists as ${mode === "strong" ? "a strong" : "an eventual"} folder; its mode is not changed (pick another name for ${mode === "strong" ? "an eventual" : "a strong"} folder)`, 409);
  }
}

export class DsyncNode {
  private readonly writeLock = new Mutex();
  private readonly gcRuns = new CoalescingRunner<GcReport>(() => new UserError("a gc with other options is already waiting to run; try again when it ends", 409));
  private readonly verifyRuns = new CoalescingRunner<VerifyReport>(() => new UserError("a verification with other options is already waiting to run; try again when it ends", 409));
  private readonly heads = new HeadListeners();
  private readonly writer: VersionWriter;
  private repairer: Repairer | undefined;
  /** How strong folders' heads move (the cluster's log); absent on a node assembled without consensus. */
  private strongHeads: StrongHeads | undefined;
  private readonly stopHearingQuarantine: () => void;
  /** Completeness marks made as uploads arrive (ingest-marks.ts). */
  readonly ingestMarks: IngestMarks;
  /** What happened on this node, for GET /v1/events and the dashboard (events.ts). */
  readonly events: EventLog;

  /** Space kept back so gc can run on a full disk (space-reserve.ts); set by the assembly (openNode), absent for nodes over memory stores. */
  spaceReserve: SpaceReserve | undefined;

  /** What opening the data folder had to repair before the node could start (a damaged object index rebuilt), for the log. */
  startupNotes: string[] = [];

  private constructor(
    readonly dataDir: string,
    readonly store: NodeStore,
    readonly metadata: MetadataStore,
    readonly nodeId: string,
    readonly clock: Clock,
    private readonly options: NodeOptions,
    latestHlc: HlcTimestamp,
  ) {
    // A completeness mark vouches for everything below an object; once anything is quarantined,
    // no mark can be trusted to (a mark does not say what lies below it), so all are dropped and
    // the next commit or pull checks its tree again, finding the quarantined object missing.
    this.events = new EventLog(clock, EVENT_LOG_CAPACITY, firstEventId(clock.nowMs()));
    this.ingestMarks = new IngestMarks(store, metadata, () => this.marksDropped);
    this.stopHearingQuarantine = store.onQuarantine((ids) => {
      this.ingestMarks.forgetAll();
      // Before the event: whoever hears of the quarantine finds the marks gone. A failure is
      // logged, not thrown into the store's read; the next quarantine drops them again.
      this.marksDropped = metadata.unmarkAllComplete().catch((error: unknown) => console.error("dsync: dropping completeness marks failed:", error));
      for (const id of ids.slice(0, 100)) this.events.emit("verify", null, { finding: "corrupt", object: idToHex(id) });
    });
    // The clock goes on from the latest stamp recorded, found by the store without reading the history here.
    this.writer = new VersionWriter(store, clock, nodeId, hlcCompare(latestHlc, HLC_ZERO) > 0 ? latestHlc : HLC_ZERO);
  }

  /** What commit.ts and integrate-replica.ts work with (write-context.ts). */
  private get writeContext(): WriteContext {
    return this.writeContextWith(() => {});
  }

  /** The write context, `movedByLog` called when a head moved through the cluster's log (the log's apply told the listeners). */
  private writeContextWith(movedByLog: () => void): WriteContext {
    return {
      store: this.store,
      metadata: this.metadata,
      clock: this.clock,
      nodeId: this.nodeId,
      folderDefaults: { keepVersions: this.options.defaultKeepVersions ?? null, keepDays: this.options.defaultKeepDays ?? null },
      writer: this.writer,
      load: this.load,
      decodeVersion: (id) => this.decodeVersion(id),
      vectorOf: (id) => this.vectorOf(id),
      versionLookup: (folder) => this.versionLookup(folder),
      checkClosure: async (root) => {
        // A quarantine's drop of every mark goes first: no mark it dropped is trusted again.
        await this.marksDropped;
        await verifyTreeClosure(root, this.store, this.metadata, (ids) => this.ingestMarks.knownChunkLengths(ids));
      },
      moveHead: async (folder, expected, head, versions) => {
        // The mode is read right before the move, so a folder the log made strong a moment ago
        // (one created eventual on a minority side) is moved by the log from then on.
        const record = await this.metadata.getFolder(folder);
        if (record?.mode === "strong") {
          if (!this.strongHeads) throw new Error(`folder ${folder} is strong, and this node runs without the cluster's log: its head cannot move here`);
          await this.strongHeads.moveHead(folder, expected, head, versions);
          movedByLog();
          return;
        }
        // The mode is checked again in the compare-and-set itself: should the log turn the folder
        // strong between the read above and this move, it is refused (FolderModeChangedError, a
        // HeadMovedError) and the commit is made again, through the log.
        await this.metadata.commitVersions(folder, expected, head, versions, this.clock.nowMs(), { onlyIfMode: "eventual" });
      },
    };
  }

  /** The last drop of every completeness mark a quarantine started; a commit waits for it before it trusts a mark. */
  private marksDropped: Promise<void> = Promise.resolve();

  /**
   * A node over the store and metadata it is given: it opens nothing itself. The assembly
   * (src/assemble.ts) picks the pack store and SQLite or PostgreSQL for a data folder; tests
   * and the simulation hand it memory ones (and keep them across a simulated crash).
   */
  static async over(store: NodeStore, metadata: MetadataStore, options: NodeOptions): Promise<DsyncNode> {
    const clock = options.clock ?? systemClock;
    let nodeId = await metadata.getMeta("node_id");
    if (options.nodeId !== undefined) {
      const problem = nodeIdProblem(options.nodeId);
      if (problem) throw new UserError(problem);
    }
    if (options.nodeId && options.nodeId !== nodeId) {
      nodeId = options.nodeId;
      await metadata.setMeta("node_id", nodeId);
    } else if (!nodeId) {
      nodeId = Buffer.from((options.random ?? systemRandom).bytes(8)).toString("hex");
      await metadata.setMeta("node_id", nodeId);
    }
    return new DsyncNode(options.dataDir, store, metadata, nodeId, clock, options, await metadata.latestHlc());
  }

  async close(): Promise<void> {
    this.stopHearingQuarantine();
    await this.writeLock.run(async () => {
      await this.store.close();
      await this.metadata.close();
    });
  }

  /** Loads and decodes a structured object from the local store. */
  readonly load: ObjectLoader = async (id) => {
    const [bytes] = await this.readRepairing([id], true);
    if (!bytes) throw new UserError(`object ${idToHex(id)} is not stored on this node`, 404);
    return decodeObject(bytes);
  };

  /**
   * For an error SQLite raised as damage (a query met a damaged page): which of this node's
   * two databases is damaged, by SQLite's own check of each, as an error that names the file
   * and the next step. Any other error, or damage neither check confirms, is returned as it is.
   */
  async explainDamage<E>(error: E): Promise<E | MetadataDamagedError | ObjectIndexDamagedError> {
    if (!isSqliteDamage(error) && !this.metadata.isDamage(error)) return error;
    const problem = (error as Error).message;
    const metadataCheck = await integrityOf(async () => this.metadata.integrityCheck());
    if (metadataCheck !== "ok") return new MetadataDamagedError(this.options.metadataLocation ?? join(this.dataDir, METADATA_FILE_NAME), problem, this.nodeId, true);
    const indexCheck = await integrityOf(async () => (await this.store.integrityCheck?.()) ?? "ok");
    if (indexCheck !== "ok") return new ObjectIndexDamagedError(join(this.dataDir, OBJECTS_DIR_NAME, INDEX_FILE_NAME), problem);
    return error;
  }

  /** How strong folders' heads move: the cluster's log (set by the assembly); none, and strong folders cannot be written here. */
  setStrongHeads(strongHeads: StrongHeads | undefined): void {
    this.strongHeads = strongHeads;
  }

  /** Whether this node can create and write strong folders (it runs the cluster's log). */
  get hasStrongMode(): boolean {
    return this.strongHeads !== undefined;
  }

  /** Where quarantined objects are fetched from (the peers); none on a node without peers. */
  setRepairer(repairer: Repairer | undefined): void {
    this.repairer = repairer;
  }

  /** Counts for status: objects quarantined now, repaired by a later put, and those no peer had. */
  async corruptionStatus(): Promise<{ quarantined: number; repaired: number; unrepairable: number }> {
    const { quarantined, repaired } = await this.store.quarantineStats();
    // Without peers nothing can repair a quarantined object but a client sending it again.
    const unrepairable = this.repairer === undefined ? quarantined : Math.min(quarantined, this.repairer.stats.unrepairable);
    return { quarantined, repaired, unrepairable };
  }

  /**
   * Reads objects; one found corrupt is quarantined by the store and, when the node has peers,
   * fetched from them (waiting at most READ_REPAIR_TIMEOUT_MS); what is still not back reads as
   * absent, so a reader gets an answer rather than the same failure on every try.
   */
  private async readRepairing(ids: readonly ObjectId[], repair: boolean): Promise<(Uint8Array | undefined)[]> {
    let datas: (Uint8Array | undefined)[];
    try {
      datas = await this.store.getMany(ids);
    } catch (error) {
      if (!(error instanceof CorruptObjectError)) throw error;
      // The store quarantined every corrupt object of the batch before throwing.
      datas = await this.store.getMany(ids);
    }
    if (!repair || this.repairer === undefined || !datas.includes(undefined)) return datas;
    // Only what is quarantined is fetched: an id that is simply not here is the caller's business.
    const quarantined = await this.quarantinedAmong(ids.filter((_, i) => datas[i] === undefined));
    if (quarantined.length === 0) return datas;
    await this.repairer.repairWithin(quarantined, READ_REPAIR_TIMEOUT_MS);
    return this.store.getMany(ids);
  }

  /** Those of `ids` in quarantine: found corrupt here, with no good copy stored since. */
  private async quarantinedAmong(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    if (ids.length === 0) return [];
    const quarantined = new Set((await this.store.listQuarantine({ unrepairedOnly: true })).map((record) => idToHex(record.id)));
    return quarantined.size === 0 ? [] : ids.filter((id) => quarantined.has(idToHex(id)));
  }

  // ---------- objects ----------

  /** The ids this node lacks. Present ones are marked as in use, so a running GC keeps them. */
  async missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    // One pass: touch marks the present ones as in use and says which they are.
    const present = await this.store.touch(ids, this.clock.nowMs());
    return ids.filter((_, i) => !present[i]);
  }

  /** Stores objects after verifying each id; durable when it resolves. */
  async putObjects(objects: readonly StoredObject[]): Promise<void> {
    await this.store.putMany(objects);
  }

  /** Lets go of the buffers kept for the next write (the node went quiet; idle-collect.ts). */
  releaseIdleMemory(): void {
    this.store.releaseBuffers?.();
  }

  /**
   * A client's upload: stored as putObjects does, then, once durable, what of it can be marked
   * complete from what is already here is marked (ingest-marks.ts), so the push's commit checks
   * little. The bytes must stay unchanged until it resolves.
   */
  async putUploaded(objects: readonly StoredObject[]): Promise<void> {
    await this.store.putMany(objects);
    await this.ingestMarks.markStored(objects);
  }

  /**
   * The verified bytes of each id, or undefined when absent (a corrupt one is quarantined, and
   * repaired from peers when it can be). `repair: false` for a peer's request: two nodes that
   * both lack an object must not ask each other for it in turn, each waiting on the other.
   */
  async getObjects(ids: readonly ObjectId[], options: { repair?: boolean } = {}): Promise<(Uint8Array | undefined)[]> {
    return this.readRepairing(ids, options.repair !== false);
  }

  /** A download batch: the objects held, the ids not held; refused past one request body's worth of bytes. */
  async download(ids: readonly ObjectId[], options: { repair?: boolean } = {}): Promise<{ objects: StoredObject[]; missing: ObjectId[]; corrupt: ObjectId[] }> {
    const datas = await this.readRepairing(ids, options.repair !== false);
    const objects: StoredObject[] = [];
    const missing: ObjectId[] = [];
    let totalBytes = 0;
    for (let i = 0; i < ids.length; i++) {
      const bytes = datas[i];
      if (!bytes) {
        missing.push(ids[i]!);
        continue;
      }
      totalBytes += bytes.length;
      if (totalBytes > LIMITS.requestBodyBytesMax) throw new UserError(`ask for at most ${LIMITS.requestBodyBytesMax} bytes per download`);
      objects.push({ id: ids[i]!, bytes });
    }
    // Of the missing, those found corrupt here (and not repaired yet): a reader is told why.
    return { objects, missing, corrupt: await this.quarantinedAmong(missing) };
  }

  // ---------- folders and versions ----------

  /** The folder named `name`, or undefined (getFolder is the 404 for a request). */
  async findFolder(name: string): Promise<FolderRecord | undefined> {
    return this.metadata.getFolder(name);
  }

  /** One page of folders by name (metadata-store.ts, listFoldersPage). */
  async listFoldersPage(limit: number, fromName?: string): Promise<FolderPage> {
    return this.metadata.listFoldersPage(limit, fromName);
  }

  async countFolders(): Promise<number> {
    return this.metadata.countFolders();
  }

  /** The version `id` of `folder` as this node recorded it, or undefined. */
  async getVersion(folder: string, id: ObjectId): Promise<VersionRecord | undefined> {
    return this.metadata.getVersion(folder, id);
  }

  /** Whether this node recorded version `id` in `folder`. */
  async hasVersion(folder: string, id: ObjectId): Promise<boolean> {
    return (await this.getVersion(folder, id)) !== undefined;
  }

  /** The root of a folder's head, or null for a folder without one. */
  async headRoot(folder: FolderRecord): Promise<ObjectId | null> {
    return folder.head ? ((await this.getVersion(folder.name, folder.head))?.root ?? null) : null;
  }

  /** Per folder: versions kept and their file bytes (metrics). */
  async versionTotals(): Promise<VersionTotals[]> {
    return this.metadata.versionTotals();
  }

  /** The conflict copies the merge `version` of `folder` made (conflict-copies.ts). */
  async conflictCopies(folder: string, version: ObjectId): Promise<string[]> {
    return conflictCopiesMadeBy(this.metadata, this.load, folder, version);
  }

  /** For each id: whether an earlier check found it complete (everything below it stored and valid). */
  async areComplete(ids: readonly ObjectId[]): Promise<boolean[]> {
    await this.marksDropped;
    return (await this.metadata.completeSummaries(ids)).map((summary) => summary !== undefined);
  }

  /** What the metadata store is and holds (backend, location, size, counts), for status and metrics. */
  async metadataStat(): Promise<MetadataStoreStat> {
    return this.metadata.stat();
  }

  /** Whether the metadata store answers now (a bounded one-row read, shared by callers within a second), for health and metrics. */
  metadataAvailability(): Promise<MetadataAvailability> {
    this.metadataProbe ??= new MetadataProbe(this.metadata);
    return this.metadataProbe.check();
  }

  private metadataProbe: MetadataProbe | undefined;

  /** For each id: whether the object store holds it (no read, no repair). */
  async hasObjects(ids: readonly ObjectId[]): Promise<boolean[]> {
    return this.store.hasMany(ids);
  }

  /** The object store's counts and bytes (status, metrics). */
  async objectStats(): Promise<Awaited<ReturnType<NodeStore["stats"]>>> {
    return this.store.stats();
  }

  async listFolders(): Promise<FolderRecord[]> {
    return this.metadata.listFolders();
  }

  async getFolder(name: string): Promise<FolderRecord> {
    const folder = await this.metadata.getFolder(name);
    if (!folder) throw new UserError(`no folder named ${JSON.stringify(name)}`, 404);
    return folder;
  }

  async listVersions(folder: string, limit?: number): Promise<VersionRecord[]> {
    await this.getFolder(folder);
    return this.metadata.listVersions(folder, limit);
  }

  /** One page of a folder's history, newest first (metadata.listVersionsPage); 404 for an unknown folder. */
  async listVersionsPage(folder: string, limit: number, beforeSequence?: number): Promise<VersionPage> {
    await this.getFolder(folder);
    return this.metadata.listVersionsPage(folder, limit, beforeSequence);
  }

  /** Finds a version of a folder by full or abbreviated (≥ 4 hex digits) id. */
  async resolveVersion(folder: string, idOrPrefix: string): Promise<VersionRecord> {
    await this.getFolder(folder);
    const text = idOrPrefix.toLowerCase();
    if (!/^[0-9a-f]{4,64}$/.test(text)) throw new UserError(`not a version id: ${JSON.stringify(idOrPrefix)}`);
    const matches = await this.metadata.findVersionsByPrefix(folder, text);
    if (matches.length === 0) throw new UserError(`folder ${folder} has no version ${idOrPrefix} (dsync log --folder ${folder} lists its versions)`, 404);
    if (matches.length > 1) throw new UserError(`version prefix ${idOrPrefix} is ambiguous in ${folder}: ${matches.length} versions start with it (give more digits)`);
    return matches[0]!;
  }

  /**
   * Sets a folder's retention; 404 for a folder that does not exist (only a commit or replication
   * creates one). A strong folder's goes through the cluster's log (on the leader: the caller
   * forwards otherwise), so every member keeps the same versions of it.
   */
  async setRetention(folder: string, retention: RetentionChange): Promise<FolderRecord> {
    const record = await this.getFolder(folder);
    if (record.mode === "strong") {
      if (!this.strongHeads) throw new Error(`folder ${folder} is strong, and this node runs without the cluster's log: its retention cannot change here`);
      const change: RetentionChange = {};
      if (retention.keepVersions !== undefined) change.keepVersions = retention.keepVersions;
      if (retention.keepDays !== undefined) change.keepDays = retention.keepDays;
      if ((await this.strongHeads.setRetention(folder, change)) === "unknown folder") throw new UserError(`folder ${folder} does not exist in the cluster's log`, 404);
      return this.getFolder(folder);
    }
    await this.metadata.setRetention(folder, retention, this.clock.nowMs());
    return this.getFolder(folder);
  }

  /** Calls `listener` after every change of a folder's head (push, restore, replication). */
  onHeadChanged(listener: HeadListener): () => void {
    return this.heads.add(listener);
  }

  /** The version vector of a version this node stores (empty for none). */
  async vectorOf(id: ObjectId | null): Promise<VersionVector> {
    if (id === null) return EMPTY_VECTOR;
    return (await this.decodeVersion(id)).versionVector;
  }

  /** The folder's version graph as this node holds it, for merges (decoded versions cached per call). */
  versionLookup(folder: string): VersionLookup {
    const cache = new Map<string, KnownVersion | undefined>();
    return async (id) => {
      const key = idToHex(id);
      if (cache.has(key)) return cache.get(key);
      const known = (await this.metadata.getVersion(folder, id)) ? { id, version: await this.decodeVersion(id) } : undefined;
      cache.set(key, known);
      return known;
    };
  }

  /**
   * Records a pushed tree as a new version and moves the folder's head to it. When the head
   * moved since the client's parent, the pushed tree is merged three ways with the head
   * against their common ancestor; the pushed side is the later writer and wins conflicts, and
   * the overwritten content stays reachable through the merge's first parent.
   *
   * Every write this node makes sits on top of its current head and carries the next counter
   * of this node in its version vector. A push with a stale parent is first recorded as it was
   * pushed, with an empty vector (it is history, never a head), and then merged onto the head by
   * a write that has both as parents.
   */
  async commit(request: CommitRequest): Promise<CommitResult> {
    const nameProblem = validateFolderName(request.folder);
    if (nameProblem) throw new UserError(nameProblem);
    await this.catchUpOnUnknown(request.folder);
    await this.refuseCaseVariant(request.folder, "eventual");
    let movedByLog = false;
    const result = await this.writeLock.run(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await commitPush(
            this.writeContextWith(() => (movedByLog = true)),
            request,
          );
        } catch (error) {
          // Under the write lock only the log can find the head moved (an entry this node had
          // not applied when it read the head): the push is merged again onto the head it has now.
          if (!(error instanceof HeadMovedError) || attempt >= STRONG_COMMIT_ATTEMPTS) throw error;
        }
      }
    });
    // A head the log moved was announced by the log's apply (headMovedByLog), on every member.
    if (!movedByLog) this.heads.changed(request.folder, result.version);
    await this.reportCommit(request, result);
    return result;
  }

  /**
   * Before a client's write makes a new folder: a name that differs from a strong folder's only
   * by case (`Ledger` beside `ledger`) is refused, 409 naming it, as is a new strong folder whose
   * name differs so from any folder. Written by mistake, such a push would land in an eventual
   * folder of its own while its writer believed it strong. Replication is not refused: a peer's
   * folders are taken as they are. The check reads every folder's name, once per new folder.
   */
  private async refuseCaseVariant(name: string, mode: ConsistencyMode): Promise<void> {
    if (await this.metadata.getFolder(name)) return;
    const folded = name.toLowerCase();
    for (const other of await this.metadata.listFolders()) {
      if (other.name === name || other.name.toLowerCase() !== folded) continue;
      if (other.mode !== "strong" && mode !== "strong") continue;
      throw new UserError(`folder ${name} differs only by case from the ${other.mode} folder ${other.name}: use that name, or one that differs by more than case`, 409);
    }
  }

  /**
   * Before a write names a folder this node does not hold: the log may have made it strong (a
   * creation committed, not applied here yet, as on a leader new in its term or a follower
   * behind), and committing it here as a new eventual folder would fork it. So this node first
   * applies what the log committed (bounded); on a minority side it goes on without.
   */
  private async catchUpOnUnknown(folder: string): Promise<void> {
    if (!this.strongHeads || (await this.metadata.getFolder(folder))) return;
    try {
      await this.strongHeads.caughtUp(UNKNOWN_FOLDER_CATCH_UP_MS);
    } catch {
      // No leader with a quorum within the wait: the folder is new as far as this node can know.
    }
  }

  /**
   * Creates a folder in `mode`: an eventual one here (replication takes it to the peers), a
   * strong one through the cluster's log (on the leader: the caller forwards otherwise).
   * `created` false: it existed already in that mode (nothing changed). One that exists in the
   * other mode is refused (FolderModeError, 409). Absent retention takes the node's defaults.
   */
  async createFolder(name: string, mode: ConsistencyMode, retention: RetentionChange = {}): Promise<{ folder: FolderRecord; created: boolean }> {
    const nameProblem = validateFolderName(name);
    if (nameProblem) throw new UserError(nameProblem);
    const keep = {
      keepVersions: retention.keepVersions !== undefined ? retention.keepVersions : (this.options.defaultKeepVersions ?? null),
      keepDays: retention.keepDays !== undefined ? retention.keepDays : (this.options.defaultKeepDays ?? null),
    };
    await this.catchUpOnUnknown(name);
    await this.refuseCaseVariant(name, mode);
    return this.writeLock.run(async () => {
      const existing = await this.metadata.getFolder(name);
      if (existing) {
        if (existing.mode !== mode) throw new FolderModeError(name, existing.mode);
        return { folder: existing, created: false };
      }
      if (mode === "eventual") return { folder: await this.metadata.ensureFolder(name, this.clock.nowMs(), { ...keep, mode }), created: true };
      if (!this.strongHeads) throw new Error("this node runs without the cluster's log: it cannot create a strong folder");
      const outcome = await this.strongHeads.createFolder(name, keep);
      const folder = await this.getFolder(name);
      // Applied here before the proposal resolved; an eventual folder of that name made meanwhile became strong in the apply.
      if (folder.mode !== "strong") throw new FolderModeError(name, folder.mode);
      return { folder, created: outcome === "created" };
    });
  }

  /**
   * A strong folder's head moved by the Raft log (src/consensus applied a command here, on a
   * follower as on the leader): the head listeners hear of it as of any other move.
   */
  headMovedByLog(folder: string, head: ObjectId): void {
    this.heads.changed(folder, head);
  }

  /**
   * The check a commit makes of a tree before a head may name it (closure.ts): everything below
   * `root` stored and structurally valid, marked complete as it goes. Throws IncompleteTreeError
   * or InvalidTreeError. A strong folder's follower runs it before it acknowledges a log entry.
   */
  async checkClosure(root: ObjectId): Promise<void> {
    await this.writeContext.checkClosure(root);
  }

  private async reportCommit(request: CommitRequest, result: CommitResult): Promise<void> {
    const record = await this.metadata.getVersion(request.folder, result.version);
    this.events.emit("commit", request.folder, {
      version: idToHex(result.version),
      parent: result.parent ? idToHex(result.parent) : null,
      mergedWith: result.mergedWith ? idToHex(result.mergedWith) : null,
      origin: request.origin ?? "push",
      author: this.nodeId,
      files: record?.files ?? request.files,
      bytes: record?.totalBytes ?? request.totalBytes,
      conflicts: result.conflicts.length,
    });
    this.reportConflicts(request.folder, result.version, result.conflicts);
  }

  /** One event per conflict of a merge that made `version` (a push onto a moved head, or replication). */
  reportConflicts(folder: string, version: ObjectId, conflicts: readonly MergeConflict[]): void {
    for (const conflict of conflicts.slice(0, 100)) {
      this.events.emit("conflict", folder, { version: idToHex(version), path: conflict.path, kind: conflict.kind, winner: conflict.winner, copies: [...conflict.extraPaths] });
    }
  }

  /**
   * Takes in versions a peer sent (their objects and every tree below them already stored and
   * verified by the caller) and moves the head by their version vectors: a peer head this
   * node's head already covers changes nothing but history; one that covers this node's head
   * is taken as it is; a concurrent one is merged deterministically (concurrent-merge.ts), so
   * every node that holds the same versions ends on the same head.
   */
  async integrateReplica(folderName: string, mode: ConsistencyMode, versions: readonly ReplicaVersion[], remoteHead: ObjectId): Promise<IntegrateResult> {
    const nameProblem = validateFolderName(folderName);
    if (nameProblem) throw new UserError(nameProblem);
    // Checked before anything is recorded: one such version refuses the whole answer.
    for (const item of versions) {
      const problem = replicaVersionNamesProblem(item.version);
      if (problem) throw new UserError(`version ${idToHex(item.id)} of ${folderName} from a peer is refused: ${problem}`, 422);
    }
    const result = await this.writeLock.run(async (): Promise<IntegrateResult> => {
      // A strong folder's head moves only through the log: an eventual replica of it changes nothing here.
      const local = await this.metadata.getFolder(folderName);
      if (local?.mode === "strong" && mode !== "strong") return { head: local.head ?? remoteHead, outcome: "unchanged", recorded: 0, conflicts: [] };
      try {
        return await integrateReplicaVersions(this.writeContext, folderName, mode, versions, remoteHead);
      } catch (error) {
        // Turned strong by the log while this replica was taken in: its head was not moved.
        if (!(error instanceof FolderModeChangedError)) throw error;
        const now = await this.metadata.getFolder(folderName);
        return { head: now?.head ?? remoteHead, outcome: "unchanged", recorded: 0, conflicts: [] };
      }
    });
    if (result.outcome !== "unchanged") this.heads.changed(folderName, result.head);
    return result;
  }

  /** Makes a new head whose content is that of an earlier version (history is kept). */
  async restore(folder: string, versionIdOrPrefix: string, message?: string): Promise<CommitResult> {
    const target = await this.resolveVersion(folder, versionIdOrPrefix);
    const head = (await this.getFolder(folder)).head;
    const version = await this.decodeVersion(target.id);
    return this.commit({
      folder,
      root: target.root,
      parent: head,
      message: message ?? `restore ${idToHex(target.id).slice(0, 12)}`,
      chunking: version.chunking,
      files: target.files,
      totalBytes: target.totalBytes,
      origin: "restore",
    });
  }

  async decodeVersion(id: ObjectId): Promise<Version> {
    const object: StructuredObject = await this.load(id);
    if (object.kind !== "version") throw new UserError(`object ${idToHex(id)} is not a version`);
    return object;
  }

  /** The nearest common ancestor of two versions of a folder (merge-base.ts). */
  async findMergeBase(folder: string, a: ObjectId, b: ObjectId): Promise<ObjectId | null> {
    return findMergeBase(this.metadata, folder, a, b);
  }

  // ---------- maintenance ----------

  /** Applies retention, then deletes what no kept version (and no push in flight) reaches. */
  async gc(options: GcOptions = {}): Promise<GcReport> {
    // One gc at a time; requests during one share the next (coalesce.ts).
    return this.gcRuns.run(JSON.stringify([options.graceMs ?? null, options.dryRun === true]), () => this.writeLock.run(() => this.ingestMarks.pauseWhile(() => collectGarbage(this, options))));
  }

  /**
   * Re-hashes every stored object, checks every head's closure, the structure of every kept
   * version's tree (`structure`: which folder, version and object, and the rule broken), and
   * the metadata database.
   */
  async verify(options: { repair?: boolean } = {}): Promise<VerifyReport> {
    // One verification at a time; requests during one share the next (coalesce.ts).
    return this.verifyRuns.run(options.repair === true ? "repair" : "check", () => verifyNode({ store: this.store, metadata: this.metadata, repairer: this.repairer, events: this.events }, options));
  }
}
