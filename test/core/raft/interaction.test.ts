// Every golden interaction trace in testdata/ (interaction/README.md says how to write and
// update one). Without DSYNC_UPDATE_TRACES=1 a trace whose output changed fails with a diff.

import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { decodeConfigEntry } from "../../../src/core/raft/config-change.ts";
import { Raft } from "../../../src/core/raft/raft.ts";
import { describeMismatches, runTraceFile, type TraceSetup } from "./interaction/runner.ts";

const update = process.env.DSYNC_UPDATE_TRACES === "1";
const testdata = join(import.meta.dir, "testdata");
const files = readdirSync(testdata).filter((name) => name.endsWith(".txt")).sort();

const setup: TraceSetup = {
  factory: (config, persisted) => new Raft(config, persisted),
  decodeConfigEntry,
};

test("there are traces to run", () => {
  expect(files.length).toBeGreaterThan(0);
});

for (const file of files) {
  test(file, () => {
    const result = runTraceFile(join(testdata, file), setup, update);
    if (result.safetyViolations.length > 0) throw new Error(result.safetyViolations.join("\n"));
    if (update) {
      if (result.updated) console.log(`rewrote ${file} (${result.mismatches.length} block(s) changed)`);
      return;
    }
    if (result.mismatches.length > 0) throw new Error(describeMismatches(file, result.mismatches));
  });
}
