// A commit's parent is linked only when it is a version of the folder committed into: a writer
// of folder f naming folder g's head as its parent (an id it may have seen) gets a version of f
// whose history does not lead into g, and a first commit into a folder without a head, naming
// any parent, is recorded as that folder's first version (it was a 500 before, and left the
// folder created with no version). Over a real socket on 127.0.0.1.
import { afterAll, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { systemRandom } from "../../src/node/clock.ts";
import { SqliteTokenStore } from "../../src/node/token-store.ts";
import { createApp } from "../../src/server/app.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

async function setUp() {
  const { node, root, commit } = await memoryNodeWithOneCommit();
  const objects = new MemoryObjects();
  const gRoot = objects.tree({ "secret.txt": "only in g" });
  await node.putObjects(objects.all());
  const g = await node.commit({ folder: "g", root: gRoot, parent: null, message: "", chunking: "test", files: 1, totalBytes: 9 });
  const tokens = SqliteTokenStore.open(tempDir(), systemRandom);
  const writer = await tokens.create({ role: "write", folders: ["f", "fresh"], name: "writer of f", expiresMs: null }, Date.now());
  const app = createApp(node, { token: "admin-token-for-tests", tokens });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${writer.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  return { node, server, call, root, fHead: commit.version, gHead: g.version };
}

test("a writer of f naming g's version as the parent: f's new versions do not link to it", async () => {
  const { server, call, root, fHead, gHead } = await setUp();
  try {
    // f's head has not moved since fHead, but the push names g's head: a merge without a base.
    const pushed = await call("POST", "/v1/folders/f/commit", { root: idToHex(root), parent: idToHex(gHead), message: "naming g" });
    expect(pushed.status).toBe(200);
    const page = await call("GET", "/v1/folders/f/versions");
    const versions = page.json.versions as { id: string; parents: string[] }[];
    expect(versions.length).toBeGreaterThan(1);
    for (const version of versions) expect(version.parents).not.toContain(idToHex(gHead));
    expect(versions.some((v) => v.parents.includes(idToHex(fHead)))).toBe(true);
  } finally {
    server.stop(true);
  }
});

test("a first commit into a folder without a head, naming a parent, is its first version", async () => {
  const { node, server, call, root, gHead } = await setUp();
  try {
    const pushed = await call("POST", "/v1/folders/fresh/commit", { root: idToHex(root), parent: idToHex(gHead) });
    expect(pushed.status).toBe(200);
    const versions = (await call("GET", "/v1/folders/fresh/versions")).json.versions as { id: string; parents: string[] }[];
    expect(versions.map((v) => v.id)).toEqual([pushed.json.version as string]);
    expect(versions[0]!.parents).toEqual([]);
    expect(idToHex((await node.getFolder("fresh")).head!)).toBe(pushed.json.version as string);
  } finally {
    server.stop(true);
  }
});
