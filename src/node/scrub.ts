// The background scrub: re-reads every stored object at a bounded byte rate, one pass after
// another, so damage to bytes nobody reads (old versions, a replica's copy) is found while a
// peer still holds a good copy, not when someone finally needs it.
//
// Each step asks the store to verify about `bytesPerSecond × stepMs` bytes after the position
// where the last step ended (store.scrub quarantines what is corrupt, and the repairer hears of
// it from the store). The next step waits long enough for the bytes actually read to stay
// within the rate. The position is saved every `saveEveryMs`, so a restart resumes the pass
// instead of starting over. Clock and timers are inputs: tests step it without sleeping.
import { idFromHex, idToHex, isIdHex, type ObjectId } from "../core/id.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { Clock, Timers } from "./clock.ts";

/** The default rate on a node with peers: a 100 GiB store is scrubbed about every 3.5 hours. */
export const SCRUB_BYTES_PER_SECOND_WITH_PEERS = 8 * 1024 * 1024;
const STEP_MS_DEFAULT = 1000;
const SAVE_EVERY_MS_DEFAULT = 10_000;
/** How long settled() waits for a step and a position save in flight at stop. */
export const SCRUB_SETTLE_MS = 5_000;

/** Where a pass stands, kept across restarts (the node's metadata, which may answer asynchronously). */
export interface ScrubPositionStore {
  load(): string | undefined | Promise<string | undefined>;
  save(value: string): void | Promise<void>;
}

export interface ScrubberOptions {
  store: ObjectStore;
  /** 0 turns the scrub off. */
  bytesPerSecond: number;
  clock: Clock;
  timers: Timers;
  position?: ScrubPositionStore;
  /** Length of the time slice one step's budget is made for. Default 1000 ms. */
  stepMs?: number;
  saveEveryMs?: number;
  log?: (line: string) => void;
}

export interface ScrubStats {
  bytesPerSecond: number;
  /** Passes completed since start. */
  passes: number;
  checkedObjects: number;
  checkedBytes: number;
  corruptFound: number;
  /** Where the current pass stands: the last id checked, or null at the start of a pass. */
  position: string | null;
}

export class Scrubber {
  private afterId: ObjectId | null = null;
  private timer: unknown = null;
  private stopped = true;
  private lastSavedMs = Number.NEGATIVE_INFINITY;
  /** The position last saved (or loaded): one that has not moved is not written again. */
  private lastSavedValue: string | undefined = undefined;
  private readonly stepMs: number;
  private readonly saveEveryMs: number;
  private readonly counters = { passes: 0, checkedObjects: 0, checkedBytes: 0, corruptFound: 0 };

  constructor(private readonly options: ScrubberOptions) {
    if (!(Number.isSafeInteger(options.bytesPerSecond) && options.bytesPerSecond >= 0)) {
      throw new RangeError(`the scrub rate must be a whole number of bytes per second, got ${options.bytesPerSecond}`);
    }
    this.stepMs = options.stepMs ?? STEP_MS_DEFAULT;
    this.saveEveryMs = options.saveEveryMs ?? SAVE_EVERY_MS_DEFAULT;
    const saved = options.position?.load();
    if (saved instanceof Promise) {
      // A store that answers later: the pass starts once it has, from where it stood.
      this.loaded = saved.then(
        (value) => this.resumeFrom(value),
        (error: unknown) => this.options.log?.(`dsync: reading the scrub position failed (the pass starts over): ${(error as Error).message}`),
      );
    } else this.resumeFrom(saved);
  }

  /** Settles once the saved position is read (at once for a store that answers synchronously). */
  private loaded: Promise<void> = Promise.resolve();

  private resumeFrom(saved: string | undefined): void {
    if (saved !== undefined && isIdHex(saved)) this.afterId = idFromHex(saved);
    if (saved === "" || this.afterId !== null) this.lastSavedValue = saved;
  }

  get enabled(): boolean {
    return this.options.bytesPerSecond > 0;
  }

  get stats(): ScrubStats {
    return { bytesPerSecond: this.options.bytesPerSecond, ...this.counters, position: this.afterId === null ? null : idToHex(this.afterId) };
  }

