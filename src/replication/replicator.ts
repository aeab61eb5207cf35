// Eventual-mode replication: anti-entropy between a node and its peers.
//
// - When a folder's head changes here, every peer is told at once (a notice; losing one is
//   harmless). A peer that hears of a head it does not cover pulls it.
// - Every `intervalMs`, and once at start, each peer's folder list is compared with ours, and
//   any folder where the peer has writes we lack is pulled; a peer that lacks writes we have is
//   sent a notice. This repairs lost notices, partitions and restarts. A peer that cannot be
//   reached is tried again every UNREACHABLE_RETRY_MS until it answers.
// - A pull: ask the peer for the versions behind its head that our head's vector does not cover,
//   verify them, fetch their trees by Merkle descent (fetch-closure.ts), then let the node
//   integrate them (fast-forward or deterministic merge, DsyncNode.integrateReplica).
//
// Safety: nothing a peer says is ever applied as a deletion by itself. A listing only triggers
// pulls; a pull records versions whose every object is here and verified; the head then moves
// only to a version that covers ours, or to a merge of both. A peer that lists nothing, fails,
// or sends a partial tree changes nothing here.
//
// Pulls of one folder from one peer run one at a time; a notice arriving meanwhile makes the
// pull run once more after. Folders in a mode other than eventual are left to their own mode: a
// strong folder (here, or as the peer reports it) is never pulled, merged or announced here; its
// head moves only through the cluster's log (src/consensus), whose followers fetch its objects
// by the same Merkle descent (fetch-closure.ts), and DsyncNode.integrateReplica refuses to move it.
import { parentsFirst } from "../core/parents-first.ts";
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { decodeObject } from "../core/objects.ts";
import { compareVectors, EMPTY_VECTOR, writesMissing, type VersionVector } from "../core/version-vector.ts";
import type { DsyncNode, ReplicaVersion } from "../node/node.ts";
import { Mutex } from "../node/mutex.ts";
import { MetadataUnavailableError } from "../node/metadata-unavailable.ts";
import { fetchClosure } from "./fetch-closure.ts";
import { Prefetcher } from "./prefetch.ts";
import { RECENT_UPLOAD_AGE_MS, RecentUploads } from "./recent-uploads.ts";
import { StoredNoticeSender } from "./stored-notices.ts";
import type { StoredObject } from "../store/object-store.ts";
import type { HeadNotice, PeerFolder, PeerTransport, StoredNotice, Timers } from "./transport.ts";

/** How soon an unreachable peer is tried again (at most the round interval). */
export const UNREACHABLE_RETRY_MS = 200;
/**
 * A pull waits for what is being fetched ahead from its peer (prefetch.ts) before its descent,
 * so it does not download the same objects again: until nothing is left, or no batch ended for
 * PREFETCH_STALL_MS, and never longer than PREFETCH_WAIT_MS.
 */
export const PREFETCH_STALL_MS = 2000;
export const PREFETCH_WAIT_MS = 30_000;

export interface ReplicatorOptions {
  node: DsyncNode;
  /** Peer addresses, as the transport understands them (URLs over HTTP). */
  peers: readonly string[];
  transport: PeerTransport;
  timers: Timers;
  /** Period of the full comparison with each peer. */
  intervalMs: number;
  log?: (line: string) => void;
  /** Called when a peer answers that had not (first contact, or back after a failure): repair asks it at once. */
  onPeerBack?: (address: string) => void;
  /** Whether pushes stream to the peers (stored-objects notices and fetching ahead); default true. */
  streaming?: boolean;
}

export interface PeerState {
  address: string;
  /** The peer's node id, once it has answered. */
  node: string | null;
  reachable: boolean | null;
  lastContactMs: number | null;
  lastError: string | null;
  /** The folder whose pull failed with lastError; null for a failure of the peer as a whole (it may name no folder to a token that cannot see that one). */
  lastErrorFolder: string | null;
  /**
   * The peer's folders as last heard (listing or notice). `heardMs`: when this node first heard
   * of a head of that folder it did not hold, kept while it still lacks one (the start of the lag).
   */
  folders: Map<string, PeerFolderHeard>;
  /** What pulls from this peer brought (tree and file objects and chunks, as received). */
  objectsFetched: number;
  bytesFetched: number;
}

