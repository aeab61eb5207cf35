// A seeded discrete-event scheduler for the replication simulation.
//
// Simulated time only moves when the run loop takes the next event from the queue, ordered by
// (time, sequence of scheduling). After each event the loop lets every pending microtask run
// (one setImmediate turn: the nodes under test use no timers or I/O of their own, only
// promises over in-memory stores and synchronous SQLite), so an event and all the work it
// sets off finish before the next event starts. Given the same seed, the same events run in
// the same order at the same simulated times; a hash of that trace tells two runs apart.
import { createHash, type Hash } from "node:crypto";
import type { Clock } from "../../src/node/clock.ts";
import type { Timers } from "../../src/replication/transport.ts";
import { createPrng, type Prng } from "../helpers/prng.ts";

/** Where simulated time starts: a plausible wall clock, so HLC stamps and conflict names look real. */
export const SIM_EPOCH_MS = 1_750_000_000_000;

export interface SimEvent {
  readonly time: number;
  readonly sequence: number;
  readonly label: string;
  readonly run: () => void;
  cancelled: boolean;
}

/** The seeded random source of one simulation run, with the draws the harness needs. */
export class SimRandom {
  private readonly prng: Prng;

  constructor(seed: number) {
    this.prng = createPrng(seed);
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.prng.nextUint32() / 0x1_0000_0000;
  }

  /** A uniform integer in [0, bound). */
  int(bound: number): number {
    return this.prng.nextInt(bound);
  }

  /** A uniform integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.prng.nextInt(max - min + 1);
  }

  chance(probability: number): boolean {
    return probability > 0 && this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.prng.nextInt(items.length)]!;
  }

  /** A random order of the items (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.prng.nextInt(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

export class Scheduler {
  private nowMsValue: number;
  private sequence = 0;
  private readonly heap: SimEvent[] = [];
  private readonly trace: Hash = createHash("sha256");
  /** Events run so far (cancelled ones are not counted). */
  eventsRun = 0;
  /** Errors thrown by event callbacks themselves (the harness treats any as a failure). */
  readonly errors: string[] = [];

  readonly clock: Clock = { nowMs: () => this.nowMsValue };

  constructor(readonly startMs: number = SIM_EPOCH_MS) {
    this.nowMsValue = startMs;
  }

  nowMs(): number {
    return this.nowMsValue;
  }

  /** Simulated milliseconds since the start. */
  elapsedMs(): number {
    return this.nowMsValue - this.startMs;
  }

  /** Runs `run` after `delayMs` of simulated time (0: after everything already due now). */
  schedule(delayMs: number, label: string, run: () => void): SimEvent {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`bad delay ${delayMs} for ${label}`);
    const event: SimEvent = { time: this.nowMsValue + Math.round(delayMs), sequence: this.sequence++, label, run, cancelled: false };
    this.push(event);
    return event;
  }

  cancel(event: SimEvent | null | undefined): void {
    if (event) event.cancelled = true;
  }

  /** Adds a line to the trace without an event (outcomes worth telling two runs apart by). */
  note(text: string): void {
    this.trace.update(`${this.nowMsValue - this.startMs} ! ${text}\n`);
  }

  traceHash(): string {
    return this.trace.copy().digest("hex");
  }

  /** Timers on simulated time; callbacks are skipped once `live()` says their owner is gone. */
  timers(owner: string, live: () => boolean = () => true): Timers {
    return {
      setTimeout: (callback, delayMs) =>
        this.schedule(Math.max(0, delayMs), `timer ${owner}`, () => {
          if (live()) callback();
        }),
      clearTimeout: (handle) => this.cancel(handle as SimEvent),
    };
  }

  /** The time of the next event that will run, or null when none is queued. */
  peekTime(): number | null {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap.length > 0 ? this.heap[0]!.time : null;
  }

  /**
   * Runs the next event, then lets all the work it set off finish. Returns false when the
   * queue is empty or the next event lies beyond `untilMs`.
   */
  async step(untilMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const time = this.peekTime();
    if (time === null || time > untilMs) return false;
    const event = this.pop()!;
    this.nowMsValue = event.time;
    this.eventsRun++;
    this.trace.update(`${event.time - this.startMs} ${event.label}\n`);
    try {
      event.run();
    } catch (error) {
      this.errors.push(`event "${event.label}" threw: ${(error as Error)?.stack ?? String(error)}`);
    }
    await drainMicrotasks();
    return true;
  }

  /**
   * Runs events until simulated time reaches `untilMs` (the clock then stands at `untilMs`), or
   * `stop()` says so; `stop` is asked after every event. Returns true when stopped by `stop`.
   */
  async runUntil(untilMs: number, stop: () => boolean | Promise<boolean> = () => false): Promise<boolean> {
    while (await this.step(untilMs)) {
      if (await stop()) return true;
    }
    if (this.nowMsValue < untilMs) this.nowMsValue = untilMs;
    return false;
  }

  private push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): SimEvent | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time !== b.time ? a.time < b.time : a.sequence < b.sequence;
}

/**
 * Lets every queued microtask run, and those they queue in turn: a macrotask turn starts only
 * once the microtask queue is empty. Nothing in the simulated nodes waits on a macrotask, so
 * one turn is enough (the determinism test checks this by comparing two runs of one seed).
 */
export function drainMicrotasks(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
