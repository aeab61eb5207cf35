// What a node's memory does while it receives a push and afterwards: a real `dsync serve`, a
// real `dsync push` of 200 MiB in 2 000 files, the node's RSS when the push returns, its peak
// (VmHWM) and its RSS after 30 s at rest; beside it, in the same run, Syncthing 1.19 receiving
// the same files from a second Syncthing on loopback, measured the same way (its receiving
// process). `--million` adds the scale case: a push of 1 000 000 files of 0–500 B in 1 000
// directories, the node's peak RSS through the upload and the commit (minutes; run it alone).
//
//   bun scripts/bench/node-memory.ts                  # the 200 MiB case, dsync and Syncthing
//   bun scripts/bench/node-memory.ts --million        # and the 1 000 000-file case
//   bun scripts/bench/node-memory.ts --only-million   # only the 1 000 000-file case
//   bun scripts/bench/node-memory.ts --no-syncthing --rest-s 5
//
// Figures and how to read them: docs/benchmarks.md ("Node memory").
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandFlags, MIB, readVmHwmBytes, writeRandomFile } from "./lib.ts";
import { cleanEnv, REPO_ROOT, resolveDsync, runTimed, startDsyncNode, stopProcess, type DsyncCommand } from "./push-lib.ts";
import { configureSyncthing, countFiles, generateSyncthing, startSyncthing, syncthingRest, workerPid } from "./syncthing.ts";

interface Options {
  dataDir: string;
  restSeconds: number;
  syncthing: boolean;
  million: boolean;
  /** The 200 MiB case (off with --only-million). */
  twoHundred: boolean;
  dsync: "auto" | "binary" | "source";
}

function usage(message?: string): never {
  if (message) console.error(`node-memory: ${message}`);
  console.error("usage: bun scripts/bench/node-memory.ts [--data DIR] [--rest-s N] [--no-syncthing] [--million | --only-million] [--dsync auto|binary|source]");
  process.exit(2);
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { dataDir: "/tmp/dsync-bench/node-memory", restSeconds: 30, syncthing: true, million: false, twoHundred: true, dsync: "source" };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--data") options.dataDir = value();
    else if (flag === "--rest-s") options.restSeconds = count(0);
    else if (flag === "--no-syncthing") options.syncthing = false;
    else if (flag === "--million") options.million = true;
    else if (flag === "--only-million") {
      options.million = true;
      options.twoHundred = false;
    }
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "auto" && choice !== "binary" && choice !== "source") usage(`--dsync takes auto, binary or source, not ${choice}`);
      options.dsync = choice;
    } else usage(`unknown option ${flag}`);
  }
  return options;
}

