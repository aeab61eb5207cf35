// Helpers for the push benchmark (scripts/bench/push.ts): its data sets, the dsync node and the
// rsync daemon it runs against, and timed commands.
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { formatBytes, Xorshift128Plus, writeRandomFile, MIB } from "./lib.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const KIB = 1024;

// ---------------------------------------------------------------------------------------------
// Commands

export interface Timed {
  seconds: number;
  /** CPU time (user + system) of the process itself. */
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, timed from spawn to exit; throws on a non-zero exit. */
export async function runTimed(argv: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Timed> {
  const started = performance.now();
  const proc = Bun.spawn([...argv], { cwd: options.cwd ?? REPO_ROOT, env: options.env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}: ${(stderr || stdout).trim().slice(0, 800)}`);
  const cpuSeconds = Number(proc.resourceUsage()?.cpuTime.total ?? 0n) / 1e6;
  return { seconds, cpuSeconds, stdout, stderr };
}

/** The environment for dsync children: no DSYNC_* settings leak in from the caller. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("DSYNC_")) env[key] = value;
  return env;
}

/** How dsync is run: the compiled binary when there is one (what users run), else bun on the sources. */
export interface DsyncCommand {
  argv: string[];
  label: string;
  /** Set when the binary is older than the newest source file. */
  staleNote?: string;
}

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(path));
    else if (entry.isFile() && entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Compiles the committed sources (HEAD, without uncommitted edits in the working tree) the way
 * `npm run build` does, into `dataDir/build/`; reuses an earlier build of the same commit.
 */
export async function buildDsyncAtHead(dataDir: string, log: (line: string) => void): Promise<DsyncCommand> {
  const commit = (await runTimed(["git", "rev-parse", "HEAD"])).stdout.trim();
  const buildDir = join(dataDir, "build");
  const binary = join(buildDir, `dsync-${commit.slice(0, 12)}`);
  if (!existsSync(binary)) {
    // Keep one build: earlier commits' binaries are 100 MiB each.
    if (existsSync(buildDir)) for (const name of readdirSync(buildDir)) if (name.startsWith("dsync-")) rmSync(join(buildDir, name), { force: true });
    const tree = join(buildDir, `tree-${commit.slice(0, 12)}`);
    rmSync(tree, { recursive: true, force: true });
    mkdirSync(tree, { recursive: true });
    log(`build: compiling ${commit.slice(0, 12)} into ${binary}`);
    await runTimed(["sh", "-c", `git archive --format=tar ${commit} | tar -x -C '${tree}'`]);
    symlinkSync(join(REPO_ROOT, "node_modules"), join(tree, "node_modules"));
    // package.json's own build script (its flags and every entry point, the chunk worker's
    // included), with the output put here instead of dist/dsync.
    const script = (JSON.parse(readFileSync(join(tree, "package.json"), "utf8")) as { scripts: { build: string } }).scripts.build;
    const words = script.trim().split(/\s+/);
    const outfile = words.indexOf("--outfile");
    if (words[0] !== "bun" || words[1] !== "build" || outfile < 0) throw new Error(`package.json's build script is not "bun build ... --outfile FILE ...": ${script}`);
    words[outfile + 1] = binary;
    await runTimed([process.execPath, ...words.slice(1)], { cwd: tree });
    rmSync(tree, { recursive: true, force: true });
  }
  return { argv: [binary], label: `compiled binary of commit ${commit.slice(0, 12)} (bun build --compile, as npm run build)` };
}

export function resolveDsync(choice: "auto" | "binary" | "source", binaryPath = join(REPO_ROOT, "dist/dsync")): DsyncCommand {
  const useBinary = choice === "binary" || (choice === "auto" && existsSync(binaryPath));
  if (!useBinary) return { argv: [process.execPath, join(REPO_ROOT, "cli/main.ts")], label: `bun cli/main.ts (bun ${Bun.version}, from source)` };
  if (!existsSync(binaryPath)) throw new Error(`${binaryPath} does not exist (run npm run build)`);
  const binaryMs = statSync(binaryPath).mtimeMs;
  const sourceMs = Math.max(newestMtimeMs(join(REPO_ROOT, "src")), newestMtimeMs(join(REPO_ROOT, "cli")));
  const staleNote = sourceMs > binaryMs ? `${binaryPath} is older than the newest file in src/ or cli/ (run npm run build to measure the current sources)` : undefined;
  return { argv: [binaryPath], label: `compiled binary ${binaryPath.startsWith(REPO_ROOT) ? binaryPath.slice(REPO_ROOT.length + 1) : binaryPath}`, staleNote };
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A free loopback port (a tiny race with whoever binds it next; fine on a benchmark machine). */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

async function waitForOutput(proc: Subprocess, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<{ match: RegExpExecArray; output: () => string }> {
  let output = "";
  const decoder = new TextDecoder();
  const match = await new Promise<RegExpExecArray>((resolveMatch, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms: ${output}`)), timeoutMs);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        output += decoder.decode(value, { stream: true });
        const found = pattern.exec(output);
        if (found) {
          clearTimeout(timer);
          resolveMatch(found);
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
  return { match, output: () => output };
}

export interface Service {
  port: number;
  pid: number;
  /** CPU seconds used so far by the process, its threads and the children it has reaped. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime + cutime + cstime from /proc/PID/stat, in seconds (10 ms resolution). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return ticks / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
export async function stopProcess(proc: Subprocess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

/**
 * `dsync serve` on a free loopback port (or `options.listen`) over `dataDir` (created fresh when
 * `fresh`), with `options.args` added to its command line.
 */
export async function startDsyncNode(dsync: DsyncCommand, dataDir: string, fresh = true, options: { listen?: string; args?: string[] } = {}): Promise<Service & { url: string }> {
  if (fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const proc = Bun.spawn([...dsync.argv, "serve", "--data", dataDir, "--listen", options.listen ?? "127.0.0.1:0", ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const { match } = await waitForOutput(proc, /listening on (http:\/\/127\.0\.0\.1:(\d+))/, "dsync serve");
  return { url: match[1]!, port: Number(match[2]), pid: proc.pid, cpuSeconds: () => processCpuSeconds(proc.pid), stop: () => stopProcess(proc) };
}

/**
 * An rsync daemon on a free loopback port, with one writable module `bench` over `moduleDir`.
 * Runs as the current user; as root it keeps root's ids so -a can set owners.
 */
export async function startRsyncDaemon(workDir: string, moduleDir: string): Promise<Service> {
  mkdirSync(workDir, { recursive: true });
  mkdirSync(moduleDir, { recursive: true });
  const port = freePort();
  const config = join(workDir, "rsyncd.conf");
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    config,
    [
      `pid file = ${join(workDir, "rsyncd.pid")}`,
      `log file = ${join(workDir, "rsyncd.log")}`,
      "use chroot = no",
      "max connections = 8",
      ...(asRoot ? ["uid = root", "gid = root"] : []),
      "",
      "[bench]",
      `  path = ${moduleDir}`,
      "  read only = no",
      "  list = yes",
      "",
    ].join("\n"),
  );
  rmSync(join(workDir, "rsyncd.pid"), { force: true });
  const proc = Bun.spawn(["rsync", "--daemon", "--no-detach", `--config=${config}`, `--port=${port}`, "--address=127.0.0.1"], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  // The daemon prints nothing when it is up: poll until it answers a module listing.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`rsync --daemon exited with ${proc.exitCode}: ${await new Response(proc.stderr as ReadableStream).text()}`);
    try {
      await runTimed(["rsync", `rsync://127.0.0.1:${port}/`]);
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stopProcess(proc);
        throw new Error(`rsync --daemon did not answer on port ${port}: ${(error as Error).message}`);
      }
      await Bun.sleep(100);
    }
  }
  return { port, pid: proc.pid, cpuSeconds: () => processCpuSeconds(proc.pid), stop: () => stopProcess(proc) };
}

// ---------------------------------------------------------------------------------------------
// Generated data
//
// Random bytes come from the seeded xorshift128+ in lib.ts. Text files are words drawn from a
// seeded vocabulary, so they compress about as well as source code or logs (~3:1 with zstd);
// both are written through one reused buffer.

const VOCABULARY_SIZE = 4096;

function buildVocabulary(seed: string): Uint8Array[] {
  const rng = new Xorshift128Plus(`${seed}/vocabulary`);
  const scratch = new Uint32Array(2);
  const words: Uint8Array[] = [];
  for (let i = 0; i < VOCABULARY_SIZE; i++) {
    rng.fill(scratch, 2);
    const length = 2 + (scratch[0]! % 9);
    const word = new Uint8Array(length);
    let bits = scratch[1]!;
    for (let j = 0; j < length; j++) {
      if (j % 6 === 5) {
        rng.fill(scratch, 1);
        bits = scratch[0]!;
      }
      word[j] = 97 + ((bits >>> 0) % 26);
      bits = Math.floor(bits / 26);
    }
    words.push(word);
  }
  return words;
}

const vocabularies = new Map<string, Uint8Array[]>();

/** Writes `sizeBytes` of seeded word text to `path` through `buffer`. */
export function writeTextFile(path: string, sizeBytes: number, seed: string, buffer: Uint8Array, vocabularySeed = "dsync-push-bench"): void {
  let words = vocabularies.get(vocabularySeed);
  if (!words) vocabularies.set(vocabularySeed, (words = buildVocabulary(vocabularySeed)));
  const rng = new Xorshift128Plus(seed);
  const picks = new Uint32Array(1024);
  let pick = picks.length;
  const fd = openSync(path, "w");
  try {
    let written = 0;
    let filled = 0;
    let onLine = 0;
    while (written + filled < sizeBytes) {
      if (pick === picks.length) {
        rng.fill(picks);
        pick = 0;
      }
      const r = picks[pick++]!;
      const word = words[r % VOCABULARY_SIZE]!;
      const room = Math.min(buffer.length - filled, sizeBytes - written - filled);
      const n = Math.min(word.length, room);
      buffer.set(n === word.length ? word : word.subarray(0, n), filled);
      filled += n;
      if (filled < buffer.length && written + filled < sizeBytes) {
        onLine++;
        buffer[filled++] = onLine >= 8 + ((r >>> 12) & 7) ? 10 : 32;
        if (buffer[filled - 1] === 10) onLine = 0;
      }
      if (filled === buffer.length) {
        writeAll(fd, buffer, filled);
        written += filled;
        filled = 0;
      }
    }
    if (filled > 0) writeAll(fd, buffer, filled);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, buffer: Uint8Array, length: number): void {
  let done = 0;
  while (done < length) done += writeSync(fd, buffer, done, length - done);
}

interface TreeManifest {
  format: number;
  key: string;
  files: number;
  bytes: number;
}

const TREE_FORMAT = 1;

/** Returns `root` if a complete data set with this key is there, else builds it with `build`. */
function cachedTree(root: string, key: string, log: (line: string) => void, build: (root: string) => { files: number; bytes: number }): TreeManifest {
  const manifestPath = `${root}.manifest.json`;
  if (existsSync(manifestPath) && existsSync(root)) {
    try {
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as TreeManifest;
      if (manifest.format === TREE_FORMAT && manifest.key === key) return manifest;
    } catch {
      // Regenerate.
    }
  }
  rmSync(manifestPath, { force: true });
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const started = performance.now();
  log(`data: generating ${root}`);
  const { files, bytes } = build(root);
  log(`data: ${files} files, ${formatBytes(bytes)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const manifest: TreeManifest = { format: TREE_FORMAT, key, files, bytes };
  writeFileSync(manifestPath, JSON.stringify(manifest));
  return manifest;
}

function uniform(rng: Xorshift128Plus, scratch: Uint32Array, low: number, high: number): number {
  rng.fill(scratch, 1);
  return low + Math.floor((scratch[0]! / 0x100000000) * (high - low + 1));
}

export interface TreeInfo {
  root: string;
  files: number;
  bytes: number;
}

/**
 * The mixed tree of case 1, scaled to `sizeMiB` (1024 = 1 GiB): three quarters in three large
 * random files, a quarter in ~8 000 x (sizeMiB / 1024) small files of 1-64 KiB under 16 x 16
 * directories, every other one word text (compressible) and the rest random.
 */
export function ensureMixedTree(dataDir: string, sizeMiB: number, log: (line: string) => void): TreeInfo {
  const root = join(dataDir, `mixed-${sizeMiB}mib`);
  const largeEach = Math.floor((sizeMiB * MIB * 3) / 4 / 3 / 8) * 8;
  const smallCount = Math.max(16, Math.round((8000 * sizeMiB) / 1024));
  const manifest = cachedTree(root, `mixed/${sizeMiB}/${largeEach}/${smallCount}`, log, (dir) => {
    const buffer = new Uint8Array(4 * MIB);
    let bytes = 0;
    for (let i = 0; i < 3; i++) {
      mkdirSync(join(dir, "large"), { recursive: true });
      writeRandomFile(join(dir, "large", `big-${i}.bin`), largeEach, `push/mixed/large/${i}`, buffer);
      bytes += largeEach;
    }
    const rng = new Xorshift128Plus("push/mixed/sizes");
    const scratch = new Uint32Array(1);
    for (let n = 0; n < smallCount; n++) {
      const size = uniform(rng, scratch, 1 * KIB, 64 * KIB);
      const leaf = n % 256;
      const sub = join(dir, "small", `d${String(leaf >> 4).padStart(2, "0")}`, `e${String(leaf & 15).padStart(2, "0")}`);
      if (n < 256) mkdirSync(sub, { recursive: true });
      const name = `f${String(n).padStart(5, "0")}`;
      if (n % 2 === 0) writeTextFile(join(sub, `${name}.txt`), size, `push/mixed/small/${n}`, buffer);
      else writeRandomFile(join(sub, `${name}.bin`), size, `push/mixed/small/${n}`, buffer);
      bytes += size;
    }
    return { files: 3 + smallCount, bytes };
  });
  return { root, files: manifest.files, bytes: manifest.bytes };
}

/** The flat tree of case 3: `count` files of 1-8 KiB in 100 directories, half text, half random. */
export function ensureSmallFilesTree(dataDir: string, count: number, log: (line: string) => void): TreeInfo {
  const root = join(dataDir, `small-${count}`);
  const manifest = cachedTree(root, `small/${count}`, log, (dir) => {
    const buffer = new Uint8Array(64 * KIB);
    const rng = new Xorshift128Plus("push/small/sizes");
    const scratch = new Uint32Array(1);
    let bytes = 0;
    for (let n = 0; n < count; n++) {
      const sub = join(dir, `dir${String(n % 100).padStart(2, "0")}`);
      if (n < 100) mkdirSync(sub, { recursive: true });
      const size = uniform(rng, scratch, 1 * KIB, 8 * KIB);
      const name = `file${String(n).padStart(5, "0")}`;
      if (n % 2 === 0) writeTextFile(join(sub, `${name}.txt`), size, `push/small/${n}`, buffer);
      else writeRandomFile(join(sub, `${name}.bin`), size, `push/small/${n}`, buffer);
      bytes += size;
    }
    return { files: count, bytes };
  });
  return { root, files: manifest.files, bytes: manifest.bytes };
}

/** The large random file of case 2 (kept pristine; runs work on a copy). */
export function ensureEditBase(dataDir: string, sizeMiB: number, log: (line: string) => void): { path: string; bytes: number } {
  const root = join(dataDir, `edit-base-${sizeMiB}mib`);
  const bytes = sizeMiB * MIB;
  cachedTree(root, `edit/${sizeMiB}`, log, (dir) => {
    writeRandomFile(join(dir, "data.bin"), bytes, "push/edit/base", new Uint8Array(4 * MIB));
    return { files: 1, bytes };
  });
  return { path: join(root, "data.bin"), bytes };
}

/** Overwrites 1 KiB (or `length` bytes) in the middle of a file with seeded random bytes. */
export function editMiddle(path: string, seed: string, length = KIB): number {
  const size = statSync(path).size;
  const offset = Math.floor(size / 2 / 8) * 8;
  const bytes = new Uint8Array(length);
  new Xorshift128Plus(seed).fill(new Uint32Array(bytes.buffer), length / 4);
  const fd = openSync(path, "r+");
  try {
    let done = 0;
    while (done < length) done += writeSync(fd, bytes, done, length - done, offset + done);
  } finally {
    closeSync(fd);
  }
  return offset;
}

export interface ReleasePair {
  name: string;
  from: { version: string; dir: string; files: number; bytes: number; tarballBytes: number };
  to: { version: string; dir: string; files: number; bytes: number; tarballBytes: number };
}

function treeSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = treeSize(path);
      files += sub.files;
      bytes += sub.bytes;
    } else if (entry.isFile()) {
      files++;
      bytes += statSync(path).size;
    }
  }
  return { files, bytes };
}

/** Fetches `name@version` with `npm pack` (once; cached) and extracts it; returns the package directory. */
export async function ensureRelease(dataDir: string, name: string, version: string, log: (line: string) => void) {
  const safe = name.replace(/^@/, "").replace(/\//g, "-");
  const root = join(dataDir, "releases", `${safe}-${version}`);
  const packageDir = join(root, "package");
  const done = join(root, "extracted");
  if (!existsSync(done)) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    log(`data: npm pack ${name}@${version}`);
    const packed = await runTimed(["npm", "pack", `${name}@${version}`, "--pack-destination", root, "--silent"], { cwd: root });
    const tarball = join(root, packed.stdout.trim().split("\n").pop()!.trim());
    await runTimed(["tar", "xzf", tarball, "-C", root]);
    writeFileSync(done, `${tarball}\n`);
  }
  const tarball = readFileSync(done, "utf8").trim();
  return { version, dir: packageDir, ...treeSize(packageDir), tarballBytes: statSync(tarball).size };
}

export async function ensureReleasePair(dataDir: string, name: string, from: string, to: string, log: (line: string) => void): Promise<ReleasePair> {
  return { name, from: await ensureRelease(dataDir, name, from, log), to: await ensureRelease(dataDir, name, to, log) };
}

/** Makes `dir` hold exactly the contents of `source`, keeping the names in `keep` (the sync state). */
export function replaceContents(dir: string, source: string, keep: readonly string[] = [".dsync"]): void {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (!keep.includes(name)) rmSync(join(dir, name), { recursive: true, force: true });
  // A plain copy: new inodes and fresh mtimes, as when a release is unpacked over the old one.
  cpSync(source, dir, { recursive: true, preserveTimestamps: false });
}
