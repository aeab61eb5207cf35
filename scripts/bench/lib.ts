// Shared helpers for the benchmarks: seeded test data, timing with medians, baseline commands,
// peak memory of a child process, and plain-text tables.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statfsSync, writeFileSync, writeSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;

// ---------------------------------------------------------------------------------------------
// Seeded random bytes
//
// xorshift128+ (Vigna, "Further scramblings of Marsaglia's xorshift generators", 2017) with its
// 64-bit words kept as pairs of 32-bit halves, so the loop stays in int32 arithmetic. Each step
// writes two 32-bit words (the low and high halves of the 64-bit output). ~1 GB/s under Bun;
// the output is incompressible for zstd, so the store keeps every chunk raw.

export class Xorshift128Plus {
  private s0h: number;
  private s0l: number;
  private s1h: number;
  private s1l: number;

  /** Seeds the state from a string with splitmix32-style mixing; the state is never all zero. */
  constructor(seed: string) {
    let h = 0x9e3779b9;
    for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x85ebca6b) ^ (h >>> 13);
    const next = () => {
      h = (h + 0x9e3779b9) | 0;
      let z = h;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.s0h = next();
    this.s0l = next();
    this.s1h = next();
    this.s1l = next() | 1;
  }

  /** Fills words[0..count) (count even or odd; an odd last step drops its high half). */
  fill(words: Uint32Array, count: number = words.length): void {
    let s0h = this.s0h;
    let s0l = this.s0l;
    let s1h = this.s1h;
    let s1l = this.s1l;
    for (let i = 0; i < count; i += 2) {
      // x = s0; y = s1; s0 = y
      let xh = s0h;
      let xl = s0l;
      const yh = s1h;
      const yl = s1l;
      s0h = yh;
      s0l = yl;
      // x ^= x << 23
      xh ^= (xh << 23) | (xl >>> 9);
      xl ^= xl << 23;
      // s1 = x ^ y ^ (x >> 17) ^ (y >> 26)
      s1h = xh ^ yh ^ (xh >>> 17) ^ (yh >>> 26);
      s1l = xl ^ yl ^ ((xl >>> 17) | (xh << 15)) ^ ((yl >>> 26) | (yh << 6));
      // output s1 + y
      const lo = (s1l >>> 0) + (yl >>> 0);
      words[i] = lo;
      if (i + 1 < count) words[i + 1] = s1h + yh + (lo > 0xffffffff ? 1 : 0);
    }
    this.s0h = s0h;
    this.s0l = s0l;
    this.s1h = s1h;
    this.s1l = s1l;
  }
}

/**
 * Writes `sizeBytes` seeded random bytes to `path` through one reused buffer (never the whole
 * file in memory). The same seed always gives the same bytes.
 */
