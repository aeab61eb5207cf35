// The CLI's last word on a failure: a node's or the system's sentence as it is, a JavaScript
// error (a bug) as an internal error, never its raw text.
import { expect, test } from "bun:test";
import { describeError, EXIT_FAILURE, EXIT_USAGE } from "../../cli/errors.ts";
import { RemoteError } from "../../src/client/remote.ts";
import { UsageError } from "../../src/client/sync-target.ts";

test("a TypeError or ReferenceError is an internal error, its text left out", () => {
  for (const error of [new TypeError("null is not an object (evaluating 'detail.error')"), new ReferenceError("x is not defined")]) {
    const { message, exitCode } = describeError(error);
    expect(exitCode).toBe(EXIT_FAILURE);
    expect(message).toBe(`internal error (${error.name}): a bug in dsync, not a problem with the node or your files; DSYNC_DEBUG=1 shows where`);
    expect(message).not.toContain("is not");
  }
});

test("the node's words, the system's and usage errors are said as they are", () => {
  expect(describeError(new RemoteError("rejected", "the node at http://n rejected the request (400): bad name"))).toEqual({
    message: "the node at http://n rejected the request (400): bad name",
    exitCode: EXIT_FAILURE,
  });
  expect(describeError(new UsageError("--timeout takes a number"))).toEqual({ message: "--timeout takes a number", exitCode: EXIT_USAGE });
  // A system error that Bun raises as a TypeError keeps its words: it names a file, not a bug.
  const system = Object.assign(new TypeError("ENOENT: no such file or directory, open 'x'"), { code: "ENOENT" });
  expect(describeError(system).message).toBe("ENOENT: no such file or directory, open 'x'");
});
