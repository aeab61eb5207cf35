// Folder membership: every object a folder's versions reach is recorded, incrementally (a new
// version costs what is new), never an object before everything below it (an unreadable node
// keeps its ancestors out until it can be read), and a token's uploads are kept 7 days.
import { afterAll, describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { FolderMembership, UPLOAD_RECORD_MS } from "../../src/node/folder-membership.ts";
import { walkClosure } from "../../src/node/walk.ts";
import { openMembership } from "../../src/server/object-visibility.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { memoryNode } from "../helpers/memory-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

async function nodeWith(trees: Record<string, Parameters<MemoryObjects["tree"]>[0]>) {
  const node = await memoryNode();
  const roots: Record<string, ReturnType<MemoryObjects["tree"]>> = {};
  for (const [folder, spec] of Object.entries(trees)) {
    const objects = new MemoryObjects();
    roots[folder] = objects.tree(spec);
    await node.putObjects(objects.all());
    await node.commit({ folder, root: roots[folder]!, parent: null, message: "", chunking: "test", files: 1, totalBytes: 1 });
  }
  return { node, roots };
}

describe("folder membership", () => {
  test("records exactly what the folder's versions reach, and a second version adds only what is new", async () => {
    const { node } = await nodeWith({ f: { "a.txt": "alpha", dir: { "b.txt": "beta", "c.txt": "gamma" } } });
    const membership = openMembership(node, tempDir());
    const first = await membership.catchUp("f");
    const versions = await node.listVersions("f");
    const closure = await walkClosure(versions.map((v) => ({ id: v.id, kind: "structured" as const })), node.store);
    expect(first).toEqual({ versions: 1, added: closure.size, unreadable: 0 });
    expect(membership.countMembers("f")).toBe(closure.size);
    expect(await membership.catchUp("f")).toEqual({ versions: 0, added: 0, unreadable: 0 });

    // One file changed: the new version, its root, the changed file's node and chunk.
    const objects = new MemoryObjects();
    const root = objects.tree({ "a.txt": "alpha", dir: { "b.txt": "beta", "c.txt": "gamma" }, "d.txt": "delta" });
    await node.putObjects(objects.all());
    const head = (await node.getFolder("f")).head;
    await node.commit({ folder: "f", root, parent: head, message: "", chunking: "test", files: 4, totalBytes: 1 });
    const second = await membership.catchUp("f");
    expect(second.versions).toBe(1);
    expect(second.added).toBeLessThanOrEqual(4);
    expect(second.added).toBeGreaterThanOrEqual(3);
    expect(membership.membersOf(["f"], [root])).toEqual([true]);
    expect(await membership.catchUp("nope")).toEqual({ versions: 0, added: 0, unreadable: 0 });
    membership.close();
  });

  test("a node that cannot be read keeps itself and all above it unrecorded, and the watermark back, until it can", async () => {
    const { node, roots } = await nodeWith({ f: { dir: { "b.txt": "beta" }, "a.txt": "alpha" } });
    const store = node.store as MemoryObjectStore;
    // The tree node of dir: read it from the root's entries.
    const { decodeObject } = await import("../../src/core/objects.ts");
    const rootObject = decodeObject((await store.get(roots.f!))!) as unknown as { entries: { name: string; id: ObjectId }[] };
    const dirId = rootObject.entries.find((e) => e.name === "dir")!.id;
    const dirBytes = (await store.get(dirId))!;
    await store.delete(dirId);
    const membership = FolderMembership.open(":memory:", { store, versionsPage: async (folder, limit, below) => await node.metadata.listVersionsPage(folder, limit, below) });
    const report = await membership.catchUp("f");
    expect(report.unreadable).toBe(1);
    expect(membership.membersOf(["f"], [roots.f!, dirId])).toEqual([false, false]);
    expect(membership.isTracked("f")).toBe(false);
    await store.put(dirId, dirBytes);
    const again = await membership.catchUp("f");
    expect(again.unreadable).toBe(0);
    expect(membership.membersOf(["f"], [roots.f!, dirId])).toEqual([true, true]);
    expect(membership.isTracked("f")).toBe(true);
  });

  test("uploads are a token's own for 7 days; a tree it may not commit names what it may not know of", async () => {
    const { node, roots } = await nodeWith({ a: { "x.txt": "in a" }, b: { "y.txt": "in b" } });
    const membership = openMembership(node, ":memory:");
    await membership.catchUp("a");
    await membership.catchUp("b");
    const T = 1_800_000_000_000;
    expect(await membership.invisibleBelow(roots.b!, ["a"], "tok1", T)).toEqual([roots.b!]);
    expect(await membership.invisibleBelow(roots.b!, ["a", "b"], "tok1", T)).toEqual([]);
    // A tree uploaded by the token is looked below: its children must be visible too.
    const objects = new MemoryObjects();
    const mixed = objects.tree({ "x.txt": "in a", "y.txt": "in b" });
    await node.putObjects(objects.all());
    membership.recordUploads("tok1", [mixed], T);
    const hidden = (await membership.invisibleBelow(mixed, ["a"], "tok1", T)).map(idToHex);
    expect(hidden.length).toBe(1);
    expect(membership.uploadedBy("tok1", [mixed], T + UPLOAD_RECORD_MS - 1)).toEqual([true]);
    expect(membership.uploadedBy("tok1", [mixed], T + UPLOAD_RECORD_MS)).toEqual([false]);
    expect(membership.uploadedBy("tok2", [mixed], T)).toEqual([false]);
    expect(membership.pruneUploads(T + UPLOAD_RECORD_MS)).toBe(1);
  });
});
