// A client cannot use the quarantine: wrong bytes for a quarantined id, alone or hidden in a
// batch among good objects, are refused (422) and store nothing, so the object stays quarantined
// and awaiting a good copy; reading good objects, however often, quarantines nothing.
import { expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { encodeIdList, encodeObjectBatch } from "../../src/wire/formats.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const TOKEN = "client-token-for-tests";

test("wrong bytes for a quarantined id are refused and leave it quarantined; good reads quarantine nothing", async () => {
  const store = new MemoryObjectStore();
  const node = await DsyncNode.over(store, SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello, world\n", "b.txt": "another file\n" });
  await node.putObjects(objects.all());
  await node.commit({ folder: "f", root, parent: null, message: "", chunking: "test", files: 2, totalBytes: 26 });
  const app = createApp(node, { token: TOKEN });
  const call = (method: string, path: string, body?: Uint8Array) =>
    app.request(path, { method, body: body as Uint8Array<ArrayBuffer> | undefined, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/msgpack" } });

  // Reading every object many times over quarantines none of them.
  const all = objects.all();
  for (let i = 0; i < 5; i++) expect((await call("POST", "/v1/objects/download", encodeIdList(all.map((o) => o.id)))).status).toBe(200);
  expect((await node.corruptionStatus()).quarantined).toBe(0);

  const [victim, other] = all.filter((o) => objects.chunk(o.id) !== undefined);
  store.damageForTesting(victim!.id);
  expect((await call("GET", `/v1/objects/${idToHex(victim!.id)}`)).status).toBe(503);
  const wrong = new TextEncoder().encode("not the bytes of this id");
  expect((await call("PUT", `/v1/objects/${idToHex(victim!.id)}`, wrong)).status).toBe(422);
  // Hidden in a batch after a good object: the whole batch is refused, nothing of it stored.
  expect((await call("POST", "/v1/objects/upload", encodeObjectBatch([other!, { id: victim!.id, bytes: wrong }]))).status).toBe(422);
  expect((await call("GET", `/v1/objects/${idToHex(victim!.id)}`)).status).toBe(503);
  expect((await node.corruptionStatus()).quarantined).toBe(1);
  // The right bytes repair it.
  expect((await call("PUT", `/v1/objects/${idToHex(victim!.id)}`, victim!.bytes)).status).toBe(201);
  expect((await call("GET", `/v1/objects/${idToHex(victim!.id)}`)).status).toBe(200);
  expect((await node.corruptionStatus()).quarantined).toBe(0);
});
