// The strong command codec and the Raft message codec never trust the shape of what they
// decode: valid values round-trip; random bytes, truncations and single-byte mutations of valid
// encodings are refused with their own clear error (never a crash or a half-built value); values
// out of bounds are refused by name. An entry a member cannot read is applied as nothing.
import { describe, expect, test } from "bun:test";
import { encodeCanonical } from "../../src/core/encoding.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { Message } from "../../src/core/raft/types.ts";
import { decodeStrongCommand, encodeStrongCommand, StrongCommandError, STRONG_COMMAND_FORMAT } from "../../src/consensus/strong-command.ts";
import type { StrongCommand } from "../../src/consensus/strong-consensus.ts";
import { decodeSnapshotState, encodeSnapshotState, StrongSnapshotError } from "../../src/consensus/strong-state-machine.ts";
import { decodeRaftMessages, encodeRaftMessages, RaftWireError, RAFT_WIRE_LIMITS } from "../../src/wire/raft-message.ts";
import { createFolder, makeVersion, MemoryRaftNetwork, waitFor } from "./raft-cluster.ts";
import type { RaftMember } from "../../src/core/raft/types.ts";
import { RaftDriver } from "../../src/consensus/raft-driver.ts";
import { Raft } from "../../src/core/raft/raft.ts";
import { systemClock, systemRandom, systemTimers } from "../../src/node/clock.ts";

