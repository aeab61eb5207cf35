// JSON bodies are small requests (a commit, a restore, a peer's history question); they are
// bounded by LIMITS.jsonBodyBytesMax, as sent and once inflated, not by the 64 MiB of object
// batches: 23 MiB of "{}," parsed into 741 MiB of memory before.
import { describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

async function setUp() {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  const app = createApp(node, { token: "client", clusterToken: "cluster", peerService: new PeerService(node, () => {}) });
  const post = (path: string, body: BodyInit, headers: Record<string, string> = {}, token = "client") =>
    app.request(path, { method: "POST", body, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers } });
  return { node, root: idToHex(root), post };
}

const over = LIMITS.jsonBodyBytesMax + 1;

describe("JSON body bound", () => {
  test("a commit whose body passes the bound is refused with 413 and commits nothing", async () => {
    const { node, root, post } = await setUp();
    const body = JSON.stringify({ root, parent: null, padding: "x".repeat(over) });
    const response = await post("/v1/folders/f/commit", body);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: string }).error).toContain(`larger than ${LIMITS.jsonBodyBytesMax} bytes`);
    expect(await node.metadata.getFolder("f")).toBeUndefined();
    // The same commit within the bound goes through.
    expect((await post("/v1/folders/f/commit", JSON.stringify({ root, parent: null }))).status).toBe(200);
  });

  test("a compressed body that inflates past the bound is refused", async () => {
    const { root, post } = await setUp();
    const inflated = Bun.zstdCompressSync(new TextEncoder().encode(JSON.stringify({ root, parent: null, padding: " ".repeat(over) })));
    expect(inflated.length).toBeLessThan(LIMITS.jsonBodyBytesMax);
    const response = await post("/v1/folders/f/commit", inflated as Uint8Array<ArrayBuffer>, { "content-encoding": "zstd" });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: string }).error).toContain("inflates past");
  });

  test("a body of millions of empty objects is refused before it is parsed, on client and peer routes", async () => {
    const { post } = await setUp();
    const bomb = "[" + "{},".repeat(4 * 1024 * 1024) + "{}]";
    for (const [path, token] of [["/v1/folders/f/commit", "client"], ["/v1/folders/f/restore", "client"], ["/v1/gc", "client"], ["/v1/peer/folders/f/history", "cluster"], ["/v1/peer/notify", "cluster"]] as const) {
      const response = await post(path, bomb, {}, token);
      expect(response.status).toBe(413);
    }
  });

  test("the largest real JSON body, a history request resuming from the most ids, is within the bound", async () => {
    const { root, post } = await setUp();
    const body = JSON.stringify({ head: root, known: {}, resumeFrom: Array(LIMITS.historyResumeIdsMax).fill(root) });
    expect(body.length).toBeLessThan(LIMITS.jsonBodyBytesMax);
    const response = await post("/v1/peer/folders/f/history", body, {}, "cluster");
    expect(response.status).not.toBe(413);
  });
});