export interface PeerFolderHeard {
  head: ObjectId | null;
  vector: VersionVector;
  mode: string;
  heardMs: number;
  /** Which word of the peer this is (a listing's or a notice's ticket, ever growing): a later word wins over an earlier one. */
  word: number;
}

export interface PeerFolderStatus {
  peer: string;
  node: string | null;
  head: string | null;
  /** in-sync: same head; behind: the peer has writes we lack; ahead: we have writes it lacks. */
  state: "in-sync" | "behind" | "ahead" | "diverged" | "unknown";
  /** Writes the peer has that this node lacks, and the other way round. */
  behindWrites: number;
  aheadWrites: number;
  /** How long this node has lacked writes the peer has: 0 when it lacks none. */
  lagMs: number;
}

export interface SyncStats {
  /** Pulls that fetched from a peer (started), those that ended with the peer's head integrated, and failed ones. */
  pulls: number;
  pullsCompleted: number;
  pullFailures: number;
  versionsReceived: number;
  objectsFetched: number;
  bytesFetched: number;
  merges: number;
  /** Heads moved to a peer's version as it was, and conflicts kept by replication merges. */
  fastForwards: number;
  conflicts: number;
  noticesSent: number;
  noticesReceived: number;
  /** Stored-objects notices sent to peers and received from them (streamed replication). */
  storedNoticesSent: number;
  storedNoticesReceived: number;
  /** Objects (and their bytes) fetched ahead of a head on a peer's stored-objects notice. */
  objectsFetchedAhead: number;
  bytesFetchedAhead: number;
}

interface PullTask {
  running: boolean;
  again: boolean;
}

export class Replicator {
  private readonly peers = new Map<string, PeerState>();
  private readonly tasks = new Map<string, PullTask>();
  private timer: unknown = null;
  private stopped = true;
  private unsubscribe: (() => void) | null = null;
  private readonly comparing = new Set<string>();
  private readonly folderLocks = new Map<string, Mutex>();
  private readonly retryTimers = new Map<string, unknown>();
  /** Per peer and folder, the latest word heard of it (hear): an older one that resolves later does not overwrite it. */
  private readonly hearings = new Map<string, number>();
  private hearingsGiven = 0;
  /**
   * Why replication last stopped short because this node's own metadata store did not answer
   * (its database server away), null once a comparison or pull got through again. Such a
   * failure is never counted against the peer: the peer stays reachable.
   */
  localMetadataError: string | null = null;
  readonly stats: SyncStats = {
    pulls: 0,
    pullsCompleted: 0,
    pullFailures: 0,
    versionsReceived: 0,
    objectsFetched: 0,
    bytesFetched: 0,
    merges: 0,
    fastForwards: 0,
    conflicts: 0,
    noticesSent: 0,
    noticesReceived: 0,
    storedNoticesSent: 0,
    storedNoticesReceived: 0,
    objectsFetchedAhead: 0,
    bytesFetchedAhead: 0,
  };
  /** Streamed replication, made at start (null while stopped, or without streaming). */
  private storedNotices: StoredNoticeSender | null = null;
  private prefetcher: Prefetcher | null = null;
  /** The last upload groups, for the peers told of them to fetch without a read of the store (the peer service answers from it). */
  readonly recentUploads: RecentUploads;
  private recentSweep: unknown = null;

  constructor(private readonly options: ReplicatorOptions) {
    this.recentUploads = new RecentUploads(() => this.node.clock.nowMs());
    for (const address of options.peers) {
      this.peers.set(address, { address, node: null, reachable: null, lastContactMs: null, lastError: null, lastErrorFolder: null, folders: new Map(), objectsFetched: 0, bytesFetched: 0 });
    }
  }

  private get node(): DsyncNode {
    return this.options.node;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.node.onHeadChanged((folder, head) => void this.announce(folder, head));
    if (this.options.streaming !== false) this.startStreaming();
    this.schedule(0);
  }

