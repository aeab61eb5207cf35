// Pull at scale: the client's peak memory and time of `dsync pull` into an empty directory, for
// a tree of many small files and for one large file, beside `rsync -a` from a local rsync daemon
// over the same data in the same run.
//
//   bun scripts/bench/pull-scale.ts [--data DIR] [--files N] [--dirs N] [--big-gib 1,4,10]
//                                   [--cases tree,big] [--dsync auto|binary|source] [--root DIR]
//
// The tree: --files files (default 1 000 000) of 0–500 bytes (seeded sizes and bytes) spread
// over --dirs directories (default 1000). The large files: one file of each size in --big-gib
// (default 1, 4 and 10 GiB), seeded random bytes. Each data set is generated once under --data
// and pushed to a fresh node before its pulls (not timed). Peak RSS is the VmHWM of the client
// process, polled every 20 ms; rsync's is its client process's (it forks a receiver, measured
// the same way but not counted; see docs/benchmarks.md). --root DIR pulls with another checkout
// of dsync (bun DIR/cli/main.ts), to compare before and after a change in the same run.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { commandFlags, formatBytes, formatTable, GIB, gitCommit, machineInfo, runWithPeakRss, writeRandomFile, Xorshift128Plus } from "./lib.ts";
import { cleanEnv, REPO_ROOT, resolveDsync, runTimed, startDsyncNode, startRsyncDaemon, type DsyncCommand } from "./push-lib.ts";

interface Options {
  dataDir: string;
  files: number;
  dirs: number;
  bigGiB: number[];
  cases: Set<string>;
  dsync: "auto" | "binary" | "source";
  root?: string;
}

function usage(message?: string): never {
  process.stderr.write(
    (message ? `pull-scale: ${message}\n` : "") +
      "usage: bun scripts/bench/pull-scale.ts [--data DIR] [--files N] [--dirs N] [--big-gib 1,4,10] [--cases tree,big] [--dsync auto|binary|source] [--root DIR]\n",
  );
  process.exit(2);
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { dataDir: "/tmp/dsync-bench", files: 1_000_000, dirs: 1000, bigGiB: [1, 4, 10], cases: new Set(["tree", "big"]), dsync: "auto" };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--data") options.dataDir = resolve(value());
    else if (flag === "--files") options.files = count(1);
    else if (flag === "--dirs") options.dirs = count(1);
    else if (flag === "--big-gib") options.bigGiB = value().split(",").map(Number).filter((n) => n > 0);
    else if (flag === "--cases") options.cases = new Set(value().split(","));
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "auto" && choice !== "binary" && choice !== "source") usage(`--dsync takes auto, binary or source`);
      options.dsync = choice;
    } else if (flag === "--root") options.root = resolve(value());
    else usage(`unknown option ${flag}`);
  }
  return options;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The small-file tree, generated once: sizes 0–500 bytes, bytes seeded, names in order. */
function ensureTree(dataDir: string, files: number, dirs: number): { root: string; bytes: number } {
  const root = join(dataDir, `pull-tree-${files}-${dirs}`);
  const manifest = join(root, ".complete");
  if (existsSync(manifest)) return { root: join(root, "tree"), bytes: Number(readManifest(manifest)) };
  rmSync(root, { recursive: true, force: true });
  log(`generating ${files} files in ${dirs} directories under ${root} ...`);
  const rng = new Xorshift128Plus("pull-scale/sizes");
  const word = new Uint32Array(2);
  const buffer = new Uint8Array(512);
  let bytes = 0;
  for (let d = 0; d < dirs; d++) mkdirSync(join(root, "tree", `d${String(d).padStart(4, "0")}`), { recursive: true });
  for (let n = 0; n < files; n++) {
    rng.fill(word);
    const size = word[0]! % 501;
    const path = join(root, "tree", `d${String(n % dirs).padStart(4, "0")}`, `f${String(n).padStart(7, "0")}`);
    new Xorshift128Plus(`pull-scale/${n}`).fill(new Uint32Array(buffer.buffer), 128);
    writeFileSync(path, buffer.subarray(0, size));
    bytes += size;
  }
  writeFileSync(manifest, String(bytes));
  return { root: join(root, "tree"), bytes };
}

function readManifest(path: string): string {
  return readFileSync(path, "utf8");
}

