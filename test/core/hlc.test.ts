// Hybrid logical clock: monotonic whatever the wall clock does, and ordered after what it saw.
import { expect, test } from "bun:test";
import { hlcCompare, hlcReceive, hlcTick, HLC_ZERO } from "../../src/core/hlc.ts";

test.each([
  ["wall clock moves on", { wallMs: 100, counter: 3 }, 200, { wallMs: 200, counter: 0 }],
  ["same millisecond", { wallMs: 100, counter: 3 }, 100, { wallMs: 100, counter: 4 }],
  ["wall clock went back", { wallMs: 100, counter: 3 }, 50, { wallMs: 100, counter: 4 }],
])("tick: %s", (_name, last, nowMs, expected) => {
  expect(hlcTick(last, nowMs)).toEqual(expected);
  expect(hlcCompare(hlcTick(last, nowMs), last)).toBeGreaterThan(0);
});

test.each([
  ["local wall time is ahead", { wallMs: 100, counter: 1 }, { wallMs: 90, counter: 7 }, 300, { wallMs: 300, counter: 0 }],
  ["remote is ahead of both", { wallMs: 100, counter: 1 }, { wallMs: 500, counter: 7 }, 300, { wallMs: 500, counter: 8 }],
  ["last is ahead of both", { wallMs: 600, counter: 2 }, { wallMs: 500, counter: 7 }, 300, { wallMs: 600, counter: 3 }],
  ["all three equal", { wallMs: 500, counter: 2 }, { wallMs: 500, counter: 7 }, 500, { wallMs: 500, counter: 8 }],
])("receive: %s", (_name, last, remote, nowMs, expected) => {
  const next = hlcReceive(last, remote, nowMs);
  expect(next).toEqual(expected);
  expect(hlcCompare(next, last)).toBeGreaterThan(0);
  expect(hlcCompare(next, remote)).toBeGreaterThan(0);
});

test("compare orders by wall time, then counter", () => {
  expect(hlcCompare(HLC_ZERO, { wallMs: 0, counter: 1 })).toBeLessThan(0);
  expect(hlcCompare({ wallMs: 2, counter: 0 }, { wallMs: 1, counter: 9 })).toBeGreaterThan(0);
  expect(hlcCompare({ wallMs: 2, counter: 5 }, { wallMs: 2, counter: 5 })).toBe(0);
});
