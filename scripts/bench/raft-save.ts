// What a strong folder's commit pays its metadata store: saveRaft of one small entry and the
// hard state (what a Raft member persists before it acknowledges an append, or a single-member
// group before it commits), on SQLite and on PostgreSQL in one run; then one save of 64 entries
// (a follower catching up), and loadRaft of a 10 000-entry log (a restart).
//
//   bun scripts/bench/raft-save.ts [--saves N] [--postgres URL] [--data DIR]
//
// Each save is one transaction, durable when it resolves (SQLite WAL with synchronous=FULL,
// Postgres synchronous_commit=on). Postgres is the cluster at --postgres (a maintenance database
// URL: the run makes its own database there and drops it), else a throwaway cluster started with
// scripts/postgres-test-cluster.sh and removed at the end. SQLite's file goes under --data
// (default the system's temporary folder): put it on the disk a node would use.
import { SQL, spawnSync } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Entry } from "../../src/core/raft/types.ts";
import type { MetadataStore } from "../../src/node/metadata-store.ts";
import { PostgresMetadataStore } from "../../src/node/postgres-metadata-store.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { commandFlags, formatTable, loadAverageText, machineInfo, median } from "./lib.ts";

const REPO_ROOT = resolve(import.meta.dir, "../..");

function usage(message?: string): never {
  if (message) console.error(message);
  console.error("usage: bun scripts/bench/raft-save.ts [--saves N] [--postgres URL] [--data DIR]");
  process.exit(2);
}

let saves = 500;
let postgresAdmin: string | undefined;
let dataRoot = tmpdir();
for (const { flag, value, count } of commandFlags(process.argv.slice(2), usage)) {
  if (flag === "--saves") saves = count(10);
  else if (flag === "--postgres") postgresAdmin = value();
  else if (flag === "--data") dataRoot = value();
  else usage(`unknown flag ${flag}`);
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const scratch = mkdtempSync(join(dataRoot, "dsync-bench-raft-save-"));
let ownCluster: string | undefined;
if (!postgresAdmin) {
  ownCluster = mkdtempSync(join(tmpdir(), "dsync-bench-postgres-"));
  if (process.getuid?.() === 0) spawnSync(["chown", "postgres:", ownCluster]);
  const started = spawnSync([join(REPO_ROOT, "scripts/postgres-test-cluster.sh"), "start", ownCluster], { stdout: "pipe", stderr: "pipe" });
  if (started.exitCode !== 0) {
    console.error(`no PostgreSQL: ${started.stderr.toString()}(give one with --postgres URL)`);
    process.exit(1);
  }
  postgresAdmin = started.stdout.toString().trim();
}

const databaseName = `dsync_bench_raft_${process.pid}`;
async function freshDatabase(): Promise<string> {
  const admin = new SQL(postgresAdmin!, { max: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${databaseName}`);
  await admin.unsafe(`CREATE DATABASE ${databaseName} ENCODING 'UTF8' TEMPLATE template0`);
  await admin.close();
  const url = new URL(postgresAdmin!);
  url.pathname = `/${databaseName}`;
  return url.toString();
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A moveHead command is about this size: two ids, a version record, names. */
const COMMAND_BYTES = 400;
const command = () => crypto.getRandomValues(new Uint8Array(COMMAND_BYTES));

interface Figures {
  one: number[];
  batch64: number[];
  load10k: number[];
}

async function measure(store: MetadataStore): Promise<Figures> {
  let index = 0;
  const entry = (term: number): Entry => ({ term, index: ++index, kind: "normal", data: command() });
  const one: number[] = [];
  // The first ten warm the connection and the statement caches.
  for (let i = 0; i < saves + 10; i++) {
    const e = entry(1);
    const started = performance.now();
    await store.saveRaft({ entries: [e], hardState: { term: 1, vote: "aaaa000000000001", commit: e.index - 1 } });
    if (i >= 10) one.push(performance.now() - started);
  }
  const batch64: number[] = [];
  for (let i = 0; i < 50; i++) {
    const entries = Array.from({ length: 64 }, () => entry(1));
    const started = performance.now();
    await store.saveRaft({ entries, hardState: { term: 1, vote: "aaaa000000000001", commit: index - 64 } });
    batch64.push(performance.now() - started);
  }
  // A log of 10 000 entries after a snapshot, as a member that did not compact for a while.
  while (index < 10_001) {
    const entries = Array.from({ length: Math.min(4096, 10_001 - index) }, () => entry(1));
    await store.saveRaft({ entries });
  }
  const kept = index - 10_000;
  await store.compactRaft({ meta: { index: kept, term: 1, config: { voters: ["aaaa000000000001"] } }, data: new Uint8Array(1024) });
  const load10k: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const raft = await store.loadRaft();
    load10k.push(performance.now() - started);
    if (raft!.entries.length !== 10_000) throw new Error(`loaded ${raft!.entries.length} entries, not 10 000`);
  }
  return { one, batch64, load10k };
}

const results: { backend: string; figures: Figures }[] = [];
try {
  log(`saveRaft: ${saves} saves of one ${COMMAND_BYTES}-byte entry and the hard state, 50 of 64 entries, 5 loads of 10 000 entries, per backend`);
  const sqlite = SqliteMetadataStore.open(join(scratch, "metadata.sqlite"));
  results.push({ backend: "sqlite", figures: await measure(sqlite) });
  await sqlite.close();
  const postgres = await PostgresMetadataStore.open(await freshDatabase());
  results.push({ backend: "postgres", figures: await measure(postgres) });
  await postgres.close();
} finally {
  const admin = new SQL(postgresAdmin!, { max: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`).catch(() => {});
  await admin.close();
  if (ownCluster) {
    spawnSync([join(REPO_ROOT, "scripts/postgres-test-cluster.sh"), "stop", ownCluster]);
    rmSync(ownCluster, { recursive: true, force: true });
  }
  rmSync(scratch, { recursive: true, force: true });
}

const ms = (v: number) => v.toFixed(2);
const info = machineInfo();
console.log(`${info.cpuModel}, ${info.cores} cores, Linux ${info.kernel}, Bun ${info.bun}; load ${loadAverageText()}; SQLite under ${dataRoot}`);
console.log(
  formatTable(
    ["backend", "1 entry + hard state: median ms", "p90 ms", "64 entries: median ms", "loadRaft 10 000: median ms"],
    results.map(({ backend, figures }) => [backend, ms(median(figures.one)), ms(percentile(figures.one, 90)), ms(median(figures.batch64)), ms(median(figures.load10k))]),
  ),
);
