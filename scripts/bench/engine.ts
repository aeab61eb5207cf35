// Engine benchmark: chunking, hashing and scanning into the on-disk store, against b3sum and
// cp -r on the same files, plus the peak memory of scanning one 4 GiB file.
//
//   bun scripts/bench/engine.ts [--data DIR] [--size-mib N] [--runs N] [--rss | --no-rss]
//                               [--rss-gib N] [--keep] [--json FILE] [--markdown] [--no-tmpfs]
//                               [--batch-mib N] [--chunk-threads N]
//   bun scripts/bench/engine.ts --child-scan FILE STOREDIR [BATCH_MIB]   (used by the memory measurement)
//
// See scripts/bench/README.md for what each figure means.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { blake3, blake3BackendName, blake3Portable } from "../../src/core/blake3.ts";
import { DEFAULT_CHUNKER_PARAMS, findCutPoint, type ChunkerParams } from "../../src/core/fastcdc.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { forEachChunk } from "../../src/fs/chunk-reader.ts";
import { ChunkWorkerPool, chunkThreadsFromEnvironment, type FileChunking } from "../../src/fs/chunk-worker-pool.ts";
import { scanDirectory, type ScanResult, type ScanSink } from "../../src/fs/scanner.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { PackObjectStore } from "../../src/store/pack-store.ts";
import type { SealedObject } from "../../src/core/pages.ts";
import {
  availableMemoryBytes,
  ensureDataset,
  formatBytes,
  formatMarkdownTable,
  formatNumber,
  formatTable,
  freeBytes,
  GIB,
  gitCommit,
  hasCommand,
  loadAverageText,
  machineInfo,
  mbPerSecond,
  median,
  MIB,
  readVmHwmBytes,
  removeDir,
  repeat,
  requireFreeSpace,
  runTimed,
  runWithPeakRss,
  syncAll,
  warmPageCache,
  writeRandomFile,
  Xorshift128Plus,
  type Dataset,
} from "./lib.ts";

const READ_BUFFER_BYTES = 4 * MIB;
const HASH_SAMPLE_BYTES = 64 * MIB;
const TARGET_LARGE_MBPS = 400;
const TARGET_SMALL_FILES_PER_S = 3000;
const TARGET_RSS_MB = 200;
/** The throughput targets: chunk + hash on all cores against one thread, and scan -> store against cp -r + sync. */
const TARGET_ALL_CORES_RATIO = 1.6;
const TARGET_STORE_VS_COPY_RATIO = 0.8;
const TMPFS_DIR = "/dev/shm";

interface Options {
  dataDir: string;
  sizeMiB: number;
  runs: number;
  rss: "auto" | "on" | "off";
  rssGiB: number;
  keep: boolean;
  json: string | undefined;
  markdown: boolean;
  tmpfs: boolean;
  batchMiB: number;
  seed: string;
  /** Threads that cut and hash in the scans (DSYNC_CHUNK_THREADS, else the machine's cores, at most 4). */
  chunkThreads: number;
}

