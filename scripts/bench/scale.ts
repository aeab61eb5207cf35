// Push at scale: many small files and one huge file, `dsync push` beside `rsync -a` to a local
// rsync daemon in the same run, with the peak resident memory of each pushing process.
//
//   bun scripts/bench/scale.ts [--data DIR] [--runs N] [--cases small,nochange,tree,million,big]
//                              [--files N] [--big-gib 1,4,10] [--tree DIR] [--dsync auto|binary|source]
//                              [--compress auto|never|LEVEL]
//
// Cases:
//   small     first push of --files files (default 100 000) of 100-500 B in 100 directories
//   nochange  a second push of the same tree, nothing changed
//   tree      first push of a copy of a real tree of small files (--tree, default this
//             repository's node_modules)
//   million   first push of 1 000 000 files of 0-500 B in 1 000 directories (minutes; no rsync)
//   big       first push of one file of each size in --big-gib (random bytes; minutes, disk)
//
// Times are medians over --runs runs, from spawn to exit. Peak RSS is the highest VmHWM read
// from /proc/PID/status every 20 ms (lib.ts runWithPeakRss); the node's peak is its VmHWM at the
// end of the case. Before each timed run the destination is empty (first pushes) and `sync` has
// flushed dirty pages. Generated data is cached under --data.
import { cpSync, existsSync, mkdirSync, openSync, closeSync, writeSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { commandFlags, formatBytes, formatMarkdownTable, GIB, median, readVmHwmBytes, requireFreeSpace, runWithPeakRss, Xorshift128Plus } from "./lib.ts";
import { REPO_ROOT, resolveDsync, runTimed, startDsyncNode, startRsyncDaemon, type DsyncCommand } from "./push-lib.ts";

interface Options {
  dataDir: string;
  runs: number;
  cases: Set<string>;
  files: number;
  bigGiB: number[];
  tree: string;
  dsync: "auto" | "binary" | "source";
  /** Passed to every `dsync push` as --compress (default: the push's own, auto). */
  compress?: string;
}

function usage(message?: string): never {
  process.stderr.write(
    (message ? `scale bench: ${message}\n` : "") +
      "usage: bun scripts/bench/scale.ts [--data DIR] [--runs N] [--cases small,nochange,tree,million,big] [--files N] [--big-gib 1,4,10] [--tree DIR] [--dsync auto|binary|source] [--compress auto|never|LEVEL]\n",
  );
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    dataDir: join(REPO_ROOT, ".bench/scale"),
    runs: 3,
    cases: new Set(["small", "nochange", "tree"]),
    files: 100_000,
    bigGiB: [1, 4, 10],
    tree: join(REPO_ROOT, "node_modules"),
    dsync: "auto",
  };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--data") options.dataDir = resolve(value());
    else if (flag === "--runs") options.runs = count(1);
    else if (flag === "--cases") options.cases = new Set(value().split(","));
    else if (flag === "--files") options.files = count(1);
    else if (flag === "--big-gib") options.bigGiB = value().split(",").map(Number);
    else if (flag === "--tree") options.tree = resolve(value());
    else if (flag === "--compress") options.compress = value();
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "auto" && choice !== "binary" && choice !== "source") usage(`--dsync must be auto, binary or source`);
      options.dsync = choice;
    } else usage(`unknown option ${flag}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Data

/** `count` files of minBytes..maxBytes seeded random bytes, spread over `directories` directories. */
function ensureSmallFiles(root: string, count: number, directories: number, minBytes: number, maxBytes: number): string {
  // The marker sits beside the tree, not in it: it would be one more file to push.
  const done = `${root}.complete`;
  if (existsSync(done)) return root;
  rmSync(root, { recursive: true, force: true });
  const rng = new Xorshift128Plus(`scale/${count}/${minBytes}-${maxBytes}`);
  const pool = new Uint8Array(1 << 20);
  rng.fill(new Uint32Array(pool.buffer), pool.length / 4);
  const picks = new Uint32Array(2);
  for (let d = 0; d < directories; d++) mkdirSync(join(root, `d${String(d).padStart(4, "0")}`), { recursive: true });
  for (let i = 0; i < count; i++) {
    rng.fill(picks, 2);
    const length = minBytes + (picks[0]! % (maxBytes - minBytes + 1));
    const at = picks[1]! % (pool.length - length - 4);
    const bytes = pool.slice(at, at + length);
    if (length >= 4) new DataView(bytes.buffer).setUint32(0, i);
    const fd = openSync(join(root, `d${String(i % directories).padStart(4, "0")}`, `f${i}`), "w");
    writeSync(fd, bytes);
    closeSync(fd);
  }
  closeSync(openSync(done, "w"));
  return root;
}

function ensureBigFile(dir: string, sizeGiB: number): string {
  const root = join(dir, `big-${sizeGiB}g`);
  const path = join(root, "big.bin");
  if (existsSync(`${root}.complete`)) return root;
  requireFreeSpace(dir, sizeGiB * GIB * 3, `a ${sizeGiB} GiB file, the node's copy and rsync's`);
  mkdirSync(root, { recursive: true });
  const rng = new Xorshift128Plus(`scale/big/${sizeGiB}`);
  const block = new Uint32Array(4 << 18);
  const fd = openSync(path, "w");
  for (let written = 0; written < sizeGiB * GIB; written += block.byteLength) {
    rng.fill(block, block.length);
    writeSync(fd, new Uint8Array(block.buffer));
  }
  closeSync(fd);
  closeSync(openSync(`${root}.complete`, "w"));
  return root;
}

// ---------------------------------------------------------------------------------------------
// Runs

interface Measured {
  seconds: number;
  peakRssBytes: number;
  report?: { elapsed_ms: number; phases_ms: Record<string, number>; objects_sent: number; files: number; batches_compressed?: number; batches_plain?: number };
}

async function dsyncPush(dsync: DsyncCommand, dir: string, url: string, folder: string, compress?: string): Promise<Measured> {
  await runTimed(["sync"]);
  const run = await runWithPeakRss([...dsync.argv, "push", dir, "--remote", url, "--folder", folder, "--json", ...(compress ? ["--compress", compress] : [])]);
  return { seconds: run.seconds, peakRssBytes: run.polledPeakBytes, report: JSON.parse(run.stdout) };
}

async function rsyncPush(source: string, port: number, dest: string): Promise<Measured> {
  await runTimed(["sync"]);
  const run = await runWithPeakRss(["rsync", "-a", "--exclude=/.dsync/", `${source}/`, `rsync://127.0.0.1:${port}/bench/${dest}/`]);
  return { seconds: run.seconds, peakRssBytes: run.polledPeakBytes };
}

