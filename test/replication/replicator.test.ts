// Replication between nodes in one process, over a direct transport that can lie: the safety
// rails (an empty, failing or partial peer never causes a deletion or a half-recorded version),
// Merkle-descent cost, and convergence on concurrent writes.
import { describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";

class ManualClock {
  constructor(public now = Date.UTC(2026, 10, 25, 12)) {}
  nowMs = () => this.now;
}

const noTimers = { setTimeout: () => 0, clearTimeout: () => {} };

interface Faults {
  emptyListing?: boolean;
  failListing?: boolean;
  dropObjects?: number;
  corruptObjects?: boolean;
}

class Cluster {
  readonly clock = new ManualClock();
  readonly nodes = new Map<string, DsyncNode>();
  readonly services = new Map<string, PeerService>();
  readonly replicators = new Map<string, Replicator>();
  readonly faults = new Map<string, Faults>();
  readonly downloads = new Map<string, number>();

  static async of(names: string[]): Promise<Cluster> {
    const cluster = new Cluster();
    await cluster.open(names);
    return cluster;
  }

  private async open(names: string[]): Promise<void> {
    for (const name of names) {
      const node = await DsyncNode.over(new MemoryObjectStore({ nowMs: this.clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: name, clock: this.clock });
      this.nodes.set(name, node);
    }
    for (const name of names) {
      const transport = this.transportFor(name);
      const replicator = new Replicator({ node: this.node(name), peers: names.filter((n) => n !== name), transport, timers: noTimers, intervalMs: 1000 });
      replicator.start();
      this.replicators.set(name, replicator);
      this.services.set(name, new PeerService(this.node(name), (notice) => replicator.onNotice(notice)));
    }
  }

  node(name: string): DsyncNode {
    return this.nodes.get(name)!;
  }

  private transportFor(_from: string): PeerTransport {
    const service = (peer: string) => this.services.get(peer)!;
    const faults = (peer: string) => this.faults.get(peer) ?? {};
    return {
      listFolders: async (peer) => {
        if (faults(peer).failListing) throw new Error("connection refused");
        const listing = await service(peer).listFolders();
        return faults(peer).emptyListing ? { ...listing, folders: [] } : listing;
      },
      history: (peer, request) => service(peer).history(request),
      download: async (peer, ids) => {
        this.downloads.set(peer, (this.downloads.get(peer) ?? 0) + ids.length);
        const reply = await service(peer).download(ids);
        const f = faults(peer);
        let objects = reply.objects;
        if (f.dropObjects) objects = objects.slice(0, Math.max(0, objects.length - f.dropObjects));
        if (f.corruptObjects) objects = objects.map((o) => ({ id: o.id, bytes: new Uint8Array([...o.bytes, 1]) }));
        return { objects, missing: reply.missing };
      },
      // Notices are left out: tests drive rounds explicitly.
      notify: async () => {},
    };
  }

  /** Pushes a tree literal to a node as a client would (parent: the head, unless given). */
  async push(name: string, folder: string, literal: TreeLiteral, parent?: ObjectId | null) {
    const node = this.node(name);
    const objects = new MemoryObjects();
    const root = objects.tree(literal);
    await node.putObjects(objects.all());
    this.clock.now += 1000;
    return node.commit({
      folder,
      root,
      parent: parent === undefined ? (await node.metadata.getFolder(folder))?.head ?? null : parent,
      message: "",
      chunking: "test",
      files: 1,
      totalBytes: 1,
    });
  }

  async round(name: string) {
    await this.replicators.get(name)!.round();
    // Rounds start pulls without waiting for them; let them finish.
    for (let i = 0; i < 50; i++) await Bun.sleep(0);
  }

  async describe(name: string, folder: string) {
    const node = this.node(name);
    const head = (await node.metadata.getFolder(folder))?.head;
    if (!head) return null;
    const version = (await node.metadata.getVersion(folder, head))!;
    return describeFrom(node, version.root);
  }

  async head(name: string, folder: string): Promise<string | null> {
    const head = (await this.node(name).metadata.getFolder(folder))?.head;
    return head ? idToHex(head) : null;
  }
}

async function describeFrom(node: DsyncNode, root: ObjectId): Promise<Record<string, unknown>> {
  const { readTreeEntries, readEntryChunks } = await import("../../src/core/pages.ts");
  const out: Record<string, unknown> = {};
  for (const entry of await readTreeEntries(root, node.load)) {
    if (entry.kind === "dir") out[entry.name] = await describeFrom(node, entry.id!);
    else if (entry.kind === "file") {
      const chunks = await readEntryChunks(entry, node.load);
      const bytes = await node.getObjects(chunks.map((c) => c.id));
      out[entry.name] = Buffer.concat(bytes.map((b) => b!)).toString("utf8");
    }
  }
  return out;
}

describe("replication between nodes in one process", () => {
  test("a push on one node reaches the other; a second round fetches nothing", async () => {
    const c = await Cluster.of(["n1", "n2"]);
    await c.push("n1", "f", { a: "1", d: { b: "2" } });
    await c.round("n2");
    expect(await c.head("n2", "f")).toBe(await c.head("n1", "f"));
    expect(await c.describe("n2", "f")).toEqual({ a: "1", d: { b: "2" } });
    const before = c.downloads.get("n1") ?? 0;
    await c.round("n2");
    expect(c.downloads.get("n1") ?? 0).toBe(before);
  });

  test("catching up fetches only what changed", async () => {
    const c = await Cluster.of(["n1", "n2"]);
    const files: TreeLiteral = {};
    for (let i = 0; i < 300; i++) files[`dir${i % 10}/file${i}`] = `content ${i}`;
    const nested = toNested(files);
    await c.push("n1", "f", nested);
    await c.round("n2");
    const afterFirst = c.downloads.get("n1")!;
    (nested["dir3"] as Record<string, string>)["file3"] = "changed";
    await c.push("n1", "f", nested);
    await c.round("n2");
    // The version, the root, one directory, one file node and one chunk.
    expect(c.downloads.get("n1")! - afterFirst).toBeLessThanOrEqual(5);
    expect(await c.head("n2", "f")).toBe(await c.head("n1", "f"));
  });

  test("concurrent writes on two nodes converge on one merge, with the conflict copy on both", async () => {
    const c = await Cluster.of(["n1", "n2"]);
    await c.push("n1", "f", { shared: "base", keep: "k" });
    await c.round("n2");
    await c.push("n1", "f", { shared: "from n1", keep: "k", one: "1" });
    await c.push("n2", "f", { shared: "from n2", keep: "k", two: "2" });
    await c.round("n1");
    await c.round("n2");
    expect(await c.head("n1", "f")).toBe(await c.head("n2", "f"));
    const tree = (await c.describe("n1", "f")) as Record<string, string>;
    expect(tree.shared).toBe("from n2"); // n2's write came later
    expect(tree.one).toBe("1");
    expect(tree.two).toBe("2");
    const copies = Object.keys(tree).filter((name) => name.startsWith("shared.sync-conflict-"));
    expect(copies).toEqual([expect.stringMatching(/^shared\.sync-conflict-\d{8}-\d{6}-n1$/)]);
    expect(tree[copies[0]!]).toBe("from n1");
  });

  test("a peer that lists nothing, or fails, changes nothing here", async () => {
    const c = await Cluster.of(["n1", "n2"]);
    await c.push("n2", "f", { mine: "m" });
    const head = await c.head("n2", "f");
    c.faults.set("n1", { emptyListing: true });
    await c.round("n2");
    expect(await c.head("n2", "f")).toBe(head);
    c.faults.set("n1", { failListing: true });
    await c.round("n2");
    expect(await c.head("n2", "f")).toBe(head);
    expect(await c.describe("n2", "f")).toEqual({ mine: "m" });
    const status = c.replicators.get("n2")!.peerStates()[0]!;
    expect(status.reachable).toBe(false);
    expect(status.lastError).toContain("connection refused");
  });

  test("a peer that sends a partial or corrupted tree: nothing is recorded, the head stays", async () => {
    for (const fault of [{ dropObjects: 1 }, { corruptObjects: true }] as Faults[]) {
      const c = await Cluster.of(["n1", "n2"]);
      await c.push("n2", "f", { mine: "m" });
      const head = await c.head("n2", "f");
      await c.push("n1", "f", { theirs: "t", other: "o" }, null);
      c.faults.set("n1", fault);
      await c.round("n2");
      expect(await c.head("n2", "f")).toBe(head);
      expect((await c.node("n2").listVersions("f")).length).toBe(1);
      expect(c.replicators.get("n2")!.stats.pullFailures).toBe(1);
      // Once the peer behaves, the same round merges both sides, losing nothing.
      c.faults.delete("n1");
      await c.round("n2");
      expect(await c.describe("n2", "f")).toEqual({ mine: "m", theirs: "t", other: "o" });
    }
  });

  test("a deletion by a later write propagates; it never resurrects", async () => {
    const c = await Cluster.of(["n1", "n2"]);
    await c.push("n1", "f", { a: "1", tmp: "t" });
    await c.round("n2");
    await c.push("n2", "f", { a: "1" });
    await c.round("n1");
    expect(await c.describe("n1", "f")).toEqual({ a: "1" });
    await c.push("n1", "f", { a: "2" });
    await c.round("n2");
    await c.round("n1");
    expect(await c.describe("n2", "f")).toEqual({ a: "2" });
    expect(await c.head("n1", "f")).toBe(await c.head("n2", "f"));
  });
});

function toNested(flat: TreeLiteral): TreeLiteral {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [path, content] of Object.entries(flat)) {
    const [dir, name] = path.split("/") as [string, string];
    (out[dir] ??= {})[name] = content;
  }
  return out as TreeLiteral;
}
