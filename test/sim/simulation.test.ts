// Deterministic simulation of 3 to 7 dsync nodes running the real replication code over an
// in-memory network with delays, lost and duplicated messages, partitions, crashes and
// restarts, under a random client workload (see cluster.ts).
//
// Seeds: 1-200 by default. SIM_SEEDS=N runs seeds 1..N, SIM_SEEDS=A-B runs seeds A..B:
//   SIM_SEEDS=1000 node_modules/.bin/bun test test/sim/simulation.test.ts
//   SIM_SEEDS=1234-1234 node_modules/.bin/bun test test/sim/simulation.test.ts
// Each run has 6-9 s of faults with a push every 200-500 ms (simulated), so the 200 default seeds
// take about 40 s. SIM_LONG=1 makes it 20-30 s with a push every 100-300 ms (about 3 s a seed).
// A failing seed prints one line with its first failure and how to rerun it alone; seeds that
// once failed get a named test in regressions.test.ts. The same runs with retention and garbage
// collection on the nodes are in retention.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { failureLine, longOverrides, runSimulation, seedsFromEnv } from "./cluster.ts";
import { Network } from "./network.ts";
import { Scheduler, SimRandom } from "./scheduler.ts";
import type { PeerService } from "../../src/replication/peer-service.ts";

const DEFAULT_SEEDS = 200;
const seeds = seedsFromEnv(process.env.SIM_SEEDS, DEFAULT_SEEDS);
const range = `${seeds[0]}-${seeds.at(-1)}`;
const long = process.env.SIM_LONG === "1";

// The test runner fails a test at once on an unhandled rejection (one the replication code let
// escape), before the loop can report it: name the seed that was running.
let running: number | null = null;
afterEach(() => {
  if (running !== null) {
    console.error(`simulation seed ${running} failed: it was running when the test ended (see the error above); rerun with ${long ? "SIM_LONG=1 " : ""}SIM_SEEDS=${running}-${running}`);
  }
  running = null;
});

describe("replication simulation", () => {
  test(
    `seeds ${range}${long ? " (long)" : ""} converge with nothing acknowledged lost (SIM_SEEDS=N or A-B for other seeds)`,
    async () => {
      const started = performance.now();
      const failed: number[] = [];
      const totals = { pushes: 0, stale: 0, restores: 0, partitions: 0, crashes: 0, writesCut: 0, merges: 0, conflicts: 0, conflictCopies: 0, copiesInHeads: 0, events: 0, fetchedAhead: 0, fetchedAtHead: 0 };
      let slowestAgreementMs = 0;
      for (const seed of seeds) {
        running = seed;
        const report = await runSimulation(seed, long ? longOverrides(seed) : {});
        running = null;
        if (report.failures.length > 0) {
          console.error(failureLine(report, long ? "SIM_LONG=1 " : ""));
          failed.push(seed);
        }
        totals.pushes += report.pushes.acknowledged;
        totals.stale += report.pushes.staleParent;
        totals.restores += report.pushes.restores;
        totals.partitions += report.faults.partitions;
        totals.crashes += report.faults.crashes;
        totals.writesCut += report.faults.writesCut;
        totals.merges += report.merges.replication;
        totals.conflicts += report.merges.conflicts;
        totals.conflictCopies += report.merges.conflictCopies;
        totals.copiesInHeads += report.conflictCopiesInHeads;
        totals.events += report.events;
        totals.fetchedAhead += report.replication.objectsFetchedAhead;
        totals.fetchedAtHead += report.replication.objectsFetched;
        slowestAgreementMs = Math.max(slowestAgreementMs, report.agreedAfterHealMs ?? 0);
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `simulation: ${seeds.length} seeds (${range}) in ${seconds} s; ${totals.events} events, ${totals.pushes} pushes acknowledged ` +
          `(${totals.stale} from stale clients, ${totals.restores} restores), ${totals.partitions} partitions, ${totals.crashes} crashes ` +
          `(cutting ${totals.writesCut} store writes short), ${totals.merges} replication merges ` +
          `with ${totals.conflicts} conflicts and ${totals.conflictCopies} conflict copies (${totals.copiesInHeads} left in final heads); ` +
          `objects fetched ahead of a head ${totals.fetchedAhead}, at a head ${totals.fetchedAtHead}; ` +
          `slowest agreement ${slowestAgreementMs} ms after healing; ${failed.length} failed${failed.length ? `: ${failed.join(", ")}` : ""}`,
      );
      expect(failed).toEqual([]);
      // The runs must reach the paths they are there to test.
      if (seeds.length >= 20) {
        expect(totals.partitions).toBeGreaterThan(0);
        expect(totals.crashes).toBeGreaterThan(0);
        expect(totals.conflictCopies).toBeGreaterThan(0);
        expect(totals.stale).toBeGreaterThan(0);
        // Pushes stream to the peers (stored-objects notices, fetching ahead) as well as at the head.
        expect(totals.fetchedAhead).toBeGreaterThan(0);
      }
    },
    Math.max(120_000, seeds.length * (long ? 20_000 : 3_000)),
  );

  test("one seed run twice gives the same trace and the same heads", async () => {
    const first = await runSimulation(2);
    const second = await runSimulation(2);
    expect(first.failures).toEqual([]);
    expect(first.events).toBeGreaterThan(1000);
    expect(second.traceHash).toBe(first.traceHash);
    expect(second.heads).toEqual(first.heads);
    expect(second.events).toBe(first.events);
    // And the trace tells seeds apart.
    const other = await runSimulation(3);
    expect(other.traceHash).not.toBe(first.traceHash);
  }, 60_000);
});