  private startStreaming(): void {
    const transport = this.options.transport;
    const notifyStored = transport.notifyStored?.bind(transport);
    if (notifyStored) {
      this.storedNotices = new StoredNoticeSender({
        nodeId: this.node.nodeId,
        // Not a peer known unreachable: it would only fail; its round brings it up to date.
        peers: () => [...this.peers.values()].filter((peer) => peer.reachable !== false).map((peer) => peer.address),
        send: async (peer, notice) => {
          await notifyStored(peer, notice);
          this.stats.storedNoticesSent++;
        },
        folderStreams: async (folder) => ((await this.node.findFolder(folder))?.mode ?? "eventual") === "eventual",
        nowMs: () => this.node.clock.nowMs(),
      });
    }
    this.prefetcher = new Prefetcher({
      node: this.node,
      transport,
      timers: this.options.timers,
      log: this.options.log,
      onFetched: (objects, bytes) => {
        this.stats.objectsFetchedAhead += objects;
        this.stats.bytesFetchedAhead += bytes;
      },
    });
  }

  /**
   * A client's upload group is durable here: the peers are told which objects it stored, so
   * they fetch them while the push goes on (stored-notices.ts). Returns at once; `folder` is what
   * the upload said it serves (none: nothing is told, the peers fetch at the head).
   */
  objectsStored(folder: string | null, objects: readonly StoredObject[]): void {
    if (this.stopped || folder === null || !this.storedNotices || this.peers.size === 0) return;
    this.recentUploads.add(objects);
    this.sweepRecentLater();
    this.storedNotices.stored(
      folder,
      // Copied: an upload's buffers may be reused once its group is stored.
      objects.map((object) => ({ id: new Uint8Array(object.id) as ObjectId, lengthBytes: object.bytes.length })),
    );
  }

  /** What no peer asked for within its age is let go, also when no upload follows. */
  private sweepRecentLater(): void {
    if (this.recentSweep !== null || this.recentUploads.size === 0) return;
    this.recentSweep = this.options.timers.setTimeout(() => {
      this.recentSweep = null;
      this.recentUploads.expire();
      if (!this.stopped) this.sweepRecentLater();
    }, RECENT_UPLOAD_AGE_MS + 100);
  }

  /**
   * A peer's stored-objects notice: fetched ahead from that peer (prefetch.ts), if it is one of
   * this node's peers and the folder is replicated in eventual mode here. Never throws.
   */
  onStoredNotice(notice: StoredNotice): void {
    if (this.stopped || !this.prefetcher) return;
    this.stats.storedNoticesReceived++;
    // Only from a configured peer that answered as that node: a notice cannot send this node to fetch elsewhere.
    const peer = [...this.peers.values()].find((p) => p.node === notice.from);
    if (!peer || peer.folders.get(notice.folder)?.mode === "strong") return;
    const prefetcher = this.prefetcher;
    prefetcher.take(peer.address, notice).catch((error: unknown) => {
      if (!this.localMetadataUnavailable(error)) this.options.log?.(`dsync: a stored-objects notice from ${peer.address} for ${notice.folder} failed: ${(error as Error).message}`);
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.storedNotices?.stop();
    this.storedNotices = null;
    this.prefetcher?.stop();
    this.prefetcher = null;
    if (this.recentSweep !== null) this.options.timers.clearTimeout(this.recentSweep);
    this.recentSweep = null;
    this.recentUploads.clear();
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
    for (const handle of this.retryTimers.values()) this.options.timers.clearTimeout(handle);
    this.retryTimers.clear();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      void this.round().finally(() => this.schedule(this.options.intervalMs));
    }, delayMs);
  }

  /**
   * Compares every folder with every peer and pulls where a peer is ahead. Each peer is compared
   * on its own, so a slow or hanging peer delays only its own next comparison.
   */
  async round(): Promise<void> {
    if (this.stopped) return;
    await Promise.all([...this.peers.values()].map((peer) => this.compareWith(peer)));
  }

