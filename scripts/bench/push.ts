// Push benchmark: `dsync push` against rsync to a local rsync daemon, on the same data in the
// same run, each behind a counting TCP proxy so both are measured by the bytes on the wire.
//
//   bun scripts/bench/push.ts [--data DIR] [--runs N] [--size-mib N] [--cases 1,2,3,4]
//                             [--dsync auto|binary|source|build] [--release NAME@FROM..TO ...]
//                             [--compress auto|never|LEVEL] [--link-mbit N [--latency-ms N]]
//
// --compress is passed to every `dsync push` (default: none, so the push's own default, auto),
// to compare the upload compression choices on the same data; case 4, which measures what
// compression saves against rsync -az, pushes with --compress 5 unless --compress is given.
//
// --link-mbit N puts both proxies (dsync's and rsync's) on a link of N Mbit/s each way (a token
// bucket in tcp-proxy.ts, with --latency-ms one way added); the rate a plain transfer achieves
// through it is measured and printed first.
//
// --dsync: auto (default) runs dist/dsync when it exists (what users run; warns when it is older
// than the sources), else bun on cli/main.ts; build compiles the committed HEAD into --data first.
// Where dsync's time goes comes from its own report: elapsed_ms and phases_ms (scan, plan,
// upload, commit); start-up and exit are the wall time minus elapsed_ms.
//
// Cases (each beside rsync -a and rsync -az):
//   1. initial push of a mixed tree (3 large random files + ~8 000 small files; 1 GiB by default)
//   2. push after a 1 KiB edit in the middle of a large file (256 MiB by default)
//   3. no-change push of a 10 000-file tree (files of 1-8 KiB)
//   4. a real update: two releases of npm packages, v1 then v2, side by side in one folder (by
//      default the Bun binary 1.4.4 -> 1.4.5 and TypeScript 5.5.4 -> 5.6.3; --release, repeated,
//      names others); dsync sends changed chunks as deltas against the ones they replaced
//   5. a first push of compressible data to an empty node: the Bun binary's npm package and the
//      typescript package (about 125 MB, 124 files), the case for upload compression
//
// Times are medians over --runs runs, from process spawn to exit (start-up included for both
// tools); bytes are what crossed each proxy (up = client to server); CPU is the client's own
// (rusage) and the node's or the daemon's with its reaped children (/proc), plus this process's
// (the proxies). Before each timed run the tool's destination holds the case's starting state
// and `sync` has flushed dirty pages. Generated data is cached under --data, so reruns skip it.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { commandFlags, formatBytes, formatMarkdownTable, formatTable, gitCommit, machineInfo, median, warmPageCache } from "./lib.ts";
import {
  buildDsyncAtHead,
  cleanEnv,
  editMiddle,
  ensureEditBase,
  ensureMixedTree,
  ensureRelease,
  ensureReleasePair,
  ensureSmallFilesTree,
  REPO_ROOT,
  replaceContents,
  resolveDsync,
  runTimed,
  startDsyncNode,
  startRsyncDaemon,
  type DsyncCommand,
  type Service,
} from "./push-lib.ts";
import { measureLinkMbit, startTcpProxy, type LinkSettings, type TcpProxy } from "./tcp-proxy.ts";

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  dataDir: string;
  runs: number;
  sizeMiB: number;
  cases: Set<number>;
  dsync: "auto" | "binary" | "source" | "build";
  /** Case 4's packages, each updated from `from` to `to` in its own subdirectory of the folder. */
  releases: { name: string; from: string; to: string }[];
  /** Push with DSYNC_DELTA=0: changed chunks whole (case 4 with and without deltas). */
  noDelta?: boolean;
  /** `dsync push --compress`, when given. */
  compress?: string;
  /** Both proxies throttled to this link, when given. */
  link?: LinkSettings;
}

