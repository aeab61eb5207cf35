// The event log and GET /v1/events: increasing ids, resuming after a disconnect with
// Last-Event-ID loses nothing the ring still holds, what it no longer holds is reported as a
// gap, the long poll waits a bounded time, and the route is behind the client token.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeIdList, encodeObjectBatch } from "../../src/wire/formats.ts";
import { SseParser, type ServerSentEvent } from "../../src/core/sse.ts";
import { EventLog, EVENT_LOG_CAPACITY, firstEventId } from "../../src/node/events.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const TOKEN = "client-token-for-tests";

async function setUp() {
  // A clock at 0 makes this run's first event id 1 (firstEventId), so ids read 1, 2, 3...
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1", clock: { nowMs: () => 0 } });
  const app = createApp(node, { token: TOKEN });
  const get = (path: string, headers: Record<string, string> = {}) => app.request(path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
  return { node, app, get };
}

/** Reads events from a stream until `count` have come or `timeoutMs` passed, then disconnects. */
async function readEvents(response: Response, count: number, timeoutMs = 3000): Promise<ServerSentEvent[]> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const out: ServerSentEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (out.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const next = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
      if (next === null || next.done) break;
      out.push(...parser.push(decoder.decode(next.value, { stream: true })));
    }
  } finally {
    await reader.cancel();
  }
  return out;
}

async function commitFile(node: DsyncNode, folder: string, content: string, parent: ObjectId | null) {
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": content });
  await node.putObjects(objects.all());
  return node.commit({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: content.length });
}