  private async compareWith(peer: PeerState): Promise<void> {
    if (this.comparing.has(peer.address)) return;
    this.comparing.add(peer.address);
    try {
      await this.compareOnce(peer);
    } catch (error) {
      // What failed here is this node's own (the peer's failures are marked in compareOnce):
      // logged, and the next round tries again.
      if (!this.localMetadataUnavailable(error)) this.options.log?.(`dsync: comparing with ${peer.address} failed: ${(error as Error)?.message ?? String(error)}`);
    } finally {
      this.comparing.delete(peer.address);
    }
    // A peer that could not be reached is tried again soon rather than at the next round, so
    // the end of a partition or a restart is noticed within the retry delay.
    if (peer.reachable === false && !this.stopped && !this.retryTimers.has(peer.address)) {
      const delayMs = Math.min(this.options.intervalMs, UNREACHABLE_RETRY_MS);
      this.retryTimers.set(
        peer.address,
        this.options.timers.setTimeout(() => {
          this.retryTimers.delete(peer.address);
          void this.compareWith(peer);
        }, delayMs),
      );
    }
  }

  private async compareOnce(peer: PeerState): Promise<void> {
    // The listing's word is as old as the moment it was asked: a notice heard while it travels
    // or while its lookups run below is newer, and wins over it, folder by folder.
    const word = ++this.hearingsGiven;
    let listing;
    try {
      listing = await this.listAllFolders(peer);
    } catch (error) {
      this.markFailure(peer, error);
      return;
    }
    if (this.stopped) return;
    if (listing.node === this.node.nodeId) {
      this.markFailure(peer, new Error("this address is this node itself; ignoring it"));
      return;
    }
    this.markContact(peer, listing.node);
    // A listing replaces what we knew of the peer's folders, but a folder missing from it is
    // only forgotten in the status, never taken as a deletion. Its answer and its lookups (one
    // per folder) take a while; a notice or a pull's listing heard meanwhile is newer than this
    // listing and wins over it: the listing's word is taken only where its ticket still stands.
    for (const f of listing.folders) {
      const key = hearingKey(peer, f.name);
      if ((this.hearings.get(key) ?? 0) < word && (peer.folders.get(f.name)?.word ?? 0) < word) this.hearings.set(key, word);
    }
    const heard = new Map<string, PeerFolderHeard>();
    try {
      for (const f of listing.folders) heard.set(f.name, await this.heard(peer, f.name, f.head, f.vector, f.mode, word));
    } catch (error) {
      for (const f of listing.folders) if (this.hearings.get(hearingKey(peer, f.name)) === word) this.hearings.delete(hearingKey(peer, f.name));
      throw error;
    }
    const next = new Map<string, PeerFolderHeard>();
    for (const [name, said] of peer.folders) if (said.word > word) next.set(name, said);
    for (const [name, said] of heard) {
      const key = hearingKey(peer, name);
      if (this.hearings.get(key) === word) {
        this.hearings.delete(key);
        next.set(name, said);
      } else if (!next.has(name)) {
        // A later word is still being looked up: keep what was known until it lands.
        const known = peer.folders.get(name);
        if (known) next.set(name, known);
      }
    }
    peer.folders = next;
    this.nudgeIfBehind(peer);
    await Promise.all(listing.folders.map((folder) => this.consider(peer, folder)));
    this.localMetadataError = null;
  }

  /**
   * Every folder of the peer, one page of its listing at a time (each answer bounded by the
   * peer). A page that does not start after the one before would have this go round forever:
   * that is the peer's error.
   */
  private async listAllFolders(peer: PeerState): Promise<{ node: string; folders: PeerFolder[] }> {
    let listing = await this.options.transport.listFolders(peer.address);
    const folders = [...listing.folders];
    while (listing.next != null && !this.stopped) {
      const from: string = listing.next;
      const last = folders.at(-1)?.name;
      if (last !== undefined && from <= last) throw new Error(`${peer.address} sent a folder listing whose next page does not move on (${JSON.stringify(from.slice(0, 64))})`);
      listing = await this.options.transport.listFolders(peer.address, { from });
      folders.push(...listing.folders);
    }
    return { node: listing.node, folders };
  }

