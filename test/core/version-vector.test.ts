// Version vectors: ordering, joins and the counts status reports, as tables.
import { describe, expect, test } from "bun:test";
import {
  compareVectors,
  counterOf,
  coversDot,
  joinVectors,
  vectorFromRecord,
  vectorToRecord,
  withCounter,
  writesMissing,
  type VersionVector,
} from "../../src/core/version-vector.ts";

const v = (record: Record<string, number>): VersionVector => vectorFromRecord(record);

describe("compareVectors", () => {
  const cases: [string, Record<string, number>, Record<string, number>, string][] = [
    ["both empty", {}, {}, "equal"],
    ["same counters", { a: 2, b: 1 }, { a: 2, b: 1 }, "equal"],
    ["empty before anything", {}, { a: 1 }, "before"],
    ["one counter behind", { a: 1, b: 1 }, { a: 2, b: 1 }, "before"],
    ["a node the other lacks", { a: 1, c: 1 }, { a: 1 }, "after"],
    ["each ahead somewhere", { a: 2, b: 1 }, { a: 1, b: 2 }, "concurrent"],
    ["disjoint nodes", { a: 1 }, { b: 1 }, "concurrent"],
  ];
  for (const [name, a, b, want] of cases) {
    test(name, () => {
      expect(compareVectors(v(a), v(b))).toBe(want as never);
      const mirrored = want === "before" ? "after" : want === "after" ? "before" : want;
      expect(compareVectors(v(b), v(a))).toBe(mirrored as never);
    });
  }
});

describe("joins, dots and counts", () => {
  test("join is the pointwise maximum, sorted by node", () => {
    expect(joinVectors(v({ b: 1, a: 3 }), v({ a: 2, c: 5 }))).toEqual([
      { node: "a", counter: 3 },
      { node: "b", counter: 1 },
      { node: "c", counter: 5 },
    ]);
    expect(joinVectors()).toEqual([]);
  });

  test("withCounter adds a dot and refuses to go back", () => {
    expect(counterOf(withCounter(v({ a: 1 }), "b", 1), "b")).toBe(1);
    expect(() => withCounter(v({ a: 3 }), "a", 2)).toThrow();
  });

  test("coversDot and writesMissing", () => {
    expect(coversDot(v({ a: 3 }), "a", 3)).toBe(true);
    expect(coversDot(v({ a: 3 }), "a", 4)).toBe(false);
    expect(coversDot(v({}), "a", 1)).toBe(false);
    expect(writesMissing(v({ a: 1, b: 4 }), v({ a: 3, b: 2, c: 1 }))).toBe(3);
    expect(writesMissing(v({ a: 3 }), v({ a: 3 }))).toBe(0);
  });

  test("the JSON form round-trips and rejects nonsense", () => {
    expect(vectorToRecord(v({ b: 2, a: 1 }))).toEqual({ a: 1, b: 2 });
    for (const bad of [null, [], { a: 0 }, { a: -1 }, { a: 1.5 }, { a: "1" }, { "": 1 }, "x"]) {
      expect(() => vectorFromRecord(bad)).toThrow();
    }
  });
});