interface Row {
  name: string;
  dsync: Measured[];
  rsync: Measured[];
  files: number;
  nodePeakBytes?: number;
  /** The node's CPU (user + sys) through each timed push. */
  nodeCpuSeconds: number[];
}

function summarize(rows: Row[]): string {
  const header = ["case", "files", "dsync s", "rsync -a s", "ratio", "dsync files/s", "rsync files/s", "node CPU s", "dsync peak RSS", "rsync peak RSS", "node peak RSS", "dsync phases (ms)"];
  const body = rows.map((row) => {
    const d = median(row.dsync.map((m) => m.seconds));
    const r = row.rsync.length ? median(row.rsync.map((m) => m.seconds)) : NaN;
    const last = row.dsync[row.dsync.length - 1]?.report;
    return [
      row.name,
      String(row.files),
      d.toFixed(2),
      Number.isNaN(r) ? "-" : r.toFixed(2),
      Number.isNaN(r) ? "-" : `${(d / r).toFixed(2)}×`,
      Math.round(row.files / d).toString(),
      Number.isNaN(r) ? "-" : Math.round(row.files / r).toString(),
      median(row.nodeCpuSeconds).toFixed(2),
      formatBytes(Math.max(...row.dsync.map((m) => m.peakRssBytes))),
      row.rsync.length ? formatBytes(Math.max(...row.rsync.map((m) => m.peakRssBytes))) : "-",
      row.nodePeakBytes ? formatBytes(row.nodePeakBytes) : "-",
      last ? Object.entries(last.phases_ms).map(([k, v]) => `${k} ${v}`).join(", ") : "-",
    ];
  });
  return formatMarkdownTable(header, body);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dsync = resolveDsync(options.dsync);
  mkdirSync(options.dataDir, { recursive: true });
  const rows: Row[] = [];
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`dsync: ${dsync.label}${dsync.staleNote ? ` (${dsync.staleNote})` : ""}`);

  /** A first push of `source` by both tools, each into an empty destination, `runs` times. */
  const firstPushes = async (name: string, source: string, files: number, withRsync: boolean, noChange = false) => {
    const row: Row = { name, dsync: [], rsync: [], files, nodeCpuSeconds: [] };
    for (let run = 0; run < options.runs; run++) {
      const node = await startDsyncNode(dsync, join(options.dataDir, "node"));
      try {
        rmSync(join(source, ".dsync"), { recursive: true, force: true });
        const cpuBefore = node.cpuSeconds();
        const first = await dsyncPush(dsync, source, node.url, "bench", options.compress);
        if (noChange) {
          const cpuBeforeAgain = node.cpuSeconds();
          const again = await dsyncPush(dsync, source, node.url, "bench", options.compress);
          row.dsync.push(again);
          row.nodeCpuSeconds.push(node.cpuSeconds() - cpuBeforeAgain);
        } else {
          row.dsync.push(first);
          row.nodeCpuSeconds.push(node.cpuSeconds() - cpuBefore);
        }
        row.nodePeakBytes = Math.max(row.nodePeakBytes ?? 0, readVmHwmBytes(node.pid) ?? 0);
      } finally {
        await node.stop();
      }
      if (withRsync) {
        const moduleDir = join(options.dataDir, "rsync-module");
        rmSync(moduleDir, { recursive: true, force: true });
        const daemon = await startRsyncDaemon(join(options.dataDir, "rsyncd"), moduleDir);
        try {
          const first = await rsyncPush(source, daemon.port, "bench");
          row.rsync.push(noChange ? await rsyncPush(source, daemon.port, "bench") : first);
        } finally {
          await daemon.stop();
        }
      }
      const last = row.dsync.at(-1)!;
      log(
        `${name} run ${run + 1}: dsync ${last.seconds.toFixed(2)} s, node CPU ${row.nodeCpuSeconds.at(-1)!.toFixed(2)} s, peak RSS ${formatBytes(last.peakRssBytes)} (node ${formatBytes(row.nodePeakBytes ?? 0)}), phases ${JSON.stringify(last.report?.phases_ms)}, ${last.report?.objects_sent ?? "?"} objects sent` +
          (last.report?.batches_compressed !== undefined ? `, ${last.report.batches_compressed} of ${last.report.batches_compressed + (last.report.batches_plain ?? 0)} batches compressed` : "") +
          (withRsync ? `; rsync ${row.rsync.at(-1)!.seconds.toFixed(2)} s` : ""),
      );
    }
    rows.push(row);
  };

  if (options.cases.has("small") || options.cases.has("nochange")) {
    const small = ensureSmallFiles(join(options.dataDir, `small-${options.files}`), options.files, 100, 100, 500);
    if (options.cases.has("small")) await firstPushes(`first push, ${options.files} files of 100-500 B`, small, options.files, true);
    if (options.cases.has("nochange")) await firstPushes(`no-change push, ${options.files} files`, small, options.files, true, true);
  }
  if (options.cases.has("tree")) {
    const copy = join(options.dataDir, "real-tree");
    if (!existsSync(`${copy}.complete`)) {
      rmSync(copy, { recursive: true, force: true });
      cpSync(options.tree, copy, { recursive: true, verbatimSymlinks: true });
      closeSync(openSync(`${copy}.complete`, "w"));
    }
    const files = Number((await runTimed(["sh", "-c", `find '${copy}' -type f | wc -l`])).stdout.trim());
    await firstPushes(`first push, a copy of ${options.tree.replace(REPO_ROOT + "/", "")}`, copy, files, true);
  }
  if (options.cases.has("million")) {
    const million = ensureSmallFiles(join(options.dataDir, "million"), 1_000_000, 1000, 0, 500);
    const saved = options.runs;
    options.runs = 1;
    await firstPushes("first push, 1 000 000 files of 0-500 B", million, 1_000_000, false);
    options.runs = saved;
  }
  if (options.cases.has("big")) {
    const saved = options.runs;
    options.runs = 1;
    for (const size of options.bigGiB) {
      const root = ensureBigFile(options.dataDir, size);
      await firstPushes(`first push, one ${size} GiB file`, root, 1, false);
      rmSync(join(options.dataDir, "node"), { recursive: true, force: true });
    }
    options.runs = saved;
  }
  rmSync(join(options.dataDir, "node"), { recursive: true, force: true });
  rmSync(join(options.dataDir, "rsync-module"), { recursive: true, force: true });
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
  process.stdout.write(`\n${cpu}, ${navigator.hardwareConcurrency} cores; ${dsync.label}; ${options.runs} runs (medians; 1 for million and big)\n\n${summarize(rows)}\n`);
}

await main();