  /**
   * Sends a notice for every folder where the peer lacks writes this node has: the peer pulls at
   * once instead of waiting for its own round (after a partition heals, whichever side compares
   * first ends the wait).
   */
  private nudgeIfBehind(peer: PeerState): void {
    void (async () => {
      let folders;
      try {
        folders = await this.node.listFolders();
      } catch (error) {
        if (!this.localMetadataUnavailable(error)) this.options.log?.(`dsync: listing folders to notify ${peer.address} failed: ${(error as Error)?.message ?? String(error)}`);
        return;
      }
      for (const folder of folders) {
        if (folder.mode !== "eventual" || folder.head === null) continue;
        const theirs = peer.folders.get(folder.name);
        if (theirs && theirs.mode !== "eventual") continue;
        if (theirs?.head && idEquals(theirs.head, folder.head)) continue;
        try {
          // The heads were listed before the notices ahead of this one went out: this one may
          // have moved on since, and its version been pruned and collected.
          const vector = await this.node.vectorOf(folder.head);
          const order = theirs ? compareVectors(vector, theirs.vector) : "after";
          if (order !== "after" && order !== "concurrent") continue;
          await this.sendNotice(peer, folder.name, folder.head, vector);
        } catch {
          // That head moved on and was collected meanwhile; the peer's own round will find it.
        }
      }
    })();
  }

  /** Starts a pull when the peer's head has writes ours lacks. */
  private async consider(peer: PeerState, folder: PeerFolder): Promise<void> {
    if (folder.head === null || folder.mode !== "eventual") return;
    const local = await this.node.findFolder(folder.name);
    if (local && local.mode !== "eventual") return;
    if (local?.head && idEquals(local.head, folder.head)) return;
    let localVector: VersionVector;
    try {
      localVector = local?.head ? await this.node.vectorOf(local.head) : EMPTY_VECTOR;
    } catch {
      // The head read a moment ago moved on and was collected; the next notice or round decides.
      return;
    }
    const order = compareVectors(folder.vector, localVector);
    // "equal" with a different id is settled by integrateReplica (the greater id wins).
    if (order === "before") return;
    await this.pull(peer, folder.name);
  }

  /** A peer's notice: pull from it if its head is news. */
  onNotice(notice: HeadNotice): void {
    if (this.stopped) return;
    this.stats.noticesReceived++;
    const peer = [...this.peers.values()].find((p) => p.node === notice.from);
    if (!peer) {
      // A node we have not heard from yet (or one not in our list): a full round finds it.
      void this.round();
      return;
    }
    const known = peer.folders.get(notice.folder);
    void (async () => {
      await this.hear(peer, notice.folder, notice.head, notice.vector, known?.mode ?? "eventual");
      await this.consider(peer, { name: notice.folder, head: notice.head, vector: notice.vector, mode: (known?.mode as "eventual") ?? "eventual" });
    })().catch((error: unknown) => {
      if (!this.localMetadataUnavailable(error)) this.options.log?.(`dsync: a notice from ${peer.address} for ${notice.folder} failed: ${(error as Error).message}`);
    });
  }

  /** Pulls one folder from one peer, once more if asked again while running. */
  async pull(peer: PeerState, folder: string): Promise<void> {
    const key = `${peer.address}\u0000${folder}`;
    let task = this.tasks.get(key);
    if (!task) this.tasks.set(key, (task = { running: false, again: false }));
    if (task.running) {
      task.again = true;
      return;
    }
    task.running = true;
    try {
      do {
        task.again = false;
        if (this.stopped) return;
        try {
          // One pull per folder at a time, whatever the peer: a pull queued behind another
          // re-checks the peer's head first and usually finds nothing left to fetch.
          const lock = this.folderLock(folder);
          try {
            await lock.run(() => this.pullOnce(peer, folder));
          } finally {
            // Locks and tasks are kept only while in use: notices naming ever new folders (a
            // hostile peer's) must not grow these maps without end.
            if (lock.idle) this.folderLocks.delete(folder);
          }
        } catch (error) {
          // A pull cut short by shutdown (the store closing under it) is not a failure to report.
          if (this.stopped) return;
          this.stats.pullFailures++;
          // This node's own database away is not the peer's failure: the peer stays reachable,
          // and the next notice or round pulls again.
          if (this.localMetadataUnavailable(error)) return;
          this.markFailure(peer, error, folder);
          this.options.log?.(`dsync: pulling ${folder} from ${peer.address} failed: ${(error as Error).message}`);
          return;
        }
      } while (task.again);
    } finally {
      task.running = false;
      this.tasks.delete(key);
    }
  }

