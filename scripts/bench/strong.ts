// Strong-mode benchmark: what a strong folder (its head ordered by the cluster's Raft group)
// costs beside an eventual one, and how long writes stop when the leader dies.
//
//   bun scripts/bench/strong.ts [--nodes 3,5] [--pushes N] [--commits N] [--concurrency N]
//                               [--throughput-s S] [--kills N] [--cases latency,throughput,failover]
//                               [--dsync source|binary] [--seed N] [--data DIR] [--json FILE] [--markdown] [--keep]
//
// For each cluster size in --nodes (3 and 5): that many `dsync serve` processes on 127.0.0.1,
// each with every other as a peer and one cluster token, form one Raft group.
// 1. Latency. --pushes (100) small pushes, one after another, through src/client/push.ts in this
//    process (a 20-file folder of ~1 KiB files, one file rewritten per push: scan, "which do you
//    lack?", upload, commit), to a strong folder through the leader, to another strong folder
//    through a follower (the follower hands the commit to the leader, which first fetches the
//    pushed objects from it), and to an eventual folder on the leader, interleaved so all three
//    see the same load. Then --commits (200) commits alone (POST /v1/folders/F/commit of a tree
//    the node holds, new message, parent = the head): the consensus round trip without the
//    client's scan and upload. p50, p99 and max of each.
// 2. Throughput. --concurrency (8) clients commit as fast as their answers come for
//    --throughput-s (10) seconds, each to its own folder (so none merges), through the leader:
//    all strong folders, then all eventual ones. Acknowledged commits per second.
// 3. Failover (3 nodes only). A writer commits in a loop through any running node (a refused
//    connection or a 503 is retried at once, elsewhere); the leader is killed with -9 --kills
//    (20) times. Each time: the time from the kill to the next acknowledged commit; then the
//    killed node is restarted on its data, and the next kill waits until every node has
//    applied what the leader committed. p50, p99 and max.
//
// The nodes run `bun cli/main.ts serve` (--dsync source, the default) or dist/dsync (binary).
// Everything lives under --data (a fresh temporary directory by default), removed at the end
// unless --keep; every process started is stopped, also on error or Ctrl-C. Progress goes to
// stderr, results to stdout.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { push } from "../../src/client/push.ts";
import { chunkingDescriptor, DEFAULT_CHUNKER_PARAMS } from "../../src/core/fastcdc.ts";
import { commandFlags, formatMarkdownTable, formatTable, gitCommit, machineInfo, Xorshift128Plus } from "./lib.ts";
import { cleanEnv, freePort, REPO_ROOT, resolveDsync, stopProcess, type DsyncCommand } from "./push-lib.ts";

const CLUSTER_TOKEN = "strong-bench-cluster-token";
const USAGE = `usage: bun scripts/bench/strong.ts [--nodes 3,5] [--pushes N] [--commits N] [--concurrency N] [--throughput-s S] [--kills N]
                                   [--cases latency,throughput,failover] [--dsync source|binary] [--seed N] [--data DIR]
                                   [--json FILE] [--markdown] [--keep]
`;

interface Options {
  nodes: number[];
  pushes: number;
  commits: number;
  concurrency: number;
  throughputS: number;
  kills: number;
  cases: Set<string>;
  dsync: "source" | "binary";
  seed: number;
  data: string | undefined;
  json: string | undefined;
  markdown: boolean;
  keep: boolean;
}