function usage(message?: string): never {
  process.stderr.write(
    (message ? `push bench: ${message}\n` : "") +
      "usage: bun scripts/bench/push.ts [--data DIR] [--runs N] [--size-mib N] [--cases 1,2,3,4,5] [--dsync auto|binary|source|build] [--release NAME@FROM..TO ...] [--compress auto|never|LEVEL] [--no-delta] [--link-mbit N [--latency-ms N]]\n",
  );
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    dataDir: join(REPO_ROOT, ".bench/push"),
    runs: 3,
    sizeMiB: 1024,
    cases: new Set([1, 2, 3, 4]),
    dsync: "auto",
    releases: [
      { name: "@oven/bun-linux-x64", from: "1.4.4", to: "1.4.5" },
      { name: "typescript", from: "5.5.4", to: "5.6.3" },
    ],
  };
  let releasesGiven = false;
  let latencyMs: number | undefined;
  const positive = (text: string, flag: string) => {
    const n = Number(text);
    if (!(n > 0) || !Number.isFinite(n)) usage(`${flag} needs a positive number`);
    return n;
  };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--data") options.dataDir = resolve(value());
    else if (flag === "--runs") options.runs = count(1);
    else if (flag === "--size-mib") options.sizeMiB = count(16);
    else if (flag === "--cases") options.cases = new Set(value().split(",").map((c) => Number(c)));
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "auto" && choice !== "binary" && choice !== "source" && choice !== "build") usage("--dsync is auto, binary, source or build");
      options.dsync = choice;
    } else if (flag === "--release") {
      const match = /^(@?[^@]+)@([^.][^ ]*?)\.\.(.+)$/.exec(value());
      if (!match) usage("--release is NAME@FROM..TO, e.g. @oven/bun-linux-x64@1.4.4..1.4.5");
      if (!releasesGiven) options.releases = [];
      releasesGiven = true;
      options.releases.push({ name: match[1]!, from: match[2]!, to: match[3]! });
    } else if (flag === "--compress") options.compress = value();
    else if (flag === "--no-delta") options.noDelta = true;
    else if (flag === "--link-mbit") options.link = { ...options.link, mbit: positive(value(), flag) };
    else if (flag === "--latency-ms") latencyMs = positive(value(), flag);
    else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown argument ${flag}`);
  }
  if (latencyMs !== undefined) {
    if (!options.link) usage("--latency-ms needs --link-mbit");
    options.link.latencyMs = latencyMs;
  }
  for (const c of options.cases) if (![1, 2, 3, 4, 5].includes(c)) usage(`no case ${c}`);
  return options;
}

// ---------------------------------------------------------------------------------------------
// Measurements

/**
 * Case 4 measures what compression saves against rsync -az, which compresses whatever the link:
 * dsync pushes with compression forced too (--compress 5, the level auto picks on a slow link),
 * unless --compress says otherwise. On loopback `auto` sends these batches plain, as it should
 * there; its figures come from a run with --compress auto.
 */
const RELEASE_COMPRESS = (options: Options): string => options.compress ?? "5";

type Tool = "dsync" | "rsync -a" | "rsync -az";
const TOOLS: Tool[] = ["dsync", "rsync -a", "rsync -az"];

interface PushReportFields {
  files: number;
  bytes: number;
  chunks: number;
  chunks_sent: number;
  bytes_sent: number;
  objects_sent: number;
  wire_bytes_sent: number;
  wire_bytes_received: number;
  requests: number;
  files_read: number;
  elapsed_ms: number;
  /** Upload batches sent zstd-compressed and plain (NaN from builds before push --compress). */
  batches_compressed: number;
  batches_plain: number;
  /** Chunks sent as deltas, their bytes, and the block signatures received for them (NaN from builds before deltas). */
  chunks_as_delta: number;
  delta_bytes: number;
  signature_bytes: number;
  /** From phases_ms in the report (absent from older builds). */
  phase_scan_ms: number;
  phase_plan_ms: number;
  phase_upload_ms: number;
  phase_commit_ms: number;
  /** Wall time minus elapsed_ms: process start-up, module loading, exit. */
  outside_ms: number;
}

const REPORT_FIELDS = [
  "files",
  "bytes",
  "chunks",
  "chunks_sent",
  "bytes_sent",
  "objects_sent",
  "wire_bytes_sent",
  "wire_bytes_received",
  "requests",
  "files_read",
  "elapsed_ms",
  "batches_compressed",
  "batches_plain",
  "chunks_as_delta",
  "delta_bytes",
  "signature_bytes",
] as const;

function parseReport(stdout: string, seconds: number): PushReportFields {
  const raw = JSON.parse(stdout) as Record<string, unknown>;
  const out = {} as PushReportFields;
  for (const key of REPORT_FIELDS) out[key] = Number(raw[key]);
  const phases = (raw.phases_ms ?? {}) as Record<string, number | undefined>;
  out.phase_scan_ms = phases.scan ?? NaN;
  out.phase_plan_ms = phases.plan ?? NaN;
  out.phase_upload_ms = phases.upload ?? NaN;
  out.phase_commit_ms = phases.commit ?? NaN;
  out.outside_ms = seconds * 1000 - out.elapsed_ms;
  return out;
}

interface Sample {
  seconds: number;
  up: number;
  down: number;
  /** CPU seconds of the client process, and of the node / daemon (with its children) during the run. */
  clientCpu: number;
  serverCpu: number;
  /** CPU seconds of this process (the two proxies) during the run. */
  proxyCpu: number;
  report?: PushReportFields;
  /** How dsync sent its batches: "L1 3, L7 9, frames 0; plain: measuring 1" (from its report, when it says). */
  batchesText?: string;
}

interface CaseResult {
  id: string;
  title: string;
  /** What the data was, for the tables. */
  data: string;
  samples: Record<Tool, Sample[]>;
  /** Set for the cases that have a target. */
  target?: Target;
  notes: string[];
}

interface Target {
  text: string;
  check(summary: Record<Tool, Summary>): { met: boolean; detail: string };
}

interface Summary {
  seconds: number;
  up: number;
  down: number;
  total: number;
  clientCpu: number;
  serverCpu: number;
  proxyCpu: number;
  runs: number;
  report?: Record<keyof PushReportFields, number>;
}

function summarize(samples: Sample[]): Summary {
  const reports = samples.map((s) => s.report).filter((r): r is PushReportFields => r !== undefined);
  let report: Summary["report"];
  if (reports.length > 0) {
    report = {} as Record<keyof PushReportFields, number>;
    for (const key of Object.keys(reports[0]!) as (keyof PushReportFields)[]) report[key] = median(reports.map((r) => r[key]));
  }
  return {
    seconds: median(samples.map((s) => s.seconds)),
    up: median(samples.map((s) => s.up)),
    down: median(samples.map((s) => s.down)),
    total: median(samples.map((s) => s.up + s.down)),
    clientCpu: median(samples.map((s) => s.clientCpu)),
    serverCpu: median(samples.map((s) => s.serverCpu)),
    proxyCpu: median(samples.map((s) => s.proxyCpu)),
    runs: samples.length,
    report,
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Rotates the order of the tools from run to run, so none always goes first after a setup step. */
function toolOrder(run: number): Tool[] {
  return TOOLS.map((_, i) => TOOLS[(i + run) % TOOLS.length]!);
}

class Bench {
  node: (Service & { url: string }) | undefined;
  dsyncProxy!: TcpProxy;
  rsyncProxy!: TcpProxy;
  rsyncd!: Service;
  readonly nodeDir: string;
  readonly moduleDir: string;
  readonly workDir: string;
  readonly env = cleanEnv();

  constructor(readonly options: Options, readonly dsync: DsyncCommand) {
    // --no-delta: the same pushes with changed chunks sent whole, to compare in the same conditions.
    if (options.noDelta) this.env.DSYNC_DELTA = "0";
    this.nodeDir = join(options.dataDir, "run", "node");
    this.moduleDir = join(options.dataDir, "run", "rsync-module");
    this.workDir = join(options.dataDir, "run", "work");
  }

  async start(): Promise<void> {
    rmSync(join(this.options.dataDir, "run"), { recursive: true, force: true });
    mkdirSync(this.workDir, { recursive: true });
    this.rsyncd = await startRsyncDaemon(join(this.options.dataDir, "run", "rsyncd"), this.moduleDir);
    this.rsyncProxy = await startTcpProxy({ targetPort: this.rsyncd.port, link: this.options.link });
    this.dsyncProxy = await startTcpProxy({ targetPort: 1, link: this.options.link });
    await this.freshNode();
  }

  /** Stops the node (if any) and starts one over an empty data folder, behind the same proxy. */
  async freshNode(): Promise<void> {
    await this.node?.stop();
    this.node = undefined;
    this.node = await startDsyncNode(this.dsync, this.nodeDir, true);
    this.dsyncProxy.setTarget(this.node.port);
  }

  get remote(): string {
    return `http://127.0.0.1:${this.dsyncProxy.port}`;
  }

  async stop(): Promise<void> {
    const steps: (() => unknown)[] = [() => this.node?.stop(), () => this.rsyncd?.stop(), () => this.dsyncProxy?.stop(), () => this.rsyncProxy?.stop()];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        log(`cleanup: ${(error as Error).message}`);
      }
    }
    // The node's data, the rsync destinations and the working copies are only useful while running.
    rmSync(join(this.options.dataDir, "run"), { recursive: true, force: true });
  }

  /** Flushes dirty pages (untimed), so one run does not pay for the last one's writeback. */
  async settle(): Promise<void> {
    await runTimed(["sync"]);
  }

  async measure(proxy: TcpProxy, server: Service, argv: string[], withReport: boolean): Promise<Sample> {
    await this.settle();
    proxy.reset();
    const serverCpuBefore = server.cpuSeconds();
    const ownCpuBefore = process.cpuUsage();
    const timed = await runTimed(argv, { env: this.env });
    // The last bytes the client wrote may still be on their way through the proxy, and the
    // daemon reaps its per-connection children just after the client exits.
    await Bun.sleep(50);
    const { up, down } = proxy.counters();
    const sample: Sample = { seconds: timed.seconds, up, down, clientCpu: timed.cpuSeconds, serverCpu: server.cpuSeconds() - serverCpuBefore, proxyCpu: cpuSecondsSince(ownCpuBefore) };
    if (withReport) {
      sample.report = parseReport(timed.stdout, timed.seconds);
      sample.batchesText = batchesText(JSON.parse(timed.stdout) as Record<string, unknown>);
    }
    return sample;
  }

  push(dir: string, folder: string, compress = this.options.compress): Promise<Sample> {
    return this.measure(this.dsyncProxy, this.node!, [...this.dsync.argv, "push", dir, "--remote", this.remote, "--folder", folder, "--json", ...(compress ? ["--compress", compress] : [])], true);
  }

  rsync(variant: "rsync -a" | "rsync -az", source: string, dest: string, extra: string[] = []): Promise<Sample> {
    const flags = variant === "rsync -a" ? "-a" : "-az";
    return this.measure(this.rsyncProxy, this.rsyncd, ["rsync", flags, ...extra, "--exclude=/.dsync/", `${source}/`, `rsync://127.0.0.1:${this.rsyncProxy.port}/bench/${dest}/`], false);
  }

  runTool(tool: Tool, source: string, folder: string, dest: string, extra: string[] = [], compress?: string): Promise<Sample> {
    return tool === "dsync" ? this.push(source, folder, compress ?? this.options.compress) : this.rsync(tool, source, dest, extra);
  }

  removeDest(dest: string): void {
    rmSync(join(this.moduleDir, dest), { recursive: true, force: true });
  }

  /** Checks that the rsync destination and the node's head both equal `dir` (outside the timed part). */
  async verify(dir: string, folder: string, dests: string[]): Promise<void> {
    for (const dest of dests) await runTimed(["diff", "-r", "-q", "--exclude=.dsync", dir, join(this.moduleDir, dest)]);
    await runTimed([...this.dsync.argv, "diff", dir, `${this.node!.url}/${folder}`], { env: this.env });
  }
}

