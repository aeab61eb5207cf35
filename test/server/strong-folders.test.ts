// Strong folders through the API on one node whose Raft group is itself alone (the real driver,
// over the node's real metadata): folders made in either mode (201, 200 when they exist in that
// mode, 409 naming the other), commits and restores whose head moves only through the log (the
// log's index moves with every one), a stale parent merged as on any node, reads with and
// without `stale`, the status's `consensus`, and the 503 of a node that runs no log.
import { afterAll, describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { DsyncNode } from "../../src/node/node.ts";
import type { RaftDriver } from "../../src/consensus/raft-driver.ts";
import { createApp } from "../../src/server/app.ts";
import { memoryNode } from "../helpers/memory-node.ts";
import { leadAlone } from "../helpers/strong-single-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import type { HeadNotice, PeerTransport } from "../../src/replication/transport.ts";

const drivers: RaftDriver[] = [];
afterAll(async () => {
  for (const driver of drivers) await driver.stop();
});

/** A node whose Raft group is this node alone, led by it, and the app over both. */
async function strongNode(): Promise<{ node: DsyncNode; driver: RaftDriver; app: ReturnType<typeof createApp> }> {
  const node = await memoryNode("n1");
  const driver = await leadAlone(node, drivers);
  return { node, driver, app: createApp(node, { consensus: driver }) };
}

function post(app: ReturnType<typeof createApp>, path: string, body: unknown): Promise<Response> {
  return Promise.resolve(app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
}

/** Stores a one-file tree on the node and returns its root. */
async function tree(node: DsyncNode, files: Record<string, string>): Promise<ObjectId> {
  const objects = new MemoryObjects();
  const root = objects.tree(files);
  await node.putObjects(objects.all());
  return root;
}

function commitBody(root: ObjectId, parent: string | null) {
  return { root: idToHex(root), parent, message: "", chunking: "test", files: 1, bytes: 1 };
}

describe("strong folders on one node", () => {
  test("a folder is made in the mode asked: 201, then 200 in that mode, 409 naming the mode in the other", async () => {
    const { app, driver } = await strongNode();
    const before = driver.status().commit;
    const made = await post(app, "/v1/folders", { name: "ledger", consistency: "strong", keepVersions: 9 });
    expect(made.status).toBe(201);
    expect(await made.json()).toMatchObject({ name: "ledger", mode: "strong", head: null, keepVersions: 9, created: true });
    // Through the log: its index moved.
    expect(driver.status().commit).toBeGreaterThan(before);
    const again = await post(app, "/v1/folders", { name: "ledger", consistency: "strong" });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ mode: "strong", created: false });
    const other = await post(app, "/v1/folders", { name: "ledger", consistency: "eventual" });
    expect(other.status).toBe(409);
    expect(await other.json()).toMatchObject({ mode: "strong" });

    const eventual = await post(app, "/v1/folders", { name: "photos" });
    expect(eventual.status).toBe(201);
    expect(await eventual.json()).toMatchObject({ mode: "eventual", created: true });
    const refused = await post(app, "/v1/folders", { name: "photos", consistency: "strong" });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ mode: "eventual" });

    for (const body of [{ name: "a/b", consistency: "strong" }, { name: "x", consistency: "linear" }, { consistency: "strong" }, { name: "x", keepDays: -1 }]) {
      expect({ body, status: (await post(app, "/v1/folders", body)).status }).toEqual({ body, status: 400 });
    }
    const listed = (await (await app.request("/v1/folders")).json()) as { folders: { name: string; mode: string }[] };
    expect(listed.folders.map((f) => [f.name, f.mode])).toEqual([
      ["ledger", "strong"],
      ["photos", "eventual"],
    ]);
  });

  test("a strong folder's commits move its head through the log; a stale parent is merged onto the head", async () => {
    const { node, app, driver } = await strongNode();
    expect((await post(app, "/v1/folders", { name: "s", consistency: "strong" })).status).toBe(201);
    const first = await post(app, "/v1/folders/s/commit", commitBody(await tree(node, { "a.txt": "one" }), null));
    expect(first.status).toBe(200);
    const v1 = (await first.json()) as { version: string; mergedWith: string | null };
    expect(v1.mergedWith).toBeNull();
    const atV1 = driver.status().commit;

    const second = (await (await post(app, "/v1/folders/s/commit", commitBody(await tree(node, { "a.txt": "two" }), v1.version))).json()) as { version: string; mergedWith: string | null };
    expect(second.mergedWith).toBeNull();
    expect(driver.status().commit).toBe(atV1 + 1);

    // A client that last saw v1 pushes another file: merged onto the head (second), as on any node.
    const stale = await post(app, "/v1/folders/s/commit", commitBody(await tree(node, { "a.txt": "one", "b.txt": "other" }), v1.version));
    expect(stale.status).toBe(200);
    const merged = (await stale.json()) as { version: string; pushed: string; mergedWith: string | null };
    expect(merged.mergedWith).toBe(second.version);
    expect(merged.version).not.toBe(merged.pushed);
    // One move in the log, recording the push and its merge.
    expect(driver.status().commit).toBe(atV1 + 2);
    expect(driver.status().applied).toBe(driver.status().commit);
    const folder = (await (await app.request("/v1/folders/s")).json()) as { head: string; mode: string };
    expect(folder).toMatchObject({ head: merged.version, mode: "strong" });
    const versions = (await (await app.request("/v1/folders/s/versions")).json()) as { versions: { id: string; origin: string }[] };
    expect(versions.versions.map((v) => v.origin)).toEqual(["merge", "push", "push", "push"]);

    // A restore goes the same way.
    const restored = await post(app, "/v1/folders/s/restore", { version: v1.version });
    expect(restored.status).toBe(200);
    expect(driver.status().commit).toBe(atV1 + 3);
    expect((await node.getFolder("s")).head).toEqual(Buffer.from((await restored.json()).version, "hex") as unknown as ObjectId);
  });

  test("an eventual folder's commit does not touch the log", async () => {
    const { node, app, driver } = await strongNode();
    const before = driver.status().commit;
    const response = await post(app, "/v1/folders/plain/commit", commitBody(await tree(node, { "a.txt": "x" }), null));
    expect(response.status).toBe(200);
    expect((await node.getFolder("plain")).mode).toBe("eventual");
    // The only entry a new folder's commit may take is none: a barrier asks the log, it appends nothing.
    expect(driver.status().commit).toBe(before);
  });

  test("reads take the barrier unless stale=1; a bad stale is 400; status shows the log", async () => {
    const { node, app } = await strongNode();
    await post(app, "/v1/folders", { name: "s", consistency: "strong" });
    const v = (await (await post(app, "/v1/folders/s/commit", commitBody(await tree(node, { "a.txt": "one" }), null))).json()) as { version: string };
    for (const path of ["/v1/folders/s", "/v1/folders/s?stale=1", "/v1/folders/s/versions?stale=1", `/v1/folders/s/versions/${v.version}?stale=1`]) {
      expect({ path, status: (await app.request(path)).status }).toEqual({ path, status: 200 });
    }
    expect((await app.request("/v1/folders/s?stale=maybe")).status).toBe(400);
    expect((await app.request("/v1/folders/nothing")).status).toBe(404);
    const status = (await (await app.request("/v1/status")).json()) as { folders: { name: string; mode: string }[]; consensus: any };
    expect(status.folders).toContainEqual(expect.objectContaining({ name: "s", mode: "strong" }));
    expect(status.consensus).toMatchObject({ nodeId: "n1", role: "leader", leader: { id: "n1" } });
    expect(status.consensus.term).toBeGreaterThanOrEqual(1);
    expect(status.consensus.applied).toBe(status.consensus.commit);
    expect(status.consensus.members).toEqual([expect.objectContaining({ id: "n1", self: true })]);
  });

  test("replication never moves a strong folder's head", async () => {
    const { node, app } = await strongNode();
    await post(app, "/v1/folders", { name: "s", consistency: "strong" });
    const v = (await (await post(app, "/v1/folders/s/commit", commitBody(await tree(node, { "a.txt": "one" }), null))).json()) as { version: string };
    const other = await memoryNode("n2");
    const objects = new MemoryObjects();
    const root = objects.tree({ "a.txt": "theirs" });
    await other.putObjects(objects.all());
    const theirs = await other.commit({ folder: "s", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 6 });
    const version = await other.decodeVersion(theirs.version);
    await node.putObjects([...objects.all(), { id: theirs.version, bytes: (await other.getObjects([theirs.version]))[0]! }]);
    const result = await node.integrateReplica("s", "eventual", [{ id: theirs.version, version, files: 1, totalBytes: 6 }], theirs.version);
    expect(result.outcome).toBe("unchanged");
    expect(idToHex((await node.getFolder("s")).head!)).toBe(v.version);
  });
});

