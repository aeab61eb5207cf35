// GET /v1/events on real processes: a reader that disconnects and comes back with
// Last-Event-ID gets every event it missed while the node still holds it, a reader that stayed
// away past the ring (4096 events) is told of the gap and gets what is held, and a replicated
// push shows on the other node's stream as a fetch and a merge.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { SseParser, type ServerSentEvent } from "../../src/core/sse.ts";
import { EVENT_LOG_CAPACITY } from "../../src/node/events.ts";
import { EVENT_STREAMS_MAX } from "../../src/server/events.ts";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const TOKEN = "events-client-token";
const env = { DSYNC_TOKEN: TOKEN };
const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

interface Stream {
  /** Waits until `count` events in all have come (bounded), and returns them all. */
  until(count: number, timeoutMs?: number): Promise<ServerSentEvent[]>;
  close(): Promise<void>;
}

async function openStream(url: string, lastEventId?: string): Promise<Stream> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
  const abort = new AbortController();
  const response = await fetch(`${url}/v1/events`, { headers, signal: abort.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const received: ServerSentEvent[] = [];
  let ended = false;
  const pump = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received.push(...parser.push(decoder.decode(value, { stream: true })));
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    async until(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count && !ended && Date.now() < deadline) await Bun.sleep(10);
      return [...received];
    },
    async close() {
      abort.abort();
      await pump;
    },
  };
}

async function putObjects(url: string, count: number): Promise<void> {
  // Each stored object is one `push` event; in parallel batches so thousands take a moment.
  for (let start = 0; start < count; start += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, count - start) }, async (_, i) => {
        const bytes = new TextEncoder().encode(`object ${start + i}`);
        const hex = idToHex(blake3(bytes));
        const response = await fetch(`${url}/v1/objects/${hex}`, { method: "PUT", headers: { authorization: `Bearer ${TOKEN}` }, body: bytes });
        if (response.status !== 201) throw new Error(`PUT failed: ${response.status} ${await response.text()}`);
      }),
    );
  }
}

test("a reader that reconnects with Last-Event-ID misses nothing the node holds, and is told of the gap beyond", async () => {
  const node = await startNode({ env, args: ["--token", TOKEN] });
  running.push(node);
  const dir = join(tempDir(), "work");
  writeTree(dir, { "a.txt": "one\n" });

  const first = await openStream(node.url);
  expect((await runCli(["push", dir, "--remote", node.url, "--folder", "work"], { env })).code).toBe(0);
  const seen = await first.until(1);
  await Bun.sleep(200); // the rest of the push's events
  const beforeDisconnect = await first.until(Number.MAX_SAFE_INTEGER, 0);
  await first.close();
  expect(beforeDisconnect.some((e) => e.event === "commit")).toBe(true);
  expect(seen.length).toBeGreaterThan(0);
  const lastSeen = beforeDisconnect.at(-1)!.id!;

  // While no one listens: another push, a pull and a verify.
  writeTree(dir, { "a.txt": "two\n", "b.txt": "bee\n" });
  expect((await runCli(["push", dir], { env })).code).toBe(0);
  expect((await runCli(["pull", join(tempDir(), "copy"), "--remote", node.url, "--folder", "work"], { env })).code).toBe(0);
  expect((await runCli(["verify", "--remote", node.url], { env })).code).toBe(0);
  const held = await (await fetch(`${node.url}/v1/events?since=${lastSeen}&wait=0`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
  expect(held.gap).toBeNull();
  const missedIds: number[] = held.events.map((e: { id: number }) => e.id);
  expect(missedIds.length).toBeGreaterThan(2);

  const resumed = await openStream(node.url, lastSeen);
  const afterReconnect = await resumed.until(missedIds.length);
  await resumed.close();
  // Every missed event, in order, none twice, no gap.
  expect(afterReconnect.map((e) => Number(e.id))).toEqual(missedIds);
  expect(afterReconnect.map((e) => e.event)).toContain("commit");
  expect(afterReconnect.map((e) => e.event)).toContain("verify");
  // The pull's downloads are labelled with its folder (the client names it in X-Dsync-Folder).
  const pulls = afterReconnect.filter((e) => e.event === "pull").map((e) => JSON.parse(e.data));
  expect(pulls.length).toBeGreaterThan(0);
  expect(pulls.every((p) => p.folder === "work" && p.objects > 0)).toBe(true);
  const ids = [...beforeDisconnect, ...afterReconnect].map((e) => Number(e.id));
  expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => ids[0]! + i));

  // Away for longer than the ring holds: the first thing on reconnecting is the gap.
  await putObjects(node.url, EVENT_LOG_CAPACITY + 50);
  const late = await openStream(node.url, lastSeen);
  const afterGap = await late.until(3);
  await late.close();
  expect(afterGap[0]!.event).toBe("gap");
  const gap = JSON.parse(afterGap[0]!.data);
  expect(gap.afterId).toBe(Number(lastSeen));
  expect(gap.reason).toBe("dropped");
  expect(gap.firstHeldId).toBe(gap.lastId - EVENT_LOG_CAPACITY + 1);
  expect(Number(afterGap[1]!.id)).toBe(gap.firstHeldId);
  expect(Number(afterGap[2]!.id)).toBe(gap.firstHeldId + 1);

  // The node restarts: ids go on above the last run's, and an id from that run is a gap.
  const newest = String(gap.lastId);
  await node.stop();
  const again = await startNode({ dataDir: node.dataDir, env, args: ["--token", TOKEN] });
  running.push(again);
  const later = join(tempDir(), "later");
  writeTree(later, { "c.txt": "sea\n" });
  expect((await runCli(["push", later, "--remote", again.url], { env })).code).toBe(0);
  const afterRestart = await openStream(again.url, newest);
  const told = await afterRestart.until(2);
  await afterRestart.close();
  expect(told[0]!.event).toBe("gap");
  expect(JSON.parse(told[0]!.data)).toMatchObject({ afterId: Number(newest), reason: "restarted" });
  expect(Number(told[1]!.id)).toBeGreaterThan(Number(newest));
}, 120_000);