/** The report's batches by level, framed, and plain by why, in one line (empty from builds without them). */
function batchesText(raw: Record<string, unknown>): string | undefined {
  const byLevel = raw.batches_by_level as Record<string, number> | undefined;
  const because = raw.batches_plain_because as Record<string, number> | undefined;
  if (!byLevel || !because) return undefined;
  const levels = Object.entries(byLevel).map(([level, n]) => `L${level} ${n}`).join(", ") || "none compressed";
  const plain = Object.entries(because).map(([why, n]) => `${why} ${n}`).join(", ") || "none";
  return `${levels}${typeof raw.batches_framed === "number" ? `, framed ${raw.batches_framed}` : ""}; plain: ${plain}`;
}

function cpuSecondsSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

function emptySamples(): Record<Tool, Sample[]> {
  return { dsync: [], "rsync -a": [], "rsync -az": [] };
}

// ---------------------------------------------------------------------------------------------
// The cases

const FIRST_PUSH_NOTE = "On a folder's first push dsync uploads chunks while it scans, so its scan phase includes the upload.";

async function caseInitial(bench: Bench): Promise<CaseResult> {
  const { options } = bench;
  const tree = ensureMixedTree(options.dataDir, options.sizeMiB, log);
  const stateDir = join(tree.root, ".dsync");
  rmSync(stateDir, { recursive: true, force: true });
  warmPageCache(listFiles(tree.root), new Uint8Array(4 * 1024 * 1024));
  const samples = emptySamples();
  try {
    for (let run = 0; run < options.runs; run++) {
      for (const tool of toolOrder(run)) {
        const dest = `c1-${tool === "rsync -a" ? "a" : "az"}-${run}`;
        if (tool === "dsync") {
          await bench.freshNode();
          rmSync(stateDir, { recursive: true, force: true });
        }
        const sample = await bench.runTool(tool, tree.root, "mixed", dest);
        samples[tool].push(sample);
        log(`  case 1 run ${run + 1} ${tool}: ${sample.seconds.toFixed(2)} s, ${formatBytes(sample.up + sample.down)}`);
        if (tool !== "dsync") {
          if (run === 0) await runTimed(["diff", "-r", "-q", "--exclude=.dsync", tree.root, join(bench.moduleDir, dest)]);
          bench.removeDest(dest);
        }
      }
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  return {
    id: "1",
    title: "Initial push of a mixed tree to an empty node / module",
    data: `${tree.files} files, ${formatBytes(tree.bytes)} (3 random files of ${formatBytes(Math.floor((options.sizeMiB * 1024 * 1024 * 3) / 4 / 3))} + small files of 1-64 KiB, half text)`,
    samples,
    target: {
      text: "dsync time <= rsync -a time",
      check: (s) => ratioCheck(s.dsync.seconds, s["rsync -a"].seconds, 1, "time vs rsync -a"),
    },
    notes: [FIRST_PUSH_NOTE],
  };
}

async function caseEdit(bench: Bench): Promise<CaseResult> {
  const { options } = bench;
  const fileMiB = Math.max(4, Math.round(options.sizeMiB / 4));
  const base = ensureEditBase(options.dataDir, fileMiB, log);
  const dir = join(bench.workDir, "edit");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "data.bin");
  await runTimed(["cp", base.path, file]);
  await bench.freshNode();
  const setup = emptySamples();
  for (const tool of TOOLS) setup[tool].push(await bench.runTool(tool, dir, "edit", tool === "rsync -a" ? "c2-a" : "c2-az"));
  const samples = emptySamples();
  let offset = 0;
  for (let run = 0; run < options.runs; run++) {
    offset = editMiddle(file, `push/edit/run-${run}`);
    for (const tool of toolOrder(run)) {
      const sample = await bench.runTool(tool, dir, "edit", tool === "rsync -a" ? "c2-a" : "c2-az");
      samples[tool].push(sample);
      log(`  case 2 run ${run + 1} ${tool}: ${sample.seconds.toFixed(3)} s, ${formatBytes(sample.up + sample.down)}`);
    }
  }
  await bench.verify(dir, "edit", ["c2-a", "c2-az"]);
  bench.removeDest("c2-a");
  bench.removeDest("c2-az");
  rmSync(dir, { recursive: true, force: true });
  return {
    id: "2",
    title: "Push after a 1 KiB edit in the middle of a large file",
    data: `one random file of ${formatBytes(base.bytes)}, 1 KiB overwritten at offset ${formatBytes(offset)} before each run (the node / destination hold the previous state)`,
    samples,
    target: {
      text: "dsync bytes (both directions) <= 0.6x rsync -a, time <= 0.5x rsync -a",
      check: (s) => {
        const bytes = ratioCheck(s.dsync.total, s["rsync -a"].total, 0.6, "bytes vs rsync -a");
        const time = ratioCheck(s.dsync.seconds, s["rsync -a"].seconds, 0.5, "time vs rsync -a");
        return { met: bytes.met && time.met, detail: `${bytes.detail}; ${time.detail}` };
      },
    },
    notes: [`initial sync of the file (setup, one run): dsync ${setup.dsync[0]!.seconds.toFixed(2)} s, rsync -a ${setup["rsync -a"][0]!.seconds.toFixed(2)} s, rsync -az ${setup["rsync -az"][0]!.seconds.toFixed(2)} s`],
  };
}

async function caseNoChange(bench: Bench): Promise<CaseResult> {
  const { options } = bench;
  const tree = ensureSmallFilesTree(options.dataDir, 10_000, log);
  const stateDir = join(tree.root, ".dsync");
  rmSync(stateDir, { recursive: true, force: true });
  warmPageCache(listFiles(tree.root), new Uint8Array(64 * 1024));
  const samples = emptySamples();
  const setup = emptySamples();
  try {
    await bench.freshNode();
    for (const tool of TOOLS) setup[tool].push(await bench.runTool(tool, tree.root, "small", tool === "rsync -a" ? "c3-a" : "c3-az"));
    for (let run = 0; run < options.runs; run++) {
      for (const tool of toolOrder(run)) {
        const sample = await bench.runTool(tool, tree.root, "small", tool === "rsync -a" ? "c3-a" : "c3-az");
        samples[tool].push(sample);
        log(`  case 3 run ${run + 1} ${tool}: ${sample.seconds.toFixed(3)} s, ${formatBytes(sample.up + sample.down)}`);
      }
    }
    await bench.verify(tree.root, "small", ["c3-a", "c3-az"]);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
    bench.removeDest("c3-a");
    bench.removeDest("c3-az");
  }
  const first = (tool: Tool) => setup[tool][0]!;
  return {
    id: "3",
    title: "No-change push of a 10 000-file tree",
    data: `${tree.files} files, ${formatBytes(tree.bytes)} (1-8 KiB each, half text) in 100 directories, already synced`,
    samples,
    target: {
      text: "dsync time <= 0.5x rsync -a",
      check: (s) => ratioCheck(s.dsync.seconds, s["rsync -a"].seconds, 0.5, "time vs rsync -a"),
    },
    notes: [
      `initial sync (setup, one run): dsync ${first("dsync").seconds.toFixed(2)} s / ${formatBytes(first("dsync").up + first("dsync").down)}, ` +
        `rsync -a ${first("rsync -a").seconds.toFixed(2)} s / ${formatBytes(first("rsync -a").up + first("rsync -a").down)}, ` +
        `rsync -az ${first("rsync -az").seconds.toFixed(2)} s / ${formatBytes(first("rsync -az").up + first("rsync -az").down)}`,
    ],
  };
}

async function caseRelease(bench: Bench): Promise<CaseResult[]> {
  const { options } = bench;
  const set = await ensureReleaseSet(options.dataDir, options.releases);
  const dir = join(bench.workDir, "release");
  const initial = emptySamples();
  const update = emptySamples();
  for (let run = 0; run < options.runs; run++) {
    await bench.freshNode();
    rmSync(dir, { recursive: true, force: true });
    replaceContents(dir, set.fromDir);
    const dest = (tool: Tool) => `c4-${tool === "rsync -a" ? "a" : "az"}-${run}`;
    for (const tool of toolOrder(run)) initial[tool].push(await bench.runTool(tool, dir, "release", dest(tool), ["--delete"], RELEASE_COMPRESS(options)));
    replaceContents(dir, set.toDir);
    for (const tool of toolOrder(run)) {
      const sample = await bench.runTool(tool, dir, "release", dest(tool), ["--delete"], RELEASE_COMPRESS(options));
      update[tool].push(sample);
      log(`  case 4 run ${run + 1} ${tool}: ${sample.seconds.toFixed(3)} s, ${formatBytes(sample.up + sample.down)}`);
    }
    if (run === 0) await bench.verify(dir, "release", [dest("rsync -a"), dest("rsync -az")]);
    bench.removeDest(dest("rsync -a"));
    bench.removeDest(dest("rsync -az"));
  }
  rmSync(dir, { recursive: true, force: true });
  const fromNames = options.releases.map((r) => `${r.name} ${r.from}`).join(" + ");
  const toNames = options.releases.map((r) => `${r.name} ${r.to}`).join(" + ");
  return [
    {
      id: "4a",
      title: `Release ${fromNames} pushed to an empty node / module (the setup of case 4)`,
      data: set.describeFrom,
      samples: initial,
      notes: [FIRST_PUSH_NOTE, `dsync pushed with --compress ${RELEASE_COMPRESS(options)}`],
    },
    {
      id: "4",
      title: `Release update ${fromNames} -> ${toNames} (directory replaced, --delete for rsync)`,
      data: `${set.describeFrom} -> ${set.describeTo}`,
      samples: update,
      target: {
        text: "dsync bytes <= 0.8x rsync -az bytes and time <= rsync -az time",
        check: (s) => {
          const bytes = ratioCheck(s.dsync.total, s["rsync -az"].total, 0.8, "bytes vs rsync -az");
          const time = ratioCheck(s.dsync.seconds, s["rsync -az"].seconds, 1, "time vs rsync -az");
          return { met: bytes.met && time.met, detail: `${bytes.detail}; ${time.detail}` };
        },
      },
      notes: [
        `dsync pushed with --compress ${RELEASE_COMPRESS(options)} (compression forced, as rsync -az forces it); changed chunks go as deltas against the chunks they replaced where that pays (chunks_as_delta, delta_bytes and signature_bytes in the report)`,
      ],
    },
  ];
}

/**
 * Case 4's two folders: each release's package extracted (ensureRelease, cached) into a
 * subdirectory named after the package, for the old versions and for the new ones.
 */
async function ensureReleaseSet(dataDir: string, releases: Options["releases"]) {
  const key = releases.map((r) => `${r.name.replace(/^@/, "").replace(/\//g, "-")}-${r.from}-${r.to}`).join("+");
  const root = join(dataDir, "release-sets", key);
  const fromDir = join(root, "from");
  const toDir = join(root, "to");
  const parts: { from: string[]; to: string[] } = { from: [], to: [] };
  const done = join(root, "done");
  const build = !existsSync(done);
  if (build) rmSync(root, { recursive: true, force: true });
  for (const release of releases) {
    const pair = await ensureReleasePair(dataDir, release.name, release.from, release.to, log);
    const as = release.name.replace(/^@/, "").replace(/\//g, "-");
    if (build) {
      cpSync(pair.from.dir, join(fromDir, as), { recursive: true });
      cpSync(pair.to.dir, join(toDir, as), { recursive: true });
    }
    const describe = (r: typeof pair.from) => `${release.name} ${r.version}: ${r.files} files, ${formatBytes(r.bytes)} (tarball ${formatBytes(r.tarballBytes)})`;
    parts.from.push(describe(pair.from));
    parts.to.push(describe(pair.to));
  }
  if (build) writeFileSync(done, `${key}\n`);
  return { fromDir, toDir, describeFrom: parts.from.join("; "), describeTo: parts.to.join("; ") };
}

/** Case 5's data: the Bun binary's npm package and a JavaScript package, side by side. */
const COMPRESSIBLE_PACKAGES = [
  { name: "@oven/bun-linux-x64", version: "1.4.5", as: "bun-linux-x64" },
  { name: "typescript", version: "5.6.3", as: "typescript" },
];

async function caseCompressible(bench: Bench): Promise<CaseResult> {
  const { options } = bench;
  const root = join(options.dataDir, "compressible");
  const done = join(options.dataDir, "compressible.done");
  if (!existsSync(done)) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    for (const pkg of COMPRESSIBLE_PACKAGES) {
      const release = await ensureRelease(options.dataDir, pkg.name, pkg.version, log);
      cpSync(release.dir, join(root, pkg.as), { recursive: true });
    }
    writeFileSync(done, `${COMPRESSIBLE_PACKAGES.map((p) => `${p.name}@${p.version}`).join(" ")}\n`);
  }
  const stateDir = join(root, ".dsync");
  rmSync(stateDir, { recursive: true, force: true });
  const files = listFiles(root);
  warmPageCache(files, new Uint8Array(4 * 1024 * 1024));
  const bytes = files.reduce((sum, path) => sum + statSync(path).size, 0);
  const samples = emptySamples();
  try {
    for (let run = 0; run < options.runs; run++) {
      for (const tool of toolOrder(run)) {
        const dest = `c5-${tool === "rsync -a" ? "a" : "az"}-${run}`;
        if (tool === "dsync") {
          await bench.freshNode();
          rmSync(stateDir, { recursive: true, force: true });
        }
        const sample = await bench.runTool(tool, root, "compressible", dest);
        samples[tool].push(sample);
        const batches = sample.report ? `, batches compressed ${sample.report.batches_compressed} of ${sample.report.batches_compressed + sample.report.batches_plain}${sample.batchesText ? ` (${sample.batchesText})` : ""}` : "";
        log(`  case 5 run ${run + 1} ${tool}: ${sample.seconds.toFixed(2)} s, ${formatBytes(sample.up + sample.down)}${batches}`);
        if (tool === "dsync" && run === 0) await runTimed([...bench.dsync.argv, "diff", root, `${bench.node!.url}/compressible`], { env: bench.env });
        if (tool !== "dsync") {
          if (run === 0) await runTimed(["diff", "-r", "-q", "--exclude=.dsync", root, join(bench.moduleDir, dest)]);
          bench.removeDest(dest);
        }
      }
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  const slow = options.link !== undefined;
  const baseline: Tool = slow ? "rsync -az" : "rsync -a";
  return {
    id: "5",
    title: "First push of compressible data (a native binary and a JavaScript package) to an empty node / module",
    data: `${files.length} files, ${formatBytes(bytes)}: ${COMPRESSIBLE_PACKAGES.map((p) => `${p.name}@${p.version}`).join(" and ")}`,
    samples,
    target: {
      text: `dsync time <= ${baseline} time${slow ? ` (on the ${options.link!.mbit} Mbit/s link)` : " (loopback)"}`,
      check: (s) => ratioCheck(s.dsync.seconds, s[baseline].seconds, 1, `time vs ${baseline}`),
    },
    notes: [FIRST_PUSH_NOTE, `dsync pushed with --compress ${options.compress ?? "auto (its default)"}; rsync -az negotiates zstd with the daemon (rsync 3.2 and later)`],
  };
}

function ratioCheck(value: number, reference: number, limit: number, what: string): { met: boolean; detail: string } {
  const ratio = value / reference;
  return { met: ratio <= limit, detail: `${what} ${ratio.toFixed(2)}x (limit ${limit}x)` };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === ".dsync") continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output

function seconds(value: number): string {
  return value >= 10 ? `${value.toFixed(1)} s` : value >= 1 ? `${value.toFixed(2)} s` : `${(value * 1000).toFixed(0)} ms`;
}

function ratio(value: number, reference: number): string {
  if (reference === 0) return "-";
  return `${(value / reference).toFixed(2)}x`;
}

const HEADER = ["tool", "time", "up", "down", "total", "CPU client+server (+proxy)", "time vs -a", "bytes vs -a", "time vs -az", "bytes vs -az"];

function caseRows(result: CaseResult): { header: string[]; rows: string[][]; summaries: Record<Tool, Summary> } {
  const summaries = { dsync: summarize(result.samples.dsync), "rsync -a": summarize(result.samples["rsync -a"]), "rsync -az": summarize(result.samples["rsync -az"]) };
  const a = summaries["rsync -a"];
  const az = summaries["rsync -az"];
  const rows = TOOLS.map((tool) => {
    const s = summaries[tool];
    return [
      tool,
      seconds(s.seconds),
      formatBytes(s.up),
      formatBytes(s.down),
      formatBytes(s.total),
      `${s.clientCpu.toFixed(2)} + ${s.serverCpu.toFixed(2)} (+${s.proxyCpu.toFixed(2)}) s`,
      tool === "dsync" ? ratio(s.seconds, a.seconds) : "",
      tool === "dsync" ? ratio(s.total, a.total) : "",
      tool === "dsync" ? ratio(s.seconds, az.seconds) : "",
      tool === "dsync" ? ratio(s.total, az.total) : "",
    ];
  });
  return { header: HEADER, rows, summaries };
}

function reportLines(summary: Summary): string[] {
  const r = summary.report;
  if (!r) return [];
  const ms = (v: number) => (Number.isNaN(v) ? "?" : `${Math.round(v)} ms`);
  return [
    `dsync report (medians): chunks_sent ${r.chunks_sent} of ${r.chunks}, bytes_sent ${formatBytes(r.bytes_sent)}, objects_sent ${r.objects_sent}, ` +
      `wire_bytes_sent ${formatBytes(r.wire_bytes_sent)}, wire_bytes_received ${formatBytes(r.wire_bytes_received)}, requests ${r.requests}, ` +
      `files_read ${r.files_read}, elapsed_ms ${Math.round(r.elapsed_ms)}` +
      (Number.isNaN(r.batches_compressed) ? "" : `, batches compressed ${r.batches_compressed} of ${r.batches_compressed + r.batches_plain}`) +
      (Number.isNaN(r.chunks_as_delta) || r.chunks_as_delta + r.signature_bytes === 0 ? "" : `, chunks as delta ${r.chunks_as_delta} (${formatBytes(r.delta_bytes)}), signatures ${formatBytes(r.signature_bytes)}`),
    `dsync time split (medians): start-up and exit ${ms(r.outside_ms)} | scan ${ms(r.phase_scan_ms)} | plan (missing checks) ${ms(r.phase_plan_ms)} | ` +
      `upload ${ms(r.phase_upload_ms)} | commit ${ms(r.phase_commit_ms)}`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  mkdirSync(options.dataDir, { recursive: true });
  const dsync = options.dsync === "build" ? await buildDsyncAtHead(options.dataDir, log) : resolveDsync(options.dsync);
  const machine = machineInfo();
  const commit = await gitCommit(REPO_ROOT);
  const dirty = (await runTimed(["git", "status", "--porcelain", "--", "src", "cli"])).stdout.trim() !== "";
  const rsyncVersion = (await runTimed(["rsync", "--version"])).stdout.split("\n")[0]!.trim().replace(/\s+/g, " ");
  const startedAt = new Date();
  log(`dsync: ${dsync.label}${dsync.staleNote ? ` (warning: ${dsync.staleNote})` : ""}`);
  log(`rsync: ${rsyncVersion}`);
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memTotal}, load ${machine.loadAverage}`);

  // Start-up cost of each tool, for reading the small cases.
  const startupTimes = async (argv: string[]) => {
    const out: number[] = [];
    for (let i = 0; i < 5; i++) out.push((await runTimed(argv)).seconds);
    return median(out);
  };
  const startup = { dsync: await startupTimes([...dsync.argv, "--version"]), rsync: await startupTimes(["rsync", "--version"]) };
  // The throttle's accuracy, by a plain transfer through a proxy on the same link.
  const linkAchieved = options.link ? await measureLinkMbit(options.link, 8 * 1024 * 1024) : undefined;
  const linkLine = options.link
    ? `link: ${options.link.mbit} Mbit/s each way${options.link.latencyMs ? `, ${options.link.latencyMs} ms one way` : ""} for both proxies; a plain 8 MiB transfer through it achieved ${linkAchieved!.up.toFixed(1)} up, ${linkAchieved!.down.toFixed(1)} down`
    : "link: loopback, unthrottled";
  log(linkLine);

  const bench = new Bench(options, dsync);
  const results: CaseResult[] = [];
  const onSignal = () => {
    log("interrupted: stopping the node, the daemon and the proxies");
    void bench.stop().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await bench.start();
    if (options.cases.has(1)) {
      log(`case 1: initial push (${options.sizeMiB} MiB)`);
      results.push(await caseInitial(bench));
    }
    if (options.cases.has(2)) {
      log("case 2: 1 KiB edit in a large file");
      results.push(await caseEdit(bench));
    }
    if (options.cases.has(3)) {
      log("case 3: no-change push of 10 000 files");
      results.push(await caseNoChange(bench));
    }
    if (options.cases.has(4)) {
      log(`case 4: release update ${options.releases.map((r) => `${r.name} ${r.from} -> ${r.to}`).join(", ")}`);
      results.push(...(await caseRelease(bench)));
    }
    if (options.cases.has(5)) {
      log("case 5: first push of compressible data (a native binary and a JavaScript package)");
      results.push(await caseCompressible(bench));
    }
  } finally {
    await bench.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  // Text tables on stdout; Markdown and JSON beside the data.
  const text: string[] = [];
  const markdown: string[] = [];
  const heading = [
    `dsync push vs rsync (daemon over loopback, both behind a counting TCP proxy)`,
    `date ${startedAt.toISOString()}, commit ${commit}${dirty ? " (the working tree has uncommitted changes in src/ or cli/)" : ""}`,
    `dsync: ${dsync.label}${dsync.staleNote ? ` (${dsync.staleNote})` : ""}; ${rsyncVersion}`,
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memTotal}, kernel ${machine.kernel}, load at start ${machine.loadAverage}`,
    linkLine,
    `runs: ${options.runs} (medians), size: ${options.sizeMiB} MiB${options.compress ? `, dsync push --compress ${options.compress}` : ""}; process start-up (--version): dsync ${seconds(startup.dsync)}, rsync ${seconds(startup.rsync)}; load at end ${loadavg().map((v) => v.toFixed(2)).join(" ")}`,
  ];
  text.push(...heading, "");
  markdown.push(...heading.map((line) => `${line}  `), "");
  const targetRows: string[][] = [];
  for (const result of results) {
    const { header, rows, summaries } = caseRows(result);
    text.push(`${result.id}. ${result.title}`, `   ${result.data}`, formatTable(header, rows), ...reportLines(summaries.dsync));
    markdown.push(`#### ${result.id}. ${result.title}`, "", result.data, "", formatMarkdownTable(header, rows), "", ...reportLines(summaries.dsync).map((line) => `${line}  `));
    for (const note of result.notes) {
      text.push(note);
      markdown.push("", note);
    }
    if (result.target) {
      const check = result.target.check(summaries);
      const line = `target: ${result.target.text}: ${check.met ? "MET" : "MISSED"} (${check.detail})`;
      text.push(line);
      markdown.push("", `Target: ${result.target.text}: **${check.met ? "met" : "missed"}** (${check.detail})`);
      targetRows.push([result.id, result.target.text, check.met ? "met" : "missed", check.detail]);
    }
    text.push("");
    markdown.push("");
  }
  if (targetRows.length > 0) {
    text.push(formatTable(["case", "target", "result", "measured"], targetRows), "");
    markdown.push(formatMarkdownTable(["case", "target", "result", "measured"], targetRows), "");
  }
  process.stdout.write(text.join("\n") + "\n");
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const resultsDir = join(options.dataDir, "results");
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `push-${stamp}.md`), markdown.join("\n") + "\n");
  writeFileSync(
    join(resultsDir, `push-${stamp}.json`),
    JSON.stringify({ startedAt, commit, dirty, dsync: dsync.label, rsync: rsyncVersion, machine, options: { ...options, cases: [...options.cases] }, startup, results }, null, 2),
  );
  log(`results: ${join(resultsDir, `push-${stamp}.md`)}`);
  if (!existsSync(resultsDir)) log("results directory vanished");
}

await main();
