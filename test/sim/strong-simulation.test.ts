// Deterministic simulation of strong folders: 3 or 5 dsync nodes running the real Raft driver
// and commit path over the in-memory network, with partitions (one-way and leader-isolating
// ones too), kill -9 and restarts over a disk that loses what had not landed, paused nodes and
// clock jumps, every client operation on a strong folder recorded and the history checked for
// linearizability (see strong-cluster.ts).
//
// Seeds: 1-200 by default. SIM_SEEDS=N runs seeds 1..N, SIM_SEEDS=A-B runs seeds A..B:
//   SIM_SEEDS=1000 node_modules/.bin/bun test test/sim/strong-simulation.test.ts
//   SIM_SEEDS=1234-1234 node_modules/.bin/bun test test/sim/strong-simulation.test.ts
// The 200 default seeds take about 21 s on the 2-core machine when it is otherwise quiet (up to
// about 60 s while other work shares it); 20 000 more (1001-21000) ran outside the suite in
// chunks of 500, 10 000 in 17 to 20 minutes, none failing. A failing seed prints one line with
// its first failure and how to rerun it alone; seeds that once failed get a named test in
// strong-regressions.test.ts. SIM_HARSH=1 runs the same seeds on a far worse network with far
// more faults (harshOverrides), which the suite does not. STRONG_SIM_UNGUARDED=1 lets clients
// push through nodes that do not hold the folder yet (strong-cluster.ts, guardUnknownFolder).
import { afterEach, describe, expect, test } from "bun:test";
import type { RaftRole } from "../../src/core/raft/types.ts";
import type { ConsensusStatus } from "../../src/consensus/strong-consensus.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import type { PeerService } from "../../src/replication/peer-service.ts";
import { seedsFromEnv } from "./cluster.ts";
import { incarnationMetadata } from "./durable-metadata.ts";
import { Network, type Incarnation } from "./network.ts";
import { drainMicrotasks, Scheduler, SimRandom } from "./scheduler.ts";
import { harshOverrides, runStrongSimulation, strongFailureLine } from "./strong-cluster.ts";
import { RaftSafety } from "./strong-safety.ts";

const DEFAULT_SEEDS = 200;
const seeds = seedsFromEnv(process.env.SIM_SEEDS, DEFAULT_SEEDS);
const range = `${seeds[0]}-${seeds.at(-1)}`;
const harsh = process.env.SIM_HARSH === "1";
const rerunPrefix = `${harsh ? "SIM_HARSH=1 " : ""}${process.env.STRONG_SIM_UNGUARDED === "1" ? "STRONG_SIM_UNGUARDED=1 " : ""}`;

let running: number | null = null;
afterEach(() => {
  if (running !== null) {
    console.error(`strong simulation seed ${running} failed: it was running when the test ended (see the error above); rerun with ${rerunPrefix}SIM_SEEDS=${running}-${running} node_modules/.bin/bun test test/sim/strong-simulation.test.ts`);
  }
  running = null;
});

