// The checker on small histories whose verdict is known by hand, on large generated ones (where
// the cache is what keeps the search short), and with a budget too small to decide.
import { describe, expect, test } from "bun:test";
import { assertLinearizable, checkLinearizable, describeResult, type Model } from "./checker.ts";
import type { Operation } from "./history.ts";
import { headRegisterModel, PUSH, READ, type Head, type HeadOperation } from "./head-register.ts";
import { createPrng } from "../prng.ts";

const FOLDER = "notes";

function read(clientId: string, callMs: number, returnMs: number, head: Head | undefined, folder = FOLDER): HeadOperation {
  return { clientId, kind: READ, input: { folder }, ...(head === undefined ? {} : { output: head }), callMs, returnMs };
}

function push(clientId: string, callMs: number, returnMs: number, before: Head, after: string, folder = FOLDER, message = `${clientId}-${callMs}`): HeadOperation {
  return { clientId, kind: PUSH, input: { folder, message }, output: { before, after }, callMs, returnMs };
}

function verdictOf(operations: HeadOperation[]) {
  return checkLinearizable(headRegisterModel, operations).result;
}

describe("known linearizable", () => {
  test("an empty history", () => {
    expect(checkLinearizable(headRegisterModel, [])).toEqual({ result: "ok" });
  });

  test("pushes one after another, each read seeing the latest", () => {
    expect(verdictOf([push("a", 0, 10, null, "v1"), read("b", 11, 12, "v1"), push("b", 13, 20, "v1", "v2"), read("a", 21, 22, "v2")])).toBe("ok");
  });

  test("a read concurrent with a push may see either head", () => {
    for (const seen of [null, "v1"]) expect(verdictOf([push("a", 0, 10, null, "v1"), read("b", 5, 15, seen)])).toBe("ok");
  });

  test("a push that merged onto a newer head is legal from that head, whatever its parent was", () => {
    // b pushed on v1 while a moved the head to v2; the node merged b's push onto v2.
    expect(verdictOf([push("a", 0, 5, null, "v1"), push("a", 6, 10, "v1", "v2"), push("b", 7, 20, "v2", "m3")])).toBe("ok");
  });

  test("overlapping operations fine in one order only, found by backing up", () => {
    // The push is called first, so the search tries it first; after it, the read of no head
    // is impossible, and the read's return forces the search back to put the read first.
    const history = [push("a", 0, 100, null, "v1"), read("b", 1, 50, null), read("c", 60, 70, "v1")];
    expect(verdictOf(history)).toBe("ok");
    // Only if the read returned after the push was called is there such an order.
    expect(verdictOf([push("a", 10, 100, null, "v1"), read("b", 1, 5, "v1")])).toBe("illegal");
  });

  test("concurrent pushes linearize in the one order their before/after chain allows", () => {
    // Called in the opposite order of the chain: the search must try the later-called one first.
    const history = [push("a", 0, 100, "v2", "v3"), push("b", 1, 100, "v1", "v2"), push("c", 2, 100, null, "v1"), read("d", 101, 102, "v3")];
    expect(verdictOf(history)).toBe("ok");
  });

  test("an indeterminate push resolved from the final history explains a later read", () => {
    const history: HeadOperation[] = [
      push("a", 0, 10, null, "v1"),
      { clientId: "b", kind: PUSH, input: { folder: FOLDER, message: "b-20" }, output: { before: "v1", after: "v2" }, callMs: 20, returnMs: Infinity },
      read("c", 50, 60, "v2"),
    ];
    expect(verdictOf(history)).toBe("ok");
    // Without it (as if it never took effect) the read has seen a head no one wrote.
    expect(verdictOf([history[0], history[2]])).toBe("illegal");
  });

  test("an indeterminate operation takes effect no earlier than its call", () => {
    const history: HeadOperation[] = [
      push("a", 0, 10, null, "v1"),
      read("c", 15, 18, "v2"),
      { clientId: "b", kind: PUSH, input: { folder: FOLDER, message: "b-20" }, output: { before: "v1", after: "v2" }, callMs: 20, returnMs: Infinity },
    ];
    expect(verdictOf(history)).toBe("illegal");
  });

  test("an indeterminate read with no answer constrains nothing", () => {
    expect(verdictOf([push("a", 0, 10, null, "v1"), read("b", 1, Infinity, undefined), read("c", 20, 30, "v1")])).toBe("ok");
  });

  test("operations at the same instant count as concurrent", () => {
    expect(verdictOf([push("a", 0, 10, null, "v1"), read("b", 10, 12, null)])).toBe("ok");
  });
});

