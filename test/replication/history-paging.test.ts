// A peer's history answer is one bounded page; the asking node follows `more` until the walk
// ends, so replication still receives every version it lacks, each once, however long the gap
// and whatever the shape of the graph (merges reach a version by several paths).
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { EMPTY_VECTOR } from "../../src/core/version-vector.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { HistoryPage, HistoryRequest, PeerTransport } from "../../src/replication/transport.ts";
import { decodeHistory, encodeHistory } from "../../src/wire/history.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

async function newNode(name: string): Promise<Promise<DsyncNode>> {
  return await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: name });
}

/**
 * `count` commits of folder f on `node`; with `stale`, every third commit names the head's
 * parent instead of the head, so the node records it as pushed and merges it (two parents).
 */
async function makeHistory(node: DsyncNode, count: number, options: { stale?: boolean; messageBytes?: number } = {}): Promise<void> {
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  let head: ObjectId | null = null;
  let before: ObjectId | null = null;
  for (let i = 0; i < count; i++) {
    const parent: ObjectId | null = options.stale && i % 3 === 2 ? before : head;
    const message = `${i} `.padEnd(options.messageBytes ?? 0, "x");
    const result = await node.commit({ folder: "f", root, parent, message, chunking: "test", files: 1, totalBytes: 5 });
    before = head;
    head = result.version;
  }
}

/** Pages through a node's history as the replicator does (resuming from what it still lacks). */
async function allPages(service: PeerService, head: ObjectId): Promise<{ pages: HistoryPage[]; ids: string[] }> {
  const pages: HistoryPage[] = [];
  const ids: string[] = [];
  const received = new Set<string>();
  let resumeFrom: ObjectId[] | undefined;
  for (;;) {
    // Through the wire format, as between two nodes.
    const page = decodeHistory(encodeHistory(await service.history({ folder: "f", head, known: EMPTY_VECTOR, resumeFrom })));
    pages.push(page);
    for (const item of page.versions) {
      const id = idToHex(blake3(item.bytes));
      ids.push(id);
      received.add(id);
    }
    resumeFrom = page.more.filter((id) => !received.has(idToHex(id)));
    if (resumeFrom.length === 0) return { pages, ids };
    expect(pages.length).toBeLessThan(100);
  }
}

/** b replicates from a over `transport` (timers manual: one round, then its own pulls) until b has a's head of f; bounded at 30 s. */
async function replicateUntilSameHead(a: DsyncNode, b: DsyncNode, transport: PeerTransport): Promise<void> {
  const replicator = new Replicator({ node: b, peers: ["a"], transport, timers: { setTimeout: () => 0, clearTimeout: () => {} }, intervalMs: 1000 });
  replicator.start();
  await replicator.round();
  const headA = idToHex((await a.metadata.getFolder("f"))!.head!);
  const deadline = Date.now() + 30_000;
  while ((await b.metadata.getFolder("f"))?.head == null || idToHex((await b.metadata.getFolder("f"))!.head!) !== headA) {
    if (Date.now() > deadline) throw new Error(`b did not reach a's head; stats ${JSON.stringify(replicator.stats)}`);
    await Bun.sleep(10);
  }
  replicator.stop();
}