const USAGE = `usage: bun scripts/bench/engine.ts [options]
  --data DIR       where the generated data is cached (default /tmp/dsync-bench)
  --size-mib N     size of the data set in MiB (default 1024: 4 large files + a small-file tree)
  --runs N         runs per measurement; the median is reported (default 3)
  --rss            always measure peak memory of scanning one large file
  --no-rss         never measure it (default: measure when the disk has room)
  --rss-gib N      size of that file in GiB (default 4)
  --keep           keep the large memory-test file afterwards
  --json FILE      also write every run's figures to FILE
  --markdown       also print the summary as a Markdown table
  --batch-mib N    bytes per putMany batch of the store scans, in MiB (default 4)
  --no-tmpfs       skip the extra store scan on tmpfs (/dev/shm)
  --seed TEXT      data seed (default "dsync-bench")
  --chunk-threads N  threads that cut and hash in the scans and the all-cores row (default
                   DSYNC_CHUNK_THREADS, else the machine's cores, at most 4)`;

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    dataDir: "/tmp/dsync-bench",
    sizeMiB: 1024,
    runs: 3,
    rss: "auto",
    rssGiB: 4,
    keep: false,
    json: undefined,
    markdown: false,
    tmpfs: true,
    batchMiB: 4,
    seed: "dsync-bench",
    chunkThreads: chunkThreadsFromEnvironment(),
  };
  const value = (i: number, name: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${name} needs a value\n${USAGE}`);
    return v;
  };
  const positive = (text: string, name: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${text}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    switch (arg) {
      case "--data":
        options.dataDir = resolve(value(i++, arg));
        break;
      case "--size-mib":
        options.sizeMiB = Math.round(positive(value(i++, arg), arg));
        if (options.sizeMiB < 8) throw new Error("--size-mib must be at least 8");
        break;
      case "--runs":
        options.runs = Math.round(positive(value(i++, arg), arg));
        break;
      case "--rss":
        options.rss = "on";
        break;
      case "--no-rss":
        options.rss = "off";
        break;
      case "--rss-gib":
        options.rssGiB = positive(value(i++, arg), arg);
        break;
      case "--keep":
        options.keep = true;
        break;
      case "--json":
        options.json = resolve(value(i++, arg));
        break;
      case "--markdown":
        options.markdown = true;
        break;
      case "--batch-mib":
        options.batchMiB = positive(value(i++, arg), arg);
        break;
      case "--no-tmpfs":
        options.tmpfs = false;
        break;
      case "--seed":
        options.seed = value(i++, arg);
        break;
      case "--chunk-threads":
        options.chunkThreads = Math.round(positive(value(i++, arg), arg));
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        process.exit(0);
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// The sink that stores a scan

/**
 * Collects chunks and nodes into batches of about `batchBytes` and hands each to putHashed (putMany without its second hash: the scan hashed these bytes). Chunk
 * bytes are copied (the scanner reuses its buffer) into one of two arena buffers rather than a
 * fresh allocation per chunk: a copy per chunk would leave tens of MB of garbage for the
 * collector between cycles. One batch is in flight while the scan fills the other arena, so
 * reading and hashing overlap the store's fdatasync; an arena is refilled only after the
 * put that used it has settled, as the store requires.
 */
class StoreSink implements ScanSink {
  private readonly arenas: [Uint8Array, Uint8Array];
  private arena = 0;
  private arenaUsed = 0;
  private pending: StoredObject[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | undefined;
  private failure: unknown;

  constructor(private readonly store: PackObjectStore, private readonly batchBytes: number, maxChunkBytes: number) {
    this.arenas = [new Uint8Array(batchBytes + maxChunkBytes), new Uint8Array(batchBytes + maxChunkBytes)];
  }

  chunk(id: ObjectId, bytes: Uint8Array): Promise<void> | void {
    const arena = this.arenas[this.arena];
    let copy: Uint8Array;
    if (this.arenaUsed + bytes.length <= arena.length) {
      copy = arena.subarray(this.arenaUsed, this.arenaUsed + bytes.length);
      copy.set(bytes);
      this.arenaUsed += bytes.length;
    } else {
      copy = bytes.slice(); // larger than a chunk can be; kept for safety
    }
    return this.add(id, copy);
  }

  object(sealed: SealedObject): Promise<void> | void {
    return this.add(sealed.id, sealed.bytes);
  }

  private add(id: ObjectId, bytes: Uint8Array): Promise<void> | void {
    this.pending.push({ id, bytes });
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= this.batchBytes) return this.flush();
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    // The other arena's batch must be stored before that arena is filled again.
    this.arena ^= 1;
    this.arenaUsed = 0;
    if (this.inFlight) await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
    if (batch.length === 0) return;
    // The scan hashed these very bytes in this process (the chunks' copies are of the bytes it
    // hashed): putHashed stores them without a second hash, so each chunk is hashed once.
    this.inFlight = this.store.putHashed(batch).catch((error: unknown) => {
      this.failure = error;
    });
  }

  /** Stores what is left and waits until every batch is durable. */
  async finish(): Promise<void> {
    await this.flush();
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
  }
}

interface StoreScan {
  seconds: number;
  /** CPU time of this thread (the one that stores), user + system. */
  threadCpuSeconds: number;
  result: ScanResult;
  objects: number;
  storedBytes: number;
}

/** Opens a fresh store, scans `dir` into it, waits for the last flush, closes it: all timed. */
async function scanIntoStore(dir: string, storeDir: string, batchBytes: number, chunkThreads: number): Promise<StoreScan> {
  removeDir(storeDir);
  const started = performance.now();
  const cpuStarted = threadCpuSeconds();
  const store = await PackObjectStore.open(storeDir);
  let result: ScanResult;
  let stats: { objects: number; storedBytes: number };
  try {
    const sink = new StoreSink(store, batchBytes, DEFAULT_CHUNKER_PARAMS.maxSizeBytes);
    // The scan starts its own workers (their start-up is timed, as in a push) when chunkThreads > 1.
    result = await scanDirectory(dir, { sink, chunker: DEFAULT_CHUNKER_PARAMS, readBufferBytes: READ_BUFFER_BYTES, chunkThreads });
    await sink.finish();
    stats = await store.stats();
  } finally {
    await store.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = threadCpuSeconds() - cpuStarted;
  if (result.skipped.length > 0) throw new Error(`scan skipped ${result.skipped.length} paths, e.g. ${JSON.stringify(result.skipped[0])}`);
  return { seconds, threadCpuSeconds: cpu, result, objects: stats.objects, storedBytes: stats.storedBytes };
}

// ---------------------------------------------------------------------------------------------
// Chunking and hashing

/** Cuts a file with FastCDC through the reused buffer, without hashing; the same loop as forEachChunk. */
function chunkFileOnly(fd: number, buffer: Uint8Array, params: ChunkerParams): { bytes: number; chunks: number } {
  let filled = 0;
  let start = 0;
  let eof = false;
  let position = 0;
  let chunks = 0;
  for (;;) {
    while (!eof && filled < buffer.length) {
      const n = readSync(fd, buffer, filled, buffer.length - filled, position);
      if (n === 0) eof = true;
      filled += n;
      position += n;
    }
    while (start < filled) {
      const length = findCutPoint(buffer, start, filled, params, eof);
      if (length < 0) break;
      chunks++;
      start += length;
    }
    if (eof && start >= filled) return { bytes: position, chunks };
    buffer.copyWithin(0, start, filled);
    filled -= start;
    start = 0;
  }
}

function chunkFiles(files: readonly string[], buffer: Uint8Array): { bytes: number; chunks: number } {
  let bytes = 0;
  let chunks = 0;
  for (const path of files) {
    const fd = openSync(path, "r");
    try {
      const r = chunkFileOnly(fd, buffer, DEFAULT_CHUNKER_PARAMS);
      bytes += r.bytes;
      chunks += r.chunks;
    } finally {
      closeSync(fd);
    }
  }
  return { bytes, chunks };
}

async function chunkAndHashFiles(files: readonly string[], buffer: Uint8Array): Promise<{ bytes: number; chunks: number }> {
  let bytes = 0;
  let chunks = 0;
  for (const path of files) {
    const fd = openSync(path, "r");
    try {
      bytes += await forEachChunk(fd, buffer, DEFAULT_CHUNKER_PARAMS, () => {
        chunks++;
      });
    } finally {
      closeSync(fd);
    }
  }
  return { bytes, chunks };
}

/** This thread's CPU time (user + system) in seconds. */
function threadCpuSeconds(): number {
  const usage = process.threadCpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Chunk + hash on the pool's workers, every file handed over at once and taken in order, as the scan takes them. */
async function chunkAndHashOnWorkers(files: readonly string[], pool: ChunkWorkerPool): Promise<{ bytes: number; chunks: number }> {
  let bytes = 0;
  let chunks = 0;
  const fds = files.map((path) => openSync(path, "r"));
  const jobs: FileChunking[] = [];
  try {
    for (const fd of fds) jobs.push(pool.submitFile(fd, fstatSync(fd).size, DEFAULT_CHUNKER_PARAMS));
    for (const job of jobs) {
      bytes += await job.forEachChunk(() => {
        chunks++;
      });
    }
  } finally {
    for (const job of jobs) await job.abandon();
    for (const fd of fds) closeSync(fd);
  }
  return { bytes, chunks };
}

// ---------------------------------------------------------------------------------------------
// The child process of the memory measurement

interface ChildReport {
  bytes: number;
  files: number;
  chunks: number;
  objects: number;
  seconds: number;
  vmHwmBytes: number;
}

async function childScan(path: string, storeDir: string, batchBytes: number): Promise<void> {
  const stats = statSync(path);
  let dir = path;
  if (!stats.isDirectory()) {
    dir = dirname(path);
    const others = readdirSync(dir).filter((name) => name !== basename(path));
    if (others.length > 0) throw new Error(`--child-scan scans the directory of ${path}, which must hold only that file; it also holds ${others.slice(0, 3).join(", ")}`);
  }
  const scan = await scanIntoStore(dir, storeDir, batchBytes, chunkThreadsFromEnvironment());
  const report: ChildReport = {
    bytes: scan.result.totalBytes,
    files: scan.result.files,
    chunks: scan.result.chunks,
    objects: scan.objects,
    seconds: scan.seconds,
    vmHwmBytes: readVmHwmBytes("self") ?? 0,
  };
  console.log(JSON.stringify(report));
}

// ---------------------------------------------------------------------------------------------
// The run

interface Figure {
  name: string;
  unit: string;
  runs: number[];
  median: number;
  /** How the figure is summarised when not by the median (peak memory takes the maximum). */
  summary?: "max";
  target?: { text: string; met: boolean };
}

/** Directories to remove however the run ends (error or Ctrl-C). */
const cleanupDirs = new Set<string>();

function cleanUp(): void {
  for (const dir of cleanupDirs) removeDir(dir);
  cleanupDirs.clear();
}

function log(line: string): void {
  console.error(line);
}

function runsText(values: readonly number[]): string {
  return values.map(formatNumber).join(", ");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child-scan") {
    if (argv.length !== 3 && argv.length !== 4) throw new Error("usage: --child-scan FILE STOREDIR [BATCH_MIB]");
    await childScan(resolve(argv[1]!), resolve(argv[2]!), Math.round(Number(argv[3] ?? 4) * MIB));
    return;
  }
  const options = parseOptions(argv);
  const machine = machineInfo();
  const commit = await gitCommit(resolve(import.meta.dir, "../.."));
  const started = new Date();
  log(`dsync engine benchmark, ${started.toISOString()}, commit ${commit}`);
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memTotal} RAM, Linux ${machine.kernel}, Bun ${machine.bun}`);
  log(`BLAKE3 backend: ${blake3BackendName}; chunker: FastCDC ${DEFAULT_CHUNKER_PARAMS.minSizeBytes / 1024}/${DEFAULT_CHUNKER_PARAMS.avgSizeBytes / 1024}/${DEFAULT_CHUNKER_PARAMS.maxSizeBytes / 1024} KiB`);
  log(`load average at start: ${machine.loadAverage}${Number(machine.loadAverage.split(" ")[0]) > machine.cores * 0.5 ? "  (busy machine: figures will be low and noisy)" : ""}`);
  log(`runs per figure: ${options.runs} (median reported); MB = 10^6 bytes; chunk threads in the scans: ${options.chunkThreads}`);
  for (const tool of ["b3sum", "cp", "sync", "find", "xargs"]) {
    if (!hasCommand(tool)) throw new Error(`${tool} is needed for the baselines`);
  }

  const data = ensureDataset(options.dataDir, { sizeMiB: options.sizeMiB, seed: options.seed }, log);
  const scratch = join(options.dataDir, "scratch");
  removeDir(scratch);
  cleanupDirs.add(scratch);
  requireFreeSpace(options.dataDir, 2 * (data.largeBytes + data.smallBytes) + 512 * MIB, "the store and copy targets");
  log(`data: ${data.largeFiles.length} large files, ${formatBytes(data.largeBytes)}; small-file tree of ${data.smallFiles.length} files, ${formatBytes(data.smallBytes)}`);

  // The page cache cannot be dropped without root, so every run reads from it instead: one
  // untimed read of all files first, and all timed runs see the same warm cache.
  const buffer = new Uint8Array(READ_BUFFER_BYTES);
  const warmed = warmPageCache([...data.largeFiles, ...data.smallFiles], buffer);
  const available = availableMemoryBytes();
  log(`warm-up: read ${formatBytes(warmed)} once; all timed runs read from the page cache (it cannot be flushed without root)`);
  if (available !== undefined && available < 2 * warmed) log(`warning: only ${formatBytes(available)} of memory available; some reads may go to disk`);
  // Compile the hot loops before timing them.
  await jitWarmUp(buffer);

  const figures: Figure[] = [];
  const add = (figure: Omit<Figure, "median">): Figure => {
    const f: Figure = { ...figure, median: figure.summary === "max" ? Math.max(...figure.runs) : median(figure.runs) };
    figures.push(f);
    log(`  ${f.name}: ${formatNumber(f.median)} ${f.unit}  (runs: ${runsText(f.runs)})`);
    return f;
  };
  const runs = options.runs;
  const batchBytes = Math.round(options.batchMiB * MIB);

  // 1. Chunking alone.
  log("chunking alone (FastCDC findCutPoint, 4 MiB reused buffer), large files:");
  let chunkCount = 0;
  const chunkSeconds = await repeat(runs, () => {
    chunkCount = chunkFiles(data.largeFiles, buffer).chunks;
  });
  const chunking = add({ name: "chunking alone (FastCDC), large files", unit: "MB/s", runs: chunkSeconds.map((s) => mbPerSecond(data.largeBytes, s)) });
  log(`    ${chunkCount} chunks, mean ${formatBytes(Math.round(data.largeBytes / chunkCount))}`);

  // 2. Chunk + hash, single thread.
  log("chunk + hash (forEachChunk, native BLAKE3, one thread), large files:");
  const oneThreadCpu: number[] = [];
  const chunkHashSeconds = await repeat(runs, async () => {
    const before = threadCpuSeconds();
    await chunkAndHashFiles(data.largeFiles, buffer);
    oneThreadCpu.push(threadCpuSeconds() - before);
  });
  const chunkHash = add({ name: "chunk + hash (1 thread), large files", unit: "MB/s", runs: chunkHashSeconds.map((s) => mbPerSecond(data.largeBytes, s)) });

  // 2b. Chunk + hash on every core: the scan's worker threads, started (untimed) beforehand.
  let chunkHashAll: Figure | undefined;
  let chunkHashAllEstimate: number | undefined;
  if (options.chunkThreads > 1) {
    log(`chunk + hash on ${options.chunkThreads} worker threads (ChunkWorkerPool, 4 MiB segments, taken in order), large files:`);
    const pool = new ChunkWorkerPool({ threads: options.chunkThreads });
    try {
      let workerChunks = 0;
      await pool.whenReady();
      await chunkAndHashOnWorkers(data.largeFiles, pool); // the workers' start-up and JIT, untimed
      // Each thread's CPU time per run: on a loaded machine the wall time says more about the
      // others than about the split, so the figure an idle machine would give is estimated too.
      const estimates: number[] = [];
      const seconds = await repeat(runs, async () => {
        const mainBefore = threadCpuSeconds();
        const workersBefore = pool.workerCpuMicros();
        workerChunks = (await chunkAndHashOnWorkers(data.largeFiles, pool)).chunks;
        const main = threadCpuSeconds() - mainBefore;
        const workers = pool.workerCpuMicros().map((micros, i) => (micros - workersBefore[i]!) / 1e6);
        // Each thread on a core of its own, or the cores shared out, whichever is longer.
        const idleWall = Math.max(main, ...workers, (main + workers.reduce((a, b) => a + b, 0)) / machine.cores);
        estimates.push(median(oneThreadCpu) / idleWall);
        log(`    run: this thread ${formatNumber(main * 1000)} ms CPU, workers ${workers.map((w) => formatNumber(w * 1000)).join(" + ")} ms (one thread: ${formatNumber(median(oneThreadCpu) * 1000)} ms)`);
      });
      if (workerChunks !== chunkCount) throw new Error(`the workers cut ${workerChunks} chunks, one thread ${chunkCount}`);
      chunkHashAll = add({ name: `chunk + hash (${options.chunkThreads} threads), large files`, unit: "MB/s", runs: seconds.map((s) => mbPerSecond(data.largeBytes, s)) });
      const ratio = chunkHashAll.median / chunkHash.median;
      chunkHashAll.target = { text: `>= ${TARGET_ALL_CORES_RATIO}x 1 thread`, met: ratio >= TARGET_ALL_CORES_RATIO };
      log(`    ${workerChunks} chunks (as one thread); ${formatNumber(ratio)}x one thread by wall time; by each thread's CPU time, on ${machine.cores} idle cores: ${formatNumber(median(estimates))}x (runs: ${runsText(estimates)})`);
      log(`    stitched on this thread ${formatBytes(pool.bytesStitched)}, dropped by workers ${formatBytes(pool.bytesDropped)}, segments cut here ${pool.segmentsHere} (all passes)`);
      chunkHashAllEstimate = median(estimates);
    } finally {
      await pool.close();
    }
  } else {
    log("chunk + hash on worker threads: skipped (one chunk thread)");
  }

  // 3. Hash alone: native and portable, on the same in-memory bytes.
  const sample = new Uint8Array(HASH_SAMPLE_BYTES);
  new Xorshift128Plus(`${options.seed}/hash-sample`).fill(new Uint32Array(sample.buffer));
  log(`hash alone on ${formatBytes(sample.length)} in memory:`);
  let nativeId: ObjectId | undefined;
  let portableId: ObjectId | undefined;
  const nativeSeconds = await repeat(runs, () => {
    nativeId = blake3(sample);
  });
  const hashNative = add({ name: `BLAKE3 native, ${formatBytes(sample.length)} buffer`, unit: "MB/s", runs: nativeSeconds.map((s) => mbPerSecond(sample.length, s)) });
  const portableSeconds = await repeat(runs, () => {
    portableId = blake3Portable(sample);
  });
  const hashPortable = add({ name: `BLAKE3 portable (@noble/hashes), ${formatBytes(sample.length)}`, unit: "MB/s", runs: portableSeconds.map((s) => mbPerSecond(sample.length, s)) });
  if (idToHex(nativeId!) !== idToHex(portableId!)) throw new Error("native and portable BLAKE3 disagree");
  log(`    native / portable: ${formatNumber(hashNative.median / hashPortable.median)}x (digests equal)`);

  // 4. The scanner alone (chunks hashed, nothing kept), to separate its cost from the store's.
  log("scan only (scanDirectory, sink discards everything), large files:");
  const scanOnlySeconds = await repeat(runs, () => scanDirectory(data.largeDir, { sink: { object: () => undefined }, readBufferBytes: READ_BUFFER_BYTES, chunkThreads: options.chunkThreads }));
  const scanOnly = add({ name: "scan only (no store), large files", unit: "MB/s", runs: scanOnlySeconds.map((s) => mbPerSecond(data.largeBytes, s)) });

  // 5. Full scans into a fresh on-disk store.
  const storeDir = join(scratch, "store");
  const cleanStore = { before: async () => { removeDir(storeDir); await syncAll(); }, after: () => removeDir(storeDir) };
  log(`scan into a fresh pack store (scanDirectory -> putHashed in ${formatBytes(batchBytes)} batches, one in flight, chunks copied into two reused arenas; open to close, fdatasync included), large files:`);
  let lastLarge: StoreScan | undefined;
  const largeCpu: number[] = [];
  const largeScanSeconds = await repeat(runs, async () => {
    lastLarge = await scanIntoStore(data.largeDir, storeDir, batchBytes, options.chunkThreads);
    largeCpu.push(lastLarge.threadCpuSeconds);
  }, cleanStore);
  const scanLarge = add({
    name: `scan -> store, large files${options.chunkThreads > 1 ? ` (${options.chunkThreads} chunk threads)` : ""}`,
    unit: "MB/s",
    runs: largeScanSeconds.map((s) => mbPerSecond(data.largeBytes, s)),
  });
  log(`    ${lastLarge!.objects} objects, ${formatBytes(lastLarge!.storedBytes)} stored, ${lastLarge!.result.filesOnWorkers} of ${lastLarge!.result.filesRead} files cut on worker threads; the storing thread's CPU: ${formatNumber(median(largeCpu) * 1000)} ms (runs: ${runsText(largeCpu.map((c) => c * 1000))})`);
  let scanLargeOneThread: Figure | undefined;
  if (options.chunkThreads > 1) {
    log("the same scan into a fresh pack store on one thread (chunkThreads: 1), large files:");
    const oneCpu: number[] = [];
    const seconds = await repeat(runs, async () => oneCpu.push((await scanIntoStore(data.largeDir, storeDir, batchBytes, 1)).threadCpuSeconds), cleanStore);
    scanLargeOneThread = add({ name: "scan -> store (1 thread), large files", unit: "MB/s", runs: seconds.map((s) => mbPerSecond(data.largeBytes, s)) });
    log(`    the storing thread's CPU: ${formatNumber(median(oneCpu) * 1000)} ms (runs: ${runsText(oneCpu.map((c) => c * 1000))})`);
  }
  log("scan into a fresh pack store, small-file tree:");
  let lastSmall: StoreScan | undefined;
  const smallScanSeconds = await repeat(runs, async () => {
    lastSmall = await scanIntoStore(data.smallDir, storeDir, batchBytes, options.chunkThreads);
  }, cleanStore);
  const scanSmallFiles = add({
    name: "scan -> store, small-file tree",
    unit: "files/s",
    runs: smallScanSeconds.map((s) => data.smallFiles.length / s),
  });
  const scanSmallMb = add({ name: "scan -> store, small-file tree", unit: "MB/s", runs: smallScanSeconds.map((s) => mbPerSecond(data.smallBytes, s)) });
  log(`    ${lastSmall!.result.files} files, ${lastSmall!.result.directories} directories, ${lastSmall!.objects} objects, ${formatBytes(lastSmall!.storedBytes)} stored`);
  scanLarge.target = { text: `>= ${TARGET_LARGE_MBPS} MB/s`, met: scanLarge.median >= TARGET_LARGE_MBPS };
  scanSmallFiles.target = { text: `>= ${TARGET_SMALL_FILES_PER_S} files/s`, met: scanSmallFiles.median >= TARGET_SMALL_FILES_PER_S };

  // The same scan into a store on tmpfs, where fdatasync costs nothing: the CPU-bound ceiling.
  let scanTmpfs: Figure | undefined;
  const tmpfsStoreDir = join(TMPFS_DIR, `dsync-bench-store-${process.pid}`);
  cleanupDirs.add(tmpfsStoreDir);
  if (options.tmpfs && existsSync(TMPFS_DIR) && freeBytes(TMPFS_DIR) > 2 * data.largeBytes && (availableMemoryBytes() ?? 0) > 3 * data.largeBytes) {
    log(`scan into a fresh pack store on tmpfs (${TMPFS_DIR}: no disk, fdatasync is free), large files:`);
    try {
      const seconds = await repeat(runs, () => scanIntoStore(data.largeDir, tmpfsStoreDir, batchBytes, options.chunkThreads), { before: () => removeDir(tmpfsStoreDir), after: () => removeDir(tmpfsStoreDir) });
      scanTmpfs = add({ name: "scan -> store on tmpfs, large files", unit: "MB/s", runs: seconds.map((s) => mbPerSecond(data.largeBytes, s)) });
    } finally {
      removeDir(tmpfsStoreDir);
    }
  } else {
    log(`scan into a store on tmpfs: skipped (${options.tmpfs ? `${TMPFS_DIR} missing or too little memory` : "--no-tmpfs"})`);
  }

  // 6. Baselines on the same files, same warm cache.
  log("baseline: b3sum --num-threads 1, large files:");
  const b3Large = add({
    name: "b3sum --num-threads 1, large files",
    unit: "MB/s",
    runs: (await repeat(runs, () => runTimed(["b3sum", "--num-threads", "1", ...data.largeFiles]))).map((s) => mbPerSecond(data.largeBytes, s)),
  });
  log("baseline: find | xargs b3sum --num-threads 1, small-file tree:");
  const b3SmallSeconds = await repeat(runs, () =>
    runTimed(["sh", "-c", 'find "$1" -type f -print0 | xargs -0 b3sum --num-threads 1 > /dev/null', "sh", data.smallDir]),
  );
  const b3SmallFiles = add({ name: "b3sum --num-threads 1, small-file tree", unit: "files/s", runs: b3SmallSeconds.map((s) => data.smallFiles.length / s) });
  const copyTarget = join(scratch, "copy");
  const cleanCopy = { before: async () => { removeDir(copyTarget); await syncAll(); }, after: () => removeDir(copyTarget) };
  const copyCommand = (from: string) => runTimed(["sh", "-c", 'cp -r "$1" "$2" && sync', "sh", from, copyTarget]);
  log("baseline: cp -r + sync, large files:");
  const cpLarge = add({
    name: "cp -r + sync, large files",
    unit: "MB/s",
    runs: (await repeat(runs, () => copyCommand(data.largeDir), cleanCopy)).map((s) => mbPerSecond(data.largeBytes, s)),
  });
  const storeVsCopy = scanLarge.median / cpLarge.median;
  log("baseline: cp -r + sync, small-file tree:");
  const cpSmallSeconds = await repeat(runs, () => copyCommand(data.smallDir), cleanCopy);
  const cpSmallFiles = add({ name: "cp -r + sync, small-file tree", unit: "files/s", runs: cpSmallSeconds.map((s) => data.smallFiles.length / s) });
  const cpSmallMb = add({ name: "cp -r + sync, small-file tree", unit: "MB/s", runs: cpSmallSeconds.map((s) => mbPerSecond(data.smallBytes, s)) });

  // 7. Peak memory while scanning one large file.
  const rssFigures = await measurePeakRss(options, scratch);
  if (rssFigures) {
    rssFigures.peak.target = { text: `< ${TARGET_RSS_MB} MB`, met: rssFigures.peak.median < TARGET_RSS_MB };
    figures.push(rssFigures.speed, rssFigures.peak);
    log(`  ${rssFigures.speed.name}: ${formatNumber(rssFigures.speed.median)} MB/s  (runs: ${runsText(rssFigures.speed.runs)})`);
    log(`  ${rssFigures.peak.name}: ${formatNumber(rssFigures.peak.median)} MB  (runs: ${runsText(rssFigures.peak.runs)})`);
  }
  removeDir(scratch);

  // The summary.
  const ratio = (a: Figure, b: Figure) => `${formatNumber(a.median / b.median)}x`;
  const row = (f: Figure, baseline?: Figure, baselineLabel?: string): string[] => [
    f.name,
    `${formatNumber(f.median)} ${f.unit}`,
    f.target ? `${f.target.text} ${f.target.met ? "(met)" : "(MISSED)"}` : "",
    baseline ? `${baselineLabel ?? baseline.name}: ${formatNumber(baseline.median)} ${baseline.unit}` : "",
    baseline ? ratio(f, baseline) : "",
  ];
  const header = ["figure", "median", "target", "baseline (median)", "ratio"];
  const rows: string[][] = [
    row(chunking, b3Large, "b3sum -t1"),
    row(chunkHash, b3Large, "b3sum -t1"),
    ...(chunkHashAll ? [row(chunkHashAll, chunkHash, "1 thread")] : []),
    ...(chunkHashAllEstimate !== undefined ? [["  (same) by each thread's CPU time, idle cores", "", "", "", `${formatNumber(chunkHashAllEstimate)}x`]] : []),
    row(hashNative, hashPortable, "portable"),
    row(hashPortable),
    row(scanOnly, chunkHash, "chunk + hash"),
    row(scanLarge, b3Large, "b3sum -t1"),
    row({ ...scanLarge, name: "  (same) vs copy", target: { text: `>= ${TARGET_STORE_VS_COPY_RATIO}x cp -r + sync`, met: storeVsCopy >= TARGET_STORE_VS_COPY_RATIO } }, cpLarge, "cp -r + sync"),
    ...(scanLargeOneThread ? [row(scanLargeOneThread, cpLarge, "cp -r + sync")] : []),
    ...(scanTmpfs ? [row(scanTmpfs, scanLarge, "on disk")] : []),
    row(scanSmallFiles, cpSmallFiles, "cp -r + sync"),
    row({ ...scanSmallFiles, name: "  (same) vs hash only", target: undefined }, b3SmallFiles, "b3sum -t1"),
    row(scanSmallMb, cpSmallMb, "cp -r + sync"),
    row(b3Large),
    row(b3SmallFiles),
    row(cpLarge),
    row(cpSmallFiles),
  ];
  if (rssFigures) rows.push(row(rssFigures.speed), row(rssFigures.peak));
  const finished = new Date();
  const command = `bun scripts/bench/engine.ts ${argv.join(" ")}`.trim();
  console.log("");
  console.log(`dsync engine benchmark — ${command}`);
  console.log(`${finished.toISOString()}, commit ${commit}, ${machine.cpuModel}, ${machine.cores} cores, Bun ${machine.bun}, BLAKE3 ${blake3BackendName}`);
  console.log(`data: ${formatBytes(data.largeBytes)} in ${data.largeFiles.length} large files, ${formatBytes(data.smallBytes)} in ${data.smallFiles.length} small files; medians of ${runs} runs; all reads from a warm page cache`);
  console.log(`load average: ${machine.loadAverage} at start, ${loadAverageText()} at end`);
  console.log("");
  console.log(formatTable(header, rows));
  if (options.markdown) {
    console.log("");
    console.log(formatMarkdownTable(header, rows));
  }
  if (options.json) {
    writeFileSync(
      options.json,
      JSON.stringify(
        { command, started: started.toISOString(), finished: finished.toISOString(), commit, machine, blake3: blake3BackendName, loadAverageEnd: loadAverageText(), data: { ...data, smallFiles: data.smallFiles.length, largeFiles: data.largeFiles.length }, figures },
        null,
        2,
      ),
    );
    log(`wrote ${options.json}`);
  }
}

