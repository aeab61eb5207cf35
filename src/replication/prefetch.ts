// The receiving side of streamed replication: objects a peer says it stored of a push still
// arriving (stored-notices.ts) are fetched from that peer into this node's store ahead of the
// head, so that when the head notice comes, the pull's Merkle descent (fetch-closure.ts) finds
// almost everything here and the head moves shortly after the push commits.
//
// Nothing is recorded from a notice: objects fetched ahead are stored like any upload (each
// verified against its id by the store, then marked complete where its children already are,
// src/node/ingest-marks.ts, the same check a commit makes) and belong to no version until a pull
// integrates a head that reaches them, with the check it always makes. Objects fetched ahead of
// a push that never commits are unreferenced, and collected by gc once its grace period has
// passed since they were stored, like a push's own uploads (docs/consistency.md).
//
// Bounded against a slow or hostile peer: a notice names at most LIMITS.storedNoticeObjectsMax
// objects (the route refuses more), at most QUEUED_OBJECTS_MAX wait per peer (the rest of a
// notice is dropped), at most CONCURRENT_FETCHES requests run per peer, each of at most
// FETCH_BYTES_MAX bytes by the sizes the peer gave (and the download reply's own bound). An id
// the peer does not have is skipped; an object that does not hash to its id fails its batch,
// which is dropped: the pull at the head fetches and verifies whatever is still lacking.
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { DsyncNode } from "../node/node.ts";
import type { PeerTransport, StoredNotice, Timers } from "./transport.ts";

/** Objects waiting to be fetched from one peer. */
export const QUEUED_OBJECTS_MAX = 32_768;
/** Download requests in flight to one peer. */
export const CONCURRENT_FETCHES = 2;
/** Bytes asked for in one request, by the sizes the notice gave (well under the 64 MiB reply bound). */
export const FETCH_BYTES_MAX = 8 * 1024 * 1024;
/** Objects asked for in one request. */
export const FETCH_OBJECTS_MAX = 4096;
/**
 * Replies are asked for plain while the link carries them faster than this (the peer's zstd at
 * level 3 runs at roughly this speed on one core, so on a faster link compressing only adds CPU
 * on both sides: loopback, a LAN), compressed below it. Measured on plain replies; while
 * compressing, every PLAIN_PROBE_EVERY-th request goes plain to measure again.
 */
export const COMPRESS_BELOW_BYTES_PER_SECOND = 32 * 1024 * 1024;
export const PLAIN_PROBE_EVERY = 8;

interface Wanted {
  id: ObjectId;
  key: string;
  lengthBytes: number;
}

interface PeerFetches {
  queue: Wanted[];
  /** Hex ids queued or being fetched, so a repeated notice does not fetch twice. */
  keys: Set<string>;
  inFlight: number;
  /** Called when a batch ends (settled() waits on it). */
  waiters: Set<() => void>;
}

/** What plain replies from one peer showed of its link (kept while the peer is this node's). */
interface LinkRate {
  /** Bytes per second of plain replies, smoothed; null before the first. */
  plainBytesPerSecond: number | null;
  requests: number;
}

export interface PrefetchStats {
  noticesReceived: number;
  objectsQueued: number;
  /** Noticed objects not queued: the queue was full, or the folder is not replicated in eventual mode here. */
  objectsDropped: number;
  objectsFetched: number;
  bytesFetched: number;
  /** Already here when their turn came. */
  objectsPresent: number;
  /** Noticed by a peer that then did not have them. */
  objectsMissing: number;
  batchFailures: number;
}

export interface PrefetcherOptions {
  node: DsyncNode;
  transport: PeerTransport;
  timers: Timers;
  log?: (line: string) => void;
  /** Told of every batch stored (the replicator's own counters). */
  onFetched?: (objects: number, bytes: number) => void;
  queuedObjectsMax?: number;
}

export class Prefetcher {
  private readonly peers = new Map<string, PeerFetches>();
  private readonly links = new Map<string, LinkRate>();
  private stopped = false;
  private failureLogged = false;
  readonly stats: PrefetchStats = { noticesReceived: 0, objectsQueued: 0, objectsDropped: 0, objectsFetched: 0, bytesFetched: 0, objectsPresent: 0, objectsMissing: 0, batchFailures: 0 };

  constructor(private readonly options: PrefetcherOptions) {}

  /**
   * A notice from the peer at `address` (the caller matched its sender to a configured peer).
   * Queues what fits and starts fetching; returns once the folder's mode was looked up.
   */
  async take(address: string, notice: StoredNotice): Promise<void> {
    if (this.stopped) return;
    this.stats.noticesReceived++;
    // A folder this node keeps in strong mode gets its objects through the log's own fetch.
    const local = await this.options.node.findFolder(notice.folder);
    if (local && local.mode !== "eventual") {
      this.stats.objectsDropped += notice.objects.length;
      return;
    }
    let fetches = this.peers.get(address);
    if (!fetches) this.peers.set(address, (fetches = { queue: [], keys: new Set(), inFlight: 0, waiters: new Set() }));
    const max = this.options.queuedObjectsMax ?? QUEUED_OBJECTS_MAX;
    for (const object of notice.objects) {
      const key = idToHex(object.id);
      if (fetches.keys.has(key)) continue;
      if (fetches.keys.size >= max) {
        this.stats.objectsDropped++;
        continue;
      }
      fetches.keys.add(key);
      fetches.queue.push({ id: object.id, key, lengthBytes: object.lengthBytes });
      this.stats.objectsQueued++;
    }
    this.pump(address, fetches);
  }