describe("known not linearizable", () => {
  test("a stale read after an acknowledged push", () => {
    const history = [push("a", 0, 10, null, "v1"), push("a", 11, 20, "v1", "v2"), read("b", 25, 30, "v1")];
    const verdict = checkLinearizable(headRegisterModel, history);
    expect(verdict.result).toBe("illegal");
    if (verdict.result !== "illegal") return;
    expect(verdict.partition).toBe(FOLDER);
    expect(verdict.longestPrefix).toEqual([history[0], history[1]]);
    expect(verdict.stuckAt).toEqual([history[2]]);
    expect(verdict.stateAfterPrefix).toBe("v2");
    expect(describeResult(headRegisterModel, verdict)).toContain("read notes -> v1");
  });

  test("two concurrent pushes both acknowledged from the same head", () => {
    const history = [push("a", 0, 10, null, "v1"), push("b", 20, 40, "v1", "v2"), push("c", 25, 45, "v1", "v3")];
    const verdict = checkLinearizable(headRegisterModel, history);
    expect(verdict.result).toBe("illegal");
    if (verdict.result !== "illegal") return;
    expect(verdict.longestPrefix.map((o) => o.clientId)).toEqual(["a", "b"]);
    expect(verdict.stuckAt.map((o) => o.clientId)).toEqual(["c"]);
  });

  test("a read that sees a head, then a later read the older one", () => {
    // Both reads overlap the push, each alone would be fine; in sequence they go back in time.
    const history = [push("a", 0, 5, null, "v1"), push("a", 10, 100, "v1", "v2"), read("b", 20, 30, "v2"), read("c", 40, 50, "v1")];
    expect(verdictOf(history)).toBe("illegal");
    // Seen in the other order, old then new, the same reads are fine.
    expect(verdictOf([history[0], history[1], read("b", 20, 30, "v1"), read("c", 40, 50, "v2")])).toBe("ok");
  });

  test("a read of a head that no push made", () => {
    expect(verdictOf([push("a", 0, 10, null, "v1"), read("b", 20, 30, "v9")])).toBe("illegal");
  });

  test("a head that moved back: an acknowledged push lost", () => {
    expect(verdictOf([push("a", 0, 10, null, "v1"), push("a", 20, 30, "v1", "v2"), push("b", 40, 50, "v1", "v3")])).toBe("illegal");
  });

  test("an unresolved indeterminate push is refused, not guessed", () => {
    const history: HeadOperation[] = [push("a", 0, 10, null, "v1"), { clientId: "b", kind: PUSH, input: { folder: FOLDER, message: "m" }, callMs: 20, returnMs: Infinity }];
    expect(() => checkLinearizable(headRegisterModel, history)).toThrow(/resolveIndeterminatePushes/);
  });

  test("an operation that returns before its call, or is called at no time, is refused", () => {
    expect(() => checkLinearizable(headRegisterModel, [push("a", 10, 5, null, "v1")])).toThrow(/return no earlier/);
    expect(() => checkLinearizable(headRegisterModel, [read("a", Number.NaN, 5, null)])).toThrow(/finite time/);
  });

  test("assertLinearizable throws the account", () => {
    expect(() => assertLinearizable(headRegisterModel, [push("a", 0, 10, null, "v1"), read("b", 20, 30, null)])).toThrow(/not linearizable \(partition notes\): 1 operations linearize/);
  });
});

describe("partitions", () => {
  test("folders are checked apart: a violation in one is named, the other does not hide it", () => {
    const history = [push("a", 0, 10, null, "x1", "alpha"), push("b", 0, 10, null, "y1", "beta"), read("c", 20, 30, null, "beta"), read("c", 31, 40, "x1", "alpha")];
    const verdict = checkLinearizable(headRegisterModel, history);
    expect(verdict.result).toBe("illegal");
    if (verdict.result === "illegal") expect(verdict.partition).toBe("beta");
    // Without partitions, both pushes from "no head" would be a violation by themselves.
    const unpartitioned = { ...headRegisterModel, partitionKey: undefined };
    expect(checkLinearizable(unpartitioned, history.slice(0, 2)).result).toBe("illegal");
    expect(checkLinearizable(headRegisterModel, history.slice(0, 2)).result).toBe("ok");
  });
});

describe("another model", () => {
  // A plain read/write register, to show the search does not depend on the head register.
  const register: Model<number, { value?: number }, number | undefined> = {
    init: () => 0,
    step: (state, input, output, kind) => (kind === "write" ? { legal: true, state: input.value! } : { legal: output === undefined || output === state, state }),
    stateKey: (state) => String(state),
  };
  const op = (clientId: string, kind: string, value: number, callMs: number, returnMs: number): Operation<{ value?: number }, number | undefined> =>
    kind === "write" ? { clientId, kind, input: { value }, callMs, returnMs } : { clientId, kind, input: {}, output: value, callMs, returnMs };

  test("a write that may not have happened may explain a read, or not happen at all", () => {
    // An indeterminate write without output: optional, anywhere after its call.
    expect(checkLinearizable(register, [op("a", "write", 1, 0, Infinity), op("b", "read", 1, 10, 20)]).result).toBe("ok");
    expect(checkLinearizable(register, [op("a", "write", 1, 0, Infinity), op("b", "read", 0, 10, 20)]).result).toBe("ok");
    expect(checkLinearizable(register, [op("a", "write", 1, 0, 5), op("b", "read", 0, 10, 20)]).result).toBe("illegal");
  });
});

