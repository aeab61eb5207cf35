// Raft's safety properties (§5.2 Figure 3) checked after every step of seeded random runs: an
// in-memory cluster whose network loses, duplicates and reorders messages and partitions
// members (both ways or one way), whose members crash and come back with only what their
// driver persisted (a Ready handed out but not yet persisted is lost), while the leader takes
// proposals, membership changes, reads and leadership transfers, and members compact their
// logs. Checked:
// - election safety: at most one leader per term;
// - log matching: two logs holding an entry with the same index and term hold the same entries
//   up to it (checked by induction: an entry's predecessor term and data are fixed once seen);
// - leader completeness: a new leader of term T holds every entry committed in a term before T;
// - state machine safety: every member applies the same entry at the same index;
// - terms and commit never go back on a member, in memory or on disk;
// - ReadIndex: a read point is at least every commit known before the read was asked;
// then, healed, the cluster elects a leader and every voter catches up (liveness).
// DSYNC_RAFT_SEEDS=10000 runs that many seeds instead of the default.
import { expect, test } from "bun:test";
import { createPrng, type Prng } from "../../helpers/prng.ts";
import { Raft } from "../../../src/core/raft/raft.ts";
import { ProposalDroppedError, type Entry, type Message, type RaftConfig, type RaftNodeId, type Ready, type Snapshot } from "../../../src/core/raft/types.ts";
import { checkPersistedBeforeSend, DurableStore } from "./raft-network.ts";

interface Node {
  id: RaftNodeId;
  raft: Raft;
  store: DurableStore;
  /** What this member's application applied, by index (term and data). */
  lastTerm: number;
  lastCommit: number;
}

interface Run {
  prng: Prng;
  nodes: Map<RaftNodeId, Node>;
  pool: RaftNodeId[];
  network: Message[];
  cut: Set<string>;
  leaders: Map<number, RaftNodeId>;
  /** Every entry applied anywhere, by index. */
  applied: Map<number, { term: number; data: string }>;
  /** For each (index, term) seen in a persisted log: the predecessor's term and the data. */
  seen: Map<string, { prevTerm: number; data: string }>;
  /** Committed index -> the lowest term of a leader known to have it committed, and its term. */
  committed: Map<number, { commitTerm: number; term: number }>;
  /** Snapshot data -> the applied entries it stands for. */
  snapshotState: Map<Uint8Array, Entry[]>;
  /** Pending reads: context -> the highest commit any member knew when it was asked. */
  reads: Map<string, number>;
  preVote: boolean;
  checkQuorum: boolean;
  maxEntriesPerAppend: number;
  maxInflightAppends: number;
  electionTicks: number;
  heartbeatTicks: number;
  proposals: number;
  stats: Stats;
}

interface Stats {
  steps: number;
  leadersElected: number;
  configChanges: number;
  snapshotsSent: number;
  readsServed: number;
  transfers: number;
  crashes: number;
}

const decoder = new TextDecoder();

function raftConfig(run: Run, id: RaftNodeId): RaftConfig {
  return {
    id,
    electionTicks: run.electionTicks,
    heartbeatTicks: run.heartbeatTicks,
    preVote: run.preVote,
    checkQuorum: run.checkQuorum,
    randomInt: (bound) => run.prng.nextInt(bound),
    maxEntriesPerAppend: run.maxEntriesPerAppend,
    maxInflightAppends: run.maxInflightAppends,
  };
}

function startNode(run: Run, id: RaftNodeId, store: DurableStore): Node {
  const raft = new Raft(raftConfig(run, id), store.load());
  const s = raft.status();
  const previous = run.nodes.get(id);
  if (previous) {
    // A restart comes back with no lower term or commit than its disk holds.
    if (s.term < store.hardState.term || s.commit < store.hardState.commit) throw new Error(`${id} restarted below its disk`);
  }
  return { id, raft, store, lastTerm: s.term, lastCommit: s.commit };
}

function fail(run: Run, seed: number, why: string): never {
  throw new Error(`seed ${seed}, step ${run.stats.steps}: ${why}`);
}