export function writeRandomFile(path: string, sizeBytes: number, seed: string, buffer: Uint8Array): void {
  if (buffer.byteOffset % 4 !== 0 || buffer.length % 8 !== 0) throw new Error("writeRandomFile: buffer must be 8-byte sized and 4-byte aligned");
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4);
  const rng = new Xorshift128Plus(seed);
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "w");
  try {
    let written = 0;
    while (written < sizeBytes) {
      const n = Math.min(buffer.length, sizeBytes - written);
      rng.fill(words, Math.ceil(n / 4));
      let done = 0;
      while (done < n) done += writeSync(fd, buffer, done, n - done, written + done);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The data set

export interface DatasetSpec {
  /** Total size in MiB: three quarters in the large files, one quarter in the small-file tree. */
  sizeMiB: number;
  seed: string;
}

export interface Dataset {
  root: string;
  largeDir: string;
  largeFiles: string[];
  largeBytes: number;
  smallDir: string;
  smallFiles: string[];
  smallBytes: number;
}

const DATASET_FORMAT = 1;
const LARGE_FILE_COUNT = 4;
const SMALL_LEAF_DIRS = 64;
const MANIFEST_NAME = "manifest.json";

interface Manifest {
  format: number;
  sizeMiB: number;
  seed: string;
  largeFiles: string[];
  largeBytes: number;
  smallFiles: string[];
  smallBytes: number;
}

/**
 * Small-file sizes: 80% uniform in 4..16 KiB, 20% uniform in 16..64 KiB, a multiple of 8 bytes
 * apart from a seeded odd tail. Mean ~16 KiB, so 256 MiB is ~16 000 files.
 */
function smallFileSize(rng: Xorshift128Plus, scratch: Uint32Array): number {
  rng.fill(scratch, 2);
  const pick = scratch[0]! / 0x100000000;
  const within = scratch[1]! / 0x100000000;
  const [low, high] = pick < 0.8 ? [4 * 1024, 16 * 1024] : [16 * 1024, 64 * 1024];
  return Math.floor(low + within * (high - low));
}

/** Creates the data set under dataDir unless a complete one with the same spec is there; returns its layout. */
export function ensureDataset(dataDir: string, spec: DatasetSpec, log: (line: string) => void): Dataset {
  const root = join(dataDir, `engine-v${DATASET_FORMAT}-${spec.sizeMiB}mib-${spec.seed}`);
  const largeDir = join(root, "large");
  const smallDir = join(root, "small");
  const manifestPath = join(root, MANIFEST_NAME);
  if (existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, "utf8")) as Manifest;
      if (m.format === DATASET_FORMAT && m.sizeMiB === spec.sizeMiB && m.seed === spec.seed) {
        log(`data: reusing ${root}`);
        return {
          root,
          largeDir,
          largeFiles: m.largeFiles.map((f) => join(largeDir, f)),
          largeBytes: m.largeBytes,
          smallDir,
          smallFiles: m.smallFiles.map((f) => join(smallDir, f)),
          smallBytes: m.smallBytes,
        };
      }
    } catch {
      // Unreadable manifest: regenerate.
    }
  }
  const totalBytes = spec.sizeMiB * MIB;
  const largeEach = Math.floor((totalBytes * 3) / 4 / LARGE_FILE_COUNT / 8) * 8;
  const smallBudget = totalBytes - largeEach * LARGE_FILE_COUNT;
  requireFreeSpace(dataDir, totalBytes + 256 * MIB, "the data set");
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const started = performance.now();
  const buffer = new Uint8Array(4 * MIB);
  const largeNames: string[] = [];
  for (let i = 0; i < LARGE_FILE_COUNT; i++) {
    const name = `large-${i}.bin`;
    log(`data: writing ${join(largeDir, name)} (${formatBytes(largeEach)})`);
    writeRandomFile(join(largeDir, name), largeEach, `${spec.seed}/large/${i}`, buffer);
    largeNames.push(name);
  }
  log(`data: writing the small-file tree under ${smallDir} (${formatBytes(smallBudget)})`);
  const sizes = new Xorshift128Plus(`${spec.seed}/small-sizes`);
  const scratch = new Uint32Array(2);
  const smallNames: string[] = [];
  let smallBytes = 0;
  for (let n = 0; smallBytes < smallBudget; n++) {
    const size = Math.min(smallFileSize(sizes, scratch), smallBudget - smallBytes);
    // Two directory levels: 8 x 8 leaf directories, files spread round-robin.
    const leaf = n % SMALL_LEAF_DIRS;
    const name = `d${Math.floor(leaf / 8)}/e${leaf % 8}/f${String(n).padStart(6, "0")}.bin`;
    writeRandomFile(join(smallDir, name), size, `${spec.seed}/small/${n}`, buffer);
    smallNames.push(name);
    smallBytes += size;
  }
  const manifest: Manifest = {
    format: DATASET_FORMAT,
    sizeMiB: spec.sizeMiB,
    seed: spec.seed,
    largeFiles: largeNames,
    largeBytes: largeEach * LARGE_FILE_COUNT,
    smallFiles: smallNames,
    smallBytes,
  };
  writeFileSync(manifestPath, JSON.stringify(manifest));
  const seconds = (performance.now() - started) / 1000;
  log(`data: ${formatBytes(totalBytes)} in ${largeNames.length + smallNames.length} files written in ${seconds.toFixed(1)} s`);
  return ensureDataset(dataDir, spec, () => undefined);
}