  private async pullOnce(peer: PeerState, folderName: string): Promise<void> {
    const transport = this.options.transport;
    // Ask the peer for its current head rather than trusting a notice that may be stale.
    const local = await this.node.findFolder(folderName);
    const known = local?.head ? await this.node.vectorOf(local.head) : EMPTY_VECTOR;
    // The page that starts at this folder's name: one folder to read, however many the peer has.
    const asked = ++this.hearingsGiven;
    const listing = await transport.listFolders(peer.address, { from: folderName, limit: 1 });
    if (this.stopped) return;
    this.markContact(peer, listing.node);
    const remote = listing.folders.find((f) => f.name === folderName);
    if (!remote || remote.head === null || remote.mode !== "eventual") return;
    await this.hear(peer, folderName, remote.head, remote.vector, remote.mode, asked);
    if (local?.head && idEquals(local.head, remote.head)) return;
    if (compareVectors(remote.vector, known) === "before") return;
    this.stats.pulls++;

    let versions: (ReplicaVersion & { bytes: Uint8Array })[] = [];
    if (!(await this.node.hasVersion(folderName, remote.head))) {
      const received = await this.history(peer, folderName, remote.head, known);
      if (received === undefined) return;
      // Sorted by id first, so every node records the same versions in the same order.
      versions = parentsFirst([...received].sort((a, b) => Buffer.compare(a.id, b.id)));
      if (!versions.some((v) => idEquals(v.id, remote.head!))) throw new Error(`${peer.address} did not send its head ${idToHex(remote.head)}`);
      const roots: ObjectId[] = [];
      for (const v of versions) if (!(await this.node.hasVersion(folderName, v.id))) roots.push(v.version.root);
      // The version objects themselves are stored too: peers and restores read them by id.
      await this.node.putObjects(versions.map((v) => ({ id: v.id, bytes: v.bytes })));
      // What is on its way from this peer ahead of the head lands first: the descent then finds it here.
      if (this.prefetcher?.busy(peer.address)) await this.prefetcher.settled(peer.address, PREFETCH_STALL_MS, PREFETCH_WAIT_MS);
      if (this.stopped) return;
      const fetched = await fetchClosure(this.node, transport, peer.address, roots);
      if (this.stopped) return;
      this.stats.objectsFetched += fetched.objectsFetched;
      this.stats.bytesFetched += fetched.bytesFetched;
      peer.objectsFetched += fetched.objectsFetched;
      peer.bytesFetched += fetched.bytesFetched;
      this.node.events.emit("fetch", folderName, { peer: peer.address, peerNode: peer.node, versions: versions.length, objects: fetched.objectsFetched, bytes: fetched.bytesFetched });
    }
    const result = await this.node.integrateReplica(folderName, "eventual", versions, remote.head);
    this.stats.versionsReceived += result.recorded;
    if (result.outcome === "merged") this.stats.merges++;
    if (result.outcome === "fast-forward") this.stats.fastForwards++;
    this.stats.conflicts += result.conflicts.length;
    this.stats.pullsCompleted++;
    this.localMetadataError = null;
    if (result.outcome !== "unchanged") {
      const record = await this.node.getVersion(folderName, result.head);
      this.node.events.emit("merge", folderName, {
        peer: peer.address,
        peerNode: peer.node,
        outcome: result.outcome,
        version: idToHex(result.head),
        author: record?.author ?? null,
        files: record?.files ?? null,
        bytes: record?.totalBytes ?? null,
        conflicts: result.conflicts.length,
      });
      this.node.reportConflicts(folderName, result.head, result.conflicts);
    }
  }