/**
 * A linearizable history of `count` operations on one folder by `clients` clients: a real
 * register under a random schedule in which each operation takes effect at some moment between
 * its call and its return, so up to `clients` operations overlap.
 */
function generateHistory(seed: number, count: number, clients: number, pushShare = 0.3): HeadOperation[] {
  const random = createPrng(seed);
  let head: Head = null;
  let versions = 0;
  let now = 0;
  const history: HeadOperation[] = [];
  type Client = { phase: "idle" | "called" | "applied"; op?: HeadOperation };
  const state: Client[] = Array.from({ length: clients }, () => ({ phase: "idle" }));
  let started = 0;
  let finished = 0;
  while (finished < count) {
    const client = state[random.nextInt(clients)];
    const clientId = `c${state.indexOf(client)}`;
    now += 1;
    if (client.phase === "idle") {
      if (started === count) continue;
      started++;
      const isPush = random.nextInt(1000) < pushShare * 1000;
      client.op = isPush
        ? { clientId, kind: PUSH, input: { folder: FOLDER, message: `op-${started}` }, callMs: now, returnMs: Infinity }
        : { clientId, kind: READ, input: { folder: FOLDER }, callMs: now, returnMs: Infinity };
      client.phase = "called";
    } else if (client.phase === "called") {
      if (client.op!.kind === PUSH) {
        const after = `v${++versions}`;
        client.op!.output = { before: head, after };
        head = after;
      } else client.op!.output = head;
      client.phase = "applied";
    } else {
      client.op!.returnMs = now;
      history.push(client.op!);
      finished++;
      client.phase = "idle";
    }
  }
  return history;
}

describe("large histories", () => {
  test("10 000 operations by 8 concurrent clients, linearizable, decided at once", () => {
    const history = generateHistory(1, 10_000, 8);
    const started = performance.now();
    const verdict = checkLinearizable(headRegisterModel, history);
    const elapsedMs = performance.now() - started;
    expect(verdict).toEqual({ result: "ok" });
    expect(elapsedMs).toBeLessThan(1500);
  });

  test("10 000 operations with a stale read at the very end: every order explored, the cache keeps it short", () => {
    // The last read sees the first head: to be sure no order explains it, the search must
    // back up through the whole history, where the overlapping reads can be ordered in
    // exponentially many ways. Each (linearized set, head) pair is explored once.
    const history = generateHistory(2, 10_000, 6);
    const end = Math.max(...history.map((o) => o.returnMs));
    const first = history.find((o) => o.kind === PUSH)!.output as { after: string };
    history.push(read("late", end + 1, end + 2, first.after));
    const started = performance.now();
    const verdict = checkLinearizable(headRegisterModel, history);
    const elapsedMs = performance.now() - started;
    expect(verdict.result).toBe("illegal");
    if (verdict.result === "illegal") expect(verdict.stuckAt.map((o) => o.clientId)).toEqual(["late"]);
    expect(elapsedMs).toBeLessThan(2000);
  });

  test("without the cache the same search does not finish in a budget the cached one needs a fraction of", () => {
    const history = generateHistory(3, 2_000, 6);
    const end = Math.max(...history.map((o) => o.returnMs));
    history.push(read("late", end + 1, end + 2, "v1"));
    let cachedSteps = 0;
    const cached = checkLinearizable(headRegisterModel, history, { maxSteps: 10_000_000 });
    expect(cached.result).toBe("illegal");
    // How many steps the cached search took: the smallest budget that still decides.
    for (let budget = 1_000; ; budget *= 2) {
      if (checkLinearizable(headRegisterModel, history, { maxSteps: budget }).result === "illegal") {
        cachedSteps = budget;
        break;
      }
    }
    const uncached = checkLinearizable(headRegisterModel, history, { maxSteps: cachedSteps * 20, memoize: false });
    expect(uncached.result).toBe("unknown");
  });

  test("a budget too small to decide gives unknown, not a verdict", () => {
    const history = generateHistory(4, 1_000, 4);
    const verdict = checkLinearizable(headRegisterModel, history, { maxSteps: 100 });
    expect(verdict).toEqual({ result: "unknown", steps: 100 });
    expect(describeResult(headRegisterModel, verdict, history.length)).toContain("budget of 100 steps on 1000 operations");
    expect(checkLinearizable(headRegisterModel, history).result).toBe("ok");
  });

  test("the verdict and the report are the same on every run", () => {
    const history = generateHistory(5, 500, 5);
    history.push(read("late", 1e9, 1e9 + 1, "v2"));
    const first = checkLinearizable(headRegisterModel, history);
    expect(first.result).toBe("illegal");
    expect(checkLinearizable(headRegisterModel, [...history].reverse())).toEqual(first);
  });
});

