// Real PostgreSQL for tests: the cluster named by DSYNC_TEST_POSTGRES_URL (npm test and CI start
// one with scripts/postgres-test-cluster.sh), a fresh database per test on it, and a cluster of
// a test's own for the tests that stop and restart the server under a running node.
//
// A test that needs Postgres and finds no URL fails, saying how to start one: it never skips.
import { SQL, spawnSync } from "bun";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./processes.ts";

export const CLUSTER_SCRIPT = join(REPO_ROOT, "scripts/postgres-test-cluster.sh");

const HOW_TO =
  "DSYNC_TEST_POSTGRES_URL is not set: these tests need a real PostgreSQL. `npm test` starts one by itself; " +
  "for a single file: export DSYNC_TEST_POSTGRES_URL=$(scripts/postgres-test-cluster.sh start) " +
  "(needs initdb and pg_ctl: Debian's postgresql package), and scripts/postgres-test-cluster.sh stop afterwards";

/** The URL of the test cluster's maintenance database; throws (failing the test) when there is none. */
export function postgresTestUrl(): string {
  const url = process.env.DSYNC_TEST_POSTGRES_URL;
  if (!url) throw new Error(HOW_TO);
  return url;
}

/** `url` with another database name. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

const created: { admin: string; name: string }[] = [];

/** A new, empty database on the test cluster (UTF8); dropped by dropTestDatabases. Returns its URL. */
export async function freshDatabase(adminUrl = postgresTestUrl()): Promise<string> {
  const name = `dsync_test_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new SQL(adminUrl, { max: 1, connectionTimeout: 10 });
  try {
    await admin.unsafe(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
  } finally {
    await admin.close({ timeout: 1 });
  }
  created.push({ admin: adminUrl, name });
  return withDatabase(adminUrl, name);
}

/** How long an afterAll that drops a file's databases may take (each DROP DATABASE waits for a checkpoint). */
export const DROP_DATABASES_TIMEOUT_MS = 60_000;

/** Drops every database freshDatabase made (closing what still holds them), four at a time. */
export async function dropTestDatabases(): Promise<void> {
  const pending = created.splice(0);
  const dropOne = async ({ admin: adminUrl, name }: { admin: string; name: string }) => {
    const admin = new SQL(adminUrl, { max: 1, connectionTimeout: 10 });
    try {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch {
      // The cluster may be gone already (a test's own cluster, stopped); nothing to drop then.
    } finally {
      await admin.close({ timeout: 1 });
    }
  };
  const workers = Array.from({ length: 4 }, async () => {
    for (let next = pending.shift(); next; next = pending.shift()) await dropOne(next);
  });
  await Promise.all(workers);
}

/** Runs SQL on the database at `url` with a connection of its own (for a test's look behind the store). */
export async function withConnection<T>(url: string, run: (sql: SQL) => Promise<T>): Promise<T> {
  const sql = new SQL(url, { max: 1, connectionTimeout: 10 });
  try {
    return await run(sql);
  } finally {
    await sql.close({ timeout: 1 });
  }
}

/** A PostgreSQL cluster of a test's own, which the test may halt and start again. */
export interface OwnCluster {
  url: string;
  dir: string;
  /** Stops the server (fast shutdown: sessions are ended), keeping the cluster. */
  halt(): void;
  /** Starts it again on the same port. */
  start(): void;
  /** Stops it and deletes its folder. */
  remove(): void;
}

function cluster(command: string, dir: string): string {
  const result = spawnSync([CLUSTER_SCRIPT, command, dir], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`postgres-test-cluster.sh ${command} failed: ${result.stderr.toString()}`);
  return result.stdout.toString().trim();
}

/** Starts a cluster of the test's own (initdb, on a free port). Needs PostgreSQL installed: fails saying so otherwise. */
export function startOwnCluster(): OwnCluster {
  // The folder is the cluster's own (the postgres user must reach it when we run as root).
  const dir = mkdtempSync(join(tmpdir(), "dsync-pg-"));
  if (process.getuid?.() === 0) {
    const owner = spawnSync(["id", "-u", "postgres"], { stdout: "pipe" });
    const group = spawnSync(["id", "-g", "postgres"], { stdout: "pipe" });
    if (owner.exitCode === 0) chownSync(dir, Number(owner.stdout.toString()), Number(group.stdout.toString()));
  }
  const url = cluster("start", dir);
  return {
    url,
    dir,
    halt: () => void cluster("halt", dir),
    start: () => void cluster("start", dir),
    remove: () => {
      try {
        cluster("stop", dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
