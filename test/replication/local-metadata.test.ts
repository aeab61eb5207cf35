// The replicator and this node's own metadata: a database server that goes away under node A
// (a real PostgreSQL cluster, halted) is A's problem, never counted against its peer, and the
// replication carries on once it is back; and what a peer listing says of a folder never
// overwrites a newer word (a notice) heard while the listing's lookups ran.
import { afterAll, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { MetadataStore } from "../../src/node/metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PostgresMetadataStore } from "../../src/node/postgres-metadata-store.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { RaftDriver } from "../../src/consensus/raft-driver.ts";
import { systemClock, systemRandom, systemTimers } from "../../src/node/clock.ts";
import { strongHeadsOver } from "../../src/server/consensus-heads.ts";
import { startOwnCluster, type OwnCluster } from "../helpers/postgres.ts";
import { MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";

const clusters: OwnCluster[] = [];
afterAll(() => {
  for (const cluster of clusters) cluster.remove();
});

const clock = { now: Date.UTC(2026, 11, 1, 12), nowMs: () => clock.now };
const noTimers = { setTimeout: () => 0, clearTimeout: () => {} };

async function nodeOver(name: string, metadata: MetadataStore): Promise<DsyncNode> {
  return DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), metadata, { dataDir: "", nodeId: name, clock });
}

async function push(node: DsyncNode, folder: string, literal: TreeLiteral): Promise<ObjectId> {
  const objects = new MemoryObjects();
  const root = objects.tree(literal);
  await node.putObjects(objects.all());
  clock.now += 1000;
  const parent = (await node.metadata.getFolder(folder))?.head ?? null;
  return (await node.commit({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 1 })).version;
}

