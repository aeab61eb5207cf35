// GET /v1/objects/:id of an object found corrupt here and not repaired yet: 503 naming it as
// corrupt and awaiting repair, like the download route, so a client tells "corrupt" from "never
// had it" (404); the client's message says so.
import { afterAll, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { RemoteError, RemoteNode } from "../../src/client/remote.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const TOKEN = "client-token-for-tests";
const servers: { stop(force?: boolean): unknown }[] = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
});

async function setUp() {
  const store = new MemoryObjectStore();
  const node = await DsyncNode.over(store, SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello, world\n" });
  await node.putObjects(objects.all());
  await node.commit({ folder: "f", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 13 });
  const chunk = objects.all().find((o) => objects.chunk(o.id) !== undefined)!;
  const app = createApp(node, { token: TOKEN });
  const get = (idHex: string) => app.request(`/v1/objects/${idHex}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { store, node, app, chunk, get };
}

test("a quarantined object answers 503 naming it corrupt; an object never held answers 404", async () => {
  const { store, chunk, get } = await setUp();
  const hex = idToHex(chunk.id);
  expect((await get(hex)).status).toBe(200);
  store.damageForTesting(chunk.id);
  // The first read finds the damage and quarantines it; it and every later read say so.
  for (let i = 0; i < 2; i++) {
    const response = await get(hex);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: string; corrupt: string[] };
    expect(body.corrupt).toEqual([hex]);
    expect(body.error).toContain(`object ${hex} is corrupt on this node and was quarantined`);
  }
  const never = "ab".repeat(32);
  const missing = await get(never);
  expect(missing.status).toBe(404);
  expect(((await missing.json()) as { error: string }).error).toBe(`no object ${never}`);
});

test("a good copy stored again lifts it: 200 with the bytes", async () => {
  const { store, node, chunk, get } = await setUp();
  store.damageForTesting(chunk.id);
  expect((await get(idToHex(chunk.id))).status).toBe(503);
  await node.putObjects([chunk]);
  const response = await get(idToHex(chunk.id));
  expect(response.status).toBe(200);
  expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.from(chunk.bytes))).toBe(true);
});

test("the client reports a corrupt object as damaged on the node, not as absent", async () => {
  const { store, app, chunk } = await setUp();
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
  servers.push(server);
  const remote = new RemoteNode(`http://127.0.0.1:${server.port}`, TOKEN);
  expect(await remote.getObject(chunk.id)).toEqual(chunk.bytes);
  store.damageForTesting(chunk.id);
  const failure = await remote.getObject(chunk.id).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(RemoteError);
  expect((failure as RemoteError).status).toBe(503);
  expect((failure as Error).message).toContain("holds only a damaged copy (503)");
  expect((failure as Error).message).toContain(`object ${idToHex(chunk.id)} is corrupt on this node`);
  // Never held is still "absent", not an error.
  expect(await remote.getObject(new Uint8Array(32).fill(7) as never)).toBeUndefined();
});