  start(): void {
    if (!this.stopped || !this.enabled) return;
    this.stopped = false;
    // A stop and a start while the position is read must not leave two steps scheduled.
    const start = ++this.starts;
    void this.loaded.then(() => {
      if (start === this.starts) this.schedule(0);
    });
  }

  private starts = 0;

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
    // A step in flight saves where it ended itself (runStep); else the position is saved now.
    if (this.stepping === null) this.savePosition(true);
  }

  /**
   * Settles once the step in flight at stop (if any) and every position save have, or after
   * `timeoutMs`: the node closes its metadata store after this, and a save still travelling to
   * a database server would be cut off (the pass would resume from an older position).
   */
  async settled(timeoutMs = SCRUB_SETTLE_MS): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    const work = (async () => {
      await this.stepping;
      await this.saving;
    })();
    await Promise.race([work, waited]);
    clearTimeout(timer);
  }

  /** The step running now, if any. */
  private stepping: Promise<void> | null = null;
  /** The last position save: saves run one after another, so an older one never lands after a newer. */
  private saving: Promise<void> = Promise.resolve();

  /** One step: verifies about one time slice's worth of bytes. Returns the bytes read. */
  async step(): Promise<number> {
    const budgetBytes = Math.max(1, Math.floor((this.options.bytesPerSecond * this.stepMs) / 1000));
    const result = await this.options.store.scrub(this.afterId, budgetBytes);
    this.counters.checkedObjects += result.checkedObjects;
    this.counters.checkedBytes += result.checkedBytes;
    this.counters.corruptFound += result.corrupt.length;
    if (result.corrupt.length > 0) this.options.log?.(`dsync: scrub found ${result.corrupt.length} corrupt object(s); quarantined`);
    this.afterId = result.nextAfterId;
    if (result.nextAfterId === null) this.counters.passes++;
    this.savePosition(false);
    return result.checkedBytes;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      void this.runStep();
    }, delayMs);
  }

  private runStep(): Promise<void> {
    const stepping = this.runStepOnce().finally(() => {
      if (this.stepping === stepping) this.stepping = null;
      // Stopped while it ran: where it ended is saved now, not left to the next periodic save.
      if (this.stopped) this.savePosition(true);
    });
    this.stepping = stepping;
    return stepping;
  }

  private async runStepOnce(): Promise<void> {
    if (this.stopped) return;
    const startMs = this.options.clock.nowMs();
    let readBytes = 0;
    try {
      readBytes = await this.step();
    } catch (error) {
      // A store closing under the step (shutdown) ends the scrub; anything else waits a slice and retries.
      if (this.stopped) return;
      this.options.log?.(`dsync: scrub step failed: ${(error as Error).message}`);
    }
    // Wait as long as the bytes read take at the rate, less the time the step itself took.
    const paceMs = Math.max(this.stepMs, Math.ceil((readBytes * 1000) / this.options.bytesPerSecond));
    this.schedule(Math.max(0, paceMs - (this.options.clock.nowMs() - startMs)));
  }

  /**
   * Saves where the pass stands, at most every `saveEveryMs` unless forced (at stop), and only
   * when it moved: a node whose store is empty or small ends a pass every step, and writing the
   * same position durably each second would be a synchronous metadata write (an fsync on the
   * event loop, stalling whatever the node is doing) for nothing. A pass's end is not forced
   * either: at worst a restart re-verifies what the last pass checked since its last save.
   */
  private savePosition(force: boolean): void {
    const position = this.options.position;
    if (position === undefined) return;
    const value = this.afterId === null ? "" : idToHex(this.afterId);
    if (value === this.lastSavedValue) return;
    const nowMs = this.options.clock.nowMs();
    if (!force && nowMs - this.lastSavedMs < this.saveEveryMs) return;
    this.lastSavedMs = nowMs;
    this.lastSavedValue = value;
    const failed = (error: unknown) => {
      // Not known to be saved: the next step writes it again.
      if (this.lastSavedValue === value) this.lastSavedValue = undefined;
      this.options.log?.(`dsync: saving the scrub position failed: ${(error as Error).message}`);
    };
    this.saving = this.saving.then(async () => {
      try {
        await position.save(value);
      } catch (error) {
        failed(error);
      }
    });
  }
}