async function jitWarmUp(buffer: Uint8Array): Promise<void> {
  const bytes = new Uint8Array(16 * MIB);
  new Xorshift128Plus("jit-warm-up").fill(new Uint32Array(bytes.buffer));
  let start = 0;
  while (start < bytes.length) {
    const length = findCutPoint(bytes, start, bytes.length, DEFAULT_CHUNKER_PARAMS, true);
    blake3(bytes.subarray(start, start + length));
    start += length;
  }
  buffer.fill(0);
}

/** Peak RSS of a child scanning one large file into a fresh store; undefined when skipped. */
async function measurePeakRss(options: Options, scratch: string): Promise<{ peak: Figure; speed: Figure } | undefined> {
  if (options.rss === "off") {
    log("peak RSS: skipped (--no-rss)");
    return undefined;
  }
  const sizeBytes = Math.round(options.rssGiB * GIB / 8) * 8;
  const dir = join(options.dataDir, `rss-${options.rssGiB}gib`);
  const file = join(dir, "one-large-file.bin");
  const present = existsSync(file) && statSync(file).size === sizeBytes && existsSync(`${dir}.done`);
  // Room for the file (unless kept from before), the store it is scanned into, and a margin.
  const needBytes = (present ? 0 : sizeBytes) + sizeBytes + 2 * GIB;
  const free = freeBytes(options.dataDir);
  if (free < needBytes) {
    const message = `peak RSS: needs ${formatBytes(needBytes)} free under ${options.dataDir}, has ${formatBytes(free)}`;
    if (options.rss === "on") throw new Error(message);
    log(`${message}: skipped`);
    return undefined;
  }
  if (!options.keep) {
    cleanupDirs.add(dir);
    cleanupDirs.add(`${dir}.done`);
  }
  if (!present) {
    removeDir(dir);
    removeDir(`${dir}.done`);
    log(`peak RSS: writing ${file} (${formatBytes(sizeBytes)})`);
    const t = performance.now();
    writeRandomFile(file, sizeBytes, `${options.seed}/rss`, new Uint8Array(4 * MIB));
    writeFileSync(`${dir}.done`, "");
    log(`    written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  warmPageCache([file], new Uint8Array(READ_BUFFER_BYTES));
  const storeDir = join(scratch, "rss-store");
  const peaks: number[] = [];
  const speeds: number[] = [];
  try {
    log(`peak RSS: child process scans ${formatBytes(sizeBytes)} into a fresh store; VmHWM polled every 20 ms and reported by the child at exit:`);
    for (let run = 0; run < options.runs; run++) {
      removeDir(storeDir);
      await syncAll();
      const r = await runWithPeakRss([process.execPath, import.meta.path, "--child-scan", file, storeDir, String(options.batchMiB)]);
      const report = JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildReport;
      if (report.bytes !== sizeBytes) throw new Error(`child scanned ${report.bytes} bytes, expected ${sizeBytes}`);
      const peak = Math.max(r.polledPeakBytes, report.vmHwmBytes);
      peaks.push(peak / 1e6);
      speeds.push(mbPerSecond(report.bytes, report.seconds));
      log(`    run ${run + 1}: peak ${formatNumber(peak / 1e6)} MB (polled ${formatNumber(r.polledPeakBytes / 1e6)} MB over ${r.polls} polls, child ${formatNumber(report.vmHwmBytes / 1e6)} MB), ${report.chunks} chunks, ${formatNumber(speeds[run]!)} MB/s`);
      removeDir(storeDir);
    }
  } finally {
    removeDir(storeDir);
    if (!options.keep) {
      removeDir(dir);
      removeDir(`${dir}.done`);
      log(`peak RSS: removed ${file} (--keep keeps it)`);
    }
  }
  const speed: Figure = { name: `scan -> store, one ${formatBytes(sizeBytes)} file`, unit: "MB/s", runs: speeds, median: median(speeds) };
  const peak: Figure = {
    name: `peak RSS (max of runs), one ${formatBytes(sizeBytes)} file -> store`,
    unit: "MB",
    runs: peaks,
    median: Math.max(...peaks),
    summary: "max",
  };
  return { peak, speed };
}

process.on("SIGINT", () => {
  cleanUp();
  process.exit(130);
});

main()
  .then(cleanUp)
  .catch((error: unknown) => {
    cleanUp();
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  });