function persistAndApply(run: Run, seed: number, node: Node, ready: Ready): void {
  const store = node.store;
  const hardBefore = { ...store.hardState };
  // Log matching, by induction over what is persisted.
  if (ready.entries.length > 0) {
    const first = ready.entries[0]!.index;
    let prevTerm = first - 1 === (store.snapshot?.meta.index ?? -1) ? store.snapshot!.meta.term : store.entries.find((e) => e.index === first - 1)?.term ?? 0;
    if (ready.snapshot && ready.snapshot.meta.index === first - 1) prevTerm = ready.snapshot.meta.term;
    for (const e of ready.entries) {
      const key = `${e.index}/${e.term}`;
      const data = decoder.decode(e.data) + `|${e.kind}`;
      const known = run.seen.get(key);
      if (known && (known.prevTerm !== prevTerm || known.data !== data)) fail(run, seed, `log matching: ${node.id} holds ${key} after term ${prevTerm} (${data}), another log after ${known.prevTerm} (${known.data})`);
      if (!known) run.seen.set(key, { prevTerm, data });
      prevTerm = e.term;
    }
  }
  store.persist(ready);
  try {
    checkPersistedBeforeSend(store, ready);
  } catch (error) {
    fail(run, seed, (error as Error).message);
  }
  if (store.hardState.term < hardBefore.term || store.hardState.commit < hardBefore.commit) fail(run, seed, `${node.id}'s persisted term or commit went back`);
  if (store.hardState.term === hardBefore.term && hardBefore.vote !== null && store.hardState.vote !== hardBefore.vote) fail(run, seed, `${node.id} changed its vote within term ${hardBefore.term}`);
  for (const m of ready.messages) {
    if (m.type === "snapshot") run.stats.snapshotsSent++;
    if (m.entries.length > run.maxEntriesPerAppend) fail(run, seed, `${node.id} sent ${m.entries.length} entries in one append (at most ${run.maxEntriesPerAppend})`);
    run.network.push(m);
  }
  const appliedNow = store.apply(ready, (s) => {
    const state = run.snapshotState.get(s.data);
    if (!state) fail(run, seed, `unknown snapshot data`);
    return [...state];
  });
  if (ready.snapshot) {
    for (const e of store.appliedEntries) checkApplied(run, seed, node, e);
  }
  for (const e of appliedNow) checkApplied(run, seed, node, e);
  for (const rs of ready.readStates) {
    const key = decoder.decode(rs.context);
    const floor = run.reads.get(key);
    if (floor !== undefined) {
      if (rs.index < floor) fail(run, seed, `read ${key} answered at ${rs.index}, below commit ${floor} known when it was asked`);
      run.stats.readsServed++;
    }
  }
  node.raft.advance(ready);
}

function checkApplied(run: Run, seed: number, node: Node, e: Entry): void {
  const data = decoder.decode(e.data) + `|${e.kind}`;
  const known = run.applied.get(e.index);
  if (!known) run.applied.set(e.index, { term: e.term, data });
  else if (known.term !== e.term || known.data !== data) fail(run, seed, `state machine safety: ${node.id} applied ${e.index}/${e.term} (${data}), another member ${e.index}/${known.term} (${known.data})`);
}

