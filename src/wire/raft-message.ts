// Raft messages between the members of a strong-mode group (POST /v1/peer/raft): a batch of
// messages from one member to another, as canonical msgpack, and the receiver's short reply.
// Encoded by the sending node's transport, decoded by the receiving node's route; both use this
// file so neither imports the other.
//
// The receiver never trusts the shape: counts, sizes and ids are bounded, every number is a
// safe non-negative integer, every field has its type. What a well-formed message means (its
// term, whether its sender may send it) is the Raft driver's and the state machine's to judge.
import { DecodeError, decodeMsgpack, encodeCanonical } from "../core/encoding.ts";
import { LIMITS } from "../core/limits.ts";
import type { Entry, EntryKind, Message, MessageType, RaftNodeId, Snapshot } from "../core/raft/types.ts";

/** The format of a batch: bumped when the layout changes, so a member refuses what it would misread. */
export const RAFT_WIRE_FORMAT = 1;

export const RAFT_WIRE_LIMITS = {
  /** Messages in one batch (a member sends at most a few per peer per tick). */
  messagesMax: 1024,
  /** Entries in one batch, over all its messages. */
  entriesMax: 4096,
  /** One entry's data: a strong command is at most 64 KiB, a config change far less. */
  entryDataBytesMax: 1024 * 1024,
  /** A snapshot's data: the strong folders and the members' addresses. */
  snapshotDataBytesMax: 64 * 1024 * 1024,
  /** A read request's id (context). */
  contextBytesMax: 64,
  /** Voters a snapshot's config may name. */
  votersMax: 64,
  /** The encoded batch (entries and snapshot data together), as the request body bounds it. */
  batchBytesMax: LIMITS.requestBodyBytesMax,
} as const;

const MESSAGE_TYPES: readonly MessageType[] = [
  "append",
  "appendResponse",
  "vote",
  "voteResponse",
  "preVote",
  "preVoteResponse",
  "heartbeat",
  "heartbeatResponse",
  "snapshot",
  "timeoutNow",
  "readIndex",
  "readIndexResponse",
];

const ENTRY_KINDS: readonly EntryKind[] = ["normal", "config"];

/** A member id as node/node-id.ts allows one. */
const MEMBER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The receiver's answer to a batch: who it is and the voters of its group (null: it holds no Raft state yet). */
export interface RaftReply {
  node: RaftNodeId;
  voters: RaftNodeId[] | null;
  /**
   * Drawn by the answering process when it starts: a node that hears its own id from an address
   * tells its own process (its --peers names itself) from another one holding its id (a data
   * folder copied). Absent from members that do not send it.
   */
  instance?: string;
}

/** The longest instance a reply may carry. */
const INSTANCE_CHARS_MAX = 64;

export function encodeRaftMessages(messages: readonly Message[]): Uint8Array {
  return encodeCanonical([
    RAFT_WIRE_FORMAT,
    messages.map((m) => [
      MESSAGE_TYPES.indexOf(m.type),
      m.from,
      m.to,
      m.term,
      m.logTerm,
      m.index,
      m.entries.map((e) => [e.term, e.index, ENTRY_KINDS.indexOf(e.kind), e.data]),
      m.commit,
      m.reject,
      m.rejectHint,
      m.snapshot ? [m.snapshot.meta.index, m.snapshot.meta.term, m.snapshot.meta.config.voters, m.snapshot.data] : null,
      m.context ?? null,
    ]),
  ]);
}

export class RaftWireError extends DecodeError {
  override name = "RaftWireError";
}

export function decodeRaftMessages(bytes: Uint8Array): Message[] {
  if (bytes.length > RAFT_WIRE_LIMITS.batchBytesMax) throw new RaftWireError(`a raft batch is at most ${RAFT_WIRE_LIMITS.batchBytesMax} bytes`);
  let value: unknown;
  try {
    value = decodeMsgpack(bytes);
  } catch (error) {
    throw new RaftWireError(`a raft batch is not msgpack: ${(error as Error).message}`);
  }
  if (!Array.isArray(value) || value.length !== 2) throw new RaftWireError("a raft batch is not [format, messages]");
  if (value[0] !== RAFT_WIRE_FORMAT) throw new RaftWireError(`a raft batch of format ${JSON.stringify(value[0])} (this node reads format ${RAFT_WIRE_FORMAT})`);
  const raw = value[1];
  if (!Array.isArray(raw) || raw.length > RAFT_WIRE_LIMITS.messagesMax) throw new RaftWireError(`a raft batch holds at most ${RAFT_WIRE_LIMITS.messagesMax} messages`);
  let entries = 0;
  return raw.map((m, i) => {
    const message = decodeMessage(m, i);
    entries += message.entries.length;
    if (entries > RAFT_WIRE_LIMITS.entriesMax) throw new RaftWireError(`a raft batch holds at most ${RAFT_WIRE_LIMITS.entriesMax} entries`);
    return message;
  });
}