function usage(message?: string): never {
  process.stderr.write((message ? `strong bench: ${message}\n` : "") + USAGE);
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    nodes: [3, 5],
    pushes: 100,
    commits: 200,
    concurrency: 8,
    throughputS: 10,
    kills: 20,
    cases: new Set(["latency", "throughput", "failover"]),
    dsync: "source",
    seed: 1,
    data: undefined,
    json: undefined,
    markdown: false,
    keep: false,
  };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--nodes") {
      options.nodes = value()
        .split(",")
        .map((n) => Number(n));
      if (options.nodes.some((n) => !Number.isInteger(n) || n < 1 || n > 9)) usage("--nodes takes sizes from 1 to 9, e.g. 3,5");
    } else if (flag === "--pushes") options.pushes = count(1);
    else if (flag === "--commits") options.commits = count(1);
    else if (flag === "--concurrency") options.concurrency = count(1);
    else if (flag === "--throughput-s") options.throughputS = count(1);
    else if (flag === "--kills") options.kills = count(1);
    else if (flag === "--cases") {
      options.cases = new Set(value().split(","));
      for (const name of options.cases) if (!["latency", "throughput", "failover"].includes(name)) usage(`unknown case ${name}`);
    } else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "source" && choice !== "binary") usage("--dsync is source or binary");
      options.dsync = choice;
    } else if (flag === "--seed") options.seed = count(0);
    else if (flag === "--data") options.data = value();
    else if (flag === "--json") options.json = value();
    else if (flag === "--markdown") options.markdown = true;
    else if (flag === "--keep") options.keep = true;
    else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown option ${flag}`);
  }
  return options;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// A cluster of real nodes

interface RunningNode {
  url: string;
  id: string;
  dataDir: string;
  port: number;
  proc: Subprocess | null;
}

const everyProcess = new Set<Subprocess>();

async function waitForListening(proc: Subprocess, what: string, timeoutMs = 30_000): Promise<void> {
  let output = "";
  const decoder = new TextDecoder();
  await new Promise<void>((resolveStarted, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms: ${output}`)), timeoutMs);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        // Only the start is read for; later output is drained and dropped.
        if (output.length < 64 * 1024) output += decoder.decode(value, { stream: true });
        if (/listening on http/.test(output)) {
          clearTimeout(timer);
          resolveStarted();
        }
      }
    };
    void pump(proc.stdout as ReadableStream<Uint8Array>);
    void pump(proc.stderr as ReadableStream<Uint8Array>);
    void proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${output}`));
    });
  });
}

class Cluster {
  readonly nodes: RunningNode[];

  constructor(
    private readonly dsync: DsyncCommand,
    root: string,
    size: number,
  ) {
    this.nodes = Array.from({ length: size }, (_, i) => {
      const port = freePort();
      const id = `bench-${String.fromCharCode(97 + i)}`;
      return { url: `http://127.0.0.1:${port}`, id, dataDir: join(root, id), port, proc: null };
    });
  }

  async start(i: number): Promise<void> {
    const node = this.nodes[i];
    mkdirSync(node.dataDir, { recursive: true });
    const peers = this.nodes.filter((_, j) => j !== i).map((n) => n.url);
    const proc = Bun.spawn(
      [...this.dsync.argv, "serve", "--data", node.dataDir, "--listen", `127.0.0.1:${node.port}`, "--node-id", node.id, "--peers", peers.join(","), "--cluster-token", CLUSTER_TOKEN],
      { cwd: REPO_ROOT, env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" },
    );
    everyProcess.add(proc);
    node.proc = proc;
    await waitForListening(proc, `dsync serve ${node.id}`);
  }

  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.start(i)));
  }

  async kill9(i: number): Promise<void> {
    const proc = this.nodes[i].proc;
    if (!proc) return;
    this.nodes[i].proc = null;
    proc.kill("SIGKILL");
    await proc.exited;
    everyProcess.delete(proc);
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        if (!node.proc) return;
        const proc = node.proc;
        node.proc = null;
        await stopProcess(proc);
        everyProcess.delete(proc);
      }),
    );
  }

  async consensus(i: number): Promise<{ nodeId: string; role: string; term: number; leader: { id: string } | null; commit: number; applied: number } | null> {
    if (!this.nodes[i].proc) return null;
    try {
      const response = await fetch(`${this.nodes[i].url}/v1/status`, { signal: AbortSignal.timeout(2_000) });
      if (response.status !== 200) return null;
      return ((await response.json()) as { consensus: any }).consensus;
    } catch {
      return null;
    }
  }

  /** The node that leads by its own account and by a majority's; polls until there is one (bounded). */
  async waitForLeader(capMs = 30_000): Promise<number> {
    const deadline = Date.now() + capMs;
    for (;;) {
      const statuses = await Promise.all(this.nodes.map((_, i) => this.consensus(i)));
      for (let i = 0; i < statuses.length; i++) {
        const s = statuses[i];
        if (!s || s.role !== "leader") continue;
        const backing = statuses.filter((o) => o && o.leader?.id === s.nodeId && o.term === s.term).length;
        if (backing > this.nodes.length / 2) return i;
      }
      if (Date.now() > deadline) throw new Error(`no leader within ${capMs} ms: ${JSON.stringify(statuses)}`);
      await Bun.sleep(20);
    }
  }

  /** Polls until every running node has applied what the leader has committed (bounded). */
  async waitForCaughtUp(capMs = 30_000): Promise<void> {
    const deadline = Date.now() + capMs;
    for (;;) {
      const statuses = await Promise.all(this.nodes.map((_, i) => this.consensus(i)));
      const leader = statuses.find((s) => s?.role === "leader");
      if (leader && statuses.every((s) => s && s.applied >= leader.commit)) return;
      if (Date.now() > deadline) throw new Error(`the nodes did not catch up within ${capMs} ms: ${JSON.stringify(statuses)}`);
      await Bun.sleep(50);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

async function createFolder(url: string, name: string, consistency: "strong" | "eventual"): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await postJson(`${url}/v1/folders`, { name, consistency }, 10_000).catch((error: Error) => ({ status: 0, body: error.message }));
    if (reply.status === 200 || reply.status === 201) return;
    if ((reply.status !== 503 && reply.status !== 0) || Date.now() > deadline) throw new Error(`creating ${consistency} folder ${name}: ${reply.status} ${JSON.stringify(reply.body)}`);
    await Bun.sleep(100);
  }
}