describe("event log", () => {
  test("ids increase by one; a reader after an id the ring dropped is told of the gap with the first id held", () => {
    const log = new EventLog({ nowMs: () => 1000 }, 4);
    for (let i = 0; i < 6; i++) log.emit("push", null, { n: i });
    expect(log.lastId).toBe(6);
    expect(log.firstHeldId).toBe(3);
    const within = log.since(3);
    expect(within.gap).toBeNull();
    expect(within.events.map((e) => e.id)).toEqual([4, 5, 6]);
    const beyond = log.since(1);
    expect(beyond.gap).toEqual({ afterId: 1, firstHeldId: 3, reason: "dropped" });
    expect(beyond.events.map((e) => e.id)).toEqual([3, 4, 5, 6]);
    // An id this run never gave (the node restarted since): everything held is sent, as a gap.
    const unknown = log.since(99);
    expect(unknown.gap?.reason).toBe("unknown-id");
    expect(unknown.events.map((e) => e.id)).toEqual([3, 4, 5, 6]);
  });

  test("a run's ids start above the last run's, so an id from before a restart is reported as a gap", () => {
    expect(firstEventId(1_700_000_000_000)).toBe(1_700_000_000_000_000);
    expect(Number.isSafeInteger(firstEventId(Date.UTC(2255, 0, 1)))).toBe(true);
    const before = new EventLog({ nowMs: () => 5000 }, 16, firstEventId(5000));
    const seen = [before.emit("commit", "f"), before.emit("commit", "f")].at(-1)!.id;
    const after = new EventLog({ nowMs: () => 9000 }, 16, firstEventId(9000));
    expect(after.since(seen)).toEqual({ events: [], gap: { afterId: seen, firstHeldId: null, reason: "restarted" }, lastId: firstEventId(9000) - 1 });
    after.emit("push", null);
    const reply = after.since(seen);
    expect(reply.gap).toEqual({ afterId: seen, firstHeldId: firstEventId(9000), reason: "restarted" });
    expect(reply.events.map((e) => e.id)).toEqual([firstEventId(9000)]);
    // Asking from 0 is asking for all of this run: no gap unless some of it was dropped.
    expect(after.since(0).gap).toBeNull();
    expect(after.since(0).events.length).toBe(1);
  });

  test("a wait ends at its timeout, at the next event, or when the log closes", async () => {
    const log = new EventLog({ nowMs: () => 0 });
    const started = Date.now();
    await log.waitAfter(0, 50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    const waiting = log.waitAfter(0, 10_000);
    log.emit("commit", "f");
    await waiting;
    const closing = log.waitAfter(1, 10_000);
    log.close();
    await closing;
    expect(log.capacity).toBe(EVENT_LOG_CAPACITY);
  });
});

describe("GET /v1/events", () => {
  test("needs the client token", async () => {
    const { app, get } = await setUp();
    expect((await get("/v1/events?since=0&wait=0")).status).toBe(200);
    expect((await app.request("/v1/events")).status).toBe(401);
    expect((await app.request("/v1/events?since=0", { headers: { authorization: "Bearer wrong-token-xx" } })).status).toBe(401);
  });

  test("a commit, and each conflict of a merged push, are events with increasing ids", async () => {
    const { node, get } = await setUp();
    const first = await commitFile(node, "docs", "one", null);
    await commitFile(node, "docs", "two", first.version);
    const stale = await commitFile(node, "docs", "three", first.version); // stale parent: merged, a conflict
    expect(stale.conflicts.length).toBe(1);
    const reply = await (await get("/v1/events?since=0")).json();
    const types = reply.events.map((e: { type: string }) => e.type);
    expect(types).toEqual(["commit", "commit", "commit", "conflict"]);
    expect(reply.events.map((e: { id: number }) => e.id)).toEqual([1, 2, 3, 4]);
    expect(reply.events[3]).toMatchObject({ type: "conflict", folder: "docs", path: "a.txt" });
    expect(reply.events[2]).toMatchObject({ type: "commit", folder: "docs", origin: "push", author: "n1", conflicts: 1 });
    expect(reply.gap).toBeNull();
  });

  test("an object transfer is labelled with the folder the client names in X-Dsync-Folder, when it is a valid folder name", async () => {
    const { app } = await setUp();
    const bytes = new TextEncoder().encode("content");
    const id = blake3(bytes);
    const call = (path: string, body: Uint8Array, folder?: string) =>
      app.request(path, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/msgpack", ...(folder === undefined ? {} : { "x-dsync-folder": folder }) },
        body: body as Uint8Array<ArrayBuffer>,
      });
    expect((await call("/v1/objects/upload", encodeObjectBatch([{ id, bytes }]), "photos")).status).toBe(200);
    expect((await call("/v1/objects/download", encodeIdList([id]), "photos")).status).toBe(200);
    expect((await call("/v1/objects/download", encodeIdList([id]), "../etc")).status).toBe(200);
    expect((await call("/v1/objects/download", encodeIdList([id]))).status).toBe(200);
    expect((await app.request(`/v1/objects/${idToHex(id)}`, { headers: { authorization: `Bearer ${TOKEN}`, "x-dsync-folder": "photos" } })).status).toBe(200);
    const reply = await (await app.request("/v1/events?since=0&wait=0", { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(reply.events.map((e: { type: string; folder: string | null; bytes: number }) => [e.type, e.folder, e.bytes])).toEqual([
      ["push", "photos", 7],
      ["pull", "photos", 7],
      ["pull", null, 7],
      ["pull", null, 7],
      ["pull", "photos", 7],
    ]);
  });

  test("resuming with Last-Event-ID after a disconnect loses nothing the ring holds", async () => {
    const { node, get } = await setUp();
    const live = get("/v1/events");
    const firstResponse = await live;
    expect(firstResponse.headers.get("content-type")).toStartWith("text/event-stream");
    const firstReading = readEvents(firstResponse, 2);
    await Bun.sleep(20);
    node.events.emit("push", null, { objects: 1, bytes: 10 });
    node.events.emit("push", null, { objects: 2, bytes: 20 });
    const seen = await firstReading; // disconnects after two
    expect(seen.map((e) => e.id)).toEqual(["1", "2"]);
    // While disconnected:
    for (let i = 0; i < 5; i++) node.events.emit("pull", null, { objects: i, bytes: i });
    const resumed = await readEvents(await get("/v1/events", { "last-event-id": "2" }), 5);
    expect(resumed.map((e) => e.id)).toEqual(["3", "4", "5", "6", "7"]);
    expect(resumed.every((e) => e.event === "pull")).toBe(true);
    expect(JSON.parse(resumed[0]!.data)).toMatchObject({ id: 3, type: "pull", objects: 0 });
  });

  test("resuming after an id the ring no longer holds reports the gap first, then what is held", async () => {
    const { node, get } = await setUp();
    for (let i = 0; i < EVENT_LOG_CAPACITY + 10; i++) node.events.emit("push", null, { objects: 1, bytes: i });
    const events = await readEvents(await get("/v1/events", { "last-event-id": "5" }), 3);
    expect(events[0]!.event).toBe("gap");
    expect(events[0]!.id).toBeNull();
    expect(JSON.parse(events[0]!.data)).toEqual({ type: "gap", afterId: 5, firstHeldId: 11, lastId: EVENT_LOG_CAPACITY + 10, reason: "dropped" });
    expect(events[1]!.id).toBe("11");
    expect(events[2]!.id).toBe("12");
    // The long poll says the same.
    const polled = await (await get("/v1/events?since=5")).json();
    expect(polled.gap).toMatchObject({ afterId: 5, firstHeldId: 11, reason: "dropped" });
    expect(polled.events[0].id).toBe(11);
    expect(polled.events.length).toBe(1000);
  });

  test("the long poll answers when an event comes, and after its bounded wait when none does", async () => {
    const { node, get } = await setUp();
    const started = Date.now();
    const empty = await (await get("/v1/events?since=0&wait=100")).json();
    expect(empty).toEqual({ events: [], gap: null, lastId: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    const waiting = get("/v1/events?since=0&wait=10000");
    await Bun.sleep(30);
    node.events.emit("peer", null, { peer: "http://127.0.0.1:1", reachable: false });
    const reply = await (await waiting).json();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(reply.events.map((e: { type: string }) => e.type)).toEqual(["peer"]);
    expect((await get("/v1/events?since=-1")).status).toBe(400);
    expect((await get("/v1/events?since=99999999999999999")).status).toBe(400);
    expect((await get("/v1/events?since=1700000000000000&wait=0")).status).toBe(200);
    expect((await get("/v1/events?since=0&wait=soon")).status).toBe(400);
    expect((await get("/v1/events", { "last-event-id": "abc" })).status).toBe(400);
  });

  test("a stream ends when the log closes (the node stopping)", async () => {
    const { node, get } = await setUp();
    const response = await get("/v1/events");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("text/event-stream");
    const reader = response.body!.getReader();
    await reader.read(); // the opening comment
    node.events.close();
    const next = await Promise.race([reader.read(), Bun.sleep(2000).then(() => "timeout" as const)]);
    expect(next).not.toBe("timeout");
    expect((next as { done: boolean }).done).toBe(true);
  });
});

describe("dashboard routes", () => {
  test("/ and its two files are served without a token, each with the CSP; /ui leads to /", async () => {
    const { app } = await setUp();
    for (const [path, type] of [["/", "text/html"], ["/ui/app.js", "text/javascript"], ["/ui/style.css", "text/css"]] as const) {
      const response = await app.request(path);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toStartWith(type);
      expect(response.headers.get("content-security-policy")).toBe(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      );
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    }
    const page = await (await app.request("/")).text();
    // No inline script: the page loads one script file and nothing else runs.
    expect(page.match(/<script/g)?.length).toBe(1);
    expect(page).toContain('<script type="module" src="/ui/app.js"></script>');
    expect(page).not.toMatch(/\son\w+=/);
    const redirect = await app.request("/ui");
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("/");
  });
});

describe("SSE parser", () => {
  test("splits events across pieces and line endings, keeps the last id", () => {
    const parser = new SseParser();
    expect(parser.push("id: 1\nevent: push\nda")).toEqual([]);
    expect(parser.push("ta: {\"a\":1}\r\n\r\n: comment\n\nevent: gap\ndata: x\ndata: y\n\n")).toEqual([
      { id: "1", event: "push", data: '{"a":1}' },
      { id: null, event: "gap", data: "x\ny" },
    ]);
    expect(parser.lastEventId).toBe("1");
  });
});
