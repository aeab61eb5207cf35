// Notices naming ever new folders (any holder of the cluster token can send them, naming a known
// peer as sender) leave nothing behind once their pulls end: the replicator keeps a pull task
// and a folder lock only while they are in use.
import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { Mutex } from "../../src/node/mutex.ts";

test("a thousand notices for folders the peer does not have leave no task or lock behind", async () => {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "b" });
  let listings = 0;
  const transport: PeerTransport = {
    // The real peer has no such folders: every pull's one-folder listing comes back empty.
    listFolders: async () => {
      listings++;
      return { node: "a", folders: [], next: null };
    },
    history: async () => ({ versions: [], more: [] }),
    download: async () => ({ objects: [], missing: [] }),
    notify: async () => {},
  };
  const replicator = new Replicator({ node, peers: ["http://a"], transport, timers: { setTimeout: () => 0, clearTimeout: () => {} }, intervalMs: 1000 });
  replicator.start();
  await replicator.round(); // learns that http://a is node "a"
  const head = blake3(new Uint8Array([1])) as ObjectId;
  for (let i = 0; i < 1000; i++) replicator.onNotice({ from: "a", folder: `fake-${i}`, head, vector: [{ node: "a", counter: 1 }] });
  const internals = replicator as unknown as { tasks: Map<string, unknown>; folderLocks: Map<string, unknown> };
  const deadline = Date.now() + 10_000;
  while (listings < 1001 && Date.now() < deadline) await Bun.sleep(5);
  await Bun.sleep(20);
  expect(listings).toBe(1001);
  expect(internals.tasks.size).toBe(0);
  expect(internals.folderLocks.size).toBe(0);
  replicator.stop();
});

test("a mutex is idle only when no one holds or waits for it", async () => {
  const mutex = new Mutex();
  expect(mutex.idle).toBe(true);
  let release!: () => void;
  const held = mutex.run(() => new Promise<void>((resolve) => (release = resolve)));
  const waiting = mutex.run(async () => {});
  expect(mutex.idle).toBe(false);
  await Bun.sleep(0); // the first task has started
  release();
  await held;
  expect(mutex.idle).toBe(false);
  await waiting;
  expect(mutex.idle).toBe(true);
  await expect(mutex.run(async () => Promise.reject(new Error("x")))).rejects.toThrow("x");
  expect(mutex.idle).toBe(true);
});
