// Replica diff benchmark: `dsync diff URL/A URL/B` between two folders on one node holding
// replicas of a 100 000-file tree that differ in one file, beside `rsync -rn --delete --checksum`
// between the two source directories (a dry run that reads and hashes every file on both sides)
// in the same run.
//
//   bun scripts/bench/replica-diff.ts [--data DIR] [--files N] [--dirs N] [--changes N]
//                                     [--runs N] [--dsync source|binary|auto] [--json FILE]
//
// What it prints: the requests the diff made, the depth it reached, the bound 2·depth + 2 and
// whether it is met, for the two heads (URL/FOLDER: the folder record names the head's root)
// and for the two versions pinned (URL/FOLDER@VERSION), one lookup and one download per level
// and side either way; the diff's wall time from spawn to exit (median of --runs), rsync's, and
// their ratio.
//
// The data set is generated once under --data and reused: N files of 100–500 bytes of seeded
// word text in --dirs directories (100 × 1 000 by default), every file and directory given the
// same times; the second replica is a copy (`cp -a`) with one file changed, or with --changes N,
// N files spread over the directories (where sending a level in one request matters most).
// Each run starts a fresh node and pushes both replicas into it (the push times are printed,
// not measured against anything). replicaDiffBench() is exported for other benchmarks.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, appendFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { commandFlags, formatBytes, formatMarkdownTable, formatTable, gitCommit, loadAverageText, machineInfo, median, Xorshift128Plus } from "./lib.ts";
import { cleanEnv, REPO_ROOT, resolveDsync, runTimed, startDsyncNode, writeTextFile, type DsyncCommand } from "./push-lib.ts";

export interface ReplicaDiffOptions {
  /** Where the replicas and the node's data go. */
  dataDir: string;
  files: number;
  dirs: number;
  /** Files changed in replica b; default 1 (the replicas differ in one file). */
  changes?: number;
  runs: number;
  dsync: DsyncCommand;
}

export interface DiffFigures {
  spec: [string, string];
  requests: number;
  requestsA: number;
  requestsB: number;
  depth: number;
  bound: number;
  met: boolean;
  objectsLoaded: number;
  /** What each side lacks: objects (nodes + chunks) and bytes. */
  aLacks: { objects: number; bytes: number };
  bLacks: { objects: number; bytes: number };
  paths: string[];
  /** Wall time of `dsync diff`, spawn to exit, every run. */
  seconds: number[];
  medianSeconds: number;
}

export interface ReplicaDiffResult {
  files: number;
  bytes: number;
  dirs: number;
  /** The first (with one change, the only) changed path. */
  changedPath: string;
  changedPaths: string[];
  pushSeconds: { a: number; b: number };
  heads: DiffFigures;
  pinned: DiffFigures;
  rsync: { command: string; paths: string[]; seconds: number[]; medianSeconds: number };
  /** dsync diff time / rsync time, medians. */
  ratioHeads: number;
  ratioPinned: number;
}

const DATA_FORMAT = 3;

function fileName(index: number, dirs: number): string {
  return `d${String(index % dirs).padStart(3, "0")}/f${String(index).padStart(6, "0")}.txt`;
}

/** Which files replica b changes: the first in the middle directory, the others spread over the directories. */
export function changedIndexes(files: number, dirs: number, changes: number): number[] {
  // The first is a file of the middle directory (d050 of 100: its 1 000 entries are split into pages).
  const first = Math.min(files - 1, Math.floor(files * 0.42) - (Math.floor(files * 0.42) % dirs) + Math.floor(dirs / 2));
  let step = Math.max(1, Math.floor(files / changes));
  if (dirs > 1 && step % dirs === 0) step++;
  const out = new Set<number>();
  for (let k = 0; out.size < Math.min(changes, files); k++) out.add((first + k * step) % files);
  return [...out];
}

/**
 * The two replicas under dataDir: a (generated once), and b-N = a copied with `cp -a` (same
 * times) and one line appended to each of N files (generated once per N).
 */
