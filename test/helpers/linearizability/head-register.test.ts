import { describe, expect, test } from "bun:test";
import { checkLinearizable } from "./checker.ts";
import { HistoryRecorder } from "./history.ts";
import {
  headRegisterModel,
  lostAcknowledgedPushes,
  PUSH,
  pushOutputOfCommit,
  pushOutputsFromVersions,
  READ,
  resolveIndeterminatePushes,
  type HeadOperation,
  type PushOutput,
  type VersionSummary,
} from "./head-register.ts";

const FOLDER = "notes";

// A folder's final history: op-1 on nothing, op-2 on op-1, op-3 pushed on op-1 (stale) and
// merged onto op-2 by m4.
const VERSIONS: VersionSummary[] = [
  { id: "v1", parents: [], message: "op-1" },
  { id: "v2", parents: ["v1"], message: "op-2" },
  { id: "v3", parents: ["v1"], message: "op-3" },
  { id: "m4", parents: ["v2", "v3"], message: "merge v3 into v2" },
];

describe("pushOutputsFromVersions", () => {
  const lookup = pushOutputsFromVersions(VERSIONS);

  test("a push that moved the head directly, the first one, and one merged onto a newer head", () => {
    expect(lookup("op-1")).toEqual({ before: null, after: "v1" });
    expect(lookup("op-2")).toEqual({ before: "v1", after: "v2" });
    expect(lookup("op-3")).toEqual({ before: "v2", after: "m4" });
    expect(lookup("op-9")).toBeNull();
  });

  test("two versions with one message cannot tell which push landed", () => {
    expect(() => pushOutputsFromVersions([...VERSIONS, { id: "v5", parents: ["m4"], message: "op-2" }])).toThrow(/two versions carry the message "op-2"/);
  });
});

test("a commit's answer gives the head it moved from: its parent, or the head it merged onto", () => {
  expect(pushOutputOfCommit({ version: "v2", parent: "v1", mergedWith: null })).toEqual({ before: "v1", after: "v2" });
  expect(pushOutputOfCommit({ version: "m4", parent: "v1", mergedWith: "v2" })).toEqual({ before: "v2", after: "m4" });
  expect(pushOutputOfCommit({ version: "v1", parent: null, mergedWith: null })).toEqual({ before: null, after: "v1" });
});

describe("resolveIndeterminatePushes", () => {
  const versions = pushOutputsFromVersions(VERSIONS);
  const lookup = (folder: string, message: string): PushOutput | null => (folder === FOLDER ? versions(message) : null);

  function recorded(): HeadOperation[] {
    let now = 0;
    const recorder = new HistoryRecorder(() => (now += 10));
    const p1 = recorder.invoke<HeadOperation["input"], PushOutput>("a", PUSH, { folder: FOLDER, message: "op-1" });
    p1.ok({ before: null, after: "v1" });
    // Timed out, but it landed: the final history has it.
    const p2 = recorder.invoke("b", PUSH, { folder: FOLDER, message: "op-2" });
    // Timed out and never landed.
    const lost = recorder.invoke("c", PUSH, { folder: FOLDER, message: "op-7" });
    const unanswered = recorder.invoke("d", READ, { folder: FOLDER });
    p2.unknown();
    lost.unknown();
    unanswered.unknown();
    recorder.invoke<HeadOperation["input"], string | null>("e", READ, { folder: FOLDER }).ok("v2");
    return recorder.history() as HeadOperation[];
  }

  test("fills in what a landed push did, keeps its return at infinity, drops the ones that never landed", () => {
    const history = recorded();
    const resolved = resolveIndeterminatePushes(history, lookup);
    expect(resolved.map((o) => o.clientId)).toEqual(["a", "b", "e"]);
    expect(resolved[1].output).toEqual({ before: "v1", after: "v2" });
    expect(resolved[1].returnMs).toBe(Infinity);
    expect(checkLinearizable(headRegisterModel, resolved)).toEqual({ result: "ok" });
    // The input is left as it was.
    expect(history[1].output).toBeUndefined();
  });

  test("a landed push must take effect: it cannot be left out to excuse a violation", () => {
    // b's resolved push and a's acknowledged one both moved the head from v1: one is lost.
    const history: HeadOperation[] = [
      { clientId: "a", kind: PUSH, input: { folder: FOLDER, message: "op-1" }, output: { before: null, after: "v1" }, callMs: 0, returnMs: 5 },
      { clientId: "b", kind: PUSH, input: { folder: FOLDER, message: "op-2" }, callMs: 10, returnMs: Infinity },
      { clientId: "c", kind: PUSH, input: { folder: FOLDER, message: "op-3" }, output: { before: "v1", after: "v3" }, callMs: 11, returnMs: 20 },
    ];
    const resolved = resolveIndeterminatePushes(history, (_folder, message) => (message === "op-2" ? { before: "v1", after: "v2" } : null));
    expect(checkLinearizable(headRegisterModel, resolved).result).toBe("illegal");
  });

  test("two pushes with one message are refused", () => {
    const history = recorded();
    expect(() => resolveIndeterminatePushes([...history, { ...history[0], clientId: "z" }], lookup)).toThrow(/carry the message "op-1"/);
  });
});

describe("lostAcknowledgedPushes", () => {
  const versions = pushOutputsFromVersions(VERSIONS);
  const lookup = (_folder: string, message: string) => versions(message);
  const acknowledged = (message: string, output: PushOutput): HeadOperation => ({ clientId: "a", kind: PUSH, input: { folder: FOLDER, message }, output, callMs: 0, returnMs: 1 });

  test("acknowledged pushes the final history holds as answered are not lost", () => {
    expect(lostAcknowledgedPushes([acknowledged("op-1", { before: null, after: "v1" }), acknowledged("op-3", { before: "v2", after: "m4" })], lookup)).toEqual([]);
  });

  test("a push missing from the final history, or recorded otherwise than answered, is lost", () => {
    const missing = acknowledged("op-8", { before: "m4", after: "v8" });
    const otherwise = acknowledged("op-2", { before: "v1", after: "v9" });
    expect(lostAcknowledgedPushes([missing, otherwise], lookup)).toEqual([
      { operation: missing, found: null },
      { operation: otherwise, found: { before: "v1", after: "v2" } },
    ]);
  });
});