describe("against a brute-force search", () => {
  // Every order of every small random history tried by enumeration, with the definition taken
  // literally: an order of the operations that must take effect (and any of those that may),
  // where an operation that returned before another was called comes first, and the model
  // accepts each in turn. The checker must agree on every one.
  const register: Model<number, { value?: number }, number | undefined> = {
    init: () => 0,
    step: (state, input, output, kind) => (kind === "write" ? { legal: true, state: input.value! } : { legal: output === undefined || output === state, state }),
    stateKey: (state) => String(state),
  };

  function bruteForce<State, Input, Output>(model: Model<State, Input, Output>, operations: Operation<Input, Output>[]): boolean {
    const required = operations.map((o) => o.returnMs !== Infinity || o.output !== undefined);
    const done = operations.map(() => false);
    const search = (state: State): boolean => {
      if (operations.every((_, k) => done[k] || !required[k])) return true;
      for (let k = 0; k < operations.length; k++) {
        if (done[k]) continue;
        // Not eligible while a pending operation that must happen returned before this one was called.
        if (operations.some((p, j) => j !== k && !done[j] && required[j] && p.returnMs < operations[k].callMs)) continue;
        const after = model.step(state, operations[k].input, operations[k].output, operations[k].kind);
        if (!after.legal) continue;
        done[k] = true;
        const found = search(after.state);
        done[k] = false;
        if (found) return true;
      }
      return false;
    };
    return search(model.init());
  }

  test("a read/write register: 3000 random histories of up to 7 operations, some never answered", () => {
    const random = createPrng(7);
    let illegal = 0;
    for (let run = 0; run < 3000; run++) {
      const count = 1 + random.nextInt(7);
      const operations: Operation<{ value?: number }, number | undefined>[] = [];
      for (let k = 0; k < count; k++) {
        const callMs = random.nextInt(12);
        const returnMs = random.nextInt(6) === 0 ? Infinity : callMs + random.nextInt(6);
        if (random.nextInt(2) === 0) operations.push({ clientId: `c${k}`, kind: "write", input: { value: 1 + random.nextInt(2) }, callMs, returnMs });
        else operations.push({ clientId: `c${k}`, kind: "read", input: {}, ...(returnMs === Infinity ? {} : { output: random.nextInt(3) }), callMs, returnMs });
      }
      const expected = bruteForce(register, operations);
      const verdict = checkLinearizable(register, operations).result;
      if (verdict !== (expected ? "ok" : "illegal")) throw new Error(`checker says ${verdict}, enumeration ${expected ? "ok" : "illegal"}: ${JSON.stringify(operations)}`);
      if (!expected) illegal++;
    }
    // Both verdicts are well represented, so the agreement means something.
    expect(illegal).toBeGreaterThan(300);
    expect(illegal).toBeLessThan(2700);
  });

  test("the head register: 3000 random histories of up to 7 pushes and reads, some never answered, some corrupted", () => {
    const random = createPrng(8);
    const heads: Head[] = [null, "v1", "v2", "v3"];
    let illegal = 0;
    for (let run = 0; run < 3000; run++) {
      // A real execution by three clients, then some answers lost (a push's resolved output kept,
      // a read's dropped) and, half the time, one answer changed.
      const operations = generateHistory(1000 + run, 1 + random.nextInt(7), 3, 0.5).map((o) => ({ ...o }));
      for (const o of operations) {
        if (random.nextInt(5) !== 0) continue;
        o.returnMs = Infinity;
        if (o.kind === READ) delete o.output;
      }
      if (random.nextInt(2) === 0) {
        const o = operations[random.nextInt(operations.length)];
        if (o.kind === READ && o.output !== undefined) o.output = heads[random.nextInt(4)];
        else if (o.kind === PUSH) o.output = { before: heads[random.nextInt(4)], after: (o.output as { after: string }).after };
      }
      const expected = bruteForce(headRegisterModel, operations);
      const verdict = checkLinearizable(headRegisterModel, operations).result;
      if (verdict !== (expected ? "ok" : "illegal")) throw new Error(`checker says ${verdict}, enumeration ${expected ? "ok" : "illegal"}: ${JSON.stringify(operations)}`);
      if (!expected) illegal++;
    }
    expect(illegal).toBeGreaterThan(300);
    expect(illegal).toBeLessThan(2700);
  });
});
