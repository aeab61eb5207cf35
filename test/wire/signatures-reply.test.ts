// The signatures reply (POST /v1/objects/signatures) read by the client: one whole list of
// signatures per id asked, a valid block size, within an object's blocks; anything else refused.
import { describe, expect, test } from "bun:test";
import { encodeCanonical } from "../../src/core/encoding.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { decodeSignaturesReply, encodeSignaturesReply } from "../../src/wire/signatures-reply.ts";

describe("signatures reply", () => {
  test("round trip, and the bytes of a small one pinned", () => {
    const reply = { blockBytes: 512, signatures: [new Uint8Array(24).fill(7), new Uint8Array(0)] };
    const bytes = encodeSignaturesReply(reply);
    expect(decodeSignaturesReply(bytes, 2)).toEqual(reply);
    expect(Buffer.from(bytes).toString("hex")).toBe("82aa626c6f636b4279746573cd0200aa7369676e61747572657392c418" + "07".repeat(24) + "c400");
  });

  test("refuses what a node could not have meant", () => {
    const bad = (value: unknown, asked = 1) => () => decodeSignaturesReply(encodeCanonical(value), asked);
    expect(bad([1, 2])).toThrow("is a map");
    expect(bad({ blockBytes: 500, signatures: [new Uint8Array(0)] })).toThrow("block size");
    expect(bad({ blockBytes: 512, signatures: [] })).toThrow("one entry per id");
    expect(bad({ blockBytes: 512, signatures: ["x"] })).toThrow("must be binary");
    expect(bad({ blockBytes: 512, signatures: [new Uint8Array(13)] })).toThrow("not whole signatures");
    const blocksMax = LIMITS.objectBytesMax / 64;
    expect(bad({ blockBytes: 64, signatures: [new Uint8Array((blocksMax + 1) * 12)] })).toThrow("more blocks than an object can");
  });
});
