// A token revoked while its event stream or long poll is open is cut off before anything more
// is sent: the stream closes instead of delivering the next event, and a waiting long poll
// answers 401 instead of the events that woke it. One token holds a bounded number of streams,
// so a token for one folder cannot take every stream of the node. Over a real socket on 127.0.0.1.
import { afterAll, expect, test } from "bun:test";
import type { ObjectId } from "../../src/core/id.ts";
import { SseParser } from "../../src/core/sse.ts";
import { systemRandom } from "../../src/node/clock.ts";
import type { DsyncNode } from "../../src/node/node.ts";
import { SqliteTokenStore } from "../../src/node/token-store.ts";
import { createApp } from "../../src/server/app.ts";
import { EVENT_STREAMS_PER_TOKEN_MAX, LONG_POLLS_PER_TOKEN_MAX } from "../../src/server/events.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

async function commitFile(node: DsyncNode, content: string, parent: ObjectId) {
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": content });
  await node.putObjects(objects.all());
  return node.commit({ folder: "f", root, parent, message: "", chunking: "test", files: 1, totalBytes: content.length });
}

async function setUp() {
  const { node, commit } = await memoryNodeWithOneCommit();
  const tokens = SqliteTokenStore.open(tempDir(), systemRandom);
  const reader = await tokens.create({ role: "read", folders: ["f"], name: "reader", expiresMs: null }, Date.now());
  const app = createApp(node, { token: "admin-token-for-tests", tokens });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  const headers = { authorization: `Bearer ${reader.token}` };
  return { node, tokens, reader, server, url, headers, head: commit.version };
}

test("an open event stream of a token revoked is closed before the next event reaches it", async () => {
  const { node, tokens, reader, server, url, headers, head } = await setUp();
  try {
    const response = await fetch(url("/v1/events"), { headers });
    expect(response.status).toBe(200);
    const body = response.body!.getReader();
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const types: string[] = [];
    const read = async (timeoutMs: number): Promise<"closed" | "data" | "timeout"> => {
      const next = await Promise.race([body.read(), Bun.sleep(timeoutMs).then(() => null)]);
      if (next === null) return "timeout";
      if (next.done) return "closed";
      for (const event of parser.push(decoder.decode(next.value, { stream: true }))) types.push(event.event ?? "message");
      return "data";
    };
    expect(await read(3000)).toBe("data"); // the stream's opening comment
    const first = await commitFile(node, "one", head);
    while (!types.includes("commit")) expect(await read(3000)).toBe("data");

    await tokens.revoke(reader.record.id, Date.now());
    await commitFile(node, "two", first.version);
    const count = types.length;
    // The stream ends, within well under a keepalive, and the second commit never arrives.
    let outcome = await read(5000);
    while (outcome === "data") outcome = await read(5000);
    expect(outcome).toBe("closed");
    expect(types.length).toBe(count);
  } finally {
    server.stop(true);
  }
});

test("a long poll of a token revoked while it waits answers 401, not the event that woke it", async () => {
  const { node, tokens, reader, server, url, headers, head } = await setUp();
  try {
    const lastId = ((await (await fetch(url("/v1/events?since=0&wait=0"), { headers })).json()) as { lastId: number }).lastId;
    const poll = fetch(url(`/v1/events?since=${lastId}&wait=20000`), { headers });
    await Bun.sleep(200);
    await tokens.revoke(reader.record.id, Date.now());
    await commitFile(node, "one", head);
    const started = Date.now();
    const answer = await poll;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(answer.status).toBe(401);
    expect(JSON.stringify(await answer.json())).not.toContain("commit");
  } finally {
    server.stop(true);
  }
});

test("one stored token holds at most EVENT_STREAMS_PER_TOKEN_MAX streams; the node's own token still gets one", async () => {
  const { server, url, headers } = await setUp();
  const open: Response[] = [];
  try {
    for (let i = 0; i < EVENT_STREAMS_PER_TOKEN_MAX; i++) {
      const response = await fetch(url("/v1/events"), { headers });
      expect(response.status).toBe(200);
      open.push(response);
    }
    const refused = await fetch(url("/v1/events"), { headers });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: string }).error).toContain(`at most ${EVENT_STREAMS_PER_TOKEN_MAX} event streams at once per token`);
    const admin = await fetch(url("/v1/events"), { headers: { authorization: "Bearer admin-token-for-tests" } });
    expect(admin.status).toBe(200);
    await admin.body!.cancel();
    // A stream closed by its reader frees its place.
    await open.pop()!.body!.cancel();
    const deadline = Date.now() + 5000;
    for (;;) {
      const again = await fetch(url("/v1/events"), { headers });
      if (again.status === 200) {
        open.push(again);
        break;
      }
      await again.body?.cancel();
      if (Date.now() > deadline) throw new Error(`the token's closed stream was never released: ${again.status}`);
      await Bun.sleep(50);
    }
  } finally {
    for (const response of open) await response.body!.cancel().catch(() => {});
    server.stop(true);
  }
});

test("one stored token has at most LONG_POLLS_PER_TOKEN_MAX long polls waiting; the next is 429 at once", async () => {
  const { server, url, headers } = await setUp();
  const controller = new AbortController();
  try {
    const lastId = ((await (await fetch(url("/v1/events?since=0&wait=0"), { headers })).json()) as { lastId: number }).lastId;
    const waiting = Array.from({ length: LONG_POLLS_PER_TOKEN_MAX }, () => fetch(url(`/v1/events?since=${lastId}&wait=20000`), { headers, signal: controller.signal }).catch(() => null));
    await Bun.sleep(300);
    const started = Date.now();
    const refused = await fetch(url(`/v1/events?since=${lastId}&wait=20000`), { headers });
    expect(refused.status).toBe(429);
    expect(Date.now() - started).toBeLessThan(5000);
    const admin = await fetch(url(`/v1/events?since=${lastId}&wait=0`), { headers: { authorization: "Bearer admin-token-for-tests" } });
    expect(admin.status).toBe(200);
    controller.abort();
    await Promise.all(waiting);
  } finally {
    server.stop(true);
  }
});
