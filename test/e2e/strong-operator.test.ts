// Three real nodes, one strong folder, and an operator who is careless with them: two of the
// three killed -9 at once (the leader among them) and started again; a member that is down
// removed from the group, then another, until one member is left, which goes on alone; the two
// added back with their data; a member restarted with another --peers list. Every acknowledged push is in every node's history at the end and
// the clients' history is linearizable (test/helpers/strong-cluster.ts, checkStrongRun).
import { afterAll, expect, test } from "bun:test";
import { cpSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { cleanupTempDirs, freePort, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { checkStrongRun, CLUSTER_TOKEN, startStrongCluster, strongFolderWithClients, waitForAgreement, type StrongClients, type StrongCluster } from "../helpers/strong-cluster.ts";

const FOLDER = "ledger";
const clusters: StrongCluster[] = [];
const strays: NodeProcess[] = [];

afterAll(async () => {
  for (const node of strays) await node.stop().catch(() => undefined);
  for (const cluster of clusters) await cluster.stopAll();
  cleanupTempDirs();
});

async function send(method: string, url: string, body?: unknown, timeoutMs = 20_000): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

/** `count` pushes acknowledged through the nodes of `nodes`, in turn (bounded). */
async function pushes(c: StrongCluster, clients: StrongClients, nodes: number[], count: number, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let done = 0;
  for (let turn = 0; done < count; turn++) {
    if (Date.now() > deadline) throw new Error(`${what}: ${done} of ${count} pushes acknowledged within 20 s (${JSON.stringify(clients.tally)})`);
    if (await clients.push(`writer-${turn % 2}`, c.urls[nodes[turn % nodes.length]!]!)) done++;
    else await Bun.sleep(50);
  }
}

async function membersSeenBy(c: StrongCluster, i: number): Promise<string[]> {
  return ((await c.consensus(i))?.members ?? []).map((m) => m.id).sort();
}

test("two of three killed -9 and restarted; members removed while down until one is left, then added back: nothing acknowledged lost", async () => {
  const c = await startStrongCluster();
  clusters.push(c);
  const { clients } = await strongFolderWithClients(c, FOLDER, 0);
  await pushes(c, clients, [0, 1, 2], 6, "pushes before the kills");

  // The leader and one follower killed at once: no majority; started again, the group recovers
  // with everything it committed.
  const leader = await c.waitForLeader();
  const follower = (leader + 1) % 3;
  await Promise.all([c.kill9(leader), c.kill9(follower)]);
  const lone = 3 - leader - follower;
  expect(await clients.push("writer-0", c.urls[lone]!, 3_000), "a push with two of three down").toBeNull();
  await Promise.all([c.start(leader), c.start(follower)]);
  await c.waitForLeader("a leader after two of three restarted");
  await pushes(c, clients, [0, 1, 2], 6, "pushes after the restarts");
  expect(clients.tally.unexpected).toEqual([]);

  // A member that is down is removed through the others; then another, until one is left.
  const first = (await c.waitForLeader() + 1) % 3;
  await c.kill9(first);
  let at = await c.waitForLeader("a leader with one member down");
  const removedFirst = await send("DELETE", `${c.urls[at]}/v1/cluster/members/${c.nodeIds[first]}`);
  expect(removedFirst.status, JSON.stringify(removedFirst.body)).toBe(200);
  const two = [0, 1, 2].filter((i) => i !== first);
  await pushes(c, clients, two, 4, "pushes with two members");
  at = await c.waitForLeader("a leader of the two");
  const second = two.find((i) => i !== at)!;
  const removedSecond = await send("DELETE", `${c.urls[at]}/v1/cluster/members/${c.nodeIds[second]}`);
  expect(removedSecond.status, JSON.stringify(removedSecond.body)).toBe(200);
  await c.kill9(second);
  const alone = at;
  expect(await membersSeenBy(c, alone)).toEqual([c.nodeIds[alone]]);
  await pushes(c, clients, [alone], 4, "pushes with one member left");

  // Both started again with their data and added back: they catch up from the log.
  await Promise.all([c.start(first), c.start(second)]);
  for (const back of [first, second]) {
    const added = await send("POST", `${c.urls[alone]}/v1/cluster/members`, { address: c.urls[back] });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
  }
  expect(await membersSeenBy(c, alone)).toEqual([...c.nodeIds].sort());
  await waitForAgreement(c.urls, FOLDER, 30_000);
  await pushes(c, clients, [0, 1, 2], 6, "pushes with all three back");

  // A member restarted with another --peers list (one peer left out, an address where no node
  // listens put in): it knows its members from its log, and goes on.
  const restarted = (await c.waitForLeader() + 2) % 3;
  await c.kill9(restarted);
  const kept = [0, 1, 2].find((i) => i !== restarted)!;
  await c.start(restarted, [c.urls[kept]!, "http://127.0.0.1:9"]);
  await pushes(c, clients, [restarted, kept], 4, "pushes with a member on another --peers list");
  expect(await membersSeenBy(c, restarted)).toEqual([...c.nodeIds].sort());
  await waitForAgreement(c.urls, FOLDER, 30_000);
  console.log(await checkStrongRun(c, clients));
}, 120_000);

test("a node started on a copy of a member's data folder takes no part in the group while the member answers; the group goes on", async () => {
  const c = await startStrongCluster();
  clusters.push(c);
  const { clients } = await strongFolderWithClients(c, FOLDER, 0);
  await pushes(c, clients, [0, 1, 2], 4, "pushes before the copy");
  // A follower's data folder copied (crash-consistent: the follower killed -9 first, then started again).
  const original = (await c.waitForLeader() + 1) % 3;
  await c.kill9(original);
  const copyDir = join(tempDir("strong-copy-"), "data");
  cpSync(c.dataDirs[original]!, copyDir, { recursive: true });
  await c.start(original);
  const port = await freePort();
  const copy = await startNode({
    dataDir: copyDir,
    listen: `127.0.0.1:${port}`,
    args: ["--node-id", c.nodeIds[original]!, "--peers", c.urls.join(","), "--cluster-token", CLUSTER_TOKEN],
  });
  strays.push(copy);
  const said = Date.now() + 10_000;
  while (!/answers with this node's id/.test(copy.output()) && Date.now() < said) await Bun.sleep(50);
  expect(copy.output()).toContain(`answers with this node's id, ${c.nodeIds[original]}`);
  // It runs no member: no term, no role but follower, nothing applied; a strong push through it is refused.
  const status = (await (await fetch(`${copy.url}/v1/status`, { signal: AbortSignal.timeout(5_000) })).json()) as { consensus: { applied: number; term: number } | null };
  expect(status.consensus?.term ?? 0).toBe(0);
  expect(await clients.push("writer-copy", copy.url, 5_000)).toBeNull();
  await pushes(c, clients, [0, 1, 2], 6, "pushes with the copy running");
  for (let i = 0; i < 3; i++) expect(((await c.consensus(i))?.members ?? []).length).toBe(3);
  await copy.stop();
  console.log(await checkStrongRun(c, clients));
}, 90_000);

/** A TCP server that accepts and never answers (`trickle`: answers a byte a second, never finishing). */
async function hungPeer(trickle: boolean): Promise<{ url: string; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    if (!trickle) return;
    const reply = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{";
    let at = 0;
    const timer = setInterval(() => (at < reply.length ? socket.write(reply[at++]!) : socket.write(" ")), 1000);
    socket.on("close", () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const close = server.close.bind(server);
  server.close = ((callback?: (error?: Error) => void) => {
    for (const socket of sockets) socket.destroy();
    return close(callback);
  }) as typeof server.close;
  return { url: `http://127.0.0.1:${port}`, server };
}

test("a member restarted with --peers naming a peer that never answers and one that answers a byte a second rejoins within its deadlines", async () => {
  const c = await startStrongCluster();
  clusters.push(c);
  const { clients } = await strongFolderWithClients(c, FOLDER, 0);
  const silent = await hungPeer(false);
  const slow = await hungPeer(true);
  try {
    const restarted = (await c.waitForLeader() + 1) % 3;
    await c.kill9(restarted);
    const others = c.urls.filter((_, i) => i !== restarted);
    const startedAt = Date.now();
    await c.start(restarted, [...others, silent.url, slow.url]);
    await pushes(c, clients, [restarted], 3, "pushes through the restarted member");
    const tookMs = Date.now() - startedAt;
    console.log(`restarted with a silent and a trickling peer: pushes through it again after ${tookMs} ms`);
    expect(tookMs).toBeLessThan(15_000);
    expect(((await c.consensus(restarted))?.members ?? []).map((m) => m.id).sort()).toEqual([...c.nodeIds].sort());
  } finally {
    silent.server.close();
    slow.server.close();
  }
  console.log(await checkStrongRun(c, clients));
}, 60_000);
