// Real `dsync serve --metadata postgres://...` processes, each test on a database of its own
// (CREATE DATABASE on the cluster of DSYNC_TEST_POSTGRES_URL): a round trip that survives a
// restart, concurrent pushes, kill -9 during pushes, replication between a SQLite node and a
// Postgres node, a second node refused on another's database, and the server stopped and
// started again under a running node (503 with the reason, also from the health and in
// dsync_metadata_up, then answers again, no restart), and the server stopped in the middle of a
// stream of pushes from several clients (each push cut off answered 503, the next lands).
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DROP_DATABASES_TIMEOUT_MS, dropTestDatabases, freshDatabase, startOwnCluster, withConnection } from "../helpers/postgres.ts";
import { cleanupTempDirs, freePort, runCli, spawnCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  await dropTestDatabases();
  cleanupTempDirs();
}, DROP_DATABASES_TIMEOUT_MS);

async function startOn(url: string, options: { dataDir?: string; args?: string[]; listen?: string } = {}): Promise<NodeProcess> {
  const node = await startNode({ dataDir: options.dataDir, listen: options.listen, args: ["--metadata", url, ...(options.args ?? [])] });
  running.push(node);
  return node;
}

/** One unlabelled sample of GET /metrics (the node serves it without a token here). */
async function metric(nodeUrl: string, name: string): Promise<number> {
  const response = await fetch(`${nodeUrl}/metrics`);
  expect(response.status).toBe(200);
  const line = (await response.text()).split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

async function folderHead(nodeUrl: string, folder: string): Promise<string | null> {
  const response = await fetch(`${nodeUrl}/v1/folders/${folder}`);
  if (response.status !== 200) return null;
  return ((await response.json()) as { head: string | null }).head;
}

test("push, pull and log through a node on Postgres; the node restarts as itself with its history", async () => {
  const url = await freshDatabase();
  const node = await startOn(url);
  const dir = join(tempDir(), "src");
  writeTree(dir, { "a.txt": "alpha\n", sub: { "b.txt": "beta\n".repeat(1000) }, "empty.txt": "" });
  const first = await runCli(["push", dir, "--remote", node.url, "--folder", "docs", "--json"]);
  expect(first.code).toBe(0);
  writeFileSync(join(dir, "a.txt"), "alpha, edited\n");
  const second = await runCli(["push", dir, "--json"]);
  expect(second.code).toBe(0);

  // The metadata is in the database, not in the data folder (which holds the objects and node-id).
  expect(existsSync(join(node.dataDir, "metadata.sqlite"))).toBe(false);
  const nodeId = readFileSync(join(node.dataDir, "node-id"), "utf8").trim();
  const rows = await withConnection(url, async (sql) => ({
    versions: Number((await sql`SELECT COUNT(*) AS n FROM versions WHERE folder = 'docs'`)[0].n),
    owner: (await sql`SELECT value FROM meta WHERE key = 'node_id'`)[0].value,
  }));
  expect(rows).toEqual({ versions: 2, owner: nodeId });

  await node.stop();
  const again = await startOn(url, { dataDir: node.dataDir });
  expect(await folderHead(again.url, "docs")).toBe(second.json().version);
  const log = await runCli(["log", dir, "--remote", again.url, "--json"]);
  expect(log.code).toBe(0);
  expect(log.json().versions.map((v: { id: string }) => v.id)).toEqual([second.json().version, first.json().version]);
  const copy = join(tempDir(), "copy");
  expect((await runCli(["pull", copy, "--remote", again.url, "--folder", "docs"])).code).toBe(0);
  expect((await runCli(["diff", dir, copy])).code).toBe(0);
  const verify = await runCli(["verify", "--remote", again.url]);
  expect(verify.code).toBe(0);

  // Stopped, the data folder is checked and collected directly, with the metadata where it is.
  await again.stop();
  const offline = await runCli(["verify", "--data", node.dataDir, "--metadata", url, "--json"]);
  expect(offline.code).toBe(0);
  expect(offline.json()).toMatchObject({ healthy: true, metadataIntegrity: "ok" });
  expect((await runCli(["gc", "--data", node.dataDir, "--metadata", url, "--dry-run"])).code).toBe(0);
  // Without it, the folder is not mistaken for a SQLite node's with no metadata.
  const withoutMetadata = await runCli(["verify", "--data", node.dataDir]);
  expect(withoutMetadata.code).not.toBe(0);
  expect(withoutMetadata.stderr).toContain("metadata is on PostgreSQL");
  expect(existsSync(join(node.dataDir, "metadata.sqlite"))).toBe(false);
}, 60_000);

test("concurrent pushes from several clients to one folder: every push is kept, merged into one head", async () => {
  const url = await freshDatabase();
  const node = await startOn(url);
  const dirs = [0, 1, 2, 3, 4].map((i) => {
    const dir = join(tempDir(), `client-${i}`);
    writeTree(dir, { [`only-${i}.txt`]: `client ${i}\n`, "shared.txt": `from ${i}\n` });
    return dir;
  });
  const results = await Promise.all(dirs.map((dir) => runCli(["push", dir, "--remote", node.url, "--folder", "team", "--json"])));
  for (const r of results) expect(r.code).toBe(0);
  const pushed = results.map((r) => r.json().pushed ?? r.json().version);
  const log = (await runCli(["log", dirs[0]!, "--json"])).json();
  const ids = new Set(log.versions.map((v: { id: string }) => v.id));
  for (const id of pushed) expect(ids.has(id)).toBe(true);
  const copy = join(tempDir(), "merged");
  expect((await runCli(["pull", copy, "--remote", node.url, "--folder", "team"])).code).toBe(0);
  for (let i = 0; i < dirs.length; i++) expect(readFileSync(join(copy, `only-${i}.txt`), "utf8")).toBe(`client ${i}\n`);
  const sequences = await withConnection(url, async (sql) => (await sql`SELECT sequence FROM versions WHERE folder = 'team' ORDER BY sequence`).map((r: { sequence: string }) => Number(r.sequence)));
  expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => i + 1));
}, 60_000);

