// The upload routes mark what lands complete (src/node/ingest-marks.ts): a tree sent bottom-up
// through POST /v1/objects/upload is marked up to its root, and the commit that follows reads
// nothing below it; a tree naming a chunk never sent is not marked, and its commit is refused
// with that chunk named (409), as before.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { sealTree } from "../../src/core/tree-builder.ts";
import { openNode } from "../../src/assemble.ts";
import { createApp } from "../../src/server/app.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { encodeObjectBatch } from "../../src/wire/formats.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterEach(() => cleanupTempDirs());

const TOKEN = "client-token-for-tests";

function directory(files: number, salt: string): { id: ObjectId; objects: StoredObject[] } {
  const objects: StoredObject[] = [];
  const entries: TreeEntry[] = [];
  for (let i = 0; i < files; i++) {
    const bytes = new TextEncoder().encode(`${salt} file ${i}`);
    const id = blake3(bytes);
    objects.push({ id, bytes });
    entries.push({ name: `f${i}`, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: bytes.length, id, target: null, idNamesChunk: true });
  }
  const tree = sealTree(entries);
  objects.push(...tree.objects.map((o) => ({ id: o.id, bytes: o.bytes })));
  return { id: tree.id, objects };
}

async function setUp() {
  const node = await openNode({ dataDir: join(tempDir(), "data") });
  const app = createApp(node, { token: TOKEN });
  const call = (method: string, path: string, body: Uint8Array | string) =>
    app.request(path, {
      method,
      body: body as Uint8Array<ArrayBuffer> | string,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": typeof body === "string" ? "application/json" : "application/msgpack" },
    });
  const commit = (folder: string, root: ObjectId) => call("POST", `/v1/folders/${folder}/commit`, JSON.stringify({ root: idToHex(root), parent: null, message: "", files: 1, bytes: 1 }));
  return { node, call, commit };
}

test("a tree uploaded bottom-up is marked as it lands, and its commit reads nothing below the root", async () => {
  const { node, call, commit } = await setUp();
  const a = directory(40, "a");
  const b = directory(40, "b");
  const root = sealTree([
    { name: "a", kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: a.id, target: null },
    { name: "b", kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: b.id, target: null },
  ]);
  // Two requests, as a push sends its batches: the first directory, then the rest with the root.
  expect((await call("POST", "/v1/objects/upload", encodeObjectBatch(a.objects))).status).toBe(200);
  expect((await call("POST", "/v1/objects/upload", encodeObjectBatch([...b.objects, ...root.objects]))).status).toBe(200);
  expect(await node.metadata.isComplete(root.id)).toBe(true);
  let reads = 0;
  const getMany = node.store.getMany.bind(node.store);
  node.store.getMany = (ids) => {
    reads += ids.length;
    return getMany(ids);
  };
  expect((await commit("f", root.id)).status).toBe(200);
  expect(reads).toBe(0);
  await node.close();
});

test("a tree naming a chunk never sent is not marked, and its commit is refused naming the chunk", async () => {
  const { node, call, commit } = await setUp();
  const dir = directory(10, "c");
  const lost = dir.objects[3]!;
  expect((await call("POST", "/v1/objects/upload", encodeObjectBatch(dir.objects.filter((o) => o !== lost)))).status).toBe(200);
  expect(await node.metadata.isComplete(dir.id)).toBe(false);
  const refused = await commit("f", dir.id);
  expect(refused.status).toBe(409);
  expect(((await refused.json()) as { missing: string[] }).missing).toEqual([idToHex(lost.id)]);
  // Sent alone afterwards (PUT /v1/objects/:id), the chunk completes the tree.
  expect((await call("PUT", `/v1/objects/${idToHex(lost.id)}`, lost.bytes)).status).toBe(201);
  expect((await commit("f", dir.id)).status).toBe(200);
  await node.close();
});
