// Upload items of kind 1 on a real node: GET /v1/health lists 1 in "uploadItems"; objects sent
// as their own zstd frames are stored, read back equal, and kept on disk as the very frames sent
// (no recompression); a batch holding a frame whose content is not its id (422), a frame
// inflating past the object bound, a malformed frame or an unknown kind (400) is refused with a
// reason and stores nothing of its group; an old client's plain pairs keep working beside them,
// whole-body zstd included; and the client sends frames only to a node whose health lists kind 1
// (an older node, its health without "uploadItems", gets plain pairs or a zstd body).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ObjectBatchWriter } from "../../src/client/batch-writer.ts";
import { RemoteNode } from "../../src/client/remote.ts";
import { parseCompressSetting } from "../../src/client/upload-compression.ts";
import { decodeObjectBatch } from "../../src/wire/formats.ts";
import { reframeBatch } from "../../src/client/batch-frames.ts";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { createPrng } from "../helpers/prng.ts";
import { startNode, type NodeProcess } from "../helpers/processes.ts";

let node: NodeProcess;

beforeAll(async () => {
  node = await startNode();
});

afterAll(async () => {
  await node?.stop();
});

function textOf(seed: number, size: number): Uint8Array {
  const prng = createPrng(seed);
  return new Uint8Array(size).map(() => 97 + prng.nextInt(6));
}

function plainBatch(objects: readonly { id: ObjectId; bytes: Uint8Array }[]): Uint8Array {
  const writer = new ObjectBatchWriter(new Uint8Array(objects.reduce((sum, o) => sum + o.bytes.length + 64, 64)));
  for (const o of objects) writer.append(o.id, o.bytes);
  return writer.finish().slice();
}

