// A msgpack body is bounded by what it unpacks into, not only by its size: a few MiB of empty
// maps or arrays would be millions of objects in memory. decodeMsgpack walks the bytes first and
// refuses past LIMITS.msgpackValuesMax values or LIMITS.msgpackDepthMax levels, before unpacking.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { checkMsgpackShape, DecodeError, decodeMsgpack, encodeCanonical } from "../../src/core/encoding.ts";
import { LIMITS } from "../../src/core/limits.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { createApp } from "../../src/server/app.ts";
import { decodeDownloadReply, encodeDownloadReply } from "../../src/wire/formats.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";

/** An array32 header of `count` items followed by `count` copies of the one-byte value `item`. */
function arrayOf(count: number, item: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(5 + count).fill(item);
  bytes[0] = 0xdd;
  new DataView(bytes.buffer).setUint32(1, count);
  return bytes;
}

function refusal(bytes: Uint8Array): string {
  try {
    decodeMsgpack(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    return (error as Error).message;
  }
  return "decoded";
}

describe("msgpack shape bound", () => {
  test("more values than the bound are refused, whatever they are", () => {
    const over = LIMITS.msgpackValuesMax; // the array itself is one more value
    expect(refusal(arrayOf(over, 0x80))).toContain(`more than ${LIMITS.msgpackValuesMax} values`); // empty maps
    expect(refusal(arrayOf(over, 0x90))).toContain("values"); // empty arrays
    expect(refusal(arrayOf(over, 0xc0))).toContain("values"); // nils
    // A count declared past the bound is refused without reading on (the data is not there).
    expect(refusal(new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff]))).toContain("values");
  });

  test("nesting deeper than the bound is refused", () => {
    const deep = new Uint8Array(LIMITS.msgpackDepthMax + 1).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    expect(refusal(deep)).toContain(`nested deeper than ${LIMITS.msgpackDepthMax} levels`);
  });

  test("just under the bounds decodes, and so does the largest real reply", () => {
    expect((decodeMsgpack(arrayOf(LIMITS.msgpackValuesMax - 1, 0x90)) as unknown[]).length).toBe(LIMITS.msgpackValuesMax - 1);
    const nested = new Uint8Array(LIMITS.msgpackDepthMax - 1).fill(0x91);
    nested[nested.length - 1] = 0xc0;
    expect(() => decodeMsgpack(nested)).not.toThrow();
    // A download reply naming batchIdsMax ids, half of them found (each with a few bytes), half missing.
    const ids = Array.from({ length: LIMITS.batchIdsMax }, (_, i) => blake3(new Uint8Array([i & 255, i >> 8, i >> 16])) as ObjectId);
    const half = LIMITS.batchIdsMax / 2;
    const reply = decodeDownloadReply(encodeDownloadReply(ids.slice(0, half).map((id) => ({ id, bytes: id.subarray(0, 4) })), ids.slice(half)));
    expect(reply.objects.length).toBe(half);
    expect(reply.missing.length).toBe(half);
  });

  test("every kind of value is walked over correctly (the walk agrees with the unpacker)", () => {
    const value = [
      0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32, -1, -32, -33, -128, -129, -40_000, -(2 ** 31) - 1, 1.5, null, true, false,
      "", "x".repeat(31), "y".repeat(32), "z".repeat(300), "w".repeat(70_000),
      new Uint8Array(0), new Uint8Array(300), new Uint8Array(70_000),
      new Map<unknown, unknown>([["a", [1, 2, new Map([["b", null]])]]]), Array.from({ length: 20 }, (_, i) => i), new Date(1_700_000_000_000),
    ];
    const bytes = encodeCanonical(value);
    // The exact count: a one-value bound below it is refused, the count itself passes.
    let count = 0;
    for (let max = 1; ; max++) {
      try {
        checkMsgpackShape(bytes, max);
        count = max;
        break;
      } catch {}
    }
    // 1 outer array + 29 items + the map's key and value + [1, 2, map] + the inner map's key and value + 20 small ints
    expect(count).toBe(1 + 30 + 2 + 3 + 2 + 20);
    expect(decodeMsgpack(bytes)).toEqual(value);
  });

  test("a client's body of a few MiB of empty maps gets a 400 naming the bound, on every msgpack route", async () => {
    const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
    const app = createApp(node, { token: "t" });
    const body = arrayOf(4 * 1024 * 1024, 0x80);
    for (const path of ["/v1/objects/missing", "/v1/objects/upload", "/v1/objects/download"]) {
      const response = await app.request(path, { method: "POST", body, headers: { authorization: "Bearer t", "content-type": "application/msgpack" } });
      expect(response.status).toBe(400);
      // The upload batch is read as it arrives, and its count is refused before any item.
      const bound = path === "/v1/objects/upload" ? `at most ${LIMITS.batchIdsMax} objects per batch` : `more than ${LIMITS.msgpackValuesMax} values`;
      expect(((await response.json()) as { error: string }).error).toContain(bound);
    }
  });
});
