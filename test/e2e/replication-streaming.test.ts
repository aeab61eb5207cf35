// Streamed replication with real processes: two pairs of `dsync serve` nodes, one pair streaming
// (the default) and one with --replication-streaming off, each taking the same `dsync push` of a
// folder big enough for many upload batches. The streaming peer fetches the push's objects while
// it arrives, the other only at the head; both end with the same root, and a pull from either
// is the pushed directory. Then a peer that is down while a push arrives: the push is
// acknowledged as ever, and the peer catches up at the head once it is back.
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree, type DiskTree } from "../helpers/trees.ts";

const CLUSTER_TOKEN = "test-cluster-token-streaming";
const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

async function folderOf(url: string, folder: string): Promise<{ head: string | null; root: string | null }> {
  const { status, body } = await getJson(`${url}/v1/folders/${folder}`);
  return status === 200 ? { head: body.head, root: body.root ?? null } : { head: null, root: null };
}

async function waitForHead(url: string, folder: string, head: string, capMs = 60_000): Promise<void> {
  const deadline = Date.now() + capMs;
  while ((await folderOf(url, folder).catch(() => ({ head: null }))).head !== head) {
    if (Date.now() > deadline) throw new Error(`${url} did not reach ${head} of ${folder} within ${capMs} ms`);
    await Bun.sleep(50);
  }
}

async function replicationOf(url: string): Promise<{ objectsFetchedAhead: number; bytesFetchedAhead: number; objectsFetched: number; storedNoticesReceived: number }> {
  return (await getJson(`${url}/v1/status`)).body.replication;
}

/** Two nodes, peers of each other, both reachable from each other before this returns. */
async function startPair(name: string, extra: string[]): Promise<[NodeProcess, NodeProcess]> {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const nodes: NodeProcess[] = [];
  for (let i = 0; i < 2; i++) {
    const node = await startNode({
      dataDir: join(tempDir(), `${name}-${i}`),
      listen: `127.0.0.1:${ports[i]}`,
      args: ["--node-id", `${name}-${i}`, "--peers", urls[1 - i]!, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "500", ...extra],
    });
    running.push(node);
    nodes.push(node);
  }
  for (const node of nodes) {
    const deadline = Date.now() + 30_000;
    while (!(await getJson(`${node.url}/v1/status`)).body.peers.every((p: { reachable: boolean | null }) => p.reachable === true)) {
      if (Date.now() > deadline) throw new Error(`${node.url} did not reach its peer`);
      await Bun.sleep(50);
    }
  }
  return nodes as [NodeProcess, NodeProcess];
}

/** 48 files of 48-240 KiB (random and text, 6 directories): ~7 MiB, a push of several upload batches. */
function bigTree(): DiskTree {
  const tree: DiskTree = {};
  for (let i = 0; i < 48; i++) {
    const dir = (tree[`d${i % 6}`] ??= {}) as DiskTree;
    const size = (48 + ((i * 37) % 193)) * 1024;
    dir[`f${i}.${i % 2 ? "txt" : "bin"}`] = i % 2 ? `line ${i} of a text file that compresses\n`.repeat(Math.ceil(size / 40)).slice(0, size) : randomBytes(size, 1000 + i);
  }
  return tree;
}

test("a streaming peer fetches a push while it arrives and ends with what a peer fetching at the head gets", async () => {
  const [a, b] = await startPair("s", []);
  const [c, d] = await startPair("h", ["--replication-streaming", "off"]);
  const source = join(tempDir(), "client");
  writeTree(source, bigTree());
  const pushed = (await runCli(["push", source, "--remote", a.url, "--folder", "big", "--json"])).json();
  // The same directory to the other pair, as a first push again (its sync state forgotten).
  rmSync(join(source, ".dsync"), { recursive: true, force: true });
  const other = (await runCli(["push", source, "--remote", c.url, "--folder", "big", "--json"])).json();
  await waitForHead(b.url, "big", pushed.version);
  await waitForHead(d.url, "big", other.version);

  const [onA, onB, onC, onD] = await Promise.all([a, b, c, d].map((n) => folderOf(n.url, "big")));
  expect(onB).toEqual(onA);
  expect(onD).toEqual(onC);
  // The same tree either way.
  expect(onB.root).toBe(onD.root);

  const streamed = await replicationOf(b.url);
  const atHead = await replicationOf(d.url);
  expect(streamed.storedNoticesReceived).toBeGreaterThan(0);
  expect(streamed.objectsFetchedAhead).toBeGreaterThan(0);
  expect(atHead.storedNoticesReceived).toBe(0);
  expect(atHead.objectsFetchedAhead).toBe(0);
  // Every object came once: what came ahead was not fetched again at the head.
  expect(streamed.objectsFetchedAhead + streamed.objectsFetched).toBe(atHead.objectsFetched);
  // And an operator sees it in the metrics.
  const metrics = await (await fetch(`${b.url}/metrics`)).text();
  expect(Number(/^dsync_replication_fetched_ahead_total\{unit="objects"\} (\d+)$/m.exec(metrics)?.[1])).toBe(streamed.objectsFetchedAhead);
  expect(Number(/^dsync_replication_stored_notices_total\{direction="sent"\} (\d+)$/m.exec(await (await fetch(`${a.url}/metrics`)).text())?.[1])).toBeGreaterThan(0);

  // A pull from the streaming peer is the pushed directory.
  const pulled = join(tempDir(), "pulled");
  expect((await runCli(["pull", pulled, "--remote", b.url, "--folder", "big"])).code).toBe(0);
  expect(describeTree(pulled)).toEqual(describeTree(source));
}, 180_000);

test("a peer down while a push arrives: the push is acknowledged, and the peer catches up at the head once back", async () => {
  const [a, b] = await startPair("p", []);
  const bDir = b.dataDir;
  const bUrl = new URL(b.url);
  await b.stop();
  const source = join(tempDir(), "client-away");
  writeTree(source, bigTree());
  const result = await runCli(["push", source, "--remote", a.url, "--folder", "away", "--json"]);
  expect(result.code).toBe(0);
  const back = await startNode({
    dataDir: bDir,
    listen: `${bUrl.hostname}:${bUrl.port}`,
    args: ["--node-id", "p-1", "--peers", a.url, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "500"],
  });
  running.push(back);
  await waitForHead(back.url, "away", result.json().version);
  expect((await folderOf(back.url, "away")).root).toBe((await folderOf(a.url, "away")).root);
  expect((await replicationOf(back.url)).objectsFetchedAhead).toBe(0);
}, 180_000);
