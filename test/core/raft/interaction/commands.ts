// The commands a trace may use (README.md lists them with examples). Each takes the command
// line's arguments, drives the environment, and returns what it printed. Anything the state
// machine throws is printed as an error line rather than failing the trace: a refused proposal
// is a behaviour the trace records.

import {
  ProposalDroppedError,
  type ClusterConfig,
  type ConfigChange,
  type Entry,
  type Message,
  type MessageType,
  type RaftNodeId,
  type RaftStatus,
} from "../../../../src/core/raft/types.ts";
import { describeError, InteractionEnv, TraceCommandError, type Member } from "./environment.ts";
import { memberId, memberName, voters } from "./print.ts";

/** A command line split into words: positional arguments and key=value options. */
export interface CommandLine {
  name: string;
  positional: string[];
  options: Map<string, string>;
}

export function parseCommandLine(line: string): CommandLine {
  const words: { text: string; quoted: boolean }[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const match of line.matchAll(pattern)) {
    words.push(
      match[1] !== undefined ? { text: JSON.parse(`"${match[1]}"`), quoted: true } : { text: match[2], quoted: false },
    );
  }
  const [name, ...rest] = words;
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (const { text, quoted } of rest) {
    const eq = text.indexOf("=");
    // A quoted word is always positional (data may contain "=").
    if (!quoted && eq > 0 && /^[a-zA-Z-]+$/.test(text.slice(0, eq))) options.set(text.slice(0, eq), text.slice(eq + 1));
    else positional.push(text);
  }
  return { name: name?.text ?? "", positional, options };
}

const MESSAGE_TYPES: MessageType[] = [
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

class Args {
  private readonly used = new Set<string>();

  constructor(readonly line: CommandLine) {}

  count(min: number, max = min): string[] {
    const n = this.line.positional.length;
    if (n < min || n > max) {
      const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      throw new TraceCommandError(`${this.line.name} takes ${want} argument(s), got ${n}`);
    }
    return this.line.positional;
  }

  option(key: string): string | undefined {
    this.used.add(key);
    return this.line.options.get(key);
  }

  int(key: string, fallback: number): number {
    const value = this.option(key);
    if (value === undefined) return fallback;
    return parseInteger(value, key);
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.option(key);
    if (value === undefined) return fallback;
    if (value !== "true" && value !== "false") throw new TraceCommandError(`${key}= takes true or false`);
    return value === "true";
  }

  /** Refuses options the command does not know (a typo would otherwise change nothing silently). */
  done(): void {
    for (const key of this.line.options.keys()) {
      if (!this.used.has(key)) throw new TraceCommandError(`${this.line.name} has no option ${key}=`);
    }
  }
}

function parseInteger(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new TraceCommandError(`${what}: not a non-negative integer: ${text}`);
  return Number(text);
}

function memberList(text: string): ClusterConfig {
  if (text === "") return { voters: [] };
  const ids = text.split(",").map((part) => memberId(parseInteger(part, "voters")));
  return { voters: [...new Set(ids)].sort() };
}

/** What a config entry's data says: the change, and the voters once it is made. */
export interface DecodedConfigEntry {
  change: ConfigChange;
  voters: RaftNodeId[];
}

function statusSummary(status: RaftStatus): string {
  return `${status.role} term=${status.term}`;
}

/** Ticks `members` round by round, printing every role or term change it causes. */
function tickMembers(members: Member[], rounds: number, untilChange: boolean): string[] {
  const out: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    let changed = false;
    for (const member of members) {
      const raft = member.running();
      const before = statusSummary(raft.status());
      raft.tick();
      const after = statusSummary(raft.status());
      if (after !== before) {
        changed = true;
        out.push(`${member.name}: tick ${round}: ${before} -> ${after}`);
      }
    }
    if (changed && untilChange) break;
  }
  return out;
}

function messageFilter(env: InteractionEnv, args: Args): (m: Message) => boolean {
  const recipients = new Set(args.count(0, Infinity).map((name) => env.member(name).name));
  const type = args.option("type");
  if (type !== undefined && !MESSAGE_TYPES.includes(type as MessageType)) {
    throw new TraceCommandError(`no message type ${type}`);
  }
  const from = args.option("from");
  if (from !== undefined) env.member(from);
  return (m) =>
    (recipients.size === 0 || recipients.has(memberName(m.to))) &&
    (type === undefined || m.type === type) &&
    (from === undefined || memberName(m.from) === from);
}

function proposalError(error: unknown): string {
  // By name as well as by class: a copy of the state machine loaded from elsewhere (to check
  // that a changed algorithm shows in the traces) throws its own copy of the class.
  if (error instanceof ProposalDroppedError || (error instanceof Error && error.name === "ProposalDroppedError")) {
    const dropped = error as ProposalDroppedError;
    return `dropped: ${dropped.reason} (leader=${memberName(dropped.leader)})`;
  }
  return `error: ${describeError(error)}`;
}

type Handler = (env: InteractionEnv, args: Args) => string[];

