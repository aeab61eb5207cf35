// Deltas on real nodes: an update pushed with deltas (changed chunks sent against the chunks
// they replaced, src/client/delta-upload.ts) ends as the same version with the same stored
// objects, byte for byte, as the same update pushed whole (DSYNC_DELTA=0), and puts fewer bytes
// on the wire; a node that does not list kind 2 in its health gets none. A hostile uploader's
// deltas are refused clearly and store nothing: a base its token may not read (answered as one
// the node lacks, and given no signatures), a base the node lacks, a rebuilt object that is not
// the id named, a declared length past an object's bound, an unknown item kind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { BlockIndex, blockSignatures } from "../../src/core/block-signatures.ts";
import { dictionaryFromFresh, runsFromMatches } from "../../src/core/delta-base.ts";
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { childRefs, decodeIfObject } from "../../src/core/objects.ts";
import { ObjectBatchWriter } from "../../src/client/batch-writer.ts";
import { compressWithDictionary, encodeDeltaFrame } from "../../src/wire/delta-frame.ts";
import { decodeObjectBatch, encodeIdList } from "../../src/wire/formats.ts";
import { decodeSignaturesReply } from "../../src/wire/signatures-reply.ts";
import { createPrng } from "../helpers/prng.ts";
import { runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";

const ADMIN = "admin-token-for-delta-tests";
let deltaNode: NodeProcess;
let wholeNode: NodeProcess;

beforeAll(async () => {
  [deltaNode, wholeNode] = await Promise.all([startNode({ args: ["--token", ADMIN] }), startNode({ args: ["--token", ADMIN] })]);
});

afterAll(async () => {
  await Promise.all([deltaNode?.stop(), wholeNode?.stop()]);
});

function text(seed: number, bytes: number): string {
  const words = "const let function return export import class interface type extends implements async await yield".split(" ");
  const prng = createPrng(seed);
  const out: string[] = [];
  let length = 0;
  while (length < bytes) {
    const word = words[prng.nextInt(words.length)]! + (prng.nextInt(9) === 0 ? `_${prng.nextInt(100000)};\n` : " ");
    out.push(word);
    length += word.length;
  }
  return out.join("");
}

/** Version 2 of a text: a short edit every ~24 KiB, so nearly every chunk changes a little. */
function edited(before: string, seed: number): string {
  const prng = createPrng(seed);
  const parts: string[] = [];
  for (let at = 0; at < before.length; ) {
    const step = 16_000 + prng.nextInt(16_000);
    parts.push(before.slice(at, at + step));
    parts.push(prng.nextInt(2) === 0 ? `/* v2 ${prng.nextInt(1e9)} */` : "");
    at += step + prng.nextInt(40);
  }
  return parts.join("");
}

async function push(node: NodeProcess, dir: string, env: Record<string, string> = {}) {
  const result = await runCli(["push", dir, "--remote", node.url, "--folder", "rel", "--compress", "never", "--json"], { env: { DSYNC_TOKEN: ADMIN, ...env } });
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return result.json<{ root: string; chunks_sent: number; chunks_as_delta: number; signature_bytes: number; wire_bytes_sent: number }>();
}

function call(node: NodeProcess, token: string, path: string, body: Uint8Array, headers: Record<string, string> = {}) {
  return fetch(`${node.url}${path}`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: { authorization: `Bearer ${token}`, "content-type": "application/msgpack", ...headers } });
}