function decodeMessage(value: unknown, at: number): Message {
  const where = `message ${at}`;
  if (!Array.isArray(value) || value.length !== 12) throw new RaftWireError(`${where} is not a list of 12 fields`);
  const [type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context] = value as unknown[];
  if (typeof type !== "number" || !Number.isInteger(type) || type < 0 || type >= MESSAGE_TYPES.length) throw new RaftWireError(`${where} has an unknown type`);
  if (!Array.isArray(entries) || entries.length > RAFT_WIRE_LIMITS.entriesMax) throw new RaftWireError(`${where} has more than ${RAFT_WIRE_LIMITS.entriesMax} entries`);
  if (typeof reject !== "boolean") throw new RaftWireError(`${where}: reject is not a boolean`);
  const message: Message = {
    type: MESSAGE_TYPES[type]!,
    from: memberId(from, `${where}.from`),
    to: memberId(to, `${where}.to`),
    term: count(term, `${where}.term`),
    logTerm: count(logTerm, `${where}.logTerm`),
    index: count(index, `${where}.index`),
    entries: entries.map((e, i) => decodeEntry(e, `${where}.entries[${i}]`)),
    commit: count(commit, `${where}.commit`),
    reject,
    rejectHint: count(rejectHint, `${where}.rejectHint`),
  };
  if (snapshot !== null) message.snapshot = decodeSnapshot(snapshot, `${where}.snapshot`);
  if (context !== null) {
    if (!(context instanceof Uint8Array) || context.length > RAFT_WIRE_LIMITS.contextBytesMax) throw new RaftWireError(`${where}.context is at most ${RAFT_WIRE_LIMITS.contextBytesMax} bytes`);
    message.context = new Uint8Array(context);
  }
  return message;
}

function decodeEntry(value: unknown, where: string): Entry {
  if (!Array.isArray(value) || value.length !== 4) throw new RaftWireError(`${where} is not [term, index, kind, data]`);
  const [term, index, kind, data] = value as unknown[];
  if (typeof kind !== "number" || !Number.isInteger(kind) || kind < 0 || kind >= ENTRY_KINDS.length) throw new RaftWireError(`${where} has an unknown kind`);
  if (!(data instanceof Uint8Array) || data.length > RAFT_WIRE_LIMITS.entryDataBytesMax) throw new RaftWireError(`${where}.data is bytes, at most ${RAFT_WIRE_LIMITS.entryDataBytesMax}`);
  return { term: count(term, `${where}.term`), index: count(index, `${where}.index`), kind: ENTRY_KINDS[kind]!, data: new Uint8Array(data) };
}

function decodeSnapshot(value: unknown, where: string): Snapshot {
  if (!Array.isArray(value) || value.length !== 4) throw new RaftWireError(`${where} is not [index, term, voters, data]`);
  const [index, term, voters, data] = value as unknown[];
  if (!Array.isArray(voters) || voters.length > RAFT_WIRE_LIMITS.votersMax) throw new RaftWireError(`${where}.voters is a list of at most ${RAFT_WIRE_LIMITS.votersMax} ids`);
  if (!(data instanceof Uint8Array) || data.length > RAFT_WIRE_LIMITS.snapshotDataBytesMax) throw new RaftWireError(`${where}.data is bytes, at most ${RAFT_WIRE_LIMITS.snapshotDataBytesMax}`);
  const ids = voters.map((v, i) => memberId(v, `${where}.voters[${i}]`));
  if (new Set(ids).size !== ids.length) throw new RaftWireError(`${where}.voters names a member twice`);
  return { meta: { index: count(index, `${where}.index`), term: count(term, `${where}.term`), config: { voters: [...ids].sort() } }, data: new Uint8Array(data) };
}

function memberId(value: unknown, where: string): RaftNodeId {
  if (typeof value !== "string" || !MEMBER_ID.test(value)) throw new RaftWireError(`${where} is not a member id`);
  return value;
}

function count(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new RaftWireError(`${where} is not a non-negative integer`);
  return value;
}

/** The receiver's reply, as the sender reads it. */
export function decodeRaftReply(value: unknown): RaftReply {
  const reply = value as { node?: unknown; voters?: unknown; instance?: unknown };
  if (typeof reply?.node !== "string" || !MEMBER_ID.test(reply.node)) throw new RaftWireError("a raft reply names no member id");
  if (reply.voters !== null && (!Array.isArray(reply.voters) || reply.voters.length > RAFT_WIRE_LIMITS.votersMax)) throw new RaftWireError("a raft reply's voters are not a bounded list");
  const decoded: RaftReply = { node: reply.node, voters: reply.voters === null ? null : (reply.voters as unknown[]).map((v, i) => memberId(v, `voters[${i}]`)) };
  if (reply.instance !== undefined) {
    if (typeof reply.instance !== "string" || reply.instance.length > INSTANCE_CHARS_MAX) throw new RaftWireError("a raft reply's instance is not a short string");
    decoded.instance = reply.instance;
  }
  return decoded;
}

/** The receiver refuses the batch (HTTP 403): its sender is not a member, or not the node that sent the request, or it is meant for another node. Nothing was changed. */
export class RaftRefusedError extends Error {
  override name = "RaftRefusedError";
  readonly status = 403;
}

/** The receiver runs no Raft group now (starting, stopping, or recovering from a failure): HTTP 503, the sender tries again later. */
export class RaftUnavailableError extends Error {
  override name = "RaftUnavailableError";
  readonly status = 503;
}
