// The safety checks the traces run after every command: each property flags its violation.

import { describe, expect, test } from "bun:test";
import type { Entry } from "../../../../src/core/raft/types.ts";
import { SafetyChecks } from "./safety.ts";

const entry = (term: number, index: number, data = ""): Entry => ({
  term,
  index,
  kind: "normal",
  data: new TextEncoder().encode(data),
});

describe("trace safety checks", () => {
  test("one leader per term", () => {
    const checks = new SafetyChecks();
    checks.leaderSeen("1", 1);
    checks.leaderSeen("1", 1);
    checks.leaderSeen("2", 2);
    expect(checks.take()).toEqual([]);
    checks.leaderSeen("3", 2);
    expect(checks.take()).toEqual(["SAFETY VIOLATION: two leaders in term 2: 2 and 3"]);
  });

  test("durable term and commit go forward, and a vote is kept within its term", () => {
    const checks = new SafetyChecks();
    checks.persisted("1", { term: 1, vote: "2", commit: 3 }, { term: 2, vote: null, commit: 3 });
    expect(checks.take()).toEqual([]);
    checks.persisted("1", { term: 2, vote: "2", commit: 3 }, { term: 1, vote: "2", commit: 2 });
    expect(checks.take()).toHaveLength(2);
    checks.persisted("1", { term: 2, vote: "2", commit: 3 }, { term: 2, vote: "3", commit: 3 });
    expect(checks.take()).toEqual(["SAFETY VIOLATION: 1 changed its vote in term 2 from 2 to 3"]);
  });

  test("entries are applied in order, and alike on every member", () => {
    const checks = new SafetyChecks();
    checks.entryApplied("1", 0, entry(1, 1));
    checks.entryApplied("2", 0, entry(1, 1));
    expect(checks.take()).toEqual([]);
    checks.entryApplied("1", 1, entry(1, 3));
    expect(checks.take()).toEqual(["SAFETY VIOLATION: 1 applied index 3 after 1 (not the next one)"]);
    checks.entryApplied("2", 1, entry(2, 2, "y"));
    checks.entryApplied("3", 1, entry(1, 2, "x"));
    expect(checks.take()).toEqual([
      "SAFETY VIOLATION: 3 applied 1/2 normal 78 at index 2, where 2 applied 2/2 normal 79",
    ]);
  });
});