async function getObject(node: NodeProcess, id: ObjectId): Promise<Uint8Array | undefined> {
  const reply = await fetch(`${node.url}/v1/objects/${idToHex(id)}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (reply.status === 404) return undefined;
  if (reply.status !== 200) throw new Error(`${node.url}: GET object ${idToHex(id)} answered ${reply.status}`);
  return new Uint8Array(await reply.arrayBuffer());
}

/** Every object under `root` on both nodes, compared byte for byte; how many. */
async function compareStored(a: NodeProcess, b: NodeProcess, root: ObjectId): Promise<number> {
  const seen = new Set<string>();
  const queue: ObjectId[] = [root];
  while (queue.length > 0) {
    const id = queue.pop()!;
    if (seen.has(idToHex(id))) continue;
    seen.add(idToHex(id));
    const [bytesA, bytesB] = await Promise.all([getObject(a, id), getObject(b, id)]);
    expect(bytesA).toBeDefined();
    expect(Buffer.compare(bytesA!, bytesB!)).toBe(0);
    const object = decodeIfObject(bytesA!);
    if (object) {
      const refs = childRefs(object);
      queue.push(...refs.objects, ...refs.chunks);
    }
  }
  return seen.size;
}

/** A delta of `fresh` against `old` as a client builds it from the old chunk's signatures alone. */
function deltaAgainst(fresh: Uint8Array, old: Uint8Array, rebuiltBytes = fresh.length): Uint8Array {
  const index = new BlockIndex(512);
  index.add(blockSignatures(old, 512));
  const matches = index.match(fresh);
  const { runs } = runsFromMatches(matches, (block) => ({ chunk: 0, block }));
  const frame = compressWithDictionary(fresh, dictionaryFromFresh(fresh, matches, 512), 3);
  return encodeDeltaFrame({ blockBytes: 512, rebuiltBytes, furtherBases: [], runs, frame });
}

function batchOf(items: { id: ObjectId; delta: Uint8Array; base: ObjectId }[]): Uint8Array {
  const writer = new ObjectBatchWriter(new Uint8Array(1024 * 1024));
  for (const item of items) writer.appendDelta(item.id, item.delta, item.base);
  return writer.finish().slice();
}

describe("push with deltas", () => {
  test("an update sent as deltas gives the version and the objects of the same update sent whole, in fewer bytes", async () => {
    const v1 = join(tempDir(), "v1");
    const library = text(1, 1_500_000);
    const binary = createPrng(2).bytes(600_000);
    mkdirSync(join(v1, "lib"), { recursive: true });
    writeFileSync(join(v1, "lib", "library.js"), library);
    writeFileSync(join(v1, "app.bin"), binary);
    writeFileSync(join(v1, "README"), "version 1\n");
    // Many small changed files: their signatures are asked for ahead, in requests spanning files.
    const modules = Array.from({ length: 40 }, (_, i) => text(100 + i, 9_000 + i * 300));
    modules.forEach((module, i) => writeFileSync(join(v1, "lib", `module-${i}.js`), module));
    // Stretches moved and cut: a new chunk's blocks come from several old chunks (further bases).
    const bundle = text(50, 800_000);
    writeFileSync(join(v1, "lib", "bundle.js"), bundle);
    const bundle2 = bundle.slice(300_000, 420_000) + bundle.slice(0, 150_000) + bundle.slice(160_000, 300_000) + bundle.slice(420_000);
    const dirs = { delta: join(tempDir(), "d"), whole: join(tempDir(), "w") };
    for (const dir of Object.values(dirs)) cpSync(v1, dir, { recursive: true });
    await push(deltaNode, dirs.delta);
    await push(wholeNode, dirs.whole);
    // Version 2 overwrites every file: the old bytes are gone from the directory.
    const binary2 = binary.slice();
    for (let i = 0; i < 8; i++) binary2[i * 70_001]! ^= 0x5a;
    const library2 = edited(library, 3);
    for (const dir of Object.values(dirs)) {
      writeFileSync(join(dir, "lib", "library.js"), library2);
      writeFileSync(join(dir, "app.bin"), binary2);
      writeFileSync(join(dir, "README"), "version 2\n");
      modules.forEach((module, i) => writeFileSync(join(dir, "lib", `module-${i}.js`), edited(module, 200 + i)));
      writeFileSync(join(dir, "lib", "bundle.js"), bundle2);
    }
    // The same mtimes on both sides, so the two trees are the same version root.
    for (const dir of Object.values(dirs)) for (const path of ["lib/library.js", "lib/bundle.js", "app.bin", "README", ...modules.map((_, i) => `lib/module-${i}.js`), "lib"]) utimesSync(join(dir, path), 1_700_000_000, 1_700_000_000);
    const sent = await push(deltaNode, dirs.delta);
    const whole = await push(wholeNode, dirs.whole, { DSYNC_DELTA: "0" });
    expect(sent.root).toBe(whole.root);
    expect(sent.chunks_sent).toBe(whole.chunks_sent);
    expect(whole.chunks_as_delta).toBe(0);
    expect(sent.chunks_as_delta).toBeGreaterThan(whole.chunks_sent / 2);
    expect(sent.signature_bytes).toBeGreaterThan(0);
    // Sent whole and uncompressed, the update is about the changed chunks' bytes; as deltas, a small part of them.
    expect(sent.wire_bytes_sent).toBeLessThan(whole.wire_bytes_sent / 5);
    expect(await compareStored(deltaNode, wholeNode, idFromHex(sent.root))).toBeGreaterThan(20);
    // The node's head is the directory: diff says identical.
    const diff = await runCli(["diff", dirs.delta, `${deltaNode.url}/rel`], { env: { DSYNC_TOKEN: ADMIN } });
    expect(diff.code).toBe(0);
  }, 60_000);

  test("a node that does not list kind 2 in its health gets no delta", async () => {
    // In front of a real node, an older one: its health without "uploadItems".
    const target = await startNode();
    const proxy = proxyTo(target, { hideItems: true });
    try {
      const dir = join(tempDir(), "old-node");
      mkdirSync(dir, { recursive: true });
      const library = text(7, 400_000);
      writeFileSync(join(dir, "library.js"), library);
      expect((await runCli(["push", dir, "--remote", proxy.url, "--folder", "old", "--compress", "never"])).code).toBe(0);
      writeFileSync(join(dir, "library.js"), edited(library, 8));
      proxy.uploads.length = 0;
      const result = await runCli(["push", dir, "--remote", proxy.url, "--folder", "old", "--compress", "never", "--json"]);
      expect(result.code).toBe(0);
      expect(result.json<{ chunks_as_delta: number }>().chunks_as_delta).toBe(0);
      expect(proxy.uploads.length).toBeGreaterThan(0);
      // Every item of every upload is a plain [id, bytes] pair: the generic decoder, which takes nothing else, reads them all.
      for (const body of proxy.uploads) expect(() => decodeObjectBatch(body)).not.toThrow();
    } finally {
      proxy.stop();
      await target.stop();
    }
  }, 60_000);

  test("a batch of deltas the node refuses (its base gone meanwhile) is sent again whole, and the push ends as without deltas", async () => {
    const target = await startNode();
    // Refuses the first upload that holds a delta, as a node whose gc took a base after signing it would.
    const proxy = proxyTo(target, { refuseFirstDelta: true });
    try {
      const dir = join(tempDir(), "refused");
      mkdirSync(dir, { recursive: true });
      const library = text(9, 600_000);
      writeFileSync(join(dir, "library.js"), library);
      expect((await runCli(["push", dir, "--remote", proxy.url, "--folder", "gone", "--compress", "never"])).code).toBe(0);
      writeFileSync(join(dir, "library.js"), edited(library, 10));
      const result = await runCli(["push", dir, "--remote", proxy.url, "--folder", "gone", "--compress", "never", "--json"]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(proxy.refused()).toBe(1);
      const diff = await runCli(["diff", dir, `${target.url}/gone`]);
      expect(diff.code).toBe(0);
    } finally {
      proxy.stop();
      await target.stop();
    }
  }, 60_000);
});

/** Whether an upload body holds an item of kind 2 (the writer's spelling: fixarray(4), bin8 id, kind 2). */
function holdsDelta(body: Uint8Array): boolean {
  for (let at = 0; at + 36 < body.length; at++) if (body[at] === 0x94 && body[at + 1] === 0xc4 && body[at + 2] === 32 && body[at + 35] === 2) return true;
  return false;
}

/**
 * An HTTP proxy in front of a real node that records upload bodies, and may play an older node
 * (its health without "uploadItems") or refuse the first upload holding a delta with the node's
 * words for a base it lacks.
 */
function proxyTo(target: NodeProcess, options: { hideItems?: boolean; refuseFirstDelta?: boolean }) {
  const uploads: Uint8Array[] = [];
  let refused = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const body = request.method === "GET" ? undefined : new Uint8Array(await request.arrayBuffer());
      if (url.pathname === "/v1/objects/upload" && body) {
        uploads.push(body);
        if (options.refuseFirstDelta && refused === 0 && request.headers.get("content-encoding") === null && holdsDelta(body)) {
          refused++;
          return Response.json({ error: "delta base 00 of object 00 is not held here; send the object whole" }, { status: 400, headers: { "x-dsync-node": "proxy" } });
        }
      }
      const headers = new Headers(request.headers);
      headers.delete("host");
      const reply = await fetch(`${target.url}${url.pathname}${url.search}`, { method: request.method, headers, body: body as Uint8Array<ArrayBuffer> | undefined });
      if (url.pathname !== "/v1/health" || !options.hideItems) return reply;
      const health = (await reply.json()) as Record<string, unknown>;
      delete health.uploadItems;
      return Response.json(health, { status: reply.status, headers: { "x-dsync-node": reply.headers.get("x-dsync-node") ?? "" } });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, uploads, refused: () => refused, stop: () => server.stop(true) };
}

describe("hostile deltas", () => {
  test("a base the token may not read, a missing base, a wrong id, a huge length, an unknown kind: refused, nothing stored", async () => {
    const node = deltaNode;
    // A folder the scoped token does not see holds the old chunk.
    const secretDir = join(tempDir(), "secret");
    mkdirSync(secretDir, { recursive: true });
    const old = createPrng(40).bytes(60_000);
    writeFileSync(join(secretDir, "old.bin"), old);
    expect((await runCli(["push", secretDir, "--remote", node.url, "--folder", "secret"], { env: { DSYNC_TOKEN: ADMIN } })).code).toBe(0);
    const oldId = blake3(old);
    expect(await getObject(node, oldId)).toBeDefined();
    const created = await runCli(["token", "create", "--remote", node.url, "--role", "write", "--folder", "mine", "--json"], { env: { DSYNC_TOKEN: ADMIN } });
    expect(created.code).toBe(0);
    const scoped = created.json<{ token: string }>().token;

    const fresh = old.slice();
    fresh[30_000]! ^= 1;
    const freshId = blake3(fresh);
    const delta = deltaAgainst(fresh, old);
    expect(delta.length).toBeLessThan(2000);

    // No signatures for an object the token may not read; the admin's are the block count's.
    const signaturesFor = async (token: string) => {
      const reply = await call(node, token, "/v1/objects/signatures", encodeIdList([oldId]));
      expect(reply.status).toBe(200);
      return decodeSignaturesReply(new Uint8Array(await reply.arrayBuffer()), 1).signatures[0]!;
    };
    expect((await signaturesFor(scoped)).length).toBe(0);
    // At most 256 ids per request.
    const tooMany = await call(node, ADMIN, "/v1/objects/signatures", encodeIdList(Array.from({ length: 257 }, () => oldId)));
    expect(tooMany.status).toBe(400);
    expect(await tooMany.text()).toContain("at most 256 ids");
    expect((await signaturesFor(ADMIN)).length).toBe(Math.floor(old.length / 512) * 12);

    const refused = async (token: string, body: Uint8Array, status: number, words: string) => {
      const reply = await call(node, token, "/v1/objects/upload", body);
      const text = await reply.text();
      expect(text).toContain(words);
      expect(reply.status).toBe(status);
    };
    await refused(scoped, batchOf([{ id: freshId, delta, base: oldId }]), 400, "is not held here");
    expect(await getObject(node, freshId)).toBeUndefined();
    await refused(ADMIN, batchOf([{ id: freshId, delta, base: blake3(new Uint8Array([1, 2, 3])) }]), 400, "is not held here");
    expect(await getObject(node, freshId)).toBeUndefined();
    const wrongId = blake3(new TextEncoder().encode("not this"));
    await refused(ADMIN, batchOf([{ id: wrongId, delta, base: oldId }]), 422, "hashes to");
    expect(await getObject(node, wrongId)).toBeUndefined();
    expect(await getObject(node, freshId)).toBeUndefined();
    await refused(ADMIN, batchOf([{ id: freshId, delta: deltaAgainst(fresh, old, 9 * 1024 * 1024), base: oldId }]), 400, "more than an object's");
    await refused(ADMIN, batchOf([{ id: freshId, delta: deltaAgainst(fresh, old, fresh.length - 1), base: oldId }]), 400, "declares");
    const unknownKind = batchOf([{ id: freshId, delta, base: oldId }]);
    unknownKind[5 + 35] = 3;
    await refused(ADMIN, unknownKind, 400, "unknown item kind 3");
    expect(await getObject(node, freshId)).toBeUndefined();
    // One request's deltas rebuild at most 64 MiB: eight of 8 MiB pass, a ninth is refused.
    const bigDeltas = Array.from({ length: 9 }, (_, i) => {
      const big = new Uint8Array(8 * 1024 * 1024);
      big.set(old, i * 1000);
      return { id: blake3(big), delta: deltaAgainst(big, old), base: oldId };
    });
    const bigBody = (items: typeof bigDeltas) => {
      const writer = new ObjectBatchWriter(new Uint8Array(4 * 1024 * 1024));
      for (const item of items) writer.appendDelta(item.id, item.delta, item.base);
      return writer.finish().slice();
    };
    await refused(ADMIN, bigBody(bigDeltas), 400, "rebuild at most 67108864 bytes");
    expect(await getObject(node, bigDeltas[8]!.id)).toBeUndefined();
    expect((await call(node, ADMIN, "/v1/objects/upload", bigBody(bigDeltas.slice(0, 8)))).status).toBe(200);
    // The same delta from a token that may read the base is taken, and the object is the new bytes.
    const taken = await call(node, ADMIN, "/v1/objects/upload", batchOf([{ id: freshId, delta, base: oldId }]));
    expect(taken.status).toBe(200);
    expect(Buffer.compare((await getObject(node, freshId))!, fresh)).toBe(0);
  }, 60_000);
});
