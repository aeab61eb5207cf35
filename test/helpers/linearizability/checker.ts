// Whether a history of operations is linearizable against a sequential model: whether there is
// one order of the operations, consistent with real time (an operation that returned before
// another was called comes first), in which each operation's output is what the model gives.
//
// The search is Wing and Gong's, with Lowe's memoization, as Porcupine does it:
// - the history is split into independent partitions (the model says how: for the head
//   register, one per folder), since a history is linearizable iff each partition is;
// - each partition's call and return events, sorted by time, form a doubly linked list; a depth-
//   first search walks it from the front, and linearizes ("lifts" out of the list) the first
//   operation whose call comes before every pending return and that the model accepts in the
//   current state; reaching a return event means the operation it ends had to be linearized by
//   then and was not, so the search backtracks: it "unlifts" the last operation and tries the
//   next candidate after it;
// - a cache of (set of linearized operations, model state) pairs already explored prunes the
//   search: two paths that reach the same pair have the same future.
//
// An indeterminate operation (returnMs = Infinity) may take effect at any point after its call.
// Without an output it may also never take effect: it gets no return event, so nothing forces
// it in. With an output (resolved after the run, head-register.ts) it did take effect: its return
// event, at infinity, means it must be linearized somewhere after its call.
//
// Deterministic: no clock, no randomness; the order of the search depends only on the history.
import type { Operation } from "./history.ts";

export interface Model<State, Input = unknown, Output = unknown> {
  /** The state before any operation. */
  init(): State;
  /**
   * Applies one operation: whether `output` is what the model answers for `input` in `state`
   * and the state after it. `output` is undefined only for an indeterminate operation.
   */
  step(state: State, input: Input, output: Output | undefined, kind: string): { legal: boolean; state: State };
  /** Equal states give equal keys, different states different ones (the cache compares these). */
  stateKey(state: State): string;
  /** Which independent part of the state an operation touches; absent: one partition. */
  partitionKey?(input: Input, kind: string): string;
  /** A short description of an operation, for failure reports. */
  describe?(operation: Operation<Input, Output>): string;
}

export type CheckResult<Input = unknown, Output = unknown> =
  | { result: "ok" }
  | {
      result: "illegal";
      /** The partition that has no linearization. */
      partition: string;
      /** The longest order of its operations the search could linearize. */
      longestPrefix: Operation<Input, Output>[];
      /** The operations that could have gone next after that prefix (by real time), none of which could. */
      stuckAt: Operation<Input, Output>[];
      /** The model's state after `longestPrefix`. */
      stateAfterPrefix: string;
    }
  /** The search ran out of its step budget before it could decide. */
  | { result: "unknown"; steps: number };

export interface CheckOptions {
  /** How many search steps (over all partitions) before giving up with "unknown". Default 10 000 000. */
  maxSteps?: number;
  /** Whether to prune with the cache of explored (linearized set, state) pairs; off only to measure what it saves. Default true. */
  memoize?: boolean;
}

const DEFAULT_MAX_STEPS = 10_000_000;

export function checkLinearizable<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  const budget = { left: options.maxSteps ?? DEFAULT_MAX_STEPS, used: 0, memoize: options.memoize ?? true };
  const partitions = new Map<string, Operation<Input, Output>[]>();
  for (const operation of operations) {
    if (!Number.isFinite(operation.callMs) || !(operation.callMs <= operation.returnMs)) {
      throw new Error(`an operation must be called at a finite time and return no earlier: ${JSON.stringify(operation)}`);
    }
    const key = model.partitionKey ? model.partitionKey(operation.input, operation.kind) : "";
    let list = partitions.get(key);
    if (!list) partitions.set(key, (list = []));
    list.push(operation);
  }
  // Partitions in a fixed order, so the verdict (and how far a budget reaches) is the same on every run.
  for (const key of [...partitions.keys()].sort()) {
    const verdict = checkPartition(model, partitions.get(key)!, budget);
    if (verdict.result === "illegal") return { ...verdict, partition: key };
    if (verdict.result === "unknown") return { result: "unknown", steps: budget.used };
  }
  return { result: "ok" };
}

