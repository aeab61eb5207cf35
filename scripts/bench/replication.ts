// Replication benchmark: dsync nodes on 127.0.0.1 replicating with each other, each figure beside
// an rsync baseline taken in the same run.
//
//   bun scripts/bench/replication.ts [--pushes N] [--files N] [--poll-ms MS] [--lag-interval-ms MS]
//                                    [--tree-files N] [--changed N] [--runs N] [--interval-ms MS]
//                                    [--conv-poll-ms MS] [--no-diff | --with-diff] [--diff-files N] [--diff-runs N]
//                                    [--cases lag,partition,diff,bulk] [--bulk-files N] [--bulk-mib N] [--bulk-runs N]
//                                    [--bulk-streaming on|off|both] [--no-syncthing] [--dsync source|build|binary]
//                                    [--json FILE] [--markdown] [--keep]
//
// 1. Replication lag. Three nodes A, B, C (peers of each other, directly). A folder of --files
//    small files (300) is pushed to A and replicated; then --pushes (200) small pushes, each
//    rewriting one file (every other push: two), go to A one after another. For each push: the
//    time from A acknowledging the commit (the commit response reaching the client) until B's and
//    C's head is that version, polled with GET /v1/folders/F every --poll-ms (2 ms). p50, p99 and
//    max for B, C and both (the later of the two). Baseline: `rsync -a` of the same change from
//    the client directory into a local mirror, after each push (median). The first few pushes
//    (--warmup, 5) are left out of the figures.
// 2. Convergence after a partition heals. Nodes A and B, each peer link through a user-space TCP
//    proxy (tcp-proxy.ts) that can be cut (closed: connections refused) and restored on the same
//    port. A --tree-files (10 000) file folder in nested directories is pushed to A and
//    replicated to B. Then, --runs (5) times: cut both links, rewrite --changed (1%) files and
//    push to A (A's notice to B is lost), restore the links, and time until B's head equals A's.
//    A's notice is lost; after the heal, whichever node reaches the other first (a node retries
//    an unreachable peer every 200 ms, and notices a peer it finds behind) starts B's pull, so
//    the figure includes a detection delay of up to the retry delay. B's /v1/status gives the
//    moment its pull started (the `pulls` counter moves), so the figure is also split into
//    detection and the pull itself. Baseline: `rsync -a --delete` of the same changed tree to
//    an rsync daemon on 127.0.0.1 whose module holds the pre-change tree (median).
// 3. Replica diff requests: replicaDiffBench() from replica-diff.ts (two 100 000-file replicas
//    differing in one file, one node; the requests of `dsync diff URL/A URL/B`, its time, and
//    `rsync -rn --checksum` over the two trees). Its data set is generated once under
//    .bench/replication/replica-diff (~80 s, ~1 GiB on disk) and reused; the case then takes
//    about a minute. --no-diff skips it.
// 4. Bulk replication beside Syncthing. Nodes A and B (peers of each other, eventual mode), fresh
//    for each run: a `dsync push` process sends --bulk-mib (200) MiB in --bulk-files (2 000) files
//    (half seeded random, half seeded text, in 20 directories) to A, timed from its spawn until
//    B's head is the pushed version (B's merge event, by long polls of its event log: polling its
//    API every few ms cost it ~10% of its CPU; Syncthing's event API likewise). Phases from the nodes'
//    events: A's commit, B's fetch (its closure all here), B's merge (head moved); what B fetched
//    ahead of the head and at it; CPU of A, B and the push. Each run is made with streaming on and
//    with --replication-streaming off (--bulk-streaming picks one). Baseline: two Syncthing
//    instances (syncthing.ts) running and connected over empty folders; the same data is renamed
//    into the sender's folder and a scan asked for (Syncthing then hashes it, as the push chunks
//    and hashes it), timed until the receiver reports every file held and nothing needed (it has
//    written them). Medians of --bulk-runs (3).
//
// The nodes run `bun cli/main.ts serve` (--dsync source, the default), dist/dsync (binary) or a
// binary compiled from the committed HEAD (build, cached under .bench/replication). The pushes
// run in this process through src/client/push.ts. Everything lives in a temporary directory,
// removed at the end (unless --keep); every process started is stopped, also on error or Ctrl-C.
// Progress goes to stderr, the results to stdout.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { push } from "../../src/client/push.ts";
import { commandFlags, formatBytes, formatMarkdownTable, formatTable, gitCommit, hasCommand, loadAverageText, machineInfo, median, writeRandomFile, Xorshift128Plus } from "./lib.ts";
import { buildDsyncAtHead, cleanEnv, freePort, KIB, processCpuSeconds, REPO_ROOT, resolveDsync, runTimed, startRsyncDaemon, stopProcess, writeTextFile, type DsyncCommand, type Service } from "./push-lib.ts";
import { configureSyncthing, countFiles, generateSyncthing, startSyncthing, syncthingRest, workerPid, type SyncthingInstance } from "./syncthing.ts";
import type { SyncStats } from "../../src/replication/replicator.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

// ---------------------------------------------------------------------------------------------
// Options

type Case = "lag" | "partition" | "diff" | "bulk";

interface Options {
  pushes: number;
  warmup: number;
  files: number;
  pollMs: number;
  lagIntervalMs: number;
  treeFiles: number;
  changed: number;
  runs: number;
  intervalMs: number;
  convPollMs: number;
  withDiff: boolean;
  diffFiles: number;
  diffRuns: number;
  cases: Set<Case>;
  bulkFiles: number;
  bulkMiB: number;
  bulkRuns: number;
  /** Streaming on, off, or both (each run in turn), for the bulk case. */
  bulkModes: boolean[];
  syncthing: boolean;
  dsync: "source" | "build" | "binary";
  json?: string;
  markdown: boolean;
  keep: boolean;
}

const USAGE =
  "usage: bun scripts/bench/replication.ts [--pushes N] [--warmup N] [--files N] [--poll-ms MS] [--lag-interval-ms MS]\n" +
  "       [--tree-files N] [--changed N] [--runs N] [--interval-ms MS] [--conv-poll-ms MS]\n" +
  "       [--no-diff | --with-diff] [--diff-files N] [--diff-runs N] [--cases lag,partition,diff,bulk]\n" +
  "       [--bulk-files N] [--bulk-mib N] [--bulk-runs N] [--bulk-streaming on|off|both] [--no-syncthing]\n" +
  "       [--dsync source|build|binary] [--json FILE] [--markdown] [--keep]\n";