interface Content {
  root: string;
  files: number;
  bytes: number;
}

/** A commit of `content` with a new message onto `parent`; the new head when acknowledged, else null (with the status: 0 for no answer). */
async function commit(url: string, folder: string, content: Content, parent: string | null, message: string, timeoutMs = 10_000): Promise<{ head: string | null; status: number }> {
  try {
    const reply = await postJson(
      `${url}/v1/folders/${folder}/commit`,
      { root: content.root, parent, message, chunking: chunkingDescriptor(DEFAULT_CHUNKER_PARAMS), files: content.files, bytes: content.bytes },
      timeoutMs,
    );
    if (reply.status === 200) return { head: reply.body.version as string, status: 200 };
    if (reply.status !== 503) throw new Error(`commit to ${folder} via ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return { head: null, status: 503 };
  } catch (error) {
    if ((error as Error).message.startsWith("commit to")) throw error;
    return { head: null, status: 0 };
  }
}

async function contentOf(url: string, folder: string, head: string): Promise<Content> {
  const version = (await (await fetch(`${url}/v1/folders/${folder}/versions/${head}?stale=1`)).json()) as { root: string; files: number; bytes: number };
  return { root: version.root, files: version.files, bytes: version.bytes };
}

// ---------------------------------------------------------------------------------------------
// Figures

interface Distribution {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles. */
function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  return { count: sorted.length, p50: rank(50), p99: rank(99), max: sorted[sorted.length - 1] };
}

const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));

function makeFolderDir(root: string, name: string, random: Xorshift128Plus): string {
  const dir = join(root, "clients", name);
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < 20; f++) writeFileSync(join(dir, `file-${f}.txt`), randomText(random, 1024));
  return dir;
}

function randomText(random: Xorshift128Plus, length: number): string {
  const words = new Uint32Array(Math.ceil(length / 4) + 1);
  random.fill(words);
  let text = "";
  for (let i = 0; text.length < length; i++) text += (words[i % words.length] % 36).toString(36);
  return text;
}

interface LatencyFigures {
  nodes: number;
  pushStrongLeader: Distribution;
  pushStrongFollower: Distribution;
  pushEventual: Distribution;
  commitStrongLeader: Distribution;
  commitStrongFollower: Distribution;
  commitEventual: Distribution;
}

async function latencyCase(cluster: Cluster, root: string, options: Options, random: Xorshift128Plus): Promise<LatencyFigures> {
  const leader = await cluster.waitForLeader();
  const follower = (leader + 1) % cluster.nodes.length;
  const leaderUrl = cluster.nodes[leader].url;
  const followerUrl = cluster.nodes[follower].url;
  await createFolder(leaderUrl, "lat-strong-leader", "strong");
  await createFolder(leaderUrl, "lat-strong-follower", "strong");
  await createFolder(leaderUrl, "lat-eventual", "eventual");
  const targets = [
    { key: "strongLeader", folder: "lat-strong-leader", url: leaderUrl },
    { key: "strongFollower", folder: "lat-strong-follower", url: followerUrl },
    { key: "eventual", folder: "lat-eventual", url: leaderUrl },
  ] as const;
  const dirs = targets.map((t) => makeFolderDir(root, `${cluster.nodes.length}-${t.folder}`, random));
  // The first push of each sends the whole folder: not a small push, not measured.
  const heads: string[] = [];
  for (let t = 0; t < targets.length; t++) heads.push((await push(dirs[t], { remote: targets[t].url, folder: targets[t].folder })).version);

  const pushMs: number[][] = targets.map(() => []);
  for (let i = 0; i < options.pushes; i++) {
    for (let t = 0; t < targets.length; t++) {
      writeFileSync(join(dirs[t], `file-${i % 20}.txt`), randomText(random, 1024));
      const started = performance.now();
      const report = await push(dirs[t], { remote: targets[t].url, folder: targets[t].folder });
      pushMs[t].push(performance.now() - started);
      if (report.merged) throw new Error(`push ${i} to ${targets[t].folder} was merged: the folder moved under the benchmark`);
      heads[t] = report.version;
    }
    if ((i + 1) % 25 === 0) log(`  ${cluster.nodes.length} nodes: ${i + 1}/${options.pushes} pushes to each folder`);
  }

  const contents = await Promise.all(targets.map((t, k) => contentOf(leaderUrl, t.folder, heads[k])));
  const commitMs: number[][] = targets.map(() => []);
  for (let i = 0; i < options.commits; i++) {
    for (let t = 0; t < targets.length; t++) {
      const started = performance.now();
      const result = await commit(targets[t].url, targets[t].folder, contents[t], heads[t], `bench commit ${i}`);
      if (!result.head) throw new Error(`commit ${i} to ${targets[t].folder} was not acknowledged (${result.status})`);
      commitMs[t].push(performance.now() - started);
      heads[t] = result.head;
    }
  }
  return {
    nodes: cluster.nodes.length,
    pushStrongLeader: distribution(pushMs[0]),
    pushStrongFollower: distribution(pushMs[1]),
    pushEventual: distribution(pushMs[2]),
    commitStrongLeader: distribution(commitMs[0]),
    commitStrongFollower: distribution(commitMs[1]),
    commitEventual: distribution(commitMs[2]),
  };
}

interface ThroughputFigures {
  nodes: number;
  concurrency: number;
  seconds: number;
  strongPerSecond: number;
  eventualPerSecond: number;
  strongLatency: Distribution;
  eventualLatency: Distribution;
}

async function throughputCase(cluster: Cluster, root: string, options: Options, random: Xorshift128Plus): Promise<ThroughputFigures> {
  const leader = await cluster.waitForLeader();
  const url = cluster.nodes[leader].url;
  const run = async (consistency: "strong" | "eventual") => {
    const folders = Array.from({ length: options.concurrency }, (_, k) => `tp-${consistency}-${k}`);
    const heads: string[] = [];
    for (const folder of folders) {
      await createFolder(url, folder, consistency);
      heads.push((await push(makeFolderDir(root, `${cluster.nodes.length}-${folder}`, random), { remote: url, folder })).version);
    }
    const contents = await Promise.all(folders.map((folder, k) => contentOf(url, folder, heads[k])));
    const latencies: number[] = [];
    let acknowledged = 0;
    const endAt = performance.now() + options.throughputS * 1000;
    await Promise.all(
      folders.map(async (folder, k) => {
        for (let i = 0; performance.now() < endAt; i++) {
          const started = performance.now();
          const result = await commit(url, folder, contents[k], heads[k], `tp ${i}`);
          if (!result.head) throw new Error(`a ${consistency} commit to ${folder} was not acknowledged (${result.status})`);
          latencies.push(performance.now() - started);
          heads[k] = result.head;
          acknowledged++;
        }
      }),
    );
    return { perSecond: acknowledged / options.throughputS, latency: distribution(latencies) };
  };
  const strong = await run("strong");
  const eventual = await run("eventual");
  return {
    nodes: cluster.nodes.length,
    concurrency: options.concurrency,
    seconds: options.throughputS,
    strongPerSecond: strong.perSecond,
    eventualPerSecond: eventual.perSecond,
    strongLatency: strong.latency,
    eventualLatency: eventual.latency,
  };
}

interface FailoverFigures {
  nodes: number;
  kills: number;
  killToAcknowledgedMs: Distribution;
  samplesMs: number[];
}

async function failoverCase(cluster: Cluster, root: string, options: Options, random: Xorshift128Plus): Promise<FailoverFigures> {
  const first = await cluster.waitForLeader();
  const folder = "failover";
  await createFolder(cluster.nodes[first].url, folder, "strong");
  const head0 = (await push(makeFolderDir(root, `failover`, random), { remote: cluster.nodes[first].url, folder })).version;
  const content = await contentOf(cluster.nodes[first].url, folder, head0);
  let head: string | null = head0;
  let lastAckMs = 0;
  let running = true;
  let sequence = 0;
  const pick = new Xorshift128Plus(`failover-${options.seed}`);
  const choice = new Uint32Array(2);
  const writer = (async () => {
    while (running) {
      pick.fill(choice);
      const i = choice[0] % cluster.nodes.length;
      if (!cluster.nodes[i].proc) continue;
      const result = await commit(cluster.nodes[i].url, folder, content, head, `failover ${sequence++}`, 3_000);
      if (result.head) {
        head = result.head;
        lastAckMs = performance.now();
      } else await Bun.sleep(5);
    }
  })();
  const samples: number[] = [];
  try {
    for (let kill = 0; kill < options.kills; kill++) {
      await cluster.waitForCaughtUp();
      // Writes flowing under the current leader before it dies.
      const flowing = performance.now();
      while (lastAckMs < flowing) await Bun.sleep(5);
      const leader = await cluster.waitForLeader();
      const killedAt = performance.now();
      await cluster.kill9(leader);
      const deadline = Date.now() + 30_000;
      while (lastAckMs < killedAt) {
        if (Date.now() > deadline) throw new Error(`no acknowledged commit within 30 s of killing ${cluster.nodes[leader].id}`);
        await Bun.sleep(1);
      }
      samples.push(lastAckMs - killedAt);
      log(`  kill ${kill + 1}/${options.kills}: ${cluster.nodes[leader].id}; next acknowledged commit ${ms(lastAckMs - killedAt)} ms later`);
      await cluster.start(leader);
    }
  } finally {
    running = false;
    await writer;
  }
  return { nodes: cluster.nodes.length, kills: options.kills, killToAcknowledgedMs: distribution(samples), samplesMs: samples };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dsync = resolveDsync(options.dsync === "binary" ? "binary" : "source");
  const root = options.data ?? mkdtempSync(join(tmpdir(), "dsync-bench-strong-"));
  mkdirSync(root, { recursive: true });
  const random = new Xorshift128Plus(`strong-bench-${options.seed}`);
  const commitId = await gitCommit(REPO_ROOT);
  log(`strong bench: commit ${commitId}, ${dsync.label}, seed ${options.seed}, data under ${root}`);
  const latency: LatencyFigures[] = [];
  const throughput: ThroughputFigures[] = [];
  let failover: FailoverFigures | undefined;
  let cluster: Cluster | undefined;
  const stopEverything = async () => {
    await cluster?.stopAll();
    for (const proc of everyProcess) proc.kill("SIGKILL");
  };
  process.once("SIGINT", () => void stopEverything().then(() => process.exit(130)));
  try {
    for (const size of options.nodes) {
      if (!options.cases.has("latency") && !options.cases.has("throughput")) break;
      log(`${size} nodes: starting`);
      cluster = new Cluster(dsync, join(root, `cluster-${size}`), size);
      await cluster.startAll();
      if (options.cases.has("latency")) latency.push(await latencyCase(cluster, root, options, random));
      if (options.cases.has("throughput")) throughput.push(await throughputCase(cluster, root, options, random));
      await cluster.stopAll();
      cluster = undefined;
    }
    if (options.cases.has("failover")) {
      log(`failover: 3 nodes, ${options.kills} kills`);
      cluster = new Cluster(dsync, join(root, "cluster-failover"), 3);
      await cluster.startAll();
      failover = await failoverCase(cluster, root, options, random);
      await cluster.stopAll();
      cluster = undefined;
    }
  } finally {
    await stopEverything();
    if (!options.keep && !options.data) rmSync(root, { recursive: true, force: true });
  }

  const machine = machineInfo();
  const table = options.markdown ? formatMarkdownTable : formatTable;
  const out: string[] = [`strong bench: commit ${commitId}, seed ${options.seed}, ${dsync.label}; ${machine.cores} cores ${machine.cpuModel}, load ${machine.loadAverage}`];
  if (latency.length > 0) {
    const row = (label: string, d: Distribution) => [label, String(d.count), ms(d.p50), ms(d.p99), ms(d.max)];
    out.push("", `latency, ms (one after another; push = src/client/push.ts of a one-file change in a 20-file folder; commit = the commit request alone)`);
    out.push(
      table(
        ["what", "n", "p50", "p99", "max"],
        latency.flatMap((l) => [
          row(`${l.nodes} nodes: push, strong, via the leader`, l.pushStrongLeader),
          row(`${l.nodes} nodes: push, strong, via a follower`, l.pushStrongFollower),
          row(`${l.nodes} nodes: push, eventual`, l.pushEventual),
          row(`${l.nodes} nodes: commit, strong, via the leader`, l.commitStrongLeader),
          row(`${l.nodes} nodes: commit, strong, via a follower`, l.commitStrongFollower),
          row(`${l.nodes} nodes: commit, eventual`, l.commitEventual),
        ]),
      ),
    );
  }
  if (throughput.length > 0) {
    out.push("", `throughput (concurrent commits through the leader, each client its own folder)`);
    out.push(
      table(
        ["what", "clients", "commits/s", "p50 ms", "p99 ms"],
        throughput.flatMap((t) => [
          [`${t.nodes} nodes: strong`, String(t.concurrency), t.strongPerSecond.toFixed(1), ms(t.strongLatency.p50), ms(t.strongLatency.p99)],
          [`${t.nodes} nodes: eventual`, String(t.concurrency), t.eventualPerSecond.toFixed(1), ms(t.eventualLatency.p50), ms(t.eventualLatency.p99)],
        ]),
      ),
    );
  }
  if (failover) {
    const d = failover.killToAcknowledgedMs;
    out.push("", `failover (3 nodes): kill -9 of the leader to the next acknowledged commit, ${d.count} kills: p50 ${ms(d.p50)} ms, p99 ${ms(d.p99)} ms, max ${ms(d.max)} ms`);
  }
  process.stdout.write(out.join("\n") + "\n");
  if (options.json) writeFileSync(options.json, JSON.stringify({ commit: commitId, seed: options.seed, dsync: dsync.label, machine, options: { ...options, cases: [...options.cases] }, latency, throughput, failover }, null, 2));
}

if (import.meta.main) {
  main().catch((error) => {
    process.stderr.write(`strong bench: ${(error as Error).stack ?? error}\n`);
    for (const proc of everyProcess) proc.kill("SIGKILL");
    process.exit(1);
  });
}