describe("strong folder simulation", () => {
  test(
    `seeds ${range}${harsh ? " (harsh)" : ""}: one leader per term, committed entries kept, every strong history linearizable (SIM_SEEDS=N or A-B for other seeds)`,
    async () => {
      const started = performance.now();
      const failed: number[] = [];
      const totals = {
        pushesOk: 0,
        pushesUnknown: 0,
        pushesFailed: 0,
        landed: 0,
        neverLanded: 0,
        readsOk: 0,
        redirects: 0,
        eventual: 0,
        eventualOnMinority: 0,
        partitions: 0,
        leaderIsolations: 0,
        oneWay: 0,
        crashes: 0,
        leaderCrashes: 0,
        pauses: 0,
        clockJumps: 0,
        diskWritesLost: 0,
        terms: 0,
        snapshots: 0,
        events: 0,
      };
      let slowestAgreementMs = 0;
      for (const seed of seeds) {
        running = seed;
        const report = await runStrongSimulation(seed, harsh ? harshOverrides() : {});
        running = null;
        if (report.failures.length > 0) {
          console.error(strongFailureLine(report, rerunPrefix));
          failed.push(seed);
        }
        totals.pushesOk += report.operations.pushesOk;
        totals.pushesUnknown += report.operations.pushesUnknown;
        totals.pushesFailed += report.operations.pushesFailed;
        totals.landed += report.operations.landed;
        totals.neverLanded += report.operations.neverLanded;
        totals.readsOk += report.operations.readsOk;
        totals.redirects += report.operations.redirects;
        totals.eventual += report.eventual.acknowledged;
        totals.eventualOnMinority += report.eventual.acknowledgedOnMinority;
        totals.partitions += report.faults.partitions;
        totals.leaderIsolations += report.faults.leaderIsolations;
        totals.oneWay += report.faults.oneWay;
        totals.crashes += report.faults.crashes;
        totals.leaderCrashes += report.faults.leaderCrashes;
        totals.pauses += report.faults.pauses;
        totals.clockJumps += report.faults.clockJumps;
        totals.diskWritesLost += report.faults.diskWritesLost;
        totals.terms += report.raft.terms;
        totals.snapshots += report.raft.snapshotsInstalled;
        totals.events += report.events;
        slowestAgreementMs = Math.max(slowestAgreementMs, report.agreedAfterHealMs ?? 0);
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `strong simulation: ${seeds.length} seeds (${range}) in ${seconds} s; ${totals.events} events; strong pushes ${totals.pushesOk} acknowledged, ` +
          `${totals.pushesUnknown} indeterminate (${totals.landed} landed, ${totals.neverLanded} never), ${totals.pushesFailed} refused; ` +
          `${totals.readsOk} linearizable reads; ${totals.redirects} redirects; ${totals.eventual} eventual pushes (${totals.eventualOnMinority} on a minority side); ` +
          `${totals.partitions} partitions (${totals.leaderIsolations} isolating the leader, ${totals.oneWay} one-way), ${totals.crashes} crashes ` +
          `(${totals.leaderCrashes} of the leader, ${totals.diskWritesLost} metadata writes lost), ${totals.pauses} pauses, ${totals.clockJumps} clock jumps; ` +
          `${totals.terms} terms with a leader, ${totals.snapshots} snapshots installed; slowest agreement ${slowestAgreementMs} ms after healing; ${failed.length} failed${failed.length ? `: ${failed.join(", ")}` : ""}`,
      );
      expect(failed).toEqual([]);
      // The runs must reach the paths they are there to test (some are rare: a push acknowledged
      // on a minority side comes about once in seven seeds, so only a run of many seeds is held to them).
      if (seeds.length >= 100) {
        expect(totals.pushesOk).toBeGreaterThan(0);
        expect(totals.readsOk).toBeGreaterThan(0);
        expect(totals.landed + totals.neverLanded).toBeGreaterThan(0);
        expect(totals.leaderIsolations).toBeGreaterThan(0);
        expect(totals.oneWay).toBeGreaterThan(0);
        expect(totals.leaderCrashes).toBeGreaterThan(0);
        expect(totals.pauses).toBeGreaterThan(0);
        expect(totals.clockJumps).toBeGreaterThan(0);
        expect(totals.diskWritesLost).toBeGreaterThan(0);
        expect(totals.eventualOnMinority).toBeGreaterThan(0);
        expect(totals.snapshots).toBeGreaterThan(0);
      }
    },
    Math.max(120_000, seeds.length * 5_000),
  );

  test("one seed run twice gives the same trace", async () => {
    const first = await runStrongSimulation(2);
    const second = await runStrongSimulation(2);
    expect(first.failures).toEqual([]);
    expect(first.operations.pushesOk).toBeGreaterThan(0);
    expect(second.traceHash).toBe(first.traceHash);
    expect(second.events).toBe(first.events);
    const other = await runStrongSimulation(3);
    expect(other.traceHash).not.toBe(first.traceHash);
  }, 60_000);
});