/** Reads every file once through one buffer, so the timed runs all read from the page cache. */
export function warmPageCache(paths: readonly string[], buffer: Uint8Array): number {
  let total = 0;
  for (const path of paths) {
    const fd = openSync(path, "r");
    try {
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n === 0) break;
        total += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return total;
}

export function freeBytes(path: string): number {
  let dir = path;
  while (!existsSync(dir)) dir = dirname(dir);
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

export function requireFreeSpace(path: string, bytes: number, what: string): void {
  const free = freeBytes(path);
  if (free < bytes) throw new Error(`not enough free space under ${path} for ${what}: need ${formatBytes(bytes)}, have ${formatBytes(free)}`);
}

export function removeDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

export function listFilesRecursively(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFilesRecursively(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Timing

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Wall-clock seconds of an async or sync function. */
export async function timeSeconds(fn: () => unknown): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

/** Runs `setup` (untimed) and `fn` (timed) `runs` times; returns the seconds of each run. */
export async function repeat(
  runs: number,
  fn: (run: number) => unknown,
  hooks: { before?: (run: number) => unknown; after?: (run: number) => unknown } = {},
): Promise<number[]> {
  const seconds: number[] = [];
  for (let run = 0; run < runs; run++) {
    await hooks.before?.(run);
    seconds.push(await timeSeconds(() => fn(run)));
    await hooks.after?.(run);
  }
  return seconds;
}

/** Bytes per second as MB/s (10^6 bytes). */
export function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / seconds / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface CommandResult {
  seconds: number;
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and times it from spawn to exit; throws on a non-zero exit. */
export async function runTimed(argv: readonly string[], options: { cwd?: string } = {}): Promise<CommandResult> {
  const started = performance.now();
  const proc = Bun.spawn([...argv], { cwd: options.cwd, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const seconds = (performance.now() - started) / 1000;
  if (exitCode !== 0) throw new Error(`${argv.join(" ")} exited with ${exitCode}: ${stderr.trim().slice(0, 500)}`);
  return { seconds, exitCode, stdout, stderr };
}

/** `sync`: flushes every dirty page, so one timed run does not pay for the last one's writeback. */
export async function syncAll(): Promise<void> {
  await runTimed(["sync"]);
}

export function hasCommand(name: string): boolean {
  return Bun.which(name) !== null;
}

// ---------------------------------------------------------------------------------------------
// Peak memory of a child process

/** VmHWM (peak resident set) of a process in bytes, or undefined once it is gone. */
export function readVmHwmBytes(pid: number | "self"): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface PeakRssResult {
  /** The highest VmHWM seen while polling /proc/PID/status. */
  polledPeakBytes: number;
  polls: number;
  seconds: number;
  stdout: string;
}

/**
 * Runs a command and polls its VmHWM every `intervalMs` until it exits. VmHWM only grows, so the
 * last reading before exit misses at most what the final interval added; the child should also
 * report its own VmHWM just before exiting.
 */
export async function runWithPeakRss(argv: readonly string[], intervalMs = 20): Promise<PeakRssResult> {
  const started = performance.now();
  const proc = Bun.spawn([...argv], { stdout: "pipe", stderr: "inherit" });
  let peak = 0;
  let polls = 0;
  let done = false;
  const exited = proc.exited.then((code) => {
    done = true;
    return code;
  });
  const stdoutText = new Response(proc.stdout).text();
  while (!done) {
    const hwm = readVmHwmBytes(proc.pid);
    if (hwm !== undefined) {
      peak = Math.max(peak, hwm);
      polls++;
    }
    await Bun.sleep(intervalMs);
  }
  const code = await exited;
  const stdout = await stdoutText;
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}`);
  return { polledPeakBytes: peak, polls, seconds, stdout };
}

// ---------------------------------------------------------------------------------------------
// The machine

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memTotal: string;
  kernel: string;
  bun: string;
  loadAverage: string;
}

export function machineInfo(): MachineInfo {
  let kernel = "unknown";
  try {
    kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    // Not Linux.
  }
  return {
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memTotal: formatBytes(totalmem()),
    kernel,
    bun: Bun.version,
    loadAverage: loadAverageText(),
  };
}

export function loadAverageText(): string {
  return loadavg()
    .map((v) => v.toFixed(2))
    .join(" ");
}

/** MemAvailable from /proc/meminfo in bytes, or undefined where there is none. */
export function availableMemoryBytes(): number | undefined {
  try {
    const match = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export async function gitCommit(cwd: string): Promise<string> {
  try {
    const head = (await runTimed(["git", "rev-parse", "--short=12", "HEAD"], { cwd })).stdout.trim();
    return head;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function formatBytes(bytes: number): string {
  if (bytes >= GIB) return `${(bytes / GIB).toFixed(bytes % GIB === 0 ? 0 : 2)} GiB`;
  if (bytes >= MIB) return `${(bytes / MIB).toFixed(bytes % MIB === 0 ? 0 : 1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** A number with about three significant digits, grouped by thousands when large. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return Math.round(value).toLocaleString("en-US");
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A plain-text table with a header row; the first column aligns left, the others right. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The same table as Markdown. */
export function formatMarkdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

/**
 * The flags of a command line, one at a time: `value()` takes the argument after the flag,
 * `count(min)` takes it as a whole number of at least `min`; both call `usage` when it is missing
 * or wrong.
 */
export function* commandFlags(argv: readonly string[], usage: (message?: string) => never): Generator<{ flag: string; value: () => string; count: (min: number) => number }> {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => argv[++i] ?? usage(`${flag} needs a value`);
    const count = (min: number) => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < min) usage(`${flag} needs a whole number >= ${min}`);
      return n;
    };
    yield { flag, value, count };
  }
}
