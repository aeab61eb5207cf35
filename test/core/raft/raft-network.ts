// An in-memory cluster of Raft members for the state machine's tests: each member has a driver
// that does what a real one does with a Ready (persist snapshot, entries and hard state, then
// send, then apply, then advance), a durable store that is all a crashed member comes back with,
// and a network the test controls (deliver, drop, partition). Pure and deterministic.
import { createPrng, type Prng } from "../../helpers/prng.ts";
import { Raft } from "../../../src/core/raft/raft.ts";
import {
  EMPTY_HARD_STATE,
  type ClusterConfig,
  type Entry,
  type HardState,
  type Message,
  type PersistedRaft,
  type RaftConfig,
  type RaftNodeId,
  type ReadState,
  type Ready,
  type Snapshot,
} from "../../../src/core/raft/types.ts";

export class DurableStore {
  hardState: HardState = { ...EMPTY_HARD_STATE };
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  applied = 0;
  /** Every entry applied, in order (the application's state), as of the snapshot's base. */
  appliedEntries: Entry[] = [];
  /** What the application state held at the snapshot (entries up to it, for checks). */
  snapshotApplied: Entry[] = [];

  constructor(readonly bootstrap: ClusterConfig) {}

  persist(ready: Ready): void {
    if (ready.snapshot) {
      const snap = ready.snapshot;
      const at = this.entries.find((e) => e.index === snap.meta.index);
      this.entries = at !== undefined && at.term === snap.meta.term ? this.entries.filter((e) => e.index > snap.meta.index) : [];
      this.snapshot = snap;
    }
    if (ready.entries.length > 0) {
      const first = ready.entries[0]!.index;
      this.entries = this.entries.filter((e) => e.index < first).concat(ready.entries);
    }
    if (ready.hardState) this.hardState = { ...ready.hardState };
  }

  apply(ready: Ready, snapshotEntries: (s: Snapshot) => Entry[]): Entry[] {
    if (ready.snapshot) {
      this.appliedEntries = snapshotEntries(ready.snapshot);
      this.applied = ready.snapshot.meta.index;
    }
    const applied: Entry[] = [];
    for (const e of ready.committedEntries) {
      if (e.index !== this.applied + 1) throw new Error(`applied ${e.index} after ${this.applied}`);
      this.appliedEntries.push(e);
      this.applied = e.index;
      applied.push(e);
    }
    return applied;
  }

  load(): PersistedRaft {
    return {
      hardState: { ...this.hardState },
      snapshot: this.snapshot,
      entries: [...this.entries],
      config: this.bootstrap,
      applied: this.applied,
    };
  }
}

export interface MemberOptions {
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxEntriesPerAppend?: number;
  maxInflightAppends?: number;
}

export interface Member {
  id: RaftNodeId;
  raft: Raft;
  store: DurableStore;
  config: RaftConfig;
  readStates: ReadState[];
  /** Ready messages of this member not yet delivered (the network). */
}

/** Encodes snapshot data as the list of applied entries (so a restore can be checked). */
const snapshotStates = new Map<Uint8Array, Entry[]>();

export class Network {
  readonly members = new Map<RaftNodeId, Member>();
  /** Messages in flight, in send order. */
  inflight: Message[] = [];
  /** Pairs that cannot talk ("a>b" blocks a to b). */
  private cut = new Set<string>();
  readonly prng: Prng;

  constructor(ids: RaftNodeId[], private readonly options: MemberOptions = {}, seed = 1, voters: RaftNodeId[] = ids) {
    this.prng = createPrng(seed);
    for (const id of ids) this.addMember(id, { voters: [...voters].sort() });
  }

  addMember(id: RaftNodeId, bootstrap: ClusterConfig): Member {
    const store = new DurableStore(bootstrap);
    const member = this.start(id, store);
    this.members.set(id, member);
    return member;
  }

  private start(id: RaftNodeId, store: DurableStore): Member {
    const prng = this.prng;
    const o = this.options;
    const config: RaftConfig = {
      id,
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      randomInt: (bound) => prng.nextInt(bound),
      maxEntriesPerAppend: o.maxEntriesPerAppend ?? 64,
      maxInflightAppends: o.maxInflightAppends ?? 8,
    };
    return { id, raft: new Raft(config, store.load()), store, config, readStates: [] };
  }