describe("eventual replication beside strong folders", () => {
  const noTimers = { setTimeout: () => 0, clearTimeout: () => {} };
  const transportTo = (service: PeerService): PeerTransport => ({
    listFolders: (_peer, page) => service.listFolders(page),
    history: (_peer, request) => service.history(request),
    download: (_peer, ids) => service.download(ids),
    notify: async (_peer, notice) => service.notify(notice),
  });
  const settle = async () => {
    for (let i = 0; i < 100; i++) await Bun.sleep(0);
  };

  test("a strong folder is never announced, nor pulled by a peer that hears of it; an eventual one beside it is", async () => {
    const { node, app } = await strongNode();
    const peer = await memoryNode("n2");
    const heard: HeadNotice[] = [];
    const announcing = new Replicator({ node, peers: ["n2"], transport: transportTo(new PeerService(peer, (notice) => heard.push(notice))), timers: noTimers, intervalMs: 1000 });
    announcing.start();
    try {
      await post(app, "/v1/folders", { name: "s", consistency: "strong" });
      await post(app, "/v1/folders/s/commit", commitBody(await tree(node, { "a.txt": "strong" }), null));
      await post(app, "/v1/folders/e/commit", commitBody(await tree(node, { "a.txt": "eventual" }), null));
      await settle();
      expect(heard.map((notice) => notice.folder)).toEqual(["e"]);

      // The peer compares with this node: it takes the eventual folder and leaves the strong one to the log.
      const pulling = new Replicator({ node: peer, peers: ["n1"], transport: transportTo(new PeerService(node)), timers: noTimers, intervalMs: 1000 });
      pulling.start();
      await pulling.round();
      for (let i = 0; i < 200 && !(await peer.findFolder("e"))?.head; i++) await Bun.sleep(10);
      expect((await peer.findFolder("e"))?.head).toEqual((await node.getFolder("e")).head);
      await pulling.round();
      await settle();
      expect(await peer.findFolder("s")).toBeUndefined();
      pulling.stop();
    } finally {
      announcing.stop();
    }
  });
});

describe("a node without the cluster's log", () => {
  test("a strong folder cannot be made: 503 with no leader and Retry-After; eventual folders are made as before", async () => {
    const node = await memoryNode("n1");
    const app = createApp(node);
    const refused = await post(app, "/v1/folders", { name: "s", consistency: "strong" });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toMatchObject({ leader: null });
    expect(await node.findFolder("s")).toBeUndefined();
    expect((await post(app, "/v1/folders", { name: "e", consistency: "eventual" })).status).toBe(201);
    expect(((await (await app.request("/v1/status")).json()) as { consensus: unknown }).consensus).toBeNull();
  });
});