test("kill -9 during pushes: restarted, the node's head is an acknowledged push or later, and verify is clean", async () => {
  const url = await freshDatabase();
  const node = await startOn(url);
  const dir = join(tempDir(), "work");
  writeTree(dir, { "base.txt": "base\n" });
  expect((await runCli(["push", dir, "--remote", node.url, "--folder", "f"])).code).toBe(0);
  const acknowledged: string[] = [];
  let stop = false;
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      writeFileSync(join(dir, `file-${i % 5}.txt`), `edit ${i}\n`.repeat(100 + i));
      const result = await spawnCli(["push", dir, "--json"]).result;
      if (result.code === 0) acknowledged.push(result.json().version);
      else break;
    }
  })();
  await waitFor("a few acknowledged pushes", async () => acknowledged.length, (n) => n >= 3);
  await node.kill9();
  stop = true;
  await loop;
  const again = await startOn(url, { dataDir: node.dataDir });
  const head = await folderHead(again.url, "f");
  const log = (await runCli(["log", dir, "--remote", again.url, "--json"])).json();
  const ids = log.versions.map((v: { id: string }) => v.id);
  expect(ids[0]).toBe(head);
  for (const id of acknowledged) expect(ids).toContain(id);
  const verify = await runCli(["verify", "--remote", again.url]);
  expect(verify.code).toBe(0);
  const copy = join(tempDir(), "after");
  expect((await runCli(["pull", copy, "--remote", again.url, "--folder", "f"])).code).toBe(0);
}, 90_000);

test("a SQLite node and a Postgres node replicate a folder both ways", async () => {
  const url = await freshDatabase();
  const [portA, portB] = [await freePort(), await freePort()];
  const [urlA, urlB] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
  const cluster = ["--cluster-token", "test-cluster-token-pg", "--sync-interval-ms", "300"];
  const a = await startNode({ listen: `127.0.0.1:${portA}`, args: ["--metadata", "sqlite", "--peers", urlB, ...cluster] });
  running.push(a);
  const b = await startOn(url, { listen: `127.0.0.1:${portB}`, args: ["--peers", urlA, ...cluster] });
  const dir = join(tempDir(), "shared");
  writeTree(dir, { "one.txt": "one\n", deep: { "two.txt": "two\n" } });
  const pushed = (await runCli(["push", dir, "--remote", a.url, "--folder", "both", "--json"])).json().version;
  await waitFor("the Postgres node to have the push", () => folderHead(b.url, "both"), (head) => head === pushed);
  const fromB = join(tempDir(), "from-b");
  expect((await runCli(["pull", fromB, "--remote", b.url, "--folder", "both"])).code).toBe(0);
  expect((await runCli(["diff", dir, fromB])).code).toBe(0);
  writeFileSync(join(fromB, "three.txt"), "three\n");
  const back = (await runCli(["push", fromB, "--json"])).json().version;
  await waitFor("the SQLite node to have the push back", () => folderHead(a.url, "both"), (head) => head === back);
  expect((await runCli(["diff", `${a.url}/both`, `${b.url}/both`])).code).toBe(0);
}, 60_000);