function usage(message?: string): never {
  process.stderr.write((message ? `replication bench: ${message}\n` : "") + USAGE);
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    pushes: 200,
    warmup: 5,
    files: 300,
    pollMs: 2,
    lagIntervalMs: 2000,
    treeFiles: 10_000,
    changed: -1,
    runs: 5,
    intervalMs: 1000,
    convPollMs: 5,
    withDiff: true,
    diffFiles: 100_000,
    diffRuns: 3,
    cases: new Set<Case>(["lag", "partition", "diff", "bulk"]),
    bulkFiles: 2000,
    bulkMiB: 200,
    bulkRuns: 3,
    bulkModes: [true, false],
    syncthing: true,
    dsync: "source",
    markdown: false,
    keep: false,
  };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--pushes") options.pushes = count(1);
    else if (flag === "--warmup") options.warmup = count(0);
    else if (flag === "--files") options.files = count(10);
    else if (flag === "--poll-ms") options.pollMs = count(0);
    else if (flag === "--lag-interval-ms") options.lagIntervalMs = count(50);
    else if (flag === "--tree-files") options.treeFiles = count(100);
    else if (flag === "--changed") options.changed = count(1);
    else if (flag === "--runs") options.runs = count(1);
    else if (flag === "--interval-ms") options.intervalMs = count(50);
    else if (flag === "--conv-poll-ms") options.convPollMs = count(0);
    else if (flag === "--no-diff") options.withDiff = false;
    else if (flag === "--with-diff") options.withDiff = true;
    else if (flag === "--diff-files") options.diffFiles = count(2);
    else if (flag === "--diff-runs") options.diffRuns = count(1);
    else if (flag === "--bulk-files") options.bulkFiles = count(20);
    else if (flag === "--bulk-mib") options.bulkMiB = count(1);
    else if (flag === "--bulk-runs") options.bulkRuns = count(1);
    else if (flag === "--bulk-streaming") {
      const choice = value();
      if (choice !== "on" && choice !== "off" && choice !== "both") usage("--bulk-streaming is on, off or both");
      options.bulkModes = choice === "both" ? [true, false] : [choice === "on"];
    } else if (flag === "--no-syncthing") options.syncthing = false;
    else if (flag === "--cases") {
      const names = value().split(",").map((c) => c.trim());
      for (const name of names) if (name !== "lag" && name !== "partition" && name !== "diff" && name !== "bulk") usage(`no case ${name} (lag, partition, diff, bulk)`);
      options.cases = new Set(names as Case[]);
    } else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "source" && choice !== "build" && choice !== "binary") usage("--dsync is source, build or binary");
      options.dsync = choice;
    } else if (flag === "--json") options.json = resolve(value());
    else if (flag === "--markdown") options.markdown = true;
    else if (flag === "--keep") options.keep = true;
    else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown argument ${flag}`);
  }
  if (options.changed < 0) options.changed = Math.max(1, Math.round(options.treeFiles / 100));
  if (options.changed > options.treeFiles) usage("--changed cannot exceed --tree-files");
  return options;
}

const log = (line: string) => process.stderr.write(line + "\n");

// ---------------------------------------------------------------------------------------------
// Clean-up: everything started registers how to stop it; run on success, error and Ctrl-C.

const cleanups: (() => Promise<void> | void)[] = [];

async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!;
    try {
      await step();
    } catch (error) {
      log(`clean-up: ${(error as Error).message}`);
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  log(`\n${signal}: stopping everything started`);
  void runCleanups().finally(() => process.exit(130));
}

// ---------------------------------------------------------------------------------------------
// The commit acknowledgement: the moment the node's answer to POST .../commit reaches the client.
// push() goes on to write the directory's sync state (two fsyncs) before it returns, so its
// return would be a few ms late; the client's fetch is wrapped to note the answer instead.

const realFetch = globalThis.fetch;
let lastCommitAckMs = NaN;

function watchCommitAcks(): void {
  const wrapped = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await realFetch(input, init);
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (response.ok && /\/v1\/folders\/[^/]+\/commit$/.test(url)) lastCommitAckMs = performance.now();
    return response;
  };
  globalThis.fetch = Object.assign(wrapped, { preconnect: realFetch.preconnect }) as typeof fetch;
  cleanups.push(() => {
    globalThis.fetch = realFetch;
  });
}

async function getJson(url: string): Promise<{ status: number; body: any; atMs: number }> {
  const response = await realFetch(url);
  const atMs = performance.now();
  const text = await response.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body, atMs };
}

// ---------------------------------------------------------------------------------------------
// Nodes

interface Node {
  name: string;
  id: string;
  url: string;
  port: number;
  dataDir: string;
  logPath: string;
  proc: Subprocess;
  stop(): Promise<void>;
}

function logTail(path: string, bytes = 2000): string {
  try {
    const text = readFileSync(path, "utf8");
    return text.slice(-bytes).trim();
  } catch {
    return "";
  }
}

/** `dsync serve` on 127.0.0.1:port with the given peers; output goes to a log file; waits for /v1/health. */
async function startNode(dsync: DsyncCommand, root: string, name: string, port: number, peers: string[], clusterToken: string, intervalMs: number, extraArgs: string[] = []): Promise<Node> {
  const dataDir = join(root, `node-${name}`);
  mkdirSync(dataDir, { recursive: true });
  const logPath = join(root, `node-${name}.log`);
  const fd = openSync(logPath, "w");
  let proc: Subprocess;
  try {
    proc = Bun.spawn(
      [
        ...dsync.argv,
        "serve",
        "--data",
        dataDir,
        "--listen",
        `127.0.0.1:${port}`,
        "--node-id",
        `node-${name}`,
        "--peers",
        peers.join(","),
        "--cluster-token",
        clusterToken,
        "--sync-interval-ms",
        String(intervalMs),
        ...extraArgs,
      ],
      { cwd: REPO_ROOT, env: cleanEnv(), stdin: "ignore", stdout: fd, stderr: fd },
    );
  } finally {
    closeSync(fd);
  }
  const node: Node = { name, id: `node-${name}`, url: `http://127.0.0.1:${port}`, port, dataDir, logPath, proc, stop: () => stopProcess(proc) };
  cleanups.push(() => node.stop());
  const deadline = performance.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`node ${name} exited with ${proc.exitCode}: ${logTail(logPath)}`);
    try {
      const health = await getJson(`${node.url}/v1/health`);
      if (health.status === 200 && health.body?.node === node.id) return node;
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline) throw new Error(`node ${name} did not answer on ${node.url} within 30 s: ${logTail(logPath)}`);
    await Bun.sleep(25);
  }
}

async function headOf(node: Node, folder: string): Promise<string | null> {
  const { status, body } = await getJson(`${node.url}/v1/folders/${folder}`);
  return status === 200 ? (body.head as string | null) : null;
}

type ReplicationStats = SyncStats;

async function statsOf(node: Node): Promise<ReplicationStats> {
  return (await getJson(`${node.url}/v1/status`)).body.replication as ReplicationStats;
}

/** Polls until the node's head is `id`; returns ms from `fromMs` to the answer that showed it. */
async function waitForHead(node: Node, folder: string, id: string, fromMs: number, pollMs: number, timeoutMs: number): Promise<number> {
  const url = `${node.url}/v1/folders/${folder}`;
  for (;;) {
    const { status, body, atMs } = await getJson(url);
    if (status === 200 && body.head === id) return atMs - fromMs;
    if (atMs - fromMs > timeoutMs) throw new Error(`node ${node.name} did not reach ${id.slice(0, 12)} within ${timeoutMs} ms (head ${status === 200 ? body.head : status}); log: ${logTail(node.logPath, 800)}`);
    if (pollMs > 0) await Bun.sleep(pollMs);
  }
}

/** The version's root on a node (null when the node lacks it). */
async function rootOf(node: Node, folder: string, id: string): Promise<string | null> {
  const { status, body } = await getJson(`${node.url}/v1/folders/${folder}/versions/${id}`);
  return status === 200 ? (body.root as string) : null;
}

// ---------------------------------------------------------------------------------------------
// A peer link that can be cut and restored: a TCP proxy on a fixed port, closed and reopened.

class Link {
  private constructor(
    private proxy: TcpProxy | null,
    readonly port: number,
    readonly targetPort: number,
  ) {}

