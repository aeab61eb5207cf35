// A pull cut short after it began writing: what it wrote is its target's content, not a local
// edit. The next pull (to any version) brings the directory all the way there, keeping only real
// local edits; a push before that is refused, so the half-moved mix never becomes a version.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { chunkLengths } from "../../src/core/fastcdc.ts";
import { cleanupTempDirs, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

let node: NodeProcess;

beforeAll(async () => {
  node = await startNode();
});

afterAll(async () => {
  await node?.stop();
  cleanupTempDirs();
});

const MiB = 1024 * 1024;

/** Forwards to the node; an object download asking for the id in `failFor` fails with 500. */
function cuttingProxy(target: NodeProcess) {
  const control: { failFor: Uint8Array | null } = { failFor: null };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      // Ids travel as raw 32-byte strings in the request's msgpack list.
      if (body && control.failFor && url.pathname.startsWith("/v1/objects") && Buffer.from(body).indexOf(control.failFor) !== -1) {
        return Response.json({ error: "injected failure" }, { status: 500 });
      }
      const reply = await fetch(target.url + url.pathname + url.search, { method: request.method, headers: request.headers, body, decompress: false } as RequestInit);
      return new Response(await reply.arrayBuffer(), { status: reply.status, headers: reply.headers });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, control, stop: () => server.stop(true) };
}

const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, ".dsync", "state.json"), "utf8"));

test("a pull cut off midway is finished by the next pull, keeps real local edits, and blocks pushes until then", async () => {
  const source = join(tempDir(), "album");
  // Three large files first (written in two groups: the cut falls between them), small ones after.
  const v1Tree = {
    "a1.bin": randomBytes(9 * MiB, 1),
    "a2.bin": randomBytes(9 * MiB, 2),
    "a3.bin": randomBytes(9 * MiB, 3),
    "z-keep.txt": "the same in both versions\n",
    "z-old.txt": "only in the first version\n",
  };
  writeTree(source, v1Tree);
  const v1 = (await runCli(["push", source, "--remote", node.url, "--folder", "album", "--json"])).json<{ version: string }>().version;
  writeTree(source, { "a1.bin": randomBytes(9 * MiB, 11), "a2.bin": randomBytes(9 * MiB, 12), "a3.bin": randomBytes(9 * MiB, 13), "z-new.txt": "only in the second\n" });
  const { rmSync } = await import("node:fs");
  rmSync(join(source, "z-old.txt"));
  const v2 = (await runCli(["push", source, "--json"])).json<{ version: string }>().version;

  const proxy = cuttingProxy(node);
  try {
    const mirror = join(tempDir(), "mirror");
    expect((await runCli(["pull", mirror, "--remote", proxy.url, "--folder", "album"])).code).toBe(0);

    // Back to v1, cut off after the first group of files (a1, a2: 18 MiB) was fetched and
    // written: the download of the second group asks for a3's first chunk, and fails.
    const a3 = v1Tree["a3.bin"];
    proxy.control.failFor = blake3(a3.subarray(0, chunkLengths(a3)[0]!));
    const cut = await runCli(["pull", mirror, "--version", v1]);
    expect(cut.code).toBe(1);
    expect(readFileSync(join(mirror, "a1.bin")).equals(Buffer.from(v1Tree["a1.bin"]))).toBe(true);
    expect(readFileSync(join(mirror, "a3.bin")).equals(Buffer.from(v1Tree["a3.bin"]))).toBe(false);
    expect(stateOf(mirror).pulling).toHaveLength(1);
    proxy.control.failFor = null;

    // The half-moved directory is never pushed as a version.
    const push = await runCli(["push", mirror]);
    expect(push.code).toBe(1);
    expect(push.stderr).toContain("was interrupted before it finished: run dsync pull");

    // A real edit made meanwhile stays an edit; everything else goes to v2, with no conflict.
    writeFileSync(join(mirror, "z-keep.txt"), "mine\n");
    const resumed = await runCli(["pull", mirror, "--version", v2, "--json"]);
    expect(resumed.code).toBe(0);
    const report = resumed.json<{ conflicts: { path: string }[] }>();
    // The node did not change z-keep.txt, so the edit is no conflict: it simply stays.
    expect(report.conflicts).toEqual([]);
    const diff = await runCli(["diff", mirror, `${proxy.url}/album@${v2}`]);
    expect(diff.stdout.trim().split("\n")).toEqual(["M z-keep.txt"]);
    expect(stateOf(mirror).pulling).toBeUndefined();
    for (const name of ["a1.bin", "a2.bin", "a3.bin"]) {
      expect(readFileSync(join(mirror, name)).equals(readFileSync(join(source, name)))).toBe(true);
    }
    // Settled: pushes work again.
    expect((await runCli(["push", mirror])).code).toBe(0);
  } finally {
    proxy.stop();
  }
}, 120_000);