test("a second node started on another node's database is refused, naming whose it is; the first keeps running", async () => {
  const url = await freshDatabase();
  const first = await startOn(url);
  const second = await runCli(["serve", "--data", join(tempDir(), "other"), "--listen", "127.0.0.1:0", "--metadata", url]);
  expect(second.code).not.toBe(0);
  const owner = readFileSync(join(first.dataDir, "node-id"), "utf8").trim();
  expect(second.stderr).toContain(`belongs to node ${owner}`);
  expect(second.stderr).toContain("two nodes must not share one database");
  expect((await fetch(`${first.url}/v1/folders`)).status).toBe(200);
  // A data folder that holds SQLite metadata is not started on Postgres either.
  const sqliteNode = await startNode({});
  await sqliteNode.stop();
  const crossed = await runCli(["serve", "--data", sqliteNode.dataDir, "--listen", "127.0.0.1:0", "--metadata", await freshDatabase()]);
  expect(crossed.code).not.toBe(0);
  expect(crossed.stderr).toContain("--metadata sqlite");
}, 60_000);

test("Postgres stopped under a running node: 503 with the reason, then the same process answers again once it is back", async () => {
  const cluster = startOwnCluster();
  try {
    const node = await startOn(cluster.url);
    const dir = join(tempDir(), "outage");
    writeTree(dir, { "x.txt": "x\n" });
    const pushed = (await runCli(["push", dir, "--remote", node.url, "--folder", "o", "--json"])).json().version;
    const healthy = await fetch(`${node.url}/v1/health`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ ok: true, metadata: "ok" });
    expect(await metric(node.url, "dsync_metadata_up")).toBe(1);
    cluster.halt();
    // The health says the metadata is away (503, still a dsync node's health), and so do the metrics.
    await waitFor("the health to say the metadata is unavailable", async () => (await fetch(`${node.url}/v1/health`)).status, (status) => status === 503);
    const sick = await fetch(`${node.url}/v1/health`);
    expect(sick.headers.get("retry-after")).toBe("5");
    const sickBody = (await sick.json()) as { ok: boolean; node: string; metadata: string; metadataError: string };
    expect(sickBody).toMatchObject({ ok: false, node: readFileSync(join(node.dataDir, "node-id"), "utf8").trim(), metadata: "unavailable" });
    expect(sickBody.metadataError.length).toBeGreaterThan(0);
    expect(sickBody.metadataError).not.toContain(cluster.url);
    expect(await metric(node.url, "dsync_metadata_up")).toBe(0);
    expect(await metric(node.url, "dsync_folders")).toBe(1);
    const during = await fetch(`${node.url}/v1/folders/o`);
    expect(during.status).toBe(503);
    expect(during.headers.get("retry-after")).toBe("5");
    const body = (await during.json()) as { error: string };
    expect(body.error).toStartWith(`metadata store unavailable: ${cluster.url}`);
    writeFileSync(join(dir, "x.txt"), "y\n");
    const failedPush = await runCli(["push", dir]);
    expect(failedPush.code).not.toBe(0);
    expect(failedPush.stderr).toContain("metadata store unavailable");
    // dsync status says why it cannot show the folders (after its retries, for a blip).
    const status = await runCli(["status", "--remote", node.url]);
    expect(status.code).not.toBe(0);
    expect(status.stderr).toContain("503");
    expect(status.stderr).toContain("metadata store unavailable");
    cluster.start();
    await waitFor("the node to answer again", async () => (await fetch(`${node.url}/v1/folders/o`)).status, (status) => status === 200);
    expect(await folderHead(node.url, "o")).toBe(pushed);
    await waitFor("the health to be ok again", async () => (await fetch(`${node.url}/v1/health`)).status, (status) => status === 200);
    expect(await metric(node.url, "dsync_metadata_up")).toBe(1);
    const later = await runCli(["push", dir, "--json"]);
    expect(later.code).toBe(0);
    expect(node.process.exitCode).toBeNull();
  } finally {
    cluster.remove();
  }
}, 90_000);

