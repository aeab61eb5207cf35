// The conflict copies of a merge version, read from the trees: the copies its merge made, not
// those an earlier merge made, nothing for a version that is not a merge; the same answer from a
// node that only received the merge by replication (it made no conflict itself).
import { expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { isConflictCopyPath } from "../../src/node/conflict-copies.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const TOKEN = "client-token-for-tests";

async function commit(node: DsyncNode, files: Record<string, string>, parent: ObjectId | null) {
  const objects = new MemoryObjects();
  const root = objects.tree(files);
  await node.putObjects(objects.all());
  return node.commit({ folder: "docs", root, parent, message: "", chunking: "test", files: Object.keys(files).length, totalBytes: 1 });
}

test("a merge's conflict copies are those it made; a plain version has none", async () => {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const app = createApp(node, { token: TOKEN });
  const copiesOf = async (version: ObjectId) => {
    const response = await app.request(`/v1/folders/docs/versions/${idToHex(version)}/conflicts`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { copies: string[] }).copies;
  };
  const base = await commit(node, { "a.txt": "base", "b.txt": "base" }, null);
  const ours = await commit(node, { "a.txt": "ours", "b.txt": "base" }, base.version);
  const merged = await commit(node, { "a.txt": "theirs", "b.txt": "base" }, base.version); // stale parent: a conflict on a.txt
  expect(merged.conflicts.map((c) => c.path)).toEqual(["a.txt"]);
  const firstCopies = merged.conflicts[0]!.extraPaths;
  expect(firstCopies.length).toBe(1);
  expect(await copiesOf(merged.version)).toEqual(firstCopies);
  expect(await copiesOf(ours.version)).toEqual([]);
  expect(await copiesOf(base.version)).toEqual([]);

  // A second conflict, on b.txt, from a client that saw the first merge: only its own copy is new.
  const headFiles = { "a.txt": "theirs", "b.txt": "mine", [firstCopies[0]!]: "ours" };
  await commit(node, { ...headFiles, "b.txt": "one" }, merged.version);
  const again = await commit(node, { ...headFiles, "b.txt": "two" }, merged.version);
  expect(again.conflicts.map((c) => c.path)).toEqual(["b.txt"]);
  expect(await copiesOf(again.version)).toEqual(again.conflicts[0]!.extraPaths);
  expect((await app.request(`/v1/folders/docs/versions/zz/conflicts`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(400);
});

test("conflict copy names are recognised by their marker in the last name only", () => {
  expect(isConflictCopyPath("notes/plan.sync-conflict-20261201-090802-alpha.md")).toBe(true);
  expect(isConflictCopyPath("README.sync-conflict-20261201-090802-node.b")).toBe(true);
  expect(isConflictCopyPath("x.sync-conflict-20261201-090802-alpha/plan.md")).toBe(false);
  expect(isConflictCopyPath("plan.sync-conflict-2026-alpha.md")).toBe(false);
});