/** Checks run after every step. */
function checkInvariants(run: Run, seed: number): void {
  for (const node of run.nodes.values()) {
    const s = node.raft.status();
    if (s.term < node.lastTerm) fail(run, seed, `${node.id}'s term went back from ${node.lastTerm} to ${s.term}`);
    if (s.commit < node.lastCommit) fail(run, seed, `${node.id}'s commit went back from ${node.lastCommit} to ${s.commit}`);
    node.lastTerm = s.term;
    node.lastCommit = s.commit;
    if ((s.role === "candidate" || s.role === "preCandidate") && !s.config.voters.includes(node.id)) fail(run, seed, `${node.id} campaigns outside its config ${s.config.voters.join(",")}`);
    if (s.role !== "leader") continue;
    const known = run.leaders.get(s.term);
    if (known === undefined) {
      run.leaders.set(s.term, node.id);
      run.stats.leadersElected++;
      // Leader completeness: it holds every entry committed in an earlier term.
      // (Entries its snapshot covers are committed ones, checked when applied.)
      const held = new Map(node.raft.entriesBetween(1, s.lastIndex).map((e) => [e.index, e.term]));
      const compactedThrough = snapshotIndexOf(node);
      for (const [index, c] of run.committed) {
        if (c.commitTerm >= s.term) continue;
        const term = held.get(index);
        if (term === undefined && index > compactedThrough) fail(run, seed, `leader completeness: ${node.id}, leader of term ${s.term}, lacks ${index} committed in term ${c.commitTerm}`);
        if (term !== undefined && term !== c.term) fail(run, seed, `leader completeness: ${node.id}, leader of term ${s.term}, holds ${index}/${term}, committed as ${index}/${c.term}`);
      }
    } else if (known !== node.id) {
      fail(run, seed, `election safety: ${known} and ${node.id} both lead term ${s.term}`);
    }
    // One membership change pending at a time (thesis §4.1): after what any leader has known
    // committed, a leader's log holds at most one config entry (its own commit may lag).
    let knownCommitted = 0;
    for (const index of run.committed.keys()) knownCommitted = Math.max(knownCommitted, index);
    const pending = node.raft.entriesBetween(knownCommitted + 1, s.lastIndex).filter((e) => e.kind === "config").length;
    if (pending > 1) fail(run, seed, `${node.id} leads with ${pending} uncommitted config entries`);
    // What this leader has committed, in its term.
    for (const e of node.raft.entriesBetween(1, s.commit)) {
      const c = run.committed.get(e.index);
      if (!c) run.committed.set(e.index, { commitTerm: s.term, term: e.term });
      else if (c.term !== e.term) fail(run, seed, `${node.id} (term ${s.term}) committed ${e.index}/${e.term}, already committed as ${e.index}/${c.term}`);
      else if (s.term < c.commitTerm) c.commitTerm = s.term;
    }
  }
}

function snapshotIndexOf(node: Node): number {
  const s = node.raft.status();
  const held = node.raft.entriesBetween(1, s.lastIndex);
  return held.length > 0 ? held[0]!.index - 1 : s.lastIndex;
}

function currentLeader(run: Run): Node | undefined {
  let best: Node | undefined;
  for (const node of run.nodes.values()) {
    const s = node.raft.status();
    if (s.role === "leader" && (!best || s.term > best.raft.status().term)) best = node;
  }
  return best;
}

function maxCommit(run: Run): number {
  let max = 0;
  for (const node of run.nodes.values()) max = Math.max(max, node.raft.status().commit);
  return max;
}

function deliver(run: Run, m: Message): void {
  const to = run.nodes.get(m.to);
  if (!to) return;
  if (m.type === "snapshot") run.nodes.get(m.from)?.raft.reportSnapshot(m.to, true);
  to.raft.step(m);
}

function drop(run: Run, m: Message): void {
  // A driver learns that a snapshot did not arrive most of the time, not always.
  if (m.type === "snapshot" && run.prng.nextInt(2) === 0) run.nodes.get(m.from)?.raft.reportSnapshot(m.to, false);
}