/** Throws with a readable account of the violation unless `operations` are linearizable. */
export function assertLinearizable<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): void {
  const verdict = checkLinearizable(model, operations, options);
  if (verdict.result !== "ok") throw new Error(describeResult(model, verdict, operations.length));
}

/** A failure report: which partition, what could be linearized, where it got stuck. */
export function describeResult<State, Input, Output>(model: Model<State, Input, Output>, verdict: CheckResult<Input, Output>, total?: number): string {
  if (verdict.result === "ok") return "linearizable";
  if (verdict.result === "unknown") return `linearizability undecided: the search used its budget of ${verdict.steps} steps${total === undefined ? "" : ` on ${total} operations`}`;
  const show = (operation: Operation<Input, Output>) => {
    const what = model.describe ? model.describe(operation) : `${operation.kind} ${JSON.stringify(operation.input)} -> ${JSON.stringify(operation.output)}`;
    const returned = operation.returnMs === Infinity ? "never answered" : `${operation.returnMs}`;
    return `  ${operation.clientId}: ${what} [called ${operation.callMs}, returned ${returned}]`;
  };
  const shownPrefix = verdict.longestPrefix.slice(-10);
  return [
    `not linearizable${verdict.partition ? ` (partition ${verdict.partition})` : ""}: ${verdict.longestPrefix.length} operations linearize, then none of these can go next from state ${verdict.stateAfterPrefix}:`,
    ...verdict.stuckAt.map(show),
    `the last ${shownPrefix.length} of the linearized prefix:`,
    ...shownPrefix.map(show),
  ].join("\n");
}

type PartitionVerdict<Input, Output> =
  | { result: "ok" }
  | { result: "illegal"; longestPrefix: Operation<Input, Output>[]; stuckAt: Operation<Input, Output>[]; stateAfterPrefix: string }
  | { result: "unknown" };

const NONE = -1;

function checkPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  unordered: Operation<Input, Output>[],
  budget: { left: number; used: number; memoize: boolean },
): PartitionVerdict<Input, Output> {
  // Operations numbered in call order: the linearized set then tends to be a run of ones
  // followed by a short window, which the cache stores compactly (LinearizedSet.snapshot).
  const operations = unordered
    .map((operation, i) => ({ operation, i }))
    .sort((a, b) => a.operation.callMs - b.operation.callMs || a.i - b.i)
    .map(({ operation }) => operation);
  const count = operations.length;

  // Events: operation k's call is 2k, its return 2k+1 (absent when it need not take effect).
  // At equal times a call sorts before a return: the two operations count as concurrent, the
  // reading that accuses no one on a clock too coarse to tell.
  const events: number[] = [];
  const timeOf = (event: number) => (event & 1 ? operations[event >> 1].returnMs : operations[event >> 1].callMs);
  for (let k = 0; k < count; k++) {
    events.push(2 * k);
    const operation = operations[k];
    if (operation.returnMs !== Infinity || operation.output !== undefined) events.push(2 * k + 1);
  }
  events.sort((a, b) => timeOf(a) - timeOf(b) || (a & 1) - (b & 1) || a - b);

  // The doubly linked list of events; HEAD is a sentinel before the first.
  const HEAD = 2 * count;
  const next = new Int32Array(2 * count + 1).fill(NONE);
  const prev = new Int32Array(2 * count + 1).fill(NONE);
  const present = new Uint8Array(2 * count);
  let last = HEAD;
  for (const event of events) {
    next[last] = event;
    prev[event] = last;
    present[event] = 1;
    last = event;
  }
  const unlink = (event: number) => {
    next[prev[event]] = next[event];
    if (next[event] !== NONE) prev[next[event]] = prev[event];
  };
  const relink = (event: number) => {
    next[prev[event]] = event;
    if (next[event] !== NONE) prev[next[event]] = event;
  };
  // Lifting takes an operation's call and return out of the list; unlifting (always of the last
  // lifted one) puts them back in reverse order, which restores the list exactly.
  const lift = (k: number) => {
    unlink(2 * k);
    if (present[2 * k + 1]) unlink(2 * k + 1);
  };
  const unlift = (k: number) => {
    if (present[2 * k + 1]) relink(2 * k + 1);
    relink(2 * k);
  };

  const linearized = new LinearizedSet(count);
  const cache = new Map<string, Uint32Array[]>();
  const stack: { k: number; before: State }[] = [];
  let state = model.init();
  let longest: { prefix: number[]; stuckAt: number[]; state: State } | null = null;

  let event = next[HEAD];
  while (event !== NONE) {
    if (budget.left-- <= 0) return { result: "unknown" };
    budget.used++;
    if ((event & 1) === 0) {
      const k = event >> 1;
      const operation = operations[k];
      const after = model.step(state, operation.input, operation.output, operation.kind);
      if (after.legal) {
        linearized.add(k);
        if (budget.memoize ? remember(cache, linearized, model.stateKey(after.state)) : true) {
          stack.push({ k, before: state });
          state = after.state;
          lift(k);
          event = next[HEAD];
          continue;
        }
        linearized.remove(k);
      }
      event = next[event];
    } else {
      // A return: its operation had to be linearized by now. Back up one.
      if (!longest || stack.length > longest.prefix.length) {
        const candidates: number[] = [];
        for (let e = next[HEAD]; e !== NONE; e = next[e]) {
          if (e & 1) break;
          candidates.push(e >> 1);
        }
        longest = { prefix: stack.map((entry) => entry.k), stuckAt: candidates, state };
      }
      const top = stack.pop();
      if (!top) break;
      state = top.before;
      linearized.remove(top.k);
      unlift(top.k);
      event = next[2 * top.k];
    }
  }
  if (event === NONE) return { result: "ok" };
  return {
    result: "illegal",
    longestPrefix: longest!.prefix.map((k) => operations[k]),
    stuckAt: longest!.stuckAt.map((k) => operations[k]),
    stateAfterPrefix: model.stateKey(longest!.state),
  };
}

