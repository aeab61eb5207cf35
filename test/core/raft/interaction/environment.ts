// The world a trace drives: N in-memory Raft members, each with its own durable store and
// seeded randomness, and one network queue between them. Nothing happens on its own: a member
// ticks, hands out a Ready or receives a message only when a trace command says so, so a
// trace is a deterministic script and its output a faithful record of what the algorithm did.
//
// The driver model is the one types.ts describes: a Ready is persisted, then its messages are
// queued on the network, then it is applied, then advance(). A Ready can also be handed out and
// held (`ready`), and persisted without being applied (`persist`), so a crash in between loses
// exactly what had not been persisted, or applied.

import {
  type ClusterConfig,
  type Message,
  type PersistedRaft,
  type RaftConfig,
  type RaftMember,
  type RaftNodeId,
  type Ready,
} from "../../../../src/core/raft/types.ts";
import { createPrng } from "../../../helpers/prng.ts";
import { clone, DurableStore } from "./durable-store.ts";
import { memberId, memberName, type Printer } from "./print.ts";
import { SafetyChecks } from "./safety.ts";

export type RaftFactory = (config: RaftConfig, persisted: PersistedRaft) => RaftMember;

export interface MemberOptions {
  voters: ClusterConfig;
  preVote: boolean;
  checkQuorum: boolean;
  electionTicks: number;
  heartbeatTicks: number;
  maxEntriesPerAppend: number;
  maxInflightAppends: number;
  seed: number;
}

export class Member {
  raft: RaftMember | null;
  /** A Ready handed out and not yet persisted (lost if the member crashes). */
  held: Ready | null = null;
  /** Whether the held Ready was already persisted and its messages sent (`persist`). */
  heldPersisted = false;
  readonly store: DurableStore;
  readonly config: RaftConfig;

  constructor(
    readonly name: string,
    readonly id: RaftNodeId,
    options: MemberOptions,
    private readonly env: InteractionEnv,
  ) {
    const prng = createPrng(options.seed);
    this.config = {
      id,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      randomInt: (bound) => prng.nextInt(bound),
      maxEntriesPerAppend: options.maxEntriesPerAppend,
      maxInflightAppends: options.maxInflightAppends,
    };
    this.store = new DurableStore(clone(options.voters));
    this.raft = env.factory(this.config, this.store.load());
  }

  get up(): boolean {
    return this.raft !== null;
  }

  /** The running state machine; a command addressed to a crashed member is an error in the trace. */
  running(): RaftMember {
    if (this.raft === null) throw new TraceCommandError(`member ${this.name} is down`);
    return this.raft;
  }

  needsProcessing(): boolean {
    return this.raft !== null && (this.held !== null || this.raft.hasReady());
  }

  crash(): void {
    this.running();
    this.raft = null;
    this.held = null;
    this.heldPersisted = false;
  }

  restart(): void {
    if (this.raft !== null) throw new TraceCommandError(`member ${this.name} is running`);
    this.raft = this.env.factory(this.config, this.store.load());
  }
}

export class TraceCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TraceCommandError";
  }
}

export class InteractionEnv {
  readonly members = new Map<string, Member>();
  /** Messages sent and not yet delivered or dropped, in send order. */
  network: Message[] = [];
  /** Members cut off from everyone: messages from or to them are dropped on delivery. */
  readonly isolated = new Set<string>();
  /** Sides of a partition (members on no side are together): messages between sides are dropped. */
  readonly sides = new Map<string, number>();
  readonly safety = new SafetyChecks();

  /** Whether a message from `from` to `to` is lost to a partition, and how to say so. */
  cutOff(from: string, to: string): string | null {
    if (this.isolated.has(from) || this.isolated.has(to)) return "isolated";
    if ((this.sides.get(from) ?? 0) !== (this.sides.get(to) ?? 0)) return "partitioned";
    return null;
  }

  constructor(
    readonly factory: RaftFactory,
    readonly printer: Printer,
  ) {}

  addMember(options: MemberOptions): Member {
    const n = this.members.size + 1;
    const member = new Member(String(n), memberId(n), options, this);
    this.members.set(member.name, member);
    return member;
  }

  member(name: string): Member {
    const member = this.members.get(name);
    if (member === undefined) throw new TraceCommandError(`no member ${name}`);
    return member;
  }

  memberById(id: RaftNodeId): Member | undefined {
    return this.members.get(memberName(id));
  }

  /** Hands out a Ready and holds it, unpersisted. */
  takeReady(member: Member): string[] {
    const raft = member.running();
    if (member.held !== null) throw new TraceCommandError(`member ${member.name} already holds a Ready`);
    member.held = raft.ready();
    return this.printer.ready(member.name, member.held);
  }