function randomStep(run: Run, seed: number): void {
  const p = run.prng;
  const ids = [...run.nodes.keys()];
  const pick = <T>(list: T[]): T => list[p.nextInt(list.length)]!;
  const roll = p.nextInt(1000);
  if (roll < 300) {
    // Deliver a message in flight: any of them (reordering), sometimes dropped or duplicated.
    if (run.network.length === 0) return;
    const at = p.nextInt(run.network.length);
    const m = run.network[at]!;
    const lost = run.cut.has(`${m.from}>${m.to}`) || p.nextInt(100) < 5;
    const duplicated = !lost && p.nextInt(100) < 3;
    if (!duplicated) run.network.splice(at, 1);
    if (lost) drop(run, m);
    else deliver(run, m);
  } else if (roll < 520) {
    run.nodes.get(pick(ids))!.raft.tick();
  } else if (roll < 760) {
    const node = run.nodes.get(pick(ids))!;
    if (node.raft.hasReady()) persistAndApply(run, seed, node, node.raft.ready());
  } else if (roll < 850) {
    const leader = currentLeader(run);
    if (!leader) return;
    try {
      leader.raft.propose(new TextEncoder().encode(`p${run.proposals++}`));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
    }
  } else if (roll < 870) {
    // Crash and restart; half the time a Ready was handed out and not yet persisted.
    const node = run.nodes.get(pick(ids))!;
    if (p.nextInt(2) === 0 && node.raft.hasReady()) node.raft.ready();
    run.nodes.set(node.id, startNode(run, node.id, node.store));
    run.stats.crashes++;
  } else if (roll < 890) {
    // A partition: a random minority cut off; or healed.
    run.cut.clear();
    const kind = p.nextInt(4);
    if (kind === 1 || kind === 2) {
      const isolated = ids.filter(() => p.nextInt(3) === 0);
      for (const a of isolated) for (const b of ids) if (!isolated.includes(b)) {
        run.cut.add(`${a}>${b}`);
        run.cut.add(`${b}>${a}`);
      }
    } else if (kind === 3) {
      // One-way links: some members hear others that cannot hear them.
      for (const a of ids) for (const b of ids) if (a !== b && p.nextInt(4) === 0) run.cut.add(`${a}>${b}`);
    }
  } else if (roll < 905) {
    const leader = currentLeader(run);
    if (!leader) return;
    const voters = leader.raft.status().config.voters;
    const outside = run.pool.filter((id) => !voters.includes(id));
    const add = voters.length <= 2 || (outside.length > 0 && p.nextInt(2) === 0);
    const node = add ? pick(outside) : pick(voters);
    if (node === undefined) return;
    try {
      leader.raft.proposeConfigChange(add ? { type: "add", node, address: `http://${node}` } : { type: "remove", node, address: "" });
      run.stats.configChanges++;
      if (add && !run.nodes.has(node)) run.nodes.set(node, startNode(run, node, new DurableStore({ voters: [] })));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
    }
  } else if (roll < 925) {
    const node = run.nodes.get(pick(ids))!;
    const s = node.raft.status();
    const from = snapshotIndexOf(node) + 1;
    if (s.applied < from) return;
    const index = from + p.nextInt(s.applied - from + 1);
    const data = new Uint8Array(1);
    run.snapshotState.set(data, node.store.appliedEntries.filter((e) => e.index <= index));
    const snapshot: Snapshot = node.raft.compact(index, data);
    node.store.snapshot = snapshot;
    node.store.entries = node.store.entries.filter((e) => e.index > index);
  } else if (roll < 950) {
    const node = run.nodes.get(pick(ids))!;
    const context = `r${seed}-${run.stats.steps}`;
    run.reads.set(context, maxCommit(run));
    node.raft.readIndex(new TextEncoder().encode(context));
  } else if (roll < 955) {
    // The driver could not reach a member.
    const leader = currentLeader(run);
    if (leader) leader.raft.reportUnreachable(pick(ids));
  } else if (roll < 960) {
    const leader = currentLeader(run);
    if (!leader) return;
    const others = leader.raft.status().config.voters.filter((id) => id !== leader.id);
    if (others.length === 0) return;
    leader.raft.transferLeadership(pick(others));
    run.stats.transfers++;
  } else {
    // Every member ticks once (time passes evenly for a while).
    for (const node of run.nodes.values()) node.raft.tick();
  }
}

