// A peer's folder listing is one bounded page; the replicator follows `next` to see every folder,
// and a pull reads the one page that starts at its folder, however many folders the peer has.
import { expect, test } from "bun:test";
import type { ObjectId } from "../../src/core/id.ts";
import { idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { ListingRequest, PeerListing, PeerTransport } from "../../src/replication/transport.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const CLUSTER = "cluster-token-for-tests";

async function nodeWithFolders(name: string, count: number): Promise<{ node: DsyncNode; names: string[] }> {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: name });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  const names = Array.from({ length: count }, (_, i) => `folder-${String(i).padStart(5, "0")}`);
  for (const folder of names) await node.commit({ folder, root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 5 });
  return { node, names };
}

test("the peer listing answers pages of at most the maximum; following next lists every folder once", async () => {
  const { node, names } = await nodeWithFolders("a", LIMITS.foldersPageMax + 3);
  const service = new PeerService(node);
  const first = await service.listFolders();
  expect(first.folders).toHaveLength(LIMITS.foldersPageMax);
  expect(first.next).toBe(names[LIMITS.foldersPageMax]!);
  const rest = await service.listFolders({ from: first.next! });
  expect(rest.folders.map((f) => f.name)).toEqual(names.slice(LIMITS.foldersPageMax));
  expect(rest.next).toBeNull();
  expect((await service.listFolders({ limit: 5000 })).folders).toHaveLength(LIMITS.foldersPageMax);
  const one = await service.listFolders({ from: names[7]!, limit: 1 });
  expect(one.folders.map((f) => f.name)).toEqual([names[7]!]);

  // Over HTTP: the same pages, and bad paging parameters are 400.
  const app = createApp(node, { clusterToken: CLUSTER, peerService: service });
  const get = (query: string) => app.request(`/v1/peer/folders${query}`, { headers: { authorization: `Bearer ${CLUSTER}` } });
  const page = (await (await get("?limit=2&from=folder-00010")).json()) as { folders: { name: string }[]; next: string };
  expect(page.folders.map((f) => f.name)).toEqual(["folder-00010", "folder-00011"]);
  expect(page.next).toBe("folder-00012");
  expect(((await (await get("")).json()) as { folders: unknown[] }).folders).toHaveLength(LIMITS.foldersPageMax);
  expect((await get("?limit=0")).status).toBe(400);
  expect((await get("?from=")).status).toBe(400);
});

test("replication sees every folder of a peer with more than a page of them; a pull asks for its folder alone", async () => {
  const { node: a, names } = await nodeWithFolders("a", LIMITS.foldersPageMax + 20);
  const b = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "b" });
  const serviceA = new PeerService(a);
  const asked: ListingRequest[] = [];
  const answered: PeerListing[] = [];
  const transport: PeerTransport = {
    listFolders: async (_peer, page) => {
      asked.push(page ?? {});
      const listing = await serviceA.listFolders(page);
      answered.push(listing);
      return listing;
    },
    history: (_peer, request) => serviceA.history(request),
    download: (_peer, ids) => serviceA.download(ids),
    notify: async () => {},
  };
  const replicator = new Replicator({ node: b, peers: ["a"], transport, timers: { setTimeout: () => 0, clearTimeout: () => {} }, intervalMs: 1000 });
  replicator.start();
  await replicator.round();
  const headOf = async (node: DsyncNode, folder: string): Promise<string | null> => {
    const head: ObjectId | null | undefined = (await node.metadata.getFolder(folder))?.head;
    return head ? idToHex(head) : null;
  };
  const deadline = Date.now() + 30_000;
  const differ = async () => {
    for (const folder of names) if ((await headOf(b, folder)) !== (await headOf(a, folder))) return true;
    return false;
  };
  while (await differ()) {
    if (Date.now() > deadline) throw new Error(`b has ${(await b.listFolders()).length} of ${names.length} folders`);
    await Bun.sleep(10);
  }
  replicator.stop();
  expect((await b.listFolders()).map((f) => f.name)).toEqual(names);
  for (const listing of answered) expect(listing.folders.length).toBeLessThanOrEqual(LIMITS.foldersPageMax);
  // The round: the first page, then the next from where it ended.
  expect(asked.slice(0, 2)).toEqual([{}, { from: names[LIMITS.foldersPageMax]! }]);
  // Each pull: the one page that starts at its folder.
  const pulls = asked.filter((request) => request.limit === 1);
  expect(pulls.length).toBeGreaterThanOrEqual(names.length);
  for (const request of pulls) expect(names).toContain(request.from!);
}, 60_000);
