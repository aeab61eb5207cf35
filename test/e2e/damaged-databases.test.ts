// A damaged database in a data folder, on real `dsync serve` processes. The object index
// (objects/index.sqlite) is derived from the packs: the node moves the damaged file aside, keeps
// it, rebuilds the index, says so, and serves every object. The metadata database holds the only
// copy of the folders and heads: the node refuses to start on it, names the file and the next
// step, and changes nothing; following that step with a peer brings the folders back.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { headOf, waitFor } from "../helpers/wait-for.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";

const CLUSTER_TOKEN = "test-cluster-token-damaged-databases";
const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

const TREE = { "big.bin": randomBytes(300_000, 5), docs: { "a.txt": "alpha\n", "b.txt": "beta\n" } };

/**
 * Every byte from page `firstPage` (1-based, 4 KiB pages) on overwritten: a read of a table
 * there fails as malformed. Page 1 holds the schema; in metadata.sqlite page 2 is the `meta`
 * table (the node id), the first one created.
 */
function damageFromPage(path: string, firstPage: number): Buffer {
  const bytes = readFileSync(path);
  expect(bytes.length).toBeGreaterThan(firstPage * 4096);
  bytes.fill(0xff, (firstPage - 1) * 4096);
  writeFileSync(path, bytes);
  return bytes;
}

function listing(dir: string): string[] {
  return readdirSync(dir).sort();
}

test("a damaged object index: the node moves it aside, rebuilds it from the packs, says so, and serves every object", async () => {
  const first = await startNode();
  const source = join(tempDir(), "src");
  writeTree(source, TREE);
  expect((await runCli(["push", source, "--remote", first.url, "--folder", "docs"])).code).toBe(0);
  await first.stop();
  const objectsDir = join(first.dataDir, "objects");
  expect(existsSync(join(objectsDir, "index.sqlite-wal"))).toBe(false);
  const damaged = damageFromPage(join(objectsDir, "index.sqlite"), 2);

  const node = await startNode({ dataDir: first.dataDir });
  running.push(node);
  const movedAside = listing(objectsDir).filter((name) => name.startsWith("index.sqlite.damaged-"));
  expect(movedAside).toHaveLength(1);
  expect(readFileSync(join(objectsDir, movedAside[0]!)).equals(damaged)).toBe(true);
  expect(node.output()).toContain(`the object index was damaged (database disk image is malformed); it was moved aside to ${join(objectsDir, movedAside[0]!)}`);
  expect(node.output()).toMatch(/rebuilt from the packs: \d+ records indexed/);

  const target = join(tempDir(), "pulled");
  expect((await runCli(["pull", target, "--remote", node.url, "--folder", "docs"])).code).toBe(0);
  expect(describeTree(target)).toEqual(describeTree(source));
  const verified = await runCli(["verify", "--remote", node.url, "--json"]);
  expect(verified.json()).toMatchObject({ healthy: true, indexIntegrity: "ok", metadataIntegrity: "ok" });
}, 60_000);

test("a damaged metadata database: serve refuses, naming the file and the next step, and changes nothing", async () => {
  const first = await startNode({ args: ["--node-id", "node-m"] });
  const source = join(tempDir(), "src");
  writeTree(source, TREE);
  expect((await runCli(["push", source, "--remote", first.url, "--folder", "docs"])).code).toBe(0);
  await first.stop();
  const metadataPath = join(first.dataDir, "metadata.sqlite");
  expect(existsSync(`${metadataPath}-wal`)).toBe(false);
  // The node id's page is left whole, so the message can name the id to start with again.
  const damaged = damageFromPage(metadataPath, 3);
  const before = listing(first.dataDir);

  const refused = await runCli(["serve", "--data", first.dataDir, "--listen", "127.0.0.1:0"]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`the metadata database ${metadataPath} is damaged (database disk image is malformed)`);
  expect(refused.stderr).toContain("so the node does not start on it, and nothing was changed");
  expect(refused.stderr).toContain(`Next step: keep a copy of the data folder, then recover from a peer: move ${metadataPath}`);
  expect(refused.stderr).toContain("--node-id node-m");
  expect(refused.stderr).not.toContain("listening on");
  expect(listing(first.dataDir)).toEqual(before);
  expect(readFileSync(metadataPath).equals(damaged)).toBe(true);

  // verify --data names it too, and exits 1.
  const verified = await runCli(["verify", "--data", first.dataDir, "--json"]);
  expect(verified.code).toBe(1);
  expect(verified.json().metadataIntegrity).not.toBe("ok");
  expect(readFileSync(metadataPath).equals(damaged)).toBe(true);
}, 60_000);

test("the documented recovery: with the damaged metadata moved aside, the node started with its peers and node id gets its folders back", async () => {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const dataDirs = ["a", "b"].map((name) => join(tempDir(), name));
  const args = (i: number) => ["--node-id", `node-${"ab"[i]}`, "--peers", urls[1 - i]!, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "200"];
  const start = (i: number) => startNode({ dataDir: dataDirs[i], listen: `127.0.0.1:${ports[i]}`, args: args(i) });
  const a = await start(0);
  running.push(a);
  let b = await start(1);
  const source = join(tempDir(), "src");
  writeTree(source, TREE);
  expect((await runCli(["push", source, "--remote", a.url, "--folder", "docs"])).code).toBe(0);
  writeTree(source, { docs: { "c.txt": "gamma\n" } });
  expect((await runCli(["push", source, "--remote", a.url, "--folder", "docs"])).code).toBe(0);
  const head = (await headOf(a.url, "docs"))!;
  await waitFor("B to replicate the head", () => headOf(b.url, "docs"), (h) => h === head, 30_000, 100);
  await b.stop();

  const metadataPath = join(dataDirs[1]!, "metadata.sqlite");
  // The node id's page too: the message then asks for the old id.
  damageFromPage(metadataPath, 2);
  const refused = await runCli(["serve", "--data", dataDirs[1]!, "--listen", `127.0.0.1:${ports[1]}`, ...args(1)]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`the metadata database ${metadataPath} is damaged`);
  expect(refused.stderr).toContain("with its peers and its old --node-id");

  // The step the message names: the damaged file moved aside (kept), the node started again.
  renameSync(metadataPath, `${metadataPath}.damaged`);
  b = await start(1);
  running.push(b);
  // Not silently empty: the node says it starts with no folders over a store that holds objects.
  expect(b.output()).toContain(`${metadataPath} was missing, but the object store holds `);
  expect(b.output()).toMatch(/holds [1-9]\d* object\(s\): this node starts with no folders; its peers bring back the folders they hold/);
  await waitFor("B to get the folder back", () => headOf(b.url, "docs"), (h) => h === head, 30_000, 100);
  // The same versions (where each was recorded, and when, is each node's own).
  const history = (url: string) =>
    runCli(["log", "--remote", url, "--folder", "docs", "--json"]).then((r) =>
      r.json().versions.map((v: { id: string; parents: string[]; root: string; author: string }) => [v.id, v.parents, v.root, v.author]),
    );
  const historyA = await history(a.url);
  expect(historyA).toHaveLength(2);
  expect(await history(b.url)).toEqual(historyA);
  const target = join(tempDir(), "pulled-b");
  expect((await runCli(["pull", target, "--remote", b.url, "--folder", "docs"])).code).toBe(0);
  expect(describeTree(target)).toEqual(describeTree(source));
  expect(existsSync(`${metadataPath}.damaged`)).toBe(true);
}, 90_000);
