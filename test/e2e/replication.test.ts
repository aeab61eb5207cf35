// Three real nodes on 127.0.0.1 replicating one folder: a push to A can be pulled from C; with B
// killed (kill -9), A and C take conflicting pushes; B comes back; all three converge on the
// same head, the same root and the same conflict copy, and every acknowledged push stays in
// history everywhere.
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const CLUSTER_TOKEN = "test-cluster-token-1";
const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

async function getJson(url: string, token?: string): Promise<any> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, body: await response.json() };
}

async function headOf(url: string, folder: string): Promise<string | null> {
  const { status, body } = await getJson(`${url}/v1/folders/${folder}`);
  return status === 200 ? body.head : null;
}

/** Polls until every node has the same non-null head (no timing assertion: a generous cap only against hangs). */
async function waitForSameHead(urls: string[], folder: string, capMs = 30_000): Promise<string> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const heads = await Promise.all(urls.map((url) => headOf(url, folder).catch(() => null)));
    if (heads[0] && heads.every((h) => h === heads[0])) return heads[0];
    if (Date.now() > deadline) throw new Error(`nodes did not converge on ${folder}: ${JSON.stringify(heads)}`);
    await Bun.sleep(100);
  }
}

test("three nodes replicate, survive kill -9, and converge on the same conflict copy", async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const dataDirs = ["a", "b", "c"].map((name) => join(tempDir(), name));
  const start = (i: number) =>
    startNode({
      dataDir: dataDirs[i],
      listen: `127.0.0.1:${ports[i]}`,
      args: ["--node-id", `node-${"abc"[i]}`, "--peers", urls.filter((_, j) => j !== i).join(","), "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300"],
    });
  const nodes = [await start(0), await start(1), await start(2)];
  running.push(...nodes);
  const [urlA, urlB, urlC] = urls as [string, string, string];

  // Push to A, pull from C.
  const dirA = join(tempDir(), "client-a");
  writeTree(dirA, { "shared.txt": "base\n", notes: { "todo.txt": "one\n" }, "keep.txt": "keep\n", "delete-me.txt": "x\n" });
  const first = (await runCli(["push", dirA, "--remote", urlA, "--folder", "team", "--json"])).json();
  await waitForSameHead(urls, "team");
  const dirC = join(tempDir(), "client-c");
  expect((await runCli(["pull", dirC, "--remote", urlC, "--folder", "team"])).code).toBe(0);
  expect(readFileSync(join(dirC, "notes/todo.txt"), "utf8")).toBe("one\n");
  expect(readFileSync(join(dirC, "shared.txt"), "utf8")).toBe("base\n");

  // B goes away hard.
  await nodes[1]!.kill9();

  // Different changes on A and C, one path changed on both.
  writeFileSync(join(dirA, "shared.txt"), "from A\n");
  writeFileSync(join(dirA, "only-a.txt"), "a\n");
  const pushA = await runCli(["push", dirA, "--json"]);
  expect(pushA.code).toBe(0);
  writeFileSync(join(dirC, "shared.txt"), "from C\n");
  rmSync(join(dirC, "delete-me.txt"));
  writeFileSync(join(dirC, "notes/todo.txt"), "one\ntwo\n");
  const pushC = await runCli(["push", dirC, "--json"]);
  expect(pushC.code).toBe(0);
  const acknowledged = [first.version, pushA.json().version, pushA.json().pushed, pushC.json().version, pushC.json().pushed];

  await waitForSameHead([urlA, urlC], "team");

  // A's status: B unreachable, and A ahead of what B last had.
  let seenFromA: { reachable: boolean | null; lastError: string | null } | undefined;
  let teamOnA: { peers: { peer: string; state: string; aheadWrites: number }[] } | undefined;
  for (let attempt = 0; attempt < 100; attempt++) {
    const status = (await runCli(["status", "--remote", urlA, "--json"])).json();
    seenFromA = status.peers.find((p: { address: string }) => p.address === urlB);
    teamOnA = status.folders.find((f: { name: string }) => f.name === "team");
    if (seenFromA?.reachable === false) break;
    await Bun.sleep(100);
  }
  expect(seenFromA!.reachable).toBe(false);
  expect(seenFromA!.lastError).toBeTruthy();
  const bOnA = teamOnA!.peers.find((p) => p.peer === urlB)!;
  expect(bOnA.state).toBe("ahead");
  expect(bOnA.aheadWrites).toBeGreaterThanOrEqual(2);
  const text = (await runCli(["status", "--remote", urlA])).stdout;
  expect(text).toContain(`${urlB}: ahead: the peer lacks`);

  // B comes back on the same data folder and catches up.
  const restarted = await start(1);
  running.push(restarted);
  const head = await waitForSameHead(urls, "team");

  // The same head means the same root; check it anyway, and that history kept every push.
  const roots = new Set<string>();
  for (const url of urls) {
    const version = (await getJson(`${url}/v1/folders/team/versions/${head}`)).body;
    roots.add(version.root);
    const ids = new Set(((await getJson(`${url}/v1/folders/team/versions`)).body.versions as { id: string }[]).map((v) => v.id));
    for (const id of acknowledged) expect(ids.has(id)).toBe(true);
  }
  expect(roots.size).toBe(1);

  // Pull the converged folder from B: C's later write won shared.txt, A's is kept as a conflict copy.
  const dirB = join(tempDir(), "client-b");
  expect((await runCli(["pull", dirB, "--remote", urlB, "--folder", "team"])).code).toBe(0);
  expect(readFileSync(join(dirB, "shared.txt"), "utf8")).toBe("from C\n");
  expect(readFileSync(join(dirB, "only-a.txt"), "utf8")).toBe("a\n");
  expect(readFileSync(join(dirB, "notes/todo.txt"), "utf8")).toBe("one\ntwo\n");
  expect(readdirSync(dirB).includes("delete-me.txt")).toBe(false);
  const copies = readdirSync(dirB).filter((name) => name.startsWith("shared.sync-conflict-"));
  expect(copies).toHaveLength(1);
  expect(copies[0]).toMatch(/^shared\.sync-conflict-\d{8}-\d{6}-node-a\.txt$/);
  expect(readFileSync(join(dirB, copies[0]!), "utf8")).toBe("from A\n");

  // The log names who wrote what; the merge of the concurrent writes is by replication.
  const logText = (await runCli(["log", dirB])).stdout;
  expect(logText).toContain("by node-a");
  expect(logText).toContain("by node-c");
  expect(logText.split("\n")[0]).toContain("(head)");

  // A replica diff between B and A finds nothing.
  const diff = await runCli(["diff", `${urlA}/team`, `${urlB}/team`]);
  expect(diff.code).toBe(0);

  // Status on B: in sync with both peers (a peer's listing may lag one notice behind; poll).
  let team: { head: string; peers: { state: string; behindWrites: number }[] } | undefined;
  for (let attempt = 0; attempt < 100; attempt++) {
    const status = (await runCli(["status", "--remote", urlB, "--json"])).json();
    team = status.folders.find((f: { name: string }) => f.name === "team");
    if (team?.peers.every((p) => p.state === "in-sync")) break;
    await Bun.sleep(100);
  }
  expect(team!.head).toBe(head);
  expect(team!.peers.map((p) => [p.state, p.behindWrites])).toEqual([["in-sync", 0], ["in-sync", 0]]);
}, 120_000);

