// A version vector from the network names at most LIMITS.versionVectorNodesMax nodes: a peer's
// history walk compares every version it meets with the asker's `known` vector, and a vector of
// 170 000 made-up names took over a second of the node's time per request.
import { expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { vectorFromRecord } from "../../src/core/version-vector.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const CLUSTER = "cluster-token-for-tests";

function vectorOf(nodes: number): Record<string, number> {
  const vector: Record<string, number> = {};
  for (let i = 0; i < nodes; i++) vector[`node-${i}`] = 1;
  return vector;
}

test("history requests and notices naming more nodes than the bound are 400; at the bound they are answered", async () => {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  const head = idToHex((await node.commit({ folder: "f", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 5 })).version);
  const app = createApp(node, { clusterToken: CLUSTER, peerService: new PeerService(node, () => {}) });
  const post = (path: string, body: unknown) =>
    app.request(path, { method: "POST", body: JSON.stringify(body), headers: { authorization: `Bearer ${CLUSTER}`, "content-type": "application/json" } });

  const over = vectorOf(LIMITS.versionVectorNodesMax + 1);
  for (const [path, body] of [
    ["/v1/peer/folders/f/history", { head, known: over }],
    ["/v1/peer/notify", { from: "n2", folder: "f", head, vector: over }],
  ] as const) {
    const response = await post(path, body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toContain(`at most ${LIMITS.versionVectorNodesMax} nodes`);
  }
  expect((await post("/v1/peer/folders/f/history", { head, known: vectorOf(LIMITS.versionVectorNodesMax) })).status).toBe(200);
  expect((await post("/v1/peer/notify", { from: "n2", folder: "f", head, vector: vectorOf(LIMITS.versionVectorNodesMax) })).status).toBe(202);
});

test("a peer's listing with such a vector is refused by the same rule", () => {
  expect(() => vectorFromRecord(vectorOf(LIMITS.versionVectorNodesMax + 1))).toThrow(`at most ${LIMITS.versionVectorNodesMax} nodes`);
  expect(vectorFromRecord(vectorOf(3)).map((e) => e.node)).toEqual(["node-0", "node-1", "node-2"]);
});