function ensureBigFile(dataDir: string, gib: number): { root: string; bytes: number } {
  const root = join(dataDir, `pull-big-${gib}gib`);
  const path = join(root, "tree", "big.bin");
  const bytes = gib * GIB;
  if (existsSync(join(root, ".complete")) && statSync(path).size === bytes) return { root: join(root, "tree"), bytes };
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, "tree"), { recursive: true });
  log(`generating a ${gib} GiB file ...`);
  writeRandomFile(path, bytes, `pull-scale/big/${gib}`, new Uint8Array(8 * 1024 * 1024));
  writeFileSync(join(root, ".complete"), "");
  return { root: join(root, "tree"), bytes };
}

interface Row {
  case: string;
  tool: string;
  seconds: number;
  peakRssBytes: number;
}

async function measureCase(name: string, source: { root: string; bytes: number }, options: Options, pullers: DsyncCommand[], rows: Row[]): Promise<void> {
  const scratch = join(options.dataDir, "scratch-pull");
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const node = await startDsyncNode(pullers[0]!, join(scratch, "node"));
  try {
    log(`${name}: pushing ${formatBytes(source.bytes)} to a fresh node ...`);
    const folder = "bench";
    // The push keeps its state in the source's .dsync (rsync leaves it out): a fresh node each
    // run, so a fresh state too (its stat cache still saves nothing: the node lacks every chunk).
    rmSync(join(source.root, ".dsync"), { recursive: true, force: true });
    const pushed = await runTimed([...pullers[0]!.argv, "push", source.root, "--remote", node.url, "--folder", folder, "--rebind", "--json", "--no-progress"], { env: cleanEnv() });
    log(`${name}: pushed in ${pushed.seconds.toFixed(1)} s`);
    for (const puller of pullers) {
      const into = join(scratch, `copy-${rows.length}`);
      const run = await runWithPeakRss(["env", ...Object.entries(cleanEnv()).map(([k, v]) => `${k}=${v}`), ...puller.argv, "pull", into, "--remote", node.url, "--folder", folder, "--json", "--no-progress"]);
      const report = JSON.parse(run.stdout);
      log(`${name}: ${puller.label}: ${run.seconds.toFixed(1)} s, peak RSS ${formatBytes(run.polledPeakBytes)}, ${report.files_written} files`);
      rows.push({ case: name, tool: `dsync pull (${puller.label})`, seconds: run.seconds, peakRssBytes: run.polledPeakBytes });
      rmSync(into, { recursive: true, force: true });
    }
  } finally {
    await node.stop();
  }
  // rsync -a from a daemon whose module is the source tree.
  const daemon = await startRsyncDaemon(join(scratch, "rsyncd"), source.root);
  try {
    const into = join(scratch, "rsync-copy");
    const run = await runWithPeakRss(["rsync", "-a", "--exclude=/.dsync", `rsync://127.0.0.1:${daemon.port}/bench/`, `${into}/`]);
    log(`${name}: rsync -a: ${run.seconds.toFixed(1)} s, peak RSS ${formatBytes(run.polledPeakBytes)}`);
    rows.push({ case: name, tool: "rsync -a (daemon)", seconds: run.seconds, peakRssBytes: run.polledPeakBytes });
  } finally {
    await daemon.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const pullers: DsyncCommand[] = [resolveDsync(options.dsync)];
  if (options.root) pullers.push({ argv: [process.execPath, join(options.root, "cli/main.ts")], label: `bun ${options.root}/cli/main.ts` });
  if (pullers[0]!.staleNote) log(`note: ${pullers[0]!.staleNote}`);
  const machine = machineInfo();
  log(`dsync ${await gitCommit(REPO_ROOT)}; ${JSON.stringify(machine)}`);
  const rows: Row[] = [];
  if (options.cases.has("tree")) await measureCase(`${options.files} files in ${options.dirs} dirs`, ensureTree(options.dataDir, options.files, options.dirs), options, pullers, rows);
  if (options.cases.has("big")) {
    for (const gib of options.bigGiB) {
      const source = ensureBigFile(options.dataDir, gib);
      await measureCase(`one ${gib} GiB file`, source, options, pullers, rows);
      // The big files are large: only the cached tree is kept between runs.
      rmSync(join(options.dataDir, `pull-big-${gib}gib`), { recursive: true, force: true });
    }
  }
  process.stdout.write(formatTable(["case", "tool", "time", "client peak RSS"], rows.map((r) => [r.case, r.tool, `${r.seconds.toFixed(1)} s`, formatBytes(r.peakRssBytes)])) + "\n");
}

await main();
