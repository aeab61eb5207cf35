import { describe, expect, test } from "bun:test";
import { HistoryRecorder, isIndeterminate } from "./history.ts";

describe("HistoryRecorder", () => {
  test("answered, failed and indeterminate operations, by the injected clock", () => {
    let now = 100;
    const recorder = new HistoryRecorder(() => now);
    const answered = recorder.invoke<{ folder: string }, string | null>("a", "read", { folder: "f" });
    now = 105;
    const refused = recorder.invoke("b", "push", { folder: "f", message: "op-1" });
    const lost = recorder.invoke("c", "push", { folder: "f", message: "op-2" });
    now = 110;
    answered.ok("ab12");
    refused.fail();
    lost.unknown();
    const history = recorder.history();
    expect(history).toEqual([
      { clientId: "a", kind: "read", input: { folder: "f" }, output: "ab12", callMs: 100, returnMs: 110 },
      { clientId: "c", kind: "push", input: { folder: "f", message: "op-2" }, callMs: history[1].callMs, returnMs: Infinity },
    ]);
    expect(history[1].callMs).toBeGreaterThan(105);
    expect(history[1].output).toBeUndefined();
    expect(isIndeterminate(history[1])).toBe(true);
    expect(isIndeterminate(history[0])).toBe(false);
    expect(recorder.counts()).toEqual({ pending: 0, ok: 1, failed: 1, unknown: 1 });
  });

  test("events in the same clock reading stay in the order they were recorded", () => {
    // A simulated clock that does not move between an acknowledgement and the next call: the
    // call must still come after the return, or a stale read there would pass as concurrent.
    const epochMs = 1_764_600_000_000;
    const recorder = new HistoryRecorder(() => epochMs);
    const first = recorder.invoke("a", "push", {});
    first.ok({ before: null, after: "v1" });
    recorder.invoke("b", "read", {}).ok(null);
    const [push, read] = recorder.history();
    expect(push.callMs).toBe(epochMs);
    expect(push.returnMs).toBeGreaterThan(push.callMs);
    expect(read.callMs).toBeGreaterThan(push.returnMs);
    expect(read.returnMs).toBeGreaterThan(read.callMs);
  });

  test("a clock that goes back does not put events out of order", () => {
    const readings = [50, 40, 60];
    const recorder = new HistoryRecorder(() => readings.shift()!);
    const handle = recorder.invoke("a", "read", {});
    handle.ok(null);
    recorder.invoke("a", "read", {}).unknown();
    const [first, second] = recorder.history();
    expect(first.returnMs).toBeGreaterThan(first.callMs);
    expect(second.callMs).toBe(60);
  });

  test("an operation still pending when the history is taken is indeterminate", () => {
    const recorder = new HistoryRecorder(() => 1);
    const handle = recorder.invoke("a", "push", { message: "m" });
    expect(recorder.history()[0].returnMs).toBe(Infinity);
    expect(recorder.counts().pending).toBe(1);
    // The history handed out is a copy: the answer arriving later does not rewrite it.
    const taken = recorder.history();
    handle.ok({ before: null, after: "v1" });
    expect(taken[0].output).toBeUndefined();
    expect(recorder.history()[0].output).toEqual({ before: null, after: "v1" });
  });

  test("an operation ends once", () => {
    const recorder = new HistoryRecorder(() => 1);
    const handle = recorder.invoke("a", "read", {});
    handle.unknown();
    expect(() => handle.ok(null)).toThrow(/ended twice/);
  });

  test("a clock that reads something other than a finite number is refused", () => {
    const recorder = new HistoryRecorder(() => Number.NaN);
    expect(() => recorder.invoke("a", "read", {})).toThrow(/clock read NaN/);
  });
});