test("writes made while two nodes could not see each other merge by replication, the same on both", async () => {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string];
  const dataDirs = [join(tempDir(), "a"), join(tempDir(), "c")];
  const start = (i: number, withPeers: boolean) =>
    startNode({
      dataDir: dataDirs[i],
      listen: `127.0.0.1:${ports[i]}`,
      args: ["--node-id", ["node-a", "node-c"][i]!, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "200", ...(withPeers ? ["--peers", urls[1 - i]!] : [])],
    });
  const a = await start(0, true);
  let c = await start(1, true);
  running.push(a, c);
  const dirA = join(tempDir(), "wa");
  writeTree(dirA, { "shared.txt": "base\n", "other.txt": "o\n" });
  expect((await runCli(["push", dirA, "--remote", urls[0], "--folder", "f"])).code).toBe(0);
  await waitForSameHead(urls, "f");
  const dirC = join(tempDir(), "wc");
  expect((await runCli(["pull", dirC, "--remote", urls[1], "--folder", "f"])).code).toBe(0);

  // C comes back without peers: it hears of nothing and tells nothing.
  await c.stop();
  c = await start(1, false);
  running.push(c);
  writeFileSync(join(dirA, "shared.txt"), "from A\n");
  const pushA = (await runCli(["push", dirA, "--json"])).json();
  writeFileSync(join(dirC, "shared.txt"), "from C\n");
  writeFileSync(join(dirC, "new-on-c.txt"), "c\n");
  const pushC = (await runCli(["push", dirC, "--json"])).json();
  expect(pushC.merged).toBe(false); // C never saw A's write: the two writes are concurrent

  // A still reaches C and merges; C, back with its peer, takes the same merge.
  await c.stop();
  c = await start(1, true);
  running.push(c);
  const head = await waitForSameHead(urls, "f");
  const version = (await getJson(`${urls[1]}/v1/folders/f/versions/${head}`)).body;
  expect(version.author).toBe("");
  expect(version.origin).toBe("merge");
  expect([...version.parents].sort()).toEqual([pushA.version, pushC.version].sort());

  const out = join(tempDir(), "merged");
  expect((await runCli(["pull", out, "--remote", urls[1], "--folder", "f"])).code).toBe(0);
  expect(readFileSync(join(out, "shared.txt"), "utf8")).toBe("from C\n");
  expect(readFileSync(join(out, "new-on-c.txt"), "utf8")).toBe("c\n");
  const copies = readdirSync(out).filter((name) => name.startsWith("shared.sync-conflict-"));
  expect(copies).toEqual([expect.stringMatching(/^shared\.sync-conflict-\d{8}-\d{6}-node-a\.txt$/)]);
  expect(readFileSync(join(out, copies[0]!), "utf8")).toBe("from A\n");
}, 120_000);

