// What only the PostgreSQL store has: schema steps recorded in schema_migrations and a newer
// schema refused, several stores opening an empty database at once, and a server that goes
// away or stops answering (MetadataUnavailableError, in bounded time: the server's timeouts, and
// the client's own timer when the server is frozen) and comes back (the same store answers
// again, no reopen).
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MetadataSchemaTooNewError } from "../../src/node/metadata-records.ts";
import { MetadataUnavailableError } from "../../src/node/metadata-unavailable.ts";
import { POSTGRES_SCHEMA_VERSION, PostgresMetadataStore, STAT_ESTIMATE_ROWS_MIN, redactedUrl } from "../../src/node/postgres-metadata-store.ts";
import { newVersion } from "../helpers/metadata-conformance.ts";
import { waitFor } from "../helpers/wait-for.ts";
import { DROP_DATABASES_TIMEOUT_MS, dropTestDatabases, freshDatabase, startOwnCluster, withConnection, withDatabase } from "../helpers/postgres.ts";

afterAll(async () => {
  await dropTestDatabases();
}, DROP_DATABASES_TIMEOUT_MS);

test("an empty database gets every schema step, each recorded once, even with several stores (connections) opening it at once", async () => {
  const url = await freshDatabase();
  const stores = await Promise.all([0, 1, 2, 3, 4].map(() => PostgresMetadataStore.open(url, { maxConnections: 2 })));
  try {
    const rows = await withConnection(url, (sql) => sql`SELECT version, description FROM schema_migrations ORDER BY version`);
    expect(rows.map((r: { version: number }) => r.version)).toEqual(Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
    expect((await stores[3]!.stat()).schemaVersion).toBe(POSTGRES_SCHEMA_VERSION);
  } finally {
    for (const store of stores) await store.close();
  }
});

test("a schema-1 database is upgraded to the Raft tables, every row kept; a folder made eventual can become strong", async () => {
  const url = await freshDatabase();
  await withConnection(url, (sql) => sql.unsafe(readFileSync(join(import.meta.dir, "../fixtures/postgres-schema-1.sql"), "utf8")).simple());
  const rowsOf = (table: string) => withConnection(url, (sql) => sql.unsafe(`SELECT * FROM ${table} ORDER BY 1, 2`));
  const before = { meta: await rowsOf("meta"), folders: await rowsOf("folders"), versions: await rowsOf("versions"), checked: await rowsOf("checked_nodes") };
  const store = await PostgresMetadataStore.open(url);
  try {
    expect((await store.stat()).schemaVersion).toBe(POSTGRES_SCHEMA_VERSION);
    expect(await store.getMeta("node_id")).toBe("pgfixture0000001");
    expect((await store.listVersions("photos")).map((v) => [v.sequence, v.message])).toEqual([
      [2, "second"],
      [1, "first"],
    ]);
    expect(await store.loadRaft()).toBeUndefined();
    await store.saveRaft({ hardState: { term: 1, vote: null, commit: 1 }, entries: [{ term: 1, index: 1, kind: "normal", data: new Uint8Array([0, 1, 0]) }] });
    expect((await store.loadRaft())!.entries[0]!.data).toEqual(new Uint8Array([0, 1, 0]));
  } finally {
    await store.close();
  }
  expect({ meta: await rowsOf("meta"), folders: await rowsOf("folders"), versions: await rowsOf("versions"), checked: await rowsOf("checked_nodes") }).toEqual(before);
  const steps = await withConnection(url, (sql) => sql`SELECT version FROM schema_migrations ORDER BY version`);
  expect(steps.map((r: { version: number }) => r.version)).toEqual(Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
  const again = await PostgresMetadataStore.open(url);
  try {
    await again.setFolderMode("split", "strong", 1700000200000);
    expect(await again.getFolder("split")).toMatchObject({ mode: "strong", keepDays: 2.5, createdMs: 1700000100000, updatedMs: 1700000200000 });
  } finally {
    await again.close();
  }
});

test("a database at a newer schema is refused, naming both schemas, and left as it is", async () => {
  const url = await freshDatabase();
  const first = await PostgresMetadataStore.open(url);
  await first.ensureFolder("f", 1);
  await first.close();
  await withConnection(url, (sql) => sql`INSERT INTO schema_migrations (version, description, applied_ms) VALUES (${POSTGRES_SCHEMA_VERSION + 1}, 'from the future', 1)`);
  const error = await PostgresMetadataStore.open(url).catch((e) => e);
  expect(error).toBeInstanceOf(MetadataSchemaTooNewError);
  expect(error.message).toContain(`schema ${POSTGRES_SCHEMA_VERSION + 1}`);
  expect(error.message).toContain(`(${POSTGRES_SCHEMA_VERSION})`);
  const folders = await withConnection(url, (sql) => sql`SELECT name FROM folders`);
  expect(folders.map((r: { name: string }) => r.name)).toEqual(["f"]);
});

test("a database that does not exist, or a server that is not there, is MetadataUnavailableError at open, quickly", async () => {
  const started = Date.now();
  // A port nothing listens on: connection refused.
  const refused = await PostgresMetadataStore.open("postgres://postgres@127.0.0.1:1/x", { connectTimeoutMs: 2000 }).catch((e) => e);
  expect(refused).toBeInstanceOf(MetadataUnavailableError);
  expect(refused.message).toStartWith("metadata store unavailable: postgres://postgres@127.0.0.1:1/x");
  expect(Date.now() - started).toBeLessThan(10_000);
  const absent = await freshDatabase().then((url) => withDatabase(url, "dsync_no_such_database"));
  const missing = await PostgresMetadataStore.open(absent).catch((e) => e);
  expect(missing).toBeInstanceOf(Error);
  expect(missing.message).toContain("dsync_no_such_database");
});

test("a password never shows in the location", () => {
  expect(redactedUrl("postgres://dsync:s3cret@db.example:5432/meta")).toBe("postgres://dsync:***@db.example:5432/meta");
  expect(redactedUrl("postgres://dsync@db.example/meta")).toBe("postgres://dsync@db.example/meta");
});

test("the server stopped under an open store: calls fail with MetadataUnavailableError in bounded time, then work again once it is back", async () => {
  const cluster = startOwnCluster();
  try {
    const store = await PostgresMetadataStore.open(cluster.url, { maxConnections: 2, connectTimeoutMs: 2000, queryTimeoutMs: 3000 });
    try {
      await store.ensureFolder("f", 1);
      const a = newVersion();
      await store.commitVersions("f", null, a.id, [a], 2);
      cluster.halt();
      for (const call of [() => store.getFolder("f"), () => store.commitVersions("f", a.id, a.id, [], 3), () => store.listFolders()]) {
        const started = Date.now();
        const error = await call().catch((e) => e);
        expect(error).toBeInstanceOf(MetadataUnavailableError);
        expect(error.message).toStartWith(`metadata store unavailable: ${cluster.url}`);
        expect(Date.now() - started).toBeLessThan(10_000);
      }
      cluster.start();
      // The pool reconnects by itself: the first call after the restart may still see the old
      // connection's end, the next ones answer.
      let folder;
      for (let i = 0; i < 50 && folder === undefined; i++) {
        folder = await store.getFolder("f").catch((e) => {
          if (!(e instanceof MetadataUnavailableError)) throw e;
          return undefined;
        });
        if (folder === undefined) await Bun.sleep(100);
      }
      expect(folder?.head).toEqual(a.id);
      const b = newVersion({ parents: [a.id] });
      await store.commitVersions("f", a.id, b.id, [b], 4);
      expect((await store.getVersion("f", b.id))!.sequence).toBe(2);
    } finally {
      await store.close();
    }
  } finally {
    cluster.remove();
  }
}, 60_000);

test("a statement that runs past the query timeout is cut off by the server and reported unavailable", async () => {
  const url = await freshDatabase();
  const store = await PostgresMetadataStore.open(url, { queryTimeoutMs: 500 });
  try {
    await store.ensureFolder("f", 1);
    // Another session holds the folder's row: the commit waits for its lock past the timeout.
    const error = await withConnection(url, async (sql) =>
      sql.begin(async (tx) => {
        await tx`SELECT 1 FROM folders WHERE name = 'f' FOR UPDATE`;
        const started = Date.now();
        const v = newVersion();
        const failed = await store.commitVersions("f", null, v.id, [v], 2).catch((e) => e);
        expect(Date.now() - started).toBeLessThan(5_000);
        return failed;
      }),
    );
    expect(error).toBeInstanceOf(MetadataUnavailableError);
    expect((await store.getFolder("f"))!.head).toBeNull();
  } finally {
    await store.close();
  }
});

test("integrityCheck names rows that contradict each other, written behind the store's back", async () => {
  const url = await freshDatabase();
  const store = await PostgresMetadataStore.open(url);
  try {
    await store.ensureFolder("f", 1);
    const a = newVersion();
    await store.commitVersions("f", null, a.id, [a], 2);
    expect(await store.integrityCheck()).toBe("ok");
    await withConnection(url, async (sql) => {
      await sql`UPDATE folders SET sequence_high = 0`;
      await sql`INSERT INTO checked_nodes (id, kind, level) VALUES (${new Uint8Array(32).fill(7)}, 'file', 0)`;
    });
    const found = await store.integrityCheck();
    expect(found).toContain("1 version(s) have a sequence above their folder's highest");
    expect(found).toContain("1 completeness mark(s) lack their summary");
  } finally {
    await store.close();
  }
});

test("a server that stops answering (its processes stopped) fails a call by the client's own timer, and the store recovers", async () => {
  const cluster = startOwnCluster();
  const postmaster = Number(readFileSync(join(cluster.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
  // The postmaster and its children (the backends, the checkpointer, ...), from /proc.
  const processes = () => [
    postmaster,
    ...readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name))
      .filter((pid) => {
        try {
          // Field 4 of /proc/PID/stat is the parent's pid; the name before it is in parentheses.
          return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]) === postmaster;
        } catch {
          return false;
        }
      })
      .map(Number),
  ];
  const signal = (name: "SIGSTOP" | "SIGCONT") => {
    for (const pid of processes()) process.kill(pid, name);
  };
  const store = await PostgresMetadataStore.open(cluster.url, { maxConnections: 2, connectTimeoutMs: 1000, queryTimeoutMs: 1000 });
  try {
    await store.ensureFolder("f", 1);
    signal("SIGSTOP");
    try {
      const started = Date.now();
      const error = await store.getFolder("f").catch((e) => e);
      const tookMs = Date.now() - started;
      expect(error).toBeInstanceOf(MetadataUnavailableError);
      expect(error.message).toContain("got no answer within 6000 ms");
      expect(tookMs).toBeGreaterThanOrEqual(5_500);
      expect(tookMs).toBeLessThan(15_000);
    } finally {
      signal("SIGCONT");
    }
    await waitFor("the store to answer again", async () => (await store.getFolder("f").catch(() => undefined))?.name, (name) => name === "f");
  } finally {
    await store.close();
    cluster.remove();
  }
}, 60_000);

test("stat counts a small table exactly and a large one by the planner's estimate, without reading it", async () => {
  const url = await freshDatabase();
  const store = await PostgresMetadataStore.open(url);
  try {
    const rows = STAT_ESTIMATE_ROWS_MIN + 20_000;
    await withConnection(url, async (sql) => {
      await sql.unsafe(`INSERT INTO checked_nodes (id, kind, level, size_bytes) SELECT sha256(int4send(n)), 'file', 0, 1 FROM generate_series(1, ${rows}) AS n`);
      await sql`ANALYZE checked_nodes`;
      // Rows deleted after ANALYZE: an exact count sees them gone, the estimate does not yet.
      await sql`DELETE FROM checked_nodes WHERE id IN (SELECT id FROM checked_nodes LIMIT 10000)`;
    });
    await store.ensureFolder("f", 1);
    const stat = await store.stat();
    expect(stat.folders).toBe(1);
    expect(stat.versions).toBe(0);
    // The estimate, from the ANALYZE before the delete (within ANALYZE's sampling error).
    expect(Math.abs(stat.checkedNodes - rows)).toBeLessThan(rows * 0.02);
    expect(stat.checkedNodes).toBeGreaterThan(rows - 10_000);
  } finally {
    await store.close();
  }
}, 60_000);

test("close lets the writes already made land (a scrub position saved at stop), then closes", async () => {
  const url = await freshDatabase();
  const store = await PostgresMetadataStore.open(url, { maxConnections: 2 });
  // Not awaited, as the scrub's save at stop is not: close comes right behind them.
  const writes = Array.from({ length: 40 }, (_, i) => store.setMeta(`scrub_position_${i}`, `${i}`.repeat(64)));
  const outcomes = Promise.allSettled(writes);
  await store.close();
  expect((await outcomes).map((o) => o.status)).toEqual(writes.map(() => "fulfilled"));
  await expect(store.getMeta("scrub_position_0")).rejects.toThrow("is closed");
  const rows = await withConnection(url, (sql) => sql`SELECT COUNT(*) AS n FROM meta WHERE key LIKE 'scrub_position_%'`);
  expect(Number(rows[0].n)).toBe(40);
});
