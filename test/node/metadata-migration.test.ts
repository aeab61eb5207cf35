// The SQLite metadata's schema steps (sqlite-metadata-store.ts, MIGRATIONS): a metadata.sqlite
// written by an earlier release (hand-written fixtures of its exact tables and rows) opens and
// keeps its folders, heads, versions and node id; each step runs in one transaction with its
// version, so a step that fails changes nothing; a schema newer than the code knows is refused
// with a clear error, and the file is left as it was.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { idToHex } from "../../src/core/id.ts";
import { MetadataSchemaTooNewError } from "../../src/node/metadata-records.ts";
import { openNode } from "../../src/assemble.ts";
import { MIGRATIONS, migrateSqliteMetadata, SQLITE_SCHEMA_VERSION, SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { cleanupTempDirs, REPO_ROOT, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const hex = (c: string) => c.repeat(64);

/** A data folder whose metadata.sqlite is the fixture's SQL, as the release that wrote it left it. */
function dataFolderFrom(fixture: string): { dataDir: string; path: string } {
  const dataDir = tempDir("dsync-migration-");
  const path = join(dataDir, "metadata.sqlite");
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode=WAL;");
  db.exec(readFileSync(join(REPO_ROOT, "test/fixtures", fixture), "utf8"));
  db.close();
  return { dataDir, path };
}

function tablesOf(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
}

test("a schema-2 file (dca41c9) opens with its folders, heads, versions, marks, node id and sequences", async () => {
  const { path } = dataFolderFrom("metadata-schema-2.sql");
  const store = SqliteMetadataStore.open(path);
  try {
    expect(await store.getMeta("node_id")).toBe("fixture-node");
    const folders = await store.listFolders();
    expect(folders.map((f) => [f.name, f.head ? idToHex(f.head) : null, f.mode, f.keepVersions, f.keepDays])).toEqual([
      ["docs", hex("d"), "strong", null, 30],
      ["empty", null, "eventual", null, null],
      ["photos", hex("b"), "eventual", 10, null],
    ]);
    const photos = await store.listVersions("photos");
    expect(photos.map((v) => [idToHex(v.id), v.sequence, v.parents.map(idToHex), v.message, v.files, v.totalBytes])).toEqual([
      [hex("b"), 5, [hex("a")], "second", 3, 4096],
      [hex("a"), 1, [], "first", 2, 2048],
    ]);
    expect((await store.getVersion("docs", Buffer.from(hex("d"), "hex") as never))?.origin).toBe("replica");
    expect(await store.completeSummary(Buffer.from(hex("2"), "hex") as never)).toEqual({ kind: "tree", level: 0, firstName: "a.jpg", lastName: "z.jpg", heightDirs: 0 });
    expect(await store.latestHlc()).toEqual({ wallMs: 1700000500000, counter: 3 });
    // The highest sequence given is kept: the next version of photos comes after 5, not after 5's row alone.
    const root = Buffer.from(hex("9"), "hex") as never;
    await store.recordVersions("photos", [
      { id: Buffer.from(hex("c"), "hex") as never, root, parents: [], author: "n", hlcWallMs: 1, hlcCounter: 0, message: "", origin: "push", files: 0, totalBytes: 0, createdMs: 1 },
    ]);
    expect((await store.listVersions("photos", 1))[0]!.sequence).toBe(6);
    const stat = await store.stat();
    expect(stat).toMatchObject({ backend: "sqlite", location: path, folders: 3, versions: 4, checkedNodes: 1, schemaVersion: SQLITE_SCHEMA_VERSION });
    expect(stat.sizeBytes).toBeGreaterThan(0);
  } finally {
    await store.close();
  }
});

test("a whole node starts on a schema-2 data folder and serves its folders and history", async () => {
  const { dataDir } = dataFolderFrom("metadata-schema-2.sql");
  const node = await openNode({ dataDir });
  try {
    expect(node.nodeId).toBe("fixture-node");
    expect((await node.listFolders()).map((f) => f.name)).toEqual(["docs", "empty", "photos"]);
    expect(idToHex((await node.getFolder("photos")).head!)).toBe(hex("b"));
    expect((await node.resolveVersion("photos", "aaaa")).message).toBe("first");
  } finally {
    await node.close();
  }
});

test("a schema-1 file is upgraded: its folders and versions kept, its bare marks dropped, checked_nodes made", async () => {
  const { path } = dataFolderFrom("metadata-schema-1.sql");
  expect(tablesOf(path)).toContain("complete_objects");
  const store = SqliteMetadataStore.open(path);
  try {
    expect(await store.getMeta("schema_version")).toBe(String(SQLITE_SCHEMA_VERSION));
    expect((await store.listFolders()).map((f) => [f.name, idToHex(f.head!), f.keepVersions])).toEqual([
      ["music", hex("e"), null],
      ["notes", hex("f"), 3],
    ]);
    expect((await store.listVersions("notes")).map((v) => [v.message, v.files, v.totalBytes])).toEqual([["notes", 5, 500]]);
    expect(await store.listCompleteIds()).toEqual([]);
    expect(await store.getMeta("node_id")).toBe("old-node");
  } finally {
    await store.close();
  }
  expect(tablesOf(path)).not.toContain("complete_objects");
  expect(tablesOf(path)).toContain("checked_nodes");
});

test("a new file is made at the newest schema, each step recorded", async () => {
  const path = join(tempDir("dsync-migration-"), "metadata.sqlite");
  const store = SqliteMetadataStore.open(path);
  try {
    expect(await store.getMeta("schema_version")).toBe(String(SQLITE_SCHEMA_VERSION));
    expect((await store.stat()).schemaVersion).toBe(SQLITE_SCHEMA_VERSION);
  } finally {
    await store.close();
  }
  expect(tablesOf(path)).toEqual(["checked_nodes", "folders", "meta", "raft_entries", "raft_snapshot", "raft_state", "versions"]);
});

test("schema 2 -> 3 adds the Raft tables and keeps everything else, row for row", async () => {
  const { path } = dataFolderFrom("metadata-schema-2.sql");
  const rowsOf = (table: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.query(`SELECT * FROM ${table} ORDER BY 1, 2`).all();
    } finally {
      db.close();
    }
  };
  const before = Object.fromEntries(["folders", "versions", "checked_nodes"].map((t) => [t, rowsOf(t)]));
  const metaBefore = rowsOf("meta").filter((r) => (r as { key: string }).key !== "schema_version");
  const store = SqliteMetadataStore.open(path);
  try {
    expect(await store.getMeta("schema_version")).toBe("3");
    expect(await store.loadRaft()).toBeUndefined();
    await store.saveRaft({ hardState: { term: 1, vote: null, commit: 0 }, entries: [{ term: 1, index: 1, kind: "normal", data: new Uint8Array([1, 2]) }] });
    expect((await store.loadRaft())!.entries.length).toBe(1);
  } finally {
    await store.close();
  }
  for (const [table, rows] of Object.entries(before)) expect(rowsOf(table)).toEqual(rows);
  expect(rowsOf("meta").filter((r) => (r as { key: string }).key !== "schema_version")).toEqual(metaBefore);
  expect(tablesOf(path)).toEqual(["checked_nodes", "folders", "meta", "raft_entries", "raft_snapshot", "raft_state", "versions"]);
});

test("step 3 failing halfway changes nothing: the file stays at schema 2 without any Raft table, and the next open goes on", async () => {
  const { path } = dataFolderFrom("metadata-schema-2.sql");
  const step3 = MIGRATIONS.find((m) => m.version === 3)!;
  const failing = MIGRATIONS.map((m) =>
    m === step3
      ? {
          ...m,
          up(db: Database) {
            step3.up(db);
            throw new Error("step 3 failed after its tables");
          },
        }
      : m,
  );
  const db = new Database(path);
  try {
    expect(() => migrateSqliteMetadata(db, path, failing)).toThrow("step 3 failed after its tables");
    expect((db.query("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value).toBe("2");
  } finally {
    db.close();
  }
  expect(tablesOf(path)).toEqual(["checked_nodes", "folders", "meta", "versions"]);
  const store = SqliteMetadataStore.open(path);
  try {
    expect((await store.stat()).schemaVersion).toBe(3);
    expect((await store.listFolders()).length).toBe(3);
    expect(await store.loadRaft()).toBeUndefined();
  } finally {
    await store.close();
  }
});

test("a step that fails changes nothing: the file stays at the last complete step", () => {
  const { path } = dataFolderFrom("metadata-schema-2.sql");
  const next = SQLITE_SCHEMA_VERSION + 1;
  const failing = [
    ...MIGRATIONS,
    {
      version: next,
      why: "a step that fails halfway",
      up(db: Database) {
        db.exec("CREATE TABLE half_done (x INTEGER); ALTER TABLE folders ADD COLUMN colour TEXT;");
        throw new Error(`step ${next} failed`);
      },
    },
  ];
  const db = new Database(path);
  try {
    expect(() => migrateSqliteMetadata(db, path, failing)).toThrow(`step ${next} failed`);
    // The steps before it are complete, each in its own transaction.
    expect((db.query("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value).toBe(String(SQLITE_SCHEMA_VERSION));
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'half_done'").get()).toBeNull();
    expect((db.query("PRAGMA table_info(folders)").all() as { name: string }[]).map((c) => c.name)).not.toContain("colour");
    // The same list without the failure goes on from there.
    const working = [...MIGRATIONS, { version: next, why: "colours", up: (d: Database) => d.exec("ALTER TABLE folders ADD COLUMN colour TEXT") }];
    expect(migrateSqliteMetadata(db, path, working)).toBe(next);
    expect((db.query("PRAGMA table_info(folders)").all() as { name: string }[]).map((c) => c.name)).toContain("colour");
  } finally {
    db.close();
  }
});

test("a schema newer than the code knows is refused by name, and the file is left as it was", async () => {
  const { path, dataDir } = dataFolderFrom("metadata-schema-2.sql");
  const db = new Database(path);
  db.exec("UPDATE meta SET value = '7' WHERE key = 'schema_version'; CREATE TABLE from_the_future (x INTEGER);");
  db.close();
  const before = tablesOf(path);
  let error: unknown;
  try {
    SqliteMetadataStore.open(path);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(MetadataSchemaTooNewError);
  expect((error as Error).message).toContain(`schema 7, newer than this dsync understands (${SQLITE_SCHEMA_VERSION})`);
  expect((error as Error).message).toContain(path);
  expect(tablesOf(path)).toEqual(before);
  const check = new Database(path, { readonly: true });
  expect((check.query("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value).toBe("7");
  check.close();
  // The node refuses the same way rather than starting on it.
  await expect(openNode({ dataDir })).rejects.toThrow("newer than this dsync understands");
});
