// Runs one trace file: a fresh environment, every command in order, each output compared with
// the recorded one (or recorded, with DSYNC_UPDATE_TRACES=1).

import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { runCommand, type DecodedConfigEntry } from "./commands.ts";
import {
  describeMismatches,
  normalizeOutput,
  parseTrace,
  renderTrace,
  type TraceMismatch,
} from "./datadriven.ts";
import { describeError, InteractionEnv, TraceCommandError, type RaftFactory } from "./environment.ts";
import { createPrinter, memberName } from "./print.ts";

export interface TraceSetup {
  factory: RaftFactory;
  /** The config entry codec's decoder (config-change.ts). */
  decodeConfigEntry: (data: Uint8Array) => DecodedConfigEntry;
}

export function createEnvironment(setup: TraceSetup): InteractionEnv {
  const printConfig = (data: Uint8Array): string => {
    try {
      const { change, voters } = setup.decodeConfigEntry(data);
      return `${change.type} ${memberName(change.node)} voters=[${voters.map(memberName).join(",")}]`;
    } catch (error) {
      return `undecodable (${describeError(error)}) 0x${Buffer.from(data).toString("hex")}`;
    }
  };
  return new InteractionEnv(setup.factory, createPrinter(printConfig));
}

export interface TraceResult {
  file: string;
  mismatches: TraceMismatch[];
  /** Raft safety properties broken during the run (safety.ts): a failure whatever was recorded. */
  safetyViolations: string[];
  /** Set when the file was rewritten with the actual outputs. */
  updated: boolean;
}

export function runTraceFile(path: string, setup: TraceSetup, update: boolean): TraceResult {
  const file = basename(path);
  const text = readFileSync(path, "utf8");
  const trace = parseTrace(file, text);
  const env = createEnvironment(setup);
  const outputs: string[][] = [];
  const mismatches: TraceMismatch[] = [];
  const safetyViolations: string[] = [];
  for (const block of trace.blocks) {
    let printed: string[];
    try {
      printed = runCommand(env, block.command);
    } catch (error) {
      // A misused command is the trace's mistake: stop at once rather than record it.
      if (error instanceof TraceCommandError) throw new Error(`${file}:${block.line}: ${block.command}: ${error.message}`);
      // Anything else was thrown by the state machine: a behaviour, recorded and compared.
      printed = [`error: ${describeError(error)}`];
    }
    const violations = env.safetyViolations();
    safetyViolations.push(...violations.map((v) => `${file}:${block.line}: ${block.command}: ${v}`));
    const actual = normalizeOutput([...printed, ...violations].join("\n"));
    outputs.push(actual);
    if (actual.join("\n") !== block.expected.join("\n")) mismatches.push({ block, actual });
  }
  if (update) {
    const rendered = renderTrace(trace, outputs);
    if (rendered !== text) writeFileSync(path, rendered);
    return { file, mismatches, safetyViolations, updated: rendered !== text };
  }
  return { file, mismatches, safetyViolations, updated: false };
}

export { describeMismatches };
