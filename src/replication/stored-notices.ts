// The pushing side of streamed replication: as a client's upload groups become durable here,
// each peer is told which objects were stored, per folder, so it can fetch them while the push
// is still arriving (prefetch.ts) instead of only once the head moves.
//
// A notice is a hint, never owed: a peer that is slow, away or gone must not slow the push. So
// `stored` only appends to a per-peer list and returns; one notice per peer is in flight at a
// time (the next one takes everything that piled up meanwhile, up to the notice bound), and what
// is waiting for a peer is bounded: past PENDING_OBJECTS_MAX the newest are dropped (counted).
// What a peer never heard of it fetches at the head, as without notices.
import { LIMITS } from "../core/limits.ts";
import type { ObjectId } from "../core/id.ts";
import type { StoredNotice } from "./transport.ts";

/** Objects waiting to be noticed to one peer: a few MB of ids at most, whatever the peer does. */
export const PENDING_OBJECTS_MAX = 32_768;

export interface StoredNoticeSenderOptions {
  /** This node's id, the notices' sender. */
  nodeId: string;
  /** The peers to tell now (those not known unreachable). */
  peers: () => readonly string[];
  /** Sends one notice; its deadline is the transport's. A failure drops it. */
  send: (peer: string, notice: StoredNotice) => Promise<void>;
  /** Whether objects stored for this folder are to be noticed (not a strong folder). Asked before each notice. */
  folderStreams: (folder: string) => Promise<boolean>;
  nowMs: () => number;
  pendingObjectsMax?: number;
}

/** After a notice to a peer failed, it is told nothing for this long (a dead peer costs one failed request per second, not one per group). */
export const FAILED_PEER_QUIET_MS = 1000;

interface PeerQueue {
  /** Per folder, in the order stored. */
  byFolder: Map<string, { id: ObjectId; lengthBytes: number }[]>;
  count: number;
  sending: boolean;
  /** Told nothing before this time (a notice to it failed). */
  quietUntilMs: number;
}

export interface StoredNoticeStats {
  noticesSent: number;
  noticeFailures: number;
  objectsNoticed: number;
  /** Objects not noticed to a peer because its queue was full. */
  objectsDropped: number;
}

export class StoredNoticeSender {
  private readonly queues = new Map<string, PeerQueue>();
  private stopped = false;
  readonly stats: StoredNoticeStats = { noticesSent: 0, noticeFailures: 0, objectsNoticed: 0, objectsDropped: 0 };

  constructor(private readonly options: StoredNoticeSenderOptions) {}

  /** Objects of `folder` are durable here: queue them for every peer. Returns at once. */
  stored(folder: string, objects: readonly { id: ObjectId; lengthBytes: number }[]): void {
    if (this.stopped || objects.length === 0) return;
    const max = this.options.pendingObjectsMax ?? PENDING_OBJECTS_MAX;
    for (const peer of this.options.peers()) {
      let queue = this.queues.get(peer);
      if (!queue) this.queues.set(peer, (queue = { byFolder: new Map(), count: 0, sending: false, quietUntilMs: 0 }));
      if (queue.quietUntilMs > this.options.nowMs()) {
        this.stats.objectsDropped += objects.length;
        continue;
      }
      const room = Math.max(0, max - queue.count);
      const taken = objects.length <= room ? objects : objects.slice(0, room);
      this.stats.objectsDropped += objects.length - taken.length;
      if (taken.length > 0) {
        let list = queue.byFolder.get(folder);
        if (!list) queue.byFolder.set(folder, (list = []));
        for (const object of taken) list.push({ id: object.id, lengthBytes: object.lengthBytes });
        queue.count += taken.length;
      }
      if (!queue.sending) void this.drain(peer, queue);
    }
  }

  /** Drops everything waiting; notices in flight finish on their own deadline. */
  stop(): void {
    this.stopped = true;
    this.queues.clear();
  }

  /** Sends what waits for one peer, one notice at a time, until nothing does. */
  private async drain(peer: string, queue: PeerQueue): Promise<void> {
    queue.sending = true;
    try {
      while (!this.stopped && queue.count > 0) {
        const [folder, list] = queue.byFolder.entries().next().value as [string, { id: ObjectId; lengthBytes: number }[]];
        const objects = list.splice(0, LIMITS.storedNoticeObjectsMax);
        if (list.length === 0) queue.byFolder.delete(folder);
        queue.count -= objects.length;
        try {
          if (!(await this.options.folderStreams(folder))) continue;
          await this.options.send(peer, { from: this.options.nodeId, folder, objects });
          this.stats.noticesSent++;
          this.stats.objectsNoticed += objects.length;
        } catch {
          // A hint lost, and what waits for that peer with it: it fetches them at the head.
          this.stats.noticeFailures++;
          this.stats.objectsDropped += queue.count;
          queue.byFolder.clear();
          queue.count = 0;
          queue.quietUntilMs = this.options.nowMs() + FAILED_PEER_QUIET_MS;
        }
      }
    } finally {
      queue.sending = false;
      // Nothing left and no one sending: the peer's entry goes (unless it is keeping a failed peer quiet).
      if (queue.count === 0 && queue.quietUntilMs <= this.options.nowMs() && this.queues.get(peer) === queue) this.queues.delete(peer);
    }
  }
}