/** A seeded generator, so a failure names its seed. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const v1 = makeVersion("n1", "one");
const v2 = makeVersion("n1", "two", [v1.id], 2);
const COMMANDS: StrongCommand[] = [
  createFolder("docs"),
  { op: "createFolder", folder: "a.b_c-d", keepVersions: 10, keepDays: 0, atMs: 5 },
  { op: "moveHead", folder: "docs", expected: null, head: v1.id, versions: [v1.record], atMs: 1_700_000_000_123 },
  { op: "moveHead", folder: "docs", expected: v1.id, head: v2.id, versions: [{ ...v1.record, origin: "push", message: "" }, { ...v2.record, origin: "merge", author: "" }], atMs: 9 },
  // Retention: a field left out is unchanged, null is no limit, 0 a limit of its own.
  { op: "setRetention", folder: "docs", keepVersions: 5, keepDays: null, atMs: 11 },
  { op: "setRetention", folder: "docs", keepDays: 0, atMs: 12 },
  { op: "setRetention", folder: "docs", atMs: 13 },
];

const MESSAGES: Message[] = [
  { type: "append", from: "n1", to: "n2", term: 3, logTerm: 2, index: 7, entries: [{ term: 3, index: 8, kind: "normal", data: encodeStrongCommand(COMMANDS[2]!) }, { term: 3, index: 9, kind: "config", data: new Uint8Array([1, 2]) }], commit: 6, reject: false, rejectHint: 0 },
  { type: "appendResponse", from: "n2", to: "n1", term: 3, logTerm: 0, index: 9, entries: [], commit: 0, reject: true, rejectHint: 4 },
  { type: "heartbeat", from: "n1", to: "n2", term: 3, logTerm: 0, index: 0, entries: [], commit: 9, reject: false, rejectHint: 0, context: new Uint8Array([7, 7]) },
  { type: "snapshot", from: "n1", to: "n3", term: 4, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: { meta: { index: 1000, term: 4, config: { voters: ["n1", "n2", "n3"] } }, data: new Uint8Array([1, 2, 3]) } },
];

function mutations(bytes: Uint8Array, random: () => number, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const copy = new Uint8Array(bytes);
    const kind = random();
    if (kind < 0.5) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    else if (kind < 0.8) out.push(copy.slice(0, Math.floor(random() * copy.length)));
    else {
      const extended = new Uint8Array(copy.length + 1);
      extended.set(copy);
      extended[copy.length] = Math.floor(random() * 256);
      out.push(extended);
      continue;
    }
    out.push(copy);
  }
  return out;
}

describe("the strong command codec", () => {
  test("round-trips every kind of command", () => {
    for (const command of COMMANDS) {
      const decoded = decodeStrongCommand(encodeStrongCommand(command));
      expect(JSON.stringify(decoded, (_k, v) => (v instanceof Uint8Array ? idToHex(v) : v))).toBe(JSON.stringify(command, (_k, v) => (v instanceof Uint8Array ? idToHex(v) : v)));
    }
  });

  test("random bytes and mutated encodings are refused with StrongCommandError, or decode to a valid command", () => {
    const random = seeded(20261201);
    for (let i = 0; i < 2000; i++) {
      const length = Math.floor(random() * 200);
      const bytes = new Uint8Array(length).map(() => Math.floor(random() * 256));
      expectRefusedOrValid(bytes);
    }
    for (const command of COMMANDS) for (const bytes of mutations(encodeStrongCommand(command), random, 1000)) expectRefusedOrValid(bytes);
  });

  test("fields out of bounds are refused by name", () => {
    const id = v1.id;
    const record = (override: Record<number, unknown>) => {
      const fields: unknown[] = [id, v1.record.root, [], "n1", 1, 0, "m", "push", 1, 1, 1];
      for (const [at, value] of Object.entries(override)) fields[Number(at)] = value;
      return fields;
    };
    const move = (versions: unknown[], head: unknown = id, folder: unknown = "docs") => encodeCanonical([STRONG_COMMAND_FORMAT, 2, folder, null, head, versions, 1]);
    const cases: [Uint8Array, RegExp][] = [
      [move([record({})], id, "../etc"), /folder/],
      [move([record({})], new Uint8Array(31)), /head is not a 32-byte id/],
      [move([record({}), record({}), record({})]), /1 to 2 versions/],
      [move([]), /1 to 2 versions/],
      [move([record({ 0: new Uint8Array(33) })]), /versions\[0\]\.id/],
      [move([record({ 2: new Array(17).fill(id) })]), /parents/],
      [move([record({ 3: "bad author!" })]), /author/],
      [move([record({ 6: "x".repeat(5000) })]), /message/],
      [move([record({ 7: "stolen" })]), /origin/],
      [move([record({ 8: -1 })]), /files/],
      [move([record({ 9: 2 ** 60 })]), /totalBytes/],
      [move([record({})], v2.id), /head is not one of the versions/],
      [encodeCanonical([STRONG_COMMAND_FORMAT + 1, 1, "docs", null, null, 1]), /format/],
      [encodeCanonical([STRONG_COMMAND_FORMAT, 9]), /unknown strong command/],
      [encodeCanonical([STRONG_COMMAND_FORMAT, 1, "docs", 1.5, null, 1]), /keepVersions/],
      [new Uint8Array(70 * 1024), /at most/],
    ];
    for (const [bytes, message] of cases) {
      expect(() => decodeStrongCommand(bytes)).toThrow(StrongCommandError);
      expect(() => decodeStrongCommand(bytes)).toThrow(message);
    }
    // What cannot be decoded is never encoded into the log.
    expect(() => encodeStrongCommand({ ...(COMMANDS[2] as Extract<StrongCommand, { op: "moveHead" }>), folder: "no/slash" })).toThrow(StrongCommandError);
  });
});

function expectRefusedOrValid(bytes: Uint8Array): void {
  let decoded: StrongCommand;
  try {
    decoded = decodeStrongCommand(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(StrongCommandError);
    return;
  }
  // A mutation that still decodes is a command the codec would itself write.
  expect(decodeStrongCommand(encodeStrongCommand(decoded)).op).toBe(decoded.op);
}

describe("the Raft message codec", () => {
  test("round-trips every field", () => {
    const decoded = decodeRaftMessages(encodeRaftMessages(MESSAGES));
    expect(decoded).toEqual(MESSAGES.map((m) => ({ ...m, snapshot: m.snapshot, context: m.context })).map(stripUndefined));
  });

  test("random bytes and mutated encodings are refused with RaftWireError, or decode to valid messages", () => {
    const random = seeded(7);
    const valid = encodeRaftMessages(MESSAGES);
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(Math.floor(random() * 300)).map(() => Math.floor(random() * 256));
      expectWireRefusedOrValid(bytes);
    }
    for (const bytes of mutations(valid, random, 3000)) expectWireRefusedOrValid(bytes);
  });

  test("counts, sizes, ids and numbers out of bounds are refused", () => {
    const base = MESSAGES[0]!;
    const batch = (m: Partial<Message>[]) => encodeRaftMessages(m.map((o) => ({ ...base, ...o }) as Message));
    const cases: Uint8Array[] = [
      batch(new Array(RAFT_WIRE_LIMITS.messagesMax + 1).fill({ entries: [] })),
      batch([{ entries: new Array(RAFT_WIRE_LIMITS.entriesMax + 1).fill({ term: 1, index: 1, kind: "normal", data: new Uint8Array() }) }]),
      batch([{ from: "not an id!" }]),
      batch([{ to: "" }]),
      batch([{ term: -1 }]),
      batch([{ commit: 1.5 }]),
      batch([{ index: 2 ** 60 }]),
      batch([{ entries: [{ term: 1, index: 1, kind: "normal", data: new Uint8Array(RAFT_WIRE_LIMITS.entryDataBytesMax + 1) }] }]),
      batch([{ context: new Uint8Array(RAFT_WIRE_LIMITS.contextBytesMax + 1) }]),
      batch([{ snapshot: { meta: { index: 1, term: 1, config: { voters: ["n1", "n1"] } }, data: new Uint8Array() } }]),
      encodeCanonical([2, []]),
    ];
    for (const bytes of cases) expect(() => decodeRaftMessages(bytes)).toThrow(RaftWireError);
  });
});

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function expectWireRefusedOrValid(bytes: Uint8Array): void {
  let decoded: Message[];
  try {
    decoded = decodeRaftMessages(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(RaftWireError);
    return;
  }
  expect(decodeRaftMessages(encodeRaftMessages(decoded))).toEqual(decoded);
}

describe("the snapshot data codec", () => {
  test("round-trips, and refuses mutations with StrongSnapshotError", () => {
    const state = { folders: [{ name: "docs", head: v1.id as ObjectId | null, keepVersions: 3, keepDays: null, createdMs: 5 }, { name: "empty", head: null, keepVersions: null, keepDays: null, createdMs: 6 }], addresses: [{ id: "n2", address: "http://127.0.0.1:1" }] };
    const bytes = encodeSnapshotState(state);
    expect(idToHex(decodeSnapshotState(bytes).folders[0]!.head!)).toBe(idToHex(v1.id));
    const random = seeded(99);
    for (const mutated of mutations(bytes, random, 2000)) {
      try {
        decodeSnapshotState(mutated);
      } catch (error) {
        expect(error).toBeInstanceOf(StrongSnapshotError);
      }
    }
    expect(() => decodeSnapshotState(encodeSnapshotState({ ...state, folders: [state.folders[0]!, state.folders[0]!] }))).toThrow(/twice/);
  });
});

describe("an entry no member can read", () => {
  test("is applied as nothing: no folder changes, the log goes on", async () => {
    const network = new MemoryRaftNetwork();
    const node = (await network.add("n1", [])).node;
    let member: RaftMember | undefined;
    const driver = new RaftDriver({
      node,
      timers: systemTimers,
      clock: systemClock,
      random: systemRandom,
      log: (line) => lines.push(line),
      tickMs: 10,
      createMember: (config, persisted) => (member = new Raft(config, persisted)),
    });
    const lines: string[] = [];
    await driver.start();
    try {
      await waitFor(() => driver.isLeader(), 2000, "the member to lead");
      await driver.propose(createFolder("docs"), 2000);
      const before = await node.listFolders();
      // Bytes a buggy or hostile leader could have written: garbage, and a command of an unknown format.
      member!.propose(new Uint8Array([0xc1, 0xff, 0x00]));
      member!.propose(encodeCanonical([STRONG_COMMAND_FORMAT + 7, 1, "evil", null, null, 1]));
      await waitFor(() => lines.filter((l) => l.includes("not a command this node reads")).length === 2, 2000, "both entries to be applied as nothing");
      expect(await node.listFolders()).toEqual(before);
      // And the log goes on.
      expect(await driver.propose(createFolder("after"), 2000)).toEqual({ applied: true });
    } finally {
      await driver.stop();
    }
  });
});