test("peer routes need the cluster token; a client token opens none of them", async () => {
  const port = await freePort();
  const node = await startNode({ listen: `127.0.0.1:${port}`, args: ["--token", "client-token-1", "--cluster-token", CLUSTER_TOKEN] });
  running.push(node);
  expect((await getJson(`${node.url}/v1/peer/folders`)).status).toBe(401);
  expect((await getJson(`${node.url}/v1/peer/folders`, "client-token-1")).status).toBe(401);
  const peer = await getJson(`${node.url}/v1/peer/folders`, CLUSTER_TOKEN);
  expect(peer.status).toBe(200);
  expect(typeof peer.body.node).toBe("string");
  // And the cluster token is not a client token.
  expect((await getJson(`${node.url}/v1/folders`, CLUSTER_TOKEN)).status).toBe(401);
  expect((await getJson(`${node.url}/v1/folders`, "client-token-1")).status).toBe(200);

  // A node started without a cluster token refuses peers altogether.
  const lone = await startNode();
  running.push(lone);
  expect((await getJson(`${lone.url}/v1/peer/folders`, CLUSTER_TOKEN)).status).toBe(403);

  // --peers without a cluster token is refused at start.
  const refused = await runCli(["serve", "--data", join(tempDir(), "x"), "--listen", "127.0.0.1:0", "--peers", "http://127.0.0.1:1"]);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("--cluster-token");
  const badPeer = await runCli(["serve", "--data", join(tempDir(), "y"), "--listen", "127.0.0.1:0", "--peers", "ftp://x", "--cluster-token", CLUSTER_TOKEN]);
  expect(badPeer.code).toBe(2);
});
