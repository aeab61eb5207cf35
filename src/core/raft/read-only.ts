// Linearizable reads without a log entry (Raft thesis §6.4, ReadIndex): the leader notes its
// commit index when a read arrives, then confirms it is still the leader by a round of
// heartbeats carrying the read's context; once a quorum has answered one carrying it, that read
// and every read queued before it may be served at the noted index. No lease reads: a lease
// relies on bounded clock drift between members, which dsync does not assume.
import type { RaftNodeId } from "./types.ts";

export interface PendingRead {
  /** The leader's commit index when the read arrived. */
  index: number;
  context: Uint8Array;
  /** Who asked: this member, or the followers that forwarded it (same context from several is one read). */
  requesters: RaftNodeId[];
  acks: Set<RaftNodeId>;
}

/** Reads waiting for a heartbeat round, the leader's queue; at most this many (more are dropped: the caller times out). */
export const PENDING_READS_MAX = 4096;

export class ReadOnlyQueue {
  private queue: PendingRead[] = [];
  private byContext = new Map<string, PendingRead>();

  add(index: number, context: Uint8Array, requester: RaftNodeId): PendingRead | undefined {
    const key = contextKey(context);
    const existing = this.byContext.get(key);
    if (existing) {
      if (!existing.requesters.includes(requester)) existing.requesters.push(requester);
      return existing;
    }
    if (this.queue.length >= PENDING_READS_MAX) return undefined;
    const read: PendingRead = { index, context, requesters: [requester], acks: new Set() };
    this.queue.push(read);
    this.byContext.set(key, read);
    return read;
  }

  /** `from` answered a heartbeat carrying `context`; returns the acks the read now has (0 if unknown). */
  ack(from: RaftNodeId, context: Uint8Array): Set<RaftNodeId> | undefined {
    const read = this.byContext.get(contextKey(context));
    if (!read) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /** The read with `context` is confirmed: it and every read before it leave the queue, in order. */
  release(context: Uint8Array): PendingRead[] {
    const read = this.byContext.get(contextKey(context));
    if (!read) return [];
    const at = this.queue.indexOf(read);
    const done = this.queue.splice(0, at + 1);
    for (const r of done) this.byContext.delete(contextKey(r.context));
    return done;
  }

  /** The newest read's context (heartbeats carry it, so a lost round is retried). */
  lastContext(): Uint8Array | undefined {
    return this.queue[this.queue.length - 1]?.context;
  }

  size(): number {
    return this.queue.length;
  }

  clear(): void {
    this.queue = [];
    this.byContext.clear();
  }
}

function contextKey(context: Uint8Array): string {
  let out = "";
  for (const byte of context) out += byte.toString(16).padStart(2, "0");
  return out;
}