test("Postgres stopped in the middle of a stream of pushes: each push cut off is answered 503 (never 500), and once it is back the next push lands on a consistent head", async () => {
  const cluster = startOwnCluster();
  try {
    const node = await startOn(cluster.url);
    const dir = join(tempDir(), "stream");
    writeTree(dir, { "base.txt": "base\n" });
    expect((await runCli(["push", dir, "--remote", node.url, "--folder", "s"])).code).toBe(0);
    const acknowledged: string[] = [];
    const failures: string[] = [];
    let stop = false;
    // Several clients, so commits are in flight when the server stops.
    const dirs = [0, 1, 2].map((client) => join(tempDir(), `client-${client}`));
    const clients = [0, 1, 2].map(async (client) => {
      const own = dirs[client]!;
      writeTree(own, { "base.txt": "base\n" });
      for (let i = 0; !stop; i++) {
        writeFileSync(join(own, `c${client}-${i % 4}.txt`), `edit ${client} ${i}\n`.repeat(50 + i));
        const result = await spawnCli(["push", own, "--remote", node.url, "--folder", "s", "--json"]).result;
        if (result.code === 0) acknowledged.push(result.json().version);
        else {
          failures.push(result.stderr);
          break;
        }
      }
    });
    await waitFor("a few acknowledged pushes", async () => acknowledged.length, (n) => n >= 4);
    cluster.halt();
    await Promise.race([Promise.all(clients), Bun.sleep(60_000)]);
    stop = true;
    await Promise.all(clients);
    expect(failures.length).toBeGreaterThan(0);
    for (const stderr of failures) {
      expect(stderr).toContain("metadata store unavailable");
      expect(stderr).not.toContain("internal error");
    }
    expect(node.output()).not.toContain("unexpected error");

    cluster.start();
    await waitFor("the node to answer again", async () => (await fetch(`${node.url}/v1/folders/s`)).status, (status) => status === 200);
    // The first client pushes again from what it last knew: whatever the cut-off commits did,
    // the push lands, and the head is one recorded version with every acknowledged push behind it.
    const retried = await runCli(["push", dirs[0]!, "--remote", node.url, "--folder", "s", "--json"]);
    expect(retried.code).toBe(0);
    const head = await folderHead(node.url, "s");
    expect(head).toBe(retried.json().version);
    const log = (await runCli(["log", "--remote", node.url, "--folder", "s", "--json"])).json();
    const ids = log.versions.map((v: { id: string }) => v.id);
    expect(ids[0]).toBe(head);
    for (const id of acknowledged) expect(ids).toContain(id);
    expect((await runCli(["verify", "--remote", node.url])).code).toBe(0);
    const copy = join(tempDir(), "stream-copy");
    expect((await runCli(["pull", copy, "--remote", node.url, "--folder", "s"])).code).toBe(0);
    expect(node.process.exitCode).toBeNull();
  } finally {
    cluster.remove();
  }
}, 150_000);

test("Postgres stopped under a replicating node: its peer is not marked failing, the node keeps running, and it catches up once the server is back", async () => {
  const cluster = startOwnCluster();
  try {
    const [portA, portB] = [await freePort(), await freePort()];
    const [urlA, urlB] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
    const settings = ["--cluster-token", "test-cluster-token-pg", "--sync-interval-ms", "300"];
    const a = await startNode({ listen: `127.0.0.1:${portA}`, args: ["--metadata", "sqlite", "--peers", urlB, ...settings] });
    running.push(a);
    const b = await startOn(cluster.url, { listen: `127.0.0.1:${portB}`, args: ["--peers", urlA, ...settings] });
    const dir = join(tempDir(), "peers");
    writeTree(dir, { "one.txt": "one\n" });
    const first = (await runCli(["push", dir, "--remote", a.url, "--folder", "p", "--json"])).json().version;
    await waitFor("the Postgres node to have the push", () => folderHead(b.url, "p"), (head) => head === first);
    const peerUp = async () => {
      const text = await (await fetch(`${b.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`dsync_peer_up{peer="${urlA}"}`));
      return line === undefined ? null : Number(line.split(" ").at(-1));
    };
    expect(await peerUp()).toBe(1);

    cluster.halt();
    // Notices and rounds meet B's own store away, several times over.
    writeFileSync(join(dir, "two.txt"), "two\n");
    const second = (await runCli(["push", dir, "--json"])).json().version;
    await Bun.sleep(1500);
    expect(await metric(b.url, "dsync_metadata_up")).toBe(0);
    expect(await peerUp()).toBe(1);
    expect(b.output()).toContain("replication paused: this node's metadata store unavailable");
    expect(b.output()).not.toContain("unreachable");
    expect(b.process.exitCode).toBeNull();

    cluster.start();
    await waitFor("the Postgres node to catch up", () => folderHead(b.url, "p"), (head) => head === second, 30_000);
    expect(await peerUp()).toBe(1);
  } finally {
    cluster.remove();
  }
}, 90_000);
