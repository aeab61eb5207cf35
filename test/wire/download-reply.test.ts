// The download reply written directly is byte for byte what the canonical encoder makes of the
// same map, for every size class of its headers, and reads back through the generic decoder.
import { expect, test } from "bun:test";
import { encodeCanonical } from "../../src/core/encoding.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { encodeDownloadReplyDirect } from "../../src/wire/download-reply.ts";
import { decodeDownloadReply } from "../../src/wire/formats.ts";

const id = (i: number) => {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setUint32(0, i);
  return bytes as ObjectId;
};
const object = (i: number, length: number) => ({ id: id(i), bytes: new Uint8Array(length).map((_, j) => (i * 31 + j) & 0xff) });

test("the same bytes as the canonical encoder: empty, fixarray, array16 and array32 counts; bin8, bin16 and bin32 objects", () => {
  const cases: [ReturnType<typeof object>[], ObjectId[]][] = [
    [[], []],
    [[object(1, 0)], [id(9)]],
    [[object(1, 1), object(2, 255), object(3, 256), object(4, 65_535), object(5, 65_536), object(6, 1024 * 1024 + 3)], []],
    [Array.from({ length: 15 }, (_, i) => object(i, i * 7)), Array.from({ length: 15 }, (_, i) => id(100 + i))],
    [Array.from({ length: 16 }, (_, i) => object(i, 300)), Array.from({ length: 16 }, (_, i) => id(100 + i))],
    [Array.from({ length: 70_000 }, (_, i) => object(i, i % 3)), Array.from({ length: 65_536 }, (_, i) => id(i))],
  ];
  for (const [found, missing] of cases) {
    const direct = encodeDownloadReplyDirect(found, missing);
    expect(Buffer.compare(direct, encodeCanonical({ objects: found.map((o) => [o.id, o.bytes]), missing }))).toBe(0);
    const read = decodeDownloadReply(direct);
    expect(read.objects.length).toBe(found.length);
    expect(read.missing.length).toBe(missing.length);
    if (found.length > 0) expect(Buffer.compare(read.objects.at(-1)!.bytes, found.at(-1)!.bytes)).toBe(0);
  }
});
