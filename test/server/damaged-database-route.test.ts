// A database that turns out damaged while the node runs (a query meets a damaged page): the
// request fails naming the damaged file and the next step, instead of "internal error", and
// `dsync verify --remote` prints it. For the object index, the restart it asks for rebuilds it.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { openSync, readSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { encodeObject } from "../../src/core/objects.ts";
import { openNode } from "../../src/assemble.ts";
import { createApp } from "../../src/server/app.ts";
import { cleanupTempDirs, runCli, tempDir } from "../helpers/processes.ts";

const servers: { stop(force?: boolean): unknown }[] = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
  cleanupTempDirs();
});

const PAGE_BYTES = 4096;

async function nodeWithAFolder() {
  const node = await openNode({ dataDir: join(tempDir(), "data"), nodeId: "node-d" });
  const bytes = new TextEncoder().encode("hello\n");
  const chunk = blake3(bytes);
  const fileBytes = encodeObject({ kind: "file", level: 0, sizeBytes: bytes.length, chunks: [{ id: chunk, lengthBytes: bytes.length }] });
  const file = blake3(fileBytes);
  const treeBytes = encodeObject({ kind: "tree", level: 0, entries: [{ name: "a.txt", kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id: file, target: null }] });
  const root = blake3(treeBytes);
  await node.putObjects([{ id: chunk, bytes }, { id: file, bytes: fileBytes }, { id: root, bytes: treeBytes }]);
  await node.commit({ folder: "docs", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: bytes.length });
  return node;
}

/**
 * Damages the pages of one table of a live SQLite file, the way a failing disk would: the log
 * is first checkpointed into the file (so the table is read from there), the pages' headers
 * overwritten, then a write through a second connection makes the node's connection drop its
 * page cache, so its next read of the table meets the damage.
 */
function damageTableUnderRunningNode(path: string, table: string): void {
  const other = new Database(path);
  try {
    other.run("PRAGMA busy_timeout = 5000");
    other.query("PRAGMA wal_checkpoint(TRUNCATE)").all();
    const pages = other
      .query<{ rootpage: number }, [string]>("SELECT rootpage FROM sqlite_master WHERE tbl_name = ? AND rootpage > 0")
      .all(table)
      .map((row) => row.rootpage);
    expect(pages.length).toBeGreaterThan(0);
    const fd = openSync(path, "r+");
    try {
      for (const page of pages) {
        const header = Buffer.alloc(16);
        readSync(fd, header, 0, header.length, (page - 1) * PAGE_BYTES);
        header.fill(0xff);
        writeSync(fd, header, 0, header.length, (page - 1) * PAGE_BYTES);
      }
    } finally {
      closeSync(fd);
    }
    other.run("INSERT OR REPLACE INTO meta (key, value) VALUES ('test_touch', '1')");
  } finally {
    other.close();
  }
}

test("verify on a node whose metadata breaks mid-run: 500 naming metadata.sqlite and the next step; the CLI prints it", async () => {
  const node = await nodeWithAFolder();
  const app = createApp(node);
  const before = await app.request("/v1/verify", { method: "POST" });
  expect(before.status).toBe(200);
  const metadataPath = join(node.dataDir, "metadata.sqlite");
  damageTableUnderRunningNode(metadataPath, "folders");

  const response = await app.request("/v1/verify", { method: "POST" });
  expect(response.status).toBe(500);
  const body = (await response.json()) as { error: string; database: string };
  expect(body.database).toBe(metadataPath);
  expect(body.error).toContain(`the metadata database ${metadataPath} is damaged`);
  expect(body.error).toContain("this request could not be answered. Next step: stop the node (it will not start on the damaged file)");
  expect(body.error).toContain("--node-id node-d");

  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  servers.push(server);
  const cli = await runCli(["verify", "--remote", `http://127.0.0.1:${server.port}`]);
  expect(cli.code).toBe(1);
  expect(cli.stderr).toContain(`the metadata database ${metadataPath} is damaged`);
  expect(cli.stderr).not.toContain("internal error");
  await node.close().catch(() => {});
}, 30_000);

test("a request that meets a damaged page of the object index names index.sqlite and says a restart rebuilds it", async () => {
  const first = await nodeWithAFolder();
  // An index larger than SQLite's page cache (2 MiB by default), so most of its pages are read
  // from the file when a request needs them, not from memory.
  const objects = Array.from({ length: 40_000 }, () => {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    return { id: blake3(bytes), bytes };
  });
  for (let at = 0; at < objects.length; at += 4000) await first.putObjects(objects.slice(at, at + 4000));
  await first.close();
  const node = await openNode({ dataDir: first.dataDir, nodeId: "node-d" });
  const app = createApp(node);
  const indexPath = join(node.dataDir, "objects", "index.sqlite");
  // The first third of its pages (after the schema page), damaged on disk under the open store.
  const fd = openSync(indexPath, "r+");
  try {
    const size = Bun.file(indexPath).size;
    expect(size).toBeGreaterThan(3 * 1024 * 1024);
    const pages = Math.floor(size / PAGE_BYTES);
    const header = Buffer.alloc(16, 0xff);
    for (let page = 2; page <= Math.floor(pages / 3); page++) writeSync(fd, header, 0, header.length, (page - 1) * PAGE_BYTES);
  } finally {
    closeSync(fd);
  }

  const response = await app.request("/v1/verify", { method: "POST" });
  expect(response.status).toBe(500);
  const body = (await response.json()) as { error: string; database: string };
  expect(body.database).toBe(indexPath);
  expect(body.error).toContain(`the object index ${indexPath} is damaged`);
  expect(body.error).toContain("restart the node, which moves the damaged index aside (keeping it) and rebuilds it from the packs");
  await node.close().catch(() => {});

  // And the restart does: every object is back.
  const restarted = await openNode({ dataDir: first.dataDir, nodeId: "node-d" });
  expect(restarted.startupNotes.join("\n")).toContain("the object index was damaged");
  const read = await restarted.getObjects(objects.slice(0, 100).map((o) => o.id));
  expect(read.every((bytes, i) => bytes !== undefined && Buffer.from(bytes).equals(Buffer.from(objects[i]!.bytes)))).toBe(true);
  // The folder's chunk, file node, tree and version, and the 40 000.
  expect((await restarted.store.stats()).objects).toBe(objects.length + 4);
  await restarted.close();
}, 60_000);
