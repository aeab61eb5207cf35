// Upload items of kind 1, [id, 1, frame], from the client's writer (client/batch-frames.ts) to
// the node's reader (server/object-batch-stream.ts): the same objects as the plain batch, however
// the body is cut, each with the frame it came as; pinned bytes of a framed batch; deltas and
// objects not worth a frame left as they were; and the refusals before anything is handed on (a
// frame past the object bound, declaring more than it holds, malformed, two frames in one, an
// unknown kind), each a DecodeError naming the item.
import { describe, expect, test } from "bun:test";
import { ObjectBatchWriter } from "../../src/client/batch-writer.ts";
import { reframeBatch } from "../../src/client/batch-frames.ts";
import { blake3 } from "../../src/core/blake3.ts";
import { DecodeError } from "../../src/core/encoding.ts";
import { idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { FRAME_ITEM, GROUP_BYTES_MAX, readObjectBatchStream, UPLOAD_ITEM_KINDS } from "../../src/server/object-batch-stream.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { createPrng } from "../helpers/prng.ts";

async function* piecesOf(bytes: Uint8Array, cut: () => number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; ) {
    const n = Math.max(1, Math.min(bytes.length - at, cut()));
    yield bytes.slice(at, at + n);
    at += n;
  }
}

interface Read {
  id: string;
  bytes: Uint8Array;
  frame: Uint8Array | undefined;
}

async function readAll(body: Uint8Array, cut: () => number = () => body.length) {
  const stored: Read[] = [];
  const groupBytes: number[] = [];
  const totals = await readObjectBatchStream(piecesOf(body, cut), async (objects: StoredObject[]) => {
    groupBytes.push(objects.reduce((sum, o) => sum + o.bytes.length + (o.frame?.length ?? 0), 0));
    await Bun.sleep(0);
    for (const o of objects) stored.push({ id: idToHex(o.id), bytes: new Uint8Array(o.bytes), frame: o.frame && new Uint8Array(o.frame) });
  });
  return { stored, totals, groupBytes };
}

/** Objects of the given sizes: text (compressible) at even places, random bytes at odd ones. */
function objectsOf(sizes: readonly number[], seed: number): StoredObject[] {
  const prng = createPrng(seed);
  return sizes.map((size, i) => {
    const bytes = i % 2 === 0 ? new Uint8Array(size).map(() => 97 + prng.nextInt(4)) : prng.bytes(size);
    return { id: blake3(bytes), bytes };
  });
}

function plainBatch(objects: readonly StoredObject[]): Uint8Array {
  const bytes = objects.reduce((sum, o) => sum + o.bytes.length + 64, 64);
  const writer = new ObjectBatchWriter(new Uint8Array(bytes));
  for (const o of objects) writer.append(o.id, o.bytes);
  return writer.finish().slice();
}

const zstd1 = (bytes: Uint8Array) => Bun.zstdCompressSync(bytes, { level: 1 }) as Uint8Array;

