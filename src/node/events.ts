// The node's event log: what happened on this node, in order, for the dashboard and for any
// client that watches (GET /v1/events). Bounded: a ring of the last EVENT_LOG_CAPACITY events.
//
// Ids increase by one per event, so a reader that sees id N+2 after N knows it missed one, and
// a reader that resumes after an id older than the ring holds is told so by `since` (a gap)
// instead of silently receiving less. A run of the node starts its ids at its start time in
// milliseconds × 1000 (firstEventId), so ids keep increasing across restarts and a reader's id
// from before a restart is recognized as such (its events are gone with that process) rather
// than mistaken for one of this run. An id beyond the newest (a clock set back, or a made-up id)
// is a gap too: everything held may be news to that reader.
import type { Clock } from "./clock.ts";

/** Events held for readers that resume; about 1 KiB each, so at most a few MiB of memory. */
export const EVENT_LOG_CAPACITY = 4096;

/**
 * The first id of a run started at `nowMs`: above every id of an earlier run as long as that run
 * averaged fewer than 1000 events per millisecond and the clock did not go back. Below 2^53
 * until the year 2255.
 */
export function firstEventId(nowMs: number): number {
  return Math.max(1, Math.floor(nowMs) * 1000);
}

/**
 * What happened:
 * - `push`: objects received from a client (a push's upload batch); `pull`: objects sent to a
 *   client (a pull's, diff's or restore's download batch). Objects are shared by content across
 *   folders: a batch names the folder only when the client said which (X-Dsync-Folder).
 * - `commit`: a folder's head moved to a version made here (push, restore, or a push merged onto
 *   a head that had moved).
 * - `fetch`: replication brought versions and objects of a folder from a peer; `merge`: the head
 *   moved to a peer's version (fast-forward) or to a merge of both.
 * - `conflict`: a merge kept both sides of a path; the other side is kept as a conflict copy.
 * - `verify`: a finding (an object found corrupt, a version missing objects or breaking the
 *   tree rules), or the end of a verification with its counts.
 * - `peer`: a peer became reachable or unreachable.
 */
export type NodeEventType = "push" | "pull" | "commit" | "fetch" | "merge" | "conflict" | "verify" | "peer";

export type EventData = Record<string, string | number | boolean | null | string[]>;

export interface NodeEvent {
  id: number;
  type: NodeEventType;
  timeMs: number;
  /** The folder it concerns, when it concerns one. */
  folder: string | null;
  data: EventData;
}

/** What a reader gets after its last id: the events still held, and what it missed. */
export interface EventsSince {
  events: NodeEvent[];
  /** Set when events after the reader's id are no longer held (or the id is from an earlier run). */
  gap: { afterId: number; firstHeldId: number | null; reason: "dropped" | "restarted" | "unknown-id" } | null;
  /** The newest id (0 before the first event). */
  lastId: number;
}

export class EventLog {
  private readonly ring: (NodeEvent | undefined)[];
  private nextId: number;
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly clock: Clock,
    readonly capacity: number = EVENT_LOG_CAPACITY,
    /** The id of this run's first event (firstEventId); 1 by default. */
    readonly firstId: number = 1,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error(`event log capacity must be a positive whole number, got ${capacity}`);
    if (!Number.isSafeInteger(firstId) || firstId < 1) throw new Error(`the first event id must be a positive whole number, got ${firstId}`);
    this.ring = new Array(capacity);
    this.nextId = firstId;
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  /** The oldest id still held, or null when none is. */
  get firstHeldId(): number | null {
    if (this.nextId === this.firstId) return null;
    return Math.max(this.firstId, this.nextId - this.capacity);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  emit(type: NodeEventType, folder: string | null, data: EventData = {}): NodeEvent {
    const event: NodeEvent = { id: this.nextId++, type, timeMs: this.clock.nowMs(), folder, data };
    this.ring[event.id % this.capacity] = event;
    this.wake();
    return event;
  }

  /** The events after `afterId`, at most `limit` of them (oldest first). */
  since(afterId: number, limit = this.capacity): EventsSince {
    // 0 asks for everything of this run: a gap only if some of it was dropped.
    if (afterId === 0) afterId = this.firstId - 1;
    const lastId = this.lastId;
    const first = this.firstHeldId;
    let gap: EventsSince["gap"] = null;
    let from = afterId + 1;
    if (afterId > lastId) {
      // An id no run gave yet: everything held is sent.
      gap = { afterId, firstHeldId: first, reason: "unknown-id" };
      from = first ?? this.firstId;
    } else if (afterId < this.firstId - 1) {
      // An id of an earlier run: what came after it there is gone with that process.
      gap = { afterId, firstHeldId: first, reason: "restarted" };
      from = first ?? this.firstId;
    } else if (first !== null && from < first) {
      gap = { afterId, firstHeldId: first, reason: "dropped" };
      from = first;
    }
    const events: NodeEvent[] = [];
    for (let id = Math.max(from, this.firstId); id <= lastId && events.length < limit; id++) events.push(this.ring[id % this.capacity]!);
    return { events, gap, lastId };
  }

  /**
   * Resolves when an event after `afterId` exists, after `timeoutMs`, when `signal` aborts, or
   * when the log closes, whichever comes first. Never rejects.
   */
  waitAfter(afterId: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.lastId !== afterId || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener("abort", done);
    });
  }

  /** Ends every wait (the node is stopping); later waits return at once. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