  /**
   * Resolves once nothing is queued or being fetched from `address`, or once no batch has ended
   * for `stallMs`, or after `timeoutMs`, whichever comes first. A pull waits here before its
   * descent, so it does not download again what is already on its way.
   */
  async settled(address: string, stallMs: number, timeoutMs: number): Promise<void> {
    const clock = this.options.node.clock;
    const timers = this.options.timers;
    const deadline = clock.nowMs() + timeoutMs;
    for (;;) {
      const fetches = this.peers.get(address);
      if (this.stopped || !fetches || (fetches.queue.length === 0 && fetches.inFlight === 0)) return;
      const leftMs = deadline - clock.nowMs();
      if (leftMs <= 0) return;
      const ended = await new Promise<boolean>((resolve) => {
        const done = () => {
          timers.clearTimeout(timer);
          fetches.waiters.delete(done);
          resolve(true);
        };
        const timer = timers.setTimeout(() => {
          fetches.waiters.delete(done);
          resolve(false);
        }, Math.min(stallMs, leftMs));
        fetches.waiters.add(done);
      });
      if (!ended) return;
    }
  }

  /** Whether anything is queued or being fetched from `address`. */
  busy(address: string): boolean {
    const fetches = this.peers.get(address);
    return fetches !== undefined && (fetches.queue.length > 0 || fetches.inFlight > 0);
  }

  /** Drops every queue; batches in flight end on their own deadline and store nothing more. */
  stop(): void {
    this.stopped = true;
    for (const fetches of this.peers.values()) for (const wake of [...fetches.waiters]) wake();
    this.peers.clear();
  }

  private pump(address: string, fetches: PeerFetches): void {
    while (!this.stopped && fetches.inFlight < CONCURRENT_FETCHES && fetches.queue.length > 0) {
      const batch: Wanted[] = [];
      let bytes = 0;
      while (fetches.queue.length > 0 && batch.length < FETCH_OBJECTS_MAX) {
        const next = fetches.queue[0]!;
        if (batch.length > 0 && bytes + next.lengthBytes > FETCH_BYTES_MAX) break;
        batch.push(fetches.queue.shift()!);
        bytes += next.lengthBytes;
      }
      fetches.inFlight++;
      void this.fetchBatch(address, batch).finally(() => {
        fetches.inFlight--;
        for (const wanted of batch) fetches.keys.delete(wanted.key);
        for (const wake of [...fetches.waiters]) wake();
        if (fetches.queue.length === 0 && fetches.inFlight === 0 && this.peers.get(address) === fetches) this.peers.delete(address);
        else this.pump(address, fetches);
      });
    }
  }

  private async fetchBatch(address: string, batch: readonly Wanted[]): Promise<void> {
    const node = this.options.node;
    try {
      const present = await node.hasObjects(batch.map((w) => w.id));
      const lacking = batch.filter((_, i) => !present[i]);
      this.stats.objectsPresent += batch.length - lacking.length;
      if (lacking.length === 0 || this.stopped) return;
      let link = this.links.get(address);
      if (!link) this.links.set(address, (link = { plainBytesPerSecond: null, requests: 0 }));
      const slow = link.plainBytesPerSecond !== null && link.plainBytesPerSecond < COMPRESS_BELOW_BYTES_PER_SECOND;
      const compressed = slow && ++link.requests % PLAIN_PROBE_EVERY !== 0;
      const startedMs = performance.now();
      const reply = await this.options.transport.download(address, lacking.map((w) => w.id), { compressed });
      const elapsedMs = performance.now() - startedMs;
      if (this.stopped) return;
      const asked = new Set(lacking.map((w) => w.key));
      for (const object of reply.objects) {
        if (!asked.has(idToHex(object.id))) throw new Error(`${address} sent object ${idToHex(object.id)} that was not asked for`);
        if (object.bytes.length > LIMITS.objectBytesMax) throw new Error(`${address} sent an object of ${object.bytes.length} bytes`);
      }
      this.stats.objectsMissing += reply.missing.length;
      if (reply.objects.length === 0) return;
      // Verified against its id by the store before anything is kept; marked complete where it can be.
      await node.putUploaded(reply.objects);
      let bytes = 0;
      for (const object of reply.objects) bytes += object.bytes.length;
      // A reply of a few KiB says more about the round trip than about the link.
      if (!compressed && bytes >= 256 * 1024 && elapsedMs > 0) {
        const rate = (bytes * 1000) / elapsedMs;
        link.plainBytesPerSecond = link.plainBytesPerSecond === null ? rate : 0.7 * link.plainBytesPerSecond + 0.3 * rate;
      }
      this.stats.objectsFetched += reply.objects.length;
      this.stats.bytesFetched += bytes;
      this.options.onFetched?.(reply.objects.length, bytes);
    } catch (error) {
      this.stats.batchFailures++;
      // Logged once per run of failures: a hostile or broken peer must not flood the log.
      if (!this.failureLogged && !this.stopped) this.options.log?.(`dsync: fetching ahead from ${address} failed (the pull at the head fetches what is lacking): ${(error as Error).message}`);
      this.failureLogged = true;
      return;
    }
    this.failureLogged = false;
  }
}
