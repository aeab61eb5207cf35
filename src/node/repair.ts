// Repair: getting good copies of quarantined (or missing) objects from somewhere else, by id.
//
// A node keeps objects by their BLAKE3 id, so any copy anywhere is as good as the original once
// it hashes to the id: a peer that holds the object can hand it over, and nothing it sends is
// taken on trust (each object is hashed against the id it was asked for before it is stored).
// Where the copies come from is an `ObjectSource` (the peers, in src/replication); this file
// decides when to ask: at once, for a caller that waits (a download, `verify --repair`), or in
// the background, in small batches with a pause between them, for whatever the store
// quarantines. An id no source has is tried again after `retryMs`, and counted as unrepairable
// meanwhile.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import type { ObjectStore, StoredObject } from "../store/object-store.ts";
import type { Clock, Timers } from "./clock.ts";

export interface ObjectSource {
  /**
   * Asks for objects by id and answers with those it found. Nothing it returns is trusted: the
   * repairer checks each against its id. Resolves (possibly with nothing) rather than throws
   * when no one has them.
   */
  fetch(ids: readonly ObjectId[]): Promise<StoredObject[]>;
}

export interface RepairerOptions {
  store: ObjectStore;
  source: ObjectSource;
  clock: Clock;
  timers: Timers;
  /** Most ids one background batch asks for. Default 256. */
  batchIdsMax?: number;
  /** Pause between background batches, so repair never crowds out the node's real work. Default 200 ms. */
  pauseMs?: number;
  /** How long an id no source had waits before it is asked for again. Default 60 s. */
  retryMs?: number;
  log?: (line: string) => void;
  /** Told of the objects each attempt stored again (the node's event log reports them). */
  onRepaired?: (ids: readonly ObjectId[]) => void;
}

export interface RepairResult {
  repaired: ObjectId[];
  /** Asked for, but no source sent a copy that hashes to the id. */
  unrepairable: ObjectId[];
}

export interface RepairStats {
  /** Objects stored again from a source. */
  repaired: number;
  /** Ids whose last attempt found no good copy (tried again later). */
  unrepairable: number;
  /** Ids waiting for a background attempt. */
  pending: number;
  /** Copies a source sent that did not hash to their id, or were not asked for. */
  rejectedCopies: number;
}

const BATCH_IDS_MAX_DEFAULT = 256;
const PAUSE_MS_DEFAULT = 200;
const RETRY_MS_DEFAULT = 60_000;

export class Repairer {
  /** Ids (hex) to try in the background, with the time they are due. */
  private readonly due = new Map<string, number>();
  private readonly unrepairableIds = new Set<string>();
  private repairedCount = 0;
  private rejectedCopies = 0;
  private timer: unknown = null;
  private timerDueMs = Number.POSITIVE_INFINITY;
  private running = false;
  private stopped = true;
  private unsubscribe: (() => void) | null = null;
  private readonly batchIdsMax: number;
  private readonly pauseMs: number;
  private readonly retryMs: number;

  constructor(private readonly options: RepairerOptions) {
    this.batchIdsMax = options.batchIdsMax ?? BATCH_IDS_MAX_DEFAULT;
    this.pauseMs = options.pauseMs ?? PAUSE_MS_DEFAULT;
    this.retryMs = options.retryMs ?? RETRY_MS_DEFAULT;
  }

  /** Listens for newly quarantined objects and queues those already in quarantine. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.options.store.onQuarantine((ids) => this.enqueue(ids));
    const waiting = await this.options.store.listQuarantine({ unrepairedOnly: true });
    this.enqueue(waiting.map((record) => record.id));
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.clearTimer();
  }

  get stats(): RepairStats {
    return { repaired: this.repairedCount, unrepairable: this.unrepairableIds.size, pending: this.due.size, rejectedCopies: this.rejectedCopies };
  }

  /** Ids whose last attempt found no good copy. */
  unrepairable(): ObjectId[] {
    return [...this.unrepairableIds].map(idFromHex);
  }

  /** Makes every waiting id due now (a peer that was away answers again): one batch per pause, as always. */
  retryNow(): void {
    const nowMs = this.options.clock.nowMs();
    for (const key of this.due.keys()) this.due.set(key, nowMs);
    this.scheduleAt(nowMs);
  }

  /** Queues ids for a background attempt, due now. */
  enqueue(ids: readonly ObjectId[]): void {
    const nowMs = this.options.clock.nowMs();
    for (const id of ids) this.due.set(idToHex(id), nowMs);
    this.scheduleAt(nowMs);
  }

