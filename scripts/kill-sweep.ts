// The kill sweep: SIGKILL real `dsync` processes at seeded points of push, pull, gc, replication
// pulls and repair, and kill clients in the middle of pulls; restart, then check that nothing
// acknowledged was lost and nothing was left half done.
//
//   bun scripts/kill-sweep.ts --seed S --points N [--phases push,pull,gc,replication,client-pull,repair]
//                             [--epoch-points 50] [--full-pull-every 10] [--json]
//
// After every point, with the killed process restarted:
//  - every acknowledged version (a push whose client exited 0 and printed its version) is in
//    `dsync log` with the root this script computed from the pushed directory (content
//    addressing: equal ids, equal bytes), and every version ever listed is still listed;
//  - `dsync verify` is clean (it re-hashes every object and checks every head's closure);
//  - `PRAGMA integrity_check` is ok on every SQLite file of the killed process's folder, opened
//    read-only before the restart;
//  - a push killed before its acknowledgement either left no version or the whole one (and its
//    merge): a version that landed is pulled and compared file by file;
//  - after a killed pull (node or client killed), the next pull succeeds, leaves no `.dsync-tmp-`
//    file visible, and the directory matches the version (`dsync diff DIR URL/main@V`, and the
//    tree that was pushed when known);
//  - after a killed replication pull (puller or source killed), the puller catches up to the
//    source's head with every version and verifies clean;
//  - after a killed repair (a byte flipped in one of A's packs, `dsync verify --repair` against A,
//    A or the verify client killed), a repair with no kill completes and A verifies clean;
//  - every --full-pull-every points (a random acknowledged version), and at the end of each epoch
//    (the last one of each folder), a real `dsync pull --version V` is compared file by file with
//    what was pushed.
// The kill moment is drawn from the seed (see kill-sweep/trigger.ts). A kill that lands before
// the operation starts or after it ends is still a point, never a failure. Points run in epochs:
// fresh data folders every --epoch-points points, so verify's cost does not grow without bound.
// Exit 0 when every check passed, 1 on any failure (the summary lists each with its point).
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPrng, type Prng } from "../test/helpers/prng.ts";
import { describeTree } from "../test/helpers/trees.ts";
import { freePort, spawnCli, startNode, type CliResult, type NodeProcess, type RunningCli } from "../test/helpers/processes.ts";
import { startTcpProxy, type TcpProxy } from "./bench/tcp-proxy.ts";
import { checkSqliteIntegrity, findTempFiles, treeRootHex } from "./kill-sweep/checks.ts";
import { describeTrigger, drawTrigger, proxyBytes, waitForTrigger, type Calibration, type Trigger } from "./kill-sweep/trigger.ts";
import { countLanding, emptySummary, formatSummary, PHASES, type Landing, type Phase, type SweepSummary } from "./kill-sweep/summary.ts";
import { SeededTree } from "./kill-sweep/workload.ts";
import { corruptSharedObject } from "./kill-sweep/corrupt.ts";
import { STATE_DIR_NAME } from "../src/client/local-state.ts";

export { PHASES, formatSummary, type Phase, type SweepSummary };

export interface SweepOptions {
  seed: number;
  points: number;
  phases?: readonly Phase[];
  /** Points per epoch (fresh data folders); default 50. */
  epochPoints?: number;
  /** A real pull of a random acknowledged version every this many points; default 10. */
  fullPullEvery?: number;
  /** Progress lines (one per point); default none. */
  log?: (line: string) => void;
}

/** The phases a sweep runs unless told otherwise. */
export const DEFAULT_PHASES: readonly Phase[] = PHASES;

const MAIN_FOLDER = "main";
const SCRATCH_FOLDER = "scratch";
const CLUSTER_TOKEN = "kill-sweep-cluster-token";
/** Any client command taking longer than this is a failure (and is killed). */
const CLIENT_TIMEOUT_MS = 120_000;
/** How long a restarted replica may take to catch up with its source. */
const CONVERGE_TIMEOUT_MS = 60_000;
const RESTART_ATTEMPTS = 10;
const STOP_TIMEOUT_MS = 30_000;

interface VersionJson {
  id: string;
  root: string;
  parents: string[];
  sequence: number;
}

interface Ack {
  folder: string;
  /** The version made from the pushed tree. */
  version: string;
  root: string;
  tree: Record<string, unknown>;
  point: string;
}

interface Epoch {
  index: number;
  dir: string;
  dataA: string;
  dataB: string;
  work: SeededTree;
  scratch: SeededTree;
  mirror: string;
  /** Acknowledged versions of the main folder in this epoch. */
  acks: Ack[];
  scratchLatest: Ack | null;
  /** Every main-folder version listed so far (none may vanish), by id. */
  known: Map<string, VersionJson>;
  /** The tree pushed for each root this script computed. */
  treesByRoot: Map<string, Record<string, unknown>>;
}

/** Per point, the schedule draws the same five numbers whatever happens, so a seed gives the same kill plan on every run. */
interface Draws {
  trigger: Trigger;
  victim: number;
  variant: number;
  target: number;
}

/** An operation no kill touched failed: reported as a failure; the sweep goes on with a fresh epoch. */
class OperationFailed extends Error {}

/** The root of a workload tree; a scan that fails is a failure of the operation that needed it. */
async function pushedRoot(dir: string): Promise<string> {
  try {
    return await treeRootHex(dir);
  } catch (error) {
    throw new OperationFailed(`scanning ${dir} failed: ${(error as Error).message}`);
  }
}

