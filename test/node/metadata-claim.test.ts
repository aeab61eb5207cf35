// A metadata database belongs to one node: the rules of src/node/metadata-claim.ts on a real
// PostgreSQL database and real data folders.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { claimMetadata, MetadataClaimError, NODE_ID_FILE_NAME } from "../../src/node/metadata-claim.ts";
import { PostgresMetadataStore } from "../../src/node/postgres-metadata-store.ts";
import { DROP_DATABASES_TIMEOUT_MS, dropTestDatabases, freshDatabase } from "../helpers/postgres.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(async () => {
  await dropTestDatabases();
  cleanupTempDirs();
}, DROP_DATABASES_TIMEOUT_MS);

let counter = 0;
const newId = () => `node-${++counter}`;

async function withStore<T>(url: string, run: (store: PostgresMetadataStore) => Promise<T>): Promise<T> {
  const store = await PostgresMetadataStore.open(url);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

test("a new node records its id in the database and its data folder, and starts again as itself", async () => {
  const url = await freshDatabase();
  const dir = tempDir();
  const first = await withStore(url, (s) => claimMetadata(s, url, dir, undefined, newId));
  expect(readFileSync(join(dir, NODE_ID_FILE_NAME), "utf8").trim()).toBe(first);
  expect(await withStore(url, (s) => s.getMeta("node_id"))).toBe(first);
  expect(await withStore(url, (s) => claimMetadata(s, url, dir, undefined, newId))).toBe(first);
  expect(await withStore(url, (s) => claimMetadata(s, url, dir, first, newId))).toBe(first);
});

test("a second node pointed at another node's database is refused, saying whose it is and what to do", async () => {
  const url = await freshDatabase();
  const a = tempDir();
  const b = tempDir();
  const owner = await withStore(url, (s) => claimMetadata(s, url, a, undefined, newId));
  const fresh = await withStore(url, (s) => claimMetadata(s, url, b, undefined, newId)).catch((e) => e);
  expect(fresh).toBeInstanceOf(MetadataClaimError);
  expect(fresh.message).toContain(`belongs to node ${owner}`);
  expect(fresh.message).toContain("two nodes must not share one database");
  expect(existsSync(join(b, NODE_ID_FILE_NAME))).toBe(false);
  const other = await withStore(url, (s) => claimMetadata(s, url, b, "someone-else", newId)).catch((e) => e);
  expect(other).toBeInstanceOf(MetadataClaimError);
  // A folder that belongs to another node, with another node's database.
  const url2 = await freshDatabase();
  const c = tempDir();
  await withStore(url2, (s) => claimMetadata(s, url2, c, undefined, newId));
  const crossed = await withStore(url, (s) => claimMetadata(s, url, c, undefined, newId)).catch((e) => e);
  expect(crossed).toBeInstanceOf(MetadataClaimError);
  expect(crossed.message).toContain(`belongs to node ${owner}, but the data folder ${c} belongs to node`);
  expect(await withStore(url, (s) => s.getMeta("node_id"))).toBe(owner);
});

test("--node-id adopts a database deliberately for a new data folder; an empty database takes a known folder's id", async () => {
  const url = await freshDatabase();
  const owner = await withStore(url, (s) => claimMetadata(s, url, tempDir(), undefined, newId));
  const replacement = tempDir();
  expect(await withStore(url, (s) => claimMetadata(s, url, replacement, owner, newId))).toBe(owner);
  expect(readFileSync(join(replacement, NODE_ID_FILE_NAME), "utf8").trim()).toBe(owner);
  const empty = await freshDatabase();
  expect(await withStore(empty, (s) => claimMetadata(s, empty, replacement, undefined, newId))).toBe(owner);
});

test("two nodes claiming one empty database at once: one gets it", async () => {
  const url = await freshDatabase();
  const results = await Promise.allSettled([0, 1, 2].map(() => withStore(url, (s) => claimMetadata(s, url, tempDir(), undefined, newId))));
  expect(results.filter((r) => r.status === "fulfilled").length).toBe(1);
  for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(MetadataClaimError);
});
