// A peer whose head names a tree that breaks a structural rule (planted behind its own commit
// check) is refused: the receiving node records nothing, keeps its head and every object its
// versions need, also when the hostile tree's parts were marked complete here by earlier
// commits, so fetching skipped them and only their marks were there to judge them by.
import { describe, expect, test } from "bun:test";
import { idEquals, idToHex, type ObjectId } from "../../src/core/id.ts";
import { sealObject, type Version } from "../../src/core/objects.ts";
import { withCounter } from "../../src/core/version-vector.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { hostileTrees } from "../helpers/hostile-trees.ts";

class ManualClock {
  constructor(public now = Date.UTC(2026, 10, 25, 12)) {}
  nowMs = () => this.now;
}

const noTimers = { setTimeout: () => 0, clearTimeout: () => {} };

async function pair() {
  const clock = new ManualClock();
  const names = ["good", "evil"];
  const nodes = new Map<string, DsyncNode>();
  for (const name of names) nodes.set(name, await DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: name, clock }));
  const services = new Map<string, PeerService>();
  const logs: string[] = [];
  const transport: PeerTransport = {
    listFolders: (peer) => services.get(peer)!.listFolders(),
    history: (peer, request) => services.get(peer)!.history(request),
    download: (peer, ids) => services.get(peer)!.download(ids),
    notify: async () => {},
  };
  const replicators = new Map<string, Replicator>();
  for (const name of names) {
    const replicator = new Replicator({ node: nodes.get(name)!, peers: names.filter((n) => n !== name), transport, timers: noTimers, intervalMs: 1000, log: (line) => logs.push(line) });
    replicator.start();
    replicators.set(name, replicator);
    services.set(name, new PeerService(nodes.get(name)!, (notice) => replicator.onNotice(notice)));
  }
  const round = async (name: string) => {
    await replicators.get(name)!.round();
    for (let i = 0; i < 50; i++) await Bun.sleep(0);
  };
  const commit = async (name: string, folder: string, root: ObjectId) => {
    clock.now += 1000;
    const node = nodes.get(name)!;
    return node.commit({ folder, root, parent: (await node.metadata.getFolder(folder))?.head ?? null, message: "", chunking: "test", files: 1, totalBytes: 1 });
  };
  return { nodes, replicators, logs, round, commit, clock };
}

/** Makes a version of `root` the head of `folder` on a node without any check, as a write after the current head. */
async function plantHead(node: DsyncNode, folder: string, root: ObjectId, wallMs: number): Promise<ObjectId> {
  const head = (await node.metadata.getFolder(folder))!.head!;
  const vector = await node.vectorOf(head);
  const version: Version = { kind: "version", root, parents: [head], author: node.nodeId, hlcWallMs: wallMs, hlcCounter: 0, message: "", versionVector: withCounter(vector, node.nodeId, 1), chunking: "test" };
  const sealed = sealObject(version);
  await node.putObjects([sealed]);
  const record = { id: sealed.id, root, parents: [head], author: node.nodeId, hlcWallMs: wallMs, hlcCounter: 0, message: "", origin: "push" as const, files: 1, totalBytes: 1, createdMs: wallMs };
  await node.metadata.commitVersions(folder, head, sealed.id, [record], wallMs);
  return sealed.id;
}

describe("a peer serving a tree that breaks a structural rule", () => {
  for (const hostile of hostileTrees()) {
    test(`is refused: ${hostile.name}`, async () => {
      const { nodes, replicators, logs, round, commit, clock } = await pair();
      const good = nodes.get("good")!;
      const evil = nodes.get("evil")!;
      // The good node holds the hostile tree's parts as valid directories of its own, marked
      // complete; the hostile root itself only comes from the peer.
      await good.putObjects(hostile.objects.filter((o) => !idEquals(o.id, hostile.root)));
      for (const [i, root] of hostile.earlier.entries()) await commit("good", `parts-${i}`, root);
      const head = (await commit("good", "f", hostile.earlier[0]!)).version;
      await round("evil");
      expect(idToHex((await evil.metadata.getFolder("f"))!.head!)).toBe(idToHex(head));

      await evil.putObjects(hostile.objects);
      await plantHead(evil, "f", hostile.root, clock.now + 1000);
      const versionsBefore = (await good.listVersions("f")).length;
      const marksBefore = (await good.metadata.listCompleteIds()).length;
      await round("good");

      expect(idToHex((await good.metadata.getFolder("f"))!.head!)).toBe(idToHex(head));
      expect((await good.listVersions("f")).length).toBe(versionsBefore);
      expect((await good.metadata.listCompleteIds()).length).toBe(marksBefore);
      expect(replicators.get("good")!.stats.pullFailures).toBe(1);
      expect(replicators.get("good")!.stats.objectsFetched).toBeGreaterThan(0);
      expect(logs.join("\n")).toMatch(hostile.rule);
      const report = await good.verify();
      expect(report.missing).toEqual([]);
      expect(report.structure).toEqual([]);
    });
  }
});
