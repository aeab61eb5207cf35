// The upload batch read as it arrives: the same objects as decodeObjectBatch, however the body is
// cut into pieces; groups bounded in bytes and each copied out before the buffer is reused; the
// same refusals (count, id length, object size, not a batch, truncated, trailing bytes).
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { DecodeError } from "../../src/core/encoding.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { GROUP_BYTES_MAX, readObjectBatchStream } from "../../src/server/object-batch-stream.ts";
import { BodyTooLargeError, decodeObjectBatch, encodeObjectBatch } from "../../src/wire/formats.ts";
import { createPrng } from "../helpers/prng.ts";

async function* piecesOf(bytes: Uint8Array, cut: (at: number) => number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; ) {
    const n = Math.max(1, Math.min(bytes.length - at, cut(at)));
    // A copy, as a socket gives: the reader must not rely on pieces staying put.
    yield bytes.slice(at, at + n);
    at += n;
  }
}

/** Reads a body, copying each group out as a store would, and checks the group bounds. */
async function readAll(pieces: AsyncIterable<Uint8Array>, bodyBytesMax?: number) {
  const stored: { id: string; bytes: Uint8Array }[] = [];
  const groupBytes: number[] = [];
  const totals = await readObjectBatchStream(
    pieces,
    async (objects: StoredObject[]) => {
      groupBytes.push(objects.reduce((sum, o) => sum + o.bytes.length, 0));
      await Bun.sleep(0);
      for (const o of objects) stored.push({ id: idToHex(o.id), bytes: new Uint8Array(o.bytes) });
    },
    bodyBytesMax,
  );
  return { stored, groupBytes, totals };
}

