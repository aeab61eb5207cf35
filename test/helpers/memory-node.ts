// A node in memory for route and node tests: a memory object store and an in-memory metadata
// database, and optionally folder f with one commit of "a.txt" ("hello").
import type { ObjectId } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode, type CommitResult } from "../../src/node/node.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "./memory-objects.ts";

/** A node with nothing stored, named `nodeId`. */
export async function memoryNode(nodeId = "n1"): Promise<DsyncNode> {
  return await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId });
}

/** A node whose folder `f` has one version, a tree of one file "a.txt" holding "hello". */
export async function memoryNodeWithOneCommit(nodeId = "n1"): Promise<{ node: DsyncNode; root: ObjectId; commit: CommitResult }> {
  const node = await memoryNode(nodeId);
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  const commit = await node.commit({ folder: "f", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 5 });
  return { node, root, commit };
}