const handlers: Record<string, Handler> = {
  "add-nodes": (env, args) => {
    const [countText] = args.count(1);
    const count = parseInteger(countText, "count");
    const first = env.members.size + 1;
    const votersOption = args.option("voters");
    const config = votersOption !== undefined
      ? memberList(votersOption)
      : memberList(Array.from({ length: first + count - 1 }, (_, i) => String(i + 1)).join(","));
    const preVote = args.bool("pre-vote", false);
    const checkQuorum = args.bool("check-quorum", false);
    const electionTicks = args.int("election", 10);
    const heartbeatTicks = args.int("heartbeat", 1);
    const maxEntriesPerAppend = args.int("max-entries", 64);
    const maxInflightAppends = args.int("max-inflight", 256);
    const seed = args.int("seed", 1);
    args.done();
    const out: string[] = [];
    for (let n = first; n < first + count; n++) {
      const member = env.addMember({
        voters: config,
        preVote,
        checkQuorum,
        electionTicks,
        heartbeatTicks,
        maxEntriesPerAppend,
        maxInflightAppends,
        // Each member its own stream, the same on every run.
        seed: (Math.imul(seed, 1_000_003) + n) >>> 0,
      });
      out.push(`${member.name}: ${statusSummary(member.running().status())} voters=${voters(config)}`);
    }
    return out;
  },

  campaign: (env, args) => {
    const [name] = args.count(1);
    args.done();
    env.member(name).running().campaign();
    return [];
  },

  tick: (env, args) => {
    const members = args.count(1, Infinity).map((name) => env.member(name));
    const rounds = args.int("count", 1);
    const until = args.option("until");
    if (until !== undefined && until !== "change") throw new TraceCommandError("until= takes change");
    args.done();
    return tickMembers(members, rounds, until === "change");
  },

  "tick-election": (env, args) => {
    const [name] = args.count(1);
    args.done();
    const member = env.member(name);
    return tickMembers([member], member.config.electionTicks, false);
  },

  "tick-heartbeat": (env, args) => {
    const [name] = args.count(1);
    args.done();
    const member = env.member(name);
    return tickMembers([member], member.config.heartbeatTicks, false);
  },

  propose: (env, args) => {
    const [name, data] = args.count(2);
    args.done();
    try {
      const at = env.member(name).running().propose(new TextEncoder().encode(data));
      return [`proposed at ${at.term}/${at.index}`];
    } catch (error) {
      return [proposalError(error)];
    }
  },

  "propose-conf-change": (env, args) => {
    const [name, type, node] = args.count(3);
    args.done();
    if (type !== "add" && type !== "remove") throw new TraceCommandError("propose-conf-change takes add or remove");
    const nodeId = memberId(parseInteger(node, "node"));
    const change: ConfigChange = { type, node: nodeId, address: type === "add" ? `http://member-${node}.test:7000` : "" };
    try {
      const at = env.member(name).running().proposeConfigChange(change);
      return [`proposed at ${at.term}/${at.index}`];
    } catch (error) {
      return [proposalError(error)];
    }
  },

  "read-index": (env, args) => {
    const [name, context] = args.count(2);
    args.done();
    env.member(name).running().readIndex(new TextEncoder().encode(context));
    return [];
  },

  "transfer-leader": (env, args) => {
    const [from, to] = args.count(2);
    args.done();
    env.member(from).running().transferLeadership(env.member(to).id);
    return [];
  },

  "report-unreachable": (env, args) => {
    const [from, to] = args.count(2);
    args.done();
    env.member(from).running().reportUnreachable(env.member(to).id);
    return [];
  },

  "report-snapshot": (env, args) => {
    const [from, to] = args.count(2);
    const ok = args.bool("ok", true);
    args.done();
    env.member(from).running().reportSnapshot(env.member(to).id, ok);
    return [];
  },

  ready: (env, args) => {
    const [name] = args.count(1);
    args.done();
    return env.takeReady(env.member(name));
  },

  // A message made up by the trace rather than sent by a member: stale, duplicated, from a
  // stranger or with numbers past the log, to show the state machine takes it safely.
  send: (env, args) => {
    const [fromText, toText, type] = args.count(3);
    if (!MESSAGE_TYPES.includes(type as MessageType)) throw new TraceCommandError(`no message type ${type}`);
    const entriesOption = args.option("entries");
    const entries: Entry[] = entriesOption === undefined || entriesOption === ""
      ? []
      : entriesOption.split(",").map((text) => {
          const match = /^(\d+)\/(\d+)$/.exec(text);
          if (!match) throw new TraceCommandError(`entries= takes term/index,term/index...: ${text}`);
          return { term: Number(match[1]), index: Number(match[2]), kind: "normal" as const, data: new Uint8Array(0) };
        });
    const context = args.option("ctx");
    const message: Message = {
      type: type as MessageType,
      from: memberId(parseInteger(fromText, "from")),
      to: memberId(parseInteger(toText, "to")),
      term: args.int("term", 0),
      logTerm: args.int("logTerm", 0),
      index: args.int("index", 0),
      entries,
      commit: args.int("commit", 0),
      reject: args.bool("reject", false),
      rejectHint: args.int("rejectHint", 0),
      context: context === undefined ? undefined : new TextEncoder().encode(context),
    };
    args.done();
    env.network.push(message);
    return [`queued ${env.printer.message(message)}`];
  },

  persist: (env, args) => {
    const [name] = args.count(1);
    args.done();
    return env.persistHeld(env.member(name));
  },

  "process-ready": (env, args) => {
    const names = args.count(1, Infinity);
    args.done();
    return names.flatMap((name) => env.processReady(env.member(name)));
  },

  "deliver-msgs": (env, args) => {
    const filter = messageFilter(env, args);
    const drop = args.bool("drop", false);
    const reverse = args.bool("reverse", false);
    const keep = args.bool("keep", false);
    args.done();
    const out = env.deliver(filter, drop, { reverse, keep });
    return out.length === 0 ? ["no messages"] : out;
  },

  stabilize: (env, args) => {
    const names = args.count(0, Infinity);
    args.done();
    for (const name of names) env.member(name);
    return env.stabilize(names.length > 0 ? names : [...env.members.keys()]);
  },

  network: (env, args) => {
    args.count(0);
    args.done();
    const lines = env.network.map((m) => env.printer.message(m));
    return lines.length === 0 ? ["no messages in flight"] : lines;
  },

  isolate: (env, args) => {
    const [name] = args.count(1);
    args.done();
    env.isolated.add(env.member(name).name);
    return [];
  },

  partition: (env, args) => {
    const groups = args.count(2, Infinity).map((group) => group.split(",").map((name) => env.member(name).name));
    args.done();
    const seen = new Set<string>();
    groups.forEach((group, side) => {
      for (const name of group) {
        if (seen.has(name)) throw new TraceCommandError(`member ${name} is on two sides`);
        seen.add(name);
        env.sides.set(name, side + 1);
      }
    });
    return [];
  },

  heal: (env, args) => {
    args.count(0);
    args.done();
    // What was sent across the partition is lost, not delivered late.
    const out = env.deliver((m) => env.cutOff(memberName(m.from), memberName(m.to)) !== null, false);
    env.isolated.clear();
    env.sides.clear();
    return out;
  },

  crash: (env, args) => {
    const [name] = args.count(1);
    args.done();
    const member = env.member(name);
    const lost = member.held === null
      ? []
      : [`${name} crashed; the Ready it held was ${member.heldPersisted ? "persisted but never applied" : "never persisted"}`];
    member.crash();
    return lost;
  },

  restart: (env, args) => {
    const [name] = args.count(1);
    args.done();
    const member = env.member(name);
    member.restart();
    const s = member.running().status();
    return [`${name}: restarted ${statusSummary(s)} commit=${s.commit} applied=${s.applied} lastIndex=${s.lastIndex}`];
  },

  compact: (env, args) => {
    const [name, indexText] = args.count(2);
    args.done();
    const member = env.member(name);
    const index = parseInteger(indexText, "index");
    try {
      const snapshot = member.running().compact(index, member.store.stateAt(index));
      member.store.compacted(snapshot);
      return [`snapshot ${env.printer.snapshot(snapshot)}`];
    } catch (error) {
      return [`error: ${describeError(error)}`];
    }
  },

  "raft-state": (env, args) => {
    args.count(0);
    args.done();
    return [...env.members.values()].map((member) => {
      if (!member.up) return `${member.name}: down`;
      const s = member.running().status();
      const side = env.sides.get(member.name);
      const isolated = env.isolated.has(member.name) ? " (isolated)" : side !== undefined ? ` (side ${side})` : "";
      return `${member.name}: ${s.role} term=${s.term} leader=${memberName(s.leader)} commit=${s.commit}${isolated}`;
    });
  },

  "raft-log": (env, args) => {
    const [name] = args.count(1);
    args.done();
    const store = env.member(name).store;
    const out = [`durable: ${env.printer.hardState(store.hardState)} applied=${store.applied}`];
    if (store.snapshot) out.push(`snapshot ${env.printer.snapshot(store.snapshot)}`);
    out.push(...store.entries.map((e) => env.printer.entry(e)));
    if (store.entries.length === 0) out.push(store.snapshot ? "no entries after the snapshot" : "no entries");
    out.push(`state: ${JSON.stringify(store.state.map((c) => c.command))}`);
    return out;
  },

  status: (env, args) => {
    const [name] = args.count(1);
    args.done();
    return env.printer.status(env.member(name).running().status());
  },
};

/** Runs one command line; its printed lines, or an error line for a trace that misuses a command. */
export function runCommand(env: InteractionEnv, text: string): string[] {
  const line = parseCommandLine(text);
  const handler = Object.hasOwn(handlers, line.name) ? handlers[line.name] : undefined;
  if (handler === undefined) throw new TraceCommandError(`unknown command ${line.name}`);
  return handler(env, new Args(line));
}