function objectsOf(sizes: readonly number[], seed: number): StoredObject[] {
  const prng = createPrng(seed);
  return sizes.map((size) => {
    const bytes = prng.bytes(size);
    return { id: blake3(bytes) as ObjectId, bytes };
  });
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

describe("reading an upload batch as it arrives", () => {
  test("gives the objects decodeObjectBatch gives, whether the body comes whole, byte by byte or in random pieces", async () => {
    const objects = objectsOf([0, 1, 31, 32, 33, 255, 256, 65_535, 65_536, 100_000, 3, 0], 7);
    const body = encodeObjectBatch(objects);
    const expected = decodeObjectBatch(body).map((o) => ({ id: idToHex(o.id), bytes: o.bytes }));
    const prng = createPrng(3);
    for (const cut of [() => body.length, () => 1, () => 1 + prng.nextInt(70_000)]) {
      const { stored, totals } = await readAll(piecesOf(body, cut));
      expect(stored).toEqual(expected);
      expect(totals).toEqual({ objects: objects.length, bytes: objects.reduce((sum, o) => sum + o.bytes.length, 0) });
    }
  });

  test("keeps ids intact when the pieces are Buffers the source reuses (as an inflater may)", async () => {
    const objects = objectsOf(Array.from({ length: 300 }, (_, i) => 10 + (i % 50)), 11);
    const body = encodeObjectBatch(objects);
    const expected = decodeObjectBatch(body).map((o) => ({ id: idToHex(o.id), bytes: o.bytes }));
    // One Buffer, refilled for every piece: a Buffer's slice is a view, so an id the reader kept
    // as a slice of an earlier piece would read as whatever came after it.
    async function* reusedPieces(): AsyncGenerator<Uint8Array> {
      const shared = Buffer.alloc(4096);
      for (let at = 0; at < body.length; at += shared.length) {
        const n = Math.min(shared.length, body.length - at);
        shared.set(body.subarray(at, at + n));
        yield shared.subarray(0, n);
      }
    }
    const { stored } = await readAll(reusedPieces());
    expect(stored).toEqual(expected);
  });

  test("hands on groups of at most one client batch, each intact though the buffer is reused, and an object larger than the buffer alone", async () => {
    const sizes = [...Array.from({ length: 40 }, () => 256 * 1024), GROUP_BYTES_MAX + 1, 10, LIMITS.objectBytesMax, 7];
    const objects = objectsOf(sizes, 11);
    const { stored, groupBytes } = await readAll(piecesOf(encodeObjectBatch(objects), () => 64 * 1024));
    expect(stored.map((o) => o.id)).toEqual(objects.map((o) => idToHex(o.id)));
    // Every object read back hashes to its id: no group was overwritten by the next one.
    for (const o of stored) expect(idToHex(blake3(o.bytes))).toBe(o.id);
    expect(groupBytes.filter((bytes) => bytes > GROUP_BYTES_MAX)).toEqual([GROUP_BYTES_MAX + 1, LIMITS.objectBytesMax]);
    expect(groupBytes.length).toBeGreaterThanOrEqual(Math.ceil((40 * 256 * 1024) / GROUP_BYTES_MAX) + 2);
  });

  test("reads every width of array and bin header, as any msgpack writer may send", async () => {
    const [object] = objectsOf([5], 1);
    const id = object!.id;
    // array32 of one, array16 pair, bin32 id, bin16 bytes.
    const body = new Uint8Array([0xdd, 0, 0, 0, 1, 0xdc, 0, 2, 0xc6, 0, 0, 0, 32, ...id, 0xc5, 0, 5, ...object!.bytes]);
    const { stored } = await readAll(piecesOf(body, () => 3));
    expect(stored).toEqual([{ id: idToHex(id), bytes: object!.bytes }]);
  });

  test("refuses what decodeObjectBatch refuses, with a DecodeError naming the item", async () => {
    const [object] = objectsOf([4], 2);
    const good = encodeObjectBatch([object!]);
    const cases: [string, Uint8Array, RegExp][] = [
      ["not an array", new Uint8Array([0x80]), /not an array/],
      ["too many objects", new Uint8Array([0xdd, 0, 0x01, 0x86, 0xa1]), /at most 100000 objects/],
      ["not a pair", new Uint8Array([0x91, 0x95]), /batch item 0 is not an \[id, bytes\] pair/],
      ["short id", new Uint8Array([0x91, 0x92, 0xc4, 31, ...new Uint8Array(31), 0xc4, 0]), /batch item 0: id is not 32 bytes/],
      ["id as a string", new Uint8Array([0x91, 0x92, 0xd9, 32, ...new Uint8Array(32)]), /must be binary/],
      ["bytes as a number", new Uint8Array([0x91, 0x92, 0xc4, 32, ...new Uint8Array(32), 0x01]), /must be binary/],
      ["object too large", new Uint8Array([0x91, 0x92, 0xc4, 32, ...new Uint8Array(32), 0xc6, 0x00, 0x80, 0x00, 0x01]), /object larger than/],
      ["truncated", good.subarray(0, good.length - 1), /ends inside batch item 0: the bytes/],
      ["trailing bytes", new Uint8Array([...good, 0xc0]), /bytes after the object batch/],
      ["empty body", new Uint8Array(0), /ends inside an object batch/],
    ];
    for (const [name, body, rule] of cases) {
      const error = await refusal(readAll(piecesOf(body, () => 2)));
      expect({ name, decode: error instanceof DecodeError }).toEqual({ name, decode: true });
      expect(error.message).toMatch(rule);
    }
  });

  test("a body past its bound is refused with BodyTooLargeError once it passes, not after", async () => {
    const objects = objectsOf(Array.from({ length: 8 }, () => 64 * 1024), 5);
    const body = encodeObjectBatch(objects);
    let piecesRead = 0;
    async function* counted() {
      for await (const piece of piecesOf(body, () => 16 * 1024)) {
        piecesRead += 1;
        yield piece;
      }
    }
    const error = await refusal(readAll(counted(), 100_000));
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(piecesRead).toBeLessThanOrEqual(Math.ceil(100_000 / (16 * 1024)) + 1);
  });
});