function uniform(prng: Prng): number {
  return prng.nextUint32() / 0x1_0000_0000;
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => {
      onTimeout();
      resolve("timeout");
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isRunning(running: RunningCli): boolean {
  return running.process.exitCode === null && running.process.signalCode === null;
}

export class KillSweep {
  readonly summary: SweepSummary;
  private readonly phases: readonly Phase[];
  private readonly schedule: Prng;
  private readonly workloadPrng: Prng;
  private readonly choice: Prng;
  private readonly log: (line: string) => void;
  private readonly calibrations = new Map<string, Calibration>();
  private readonly pointMs: number[] = [];
  private root = "";
  private proxy!: TcpProxy;
  private portA = 0;
  private portB = 0;
  private a: NodeProcess | null = null;
  private b: NodeProcess | null = null;
  private epoch!: Epoch;
  private label = "setup";

  constructor(private readonly options: SweepOptions) {
    this.summary = emptySummary(options.seed);
    this.phases = options.phases ?? DEFAULT_PHASES;
    // Three streams, so what one point's outcome changes (versions known, files present) never
    // shifts the kill plan of the next.
    this.schedule = createPrng(options.seed);
    this.workloadPrng = createPrng(options.seed ^ 0x5eed_7e11);
    this.choice = createPrng(options.seed ^ 0x0c401ce);
    this.log = options.log ?? (() => {});
  }

  private get urlA(): string {
    return `http://127.0.0.1:${this.portA}`;
  }
  private get urlB(): string {
    return `http://127.0.0.1:${this.portB}`;
  }
  /** Clients and the replica reach node A through the proxy, which counts the traffic for byte triggers. */
  private get viaProxy(): string {
    return `http://127.0.0.1:${this.proxy.port}`;
  }

  private fail(kind: keyof SweepSummary | null, message: string): void {
    if (kind) (this.summary[kind] as number)++;
    this.summary.failures.push(`${this.label}: ${message}`);
    this.log(`  FAIL ${message}`);
  }

  async run(): Promise<SweepSummary> {
    const startedMs = performance.now();
    this.root = join(tmpdir(), `dsync-kill-sweep-${process.pid}-${this.options.seed}`);
    mkdirSync(this.root, { recursive: true });
    this.portA = await freePort();
    this.portB = await freePort();
    this.proxy = await startTcpProxy({ targetPort: this.portA });
    const epochPoints = this.options.epochPoints ?? 50;
    const fullPullEvery = this.options.fullPullEvery ?? 10;
    try {
      let order: Phase[] = [];
      let epochOpen = false;
      let pointsInEpoch = 0;
      for (let point = 0; point < this.options.points; point++) {
        // Phases in a seeded order, each once per round, so every phase gets its share.
        if (order.length === 0) order = this.shuffledPhases();
        const phase = order.shift()!;
        const draws: Draws = {
          // gc and repair move (almost) nothing through the proxy: their kill moments are delays.
          trigger: drawTrigger(this.schedule, phase !== "gc" && phase !== "repair"),
          victim: uniform(this.schedule),
          variant: uniform(this.schedule),
          target: uniform(this.schedule),
        };
        const pointStartMs = performance.now();
        try {
          if (epochOpen && pointsInEpoch >= epochPoints) {
            epochOpen = false;
            await this.endEpoch();
          }
          if (!epochOpen) {
            await this.startEpoch(this.summary.epochs);
            epochOpen = true;
            pointsInEpoch = 0;
          }
          this.label = `point ${point} (${phase})`;
          await this.runPoint(phase, draws);
          if ((point + 1) % fullPullEvery === 0) await this.fullPullOfRandomAck();
        } catch (error) {
          if (!(error instanceof OperationFailed)) {
            // Something the sweep cannot go on from (a node that does not come back): the points
            // so far still make a summary, with this as its last failure.
            this.fail(null, `the sweep stopped: ${(error as Error).stack ?? error}`);
            epochOpen = false;
            break;
          }
          // An operation that no kill touched failed: a failure of its own, reported; the epoch
          // ends there (its checks still run) and the next point starts a fresh one.
          this.fail("operationFailures", error.message);
          if (epochOpen) await this.endEpoch();
          else await this.stopNodes();
          epochOpen = false;
        }
        pointsInEpoch++;
        this.summary.points++;
        this.summary.pointsByPhase[phase] = (this.summary.pointsByPhase[phase] ?? 0) + 1;
        const elapsedMs = performance.now() - pointStartMs;
        this.pointMs.push(elapsedMs);
        this.log(`${this.label} done in ${Math.round(elapsedMs)} ms (${Math.round((performance.now() - startedMs) / 1000)} s since the start)`);
      }
      if (epochOpen) await this.endEpoch();
    } finally {
      await this.stopNodes();
      this.proxy.stop();
      rmSync(this.root, { recursive: true, force: true });
    }
    this.summary.wallMs = Math.round(performance.now() - startedMs);
    const sorted = [...this.pointMs].sort((x, y) => x - y);
    this.summary.pointMsMedian = sorted.length ? Math.round(sorted[Math.floor(sorted.length / 2)]!) : 0;
    for (const [key, value] of this.calibrations) this.summary.calibration[key] = { durationMs: Math.round(value.durationMs), bytes: value.bytes };
    return this.summary;
  }

  private shuffledPhases(): Phase[] {
    const out = [...this.phases];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.schedule.nextInt(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  private async runPoint(phase: Phase, draws: Draws): Promise<void> {
    switch (phase) {
      case "push":
        return this.pushPoint(draws);
      case "pull":
        return this.pullPoint(draws, "node");
      case "client-pull":
        return this.pullPoint(draws, "client");
      case "gc":
        return this.gcPoint(draws);
      case "replication":
        return this.replicationPoint(draws);
      case "repair":
        return this.repairPoint(draws);
    }
  }

  // ----- epochs -----

  private async startEpoch(index: number): Promise<void> {
    this.summary.epochs++;
    const dir = join(this.root, `epoch-${index}`);
    mkdirSync(dir, { recursive: true });
    this.epoch = {
      index,
      dir,
      dataA: join(dir, "a"),
      dataB: join(dir, "b"),
      work: new SeededTree(join(dir, "work"), this.workloadPrng),
      scratch: new SeededTree(join(dir, "scratch"), this.workloadPrng),
      mirror: join(dir, "mirror"),
      acks: [],
      scratchLatest: null,
      known: new Map(),
      treesByRoot: new Map(),
    };
    this.label = `epoch ${index} setup`;
    this.a = await this.startA();
    // Two versions to start with, and a mirror at the head, so pulls have somewhere to go.
    this.epoch.work.create();
    await this.pushUnkilled();
    this.epoch.work.mutate();
    await this.pushUnkilled();
    const pulled = await this.cli(["pull", this.epoch.mirror, "--remote", this.viaProxy, "--folder", MAIN_FOLDER, "--json"]);
    if (pulled.code !== 0) throw new OperationFailed(`epoch ${index}: the first pull (no kill) failed: ${pulled.stderr.slice(0, 500)}`);
    this.mirrorVersion.set(this.epoch.mirror, pulled.json<{ version: string }>().version);
    await this.refreshKnown();
  }

  private async endEpoch(): Promise<void> {
    this.label = `epoch ${this.epoch.index} end`;
    await this.ensureA();
    // The last acknowledged version of each folder, pulled for real and compared with what was
    // pushed (the others were checked by root and verify after every point, and a sample by
    // --full-pull-every).
    const last = [this.epoch.acks.at(-1), this.epoch.scratchLatest].filter((ack): ack is Ack => ack !== undefined && ack !== null);
    for (const ack of last) await this.fullPull(ack);
    await this.stopNodes();
    for (const data of [this.epoch.dataA, this.epoch.dataB]) this.checkIntegrity(data, "stopped");
    const offline = await this.cli(["verify", "--data", this.epoch.dataA, "--json"]);
    this.summary.verifyRuns++;
    if (offline.code !== 0) this.fail("verifyFailures", `offline verify of A: ${offline.stdout}${offline.stderr}`);
    rmSync(this.epoch.dir, { recursive: true, force: true });
  }

  // ----- nodes -----

  private nodeArgs(id: "a" | "b"): string[] {
    const replicating = this.phases.includes("replication") || this.phases.includes("repair");
    if (!replicating) return ["--node-id", `node-${id}`];
    // A tells B directly when it changes; B fetches from A through the proxy, so its pulls are counted.
    const peer = id === "a" ? this.urlB : this.viaProxy;
    // No background scrub: the repair phase's rot is then found by the verify it kills, not by chance first.
    return ["--node-id", `node-${id}`, "--cluster-token", CLUSTER_TOKEN, "--peers", peer, "--sync-interval-ms", "200", "--scrub-bytes-per-second", "0"];
  }

  private async startOn(id: "a" | "b"): Promise<NodeProcess> {
    const dataDir = id === "a" ? this.epoch.dataA : this.epoch.dataB;
    let lastError: unknown;
    for (let attempt = 0; attempt < RESTART_ATTEMPTS; attempt++) {
      if (attempt === RESTART_ATTEMPTS - 1) await this.movePort(id);
      const port = id === "a" ? this.portA : this.portB;
      try {
        return await startNode({ dataDir, listen: `127.0.0.1:${port}`, args: this.nodeArgs(id) });
      } catch (error) {
        lastError = error;
        await Bun.sleep(200);
      }
    }
    throw new Error(`node ${id} did not start: ${(lastError as Error).message}`);
  }

  /**
   * While a node is down, its port may be taken (by any process's outgoing connection, from the
   * same ephemeral range): the last attempt moves it to a fresh one. A's move is followed by the
   * proxy; B's by A at A's next start (B pulls from A on its own meanwhile).
   */
  private async movePort(id: "a" | "b"): Promise<void> {
    const port = await freePort();
    this.log(`  node ${id}: port ${id === "a" ? this.portA : this.portB} busy, moving to ${port}`);
    if (id === "a") {
      this.portA = port;
      this.proxy.setTarget(port);
    } else this.portB = port;
  }

  private startA(): Promise<NodeProcess> {
    return this.startOn("a");
  }

  private async ensureA(): Promise<NodeProcess> {
    this.a ??= await this.startA();
    return this.a;
  }

  /** Restarts a killed node; a node that does not come back is a failure (and ends the sweep). */
  private async restart(id: "a" | "b"): Promise<NodeProcess> {
    this.summary.restarts++;
    try {
      const node = await this.startOn(id);
      if (id === "a") this.a = node;
      else this.b = node;
      return node;
    } catch (error) {
      this.fail("restartFailures", (error as Error).message);
      throw error;
    }
  }

  private async kill(node: NodeProcess): Promise<void> {
    if (node.process.exitCode === null && node.process.signalCode === null) this.summary.killsDelivered++;
    await node.kill9();
  }

  /** Stops a node (SIGTERM), bounded: one that does not stop in time is killed and reported. */
  private async stop(node: NodeProcess): Promise<void> {
    const stopped = await withTimeout(node.stop(), STOP_TIMEOUT_MS, () => node.process.kill("SIGKILL"));
    if (stopped === "timeout") this.fail(null, `a node did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
  }

  private async stopB(): Promise<void> {
    if (this.b) await this.stop(this.b);
    this.b = null;
  }

  private async stopNodes(): Promise<void> {
    if (this.a) await this.stop(this.a);
    this.a = null;
    await this.stopB();
  }

  // ----- checks -----

  private checkIntegrity(dir: string, when: string): void {
    const result = checkSqliteIntegrity(dir);
    this.summary.sqliteFilesChecked += result.files;
    for (const problem of result.problems) this.fail("integrityFailures", `SQLite integrity (${when}): ${problem}`);
  }

  /** A folder's versions, newest first: the route `dsync log` reads (asked directly, saving a process per check). */
  private async listVersions(url: string, folder: string): Promise<VersionJson[] | null> {
    try {
      const response = await fetch(`${url}/v1/folders/${folder}/versions`, { signal: AbortSignal.timeout(30_000) });
      if (response.status !== 200) return null;
      return ((await response.json()) as { versions: VersionJson[] }).versions;
    } catch {
      return null;
    }
  }

  private async refreshKnown(): Promise<VersionJson[]> {
    const versions = (await this.listVersions(this.urlA, MAIN_FOLDER)) ?? [];
    for (const version of versions) this.epoch.known.set(version.id, version);
    return versions;
  }

  /**
   * The checks after every point, on node A (running): acknowledged versions present with their
   * roots, no listed version gone, verify clean. Returns the main folder's versions.
   */
  private async checkNodeA(): Promise<VersionJson[]> {
    const versions = await this.listVersions(this.urlA, MAIN_FOLDER);
    if (!versions) {
      this.fail("versionsLost", "listing the main folder's versions failed");
      return [];
    }
    const byId = new Map(versions.map((version) => [version.id, version]));
    for (const ack of this.epoch.acks) {
      const found = byId.get(ack.version);
      if (!found) this.fail("versionsLost", `acknowledged version ${ack.version} (from ${ack.point}) is not in the log`);
      else if (found.root !== ack.root) this.fail("versionsLost", `acknowledged version ${ack.version} has root ${found.root}, pushed ${ack.root}`);
    }
    for (const id of this.epoch.known.keys()) {
      if (!byId.has(id) && !this.epoch.acks.some((ack) => ack.version === id)) this.fail("versionsLost", `version ${id}, listed before, is gone`);
    }
    const scratch = this.epoch.scratchLatest;
    if (scratch) {
      // Retention keeps one scratch version: the newest acknowledged one must be there.
      const scratchVersions = await this.listVersions(this.urlA, SCRATCH_FOLDER);
      const found = scratchVersions?.find((version) => version.id === scratch.version);
      if (!found || found.root !== scratch.root) this.fail("versionsLost", `the newest acknowledged scratch version ${scratch.version} (from ${scratch.point}) is not in the log`);
    }
    await this.verify(this.urlA, "A");
    return versions;
  }

  private async verify(url: string, name: string): Promise<void> {
    const verify = await this.cli(["verify", "--remote", url, "--json"]);
    this.summary.verifyRuns++;
    if (verify.code !== 0) this.fail("verifyFailures", `verify of ${name} exit ${verify.code}: ${verify.stdout.slice(0, 2000)}${verify.stderr.slice(0, 500)}`);
  }

  /** A real pull of an acknowledged version into a fresh directory, compared file by file with what was pushed. */
  private async fullPull(ack: Ack): Promise<void> {
    const dir = join(this.epoch.dir, `full-${ack.version.slice(0, 12)}-${this.summary.fullPullsCompared}`);
    const pulled = await this.cli(["pull", dir, "--remote", this.urlA, "--folder", ack.folder, "--version", ack.version, "--json"]);
    this.summary.fullPullsCompared++;
    if (pulled.code !== 0) this.fail("versionsLost", `pull of acknowledged version ${ack.version} failed: ${pulled.stderr.slice(0, 500)}`);
    else if (!Bun.deepEquals(describeTree(dir), ack.tree)) this.fail("versionsLost", `acknowledged version ${ack.version} (from ${ack.point}) pulled differs from what was pushed`);
    rmSync(dir, { recursive: true, force: true });
  }

  private async fullPullOfRandomAck(): Promise<void> {
    const acks = this.epoch.acks;
    const pick = this.choice.nextInt(Math.max(1, acks.length));
    if (acks.length === 0) return;
    await this.ensureA();
    await this.fullPull(acks[pick]!);
  }

  /** Runs a command to its end, bounded: one that hangs is killed, reported, and reads as exit -1. */
  private async cli(args: string[]): Promise<CliResult> {
    const result = await this.finish(spawnCli(args), args[0]!);
    return result ?? { code: -1, stdout: "", stderr: `${args[0]} timed out`, json: <T>() => ({}) as T };
  }

  /** Waits for a client command, bounded; a client that hangs is killed and reported. */
  private async finish(running: RunningCli, what: string): Promise<CliResult | null> {
    const result = await withTimeout(running.result, CLIENT_TIMEOUT_MS, () => running.process.kill("SIGKILL"));
    if (result === "timeout") {
      this.fail(null, `${what} did not finish within ${CLIENT_TIMEOUT_MS} ms`);
      return null;
    }
    return result;
  }

  /** Times an uninterrupted run of an operation the first time it is needed: the scale kill moments are drawn on. */
  private async calibrate(key: string, run: () => Promise<void>, prepare?: () => Promise<void>): Promise<Calibration> {
    const known = this.calibrations.get(key);
    if (known) return known;
    await prepare?.();
    const bytesAtStart = proxyBytes(this.proxy);
    const startedMs = performance.now();
    await run();
    const calibration = { durationMs: Math.max(20, performance.now() - startedMs), bytes: Math.max(1, proxyBytes(this.proxy) - bytesAtStart) };
    this.calibrations.set(key, calibration);
    this.log(`  calibrated ${key}: ${Math.round(calibration.durationMs)} ms, ${calibration.bytes} B`);
    return calibration;
  }

  /**
   * Runs a client command and kills `victim` at the trigger's moment. Returns where the kill
   * landed and the client's result (null when it hung).
   */
  private async killDuring(
    args: string[],
    trigger: Trigger,
    calibration: Calibration,
    victim: "client" | NodeProcess,
  ): Promise<{ landing: Landing; result: CliResult | null }> {
    const connectionsAtStart = this.proxy.counters().connections;
    const bytesAtStart = proxyBytes(this.proxy);
    const startedMs = performance.now();
    const running = spawnCli(args);
    await waitForTrigger(trigger, calibration, { startedMs, proxy: this.proxy, bytesAtStart, finished: () => !isRunning(running) });
    const reachedNode = this.proxy.counters().connections > connectionsAtStart;
    const clientWasRunning = isRunning(running);
    if (victim === "client") {
      if (clientWasRunning) {
        running.process.kill("SIGKILL");
        this.summary.killsDelivered++;
      }
    } else await this.kill(victim);
    const result = await this.finish(running, args[0]!);
    // The command ended by itself before any kill, and failed: nothing the sweep did caused that.
    if (!clientWasRunning && result && result.code !== 0) {
      this.fail("operationFailures", `${args[0]} failed before the kill (exit ${result.code}): ${result.stderr.slice(0, 500)}${result.stdout.slice(0, 300)}`);
    }
    let landing: Landing;
    if (victim === "client") landing = !clientWasRunning ? "after" : reachedNode ? "during" : "before";
    else landing = !reachedNode ? "before" : result && result.code === 0 ? "after" : "during";
    this.log(`  ${args[0]} ${describeTrigger(trigger, calibration)}: killed ${victim === "client" ? "the client" : "the node"} ${landing} (exit ${result?.code})`);
    return { landing, result };
  }

  // ----- pushes -----

  private async recordAck(result: CliResult, tree: SeededTree, folder: string, rootHex: string, treeDescription: Record<string, unknown>): Promise<void> {
    let report: { pushed?: unknown; root?: unknown; merged?: unknown };
    try {
      report = result.json();
    } catch (error) {
      this.fail(null, `push exited 0 without its JSON report: ${(error as Error).message}`);
      return;
    }
    if (typeof report.pushed !== "string") {
      this.fail(null, `push exited 0 without a version id: ${result.stdout.slice(0, 300)}`);
      return;
    }
    // The report's root is the head's: the pushed tree's own unless the push was merged.
    if (report.merged === false && report.root !== rootHex) this.fail("versionsLost", `push of ${tree.root} acknowledged root ${String(report.root)}, the tree's root is ${rootHex}`);
    const ack: Ack = { folder, version: report.pushed, root: rootHex, tree: treeDescription, point: this.label };
    this.summary.acknowledgedVersions++;
    if (folder === MAIN_FOLDER) this.epoch.acks.push(ack);
    else this.epoch.scratchLatest = ack;
  }

  private pushArgs(tree: SeededTree, folder: string): string[] {
    const args = ["push", tree.root, "--remote", this.viaProxy, "--folder", folder, "--json"];
    // The scratch folder keeps one version, so gc always has a previous one to collect.
    return folder === SCRATCH_FOLDER ? [...args, "--keep-versions", "1"] : args;
  }

  /** A push that is not killed: it must succeed. */
  private async pushUnkilled(tree: SeededTree = this.epoch.work, folder = MAIN_FOLDER): Promise<void> {
    const rootHex = await pushedRoot(tree.root);
    const description = describeTree(tree.root);
    this.epoch.treesByRoot.set(rootHex, description);
    const result = await this.finish(spawnCli(this.pushArgs(tree, folder)), "push");
    if (!result) return;
    if (result.code !== 0) throw new OperationFailed(`a push with no kill failed (exit ${result.code}): ${result.stderr.slice(0, 500)}`);
    await this.recordAck(result, tree, folder, rootHex, description);
  }

  private async pushPoint(draws: Draws): Promise<void> {
    const a = await this.ensureA();
    const calibration = await this.calibrate("push", async () => {
      this.epoch.work.mutate();
      await this.pushUnkilled();
      await this.refreshKnown();
    });
    const changes = this.epoch.work.mutate();
    const rootHex = await pushedRoot(this.epoch.work.root);
    const description = describeTree(this.epoch.work.root);
    this.epoch.treesByRoot.set(rootHex, description);
    this.log(`  push of ${changes}`);
    const before = new Set((await this.refreshKnown()).map((version) => version.id));
    const { landing, result } = await this.killDuring(this.pushArgs(this.epoch.work, MAIN_FOLDER), draws.trigger, calibration, a);
    countLanding(this.summary, "push", landing);
    this.checkIntegrity(this.epoch.dataA, "A killed");
    await this.restart("a");
    const acknowledged = result !== null && result.code === 0;
    if (acknowledged) await this.recordAck(result, this.epoch.work, MAIN_FOLDER, rootHex, description);
    const versions = await this.checkNodeA();
    if (!acknowledged) await this.checkUnacknowledgedPush(versions, before, rootHex, description);
    for (const version of versions) this.epoch.known.set(version.id, version);
  }

  /** A push killed before its acknowledgement landed whole (its version and maybe a merge with it) or not at all. */
  private async checkUnacknowledgedPush(versions: VersionJson[], before: Set<string>, rootHex: string, description: Record<string, unknown>): Promise<void> {
    const added = versions.filter((version) => !before.has(version.id));
    const landed = added.filter((version) => version.root === rootHex);
    for (const version of added) {
      const mergeWithLanded = version.parents.length > 1 && version.parents.some((parent) => landed.some((l) => l.id === parent));
      if (version.root !== rootHex && !mergeWithLanded) this.fail("partialPushes", `unacknowledged push left version ${version.id} with root ${version.root}, neither the pushed tree ${rootHex} nor a merge with it`);
    }
    for (const version of landed) {
      this.summary.unacknowledgedLanded++;
      await this.fullPull({ folder: MAIN_FOLDER, version: version.id, root: rootHex, tree: description, point: `${this.label} (unacknowledged)` });
    }
  }

  // ----- pulls -----

  private pickVersion(draw: number, except?: string): string {
    const ids = [...this.epoch.known.values()].sort((x, y) => x.sequence - y.sequence).map((version) => version.id);
    const candidates = ids.length > 1 && except ? ids.filter((id) => id !== except) : ids;
    return candidates[Math.floor(draw * candidates.length)]!;
  }

  private mirrorVersion = new Map<string, string>();

  private async pullUnkilled(dir: string, version: string): Promise<void> {
    const result = await this.finish(spawnCli(["pull", dir, "--remote", this.viaProxy, "--folder", MAIN_FOLDER, "--version", version, "--json"]), "pull");
    if (result && result.code !== 0) throw new OperationFailed(`a pull with no kill failed (exit ${result.code}): ${result.stderr.slice(0, 500)}`);
  }

  private async pullPoint(draws: Draws, victimKind: "node" | "client"): Promise<void> {
    const phase: Phase = victimKind === "node" ? "pull" : "client-pull";
    const a = await this.ensureA();
    // Half the pulls fill a fresh directory (the whole tree), half move the mirror to another version.
    const fresh = draws.variant < 0.5;
    const key = fresh ? "pull:fresh" : "pull:switch";
    const calibration = await this.calibrate(key, async () => {
      const target = this.pickVersion(0.5, this.mirrorVersion.get(this.epoch.mirror));
      const dir = fresh ? join(this.epoch.dir, "calibration-pull") : this.epoch.mirror;
      await this.pullUnkilled(dir, target);
      if (fresh) rmSync(dir, { recursive: true, force: true });
      else this.mirrorVersion.set(dir, target);
    });
    const dir = fresh ? join(this.epoch.dir, `pull-${this.summary.points}`) : this.epoch.mirror;
    const target = this.pickVersion(draws.target, fresh ? undefined : this.mirrorVersion.get(dir));
    const args = ["pull", dir, "--remote", this.viaProxy, "--folder", MAIN_FOLDER, "--version", target, "--json"];
    const { landing } = await this.killDuring(args, draws.trigger, calibration, victimKind === "client" ? "client" : a);
    countLanding(this.summary, phase, landing);
    if (victimKind === "node") {
      this.checkIntegrity(this.epoch.dataA, "A killed");
      await this.restart("a");
    } else if (existsSync(join(dir, STATE_DIR_NAME))) {
      // The client's own databases (stat cache, node cache index), killed mid-write.
      this.checkIntegrity(join(dir, STATE_DIR_NAME), "client killed");
    }
    const clean = await this.checkNextPull(dir, target);
    if (fresh) rmSync(dir, { recursive: true, force: true });
    else if (!clean) {
      // Start the mirror again, so one failure is reported once and not again at every later point.
      rmSync(dir, { recursive: true, force: true });
      await this.pullUnkilled(dir, target);
    }
    if (!fresh) this.mirrorVersion.set(dir, target);
    for (const version of await this.checkNodeA()) this.epoch.known.set(version.id, version);
  }

  /** After a killed pull: the next one succeeds, leaves no temp file, and the directory is the version. True when all holds. */
  private async checkNextPull(dir: string, version: string): Promise<boolean> {
    const failuresBefore = this.summary.failures.length;
    // The same remote URL as before: a directory synced from another URL is treated as never synced.
    const pulled = await this.cli(["pull", dir, "--remote", this.viaProxy, "--folder", MAIN_FOLDER, "--version", version, "--json"]);
    if (pulled.code !== 0) {
      this.fail("nextPullFailures", `the pull after the kill failed (exit ${pulled.code}): ${pulled.stderr.slice(0, 500)}`);
      return false;
    }
    const temps = findTempFiles(dir);
    if (temps.length > 0) {
      this.summary.leftoverTempFiles += temps.length;
      this.fail(null, `temp files left in the pulled directory: ${temps.slice(0, 5).join(", ")}`);
    }
    const diff = await this.cli(["diff", dir, `${this.urlA}/${MAIN_FOLDER}@${version}`]);
    if (diff.code !== 0) this.fail("mismatchedPulls", `dsync diff of the pulled directory against ${version}: exit ${diff.code}: ${diff.stdout.slice(0, 500)}${diff.stderr.slice(0, 300)}`);
    const root = this.epoch.known.get(version)?.root;
    const pushed = root ? this.epoch.treesByRoot.get(root) : undefined;
    if (pushed && !Bun.deepEquals(describeTree(dir), pushed)) this.fail("mismatchedPulls", `the pulled directory differs from the tree pushed as ${version}`);
    return this.summary.failures.length === failuresBefore;
  }

  // ----- gc -----

  private async gcPoint(draws: Draws): Promise<void> {
    await this.ensureA();
    const gcArgs = ["gc", "--remote", this.viaProxy, "--grace-ms", "0", "--json"];
    const newScratchVersion = async () => {
      this.epoch.scratch.replaceWithScratch();
      await this.pushUnkilled(this.epoch.scratch, SCRATCH_FOLDER);
    };
    const calibration = await this.calibrate(
      "gc",
      async () => {
        const result = await this.finish(spawnCli(gcArgs), "gc");
        if (result && result.code !== 0) throw new OperationFailed(`a gc with no kill failed (exit ${result.code}): ${result.stderr.slice(0, 500)}`);
      },
      async () => {
        // Two scratch versions, so the gc measured has one to collect, as at the points.
        await newScratchVersion();
        await newScratchVersion();
      },
    );
    // A new scratch version makes the previous one garbage (the folder keeps one).
    await newScratchVersion();
    const { landing } = await this.killDuring(gcArgs, draws.trigger, calibration, this.a!);
    countLanding(this.summary, "gc", landing);
    this.checkIntegrity(this.epoch.dataA, "A killed");
    await this.restart("a");
    for (const version of await this.checkNodeA()) this.epoch.known.set(version.id, version);
  }

  // ----- replication -----

  private async headOf(url: string): Promise<string | null> {
    try {
      const response = await fetch(`${url}/v1/folders/${MAIN_FOLDER}`, { signal: AbortSignal.timeout(5000) });
      if (response.status !== 200) return null;
      return ((await response.json()) as { head: string | null }).head;
    } catch {
      return null;
    }
  }

  /** Waits until B's head is A's; false when it does not get there in time. */
  private async waitConverged(timeoutMs = CONVERGE_TIMEOUT_MS): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const [headA, headB] = await Promise.all([this.headOf(this.urlA), this.headOf(this.urlB)]);
      if (headA !== null && headA === headB) return true;
      await Bun.sleep(10);
    }
    return false;
  }

  private async replicationPoint(draws: Draws): Promise<void> {
    await this.ensureA();
    const catchUp = async () => {
      this.b = await this.startOn("b");
      if (!(await this.waitConverged())) throw new OperationFailed(`B did not catch up with A within ${CONVERGE_TIMEOUT_MS} ms, with no kill`);
      await this.stopB();
    };
    // Measured on one version's worth of changes, like the points (B first takes the whole folder).
    const calibration = await this.calibrate(
      "replication",
      async () => {
        this.epoch.work.mutate();
        await this.pushUnkilled();
        await catchUp();
      },
      catchUp,
    );
    // A takes a push while B is down; B comes back and pulls it; the puller or the source is killed.
    this.epoch.work.mutate();
    await this.pushUnkilled();
    const headA = await this.headOf(this.urlA);
    const victim = draws.victim < 0.5 ? "b" : "a";
    const bytesAtStart = proxyBytes(this.proxy);
    const startedMs = performance.now();
    this.b = await this.startOn("b");
    let caughtUp = false;
    await waitForTrigger(draws.trigger, calibration, { startedMs, proxy: this.proxy, bytesAtStart, finished: () => caughtUp });
    caughtUp = (await this.headOf(this.urlB)) === headA;
    const trafficSeen = proxyBytes(this.proxy) > bytesAtStart;
    await this.kill(victim === "a" ? this.a! : this.b);
    const landing: Landing = caughtUp ? "after" : trafficSeen ? "during" : "before";
    countLanding(this.summary, "replication", landing);
    this.log(`  replication ${describeTrigger(draws.trigger, calibration)}: killed ${victim === "a" ? "the source" : "the puller"} ${landing}`);
    this.checkIntegrity(victim === "a" ? this.epoch.dataA : this.epoch.dataB, `${victim.toUpperCase()} killed`);
    await this.restart(victim);
    if (!(await this.waitConverged())) this.fail("replicationFailures", `B did not reach A's head within ${CONVERGE_TIMEOUT_MS} ms after the kill`);
    else {
      const versionsA = await this.listVersions(this.urlA, MAIN_FOLDER);
      const versionsB = new Set((await this.listVersions(this.urlB, MAIN_FOLDER))?.map((version) => version.id) ?? []);
      for (const version of versionsA ?? []) if (!versionsB.has(version.id)) this.fail("replicationFailures", `B lacks version ${version.id} after catching up`);
    }
    await this.verify(this.urlB, "B");
    for (const version of await this.checkNodeA()) this.epoch.known.set(version.id, version);
    await this.stopB();
  }

  // ----- repair -----

  /**
   * Bit rot on A, with B holding a good copy: both stopped, one byte of an object both hold is
   * flipped in A's pack, both started again, and `dsync verify --repair` runs against A (which
   * fetches the object from B) while A or the verify client is killed. Afterwards a repair with
   * no kill completes and A verifies clean.
   */
  private async corruptOnA(): Promise<string> {
    await this.ensureA();
    this.b ??= await this.startOn("b");
    if (!(await this.waitConverged())) throw new OperationFailed(`B did not catch up with A within ${CONVERGE_TIMEOUT_MS} ms, with no kill`);
    await this.stopNodes();
    const corruption = corruptSharedObject(this.epoch.dataA, this.epoch.dataB, this.choice);
    if (!corruption) throw new OperationFailed("A and B share no object to corrupt");
    this.a = await this.startA();
    this.b = await this.startOn("b");
    return `${corruption.idHex} at ${corruption.pack}:${corruption.offset}`;
  }

  private async repairPoint(draws: Draws): Promise<void> {
    const repairArgs = ["verify", "--repair", "--remote", this.viaProxy, "--json"];
    const calibration = await this.calibrate(
      "repair",
      async () => {
        const result = await this.finish(spawnCli(repairArgs), "verify --repair");
        if (result && result.code !== 0) throw new OperationFailed(`verify --repair with no kill failed (exit ${result.code}): ${result.stdout.slice(0, 500)}`);
      },
      async () => {
        // Once: the flipped byte is really noticed (verify names the object), so repair points repair something.
        const corrupted = await this.corruptOnA();
        const found = await this.cli(["verify", "--remote", this.urlA, "--json"]);
        if (found.code === 0 || !found.stdout.includes(corrupted.slice(0, 64))) throw new OperationFailed(`verify did not report the corrupted object ${corrupted}: exit ${found.code}`);
        if ((await this.cli(["verify", "--repair", "--remote", this.urlA])).code !== 0) throw new OperationFailed(`verify --repair with no kill did not repair ${corrupted}`);
        // The run measured starts from fresh rot, as the points do.
        await this.corruptOnA();
      },
    );
    const corrupted = await this.corruptOnA();
    this.log(`  corrupted ${corrupted}`);
    const victim = draws.victim < 0.5 ? "client" : this.a!;
    const { landing } = await this.killDuring(repairArgs, draws.trigger, calibration, victim);
    countLanding(this.summary, "repair", landing);
    if (victim !== "client") {
      this.checkIntegrity(this.epoch.dataA, "A killed");
      await this.restart("a");
    }
    const repaired = await this.cli(["verify", "--repair", "--remote", this.urlA, "--json"]);
    if (repaired.code !== 0) this.fail("repairFailures", `verify --repair after the kill, exit ${repaired.code}: ${repaired.stdout.slice(0, 1000)}${repaired.stderr.slice(0, 300)}`);
    for (const version of await this.checkNodeA()) this.epoch.known.set(version.id, version);
    await this.stopB();
  }
}

export async function runKillSweep(options: SweepOptions): Promise<SweepSummary> {
  return new KillSweep(options).run();
}

function parseArgs(argv: string[]): SweepOptions & { json: boolean } {
  const out: SweepOptions & { json: boolean } = { seed: 1, points: 100, json: false };
  const number = (flag: string, text: string | undefined) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a whole number`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--seed") out.seed = number(flag, argv[++i]);
    else if (flag === "--points") out.points = number(flag, argv[++i]);
    else if (flag === "--epoch-points") out.epochPoints = Math.max(1, number(flag, argv[++i]));
    else if (flag === "--full-pull-every") out.fullPullEvery = Math.max(1, number(flag, argv[++i]));
    else if (flag === "--json") out.json = true;
    else if (flag === "--phases") {
      const names = (argv[++i] ?? "").split(",").filter(Boolean);
      for (const name of names) if (!(PHASES as readonly string[]).includes(name)) throw new Error(`unknown phase ${name} (phases: ${PHASES.join(", ")})`);
      if (names.length === 0) throw new Error("--phases needs a comma-separated list");
      out.phases = names as Phase[];
    } else throw new Error(`unknown argument ${flag}`);
  }
  return out;
}

if (import.meta.main) {
  try {
    const options = parseArgs(process.argv.slice(2));
    const summary = await runKillSweep({ ...options, log: (line) => process.stderr.write(line + "\n") });
    process.stdout.write((options.json ? JSON.stringify(summary, null, 2) : formatSummary(summary)) + "\n");
    process.exit(summary.failures.length === 0 ? 0 : 1);
  } catch (error) {
    process.stderr.write(`kill-sweep: ${(error as Error).stack ?? error}\n`);
    process.exit(2);
  }
}