  /**
   * Fetches good copies of `ids` now and stores them; for a caller that waits. Ids the store
   * holds already count as repaired without asking anyone.
   */
  async repair(ids: readonly ObjectId[]): Promise<RepairResult> {
    const unique = [...new Map(ids.map((id) => [idToHex(id), id])).values()];
    const result: RepairResult = { repaired: [], unrepairable: [] };
    for (let at = 0; at < unique.length; at += this.batchIdsMax) {
      const batch = unique.slice(at, at + this.batchIdsMax);
      const present = await this.options.store.hasMany(batch);
      const wanted = batch.filter((_, i) => !present[i]);
      const copies = wanted.length === 0 ? [] : await this.fetchVerified(wanted);
      if (copies.length > 0) {
        await this.options.store.putMany(copies);
        this.options.onRepaired?.(copies.map((copy) => copy.id));
      }
      const got = new Set(copies.map((object) => idToHex(object.id)));
      for (let i = 0; i < batch.length; i++) {
        const id = batch[i]!;
        const key = idToHex(id);
        if (present[i] || got.has(key)) {
          result.repaired.push(id);
          this.unrepairableIds.delete(key);
          this.due.delete(key);
        } else {
          result.unrepairable.push(id);
          this.unrepairableIds.add(key);
        }
      }
      this.repairedCount += copies.length;
    }
    return result;
  }

  /**
   * repair(), waited for at most `timeoutMs` (it goes on in the background after that); for a
   * reader that would rather answer late than fail. Never throws: what is not back is absent.
   */
  async repairWithin(ids: readonly ObjectId[], timeoutMs: number): Promise<void> {
    let handle: unknown = null;
    const timeout = new Promise<void>((resolve) => {
      handle = this.options.timers.setTimeout(resolve, timeoutMs);
    });
    const attempt = this.repair(ids).then(
      () => undefined,
      (error: unknown) => this.options.log?.(`dsync: repair of ${ids.length} object(s) failed: ${(error as Error).message}`),
    );
    try {
      await Promise.race([attempt, timeout]);
    } finally {
      this.options.timers.clearTimeout(handle);
    }
  }

  /** Runs the background batches that are due now; the timer calls it, and tests may too. */
  async runDue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const nowMs = this.options.clock.nowMs();
      let batch: ObjectId[] = [];
      for (const [key, dueMs] of this.due) {
        if (dueMs > nowMs) continue;
        batch.push(idFromHex(key));
        if (batch.length >= this.batchIdsMax) break;
      }
      if (batch.length > 0) {
        try {
          // Only what is still quarantined is asked for: an id a put stored again, or that gc
          // forgot because no kept version needs it, is done with, not retried every minute.
          const waiting = new Set((await this.options.store.listQuarantine({ unrepairedOnly: true })).map((record) => idToHex(record.id)));
          for (const id of batch) {
            if (waiting.has(idToHex(id))) continue;
            this.due.delete(idToHex(id));
            this.unrepairableIds.delete(idToHex(id));
          }
          batch = batch.filter((id) => waiting.has(idToHex(id)));
          const result = await this.repair(batch);
          if (result.repaired.length > 0) this.options.log?.(`dsync: repaired ${result.repaired.length} object(s) from peers`);
          const retryAtMs = this.options.clock.nowMs() + this.retryMs;
          for (const id of result.unrepairable) this.due.set(idToHex(id), retryAtMs);
        } catch (error) {
          const retryAtMs = this.options.clock.nowMs() + this.retryMs;
          for (const id of batch) this.due.set(idToHex(id), retryAtMs);
          this.options.log?.(`dsync: repair of ${batch.length} object(s) failed: ${(error as Error).message}`);
        }
      }
    } finally {
      this.running = false;
    }
    let nextDueMs = Number.POSITIVE_INFINITY;
    for (const dueMs of this.due.values()) nextDueMs = Math.min(nextDueMs, dueMs);
    // More due at once waits the pause: repair is bounded to one batch per pause.
    this.scheduleAt(Math.max(nextDueMs, this.options.clock.nowMs() + this.pauseMs));
  }

  /** Asks the source and keeps only copies that were asked for and hash to their id. */
  private async fetchVerified(ids: readonly ObjectId[]): Promise<StoredObject[]> {
    const asked = new Set(ids.map(idToHex));
    const copies = await this.options.source.fetch(ids);
    const good = new Map<string, StoredObject>();
    for (const copy of copies) {
      const key = idToHex(copy.id);
      if (!asked.has(key) || !idEquals(blake3(copy.bytes), copy.id)) {
        this.rejectedCopies++;
        continue;
      }
      good.set(key, copy);
    }
    return [...good.values()];
  }

  private scheduleAt(atMs: number): void {
    if (this.stopped || this.due.size === 0 || !Number.isFinite(atMs)) return;
    if (this.timer !== null && this.timerDueMs <= atMs) return;
    this.clearTimer();
    this.timerDueMs = atMs;
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      this.timerDueMs = Number.POSITIVE_INFINITY;
      void this.runDue();
    }, Math.max(0, atMs - this.options.clock.nowMs()));
  }

  private clearTimer(): void {
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
    this.timerDueMs = Number.POSITIVE_INFINITY;
  }
}
