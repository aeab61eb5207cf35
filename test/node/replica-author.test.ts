// A version from a peer names its author and the nodes of its version vector; they become parts
// of file names (a conflict copy is "name.sync-conflict-<time>-<author>.ext") and of every
// node's history. A peer's version whose author or vector nodes are not node ids (control or
// bidirectional characters, "/", 128 characters) is refused before anything of it is recorded.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type Version } from "../../src/core/objects.ts";
import { readTreeEntries } from "../../src/core/pages.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

async function nodeWithHead() {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "report.txt": "ours\n" });
  await node.putObjects(objects.all());
  await node.commit({ folder: "f", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 5 });
  return node;
}

/** A peer's version of report.txt written by `author`, concurrent with the node's head. */
async function peerVersion(node: DsyncNode, author: string, vectorNode = author): Promise<{ id: ObjectId; version: Version }> {
  const objects = new MemoryObjects();
  const root = objects.tree({ "report.txt": "theirs\n" });
  const version: Version = {
    kind: "version",
    root,
    parents: [],
    author,
    hlcWallMs: Date.UTC(2026, 0, 1),
    hlcCounter: 0,
    message: "",
    versionVector: [{ node: vectorNode, counter: 1 }],
    chunking: "test",
  };
  const bytes = encodeObject(version);
  const id = blake3(bytes) as ObjectId;
  await node.putObjects([...objects.all(), { id, bytes }]);
  return { id, version };
}

describe("authors of a peer's versions", () => {
  const hostile = ["\u001b[2J\u001b[31mroot", "\u202egnp.exe", "../../etc", "a/b", "x".repeat(128), "has space"];

  for (const author of hostile) {
    test(`author ${JSON.stringify(author.slice(0, 20))} is refused and nothing is recorded`, async () => {
      const node = await nodeWithHead();
      const headBefore = (await node.metadata.getFolder("f"))!.head!;
      const { id, version } = await peerVersion(node, author);
      const attempt = node.integrateReplica("f", "eventual", [{ id, version, files: 1, totalBytes: 7 }], id);
      await expect(attempt).rejects.toThrow(`version ${idToHex(id)}`);
      expect(idToHex((await node.metadata.getFolder("f"))!.head!)).toBe(idToHex(headBefore));
      expect(await node.metadata.getVersion("f", id)).toBeUndefined();
    });
  }

  test("a vector naming a node that is not a node id is refused too", async () => {
    const node = await nodeWithHead();
    const { id, version } = await peerVersion(node, "n2", "\u0007bell");
    await expect(node.integrateReplica("f", "eventual", [{ id, version, files: 1, totalBytes: 7 }], id)).rejects.toThrow("version vector");
  });

  test("a peer's version by a node id merges, with the conflict copy named after it", async () => {
    const node = await nodeWithHead();
    const { id, version } = await peerVersion(node, "n2");
    const result = await node.integrateReplica("f", "eventual", [{ id, version, files: 1, totalBytes: 7 }], id);
    expect(result.outcome).toBe("merged");
    const head = (await node.metadata.getFolder("f"))!.head!;
    const entries = await readTreeEntries((await node.metadata.getVersion("f", head))!.root, node.load);
    expect(entries.map((e) => e.name).some((name) => /^report\.sync-conflict-\d{8}-\d{6}-n[12]\.txt$/.test(name))).toBe(true);
  });
});