  /**
   * Every version behind the peer's `head` that this node lacks, asked for page by page (each
   * answer bounded by the peer, peer-service.ts): each page resumes where the last one stopped,
   * less what was already received or is recorded here, until the peer's walk ends. Each
   * version object is decoded and keyed by its hash. Undefined when the replicator stopped.
   */
  private async history(peer: PeerState, folder: string, head: ObjectId, known: VersionVector): Promise<(ReplicaVersion & { bytes: Uint8Array })[] | undefined> {
    const received = new Map<string, ReplicaVersion & { bytes: Uint8Array }>();
    // Where the peer's walk stopped, still to ask about: a request names at most
    // LIMITS.historyResumeIdsMax of them, the rest wait for the next requests.
    let pending: ObjectId[] = [];
    let resumeFrom: ObjectId[] | undefined;
    for (;;) {
      const page = await this.options.transport.history(peer.address, { folder, head, known, resumeFrom });
      if (this.stopped) return undefined;
      const before = received.size;
      for (const item of page.versions) {
        const id = blake3(item.bytes);
        const key = idToHex(id);
        if (received.has(key)) continue;
        const object = decodeObject(item.bytes);
        if (object.kind !== "version") throw new Error(`${peer.address} sent a ${object.kind} object as history`);
        received.set(key, { id, version: object, files: item.files, totalBytes: item.totalBytes, bytes: item.bytes });
      }
      // Every id resumed from is one this node lacks, so a page either brings something new or
      // ends its part of the walk (an empty `more`): the paging cannot go round in circles.
      if (received.size === before && page.more.length > 0) throw new Error(`${peer.address} sent a history page with nothing new that asks to go on`);
      const lacking = new Set<string>();
      const candidates = [...pending, ...page.more];
      pending = [];
      for (const id of candidates) {
        const key = idToHex(id);
        if (lacking.has(key) || received.has(key) || (await this.node.hasVersion(folder, id))) continue;
        lacking.add(key);
        pending.push(id);
      }
      if (pending.length === 0) return [...received.values()];
      resumeFrom = pending.slice(0, LIMITS.historyResumeIdsMax);
      pending = pending.slice(LIMITS.historyResumeIdsMax);
    }
  }

  /**
   * What the peer said of a folder, with the time the lag starts: kept from what was heard
   * before while this node still lacks the head heard then (the peer moving on again does not
   * restart the count), else now.
   */
  private async heard(peer: PeerState, folder: string, head: ObjectId | null, vector: VersionVector, mode: string, word: number): Promise<PeerFolderHeard> {
    const before = peer.folders.get(folder);
    const stillLacking = before?.head != null && (head !== null && idEquals(before.head, head) ? true : !(await this.node.hasVersion(folder, before.head)));
    return { head, vector, mode, heardMs: stillLacking ? before!.heardMs : this.node.clock.nowMs(), word };
  }

  /** Keeps what the peer said of one folder, unless a later word of it was heard while this one was looked up. */
  private async hear(peer: PeerState, folder: string, head: ObjectId | null, vector: VersionVector, mode: string, asked = ++this.hearingsGiven): Promise<void> {
    const key = hearingKey(peer, folder);
    const ticket = asked;
    // A later word already heard or being looked up wins over this one.
    if ((this.hearings.get(key) ?? 0) > ticket || (peer.folders.get(folder)?.word ?? 0) > ticket) return;
    this.hearings.set(key, ticket);
    let heard: PeerFolderHeard;
    try {
      heard = await this.heard(peer, folder, head, vector, mode, ticket);
    } catch (error) {
      if (this.hearings.get(key) === ticket) this.hearings.delete(key);
      throw error;
    }
    if (this.hearings.get(key) !== ticket) return;
    this.hearings.delete(key);
    // A later word that already landed (a listing taken after this one began) is not undone.
    if ((peer.folders.get(folder)?.word ?? 0) > ticket) return;
    peer.folders.set(folder, heard);
  }

