// Metadata benchmark: the node's metadata on PostgreSQL beside SQLite, in one run.
//
//   bun scripts/bench/metadata.ts [--commits N] [--pushes N] [--files N] [--postgres URL] [--data DIR]
//
// 1. Commit latency: N commits (default 300) straight into each MetadataStore, each one
//    commitVersions of one version moving the head (a transaction, durable when it resolves:
//    SQLite synchronous=FULL, Postgres synchronous_commit=on); the median and the 90th percentile.
// 2. No-change push: a tree of --files files (default 2000) pushed once to a real `dsync serve`
//    on each backend, then pushed again unchanged N times (default 15, --pushes): the median wall
//    time of `dsync push`, a whole process (scan from the stat cache, one "which do you lack?",
//    the commit).
//
// Postgres is the cluster at --postgres (a maintenance database URL: each run makes its own
// database there and drops it), else a throwaway cluster started with
// scripts/postgres-test-cluster.sh and removed at the end. Same machine, same disk for both.
import { spawnSync } from "bun";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SQL } from "bun";
import type { ObjectId } from "../../src/core/id.ts";
import type { MetadataStore } from "../../src/node/metadata-store.ts";
import { PostgresMetadataStore } from "../../src/node/postgres-metadata-store.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { commandFlags, formatTable, loadAverageText, machineInfo, median } from "./lib.ts";

const REPO_ROOT = resolve(import.meta.dir, "../..");
const CLI = [process.execPath, join(REPO_ROOT, "cli/main.ts")];

function usage(message?: string): never {
  if (message) console.error(message);
  console.error("usage: bun scripts/bench/metadata.ts [--commits N] [--pushes N] [--files N] [--postgres URL] [--data DIR]");
  process.exit(2);
}

let commits = 300;
let pushes = 15;
let files = 2000;
let postgresAdmin: string | undefined;
let dataRoot = tmpdir();
for (const { flag, value, count } of commandFlags(process.argv.slice(2), usage)) {
  if (flag === "--commits") commits = count(1);
  else if (flag === "--pushes") pushes = count(1);
  else if (flag === "--files") files = count(1);
  else if (flag === "--postgres") postgresAdmin = value();
  else if (flag === "--data") dataRoot = value();
  else usage(`unknown flag ${flag}`);
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const scratch = mkdtempSync(join(dataRoot, "dsync-bench-metadata-"));
let ownCluster: string | undefined;
if (!postgresAdmin) {
  // A folder of its own at the top of tmpdir: the postgres user (as root) must reach it.
  ownCluster = mkdtempSync(join(tmpdir(), "dsync-bench-postgres-"));
  if (process.getuid?.() === 0) spawnSync(["chown", "postgres:", ownCluster]);
  const started = spawnSync([join(REPO_ROOT, "scripts/postgres-test-cluster.sh"), "start", ownCluster], { stdout: "pipe", stderr: "pipe" });
  if (started.exitCode !== 0) {
    console.error(`no PostgreSQL: ${started.stderr.toString()}(give one with --postgres URL)`);
    process.exit(1);
  }
  postgresAdmin = started.stdout.toString().trim();
}

const databases: string[] = [];
async function freshDatabase(): Promise<string> {
  const name = `dsync_bench_${process.pid}_${databases.length}`;
  const admin = new SQL(postgresAdmin!, { max: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
  await admin.unsafe(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
  await admin.close();
  databases.push(name);
  const url = new URL(postgresAdmin!);
  url.pathname = `/${name}`;
  return url.toString();
}

function randomId(): ObjectId {
  return crypto.getRandomValues(new Uint8Array(32)) as ObjectId;
}

async function commitLatenciesMs(store: MetadataStore): Promise<number[]> {
  await store.ensureFolder("bench", Date.now());
  let head: ObjectId | null = null;
  const out: number[] = [];
  for (let i = 0; i < commits + 10; i++) {
    const id = randomId();
    const version = {
      id,
      root: randomId(),
      parents: head ? [head] : [],
      author: "bench",
      hlcWallMs: Date.now(),
      hlcCounter: i,
      message: "",
      origin: "push" as const,
      files: 1,
      totalBytes: 1,
      createdMs: Date.now(),
    };
    const started = performance.now();
    await store.commitVersions("bench", head, id, [version], Date.now());
    // The first ten warm the connection and the statement caches.
    if (i >= 10) out.push(performance.now() - started);
    head = id;
  }
  return out;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface NodeRun {
  process: ReturnType<typeof Bun.spawn>;
  url: string;
}

async function startNode(dataDir: string, metadata: string): Promise<NodeRun> {
  const env = { ...process.env } as Record<string, string>;
  for (const key of Object.keys(env)) if (key.startsWith("DSYNC_")) delete env[key];
  const proc = Bun.spawn([...CLI, "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--metadata", metadata], { env, stdout: "pipe", stderr: "pipe" });
  let output = "";
  const decoder = new TextDecoder();
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`dsync serve did not start: ${output}`)), 30_000);
    for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
      void (async () => {
        const reader = stream.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          output += decoder.decode(value);
          const match = /listening on (http:\/\/\S+)/.exec(output);
          if (match) {
            clearTimeout(timer);
            resolveUrl(match[1]!);
          }
        }
      })();
    }
    void proc.exited.then((code) => reject(new Error(`dsync serve exited with ${code}: ${output}`)));
  });
  return { process: proc, url };
}

