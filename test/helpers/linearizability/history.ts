// What clients did, as a linearizability check needs it: each operation with when it was called
// and when its answer came back, by the clock of whoever ran it (a simulation's clock, or
// performance.now() for real processes). An operation whose answer never came (a timeout, a lost
// connection, a node killed under it) is indeterminate: it may or may not have taken effect, so
// its return is at infinity and it has no output. One known not to have taken effect (refused
// before anything happened) is left out of the history altogether.

export interface Operation<Input = unknown, Output = unknown> {
  /** Who ran it: operations of one client never overlap. */
  clientId: string;
  kind: string;
  input: Input;
  /** What it answered; absent for an indeterminate operation until something resolves it. */
  output?: Output;
  callMs: number;
  /** Infinity when the answer never came (indeterminate). */
  returnMs: number;
}

/** An operation whose answer never came: it may have taken effect at any time after its call, or never. */
export function isIndeterminate(operation: Operation): boolean {
  return operation.returnMs === Infinity;
}

/** How an invoked operation ended; exactly one of these, once. */
export interface OperationHandle<Output> {
  /** It answered with `output` (it took effect, as `output` says). */
  ok(output: Output): void;
  /** It is known not to have taken effect (e.g. refused with a 4xx before anything was done). */
  fail(): void;
  /** Whether it took effect is not known (timed out, connection lost, its node died). */
  unknown(): void;
}

type Ending = "pending" | "ok" | "failed" | "unknown";

interface Recorded {
  operation: Operation;
  ending: Ending;
}

/**
 * Records operations as a harness runs them: `invoke` when a request is sent, then one of the
 * handle's methods when its fate is known.
 *
 * Times are made strictly increasing in the order the recorder hears of events: the harness runs
 * on one thread, so an answer recorded before a later call really came before it, even when the
 * clock (a simulated one, or a coarse one) gives both the same reading. Without this, a read
 * called in the same millisecond as a write's acknowledgement would count as concurrent with it
 * and could see the old value unnoticed.
 */
export class HistoryRecorder {
  private readonly recorded: Recorded[] = [];
  private lastMs = -Infinity;

  constructor(private readonly clock: () => number = () => performance.now()) {}

  invoke<Input, Output>(clientId: string, kind: string, input: Input): OperationHandle<Output> {
    const entry: Recorded = { operation: { clientId, kind, input, callMs: this.tick(), returnMs: Infinity }, ending: "pending" };
    this.recorded.push(entry);
    const end = (ending: Ending, output?: Output) => {
      if (entry.ending !== "pending") throw new Error(`operation ${kind} of ${clientId} ended twice (${entry.ending}, then ${ending})`);
      entry.ending = ending;
      if (ending === "ok") {
        entry.operation.output = output;
        entry.operation.returnMs = this.tick();
      }
    };
    return {
      ok: (output) => end("ok", output),
      fail: () => end("failed"),
      unknown: () => end("unknown"),
    };
  }

  /**
   * The history so far: answered and indeterminate operations in call order, failed ones left
   * out. An operation still pending counts as indeterminate (its answer has not come yet).
   * The operations are copies: resolving them does not change what was recorded.
   */
  history(): Operation[] {
    return this.recorded
      .filter((entry) => entry.ending !== "failed")
      .map((entry) => ({ ...entry.operation }));
  }

  /** How many operations ended each way (pending: not ended yet). */
  counts(): Record<Ending, number> {
    const counts: Record<Ending, number> = { pending: 0, ok: 0, failed: 0, unknown: 0 };
    for (const entry of this.recorded) counts[entry.ending]++;
    return counts;
  }

  private tick(): number {
    const now = this.clock();
    if (!Number.isFinite(now)) throw new Error(`the history's clock read ${now}`);
    this.lastMs = now > this.lastMs ? now : nextAbove(this.lastMs);
    return this.lastMs;
  }
}

const float = new Float64Array(1);
const bits = new BigInt64Array(float.buffer);

/** The smallest double above `x` (x finite), so a nudged time is distinct even at epoch-millisecond magnitudes. */
function nextAbove(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  float[0] = x;
  bits[0] += x > 0 ? 1n : -1n;
  return float[0];
}