describe("simulation harness", () => {
  test("events run in (time, scheduling order); cancelled ones do not run", async () => {
    const scheduler = new Scheduler(0);
    const ran: string[] = [];
    scheduler.schedule(20, "c", () => ran.push(`c@${scheduler.nowMs()}`));
    scheduler.schedule(10, "a", () => ran.push(`a@${scheduler.nowMs()}`));
    scheduler.schedule(10, "b", () => {
      ran.push(`b@${scheduler.nowMs()}`);
      scheduler.schedule(0, "b2", () => ran.push(`b2@${scheduler.nowMs()}`));
    });
    const cancelled = scheduler.schedule(15, "x", () => ran.push("x"));
    scheduler.cancel(cancelled);
    const timers = scheduler.timers("t");
    const handle = timers.setTimeout(() => ran.push("timer"), 5);
    timers.clearTimeout(handle);
    await scheduler.runUntil(100);
    expect(ran).toEqual(["a@10", "b@10", "b2@10", "c@20"]);
    expect(scheduler.nowMs()).toBe(100);
  });

  test("work an event starts, promise chains included, finishes before the next event", async () => {
    const scheduler = new Scheduler(0);
    const ran: string[] = [];
    scheduler.schedule(1, "first", () => {
      void (async () => {
        for (let i = 0; i < 50; i++) await Promise.resolve();
        ran.push("chain done");
      })();
    });
    scheduler.schedule(1, "second", () => ran.push("second"));
    await scheduler.runUntil(10);
    expect(ran).toEqual(["chain done", "second"]);
  });

  function twoNodes(config: Partial<ConstructorParameters<typeof Network>[2]> = {}) {
    const scheduler = new Scheduler(0);
    const network = new Network(scheduler, new SimRandom(1), { minDelayMs: 5, maxDelayMs: 5, timeoutMs: 1_000, dropRate: 0, duplicateRate: 0, ...config });
    let handled = 0;
    const service = {
      listFolders: async () => {
        handled++;
        return { node: "b", folders: [] };
      },
    } as unknown as PeerService;
    const b = { address: "b", number: 1, alive: true };
    const a = { address: "a", number: 2, alive: true };
    network.attach(b, service);
    return { scheduler, network, a, b, service, transport: network.transportFor(a), handled: () => handled };
  }

  test("a call is answered after the request and reply delays", async () => {
    const { scheduler, transport } = twoNodes();
    let answer: unknown = null;
    void transport.listFolders("b").then((listing) => (answer = [listing.node, scheduler.nowMs()]));
    await scheduler.runUntil(2_000);
    expect(answer).toEqual(["b", 10]);
  });

  test("a lost message makes the call fail after the timeout", async () => {
    const { scheduler, transport, network } = twoNodes({ dropRate: 1 });
    let failure: unknown = null;
    void transport.listFolders("b").catch((error: Error) => (failure = [error.message, scheduler.nowMs()]));
    await scheduler.runUntil(5_000);
    expect(failure).toEqual(["listFolders to b: no reply within 1000 ms", 1_000]);
    expect(network.stats.timeouts).toBe(1);
  });

  test("a duplicated request runs the handler twice and answers once", async () => {
    const { scheduler, transport, handled } = twoNodes({ duplicateRate: 1 });
    let answers = 0;
    void transport.listFolders("b").then(() => answers++);
    await scheduler.runUntil(5_000);
    expect(handled()).toBe(2);
    expect(answers).toBe(1);
  });

  test("partitions and crashed targets drop messages; a crashed caller's call never settles", async () => {
    const { scheduler, network, transport, a, b, service, handled } = twoNodes();
    network.partition([["a"], ["b"]]);
    let outcome = "";
    void transport.listFolders("b").then(
      () => (outcome = "answered"),
      () => (outcome = "failed"),
    );
    await scheduler.runUntil(2_000);
    expect(outcome).toBe("failed");
    expect(handled()).toBe(0);

    network.heal();
    network.detach("b");
    outcome = "";
    void transport.listFolders("b").then(
      () => (outcome = "answered"),
      () => (outcome = "failed"),
    );
    await scheduler.runUntil(4_000);
    expect(outcome).toBe("failed");

    network.attach(b, service);
    outcome = "";
    void transport.listFolders("b").then(
      () => (outcome = "answered"),
      () => (outcome = "failed"),
    );
    a.alive = false;
    await scheduler.runUntil(10_000);
    expect(handled()).toBe(1);
    expect(outcome).toBe("");
  });
});
