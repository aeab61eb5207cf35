// Sending Raft messages to one peer: batched, one request in flight, a bounded queue, each
// request with a deadline. Raft tolerates lost messages (a leader sends again on the next
// heartbeat, a candidate's election times out), so what cannot go now is dropped rather than
// piled up: a queue that overflows loses its oldest messages, and a failed request's batch and
// what queued behind it are dropped and reported (the leader probes that follower again).
import type { Message } from "../core/raft/types.ts";
import type { Timers } from "../node/clock.ts";

/** Messages waiting for one peer, at most (a few ticks' worth; older ones are stale by then). */
export const PEER_QUEUE_MESSAGES_MAX = 256;
/** Messages in one request. */
export const PEER_BATCH_MESSAGES_MAX = 64;
/** Bytes of entry and snapshot data in one request (a snapshot goes alone, whatever its size). */
export const PEER_BATCH_BYTES_MAX = 8 * 1024 * 1024;

export interface PeerSenderOptions {
  /** Sends one batch; rejects when the peer could not take it. */
  send(messages: Message[]): Promise<void>;
  /** The batch was taken (snapshot messages in it went through). */
  onSent(messages: Message[]): void;
  /** The batch, and what was dropped with it, did not go. */
  onFailed(messages: Message[], error: unknown): void;
  timers: Timers;
  /** Deadline for one request, over the transport's own. */
  timeoutMs: number;
  /** Deadline for a request carrying a snapshot. */
  snapshotTimeoutMs: number;
}

export class PeerSender {
  private queue: Message[] = [];
  private inFlight = false;
  private stopped = false;
  /** Messages dropped because the queue was full, since the start (status, logs). */
  overflowed = 0;

  constructor(private readonly options: PeerSenderOptions) {}

  enqueue(messages: readonly Message[]): void {
    if (this.stopped) return;
    this.queue.push(...messages);
    if (this.queue.length > PEER_QUEUE_MESSAGES_MAX) {
      const dropped = this.queue.splice(0, this.queue.length - PEER_QUEUE_MESSAGES_MAX);
      this.overflowed += dropped.length;
      this.options.onFailed(dropped, new Error("the queue to this peer overflowed"));
    }
    void this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.queue = [];
  }

  get idle(): boolean {
    return !this.inFlight && this.queue.length === 0;
  }

  private takeBatch(): Message[] {
    // A snapshot goes alone: it may be tens of MiB and has its own deadline.
    if (this.queue[0]!.snapshot) return this.queue.splice(0, 1);
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < PEER_BATCH_MESSAGES_MAX) {
      const message = this.queue[count]!;
      if (message.snapshot) break;
      const size = message.entries.reduce((sum, e) => sum + e.data.length, 0);
      if (count > 0 && bytes + size > PEER_BATCH_BYTES_MAX) break;
      bytes += size;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async pump(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      while (!this.stopped && this.queue.length > 0) {
        const batch = this.takeBatch();
        try {
          await this.withDeadline(this.options.send(batch), batch.some((m) => m.snapshot) ? this.options.snapshotTimeoutMs : this.options.timeoutMs);
          this.options.onSent(batch);
        } catch (error) {
          // What queued behind a failed request is as unlikely to get through, and stale soon.
          const dropped = [...batch, ...this.queue];
          this.queue = [];
          this.options.onFailed(dropped, error);
        }
      }
    } finally {
      this.inFlight = false;
    }
  }

  private withDeadline(work: Promise<void>, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = this.options.timers.setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      work.then(
        () => {
          this.options.timers.clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          this.options.timers.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}
