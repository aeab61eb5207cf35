// A client facing a hostile server, or a directory changed under it, never writes outside the
// directory it syncs.
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type TreeEntry } from "../../src/core/objects.ts";
import { decodeIdList, encodeDownloadReply } from "../../src/wire/formats.ts";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const node = sharedNode();

/** A fake node that serves one folder whose tree holds whatever names it is given. */
function hostileServer(names: string[]) {
  const objects = new Map<string, Uint8Array>();
  const add = (bytes: Uint8Array): ObjectId => {
    const id = blake3(bytes);
    objects.set(idToHex(id), bytes);
    return id;
  };
  const content = new TextEncoder().encode("pwned\n");
  const chunkId = add(content);
  const fileId = add(encodeObject({ kind: "file", level: 0, sizeBytes: content.length, chunks: [{ id: chunkId, lengthBytes: content.length }] }));
  const entries: TreeEntry[] = names.map((name) => ({ name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: content.length, id: fileId, target: null }));
  const root = add(encodeObject({ kind: "tree", level: 0, entries }));
  const version = "ab".repeat(32);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === "/v1/folders/evil") return Response.json({ name: "evil", head: version, mode: "eventual" });
      if (path === `/v1/folders/evil/versions/${version}`) {
        return Response.json({ id: version, root: idToHex(root), parents: [], author: "x", time: new Date(0).toISOString() });
      }
      if (path === "/v1/objects/download") {
        const ids = decodeIdList(new Uint8Array(await request.arrayBuffer()));
        const found = ids.filter((id) => objects.has(idToHex(id))).map((id) => ({ id, bytes: objects.get(idToHex(id))! }));
        return new Response(encodeDownloadReply(found, []) as unknown as BodyInit);
      }
      const one = /^\/v1\/objects\/([0-9a-f]{64})$/.exec(path);
      if (one && objects.has(one[1]!)) return new Response(objects.get(one[1]!) as unknown as BodyInit);
      return Response.json({ error: "no" }, { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

test("a hostile server's unsafe names are refused and nothing is written anywhere", async () => {
  for (const name of ["../escape", "..", "/tmp/absolute-escape", "a/../../escape", "sub\\..\\..\\escape", "nul\0byte", "."]) {
    const server = hostileServer(["innocent.txt", name].sort());
    const parent = tempDir();
    const target = join(parent, "victim");
    const result = await runCli(["pull", target, "--remote", server.url, "--folder", "evil"]);
    server.stop();
    expect({ name, code: result.code }).toEqual({ name, code: 1 });
    expect(readdirSync(parent).sort()).toEqual(["victim"]);
    expect(readdirSync(target).filter((n) => n !== ".dsync")).toEqual([]);
    expect(existsSync("/tmp/absolute-escape")).toBe(false);
  }
});

test("a directory swapped for a symlink is never written through", async () => {
  const source = join(tempDir(), "swap");
  writeTree(source, { sub: { "a.txt": "a\n" }, "top.txt": "t\n" });
  expect((await runCli(["push", source, "--remote", node().url])).code).toBe(0);
  const victim = join(tempDir(), "victim");
  expect((await runCli(["pull", victim, "--remote", node().url, "--folder", "swap"])).code).toBe(0);

  // Someone replaces victim/sub with a link to a directory outside, then the remote adds sub/b.txt.
  const outside = join(tempDir(), "outside");
  mkdirSync(outside);
  writeFileSync(join(outside, "a.txt"), "not yours\n");
  rmSync(join(victim, "sub"), { recursive: true });
  symlinkSync(outside, join(victim, "sub"));
  writeFileSync(join(source, "sub", "b.txt"), "b\n");
  rmSync(join(source, "sub", "a.txt")); // and a deletion that must not reach through the link
  writeFileSync(join(source, "top.txt"), "t2\n");
  expect((await runCli(["push", source])).code).toBe(0);

  const pulled = await runCli(["pull", victim, "--json"]);
  expect(pulled.code).toBe(0);
  expect(readdirSync(outside)).toEqual(["a.txt"]);
  expect(readFileSync(join(outside, "a.txt"), "utf8")).toBe("not yours\n");
  expect(readFileSync(join(victim, "top.txt"), "utf8")).toBe("t2\n");
  const report = pulled.json();
  expect(report.skipped.map((s: { path: string }) => s.path)).toContain("sub/b.txt");
});

test("a symlink replaced by a directory on the node is replaced, not followed", async () => {
  const outside = join(tempDir(), "outside2");
  mkdirSync(outside);
  const source = join(tempDir(), "linkswap");
  writeTree(source, { link: { symlink: outside } });
  expect((await runCli(["push", source, "--remote", node().url])).code).toBe(0);
  const victim = join(tempDir(), "victim2");
  expect((await runCli(["pull", victim, "--remote", node().url, "--folder", "linkswap"])).code).toBe(0);
  rmSync(join(source, "link"));
  writeTree(source, { link: { "x.txt": "inside\n" } });
  expect((await runCli(["push", source])).code).toBe(0);
  expect((await runCli(["pull", victim])).code).toBe(0);
  expect(readdirSync(outside)).toEqual([]);
  expect(readFileSync(join(victim, "link", "x.txt"), "utf8")).toBe("inside\n");
});
