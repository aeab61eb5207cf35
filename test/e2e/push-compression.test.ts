// `dsync push --compress`: the same tree pushed plain (never) and zstd-compressed (a level) to
// two real nodes ends as the same version with the same stored objects, byte for byte, and
// the compressed push puts fewer bytes on the wire. The node takes both kinds of batch.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
// The benchmarks' throttled link (a token bucket each way), so the test goes through the same one.
import { measureLinkMbit, startTcpProxy } from "../../scripts/bench/tcp-proxy.ts";
import { childRefs, decodeIfObject } from "../../src/core/objects.ts";
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { blake3 } from "../../src/core/blake3.ts";
import { runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { randomBytes, writeTree, type DiskTree } from "../helpers/trees.ts";

let plainNode: NodeProcess;
let zstdNode: NodeProcess;
let autoNode: NodeProcess;
/** The tree, written once: each push gets a copy with the same modes and times (the same version). */
let source: string;

beforeAll(async () => {
  [plainNode, zstdNode, autoNode] = await Promise.all([startNode(), startNode(), startNode()]);
  source = join(tempDir(), "source");
  writeTree(source, mixedTree());
});

function copyOfSource(name: string): string {
  const dir = join(tempDir(), name);
  // cp -a: directories keep their times too (cpSync sets them before filling them).
  const copy = Bun.spawnSync(["cp", "-a", source, dir]);
  if (copy.exitCode !== 0) throw new Error(`cp -a failed: ${copy.stderr.toString()}`);
  return dir;
}

afterAll(async () => {
  await Promise.all([plainNode?.stop(), zstdNode?.stop(), autoNode?.stop()]);
});

/** About 10 MiB: text that shrinks (several upload batches of it), random files that do not, small files. */
function mixedTree(): DiskTree {
  const words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jolly boxes".split(" ");
  const text = (seed: number, bytes: number) => {
    const out: string[] = [];
    let state = seed;
    let length = 0;
    while (length < bytes) {
      state = (state * 1103515245 + 12345) >>> 0;
      const word = words[state % words.length]! + (state % 13 === 0 ? "\n" : " ");
      out.push(word);
      length += word.length;
    }
    return out.join("");
  };
  const small: DiskTree = {};
  for (let i = 0; i < 200; i++) small[`note-${i}.txt`] = text(1000 + i, 200 + (i % 7) * 300);
  return {
    "text-a.txt": text(1, 3 * 1024 * 1024),
    "text-b.log": text(2, 2 * 1024 * 1024),
    "random.bin": randomBytes(3 * 1024 * 1024, 3),
    media: { "clip.bin": randomBytes(1024 * 1024, 4), "notes.md": text(5, 600 * 1024) },
    small,
  };
}

async function pushWith(node: { url: string }, dir: string, compress: string) {
  const result = await runCli(["push", dir, "--remote", node.url, "--folder", "mixed", "--compress", compress, "--json"]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return result.json();
}

async function getObject(node: NodeProcess, id: ObjectId): Promise<Uint8Array> {
  const reply = await fetch(`${node.url}/v1/objects/${idToHex(id)}`);
  if (reply.status !== 200) throw new Error(`${node.url} has no object ${idToHex(id)} (${reply.status})`);
  return new Uint8Array(await reply.arrayBuffer());
}

/** Every object and chunk under `root` on both nodes, compared byte for byte; returns how many. */
async function compareStored(a: NodeProcess, b: NodeProcess, root: ObjectId): Promise<number> {
  const seen = new Set<string>();
  const queue: ObjectId[] = [root];
  while (queue.length > 0) {
    const id = queue.pop()!;
    const hex = idToHex(id);
    if (seen.has(hex)) continue;
    seen.add(hex);
    const [fromA, fromB] = await Promise.all([getObject(a, id), getObject(b, id)]);
    expect(Buffer.from(fromA).equals(Buffer.from(fromB))).toBe(true);
    expect(idToHex(blake3(fromA))).toBe(hex);
    const object = decodeIfObject(fromA);
    if (object) {
      const refs = childRefs(object);
      queue.push(...refs.objects, ...refs.chunks);
    }
  }
  return seen.size;
}

describe("push --compress", () => {
  test("never and a level store the same version and the same objects; the level sends fewer bytes", async () => {
    const plainDir = copyOfSource("plain");
    const zstdDir = copyOfSource("zstd");

    const plain = await pushWith(plainNode, plainDir, "never");
    const zstd = await pushWith(zstdNode, zstdDir, "3");

    expect(zstd.root).toBe(plain.root);
    expect(zstd.bytes_sent).toBe(plain.bytes_sent);
    expect(plain.batches_compressed).toBe(0);
    expect(plain.batches_plain).toBeGreaterThan(1);
    expect(zstd.batches_compressed).toBeGreaterThan(0);
    // The plain push's wire carries every object byte (and the framing); the compressed one a good deal less.
    expect(plain.wire_bytes_sent).toBeGreaterThan(plain.bytes_sent);
    expect(zstd.wire_bytes_sent).toBeLessThan(plain.wire_bytes_sent * 0.8);

    const objects = await compareStored(plainNode, zstdNode, idFromHex(plain.root));
    expect(objects).toBeGreaterThan(200);

    // And each node's head reads back as the directory.
    const diff = await runCli(["diff", `${plainNode.url}/mixed`, `${zstdNode.url}/mixed`]);
    expect(diff.code).toBe(0);
  }, 120_000);

  test("auto (the default) stores the same version, whichever way it sent each batch", async () => {
    const dir = copyOfSource("auto");
    const auto = await pushWith(autoNode, dir, "auto");
    expect(auto.batches_compressed + auto.batches_plain).toBeGreaterThan(1);
    const reference = await runCli(["diff", dir, `${autoNode.url}/mixed`]);
    expect(reference.code).toBe(0);
    await compareStored(autoNode, plainNode, idFromHex(auto.root));
  }, 120_000);

  test("the throttled link of the benchmarks delivers its rate each way (within 15%)", async () => {
    const achieved = await measureLinkMbit({ mbit: 16 }, 1024 * 1024);
    for (const mbit of [achieved.up, achieved.down]) {
      expect(mbit).toBeGreaterThan(16 * 0.85);
      expect(mbit).toBeLessThan(16 * 1.15);
    }
  }, 30_000);

  test("auto over a slow link (16 Mbit/s each way) compresses, and stores what a --compress never push stores", async () => {
    const [throttledNode, referenceNode] = await Promise.all([startNode(), startNode()]);
    const link = await startTcpProxy({ targetPort: Number(new URL(throttledNode.url).port), link: { mbit: 16 } });
    try {
      const auto = await pushWith({ url: `http://127.0.0.1:${link.port}` }, copyOfSource("slow-auto"), "auto");
      const never = await pushWith(referenceNode, copyOfSource("slow-never"), "never");
      if (auto.batches_compressed < 2) console.error(JSON.stringify({ batches_compressed: auto.batches_compressed, batches_plain: auto.batches_plain, wire: auto.wire_bytes_sent, bytes: auto.bytes_sent }));
      // The text shrinks, the random files do not. (Which level: test/client/upload-compression.test.ts;
      // a tree this small is sent before the first upload comes back, at the fastest level.)
      expect(auto.batches_compressed).toBeGreaterThanOrEqual(2);
      expect(auto.wire_bytes_sent).toBeLessThan(never.wire_bytes_sent * 0.8);
      // The same version, and the same objects byte for byte.
      expect(auto.root).toBe(never.root);
      expect(auto.bytes_sent).toBe(never.bytes_sent);
      expect(await compareStored(throttledNode, referenceNode, idFromHex(auto.root))).toBeGreaterThan(200);
      // What crossed the link is what the client says it sent, give or take HTTP's framing.
      const { up } = link.counters();
      expect(up).toBeGreaterThanOrEqual(auto.wire_bytes_sent);
      expect(up).toBeLessThan(auto.wire_bytes_sent * 1.05 + 64 * 1024);
    } finally {
      link.stop();
      await Promise.all([throttledNode.stop(), referenceNode.stop()]);
    }
  }, 120_000);

  test("an unknown --compress is a usage error, nothing sent", async () => {
    const dir = join(tempDir(), "bad");
    writeTree(dir, { "a.txt": "a\n" });
    const result = await runCli(["push", dir, "--remote", autoNode.url, "--folder", "bad", "--compress", "max"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--compress takes auto, never or a zstd level from 1 to 19");
    const folders = await (await fetch(`${autoNode.url}/v1/folders`)).json();
    expect(JSON.stringify(folders)).not.toContain('"bad"');
  });
});