function push(dir: string, remote: string): number {
  const env = { ...process.env } as Record<string, string>;
  for (const key of Object.keys(env)) if (key.startsWith("DSYNC_")) delete env[key];
  const started = performance.now();
  const result = spawnSync([...CLI, "push", dir, "--remote", remote, "--folder", "tree", "--no-progress", "--rebind"], { env, stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`dsync push failed: ${result.stderr.toString()}`);
  return ms;
}

async function noChangePushesMs(backend: string, metadata: string): Promise<number[]> {
  const dataDir = join(scratch, `node-${backend}`);
  const tree = join(scratch, `tree-${backend}`);
  for (let i = 0; i < files; i++) {
    const dir = join(tree, `d${i % 20}`);
    if (i < 20) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}.txt`), `file ${i} of the metadata benchmark\n`.repeat(1 + (i % 7)));
  }
  const node = await startNode(dataDir, metadata);
  try {
    push(tree, node.url);
    push(tree, node.url);
    const out: number[] = [];
    for (let i = 0; i < pushes; i++) out.push(push(tree, node.url));
    return out;
  } finally {
    node.process.kill("SIGTERM");
    await node.process.exited;
  }
}

const results: { backend: string; commit: number[]; push: number[] }[] = [];
try {
  log(`commit latency: ${commits} commits per backend`);
  const sqlite = SqliteMetadataStore.open(join(scratch, "bench.sqlite"));
  const sqliteCommits = await commitLatenciesMs(sqlite);
  await sqlite.close();
  const postgres = await PostgresMetadataStore.open(await freshDatabase());
  const postgresCommits = await commitLatenciesMs(postgres);
  await postgres.close();

  log(`no-change push: ${files} files, ${pushes} pushes per backend`);
  const sqlitePushes = await noChangePushesMs("sqlite", "sqlite");
  const postgresPushes = await noChangePushesMs("postgres", await freshDatabase());
  results.push({ backend: "sqlite", commit: sqliteCommits, push: sqlitePushes }, { backend: "postgres", commit: postgresCommits, push: postgresPushes });
} finally {
  const admin = new SQL(postgresAdmin!, { max: 1 });
  for (const name of databases) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  await admin.close();
  if (ownCluster) {
    spawnSync([join(REPO_ROOT, "scripts/postgres-test-cluster.sh"), "stop", ownCluster]);
    rmSync(ownCluster, { recursive: true, force: true });
  }
  rmSync(scratch, { recursive: true, force: true });
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
const [s, p] = results as [(typeof results)[0], (typeof results)[0]];
const machine = machineInfo();
console.log(`machine: ${machine.cpuModel} (${machine.cores} cores), load ${loadAverageText()}`);
console.log(
  formatTable(
    ["", "sqlite", "postgres", "postgres / sqlite"],
    [
      ["commit, median", ms(median(s.commit)), ms(median(p.commit)), `${(median(p.commit) / median(s.commit)).toFixed(2)}×`],
      ["commit, p90", ms(percentile(s.commit, 90)), ms(percentile(p.commit, 90)), `${(percentile(p.commit, 90) / percentile(s.commit, 90)).toFixed(2)}×`],
      [`no-change push of ${files} files, median`, ms(median(s.push)), ms(median(p.push)), `${(median(p.push) / median(s.push)).toFixed(2)}×`],
    ],
  ),
);