describe("strong simulation harness", () => {
  function twoNodes() {
    const scheduler = new Scheduler(0);
    const network = new Network(scheduler, new SimRandom(1), { minDelayMs: 5, maxDelayMs: 5, timeoutMs: 1_000, dropRate: 0, duplicateRate: 0 });
    const handledAt: number[] = [];
    const service = {
      listFolders: async () => {
        handledAt.push(scheduler.nowMs());
        return { node: "b", folders: [] };
      },
    } as unknown as PeerService;
    const a = { address: "a", number: 1, alive: true };
    const b = { address: "b", number: 2, alive: true };
    network.attach(a, service);
    network.attach(b, service);
    return { scheduler, network, a, b, handledAt, fromA: network.transportFor(a), fromB: network.transportFor(b) };
  }

  test("a link cut one way drops requests that way and replies coming back that way", async () => {
    const { scheduler, network, fromA, fromB, handledAt } = twoNodes();
    network.blockLink("a", "b");
    const outcomes: string[] = [];
    void fromA.listFolders("b").then(
      () => outcomes.push("a->b answered"),
      () => outcomes.push(`a->b failed@${scheduler.nowMs()}`),
    );
    await scheduler.runUntil(2_000);
    expect(handledAt).toEqual([]);
    // b's request reaches a, but a's reply to b travels the cut way: b times out, a handled it.
    void fromB.listFolders("a").then(
      () => outcomes.push("b->a answered"),
      () => outcomes.push(`b->a failed@${scheduler.nowMs()}`),
    );
    await scheduler.runUntil(4_000);
    expect(handledAt).toEqual([2_005]);
    expect(outcomes).toEqual(["a->b failed@1000", "b->a failed@3000"]);
    network.heal();
    void fromA.listFolders("b").then(() => outcomes.push("a->b answered"));
    await scheduler.runUntil(6_000);
    expect(outcomes.at(-1)).toBe("a->b answered");
  });

  test("a paused node takes nothing until it resumes, then everything in order, its own timeouts late", async () => {
    const { scheduler, network, fromA, fromB, handledAt } = twoNodes();
    network.pause("b");
    const outcomes: string[] = [];
    void fromA.listFolders("b").then(() => outcomes.push(`a answered@${scheduler.nowMs()}`));
    void fromB.listFolders("a").then(
      () => outcomes.push("b answered"),
      () => outcomes.push(`b timed out@${scheduler.nowMs()}`),
    );
    // b's call reaches a (a is awake) and a answers at 10; b hears nothing until it resumes.
    await scheduler.runUntil(500);
    expect(handledAt).toEqual([5]);
    expect(outcomes).toEqual([]);
    scheduler.schedule(0, "resume", () => network.resume("b"));
    await scheduler.runUntil(600);
    // At resume: a's request is handled by b; b's reply (held since 10) arrives.
    expect(handledAt).toEqual([5, 500]);
    expect(outcomes).toEqual(["b answered", "a answered@505"]);
    // A call b makes to nobody times out at 1 600; b, paused from 1 000 to 2 500, hears of it at 2 500.
    void fromB.listFolders("nobody").catch(() => outcomes.push(`b timed out@${scheduler.nowMs()}`));
    scheduler.schedule(400, "pause", () => network.pause("b"));
    scheduler.schedule(1_900, "resume", () => network.resume("b"));
    await scheduler.runUntil(4_000);
    expect(outcomes.at(-1)).toBe("b timed out@2500");
  });

  test("a metadata write not landed at a crash is lost whole; a landed one stays; a broken disk acknowledges early", async () => {
    const scheduler = new Scheduler(0);
    const random = new SimRandom(5);
    const disk = SqliteMetadataStore.open(":memory:");
    const first: Incarnation = { address: "n1", number: 1, alive: true };
    const landed: string[] = [];
    const view = incarnationMetadata(disk, first, scheduler, random, { maxWriteMs: 10, whenAwake: (run) => run(), onLanded: (method, args) => landed.push(`${method} ${args[0]}`) });
    let resolved = 0;
    void view.setMeta("kept", "1").then(() => resolved++);
    await scheduler.runUntil(20);
    expect(resolved).toBe(1);
    void view.setMeta("lost", "1").then(() => resolved++);
    first.alive = false;
    await scheduler.runUntil(40);
    expect(resolved).toBe(1);
    expect(await disk.getMeta("kept")).toBe("1");
    expect(await disk.getMeta("lost")).toBeUndefined();
    expect(landed).toEqual(["setMeta kept"]);

    const second: Incarnation = { address: "n1", number: 2, alive: true };
    const broken = incarnationMetadata(disk, second, scheduler, random, { maxWriteMs: 10, acknowledgeEarly: true, whenAwake: (run) => run() });
    let acknowledged = false;
    void broken.setRaftApplied(5).then(() => (acknowledged = true));
    await drainMicrotasks();
    expect(acknowledged).toBe(true);
    second.alive = false;
    await scheduler.runUntil(80);
    expect((await disk.loadRaft())?.applied ?? 0).toBe(0);
    await disk.close();
  });

  const status = (nodeId: string, role: RaftRole, term: number, commit = 0): ConsensusStatus => ({
    nodeId,
    role,
    term,
    leader: null,
    commit,
    applied: commit,
    lastIndex: commit,
    members: [],
    lastLeaderContactMs: null,
  });
  const entry = (index: number, term: number, text: string) => ({ index, term, kind: "normal" as const, data: new TextEncoder().encode(text) });

  test("the safety checks see two leaders in a term, a term or commit going back, a restart below its disk", () => {
    const safety = new RaftSafety(new Set());
    safety.observe("n1", 1, status("n1", "leader", 3));
    safety.observe("n2", 1, status("n2", "follower", 3));
    expect(safety.failures).toEqual([]);
    safety.observe("n2", 1, status("n2", "leader", 3));
    expect(safety.failures).toEqual(["two leaders in term 3: n1 and n2"]);
    const back = new RaftSafety(new Set());
    back.observe("n1", 1, status("n1", "follower", 4, 7));
    back.observe("n1", 1, status("n1", "follower", 3, 6));
    expect(back.failures).toEqual(["n1: its term went back from 4 to 3", "n1: its commit index went back from 7 to 6", "n1: its applied index went back from 7 to 6"]);
    const restart = new RaftSafety(new Set());
    restart.landed("n1", "saveRaft", [{ hardState: { term: 5, vote: "n2", commit: 1 }, entries: [entry(1, 5, "a")] }]);
    restart.observe("n1", 2, status("n1", "follower", 4, 1));
    expect(restart.failures).toEqual(["n1 restarted at term 4, below the term 5 its disk held"]);
  });

  test("the safety checks see a committed entry overwritten or committed differently, and a fork in a strong folder's heads", () => {
    const safety = new RaftSafety(new Set(["ledger"]));
    safety.landed("n1", "saveRaft", [{ hardState: { term: 1, vote: "n1", commit: 2 }, entries: [entry(1, 1, "a"), entry(2, 1, "b")] }]);
    // A lagging node may hold a deposed leader's entry there, uncommitted; not once it commits it.
    safety.landed("n2", "saveRaft", [{ entries: [entry(1, 1, "a"), entry(2, 2, "x")] }]);
    expect(safety.failures).toEqual([]);
    safety.landed("n2", "saveRaft", [{ hardState: { term: 2, vote: null, commit: 2 } }]);
    expect(safety.failures).toEqual(["index 2 is committed as term 1 on n1 but as term 2 on n2"]);
    const other = new RaftSafety(new Set());
    other.landed("n1", "saveRaft", [{ hardState: { term: 1, vote: "n1", commit: 1 }, entries: [entry(1, 1, "a")] }]);
    other.landed("n3", "saveRaft", [{ entries: [entry(1, 1, "z")], hardState: { term: 1, vote: null, commit: 1 } }]);
    expect(other.failures).toEqual(["index 1 is committed as term 1 on n1 but as term 1 with other data on n3"]);
    other.landed("n1", "saveRaft", [{ entries: [entry(1, 2, "q")] }]);
    expect(other.failures).toContain("n1 overwrote index 1, committed on its disk, with term 2; the committed entry there (on n1) is of term 1");
    const heads = new RaftSafety(new Set(["ledger"]));
    const id = (byte: number) => new Uint8Array(32).fill(byte);
    for (const node of ["n1", "n2"]) heads.landed(node, "ensureFolder", ["ledger", 0, { mode: "strong" }]);
    heads.landed("n1", "commitVersions", ["ledger", null, id(1), [], 0]);
    heads.landed("n2", "commitVersions", ["ledger", null, id(1), [], 0]);
    heads.landed("n1", "commitVersions", ["ledger", id(1), id(2), [], 0]);
    expect(heads.failures).toEqual([]);
    heads.landed("n2", "commitVersions", ["ledger", id(1), id(3), [], 0]);
    expect(heads.failures.length).toBe(1);
    expect(heads.failures[0]).toContain("two members applied different entries");
    expect(heads.history("ledger").length).toBe(2);
  });
});