describe("PeerService.history", () => {
  test("an answer is one page of at most the maximum; resuming from `more` returns every version exactly once", async () => {
    const node = await newNode("a");
    const count = 2 * LIMITS.historyPageVersionsMax + 300;
    await makeHistory(node, count);
    const service = new PeerService(node);
    const head = (await node.metadata.getFolder("f"))!.head!;
    const { pages, ids } = await allPages(service, head);
    for (const page of pages) expect(page.versions.length).toBeLessThanOrEqual(LIMITS.historyPageVersionsMax);
    expect(pages.map((page) => page.versions.length)).toEqual([LIMITS.historyPageVersionsMax, LIMITS.historyPageVersionsMax, 300]);
    expect(ids).toEqual((await node.listVersions("f")).map((v) => idToHex(v.id)));
  });

  test("a page stops once it passes the byte bound", async () => {
    const node = await newNode("a");
    // Versions of about 4 KiB each: the bytes fill a page before the count does.
    await makeHistory(node, 1200, { messageBytes: LIMITS.messageLengthBytesMax });
    const head = (await node.metadata.getFolder("f"))!.head!;
    const { pages, ids } = await allPages(new PeerService(node), head);
    expect(pages.length).toBeGreaterThan(1);
    for (const page of pages) {
      const bytes = page.versions.reduce((sum, item) => sum + item.bytes.length, 0);
      const largest = Math.max(...page.versions.map((item) => item.bytes.length));
      expect(bytes).toBeLessThan(LIMITS.historyPageBytesMax + largest);
      expect(page.versions.length).toBeLessThan(LIMITS.historyPageVersionsMax);
    }
    expect(new Set(ids).size).toBe(1200);
  });

  test("a graph of merges is walked over pages with every version received once, and the walk ends", async () => {
    const node = await newNode("a");
    await makeHistory(node, 1200, { stale: true });
    const all = (await node.listVersions("f")).map((v) => idToHex(v.id));
    expect(all.length).toBeGreaterThan(1200); // each stale push adds a merge
    const head = (await node.metadata.getFolder("f"))!.head!;
    const { pages, ids } = await allPages(new PeerService(node), head);
    expect(pages.length).toBeGreaterThan(1);
    expect(new Set(ids)).toEqual(new Set(all));
    expect(ids.length).toBe(all.length);
  });
});

describe("replication over a long gap", () => {
  test("a node that lacks more than a page of history receives all of it, page by page", async () => {
    const a = await newNode("a");
    const b = await newNode("b");
    await makeHistory(a, LIMITS.historyPageVersionsMax + 600, { stale: true });
    const serviceA = new PeerService(a);
    const requests: HistoryRequest[] = [];
    const transport: PeerTransport = {
      listFolders: () => serviceA.listFolders(),
      history: (_peer, request) => {
        requests.push(request);
        return serviceA.history(request);
      },
      download: (_peer, ids) => serviceA.download(ids),
      notify: async () => {},
    };
    await replicateUntilSameHead(a, b, transport);
    expect(requests.length).toBeGreaterThanOrEqual(3);
    expect(requests[0]!.resumeFrom).toBeUndefined();
    for (const request of requests.slice(1)) expect(request.resumeFrom!.length).toBeGreaterThan(0);
    const want = new Set((await a.listVersions("f")).map((v) => idToHex(v.id)));
    const got = (await b.listVersions("f")).map((v) => idToHex(v.id));
    expect(new Set(got)).toEqual(want);
    expect(got.length).toBe(want.size);
  }, 60_000);
});

describe("a wide frontier", () => {
  test("the asker resumes from at most historyResumeIdsMax ids a request, and asks about the rest after", async () => {
    const a = await newNode("a");
    const b = await newNode("b");
    await makeHistory(a, 3);
    const serviceA = new PeerService(a);
    // The first answer says the walk stopped at more ids than one request may name (ids the
    // peer turns out not to hold: each later page is empty, and ends its part of the walk).
    const extra = Array.from({ length: LIMITS.historyResumeIdsMax + 2500 }, (_, i) => blake3(new TextEncoder().encode(`not a version ${i}`)));
    const requests: HistoryRequest[] = [];
    const transport: PeerTransport = {
      listFolders: (_peer, page) => serviceA.listFolders(page),
      history: async (_peer, request) => {
        requests.push(request);
        const page = await serviceA.history(request);
        return requests.length === 1 ? { versions: page.versions, more: [...page.more, ...extra] } : page;
      },
      download: (_peer, ids) => serviceA.download(ids),
      notify: async () => {},
    };
    await replicateUntilSameHead(a, b, transport);
    expect(requests.map((request) => request.resumeFrom?.length)).toEqual([undefined, LIMITS.historyResumeIdsMax, 2500]);
    const asked = new Set(requests.slice(1).flatMap((request) => request.resumeFrom!.map(idToHex)));
    expect(asked).toEqual(new Set(extra.map(idToHex)));
    expect(await b.listVersions("f")).toHaveLength(3);
  }, 60_000);
});