/** The transport to one peer's PeerService, in process (notices left out: the tests drive them). */
function transportTo(service: PeerService): PeerTransport {
  return {
    listFolders: () => service.listFolders(),
    history: (_peer, request) => service.history(request),
    download: (_peer, ids) => service.download(ids),
    notify: async () => {},
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await Bun.sleep(0);
}

test("this node's metadata server away: pulls and rounds fail without marking the peer failing, the cause is this node's, and replication resumes once it is back", async () => {
  const cluster = startOwnCluster();
  clusters.push(cluster);
  const a = await nodeOver("a", await PostgresMetadataStore.open(cluster.url));
  const b = await nodeOver("b", SqliteMetadataStore.open(":memory:"));
  const logged: string[] = [];
  const replicator = new Replicator({ node: a, peers: ["b"], transport: transportTo(new PeerService(b, () => {})), timers: noTimers, intervalMs: 1000, log: (line) => logged.push(line) });
  replicator.start();
  try {
    await push(b, "f", { "one.txt": "1" });
    await replicator.round();
    await settle();
    const peer = replicator.peerStates()[0]!;
    expect(peer.reachable).toBe(true);
    expect(idToHex((await a.metadata.getFolder("f"))!.head!)).toBe(idToHex((await b.metadata.getFolder("f"))!.head!));

    const later = await push(b, "f", { "one.txt": "1", "two.txt": "2" });
    cluster.halt();
    // A pull (as a notice starts it) and a whole round, each meeting this node's store away.
    await replicator.pull(peer, "f");
    expect(peer.reachable).toBe(true);
    expect(peer.lastError).toBeNull();
    await replicator.round();
    replicator.onNotice({ from: "b", folder: "f", head: later, vector: await b.vectorOf(later) });
    await settle();
    expect(peer.reachable).toBe(true);
    expect(peer.lastError).toBeNull();
    expect(replicator.localMetadataError).toStartWith("metadata store unavailable: ");
    expect(logged.filter((line) => line.includes("replication paused: this node's metadata store unavailable")).length).toBe(1);
    expect(logged.filter((line) => line.includes("failed"))).toEqual([]);

    cluster.start();
    await replicator.round();
    await settle();
    expect(idToHex((await a.metadata.getFolder("f"))!.head!)).toBe(idToHex(later));
    expect(replicator.localMetadataError).toBeNull();
    expect(peer.reachable).toBe(true);
  } finally {
    replicator.stop();
    await a.close().catch(() => {});
    await b.close();
  }
}, 60_000);

test("a notice heard while a peer listing's lookups run is newer than the listing: the listing does not overwrite it", async () => {
  // A's store as it is, but the next getVersion once `gate` is set waits for it (one call only).
  const store = SqliteMetadataStore.open(":memory:");
  let gate: Promise<void> | null = null;
  const gated = new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (property !== "getVersion") return value.bind(target);
      return async (...args: Parameters<MetadataStore["getVersion"]>) => {
        const wait = gate;
        gate = null;
        if (wait) await wait;
        return target.getVersion(...args);
      };
    },
  });
  const a = await nodeOver("a", gated);
  const b = await nodeOver("b", SqliteMetadataStore.open(":memory:"));
  // Folder f on b in strong mode (b alone in its Raft group, which moves f's head): the
  // replicator records what it hears of it but pulls nothing, so what it heard is what the
  // listing and the notice said, and nothing else.
  const group = new RaftDriver({ node: b, timers: systemTimers, clock: systemClock, random: systemRandom, log: () => {} });
  await group.start();
  b.setStrongHeads(strongHeadsOver(group, b.clock));
  for (let i = 0; i < 500 && !group.isLeader(); i++) await Bun.sleep(10);
  await b.createFolder("f", "strong");
  const first = await push(b, "f", { "x.txt": "1" });
  const service = new PeerService(b, () => {});
  // The listing's answer held until the test lets it go, and taken at the moment it was asked.
  let hold: Promise<void> | null = null;
  let listed!: () => void;
  const transport: PeerTransport = {
    ...transportTo(service),
    listFolders: async () => {
      const listing = await service.listFolders();
      if (hold) await hold;
      return listing;
    },
  };
  const replicator = new Replicator({ node: a, peers: ["b"], transport, timers: noTimers, intervalMs: 1000 });
  replicator.start();
  try {
    await replicator.round();
    await settle();
    const peer = replicator.peerStates()[0]!;
    expect(idToHex(peer.folders.get("f")!.head!)).toBe(idToHex(first));

    // A listing is asked (it says `second`), then b moves on to `third` and its notice is heard
    // before the listing's answer is looked up here.
    const second = await push(b, "f", { "x.txt": "2" });
    hold = new Promise<void>((resolve) => (listed = resolve));
    const round = replicator.round();
    await settle();
    const third = await push(b, "f", { "x.txt": "3" });
    replicator.onNotice({ from: "b", folder: "f", head: third, vector: await b.vectorOf(third) });
    await settle();
    expect(idToHex(peer.folders.get("f")!.head!)).toBe(idToHex(third));
    listed();
    await round;
    await settle();
    expect(idToHex(second)).not.toBe(idToHex(third));
    expect(idToHex(peer.folders.get("f")!.head!)).toBe(idToHex(third));

    // And a listing taken after the notice is the newer word again.
    hold = null;
    await replicator.round();
    await settle();
    expect(idToHex(peer.folders.get("f")!.head!)).toBe(idToHex(third));

    // The listing answered at once, and a notice heard while its lookup (is the head heard
    // before recorded here?) waits on this node's store.
    const fourth = await push(b, "f", { "x.txt": "4" });
    let lookedUp!: () => void;
    gate = new Promise<void>((resolve) => (lookedUp = resolve));
    const round2 = replicator.round();
    await settle();
    expect(gate).toBeNull(); // the listing's lookup took the gate and waits on it
    const fifth = await push(b, "f", { "x.txt": "5" });
    replicator.onNotice({ from: "b", folder: "f", head: fifth, vector: await b.vectorOf(fifth) });
    await settle();
    expect(idToHex(peer.folders.get("f")!.head!)).toBe(idToHex(fifth));
    lookedUp();
    await round2;
    await settle();
    expect(idToHex(fourth)).not.toBe(idToHex(fifth));
    expect(idToHex(peer.folders.get("f")!.head!)).toBe(idToHex(fifth));
  } finally {
    replicator.stop();
    await group.stop();
    await a.close();
    await b.close();
  }
});
