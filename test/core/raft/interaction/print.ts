// How the traces print Raft's vocabulary: one compact line per entry, message, read state,
// snapshot and status, always in the same words, so a behaviour change shows as a one-line diff.
// Members are printed by their short trace name ("1", "2", ...); a message prints the fields its
// type uses, and any other field only when it is set (so nothing the state machine says is hidden).

import type {
  ClusterConfig,
  Entry,
  HardState,
  Message,
  RaftNodeId,
  RaftStatus,
  ReadState,
  Ready,
  Snapshot,
  SoftState,
} from "../../../../src/core/raft/types.ts";

/** The Raft id of trace member `n`: a dsync-shaped node id (16 hex digits), so ids sort like numbers. */
export function memberId(n: number): RaftNodeId {
  return n.toString(16).padStart(16, "0");
}

/** The short name a trace uses for a Raft id ("0000000000000003" is "3"); other ids print whole. */
export function memberName(id: RaftNodeId | null): string {
  if (id === null) return "none";
  return /^0{1,15}[0-9a-f]+$/.test(id) && id.length === 16 ? parseInt(id, 16).toString() : id;
}

/** Data as a quoted string when it is printable ASCII, else as hex. */
export function printData(data: Uint8Array | undefined): string {
  if (data === undefined) return "none";
  let printable = true;
  for (const byte of data) {
    if (byte < 0x20 || byte > 0x7e) {
      printable = false;
      break;
    }
  }
  if (printable) return JSON.stringify(new TextDecoder().decode(data));
  return `0x${Buffer.from(data).toString("hex")}`;
}

/** How a config entry's data reads in a trace ("add 4", "remove 3"); set once the codec is known. */
export type ConfigDataPrinter = (data: Uint8Array) => string;

export interface Printer {
  entry(entry: Entry): string;
  entries(entries: Entry[]): string;
  message(message: Message): string;
  ready(name: string, ready: Ready): string[];
  snapshot(snapshot: Snapshot): string;
  hardState(hardState: HardState): string;
  status(status: RaftStatus): string[];
}

export function voters(config: ClusterConfig): string {
  return `[${config.voters.map(memberName).join(",")}]`;
}

export function createPrinter(printConfigData: ConfigDataPrinter): Printer {
  const entry = (e: Entry): string =>
    e.kind === "config"
      ? `${e.term}/${e.index} config ${printConfigData(e.data)}`
      : `${e.term}/${e.index} normal ${printData(e.data)}`;
  const entries = (list: Entry[]): string => `[${list.map(entry).join(", ")}]`;
  const snapshot = (s: Snapshot): string =>
    `index=${s.meta.index} term=${s.meta.term} voters=${voters(s.meta.config)} data=${printData(s.data)}`;
  const hardState = (h: HardState): string => `term=${h.term} vote=${memberName(h.vote)} commit=${h.commit}`;

  /** The fields each message type uses, in print order. */
  const fieldsByType: Record<Message["type"], (keyof Message)[]> = {
    append: ["term", "logTerm", "index", "commit", "entries"],
    appendResponse: ["term", "index", "reject", "rejectHint"],
    vote: ["term", "logTerm", "index"],
    voteResponse: ["term", "reject"],
    preVote: ["term", "logTerm", "index"],
    preVoteResponse: ["term", "reject"],
    heartbeat: ["term", "commit", "context"],
    heartbeatResponse: ["term", "context"],
    snapshot: ["term", "snapshot"],
    timeoutNow: ["term"],
    readIndex: ["term", "context"],
    readIndexResponse: ["term", "index", "reject", "context"],
  };
  const allFields: (keyof Message)[] = [
    "term",
    "logTerm",
    "index",
    "commit",
    "entries",
    "reject",
    "rejectHint",
    "snapshot",
    "context",
  ];
  const isSet = (m: Message, field: keyof Message): boolean => {
    const value = m[field];
    if (value === undefined) return false;
    if (typeof value === "number") return value !== 0;
    if (typeof value === "boolean") return value;
    if (Array.isArray(value)) return value.length > 0;
    return true;
  };
  const field = (m: Message, name: keyof Message): string | null => {
    switch (name) {
      case "entries":
        return `entries=${entries(m.entries)}`;
      case "snapshot":
        return m.snapshot === undefined ? "snapshot=none" : `snapshot=(${snapshot(m.snapshot)})`;
      case "context":
        return m.context === undefined ? null : `ctx=${printData(m.context)}`;
      case "rejectHint":
        return m.reject || m.rejectHint !== 0 ? `rejectHint=${m.rejectHint}` : null;
      default:
        return `${name}=${String(m[name])}`;
    }
  };
  const message = (m: Message): string => {
    const used = fieldsByType[m.type] ?? [];
    const parts = [`${memberName(m.from)}->${memberName(m.to)} ${m.type}`];
    for (const name of used) {
      const text = field(m, name);
      if (text !== null) parts.push(text);
    }
    // Anything set outside the type's usual fields is printed too: a stray field is a behaviour.
    for (const name of allFields) {
      if (!used.includes(name) && isSet(m, name)) {
        const text = field(m, name);
        if (text !== null) parts.push(text);
      }
    }
    return parts.join(" ");
  };
  const softState = (s: SoftState): string => `State: ${s.role} leader=${memberName(s.leader)}`;
  const readState = (r: ReadState): string => `index=${r.index} ctx=${printData(r.context)}`;

  const ready = (name: string, r: Ready): string[] => {
    const out = [`> ${name} handling Ready`];
    const body: string[] = [];
    if (r.softState) body.push(softState(r.softState));
    if (r.hardState) body.push(`HardState ${hardState(r.hardState)}`);
    if (r.snapshot) body.push(`Snapshot ${snapshot(r.snapshot)}`);
    if (r.entries.length > 0) body.push("Entries:", ...r.entries.map((e) => `  ${entry(e)}`));
    if (r.committedEntries.length > 0) {
      body.push("CommittedEntries:", ...r.committedEntries.map((e) => `  ${entry(e)}`));
    }
    if (r.messages.length > 0) body.push("Messages:", ...r.messages.map((m) => `  ${message(m)}`));
    if (r.readStates.length > 0) body.push("ReadStates:", ...r.readStates.map((s) => `  ${readState(s)}`));
    if (body.length === 0) {
      out.push(`  <empty Ready>${r.mustSync ? " mustSync=true" : ""}`);
    } else {
      out.push(`  Ready mustSync=${r.mustSync}:`, ...body.map((line) => `  ${line}`));
    }
    return out;
  };

  const status = (s: RaftStatus): string[] => {
    const out = [
      `${memberName(s.id)}: ${s.role} term=${s.term} vote=${memberName(s.vote)} leader=${memberName(s.leader)} ` +
        `commit=${s.commit} applied=${s.applied} lastIndex=${s.lastIndex} voters=${voters(s.config)} ` +
        `pendingConfigIndex=${s.pendingConfigIndex} transferee=${memberName(s.transferee)}`,
    ];
    for (const id of Object.keys(s.progress).sort()) {
      const p = s.progress[id];
      out.push(
        `  ${memberName(id)}: match=${p.match} next=${p.next} ${p.state}${p.recentActive ? " active" : " inactive"}`,
      );
    }
    return out;
  };

  return { entry, entries, message, ready, snapshot, hardState, status };
}