  static async open(targetPort: number): Promise<Link> {
    const proxy = await startTcpProxy({ targetPort });
    const link = new Link(proxy, proxy.port, targetPort);
    cleanups.push(() => link.cut());
    return link;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Closes the listener and every connection through it: new connections are refused. */
  cut(): void {
    this.proxy?.stop();
    this.proxy = null;
  }

  async heal(): Promise<void> {
    if (this.proxy) return;
    for (let attempt = 0; ; attempt++) {
      try {
        this.proxy = await startTcpProxy({ targetPort: this.targetPort, listenPort: this.port });
        return;
      } catch (error) {
        if (attempt >= 200) throw new Error(`cannot listen on 127.0.0.1:${this.port} again: ${(error as Error).message}`);
        await Bun.sleep(10);
      }
    }
  }

  counters() {
    return this.proxy?.counters() ?? { up: 0, down: 0, connections: 0 };
  }
}

// ---------------------------------------------------------------------------------------------
// Data

/** `count` text files of 1–4 KiB under dNN/eN/ directories (10 files per leaf directory by default). */
function writeSmallTree(dir: string, count: number, seed: string, perLeaf = 10): string[] {
  const buffer = new Uint8Array(64 * KIB);
  const rng = new Xorshift128Plus(`${seed}/sizes`);
  const scratch = new Uint32Array(1);
  const paths: string[] = [];
  const leaves = Math.ceil(count / perLeaf);
  const fanout = Math.max(1, Math.ceil(Math.sqrt(leaves)));
  for (let n = 0; n < count; n++) {
    const leaf = n % leaves;
    const sub = `d${String(Math.floor(leaf / fanout)).padStart(3, "0")}/e${String(leaf % fanout).padStart(3, "0")}`;
    if (n < leaves) mkdirSync(join(dir, sub), { recursive: true });
    rng.fill(scratch, 1);
    const size = KIB + Math.floor((scratch[0]! / 0x100000000) * 3 * KIB);
    const path = `${sub}/f${String(n).padStart(6, "0")}.txt`;
    writeTextFile(join(dir, path), size, `${seed}/file/${n}`, buffer);
    paths.push(path);
  }
  return paths;
}

/** Rewrites one file with new seeded text of 1–4 KiB. */
function rewrite(dir: string, path: string, seed: string, buffer: Uint8Array): void {
  const rng = new Xorshift128Plus(`${seed}/size`);
  const scratch = new Uint32Array(1);
  rng.fill(scratch, 1);
  writeTextFile(join(dir, path), KIB + Math.floor((scratch[0]! / 0x100000000) * 3 * KIB), seed, buffer);
}

/** `count` distinct indexes below `total`, seeded (partial Fisher–Yates). */
function pickDistinct(total: number, count: number, seed: string): number[] {
  const rng = new Xorshift128Plus(seed);
  const scratch = new Uint32Array(1);
  const order = Array.from({ length: total }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    rng.fill(scratch, 1);
    const j = i + Math.floor((scratch[0]! / 0x100000000) * (total - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, count);
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 100) return `${Math.round(value)} ms`;
  return `${value.toFixed(1)} ms`;
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : "n/a";
}

interface Distribution {
  p50: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

function distribution(values: readonly number[]): Distribution {
  return {
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: Math.max(...values),
    min: Math.min(...values),
    mean: values.reduce((s, v) => s + v, 0) / values.length,
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Replication lag

interface LagSample {
  push: number;
  files: number;
  pushMs: number;
  lagB: number;
  lagC: number;
  rsyncMs: number;
}

interface LagResult {
  files: number;
  pushes: number;
  warmup: number;
  pollMs: number;
  intervalMs: number;
  initialReplicationMs: number;
  samples: LagSample[];
  b: Distribution;
  c: Distribution;
  both: Distribution;
  push: Distribution;
  rsyncMedianMs: number;
  rsyncCommand: string;
  stats: Record<string, ReplicationStats>;
  slowest: LagSample[];
}

async function lagCase(options: Options, dsync: DsyncCommand, root: string): Promise<LagResult> {
  log(`\n== 1. replication lag: 3 nodes, ${options.files} files, ${options.pushes} pushes (+${options.warmup} warm-up), poll every ${options.pollMs} ms`);
  const dir = join(root, "lag");
  mkdirSync(dir, { recursive: true });
  const token = `bench-${crypto.randomUUID()}`;
  const names = ["a", "b", "c"];
  const ports = names.map(() => freePort());
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const nodes: Node[] = [];
  for (let i = 0; i < names.length; i++) {
    nodes.push(await startNode(dsync, dir, names[i]!, ports[i]!, urls.filter((_, j) => j !== i), token, options.lagIntervalMs));
  }
  const [a, b, c] = nodes as [Node, Node, Node];
  log(`nodes: A ${a.url}, B ${b.url}, C ${c.url} (--sync-interval-ms ${options.lagIntervalMs})`);
  try {
    const folder = "lag";
    const client = join(dir, "client");
    const mirror = join(dir, "rsync-mirror");
    const paths = writeSmallTree(client, options.files, "replication/lag");
    const first = await push(client, { remote: a.url, folder });
    const firstAck = lastCommitAckMs;
    const initialReplicationMs = Math.max(
      ...(await Promise.all([b, c].map((n) => waitForHead(n, folder, first.version, firstAck, options.pollMs, 120_000)))),
    );
    log(`initial push: ${first.files} files; on B and C ${ms(initialReplicationMs)} after A acknowledged it`);
    const rsyncArgv = ["rsync", "-a", "--exclude=/.dsync", `${client}/`, `${mirror}/`];
    await runTimed(rsyncArgv); // the mirror starts equal to the client directory

    const buffer = new Uint8Array(64 * KIB);
    const samples: LagSample[] = [];
    const total = options.warmup + options.pushes;
    for (let i = 0; i < total; i++) {
      const changed = i % 2 === 0 ? 1 : 2;
      for (let k = 0; k < changed; k++) rewrite(client, paths[(i * 7919 + k * 104_729) % paths.length]!, `replication/lag/push/${i}/${k}`, buffer);
      lastCommitAckMs = NaN;
      const pushStart = performance.now();
      const report = await push(client, { remote: a.url, folder });
      const ack = lastCommitAckMs;
      if (!Number.isFinite(ack)) throw new Error("the commit's answer was not seen");
      if (report.merged) throw new Error(`push ${i} was merged on A: the folder moved under the benchmark`);
      const [lagB, lagC] = await Promise.all([b, c].map((n) => waitForHead(n, folder, report.version, ack, options.pollMs, 60_000)));
      const rsync = await runTimed(rsyncArgv);
      const sample: LagSample = { push: i - options.warmup, files: changed, pushMs: ack - pushStart, lagB: lagB!, lagC: lagC!, rsyncMs: rsync.seconds * 1000 };
      if (i >= options.warmup) samples.push(sample);
      if ((i + 1) % 20 === 0 || i + 1 === total) {
        const recent = samples.slice(-20);
        log(
          `  push ${i + 1 - options.warmup}/${options.pushes}: last 20 lag p50 B ${ms(median(recent.map((s) => s.lagB)))} C ${ms(median(recent.map((s) => s.lagC)))}, ` +
            `max ${ms(Math.max(...recent.map((s) => Math.max(s.lagB, s.lagC))))}, rsync ${ms(median(recent.map((s) => s.rsyncMs)))}`,
        );
      }
    }
    // Sanity: the last version has the same root everywhere.
    const last = (await headOf(a, folder))!;
    const roots = await Promise.all(nodes.map((n) => rootOf(n, folder, last)));
    if (new Set(roots).size !== 1 || roots[0] === null) throw new Error(`roots differ across nodes: ${roots.join(", ")}`);
    const stats: Record<string, ReplicationStats> = {};
    for (const n of nodes) stats[n.name.toUpperCase()] = await statsOf(n);
    const both = samples.map((s) => Math.max(s.lagB, s.lagC));
    return {
      files: options.files,
      pushes: options.pushes,
      warmup: options.warmup,
      pollMs: options.pollMs,
      intervalMs: options.lagIntervalMs,
      initialReplicationMs,
      samples,
      b: distribution(samples.map((s) => s.lagB)),
      c: distribution(samples.map((s) => s.lagC)),
      both: distribution(both),
      push: distribution(samples.map((s) => s.pushMs)),
      rsyncMedianMs: median(samples.map((s) => s.rsyncMs)),
      rsyncCommand: "rsync -a --exclude=/.dsync CLIENT/ MIRROR/",
      stats,
      slowest: [...samples].sort((x, y) => Math.max(y.lagB, y.lagC) - Math.max(x.lagB, x.lagC)).slice(0, 5),
    };
  } finally {
    for (const n of nodes) await n.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Convergence after a partition heals

interface ConvergenceRun {
  run: number;
  pushMs: number;
  convergenceMs: number;
  /** Heal until B's pull counter moved (its pull had started), as seen by polling /v1/status. */
  detectionMs: number;
  /** Convergence minus detection: the pull itself. */
  pullMs: number;
  wireBytes: number;
  rsyncMs: number;
  rsyncWireBytes: number;
}

interface ConvergenceResult {
  treeFiles: number;
  treeBytes: number;
  changed: number;
  intervalMs: number;
  pollMs: number;
  initialPushMs: number;
  initialReplicationMs: number;
  runs: ConvergenceRun[];
  convergenceMedianMs: number;
  detectionMedianMs: number;
  pullMedianMs: number;
  wireBytesMedian: number;
  rsyncMedianMs: number;
  rsyncWireBytesMedian: number;
  rsyncCommand: string;
  statsB: ReplicationStats;
}

function rsyncWireBytes(stdout: string): number {
  const number = (label: string) => {
    const match = new RegExp(`^${label}:\\s+([\\d,.]+)`, "m").exec(stdout);
    return match ? Number(match[1]!.replace(/[,.]/g, "")) : NaN;
  };
  return number("Total bytes sent") + number("Total bytes received");
}

async function partitionCase(options: Options, dsync: DsyncCommand, root: string): Promise<ConvergenceResult> {
  log(
    `\n== 2. convergence after a partition heals: A and B, ${options.treeFiles} files, ${options.changed} changed per run, ${options.runs} runs, --sync-interval-ms ${options.intervalMs}`,
  );
  const dir = join(root, "partition");
  mkdirSync(dir, { recursive: true });
  const token = `bench-${crypto.randomUUID()}`;
  const portA = freePort();
  const portB = freePort();
  // A reaches B through toB; B reaches A through toA.
  const toB = await Link.open(portB);
  const toA = await Link.open(portA);
  const a = await startNode(dsync, dir, "a", portA, [toB.url], token, options.intervalMs);
  const b = await startNode(dsync, dir, "b", portB, [toA.url], token, options.intervalMs);
  log(`nodes: A ${a.url} (peer B via ${toB.url}), B ${b.url} (peer A via ${toA.url})`);
  let rsyncd: Service | undefined;
  try {
    const folder = "tree";
    const client = join(dir, "client");
    log(`data: writing ${options.treeFiles} files`);
    const paths = writeSmallTree(client, options.treeFiles, "replication/partition", 100);
    const treeBytes = (await runTimed(["du", "-sb", "--exclude=.dsync", client])).stdout.split(/\s/)[0];
    const initialStart = performance.now();
    const first = await push(client, { remote: a.url, folder });
    const initialPushMs = lastCommitAckMs - initialStart;
    const ack = lastCommitAckMs;
    const initialReplicationMs = await waitForHead(b, folder, first.version, ack, 50, 600_000);
    log(`initial push to A: ${first.files} files in ${ms(initialPushMs)}; on B ${ms(initialReplicationMs)} after A acknowledged it`);

    const moduleDir = join(dir, "rsync-module");
    rsyncd = await startRsyncDaemon(join(dir, "rsyncd"), moduleDir);
    const daemon = rsyncd;
    cleanups.push(() => daemon.stop());
    const rsyncArgv = ["rsync", "-a", "--delete", "--stats", "--exclude=/.dsync", `${client}/`, `rsync://127.0.0.1:${rsyncd.port}/bench/tree/`];
    await runTimed(rsyncArgv); // the module starts with the pre-change tree

    const buffer = new Uint8Array(64 * KIB);
    const runs: ConvergenceRun[] = [];
    for (let run = 0; run < options.runs; run++) {
      toB.cut();
      toA.cut();
      for (const index of pickDistinct(paths.length, options.changed, `replication/partition/run/${run}`)) {
        rewrite(client, paths[index]!, `replication/partition/run/${run}/${index}`, buffer);
      }
      const pushStart = performance.now();
      const report = await push(client, { remote: a.url, folder });
      const pushMs = lastCommitAckMs - pushStart;
      // Let A's notice to B fail and both sides settle; B keeps failing to reach A meanwhile.
      await Bun.sleep(300);
      if ((await headOf(b, folder)) === report.version) throw new Error("B has the new head during the partition: the links were not cut");
      const before = await statsOf(b);

      await Promise.all([toA.heal(), toB.heal()]);
      const healed = performance.now();
      let detectionMs = NaN;
      let convergenceMs = NaN;
      for (;;) {
        const { body, atMs } = await getJson(`${b.url}/v1/status`);
        const elapsed = atMs - healed;
        if (Number.isNaN(detectionMs) && body.replication.pulls > before.pulls) detectionMs = elapsed;
        const head = (body.folders as { name: string; head: string | null }[]).find((f) => f.name === folder)?.head;
        if (head === report.version) {
          convergenceMs = elapsed;
          break;
        }
        if (elapsed > 120_000) throw new Error(`B did not converge within 120 s after the heal; log: ${logTail(b.logPath, 800)}`);
        if (options.convPollMs > 0) await Bun.sleep(options.convPollMs);
      }
      const wireBytes = toA.counters().up + toA.counters().down + toB.counters().up + toB.counters().down;
      if ((await rootOf(b, folder, report.version)) !== report.root) throw new Error("B's root differs from A's");

      const rsync = await runTimed(rsyncArgv);
      const sample: ConvergenceRun = {
        run,
        pushMs,
        convergenceMs,
        detectionMs,
        pullMs: convergenceMs - detectionMs,
        wireBytes,
        rsyncMs: rsync.seconds * 1000,
        rsyncWireBytes: rsyncWireBytes(rsync.stdout),
      };
      runs.push(sample);
      log(
        `  run ${run + 1}/${options.runs}: converged ${ms(convergenceMs)} after the heal (detection ${ms(detectionMs)}, pull ${ms(sample.pullMs)}, ${formatBytes(wireBytes)} on the links); ` +
          `rsync -a --delete ${ms(sample.rsyncMs)}`,
      );
    }
    return {
      treeFiles: options.treeFiles,
      treeBytes: Number(treeBytes),
      changed: options.changed,
      intervalMs: options.intervalMs,
      pollMs: options.convPollMs,
      initialPushMs,
      initialReplicationMs,
      runs,
      convergenceMedianMs: median(runs.map((r) => r.convergenceMs)),
      detectionMedianMs: median(runs.map((r) => r.detectionMs)),
      pullMedianMs: median(runs.map((r) => r.pullMs)),
      wireBytesMedian: median(runs.map((r) => r.wireBytes)),
      rsyncMedianMs: median(runs.map((r) => r.rsyncMs)),
      rsyncWireBytesMedian: median(runs.map((r) => r.rsyncWireBytes)),
      rsyncCommand: "rsync -a --delete --exclude=/.dsync CLIENT/ rsync://127.0.0.1:PORT/bench/tree/",
      statsB: await statsOf(b),
    };
  } finally {
    await a.stop();
    await b.stop();
    await rsyncd?.stop();
    toA.cut();
    toB.cut();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Bulk replication beside Syncthing

interface BulkRun {
  run: number;
  streaming: boolean;
  /** Push start (spawn of `dsync push`) until B's head is the pushed version, as B's API showed it. */
  totalMs: number;
  /** Push start until the push process exited. */
  pushMs: number;
  /** Push start until A's commit event, B's fetch event (its closure all here) and B's merge event (head moved). */
  commitMs: number;
  fetchedMs: number;
  mergedMs: number;
  /** What B fetched ahead of the head (stored-objects notices) and at the head. */
  aheadObjects: number;
  aheadBytes: number;
  atHeadObjects: number;
  atHeadBytes: number;
  /** CPU seconds (user + system) of A, B and the pushing process over the run. */
  cpuA: number;
  cpuB: number;
  cpuPush: number;
}

interface SyncthingRun {
  run: number;
  /** Data moved into the sender's folder and a scan asked for, until the receiver reports every file and nothing needed. */
  totalMs: number;
  /** Until the sender reports the folder scanned (idle, every file indexed). */
  scanMs: number;
  cpuSender: number;
  cpuReceiver: number;
}

interface BulkResult {
  files: number;
  bytes: number;
  runs: number;
  dsync: BulkRun[];
  syncthing: SyncthingRun[] | string;
  syncthingVersion: string;
  medians: { streaming: number; notStreaming: number; syncthing: number };
}

/** `files` files making `totalBytes` in 20 directories: even ones seeded random bytes, odd ones seeded text (compressible). */
function writeBulkTree(dir: string, files: number, totalBytes: number, seed: string): void {
  const buffer = new Uint8Array(64 * KIB);
  const size = Math.floor(totalBytes / files);
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${String(i % 20).padStart(2, "0")}`);
    if (i < 20) mkdirSync(sub, { recursive: true });
    const path = join(sub, `f${String(i).padStart(5, "0")}${i % 2 === 0 ? ".bin" : ".txt"}`);
    if (i % 2 === 0) writeRandomFile(path, size, `${seed}/${i}`, buffer);
    else writeTextFile(path, size, `${seed}/${i}`, buffer);
  }
}

function lastEventIdOf(reply: { body: { lastId: number } }): number {
  return reply.body.lastId;
}

/** The node's events of this run (each with its wall-clock time in ms). */
async function eventsOf(node: Node): Promise<{ type: string; timeMs: number; folder: string | null }[]> {
  const events = (await getJson(`${node.url}/v1/events?since=0&wait=0`)).body.events as { type: string; time: string; folder: string | null }[];
  return events.map((e) => ({ type: e.type, timeMs: Date.parse(e.time), folder: e.folder }));
}

/** Until each node has answered the other's listing: A's notices then reach B at once. */
async function waitPeersReachable(nodes: readonly Node[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (const node of nodes) {
    for (;;) {
      const status = (await getJson(`${node.url}/v1/status`)).body;
      if ((status.peers as { reachable: boolean | null }[]).every((p) => p.reachable === true)) break;
      if (performance.now() > deadline) throw new Error(`node ${node.name} did not reach its peers within ${timeoutMs} ms`);
      await Bun.sleep(20);
    }
  }
}

async function dsyncBulkRun(options: Options, dsync: DsyncCommand, dir: string, source: string, run: number, streaming: boolean): Promise<BulkRun> {
  const runDir = join(dir, `run-${run}-${streaming ? "streaming" : "at-head"}`);
  mkdirSync(runDir, { recursive: true });
  const token = `bench-${crypto.randomUUID()}`;
  const [portA, portB] = [freePort(), freePort()];
  const mode = ["--replication-streaming", streaming ? "on" : "off"];
  const a = await startNode(dsync, runDir, "a", portA, [`http://127.0.0.1:${portB}`], token, 2000, mode);
  const b = await startNode(dsync, runDir, "b", portB, [`http://127.0.0.1:${portA}`], token, 2000, mode);
  try {
    await waitPeersReachable([a, b], 30_000);
    rmSync(join(source, ".dsync"), { recursive: true, force: true });
    const cpuA0 = processCpuSeconds(a.proc.pid);
    const cpuB0 = processCpuSeconds(b.proc.pid);
    const startWall = Date.now();
    const started = performance.now();
    const pusher = Bun.spawn([...dsync.argv, "push", source, "--remote", a.url, "--folder", "bulk"], { cwd: REPO_ROOT, env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    let pushMs = NaN;
    const pushed = Promise.all([new Response(pusher.stdout).text(), new Response(pusher.stderr).text(), pusher.exited]).then(([stdout, stderr, code]) => {
      pushMs = performance.now() - started;
      if (code !== 0) throw new Error(`dsync push exited with ${code}: ${(stderr || stdout).trim().slice(0, 800)}`);
      return stdout;
    });
    let failure: unknown;
    pushed.catch((error) => (failure = error));
    // B's merge event says its head moved (the folder has no other version). Waited for by long
    // polls of B's event log, which answer the moment it happens and cost B nothing meanwhile
    // (polling its API every few ms took ~10% of B's CPU); then B's API is asked to confirm.
    let totalMs = NaN;
    for (let since = lastEventIdOf(await getJson(`${b.url}/v1/events?since=0&wait=0`)); ; ) {
      if (failure) throw failure;
      const { body, atMs } = await getJson(`${b.url}/v1/events?since=${since}&wait=1000`);
      since = body.lastId;
      if ((body.events as { type: string; folder: string | null }[]).some((e) => e.type === "merge" && e.folder === "bulk")) {
        totalMs = atMs - started;
        break;
      }
      if (atMs - started > 600_000) throw new Error(`B did not hold the head within 600 s; log: ${logTail(b.logPath, 800)}`);
    }
    if (!(await headOf(b, "bulk"))) throw new Error("B's merge event came but its API shows no head");
    await pushed;
    const cpuPush = Number(pusher.resourceUsage()?.cpuTime.total ?? 0n) / 1e6;
    const cpuA = processCpuSeconds(a.proc.pid) - cpuA0;
    const cpuB = processCpuSeconds(b.proc.pid) - cpuB0;
    const headA = await headOf(a, "bulk");
    const headB = await headOf(b, "bulk");
    if (!headA || headA !== headB) throw new Error(`B's head ${headB} is not A's ${headA}`);
    if ((await rootOf(a, "bulk", headA)) !== (await rootOf(b, "bulk", headA))) throw new Error("B's root differs from A's");
    const at = (events: { type: string; timeMs: number; folder: string | null }[], type: string) => {
      const event = events.find((e) => e.type === type && e.folder === "bulk");
      return event ? event.timeMs - startWall : NaN;
    };
    const eventsA = await eventsOf(a);
    const eventsB = await eventsOf(b);
    const stats = await statsOf(b);
    return {
      run,
      streaming,
      totalMs,
      pushMs,
      commitMs: at(eventsA, "commit"),
      fetchedMs: at(eventsB, "fetch"),
      mergedMs: at(eventsB, "merge"),
      aheadObjects: stats.objectsFetchedAhead ?? 0,
      aheadBytes: stats.bytesFetchedAhead ?? 0,
      atHeadObjects: stats.objectsFetched,
      atHeadBytes: stats.bytesFetched,
      cpuA,
      cpuB,
      cpuPush,
    };
  } finally {
    await a.stop();
    await b.stop();
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function syncthingStatus(instance: SyncthingInstance): Promise<{ state: string; localFiles: number; globalFiles: number; needTotalItems: number }> {
  return (await syncthingRest(instance, "/rest/db/status?folder=bench")) as { state: string; localFiles: number; globalFiles: number; needTotalItems: number };
}

/**
 * The same data through two Syncthing instances on loopback, timed the way that matches a
 * push: both running, connected and idle over empty folders; the data is moved (renamed) into
 * the sender's folder and a scan asked for (Syncthing then hashes it, as a push chunks and
 * hashes it) until the receiver reports every file held and nothing needed (it has written
 * them to its folder).
 */
async function syncthingBulkRun(options: Options, dir: string, source: string, files: number, run: number): Promise<SyncthingRun> {
  const runDir = join(dir, `syncthing-${run}`);
  const sendDir = join(runDir, "send");
  const receiveDir = join(runDir, "receive");
  mkdirSync(sendDir, { recursive: true });
  mkdirSync(receiveDir, { recursive: true });
  const sender = await generateSyncthing(join(runDir, "sender-home"));
  const receiver = await generateSyncthing(join(runDir, "receiver-home"));
  configureSyncthing(sender, receiver, sendDir, "sendonly");
  configureSyncthing(receiver, sender, receiveDir, "receiveonly");
  const moved = join(sendDir, "data");
  try {
    await startSyncthing(sender);
    await startSyncthing(receiver);
    for (const deadline = performance.now() + 60_000; ; await Bun.sleep(100)) {
      const connections = (await syncthingRest(sender, "/rest/system/connections")) as { connections: Record<string, { connected: boolean }> };
      const senderIdle = (await syncthingStatus(sender)).state === "idle";
      const receiverIdle = (await syncthingStatus(receiver)).state === "idle";
      if (connections.connections[receiver.deviceId]?.connected && senderIdle && receiverIdle) break;
      if (performance.now() > deadline) throw new Error("the two Syncthing instances did not connect within 60 s");
    }
    rmSync(join(source, ".dsync"), { recursive: true, force: true });
    const cpuSender0 = processCpuSeconds(workerPid(sender.proc!.pid));
    const cpuReceiver0 = processCpuSeconds(workerPid(receiver.proc!.pid));
    const started = performance.now();
    renameSync(source, moved);
    await syncthingRest(sender, "/rest/db/scan?folder=bench", { method: "POST" });
    // Both waited for by long polls of Syncthing's event API (as for dsync: polling its status
    // every few ms would cost it CPU). The status is read again whenever an event of the folder's
    // state or completion comes back, and at least once a second: the sender's folder idle with
    // every file indexed ends its scan; the receiver's idle with every file held and nothing
    // needed ends the run.
    const waitFor = async (instance: SyncthingInstance, done: (status: Awaited<ReturnType<typeof syncthingStatus>>) => boolean, what: string): Promise<number> => {
      for (let since = 0; ; ) {
        const events = (await syncthingRest(instance, `/rest/events?events=StateChanged,FolderSummary,FolderCompletion&since=${since}&timeout=1`, {}, 15_000)) as { id: number }[] | null;
        const atMs = performance.now();
        for (const event of events ?? []) since = Math.max(since, event.id);
        if (done(await syncthingStatus(instance))) return atMs - started;
        if (atMs - started > 600_000) throw new Error(`${what} within 600 s`);
      }
    };
    const scanned = waitFor(sender, (status) => status.state === "idle" && status.localFiles >= files, "the sending Syncthing did not scan");
    const totalMs = await waitFor(receiver, (status) => status.state === "idle" && status.localFiles >= files && status.needTotalItems === 0, "the receiving Syncthing did not finish");
    const scanMs = await scanned;
    const cpuSender = processCpuSeconds(workerPid(sender.proc!.pid)) - cpuSender0;
    const cpuReceiver = processCpuSeconds(workerPid(receiver.proc!.pid)) - cpuReceiver0;
    const received = countFiles(join(receiveDir, "data"));
    if (received < files) throw new Error(`Syncthing said it was done with ${received} of ${files} files on disk`);
    return { run, totalMs, scanMs, cpuSender, cpuReceiver };
  } finally {
    for (const instance of [receiver, sender]) if (instance.proc) await stopProcess(instance.proc);
    if (existsSync(moved)) renameSync(moved, source);
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function bulkCase(options: Options, dsync: DsyncCommand, root: string): Promise<BulkResult> {
  const files = options.bulkFiles;
  const bytes = options.bulkMiB * 1024 * KIB;
  log(`\n== 4. bulk replication: A and B, ${files} files of ${formatBytes(Math.floor(bytes / files))} (${formatBytes(bytes)}, half random, half text), ${options.bulkRuns} runs, beside Syncthing`);
  const dir = join(root, "bulk");
  const source = join(dir, "data");
  mkdirSync(dir, { recursive: true });
  writeBulkTree(source, files, bytes, "replication/bulk");
  let syncthingVersion = "";
  let syncthing: SyncthingRun[] | string = [];
  if (!options.syncthing) syncthing = "not run (--no-syncthing)";
  else if (!hasCommand("syncthing")) syncthing = "not run: no syncthing on PATH";
  else syncthingVersion = (await runTimed(["syncthing", "--version"])).stdout.trim().split(" ").slice(0, 2).join(" ");
  const runs: BulkRun[] = [];
  for (let run = 0; run < options.bulkRuns; run++) {
    for (const streaming of options.bulkModes) {
      const result = await dsyncBulkRun(options, dsync, dir, source, run, streaming);
      runs.push(result);
      log(
        `  run ${run + 1} dsync ${streaming ? "streaming" : "at the head"}: B holds the head ${ms(result.totalMs)} after the push started ` +
          `(push ${ms(result.pushMs)}, A commit ${ms(result.commitMs)}, B all objects ${ms(result.fetchedMs)}, B head ${ms(result.mergedMs)}; ` +
          `fetched ahead ${formatBytes(result.aheadBytes)}, at the head ${formatBytes(result.atHeadBytes)}; CPU A ${result.cpuA.toFixed(2)} s, B ${result.cpuB.toFixed(2)} s, push ${result.cpuPush.toFixed(2)} s)`,
      );
    }
    if (Array.isArray(syncthing)) {
      const result = await syncthingBulkRun(options, dir, source, files, run);
      syncthing.push(result);
      log(`  run ${run + 1} Syncthing: receiver holds all ${ms(result.totalMs)} after the scan was asked for (sender scanned ${ms(result.scanMs)}; CPU sender ${result.cpuSender.toFixed(2)} s, receiver ${result.cpuReceiver.toFixed(2)} s)`);
    }
  }
  rmSync(source, { recursive: true, force: true });
  const medianOf = (streaming: boolean) => median(runs.filter((r) => r.streaming === streaming).map((r) => r.totalMs));
  return {
    files,
    bytes,
    runs: options.bulkRuns,
    dsync: runs,
    syncthing,
    syncthingVersion,
    medians: { streaming: medianOf(true), notStreaming: medianOf(false), syncthing: Array.isArray(syncthing) ? median(syncthing.map((r) => r.totalMs)) : NaN },
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Replica diff (replica-diff.ts)

interface DiffSummary {
  files: number;
  changedPath: string;
  heads: { requests: number; depth: number; bound: number; met: boolean; medianSeconds: number };
  pinned: { requests: number; depth: number; bound: number; met: boolean; medianSeconds: number };
  rsyncMedianSeconds: number;
  ratioHeads: number;
  ratioPinned: number;
}

async function diffCase(options: Options, dsync: DsyncCommand): Promise<DiffSummary | string> {
  const path = join(import.meta.dir, "replica-diff.ts");
  const pointer = "scripts/bench/replica-diff.ts (bun scripts/bench/replica-diff.ts)";
  if (!existsSync(path)) return `not measured: ${pointer} does not exist yet`;
  const module = (await import(path)) as Record<string, unknown>;
  const bench = module.replicaDiffBench;
  if (typeof bench !== "function") return `not measured: ${pointer} exports no replicaDiffBench()`;
  if (!options.withDiff) return `not measured (--no-diff; run ${pointer})`;
  log(`\n== 3. replica diff: ${options.diffFiles} files, ${options.diffRuns} runs (replica-diff.ts)`);
  // Its own data folder: replica-diff.ts recreates the node folder under it on every call.
  const result = await bench({ dataDir: join(REPO_ROOT, ".bench/replication/replica-diff"), files: options.diffFiles, dirs: 100, runs: options.diffRuns, dsync }, log);
  const pick = (f: any) => ({ requests: f.requests, depth: f.depth, bound: f.bound, met: f.met, medianSeconds: f.medianSeconds });
  return {
    files: result.files,
    changedPath: result.changedPath,
    heads: pick(result.heads),
    pinned: pick(result.pinned),
    rsyncMedianSeconds: result.rsync.medianSeconds,
    ratioHeads: result.ratioHeads,
    ratioPinned: result.ratioPinned,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function resolveNodeCommand(choice: Options["dsync"]): Promise<DsyncCommand> {
  if (choice === "build") return buildDsyncAtHead(join(REPO_ROOT, ".bench/replication"), log);
  if (choice === "binary") return resolveDsync("binary");
  return resolveDsync("source");
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  for (const key of Object.keys(process.env)) if (key.startsWith("DSYNC_")) delete process.env[key];
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  watchCommitAcks();
  const root = mkdtempSync(join(tmpdir(), "dsync-bench-replication-"));
  if (!options.keep) cleanups.unshift(() => rmSync(root, { recursive: true, force: true }));
  else log(`keeping ${root}`);

  const machine = machineInfo();
  const commit = await gitCommit(REPO_ROOT);
  const startedAt = new Date();
  let lag: LagResult | undefined;
  let conv: ConvergenceResult | undefined;
  let diff: DiffSummary | string = "not run (--cases)";
  let bulk: BulkResult | undefined;
  let dsync: DsyncCommand;
  try {
    dsync = await resolveNodeCommand(options.dsync);
    log(`nodes run: ${dsync.label}${dsync.staleNote ? ` (warning: ${dsync.staleNote})` : ""}`);
    log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memTotal}, load ${machine.loadAverage}; commit ${commit}; temp ${root}`);
    if (options.cases.has("lag")) lag = await lagCase(options, dsync, root);
    if (options.cases.has("partition")) conv = await partitionCase(options, dsync, root);
    if (options.cases.has("diff")) diff = await diffCase(options, dsync);
    if (options.cases.has("bulk")) bulk = await bulkCase(options, dsync, root);
  } finally {
    await runCleanups();
  }
  const loadEnd = loadAverageText();

  // ----- report -----
  const out: string[] = [];
  out.push(`Replication benchmark, commit ${commit}, ${startedAt.toISOString()}, ${machine.cores} cores (${machine.cpuModel}), load ${machine.loadAverage} -> ${loadEnd}`);
  out.push(`nodes: ${dsync!.label}; all on 127.0.0.1`);
  if (lag) {
    out.push("");
    out.push(
      `1. Replication lag: 3 nodes (A, B, C peers of each other), folder of ${lag.files} files of 1-4 KiB; ${lag.pushes} pushes to A (one or two files each, ` +
        `after ${lag.warmup} warm-up pushes), from A's commit answer until the node's head is the version, polled every ${lag.pollMs} ms; --sync-interval-ms ${lag.intervalMs}`,
    );
    const row = (label: string, d: Distribution) => [label, ms(d.p50), ms(d.p99), ms(d.max), ms(d.min)];
    out.push(
      formatTable(
        ["", "p50", "p99", "max", "min"],
        [row("lag to B", lag.b), row("lag to C", lag.c), row("lag to both (later of B, C)", lag.both), row("push to A (start to commit answer)", lag.push)],
      ),
    );
    out.push(`baseline ${lag.rsyncCommand}, the same change, after each push: median ${ms(lag.rsyncMedianMs)}; lag p50 (both) / rsync = ${ratio(lag.both.p50, lag.rsyncMedianMs)}`);
    out.push(`initial replication of the ${lag.files}-file folder: ${ms(lag.initialReplicationMs)}`);
    out.push(`slowest pushes (lag B / C): ${lag.slowest.map((s) => `#${s.push} ${ms(s.lagB)} / ${ms(s.lagC)}`).join(", ")}`);
    out.push(`replication counters: ${Object.entries(lag.stats).map(([n, s]) => `${n} pulls ${s.pulls}, failures ${s.pullFailures}, notices in ${s.noticesReceived}`).join("; ")}`);
  }
  if (conv) {
    out.push("");
    out.push(
      `2. Convergence after a partition heals: A and B through cuttable proxies, ${conv.treeFiles} files (${formatBytes(conv.treeBytes)}), ${conv.changed} rewritten and pushed to A ` +
        `during each partition; ${conv.runs.length} runs; --sync-interval-ms ${conv.intervalMs}; B polled every ${conv.pollMs} ms`,
    );
    out.push(
      `   The notice of the push is lost during the partition; after the heal, the first retry of the unreachable peer (every 200 ms) or the next round (${conv.intervalMs} ms) starts B's pull: convergence includes that detection delay ` +
        `(heal -> B's pull counter moves; it includes two listings of A's folders). "pull" = convergence - detection.`,
    );
    out.push(
      formatTable(
        ["run", "converged", "detection", "pull", "dsync wire", "rsync -a --delete", "rsync wire", "push to A"],
        conv.runs.map((r) => [String(r.run + 1), ms(r.convergenceMs), ms(r.detectionMs), ms(r.pullMs), formatBytes(r.wireBytes), ms(r.rsyncMs), formatBytes(r.rsyncWireBytes), ms(r.pushMs)]),
      ),
    );
    out.push(
      `median: converged ${ms(conv.convergenceMedianMs)}, detection ${ms(conv.detectionMedianMs)}, pull ${ms(conv.pullMedianMs)}; rsync ${ms(conv.rsyncMedianMs)} ` +
        `(${conv.rsyncCommand}); ratio converged/rsync ${ratio(conv.convergenceMedianMs, conv.rsyncMedianMs)}, pull/rsync ${ratio(conv.pullMedianMs, conv.rsyncMedianMs)}`,
    );
    out.push(`initial push of the tree to A ${ms(conv.initialPushMs)}; on B ${ms(conv.initialReplicationMs)} after A acknowledged it`);
  }
  out.push("");
  if (typeof diff === "string") out.push(`3. Replica diff: ${diff}`);
  else {
    out.push(`3. Replica diff (replica-diff.ts): ${diff.files} files, differing in ${diff.changedPath}`);
    out.push(
      `   heads: ${diff.heads.requests} requests (depth ${diff.heads.depth}, bound ${diff.heads.bound}, ${diff.heads.met ? "met" : "missed"}), ${ms(diff.heads.medianSeconds * 1000)}; ` +
        `pinned: ${diff.pinned.requests} requests (bound ${diff.pinned.bound}, ${diff.pinned.met ? "met" : "missed"}), ${ms(diff.pinned.medianSeconds * 1000)}; ` +
        `rsync -rn --delete --checksum ${ms(diff.rsyncMedianSeconds * 1000)}`,
    );
  }

  if (bulk) {
    out.push("");
    out.push(
      `4. Bulk replication: nodes A and B (peers, eventual), \`dsync push\` of ${bulk.files} files (${formatBytes(bulk.bytes)}, half seeded random, half seeded text) to A, ` +
        `from the push's start until B's head is the pushed version (B's merge event, long-polled); phases from the nodes' events (A commit, B fetch: its closure all here, B merge: head moved). ` +
        `Syncthing (${bulk.syncthingVersion || "n/a"}): both running and connected over empty folders, the data renamed into the sender's folder and a scan asked for, until the receiver reports every file and nothing needed (its events long-polled).`,
    );
    out.push(
      formatTable(
        ["run", "mode", "B holds head", "push", "A commit", "B all objects", "B head", "fetched ahead", "at the head", "CPU A / B / push"],
        bulk.dsync.map((r) => [
          String(r.run + 1),
          r.streaming ? "streaming" : "at the head",
          ms(r.totalMs),
          ms(r.pushMs),
          ms(r.commitMs),
          ms(r.fetchedMs),
          ms(r.mergedMs),
          formatBytes(r.aheadBytes),
          formatBytes(r.atHeadBytes),
          `${r.cpuA.toFixed(2)} / ${r.cpuB.toFixed(2)} / ${r.cpuPush.toFixed(2)} s`,
        ]),
      ),
    );
    if (typeof bulk.syncthing === "string") out.push(`Syncthing: ${bulk.syncthing}`);
    else out.push(formatTable(["run", "Syncthing receiver holds all", "sender scanned", "CPU sender / receiver"], bulk.syncthing.map((r) => [String(r.run + 1), ms(r.totalMs), ms(r.scanMs), `${r.cpuSender.toFixed(2)} / ${r.cpuReceiver.toFixed(2)} s`])));
    out.push(
      `medians: streaming ${ms(bulk.medians.streaming)}, at the head ${ms(bulk.medians.notStreaming)}, Syncthing ${ms(bulk.medians.syncthing)}; ` +
        `streaming / Syncthing ${ratio(bulk.medians.streaming, bulk.medians.syncthing)}, at the head / Syncthing ${ratio(bulk.medians.notStreaming, bulk.medians.syncthing)}`,
    );
  }

  const header = ["metric", "figure", "baseline", "ratio", "target", "met?"];
  const rows: string[][] = [];
  if (lag) {
    const base = `rsync -a, 1 file: ${ms(lag.rsyncMedianMs)}`;
    rows.push(["lag p50, B and C", ms(lag.both.p50), base, ratio(lag.both.p50, lag.rsyncMedianMs), "", ""]);
    rows.push(["lag p99, B and C", ms(lag.both.p99), base, ratio(lag.both.p99, lag.rsyncMedianMs), "<= 1 s", lag.both.p99 <= 1000 ? "met" : "MISSED"]);
    rows.push(["lag max, B and C", ms(lag.both.max), "", "", "", ""]);
    rows.push(["lag p50 / p99, B", `${ms(lag.b.p50)} / ${ms(lag.b.p99)}`, "", "", "p99 <= 1 s", lag.b.p99 <= 1000 ? "met" : "MISSED"]);
    rows.push(["lag p50 / p99, C", `${ms(lag.c.p50)} / ${ms(lag.c.p99)}`, "", "", "p99 <= 1 s", lag.c.p99 <= 1000 ? "met" : "MISSED"]);
  }
  if (conv) {
    const base = `rsync -a --delete: ${ms(conv.rsyncMedianMs)}`;
    rows.push([`converge after heal (interval ${conv.intervalMs} ms), median`, ms(conv.convergenceMedianMs), base, ratio(conv.convergenceMedianMs, conv.rsyncMedianMs), "", ""]);
    rows.push(["  detection (heal -> pull starts)", ms(conv.detectionMedianMs), "", "", `<= ${conv.intervalMs} ms`, conv.runs.every((r) => r.detectionMs <= conv!.intervalMs + 100) ? "met" : "MISSED"]);
    rows.push(["  pull (converged - detection)", ms(conv.pullMedianMs), base, ratio(conv.pullMedianMs, conv.rsyncMedianMs), "", ""]);
    rows.push(["  wire bytes", formatBytes(conv.wireBytesMedian), `rsync: ${formatBytes(conv.rsyncWireBytesMedian)}`, ratio(conv.wireBytesMedian, conv.rsyncWireBytesMedian), "", ""]);
  }
  if (typeof diff !== "string") {
    rows.push(["replica diff requests (heads)", String(diff.heads.requests), "", "", `<= ${diff.heads.bound} (2·depth+2)`, diff.heads.met ? "met" : "MISSED"]);
    rows.push(["replica diff requests (pinned)", String(diff.pinned.requests), "", "", `<= ${diff.pinned.bound} (2·depth+2)`, diff.pinned.met ? "met" : "MISSED"]);
    rows.push(["replica diff time (heads)", ms(diff.heads.medianSeconds * 1000), `rsync -rn --checksum: ${ms(diff.rsyncMedianSeconds * 1000)}`, ratio(diff.heads.medianSeconds, diff.rsyncMedianSeconds), "", ""]);
  }
  if (bulk) {
    const base = `Syncthing: ${ms(bulk.medians.syncthing)}`;
    const met = bulk.medians.streaming <= 0.5 * bulk.medians.syncthing;
    if (Number.isFinite(bulk.medians.streaming)) rows.push([`bulk ${formatBytes(bulk.bytes)} in ${bulk.files} files, push start to B's head, streaming (median)`, ms(bulk.medians.streaming), base, ratio(bulk.medians.streaming, bulk.medians.syncthing), "<= 0.5x", Number.isFinite(bulk.medians.syncthing) ? (met ? "met" : "MISSED") : ""]);
    if (Number.isFinite(bulk.medians.notStreaming)) rows.push(["  the same, fetched at the head (--replication-streaming off)", ms(bulk.medians.notStreaming), base, ratio(bulk.medians.notStreaming, bulk.medians.syncthing), "", ""]);
  }
  out.push("");
  out.push("Summary");
  out.push(formatTable(header, rows));
  if (typeof diff !== "string") {
    out.push(`(replica diff: the bound and met? are replica-diff.ts's; naming heads (URL/FOLDER) adds a head lookup per side, 2·depth+4 = ${diff.heads.depth * 2 + 4}, by its own account)`);
  }
  if (options.markdown) {
    out.push("");
    out.push(formatMarkdownTable(header, rows));
  }
  process.stdout.write(out.join("\n") + "\n");
  if (options.json) {
    writeFileSync(options.json, JSON.stringify({ commit, startedAt: startedAt.toISOString(), machine, loadEnd, options: { ...options, cases: [...options.cases] }, lag, convergence: conv, diff, bulk }, null, 2));
    log(`figures written to ${options.json}`);
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    async (error) => {
      await runCleanups();
      process.stderr.write(`replication bench: ${(error as Error).stack ?? error}\n`);
      process.exit(1);
    },
  );
}
