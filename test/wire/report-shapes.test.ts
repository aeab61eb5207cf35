// The replies the client reads are typed in src/wire, and the node builds them with types of
// its own (src/node may not import src/wire): these assignments fail the type check the moment
// the two drift apart, and the replies of a real node are checked against them field by field.
import { expect, test } from "bun:test";
import type { VerifyReport as NodeVerifyReport } from "../../src/node/node.ts";
import type { VerifyReport } from "../../src/wire/verify-report.ts";
import type { NodeStatus } from "../../src/wire/node-status.ts";
import { createApp } from "../../src/server/app.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";

// Both ways: every field the node sends is one the client knows, and every field the client
// reads is one the node sends.
const nodeToWire = (report: NodeVerifyReport): VerifyReport => report;
const wireToNode = (report: VerifyReport): NodeVerifyReport => report;

const VERIFY_FIELDS: (keyof VerifyReport)[] = [
  "objectsChecked",
  "corrupt",
  "missing",
  "structure",
  "metadataIntegrity",
  "indexIntegrity",
  "quarantined",
  "repairFrom",
  "repaired",
  "unrepairable",
  "quarantinedUnneeded",
];

test("a node's verify report has exactly the fields of the wire's", async () => {
  const { node } = await memoryNodeWithOneCommit();
  const report = nodeToWire(await node.verify());
  expect(Object.keys(report).sort()).toEqual([...VERIFY_FIELDS].sort());
  expect(wireToNode(report).metadataIntegrity).toBe("ok");
  await node.close();
});

test("GET /v1/status says which metadata store the node runs on and its size", async () => {
  const { node } = await memoryNodeWithOneCommit();
  const app = createApp(node);
  const response = await app.request("/v1/status");
  expect(response.status).toBe(200);
  const status = (await response.json()) as NodeStatus;
  expect(status.node).toBe(node.nodeId);
  expect(status.folders.map((f) => f.name)).toEqual(["f"]);
  // An in-memory SQLite database has no file to measure: it says so (null), rather than 0.
  expect(status.metadata).toEqual({ backend: "sqlite", sizeBytes: null });
  await node.close();
});
