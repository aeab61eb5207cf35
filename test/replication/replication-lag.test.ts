// Replication lag in seconds, per peer, on a manual clock: it counts from when a node first heard
// of a peer head it did not hold, keeps counting while the peer moves on and this node still
// lacks what it heard, drops to 0 once the node has caught up, and starts again from the next
// unheld head. dsync_peer_replication_lag_seconds and dsync_peer_missing_writes show it.
import { expect, test } from "bun:test";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { NodeMetrics } from "../../src/server/metrics.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { parseExposition } from "../helpers/exposition.ts";
import { MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";

const clock = { now: Date.UTC(2026, 10, 25, 12), nowMs: () => clock.now };
const noTimers = { setTimeout: () => 0, clearTimeout: () => {} };

async function makeNode(name: string): Promise<DsyncNode> {
  return await DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: name, clock });
}

test("lag counts from the first unheld head heard, through the peer moving on, to 0 once caught up", async () => {
  const a = await makeNode("a");
  const b = await makeNode("b");
  const service = new PeerService(a, () => {});
  let downloadsFail = true;
  const transport: PeerTransport = {
    listFolders: () => service.listFolders(),
    history: (_peer, request) => service.history(request),
    download: async (_peer, ids) => {
      if (downloadsFail) throw new Error("connection reset");
      return service.download(ids);
    },
    notify: async () => {},
  };
  const replicator = new Replicator({ node: b, peers: ["a"], transport, timers: noTimers, intervalMs: 1000 });
  replicator.start();
  const metrics = new NodeMetrics({ node: b, version: "test", replicator });
  const push = async (literal: TreeLiteral) => {
    const objects = new MemoryObjects();
    const root = objects.tree(literal);
    await a.putObjects(objects.all());
    const head = (await a.metadata.getFolder("f"))?.head ?? null;
    await a.commit({ folder: "f", root, parent: head, message: "", chunking: "test", files: 1, totalBytes: 1 });
  };
  const round = async () => {
    await replicator.round();
    for (let i = 0; i < 50; i++) await Bun.sleep(0);
  };
  const lag = async () => {
    const [status] = await replicator.folderStatus("f");
    const exposition = parseExposition((await metrics.exposition()).text);
    return {
      lagMs: status!.lagMs,
      lagSeconds: exposition.value("dsync_peer_replication_lag_seconds", { peer: "a" }),
      missing: exposition.value("dsync_peer_missing_writes", { peer: "a" }),
    };
  };

  await push({ "one.txt": "one" });
  await round(); // b hears of a's head, cannot fetch it
  const heardAt = clock.now;
  expect(await lag()).toEqual({ lagMs: 0, lagSeconds: 0, missing: 1 });
  clock.now += 5_000;
  expect(await lag()).toEqual({ lagMs: 5_000, lagSeconds: 5, missing: 1 });

  // a moves on while b still lacks the first head: the lag keeps counting from the first.
  clock.now += 2_000;
  await push({ "one.txt": "one", "two.txt": "two" });
  await round();
  clock.now += 1_000;
  expect(await lag()).toEqual({ lagMs: clock.now - heardAt, lagSeconds: (clock.now - heardAt) / 1000, missing: 2 });

  // b catches up: 0.
  downloadsFail = false;
  await round();
  expect((await b.metadata.getFolder("f"))?.head).toEqual((await a.metadata.getFolder("f"))!.head);
  clock.now += 10_000;
  expect(await lag()).toEqual({ lagMs: 0, lagSeconds: 0, missing: 0 });

  // The next head b does not hold starts a new count, not the old one.
  downloadsFail = true;
  await push({ "three.txt": "three" });
  await round();
  clock.now += 3_000;
  expect(await lag()).toEqual({ lagMs: 3_000, lagSeconds: 3, missing: 1 });
  replicator.stop();
});