  /**
   * Whether `error` is this node's own metadata store not answering; if so it is noted as the
   * cause (localMetadataError), logged once per outage, and never counted against a peer.
   */
  private localMetadataUnavailable(error: unknown): boolean {
    if (!(error instanceof MetadataUnavailableError)) return false;
    if (this.localMetadataError === null) this.options.log?.(`dsync: replication paused: this node's ${error.message} (peers are not blamed; it resumes once the store answers)`);
    this.localMetadataError = error.message;
    return true;
  }

  private folderLock(folder: string): Mutex {
    let lock = this.folderLocks.get(folder);
    if (!lock) this.folderLocks.set(folder, (lock = new Mutex()));
    return lock;
  }

  /** Tells every peer that a folder's head changed here. Failures are left to anti-entropy. */
  private async announce(folder: string, head: ObjectId): Promise<void> {
    if (this.stopped) return;
    let vector: VersionVector;
    try {
      // A strong folder's head reaches every member through the log, which every member applies:
      // a notice would make each peer look at a folder it must leave to the log anyway.
      if ((await this.node.findFolder(folder))?.mode === "strong") return;
      vector = await this.node.vectorOf(head);
    } catch {
      return; // that head has already moved on and been collected; a later change announces
    }
    await Promise.all([...this.peers.values()].map((peer) => this.sendNotice(peer, folder, head, vector)));
  }

  /** One notice to one peer; a lost one is repaired by the next round, so failures are dropped. */
  private async sendNotice(peer: PeerState, folder: string, head: ObjectId, vector: VersionVector): Promise<void> {
    this.stats.noticesSent++;
    try {
      await this.options.transport.notify(peer.address, { from: this.node.nodeId, folder, head, vector });
    } catch {
      // The next round repairs a lost notice.
    }
  }

  private markContact(peer: PeerState, nodeId: string): void {
    const wasReachable = peer.reachable === true;
    if (peer.reachable !== true) this.node.events.emit("peer", null, { peer: peer.address, peerNode: nodeId, reachable: true, error: null });
    peer.node = nodeId;
    peer.reachable = true;
    peer.lastContactMs = this.node.clock.nowMs();
    peer.lastError = null;
    peer.lastErrorFolder = null;
    if (!wasReachable) this.options.onPeerBack?.(peer.address);
  }

  private markFailure(peer: PeerState, error: unknown, folder: string | null = null): void {
    const wasReachable = peer.reachable;
    peer.reachable = false;
    peer.lastError = (error as Error)?.message ?? String(error);
    peer.lastErrorFolder = folder;
    if (wasReachable !== false) this.node.events.emit("peer", null, { peer: peer.address, peerNode: peer.node, reachable: false, error: peer.lastError });
  }

  peerStates(): PeerState[] {
    return [...this.peers.values()];
  }

  /** How each folder stands against each peer, from what the peers last said. */
  async folderStatus(folder: string): Promise<PeerFolderStatus[]> {
    const local = await this.node.findFolder(folder);
    const localVector = local?.head ? await this.node.vectorOf(local.head) : EMPTY_VECTOR;
    return [...this.peers.values()].map((peer) => {
      const theirs = peer.folders.get(folder);
      if (!theirs) return { peer: peer.address, node: peer.node, head: null, state: "unknown", behindWrites: 0, aheadWrites: 0, lagMs: 0 };
      const behindWrites = writesMissing(localVector, theirs.vector);
      const aheadWrites = writesMissing(theirs.vector, localVector);
      const sameHead = theirs.head !== null && local?.head != null && idEquals(theirs.head, local.head);
      const state: PeerFolderStatus["state"] = sameHead
        ? "in-sync"
        : behindWrites > 0 && aheadWrites > 0
          ? "diverged"
          : behindWrites > 0
            ? "behind"
            : aheadWrites > 0
              ? "ahead"
              : "diverged";
      const lagMs = behindWrites > 0 ? Math.max(0, this.node.clock.nowMs() - theirs.heardMs) : 0;
      return { peer: peer.address, node: peer.node, head: theirs.head ? idToHex(theirs.head) : null, state, behindWrites, aheadWrites, lagMs };
    });
  }
}

/** The key of what is heard of one folder of one peer. */
function hearingKey(peer: PeerState, folder: string): string {
  return `${peer.address}\u0000${folder}`;
}