/** Heals everything and runs a perfect network; a leader must emerge and every voter catch up. */
function settle(run: Run, seed: number): void {
  run.cut.clear();
  for (let round = 0; round < 600; round++) {
    for (const node of run.nodes.values()) node.raft.tick();
    for (let inner = 0; inner < 50; inner++) {
      let moved = false;
      for (const node of run.nodes.values()) {
        if (node.raft.hasReady()) {
          persistAndApply(run, seed, node, node.raft.ready());
          moved = true;
        }
      }
      const batch = run.network;
      run.network = [];
      for (const m of batch) {
        deliver(run, m);
        moved = true;
      }
      checkInvariants(run, seed);
      if (!moved) break;
    }
    const leader = currentLeader(run);
    if (leader && round > 30) {
      const s = leader.raft.status();
      const caughtUp = s.config.voters.every((id) => {
        const n = run.nodes.get(id);
        return n !== undefined && n.raft.status().applied === s.lastIndex && n.raft.status().commit === s.lastIndex;
      });
      if (caughtUp && s.commit === s.lastIndex && s.role === "leader") return;
    }
  }
  const summary = [...run.nodes.values()].map((n) => {
    const s = n.raft.status();
    return `${n.id}: ${s.role} term ${s.term} commit ${s.commit} applied ${s.applied} last ${s.lastIndex} voters ${s.config.voters.join(",")} progress ${JSON.stringify(s.progress)}`;
  });
  fail(run, seed, `no leader with every voter caught up after healing:\n${summary.join("\n")}`);
}

function runSeed(seed: number, size: number, steps: number): Stats {
  const prng = createPrng(seed);
  const voters = Array.from({ length: size }, (_, i) => String(i + 1));
  const run: Run = {
    prng,
    nodes: new Map(),
    pool: Array.from({ length: size + 2 }, (_, i) => String(i + 1)),
    network: [],
    cut: new Set(),
    leaders: new Map(),
    applied: new Map(),
    seen: new Map(),
    committed: new Map(),
    snapshotState: new Map(),
    reads: new Map(),
    preVote: prng.nextInt(2) === 0,
    checkQuorum: prng.nextInt(2) === 0,
    // One entry per append makes a new leader copy old entries one by one (Figure 8's setting).
    maxEntriesPerAppend: 1 + prng.nextInt(3),
    maxInflightAppends: 1 + prng.nextInt(3),
    electionTicks: 5 + 5 * prng.nextInt(2),
    heartbeatTicks: 1 + prng.nextInt(3),
    proposals: 0,
    stats: { steps: 0, leadersElected: 0, configChanges: 0, snapshotsSent: 0, readsServed: 0, transfers: 0, crashes: 0 },
  };
  for (const id of voters) run.nodes.set(id, startNode(run, id, new DurableStore({ voters })));
  for (let i = 0; i < steps; i++) {
    run.stats.steps++;
    randomStep(run, seed);
    checkInvariants(run, seed);
  }
  settle(run, seed);
  return run.stats;
}

const SEEDS = Number(process.env.DSYNC_RAFT_SEEDS ?? "600");

test(`Raft keeps its safety properties over ${SEEDS} seeded random runs (3 and 5 members) and recovers once healed`, () => {
  const total: Stats = { steps: 0, leadersElected: 0, configChanges: 0, snapshotsSent: 0, readsServed: 0, transfers: 0, crashes: 0 };
  const firstSeed = Number(process.env.DSYNC_RAFT_FIRST_SEED ?? "1");
  for (let seed = firstSeed; seed < firstSeed + SEEDS; seed++) {
    const stats = runSeed(seed, seed % 2 === 0 ? 3 : 5, 3000);
    for (const key of Object.keys(total) as (keyof Stats)[]) total[key] += stats[key];
  }
  if (process.env.DSYNC_RAFT_SEEDS) console.log(JSON.stringify(total));
  // The runs exercised what they claim to.
  expect(total.leadersElected).toBeGreaterThan(SEEDS);
  expect(total.configChanges).toBeGreaterThan(SEEDS / 4);
  expect(total.snapshotsSent).toBeGreaterThan(SEEDS / 10);
  expect(total.readsServed).toBeGreaterThan(SEEDS / 4);
  expect(total.crashes).toBeGreaterThan(SEEDS);
}, 120_000);