describe("upload items of kind 1 (one zstd frame per object)", () => {
  test("the node lists kind 1 among the items it takes", () => {
    expect(UPLOAD_ITEM_KINDS).toContain(FRAME_ITEM);
    expect(FRAME_ITEM).toBe(1);
  });

  test("a framed batch gives the plain batch's objects, the compressible ones with their frames, however it is cut", async () => {
    const objects = objectsOf([0, 1, 100, 200, 4096, 65_536, 300_000, 7, 64 * 1024 + 1, 1 << 20], 3);
    const plain = plainBatch(objects);
    const framed = reframeBatch(plain, (bytes) => (bytes.length < 128 ? null : zstd1(bytes)));
    // The three text objects of 128 bytes or more shrink; random ones come back larger and stay plain.
    expect(framed.framed).toBe(3);
    expect(framed.body.length).toBeLessThan(plain.length);
    const expected = (await readAll(plain)).stored;
    expect(expected.every((o) => o.frame === undefined)).toBe(true);
    const prng = createPrng(9);
    for (const cut of [() => framed.body.length, () => 1, () => 1 + prng.nextInt(50_000)]) {
      const { stored, totals } = await readAll(framed.body, cut);
      expect(stored.map(({ id, bytes }) => ({ id, bytes }))).toEqual(expected.map(({ id, bytes }) => ({ id, bytes })));
      for (const o of stored) {
        expect(idToHex(blake3(o.bytes))).toBe(o.id);
        // A frame comes with its object exactly where the writer made one, and inflates to it.
        if (o.frame !== undefined) expect(Array.from(Bun.zstdDecompressSync(o.frame))).toEqual(Array.from(o.bytes));
      }
      expect(stored.filter((o) => o.frame !== undefined).length).toBe(3);
      expect(totals).toEqual({ objects: objects.length, bytes: objects.reduce((sum, o) => sum + o.bytes.length, 0) });
    }
  });

  test("pinned bytes: one framed item and one plain pair", () => {
    const text = new TextEncoder().encode("dsync ".repeat(40));
    const id = blake3(text);
    const tiny = new Uint8Array([1, 2, 3]);
    const tinyId = blake3(tiny);
    const { body, framed, framedRawBytes, framedBytes } = reframeBatch(plainBatch([{ id, bytes: text }, { id: tinyId, bytes: tiny }]), (bytes) => (bytes.length > 3 ? zstd1(bytes) : null));
    const frame = [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0xf0, 0x6d, 0x00, 0x00, 0x30, 0x64, 0x73, 0x79, 0x6e, 0x63, 0x20, 0x01, 0x00, 0xe7, 0x50, 0xa5, 0x08];
    expect(Array.from(body)).toEqual([
      0xdd, 0, 0, 0, 2,
      0x93, 0xc4, 32, ...id, 0x01, 0xc6, 0, 0, 0, frame.length, ...frame,
      0x92, 0xc4, 32, ...tinyId, 0xc6, 0, 0, 0, 3, 1, 2, 3,
    ]);
    expect({ framed, framedRawBytes, framedBytes }).toEqual({ framed: 1, framedRawBytes: 240, framedBytes: frame.length });
  });

  test("a delta item (kind 2) and an object whose frame does not shrink it are copied as they were", () => {
    const [a, b] = objectsOf([5000, 5000], 4);
    const writer = new ObjectBatchWriter(new Uint8Array(64 * 1024));
    writer.append(a!.id, a!.bytes);
    const deltaItem = new Uint8Array([0x94, 0xc4, 32, ...a!.id, 2, 0xc6, 0, 0, 0, 3, 9, 9, 9, 0xc4, 32, ...b!.id]);
    const plain = writer.finish();
    // A batch whose second item is a delta, as the writer lays one out.
    const withDelta = new Uint8Array([...plain.subarray(0, 4), 2, ...plain.subarray(5), ...deltaItem]);
    const { body, framed } = reframeBatch(withDelta, () => new Uint8Array(6000));
    expect(framed).toBe(0);
    expect(Array.from(body)).toEqual(Array.from(withDelta));
  });

  test("objects held as frames count their inflated bytes towards the group's bound", async () => {
    const objects = Array.from({ length: 24 }, (_, i) => {
      const bytes = new Uint8Array(512 * 1024).fill(i);
      return { id: blake3(bytes), bytes };
    });
    const framed = reframeBatch(plainBatch(objects), zstd1);
    expect(framed.framed).toBe(24);
    const { stored, groupBytes } = await readAll(framed.body, () => 64 * 1024);
    expect(stored.length).toBe(24);
    // 12 MiB of content in frames of a few hundred bytes: handed on in groups of at most one batch's worth.
    expect(groupBytes.length).toBeGreaterThanOrEqual(3);
    for (const bytes of groupBytes) expect(bytes).toBeLessThanOrEqual(GROUP_BYTES_MAX + 512 * 1024 + 1024);
  });

  test("refuses a bad frame with a DecodeError naming the item, before the group holding it is handed on", async () => {
    const [good] = objectsOf([1000], 6);
    const item = (frame: Uint8Array, id: Uint8Array = good!.id) => [0x93, 0xc4, 32, ...id, 0x01, 0xc6, ...u32(frame.length), ...frame];
    const batch = (...items: number[][]) => new Uint8Array([0xdd, ...u32(items.length), ...items.flat()]);
    const frame = zstd1(good!.bytes);
    const tooLarge = Bun.zstdCompressSync(new Uint8Array(LIMITS.objectBytesMax + 1), { level: 1 });
    // The declared size said one byte less than the frame holds: zstd refuses to inflate it.
    const lying = new Uint8Array(frame);
    lying[5] = (lying[5]! + 255) & 0xff;
    const cases: [string, Uint8Array, RegExp][] = [
      ["a frame inflating past the object bound", batch(item(frame), item(tooLarge)), /batch item 1: zstd frame declares 8388609 bytes of content, above the 8388608-byte limit/],
      ["a frame declaring another size than it holds", batch(item(lying)), /batch item 0: the zstd frame does not inflate/],
      ["not a frame", batch(item(good!.bytes)), /batch item 0: not a zstd frame/],
      ["two frames in one item", batch(item(new Uint8Array([...frame, ...frame]))), /batch item 0: \d+ bytes follow the zstd frame/],
      ["a frame cut short", batch(item(frame.subarray(0, frame.length - 2))), /batch item 0: zstd frame ends inside/],
      ["an unknown kind in three elements", new Uint8Array([0x91, 0x93, 0xc4, 32, ...good!.id, 0x03, 0xc4, 0]), /batch item 0: unknown item kind 3 of 3 elements/],
      ["kind 1 in four elements", new Uint8Array([0x91, 0x94, 0xc4, 32, ...good!.id, 0x01, 0xc4, 0]), /batch item 0: unknown item kind 1 of 4 elements/],
    ];
    for (const [name, body, rule] of cases) {
      for (const cut of [() => body.length, () => 3]) {
        let handedOn = 0;
        const error = await readObjectBatchStream(piecesOf(body, cut), async (objects) => void (handedOn += objects.length)).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        expect({ name, decode: error instanceof DecodeError, message: error?.message }).toEqual({ name, decode: true, message: expect.stringMatching(rule) });
        expect({ name, handedOn }).toEqual({ name, handedOn: 0 });
      }
    }
  });
});

function u32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}


