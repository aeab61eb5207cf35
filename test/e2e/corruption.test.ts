// A byte flipped in a stored record, on real nodes: the object is quarantined when found (it then
// counts as missing, so a push sends it again), repaired from a peer on a read, by the
// background scrub, or by `dsync verify --repair`, and counted in status and verify.
import { afterAll, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { RECORD_HEADER_LENGTH_BYTES } from "../../src/store/pack-format.ts";
import { findRecord } from "../helpers/pack-files.ts";
import { headOf, waitFor } from "../helpers/wait-for.ts";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

const CLUSTER_TOKEN = "test-cluster-token-corruption";
const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

/** Flips one payload byte of an object's record in place (under a running node too), as a failing disk would. */
export function flipPayloadByte(dataDir: string, idHex: string, payloadOffsetBytes = 100): void {
  const { path, offsetBytes } = findRecord(join(dataDir, "objects"), Buffer.from(idHex, "hex"));
  const fd = openSync(path, "r+");
  try {
    const one = Buffer.alloc(1);
    const at = offsetBytes + RECORD_HEADER_LENGTH_BYTES + payloadOffsetBytes;
    readSync(fd, one, 0, 1, at);
    one[0] = one[0]! ^ 0x20;
    writeSync(fd, one, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

async function chunkIds(path: string): Promise<string[]> {
  const result = await runCli(["inspect", "chunks", path, "--json"]);
  return result.json<{ chunks: { id: string }[] }>().chunks.map((c) => c.id);
}

async function status(url: string): Promise<any> {
  return (await runCli(["status", "--remote", url, "--json"])).json();
}

const BIG = randomBytes(400_000, 11);

test("one node: a corrupt chunk is quarantined on read, a push of the same bytes to a new folder sends it again, and both folders pull intact", async () => {
  const node = await startNode();
  running.push(node);
  const source = join(tempDir(), "alpha");
  writeTree(source, { "big.bin": BIG, "small.txt": "hello\n" });
  expect((await runCli(["push", source, "--remote", node.url, "--folder", "alpha", "--json"])).code).toBe(0);
  const [, victim] = await chunkIds(join(source, "big.bin"));
  flipPayloadByte(node.dataDir, victim!);

  // The first read finds the damage: the pull fails with a reason, not wrong bytes.
  const failed = await runCli(["pull", join(tempDir(), "p1"), "--remote", node.url, "--folder", "alpha"]);
  expect(failed.code).not.toBe(0);
  expect(failed.stderr).toMatch(/corrupt/);

  // The same bytes pushed to a new folder: the node now says it lacks the chunk, so it is sent.
  const copy = join(tempDir(), "beta");
  writeTree(copy, { "big.bin": BIG, "small.txt": "hello\n" });
  const pushed = (await runCli(["push", copy, "--remote", node.url, "--folder", "beta", "--json"])).json();
  expect(pushed.chunks_sent).toBeGreaterThanOrEqual(1);
  for (const folder of ["beta", "alpha"]) {
    const target = join(tempDir(), `pulled-${folder}`);
    const pulled = await runCli(["pull", target, "--remote", node.url, "--folder", folder]);
    expect(pulled.code).toBe(0);
    expect(readFileSync(join(target, "big.bin")).equals(Buffer.from(BIG))).toBe(true);
  }
  expect((await status(node.url)).objects).toMatchObject({ quarantined: 0, repaired: 1, unrepairable: 0 });
  expect((await runCli(["verify", "--remote", node.url])).code).toBe(0);

  // Offline, there is no peer to repair from: verify --repair says so and exits 1.
  const [, , third] = await chunkIds(join(source, "big.bin"));
  await node.stop();
  flipPayloadByte(node.dataDir, third!);
  const offline = await runCli(["verify", "--data", node.dataDir, "--repair", "--json"]);
  expect(offline.code).toBe(1);
  const report = offline.json();
  expect(report.corrupt).toEqual([third]);
  expect(report.repairFrom).toBe("none");
  expect(report.unrepairable.map((d: { id: string }) => d.id)).toEqual([third]);
  expect(report.unrepairable[0].affected.map((a: { folder: string }) => a.folder).sort()).toEqual(["alpha", "beta"]);
  const text = await runCli(["verify", "--data", node.dataDir, "--repair"]);
  expect(text.code).toBe(1);
  expect(text.stdout).toContain("no peers to fetch from; 1 unrepairable");
  expect(text.stdout).toContain(`unrepairable ${third}`);
}, 90_000);

test("two nodes: a corrupt object is repaired from the peer on a read, by verify --repair, and by the background scrub", async () => {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string];
  const dataDirs = ["a", "b"].map((name) => join(tempDir(), name));
  const start = (i: number, extra: string[] = []) =>
    startNode({
      dataDir: dataDirs[i],
      listen: `127.0.0.1:${ports[i]}`,
      args: ["--node-id", `node-${"ab"[i]}`, "--peers", urls[1 - i]!, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300", ...extra],
    });
  let a = await start(0);
  // B's scrub is off at first, so what finds the damage is what the test does.
  let b = await start(1, ["--scrub-bytes-per-second", "0"]);
  running.push(a, b);
  const [urlA, urlB] = urls;
  const source = join(tempDir(), "team");
  writeTree(source, { "big.bin": BIG, docs: { "readme.txt": "read me\n" } });
  expect((await runCli(["push", source, "--remote", urlA, "--folder", "team", "--json"])).code).toBe(0);
  const head = await waitFor("B to hold A's head", () => headOf(urlB, "team"), (h) => h !== null);
  expect(head).toBe(await headOf(urlA, "team"));
  const chunks = await chunkIds(join(source, "big.bin"));
  expect(chunks.length).toBeGreaterThanOrEqual(4);

  // 1. A read on B finds the damage; B fetches A's copy and the pull gets the right bytes.
  flipPayloadByte(b.dataDir, chunks[0]!);
  const first = join(tempDir(), "first");
  expect((await runCli(["pull", first, "--remote", urlB, "--folder", "team"])).code).toBe(0);
  expect(readFileSync(join(first, "big.bin")).equals(Buffer.from(BIG))).toBe(true);
  expect((await status(urlB)).objects).toMatchObject({ quarantined: 0, repaired: 1 });

  // 2. With A down, verify finds two damaged chunks it cannot repair; status counts them.
  await a.stop();
  flipPayloadByte(b.dataDir, chunks[1]!);
  flipPayloadByte(b.dataDir, chunks[2]!);
  const found = await runCli(["verify", "--remote", urlB, "--json"]);
  expect(found.code).toBe(1);
  const foundReport = found.json();
  expect(foundReport.corrupt.sort()).toEqual([chunks[1], chunks[2]].sort());
  expect(foundReport.unrepairable.map((d: { id: string }) => d.id).sort()).toEqual([chunks[1], chunks[2]].sort());
  expect(foundReport.unrepairable[0].affected).toEqual([{ folder: "team", version: head }]);
  const counted = await status(urlB);
  expect(counted.objects).toMatchObject({ quarantined: 2, repaired: 1 });
  const statusText = (await runCli(["status", "--remote", urlB])).stdout;
  expect(statusText).toContain("objects: 2 corrupt");
  expect(statusText).toContain("corrupt: 2 objects quarantined here await repair");

  // 3. A is back: verify --repair fetches both from it and exits 0. B's background repair also
  // retries as soon as A answers again, so it may have fetched some of them first: between them,
  // both are repaired, and verify --repair reports only what it fetched itself.
  a = await start(0);
  running.push(a);
  const repaired = await runCli(["verify", "--remote", urlB, "--repair", "--json"]);
  const repairedReport = repaired.json();
  expect(repairedReport.repairFrom).toBe("peers");
  for (const id of repairedReport.repaired) expect([chunks[1], chunks[2]]).toContain(id);
  expect(repairedReport.unrepairable).toEqual([]);
  expect(repairedReport.quarantined).toBe(0);
  expect(repaired.code).toBe(0);
  expect((await status(urlB)).objects).toMatchObject({ quarantined: 0, repaired: 3, unrepairable: 0 });

  // 4. B restarts with its scrub on: it finds damage nobody reads and repairs it from A by itself.
  await b.stop();
  flipPayloadByte(b.dataDir, chunks[3]!);
  b = await start(1, ["--scrub-bytes-per-second", "50000000"]);
  running.push(b);
  const scrubbed = await waitFor("the scrub to find and repair the damage", () => status(urlB), (s) => s.objects?.repaired >= 4);
  expect(scrubbed.objects.scrub.corruptFound).toBe(1);
  expect(scrubbed.objects.quarantined).toBe(0);
  const clean = await runCli(["verify", "--remote", urlB, "--json"]);
  expect(clean.code).toBe(0);
  expect(clean.json().corrupt).toEqual([]);
  const last = join(tempDir(), "last");
  expect((await runCli(["pull", last, "--remote", urlB, "--folder", "team"])).code).toBe(0);
  expect(readFileSync(join(last, "big.bin")).equals(Buffer.from(BIG))).toBe(true);
}, 120_000);
