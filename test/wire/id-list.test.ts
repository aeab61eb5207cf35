// The id lists of "which do you lack?" and downloads, written and read in their one layout
// directly (wire/id-list.ts): byte for byte the canonical encoder's output, every other layout
// still read by the generic decoder, bounds kept; and the answer in bits, checked for its length
// and for bits past the last id.
import { describe, expect, test } from "bun:test";
import { DecodeError, encodeCanonical } from "../../src/core/encoding.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { decodeIdList, decodeIdQuestion, decodeMissingReply, encodeIdList, encodeLackingReply } from "../../src/wire/formats.ts";
import { idsFromLackingBits, LACKING_BITS_REPLY, lackingBits, readIdListMessage } from "../../src/wire/id-list.ts";

function ids(count: number, seed = 1): ObjectId[] {
  return Array.from({ length: count }, (_, i) => {
    const id = new Uint8Array(32);
    new DataView(id.buffer).setUint32(0, i);
    id[31] = seed;
    return id as ObjectId;
  });
}

const hex = (list: readonly ObjectId[]) => list.map(idToHex);

describe("the id list as the canonical encoder writes it", () => {
  for (const count of [0, 1, 15, 16, 255, 65_535, 65_536]) {
    test(`${count} ids, with and without a reply asked`, () => {
      const list = ids(count);
      expect(Buffer.from(encodeIdList(list)).equals(Buffer.from(encodeCanonical({ ids: list })))).toBe(true);
      expect(Buffer.from(encodeIdList(list, LACKING_BITS_REPLY)).equals(Buffer.from(encodeCanonical({ ids: list, reply: LACKING_BITS_REPLY })))).toBe(true);
      // Read directly, not through the generic decoder.
      expect(readIdListMessage(encodeIdList(list), "ids", LIMITS.batchIdsMax)?.ids.length).toBe(count);
      expect(hex(decodeIdList(encodeIdList(list)))).toEqual(hex(list));
      expect(decodeIdQuestion(encodeIdList(list, LACKING_BITS_REPLY))).toEqual({ ids: list, reply: LACKING_BITS_REPLY });
    });
  }

  test("another layout of the same map is read by the generic decoder", () => {
    const list = ids(3);
    // array16 for 3 items, a str8 key: valid msgpack, not the direct layout.
    const other = new Uint8Array([0x81, 0xd9, 3, ...Buffer.from("ids"), 0xdc, 0, 3, ...list.flatMap((id) => [0xc4, 32, ...id])]);
    expect(readIdListMessage(other, "ids", LIMITS.batchIdsMax)).toBeNull();
    expect(hex(decodeIdList(other))).toEqual(hex(list));
    // The keys the other way round, as an encoder that does not sort writes them.
    const swapped = new Uint8Array([0x82, 0xa5, ...Buffer.from("reply"), 0xa4, ...Buffer.from("bits"), 0xa3, ...Buffer.from("ids"), 0x93, ...list.flatMap((id) => [0xc4, 32, ...id])]);
    expect(decodeIdQuestion(swapped)).toEqual({ ids: list, reply: "bits" });
  });

  test("what is not an id list is refused, truncated, trailing or too long", () => {
    const good = encodeIdList(ids(20));
    expect(() => decodeIdList(good.subarray(0, good.length - 1))).toThrow(DecodeError);
    expect(() => decodeIdList(new Uint8Array([...good, 0]))).toThrow(DecodeError);
    expect(() => decodeIdList(encodeCanonical({ ids: [new Uint8Array(31)] }))).toThrow(DecodeError);
    expect(() => decodeIdList(encodeIdList(ids(LIMITS.batchIdsMax + 1)))).toThrow(/at most/);
    expect(() => decodeIdQuestion(encodeCanonical({ ids: ids(1), reply: 7 }))).toThrow(DecodeError);
  });
});

describe("the answer", () => {
  test("bits: one per id asked, lowest bit first, read back to the ids lacking in the order asked", () => {
    for (const count of [0, 1, 7, 8, 9, 10_000]) {
      const asked = ids(count);
      const lacking = (i: number) => i % 3 === 0 || i === count - 1;
      const bits = lackingBits(count, lacking);
      expect(bits.length).toBe(Math.ceil(count / 8));
      expect(hex(idsFromLackingBits(asked, bits))).toEqual(hex(asked.filter((_, i) => lacking(i))));
      expect(hex(decodeMissingReply(encodeLackingReply(count, lacking), asked))).toEqual(hex(asked.filter((_, i) => lacking(i))));
    }
    expect(lackingBits(10, (i) => i === 0 || i === 9)).toEqual(new Uint8Array([0b1, 0b10]));
  });

  test("bits of the wrong length or set past the last id are refused", () => {
    const asked = ids(10);
    expect(() => idsFromLackingBits(asked, new Uint8Array(1))).toThrow(DecodeError);
    expect(() => idsFromLackingBits(asked, new Uint8Array(3))).toThrow(DecodeError);
    expect(() => idsFromLackingBits(asked, new Uint8Array([0, 0b100]))).toThrow(/past/);
    expect(() => decodeMissingReply(encodeCanonical({ lacking: "ff" }), asked)).toThrow(DecodeError);
  });

  test("the ids themselves, as every node answers without the bits, and never more than were asked", () => {
    const asked = ids(40);
    const missing = asked.filter((_, i) => i % 2 === 1);
    expect(hex(decodeMissingReply(encodeCanonical({ missing }), asked))).toEqual(hex(missing));
    expect(decodeMissingReply(encodeCanonical({ missing: [] }), asked)).toEqual([]);
    expect(() => decodeMissingReply(encodeCanonical({ missing: ids(41) }), asked)).toThrow(DecodeError);
    expect(() => decodeMissingReply(encodeCanonical({ other: [] }), asked)).toThrow(DecodeError);
  });
});