  /** Persists the held Ready and sends its messages, without applying it (a crash may follow). */
  persistHeld(member: Member): string[] {
    member.running();
    if (member.held === null) throw new TraceCommandError(`member ${member.name} holds no Ready`);
    if (member.heldPersisted) throw new TraceCommandError(`member ${member.name} already persisted the Ready it holds`);
    this.persistAndSend(member, member.held);
    member.heldPersisted = true;
    return [`> ${member.name} persisted the Ready it holds and sent its messages`];
  }

  /** Does everything a Ready asks: persist, send, apply, advance. A held Ready goes first. */
  processReady(member: Member): string[] {
    const raft = member.running();
    let out: string[];
    let ready: Ready;
    if (member.held !== null) {
      ready = member.held;
      out = [`> ${member.name} ${member.heldPersisted ? "applying" : "persisting and applying"} the Ready it holds`];
      if (!member.heldPersisted) this.persistAndSend(member, ready);
      member.held = null;
      member.heldPersisted = false;
    } else {
      ready = raft.ready();
      out = this.printer.ready(member.name, ready);
      this.persistAndSend(member, ready);
    }
    let applied = member.store.applied;
    if (ready.snapshot) {
      this.safety.snapshotApplied(member.name, applied, ready.snapshot.meta.index);
      applied = ready.snapshot.meta.index;
    }
    for (const entry of ready.committedEntries) {
      this.safety.entryApplied(member.name, applied, entry);
      applied = entry.index;
    }
    member.store.apply(ready);
    raft.advance(ready);
    return out;
  }

  private persistAndSend(member: Member, ready: Ready): void {
    const before = { ...member.store.hardState };
    member.store.persist(ready);
    this.safety.persisted(member.name, before, member.store.hardState);
    for (const message of ready.messages) this.network.push(clone(message));
  }

  /** Safety violations since the last call, the leaders of every running member included. */
  safetyViolations(): string[] {
    for (const member of this.members.values()) {
      if (!member.up) continue;
      const status = member.running().status();
      if (status.role === "leader") this.safety.leaderSeen(member.name, status.term);
    }
    return this.safety.take();
  }

  /**
   * Delivers (or drops) the queued messages that match, in send order. Messages across a
   * partition (or from or to an isolated member), or to a member that is down or unknown, are
   * dropped and said so.
   */
  deliver(filter: (message: Message) => boolean, drop: boolean, how: { reverse?: boolean; keep?: boolean } = {}): string[] {
    const out: string[] = [];
    const chosen = this.network.filter(filter);
    // keep: the messages stay queued and arrive again later (a duplicating network).
    if (!how.keep) this.network = this.network.filter((m) => !filter(m));
    // reverse: the newest first (a reordering network).
    if (how.reverse) chosen.reverse();
    for (const message of chosen) {
      const line = this.printer.message(message);
      const from = memberName(message.from);
      const to = memberName(message.to);
      const recipient = this.memberById(message.to);
      let dropped: string | null = null;
      if (drop) dropped = "dropped";
      else if (this.cutOff(from, to) !== null) dropped = `dropped (${this.cutOff(from, to)})`;
      else if (recipient === undefined) dropped = "dropped (no such member)";
      else if (!recipient.up) dropped = `dropped (${to} is down)`;
      if (dropped !== null || recipient === undefined) {
        out.push(`${dropped}: ${line}`);
        continue;
      }
      out.push(line);
      try {
        recipient.running().step(clone(message));
      } catch (error) {
        out.push(`  step failed: ${describeError(error)}`);
      }
    }
    return out;
  }

  /** Process Readys and deliver messages among `names` until nothing is left to do. */
  stabilize(names: string[]): string[] {
    const out: string[] = [];
    const inSet = new Set(names);
    for (let round = 0; ; round++) {
      // Not a misuse of the trace but a behaviour (messages that never stop): recorded as an error.
      if (round > 1000) throw new Error("stabilize did not settle in 1000 rounds");
      let busy = false;
      for (const name of names) {
        const member = this.member(name);
        if (member.needsProcessing()) {
          busy = true;
          out.push(...this.processReady(member));
        }
      }
      for (const name of names) {
        const toIt = (m: Message) => memberName(m.to) === name && inSet.has(memberName(m.to));
        if (this.network.some(toIt)) {
          busy = true;
          out.push(`> ${name} receiving messages`, ...this.deliver(toIt, false).map((line) => `  ${line}`));
        }
      }
      if (!busy) return out;
    }
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
