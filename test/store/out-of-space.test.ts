import { expect, test } from "bun:test";
import { isOutOfSpaceError } from "../../src/store/out-of-space.ts";

function withCode(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

test.each([
  ["ENOSPC from a write", withCode("ENOSPC"), true],
  ["EDQUOT from a quota", withCode("EDQUOT"), true],
  ["SQLITE_FULL by code", withCode("SQLITE_FULL"), true],
  ["SQLite's message alone", new Error("database or disk is full"), true],
  ["ENOSPC as the cause of a wrapping error", new Error("storing batch failed", { cause: withCode("ENOSPC") }), true],
  ["two levels down", new Error("a", { cause: new Error("b", { cause: withCode("SQLITE_FULL") }) }), true],
  ["inside an AggregateError", new AggregateError([new Error("x"), withCode("ENOSPC")]), true],
  ["EIO", withCode("EIO"), false],
  ["a plain error", new Error("no space for excuses"), false],
  ["not an error", "ENOSPC", false],
])("%s", (_, error, expected) => {
  expect(isOutOfSpaceError(error)).toBe(expected);
});

test("a cycle of causes ends", () => {
  const a = new Error("a");
  const b = new Error("b", { cause: a });
  (a as { cause?: unknown }).cause = b;
  expect(isOutOfSpaceError(a)).toBe(false);
});