/**
 * The set of linearized operations as a bitset, with an incremental (Zobrist) hash and the
 * bounds that let a snapshot leave out the leading all-ones words and the trailing zero ones.
 */
class LinearizedSet {
  private readonly words: Uint32Array;
  /** The first word that is not all ones. */
  private firstNotFull = 0;
  /** One past the last word that is not zero. */
  private endNonZero = 0;
  hashLow = 0;
  hashHigh = 0;

  constructor(count: number) {
    this.words = new Uint32Array(Math.ceil(count / 32) + 1);
  }

  add(k: number): void {
    const w = k >>> 5;
    this.words[w] |= 1 << (k & 31);
    this.toggleHash(k);
    while (this.firstNotFull < this.words.length && this.words[this.firstNotFull] === 0xffffffff) this.firstNotFull++;
    if (w + 1 > this.endNonZero) this.endNonZero = w + 1;
  }

  remove(k: number): void {
    const w = k >>> 5;
    this.words[w] &= ~(1 << (k & 31));
    this.toggleHash(k);
    if (w < this.firstNotFull) this.firstNotFull = w;
    while (this.endNonZero > 0 && this.words[this.endNonZero - 1] === 0) this.endNonZero--;
  }

  /** [number of leading all-ones words, then the words from there to the last nonzero one]. */
  snapshot(): Uint32Array {
    const from = Math.min(this.firstNotFull, this.endNonZero);
    const out = new Uint32Array(1 + Math.max(0, this.endNonZero - from));
    out[0] = from;
    out.set(this.words.subarray(from, this.endNonZero), 1);
    return out;
  }

  private toggleHash(k: number): void {
    this.hashLow = (this.hashLow ^ mix(2 * k)) >>> 0;
    this.hashHigh = (this.hashHigh ^ mix(2 * k + 1)) >>> 0;
  }
}

/** Adds (linearized, state) to the cache; false when it was there already (that path is explored). */
function remember(cache: Map<string, Uint32Array[]>, linearized: LinearizedSet, stateKey: string): boolean {
  const key = `${linearized.hashLow},${linearized.hashHigh},${stateKey}`;
  const snapshot = linearized.snapshot();
  const seen = cache.get(key);
  if (!seen) {
    cache.set(key, [snapshot]);
    return true;
  }
  if (seen.some((other) => sameSnapshot(other, snapshot))) return false;
  seen.push(snapshot);
  return true;
}

function sameSnapshot(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A fixed 32-bit mix of an integer (the finalizer of MurmurHash3), so the hash is the same on every run. */
function mix(value: number): number {
  let h = (value + 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