function upload(body: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${node.url}/v1/objects/upload`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/msgpack", ...headers } });
}

async function getObject(id: ObjectId): Promise<Uint8Array | undefined> {
  const reply = await fetch(`${node.url}/v1/objects/${idToHex(id)}`);
  if (reply.status === 404) return undefined;
  expect(reply.status).toBe(200);
  return new Uint8Array(await reply.arrayBuffer());
}

/** Every pack file of the node, concatenated: where the stored payloads are. */
function packBytes(): Buffer {
  const dir = join(node.dataDir, "objects", "packs");
  return Buffer.concat(readdirSync(dir).filter((name) => name.endsWith(".pack")).map((name) => readFileSync(join(dir, name))));
}

const u32 = (value: number) => [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
const frameItem = (id: Uint8Array, frame: Uint8Array) => [0x93, 0xc4, 32, ...id, 0x01, 0xc6, ...u32(frame.length), ...frame];
const pairItem = (id: Uint8Array, bytes: Uint8Array) => [0x92, 0xc4, 32, ...id, 0xc6, ...u32(bytes.length), ...bytes];
const batchOf = (...items: number[][]) => new Uint8Array([0xdd, ...u32(items.length), ...items.flat()]);

describe("upload items of kind 1 on a node", () => {
  test("the node says it takes them", async () => {
    const health = (await (await fetch(`${node.url}/v1/health`)).json()) as { uploadItems?: number[] };
    expect(health.uploadItems).toContain(1);
  });

  test("framed objects are stored, read back equal, and kept as the frames sent", async () => {
    const objects = [textOf(1, 70_000), textOf(2, 300), createPrng(3).bytes(20_000), textOf(4, 1 << 20)].map((bytes) => ({ id: blake3(bytes), bytes }));
    const frames = new Map<string, Uint8Array>();
    const { body, framed } = reframeBatch(plainBatch(objects), (bytes) => {
      const frame = Bun.zstdCompressSync(bytes, { level: 3 }) as Uint8Array;
      frames.set(idToHex(blake3(bytes)), frame);
      return frame;
    });
    expect(framed).toBe(3);
    const reply = await upload(body);
    expect(reply.status).toBe(200);
    expect(await reply.json()).toEqual({ stored: 4 });
    for (const o of objects) expect(await getObject(o.id)).toEqual(o.bytes);
    // Level 3 frames, as sent: a store that compressed again (at its level 1) would hold other bytes.
    const packs = packBytes();
    for (const o of objects.filter((o) => o.bytes[0]! >= 97)) {
      const frame = frames.get(idToHex(o.id))!;
      expect(Bun.zstdCompressSync(o.bytes, { level: 1 }).equals(frame)).toBe(false);
      expect(packs.indexOf(frame)).toBeGreaterThan(0);
    }
  });

  test("a frame whose content is not its id, past the bound, malformed, or of an unknown kind: refused, nothing of its group stored", async () => {
    const innocent = textOf(10, 5000);
    const innocentId = blake3(innocent);
    const claimed = textOf(11, 5000);
    const other = textOf(12, 5000);
    const wrongFrame = Bun.zstdCompressSync(other, { level: 1 });
    const tooLarge = Bun.zstdCompressSync(new Uint8Array(LIMITS.objectBytesMax + 1), { level: 1 });
    const goodFrame = Bun.zstdCompressSync(claimed, { level: 1 });
    const cases: [string, Uint8Array, number, RegExp][] = [
      ["content not the id", batchOf(pairItem(innocentId, innocent), frameItem(blake3(claimed), wrongFrame)), 422, /hashes to/],
      ["past the object bound", batchOf(pairItem(innocentId, innocent), frameItem(blake3(new Uint8Array(LIMITS.objectBytesMax + 1)), tooLarge)), 400, /above the 8388608-byte limit/],
      ["not a frame", batchOf(pairItem(innocentId, innocent), frameItem(blake3(claimed), claimed)), 400, /not a zstd frame/],
      ["a frame and more", batchOf(pairItem(innocentId, innocent), frameItem(blake3(claimed), new Uint8Array([...goodFrame, 0]))), 400, /1 bytes follow the zstd frame/],
      ["an unknown kind", batchOf(pairItem(innocentId, innocent), [0x93, 0xc4, 32, ...blake3(claimed), 0x07, 0xc4, 0]), 400, /unknown item kind 7/],
    ];
    for (const [name, body, status, rule] of cases) {
      const reply = await upload(body);
      const answer = (await reply.json()) as { error: string };
      expect({ name, status: reply.status, error: answer.error }).toEqual({ name, status, error: expect.stringMatching(rule) });
      expect({ name, innocent: await getObject(innocentId), claimed: await getObject(blake3(claimed)), other: await getObject(blake3(other)) }).toEqual({
        name,
        innocent: undefined,
        claimed: undefined,
        other: undefined,
      });
    }
  });

  test("an old client's plain pairs, plain or in a zstd body, are stored as before", async () => {
    const objects = [textOf(20, 9000), createPrng(21).bytes(3000)].map((bytes) => ({ id: blake3(bytes), bytes }));
    const plain = plainBatch(objects);
    for (const [body, headers] of [
      [plain, {}],
      [new Uint8Array(Bun.zstdCompressSync(plain, { level: 3 })), { "content-encoding": "zstd" }],
    ] as const) {
      const reply = await upload(body, headers);
      expect(reply.status).toBe(200);
      for (const o of objects) expect(await getObject(o.id)).toEqual(o.bytes);
    }
  });

  test("frames inside a zstd body are taken too", async () => {
    const bytes = textOf(30, 40_000);
    const id = blake3(bytes);
    const { body } = reframeBatch(plainBatch([{ id, bytes }]), (b) => Bun.zstdCompressSync(b, { level: 1 }));
    const reply = await upload(new Uint8Array(Bun.zstdCompressSync(body, { level: 1 })), { "content-encoding": "zstd" });
    expect(reply.status).toBe(200);
    expect(await getObject(id)).toEqual(bytes);
  });
});

/** Whether an upload body holds an item of kind 1 (the writer's spelling: fixarray(3), bin8 id, kind 1). */
function holdsFrame(body: Uint8Array): boolean {
  for (let at = 0; at + 36 < body.length; at++) if (body[at] === 0x93 && body[at + 1] === 0xc4 && body[at + 2] === 32 && body[at + 35] === 1) return true;
  return false;
}

/** A proxy in front of the node that records upload bodies and, with `hideItems`, plays an older node: its health without "uploadItems". */
function proxyTo(target: NodeProcess, hideItems: boolean) {
  const uploads: { body: Uint8Array; encoding: string | null }[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const body = request.method === "GET" ? undefined : new Uint8Array(await request.arrayBuffer());
      if (url.pathname === "/v1/objects/upload" && body) uploads.push({ body, encoding: request.headers.get("content-encoding") });
      const headers = new Headers(request.headers);
      headers.delete("host");
      const reply = await fetch(`${target.url}${url.pathname}${url.search}`, { method: request.method, headers, body: body as Uint8Array<ArrayBuffer> | undefined });
      if (url.pathname !== "/v1/health" || !hideItems) return reply;
      const health = (await reply.json()) as Record<string, unknown>;
      delete health.uploadItems;
      return Response.json(health, { status: reply.status, headers: { "x-dsync-node": reply.headers.get("x-dsync-node") ?? "" } });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, uploads, stop: () => server.stop(true) };
}

describe("which nodes get frames", () => {
  test("a batch the client would send as frames goes as frames only to a node that lists kind 1", async () => {
    const objects = [textOf(40, 60_000), textOf(41, 30_000)].map((bytes) => ({ id: blake3(bytes), bytes }));
    for (const hideItems of [false, true]) {
      const proxy = proxyTo(node, hideItems);
      try {
        const remote = new RemoteNode(proxy.url, undefined, { compress: parseCompressSetting("3") });
        // As push --compress does once it finds the node sets the pace: frames, where they are taken.
        (remote.uploadCompression as unknown as { paceSetter: () => string }).paceSetter = () => "node";
        await remote.uploadEncoded(plainBatch(objects));
        expect(proxy.uploads.length).toBe(1);
        const [{ body, encoding }] = proxy.uploads as [{ body: Uint8Array; encoding: string | null }];
        if (hideItems) {
          // The older node: a zstd body of plain pairs, which any reader of the batch takes.
          expect(encoding).toBe("zstd");
          const inflated = new Uint8Array(Bun.zstdDecompressSync(body));
          expect(holdsFrame(inflated)).toBe(false);
          expect(decodeObjectBatch(inflated).map((o) => idToHex(o.id))).toEqual(objects.map((o) => idToHex(o.id)));
        } else {
          expect(encoding).toBeNull();
          expect(holdsFrame(body)).toBe(true);
        }
        for (const o of objects) expect(await getObject(o.id)).toEqual(o.bytes);
      } finally {
        proxy.stop();
      }
    }
  });
});