  get(id: RaftNodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  raft(id: RaftNodeId): Raft {
    return this.get(id).raft;
  }

  /** Does what a driver does with one Ready of `id`. Returns the Ready. */
  processReady(id: RaftNodeId): Ready | undefined {
    const m = this.get(id);
    if (!m.raft.hasReady()) return undefined;
    const ready = m.raft.ready();
    m.store.persist(ready);
    checkPersistedBeforeSend(m.store, ready);
    for (const msg of ready.messages) this.send(msg);
    m.store.apply(ready, (s) => snapshotStates.get(s.data) ?? []);
    m.readStates.push(...ready.readStates);
    m.raft.advance(ready);
    return ready;
  }

  send(msg: Message): void {
    if (this.cut.has(`${msg.from}>${msg.to}`)) return;
    if (!this.members.has(msg.to)) return;
    this.inflight.push(msg);
  }

  /** Delivers every message in flight (and those they cause) until nothing moves. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of this.members.keys()) if (this.processReady(id)) moved = true;
      const batch = this.inflight;
      this.inflight = [];
      for (const msg of batch) {
        if (this.cut.has(`${msg.from}>${msg.to}`)) continue;
        const to = this.members.get(msg.to);
        if (!to) continue;
        to.raft.step(msg);
        moved = true;
      }
      if (!moved) return;
    }
    throw new Error("network did not settle");
  }

  /** Replaces `id`'s durable state and starts it again from it (a member with a given history). */
  load(id: RaftNodeId, state: { entries?: Entry[]; term?: number; vote?: RaftNodeId | null; commit?: number; applied?: number; snapshot?: Snapshot }): Member {
    const m = this.get(id);
    m.store.entries = state.entries ?? [];
    m.store.hardState = { term: state.term ?? 0, vote: state.vote ?? null, commit: state.commit ?? 0 };
    m.store.snapshot = state.snapshot;
    m.store.applied = state.applied ?? state.snapshot?.meta.index ?? 0;
    m.store.appliedEntries = m.store.entries.filter((e) => e.index <= m.store.applied);
    return this.restart(id);
  }

  /** Steps a message straight into its addressee (for tests that hand-craft messages). */
  deliver(msg: Message): void {
    this.get(msg.to).raft.step(msg);
  }

  /** Takes the messages `id` would send now (processing its Ready), without delivering them. */
  takeMessages(id: RaftNodeId): Message[] {
    this.processReady(id);
    const mine = this.inflight.filter((m) => m.from === id);
    this.inflight = this.inflight.filter((m) => m.from !== id);
    return mine;
  }

  tick(id: RaftNodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.raft(id).tick();
  }

  /** Ticks `id` until its election timeout fires (at most 2*electionTicks ticks). */
  timeout(id: RaftNodeId): void {
    const m = this.get(id);
    const before = m.raft.status();
    for (let i = 0; i < 2 * m.config.electionTicks; i++) {
      m.raft.tick();
      const now = m.raft.status();
      if (now.role !== before.role || now.term !== before.term) return;
    }
  }

  isolate(id: RaftNodeId): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  partition(...groups: RaftNodeId[][]): void {
    for (const a of groups) for (const b of groups) if (a !== b) for (const x of a) for (const y of b) this.cut.add(`${x}>${y}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Loses whatever was not persisted and starts `id` again from its store. */
  restart(id: RaftNodeId): Member {
    const old = this.get(id);
    this.inflight = this.inflight.filter((m) => m.to !== id);
    const member = this.start(id, old.store);
    this.members.set(id, member);
    return member;
  }

  /** The application compacts `id`'s log at `index` (≤ applied). */
  compact(id: RaftNodeId, index: number): Snapshot {
    const m = this.get(id);
    const data = new Uint8Array(8);
    const state = m.store.appliedEntries.filter((e) => e.index <= index);
    snapshotStates.set(data, state);
    const snapshot = m.raft.compact(index, data);
    m.store.snapshot = snapshot;
    m.store.entries = m.store.entries.filter((e) => e.index > index);
    return snapshot;
  }

  leader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.members.values()) {
      const s = m.raft.status();
      if (s.role === "leader" && (!best || s.term > best.raft.status().term)) best = m;
    }
    return best;
  }
}

export function text(data: string): Uint8Array {
  return new TextEncoder().encode(data);
}

export function fromText(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** A message with every field at its neutral value, then `fields`. */
export function message(fields: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

export function entry(index: number, term: number, data = ""): Entry {
  return { index, term, kind: "normal", data: text(data) };
}

/**
 * Persist before send: every message a Ready carries may depend only on what is durable once
 * that Ready is persisted (a granted vote on the vote, a request for votes on the term and the
 * self-vote, an accepted append on the entries it acknowledges).
 */
export function checkPersistedBeforeSend(store: DurableStore, ready: Ready): void {
  for (const msg of ready.messages) {
    // A later term persisted in the same Ready supersedes the vote: this member can vote no more in msg.term.
    const votedFor = (id: string) => store.hardState.term > msg.term || (store.hardState.term === msg.term && store.hardState.vote === id);
    if (msg.type === "vote" && !votedFor(msg.from)) {
      throw new Error(`${msg.from} asked for votes at term ${msg.term} before persisting term ${store.hardState.term} vote ${store.hardState.vote}`);
    }
    if (msg.type === "voteResponse" && !msg.reject && !votedFor(msg.to)) {
      throw new Error(`${msg.from} granted its vote to ${msg.to} at term ${msg.term} before persisting it`);
    }
    if (msg.type !== "preVote" && msg.type !== "preVoteResponse" && msg.term > store.hardState.term) {
      throw new Error(`${msg.from} sent ${msg.type} at term ${msg.term} before persisting the term (${store.hardState.term})`);
    }
    // An acknowledgement of an older term may speak of entries that a leader of a later term
    // replaced before this Ready: persisting both at once is the same as persisting the entries,
    // sending, then taking the later leader's log, with the message merely delayed.
    if (msg.type === "appendResponse" && !msg.reject && msg.term === store.hardState.term) {
      const snapIndex = store.snapshot?.meta.index ?? 0;
      const last = store.entries.length > 0 ? store.entries[store.entries.length - 1]!.index : snapIndex;
      if (msg.index > last) throw new Error(`${msg.from} acknowledged ${msg.index} with only ${last} persisted`);
    }
  }
}