export function ensureReplicaPair(
  dataDir: string,
  files: number,
  dirs: number,
  changes: number,
  log: (line: string) => void,
): { a: string; b: string; bytes: number; changedPaths: string[] } {
  const root = join(dataDir, `replicas-${files}-${dirs}`);
  const manifestPath = join(root, "manifest.json");
  const a = join(root, "a");
  const b = join(root, `b-${changes}`);
  const bDone = `${b}.done`;
  const changedPaths = changedIndexes(files, dirs, changes).map((i) => fileName(i, dirs));
  let bytes: number | undefined;
  if (existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, "utf8"));
      if (m.format === DATA_FORMAT && m.files === files && m.dirs === dirs) bytes = m.bytes;
    } catch {
      // Regenerate.
    }
  }
  if (bytes === undefined) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(a, { recursive: true });
    const started = performance.now();
    log(`data: writing ${files} files in ${dirs} directories under ${a}`);
    const buffer = new Uint8Array(4096);
    const rng = new Xorshift128Plus("replica-diff/sizes");
    const scratch = new Uint32Array(2);
    bytes = 0;
    for (let d = 0; d < dirs; d++) mkdirSync(join(a, `d${String(d).padStart(3, "0")}`));
    for (let n = 0; n < files; n++) {
      rng.fill(scratch, 2);
      const size = 100 + (scratch[0]! % 401);
      writeTextFile(join(a, fileName(n, dirs)), size, `replica-diff/${n}`, buffer);
      bytes += size;
    }
    // Replicas synced from one another carry the same times; give every entry one fixed time.
    const when = new Date("2026-01-01T00:00:00Z");
    for (const dir of readdirSync(a)) {
      for (const name of readdirSync(join(a, dir))) utimesSync(join(a, dir, name), when, when);
      utimesSync(join(a, dir), when, when);
    }
    writeFileSync(manifestPath, JSON.stringify({ format: DATA_FORMAT, files, dirs, bytes }));
    log(`data: ${files} files, ${formatBytes(bytes)}, written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } else log(`data: reusing ${a}`);
  if (!existsSync(bDone)) {
    rmSync(b, { recursive: true, force: true });
    const copy = Bun.spawnSync(["cp", "-a", a, b]);
    if (copy.exitCode !== 0) throw new Error(`cp -a failed: ${copy.stderr.toString()}`);
    // A copy of a pushed directory carries its .dsync state; b is a replica, not a synced copy of a.
    rmSync(join(b, ".dsync"), { recursive: true, force: true });
    for (const path of changedPaths) appendFileSync(join(b, path), "one line added on replica b only\n");
    writeFileSync(bDone, JSON.stringify(changedPaths));
    log(`data: ${b} = a with ${changes} file(s) changed, e.g. ${changedPaths[0]}`);
  } else log(`data: reusing ${b}`);
  return { a, b, bytes, changedPaths };
}

async function timedDiff(dsync: DsyncCommand, specA: string, specB: string, runs: number, log: (line: string) => void): Promise<DiffFigures> {
  const seconds: number[] = [];
  let report: any;
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const proc = Bun.spawn([...dsync.argv, "diff", specA, specB, "--json"], { cwd: REPO_ROOT, env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    seconds.push((performance.now() - started) / 1000);
    if (code !== 1) throw new Error(`dsync diff exited with ${code} (expected 1, differ): ${stderr.trim()}`);
    report = JSON.parse(stdout);
    log(`  dsync diff run ${run + 1}: ${seconds.at(-1)!.toFixed(3)} s, ${report.requests} requests, depth ${report.depth}`);
  }
  const bound = 2 * report.depth + 2;
  return {
    spec: [specA, specB],
    requests: report.requests,
    requestsA: report.a.requests,
    requestsB: report.b.requests,
    depth: report.depth,
    bound,
    met: report.requests <= bound,
    objectsLoaded: report.objectsLoaded,
    aLacks: { objects: report.a.lacks.objects, bytes: report.a.lacks.bytes },
    bLacks: { objects: report.b.lacks.objects, bytes: report.b.lacks.bytes },
    paths: [...report.added, ...report.removed, ...report.modified, ...report.typeChanged],
    seconds,
    medianSeconds: median(seconds),
  };
}

/** Builds (or reuses) the replicas, pushes them into a fresh node, and times the diff and rsync. */
export async function replicaDiffBench(options: ReplicaDiffOptions, log: (line: string) => void = (line) => process.stderr.write(line + "\n")): Promise<ReplicaDiffResult> {
  const pair = ensureReplicaPair(options.dataDir, options.files, options.dirs, options.changes ?? 1, log);
  const node = await startDsyncNode(options.dsync, join(options.dataDir, "node"));
  try {
    log(`node: ${node.url}`);
    const push = async (dir: string, folder: string) => {
      const result = await runTimed([...options.dsync.argv, "push", dir, "--remote", node.url, "--folder", folder, "--json"], { env: cleanEnv() });
      const report = JSON.parse(result.stdout);
      log(`push ${folder}: ${report.files} files in ${result.seconds.toFixed(1)} s`);
      return { seconds: result.seconds, version: report.version as string };
    };
    const pushA = await push(pair.a, "replica-a");
    const pushB = await push(pair.b, "replica-b");

    log("dsync diff, heads:");
    const heads = await timedDiff(options.dsync, `${node.url}/replica-a`, `${node.url}/replica-b`, options.runs, log);
    log("dsync diff, pinned versions:");
    const pinned = await timedDiff(options.dsync, `${node.url}/replica-a@${pushA.version}`, `${node.url}/replica-b@${pushB.version}`, options.runs, log);

    // rsync's dry run over the two source trees: -r recursive, -n dry run, --checksum reads and
    // hashes every file on both sides; .dsync/ (dsync's own state) is left out.
    const rsyncArgv = ["rsync", "-rn", "--delete", "--checksum", "--exclude=/.dsync", "--out-format=%n", `${pair.b}/`, `${pair.a}/`];
    await runTimed(rsyncArgv); // warm-up: both trees in the page cache
    const rsyncSeconds: number[] = [];
    let rsyncPaths: string[] = [];
    for (let run = 0; run < options.runs; run++) {
      const result = await runTimed(rsyncArgv);
      rsyncSeconds.push(result.seconds);
      rsyncPaths = result.stdout.split("\n").filter((line) => line !== "" && !line.endsWith("/"));
      log(`  rsync run ${run + 1}: ${result.seconds.toFixed(3)} s`);
    }
    const rsyncMedian = median(rsyncSeconds);
    return {
      files: options.files,
      bytes: pair.bytes,
      dirs: options.dirs,
      changedPath: pair.changedPaths[0]!,
      changedPaths: pair.changedPaths,
      pushSeconds: { a: pushA.seconds, b: pushB.seconds },
      heads,
      pinned,
      rsync: { command: rsyncArgv.join(" "), paths: rsyncPaths, seconds: rsyncSeconds, medianSeconds: rsyncMedian },
      ratioHeads: heads.medianSeconds / rsyncMedian,
      ratioPinned: pinned.medianSeconds / rsyncMedian,
    };
  } finally {
    await node.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Command line

function usage(message?: string): never {
  process.stderr.write(
    (message ? `replica-diff bench: ${message}\n` : "") +
      "usage: bun scripts/bench/replica-diff.ts [--data DIR] [--files N] [--dirs N] [--changes N] [--runs N] [--dsync source|binary|auto] [--json FILE]\n",
  );
  process.exit(message ? 2 : 0);
}

async function main(argv: string[]): Promise<void> {
  let dataDir = join(REPO_ROOT, ".bench/replica-diff");
  let files = 100_000;
  let dirs = 100;
  let changes = 1;
  let runs = 3;
  let dsyncChoice: "source" | "binary" | "auto" = "source";
  let jsonPath: string | undefined;
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--data") dataDir = resolve(value());
    else if (flag === "--files") files = count(2);
    else if (flag === "--dirs") dirs = count(1);
    else if (flag === "--changes") changes = count(1);
    else if (flag === "--runs") runs = count(1);
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "source" && choice !== "binary" && choice !== "auto") usage("--dsync is source, binary or auto");
      dsyncChoice = choice;
    } else if (flag === "--json") jsonPath = resolve(value());
    else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown argument ${flag}`);
  }
  const dsync = resolveDsync(dsyncChoice);
  const log = (line: string) => process.stderr.write(line + "\n");
  const machine = machineInfo();
  const commit = await gitCommit(REPO_ROOT);
  log(`dsync: ${dsync.label}${dsync.staleNote ? ` (warning: ${dsync.staleNote})` : ""}`);
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memTotal}, load ${machine.loadAverage}`);
  const result = await replicaDiffBench({ dataDir, files, dirs, changes, runs, dsync }, log);
  const loadEnd = loadAverageText();

  const listed = (paths: string[]) => (paths.length <= 3 ? paths.join(", ") : `${paths.length} paths, ${paths.slice(0, 2).join(", ")}, …`);
  const seconds = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  const row = (label: string, f: DiffFigures, ratio: number) => [
    label,
    `${f.requests} (a ${f.requestsA}, b ${f.requestsB})`,
    String(f.depth),
    String(f.bound),
    f.met ? "met" : "missed",
    seconds(f.medianSeconds),
    `${ratio.toFixed(2)}x`,
  ];
  const header = ["", "requests", "depth", "2·depth+2", "bound", "time (median)", "vs rsync"];
  const rows = [
    row("dsync diff, heads", result.heads, result.ratioHeads),
    row("dsync diff, pinned versions", result.pinned, result.ratioPinned),
    ["rsync -rn --delete --checksum", "", "", "", "", seconds(result.rsync.medianSeconds), "1.00x"],
  ];
  const out = [
    `Replica diff: ${result.files} files (${formatBytes(result.bytes)}) in ${result.dirs} directories, differing in ${result.changedPaths.length} file(s): ${listed(result.changedPaths)}`,
    `commit ${commit}, ${new Date().toISOString()}, load ${machine.loadAverage} -> ${loadEnd}, ${runs} runs`,
    `dsync paths: ${listed(result.heads.paths)}; rsync paths: ${listed(result.rsync.paths)}`,
    `a lacks ${result.heads.aLacks.objects} objects (${formatBytes(result.heads.aLacks.bytes)}), b lacks ${result.heads.bLacks.objects} objects (${formatBytes(result.heads.bLacks.bytes)})`,
    `pushes (setup): a ${result.pushSeconds.a.toFixed(1)} s, b ${result.pushSeconds.b.toFixed(1)} s`,
    "",
    formatTable(header, rows),
    "",
    formatMarkdownTable(header, rows),
    "",
  ].join("\n");
  process.stdout.write(out);
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify({ commit, machine, loadEnd, runs, result }, null, 2));
}

if (import.meta.main) await main(process.argv.slice(2));
