// Long polls of GET /v1/events are bounded in number like streams: each waiting one holds a
// connection and a timer for up to 30 s, so past LONG_POLLS_WAITING_MAX the next is told 503 at
// once, and a place is given back as soon as a waiting poll ends (answered or disconnected).
import { expect, test } from "bun:test";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { LONG_POLLS_WAITING_MAX } from "../../src/server/events.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";

const TOKEN = "client-token-for-tests";

test("past the bound a long poll is refused at once; a disconnected one gives its place back", async () => {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1", clock: { nowMs: () => 0 } });
  const app = createApp(node, { token: TOKEN });
  const since = node.events.lastId;
  const poll = async (signal?: AbortSignal, after = since): Promise<Response> => app.request(`/v1/events?since=${after}&wait=30000`, { headers: { authorization: `Bearer ${TOKEN}` }, signal });
  /** The answer within `ms`, or "waiting" (the poll is still held). */
  const within = (response: Promise<Response>, ms: number) => Promise.race([response, Bun.sleep(ms).then(() => "waiting" as const)]);

  const aborts = Array.from({ length: LONG_POLLS_WAITING_MAX }, () => new AbortController());
  const waiting = aborts.map((abort) => poll(abort.signal));
  try {
    expect(await within(waiting[0]!, 50)).toBe("waiting");
    const refused = await within(poll(), 2000);
    expect(refused).not.toBe("waiting");
    expect((refused as Response).status).toBe(503);
    expect(((await (refused as Response).json()) as { error: string }).error).toContain(`at most ${LONG_POLLS_WAITING_MAX} long polls`);

    // One reader hangs up: its poll ends, and the next poll waits again instead of being refused.
    aborts[0]!.abort();
    await waiting[0]!.catch(() => undefined);
    const abortNext = new AbortController();
    const next = poll(abortNext.signal);
    expect(await within(next, 100)).toBe("waiting");
    // An event answers every waiting poll and so frees every place.
    node.events.emit("push", null, { objects: 1 });
    const answered = (await Promise.all([next, ...waiting.slice(1)])) as Response[];
    for (const response of answered) expect(response.status).toBe(200);
    // Every place is free again: a poll after the newest event waits rather than being refused.
    const abortLast = new AbortController();
    aborts.push(abortLast);
    expect(await within(poll(abortLast.signal, node.events.lastId), 100)).toBe("waiting");
  } finally {
    for (const abort of aborts) abort.abort();
    node.events.close();
  }
});