test("a push to one node shows on its peer's stream as a fetch and a merge", async () => {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const nodes = await Promise.all(
    [0, 1].map((i) =>
      startNode({ listen: `127.0.0.1:${ports[i]}`, env, args: ["--token", TOKEN, "--node-id", `n${i}`, "--peers", urls[1 - i]!, "--cluster-token", "events-cluster-token", "--sync-interval-ms", "500"] }),
    ),
  );
  running.push(...nodes);
  const stream = await openStream(urls[1]!);
  const dir = join(tempDir(), "shared");
  writeTree(dir, { "x.txt": "x\n" });
  const pushed = (await runCli(["push", dir, "--remote", urls[0]!, "--folder", "shared", "--json"], { env })).json();
  const deadline = Date.now() + 10_000;
  let events: ServerSentEvent[] = [];
  while (Date.now() < deadline && !events.some((e) => e.event === "merge")) events = await stream.until(events.length + 1, 500);
  await stream.close();
  const fetched = events.find((e) => e.event === "fetch");
  const merged = events.find((e) => e.event === "merge");
  expect(fetched && JSON.parse(fetched.data)).toMatchObject({ folder: "shared", peerNode: "n0", versions: 1 });
  expect(merged && JSON.parse(merged.data)).toMatchObject({ folder: "shared", outcome: "fast-forward", version: pushed.version, author: "n0" });
}, 60_000);

test("at most 64 streams at once, and a reader that goes away gives its place back", async () => {
  const node = await startNode({ env, args: ["--token", TOKEN] });
  running.push(node);
  for (let round = 0; round < 2; round++) {
    const aborts: AbortController[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < EVENT_STREAMS_MAX + 1; i++) {
      const abort = new AbortController();
      aborts.push(abort);
      const response = await fetch(`${node.url}/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: abort.signal });
      statuses.push(response.status);
      if (response.status !== 200) await response.text();
    }
    expect(statuses.filter((s) => s === 200).length).toBe(EVENT_STREAMS_MAX);
    expect(statuses.at(-1)).toBe(503);
    for (const abort of aborts) abort.abort();
    // The node notices each disconnect; wait (bounded) until a stream can be opened again.
    const deadline = Date.now() + 5000;
    for (;;) {
      const probe = await fetch(`${node.url}/v1/events?since=0&wait=0`, { headers: { authorization: `Bearer ${TOKEN}` } });
      await probe.text();
      const stream = new AbortController();
      const response = await fetch(`${node.url}/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: stream.signal });
      stream.abort();
      if (response.status === 200) break;
      await response.text();
      if (Date.now() > deadline) throw new Error("stream places were not given back");
      await Bun.sleep(50);
    }
  }
}, 60_000);