const log = (line: string) => console.log(line);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function vmRssBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Polls a process's RSS while `work` runs; VmHWM gives the true peak, the polls when it was reached. */
async function duringWork<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peakBytes: number; polledPeakBytes: number; seconds: number }> {
  let polledPeakBytes = 0;
  const timer = setInterval(() => {
    polledPeakBytes = Math.max(polledPeakBytes, vmRssBytes(pid) ?? 0);
  }, 100);
  const started = performance.now();
  try {
    const result = await work();
    return { result, peakBytes: readVmHwmBytes(pid) ?? NaN, polledPeakBytes, seconds: (performance.now() - started) / 1000 };
  } finally {
    clearInterval(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Data sets, generated once and kept (complete when their marker exists)

/** 200 MiB in 2 000 seeded random files of 100 KiB in 20 directories (incompressible, like media). */
function ensureTwoHundredMiB(root: string): string {
  const dir = join(root, "data-200mib-2000");
  const marker = join(root, "data-200mib-2000.complete");
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  log(`data: writing 200 MiB in 2 000 files to ${dir}`);
  const buffer = new Uint8Array(100 * 1024 + 8);
  for (let i = 0; i < 2000; i++) {
    const sub = join(dir, `d${String(i % 20).padStart(2, "0")}`);
    mkdirSync(sub, { recursive: true });
    writeRandomFile(join(sub, `f${String(i).padStart(4, "0")}.bin`), Math.floor((200 * MIB) / 2000), `node-memory-${i}`, buffer);
  }
  writeFileSync(marker, "");
  return dir;
}

/** 1 000 000 files of 0–500 B in 1 000 directories; file i holds i % 501 bytes, unique per file. */
function ensureMillionFiles(root: string): string {
  const dir = join(root, "data-1m-files");
  const marker = join(root, "data-1m-files.complete");
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  log(`data: writing 1 000 000 small files to ${dir} (a minute or two)`);
  const bytes = new Uint8Array(512);
  for (let d = 0; d < 1000; d++) mkdirSync(join(dir, `d${String(d).padStart(3, "0")}`), { recursive: true });
  for (let i = 0; i < 1_000_000; i++) {
    const size = i % 501;
    // A counter in the first bytes makes every file distinct; the rest is a cheap pattern.
    for (let j = 0; j < size; j++) bytes[j] = (i >>> ((j % 4) * 8)) ^ j;
    writeFileSync(join(dir, `d${String(i % 1000).padStart(3, "0")}`, `f${i}`), bytes.subarray(0, size));
  }
  writeFileSync(marker, "");
  return dir;
}

// ---------------------------------------------------------------------------------------------
// dsync

interface MemoryFigures {
  seconds: number;
  peakBytes: number;
  afterBytes: number;
  restBytes: number;
}

async function dsyncReceives(dsync: DsyncCommand, source: string, nodeDir: string, restSeconds: number, pushArgs: string[] = []): Promise<MemoryFigures> {
  rmSync(join(source, ".dsync"), { recursive: true, force: true });
  const node = await startDsyncNode(dsync, nodeDir);
  try {
    const { peakBytes, seconds } = await duringWork(node.pid, () =>
      runTimed([...dsync.argv, "push", source, "--remote", node.url, "--folder", "bench", ...pushArgs], { env: cleanEnv() }),
    );
    const afterBytes = vmRssBytes(node.pid) ?? NaN;
    await sleep(restSeconds * 1000);
    return { seconds, peakBytes, afterBytes, restBytes: vmRssBytes(node.pid) ?? NaN };
  } finally {
    await node.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Syncthing (syncthing.ts): two instances on loopback, one sending its folder, the other receiving it

async function syncthingReceives(source: string, workDir: string, fileCount: number, restSeconds: number): Promise<MemoryFigures> {
  const target = join(workDir, "syncthing-received");
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  // dsync's client state is not part of the data set.
  writeFileSync(join(source, ".stignore"), ".dsync\n");
  const sender = await generateSyncthing(join(workDir, "syncthing-sender"));
  const receiver = await generateSyncthing(join(workDir, "syncthing-receiver"));
  configureSyncthing(sender, receiver, source, "sendonly");
  configureSyncthing(receiver, sender, target, "receiveonly");
  try {
    await startSyncthing(sender);
    // The sender indexes its folder first, so the receiver's figures are the transfer alone.
    for (const deadline = Date.now() + 600_000; ; await sleep(500)) {
      const status = (await syncthingRest(sender, "/rest/db/status?folder=bench")) as { state: string; localFiles: number };
      if (status.state === "idle" && status.localFiles >= fileCount) break;
      if (Date.now() > deadline) throw new Error(`the sending Syncthing did not index ${fileCount} files within 600 s`);
    }
    await startSyncthing(receiver);
    const pid = workerPid(receiver.proc!.pid);
    const { peakBytes, seconds } = await duringWork(pid, async () => {
      for (const deadline = Date.now() + 900_000; ; await sleep(250)) {
        const status = (await syncthingRest(receiver, "/rest/db/status?folder=bench")) as { state: string; localFiles: number; needTotalItems: number };
        if (status.state === "idle" && status.localFiles >= fileCount && status.needTotalItems === 0) return;
        if (Date.now() > deadline) throw new Error(`the receiving Syncthing did not finish within 900 s (${JSON.stringify(status)})`);
      }
    });
    const afterBytes = vmRssBytes(pid) ?? NaN;
    const received = countFiles(target);
    if (received < fileCount) throw new Error(`Syncthing said it was done with ${received} of ${fileCount} files on disk`);
    await sleep(restSeconds * 1000);
    return { seconds, peakBytes, afterBytes, restBytes: vmRssBytes(pid) ?? NaN };
  } finally {
    for (const instance of [receiver, sender]) if (instance.proc) await stopProcess(instance.proc);
    rmSync(join(source, ".stignore"), { force: true });
    rmSync(join(source, ".stfolder"), { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function row(name: string, figures: MemoryFigures): string {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
  return `| ${name} | ${figures.seconds.toFixed(1)} s | ${mb(figures.afterBytes)} | ${mb(figures.peakBytes)} | ${mb(figures.restBytes)} |`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  mkdirSync(options.dataDir, { recursive: true });
  const dsync = resolveDsync(options.dsync);
  log(`dsync: ${dsync.label}${dsync.staleNote ? ` (${dsync.staleNote})` : ""}`);
  const rows: string[] = [];
  const source = options.twoHundred ? ensureTwoHundredMiB(options.dataDir) : "";
  if (options.twoHundred) {
    const dsyncFigures = await dsyncReceives(dsync, source, join(options.dataDir, "node"), options.restSeconds);
    rows.push(row("dsync node (`dsync serve`), `dsync push`", dsyncFigures));
    log(rows.at(-1)!);
  }
  if (options.twoHundred && options.syncthing) {
    const version = (await runTimed(["syncthing", "--version"])).stdout.trim().split(" ").slice(0, 2).join(" ");
    const syncthingFigures = await syncthingReceives(source, options.dataDir, 2000, options.restSeconds);
    rows.push(row(`receiving Syncthing (${version})`, syncthingFigures));
    log(rows.at(-1)!);
  }
  if (options.million) {
    const million = ensureMillionFiles(options.dataDir);
    // The commit's check of 1 000 000 new files takes longer than the client's default 60 s wait on a busy machine.
    const figures = await dsyncReceives(dsync, million, join(options.dataDir, "node-1m"), Math.min(options.restSeconds, 10), ["--timeout", "1200"]);
    rows.push(row("dsync node, 1 000 000 files of 0–500 B", figures));
    log(rows.at(-1)!);
  }
  console.log("\n| receiver | time | RSS when done | peak RSS (VmHWM) | RSS after rest |\n|---|---|---|---|---|");
  for (const line of rows) console.log(line);
  console.log(`\nrest: ${options.restSeconds} s${options.million ? " (10 s at most for the 1 000 000-file case)" : ""}; 200 MiB = 2 000 files of 100 KiB, seeded random; repo ${REPO_ROOT}`);
}

await main();
