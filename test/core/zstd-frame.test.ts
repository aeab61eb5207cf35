// The outline of one zstd frame, read before a frame from the network is inflated: the content
// size frames made by Bun's zstd declare (pinned bytes of two), and the refusal of everything an
// inflater would take beyond one bounded frame (two frames, trailing bytes, no declared size, a
// dictionary, a size past the bound, a frame cut anywhere, reserved bits and block types).
import { describe, expect, test } from "bun:test";
import { readZstdFrameOutline } from "../../src/core/zstd-frame.ts";
import { createPrng } from "../helpers/prng.ts";

/** "dsync " 40 times at level 1: single segment, a one-byte size (240), one compressed block. */
const GOLDEN_TEXT = new Uint8Array([
  0x28, 0xb5, 0x2f, 0xfd, 0x20, 0xf0, 0x6d, 0x00, 0x00, 0x30, 0x64, 0x73, 0x79, 0x6e, 0x63, 0x20, 0x01, 0x00, 0xe7, 0x50, 0xa5, 0x08,
]);
/** 200 KiB of 7s at level 1: a window descriptor, a four-byte size (204 800), two blocks (one RLE). */
const GOLDEN_RUN = new Uint8Array([
  0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0x00, 0x20, 0x03, 0x00, 0x54, 0x00, 0x00, 0x10, 0x07, 0x07, 0x01, 0x00, 0xfb, 0xff, 0x39, 0xc0, 0x02, 0x03,
  0x00, 0x09, 0x07,
]);
const MAX = 8 * 1024 * 1024;

/** A frame by hand: magic, descriptor, optional window byte, size field, then blocks as given. */
function frameOf(descriptor: number, sizeField: number[], blocks: number[], windowByte = true): Uint8Array {
  const singleSegment = (descriptor & 0x20) !== 0;
  return new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, descriptor, ...(singleSegment || !windowByte ? [] : [0x50]), ...sizeField, ...blocks]);
}

/** A raw last block of `bytes` bytes of zeros. */
function rawLastBlock(bytes: number): number[] {
  const header = 1 | (0 << 1) | (bytes << 3);
  return [header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, ...new Array(bytes).fill(0)];
}

describe("the outline of a zstd frame", () => {
  test("pinned frames of Bun's zstd declare their content sizes", () => {
    expect(readZstdFrameOutline(GOLDEN_TEXT, MAX)).toEqual({ contentBytes: 240 });
    expect(readZstdFrameOutline(GOLDEN_RUN, MAX)).toEqual({ contentBytes: 200 * 1024 });
    // What Bun makes of them today: the same sizes, so the pinned bytes are what it writes.
    expect(Bun.zstdDecompressSync(GOLDEN_TEXT).length).toBe(240);
    expect(Bun.zstdDecompressSync(GOLDEN_RUN).length).toBe(200 * 1024);
  });

  test("every frame Bun makes at any level and size is read with the size it inflates to", () => {
    const prng = createPrng(5);
    for (const size of [1, 2, 255, 256, 257, 65_535, 65_536 + 255, 65_536 + 256, 200_000, 1 << 20, MAX]) {
      const random = prng.bytes(size);
      const text = new Uint8Array(size).map((_, i) => 97 + ((i * 31) % 7));
      for (const bytes of [random, text]) {
        for (const level of [1, 3, 9]) {
          const frame = Bun.zstdCompressSync(bytes, { level });
          expect({ size, level, outline: readZstdFrameOutline(frame, MAX) }).toEqual({ size, level, outline: { contentBytes: size } });
        }
      }
    }
  });

  test("refuses what is not exactly one frame that declares a bounded, non-empty size", () => {
    const good = Bun.zstdCompressSync(new Uint8Array(100_000).map((_, i) => i % 13), { level: 1 });
    const twice = new Uint8Array([...good, ...good]);
    const cases: [string, Uint8Array, RegExp][] = [
      ["empty", new Uint8Array(0), /not a zstd frame/],
      ["wrong magic", new Uint8Array([0x29, ...good.subarray(1)]), /not a zstd frame/],
      ["two frames", twice, /bytes follow the zstd frame/],
      ["a trailing byte", new Uint8Array([...good, 0]), /1 bytes follow the zstd frame/],
      ["no declared size", frameOf(0x00, [], rawLastBlock(4)), /does not declare its content size/],
      ["a dictionary", frameOf(0x21, [0x07, 4], rawLastBlock(4)), /names a dictionary/],
      ["the reserved bit", frameOf(0x28, [4], rawLastBlock(4)), /reserved bit/],
      ["no content", frameOf(0x20, [0], rawLastBlock(0)), /declares no content/],
      ["past the bound", frameOf(0x80, [0x01, 0x00, 0x80, 0x00], rawLastBlock(4)), /declares 8388609 bytes of content, above/],
      ["past 4 GiB", frameOf(0xc0, [0, 0, 0, 0, 1, 0, 0, 0], rawLastBlock(4)), /above the 8388608-byte limit/],
      ["a reserved block type", frameOf(0x20, [4], [0x07, 0, 0]), /reserved type/],
      ["a block past 128 KiB", frameOf(0x20, [4], [0x09, 0x00, 0x10]), /above the 131072-byte block limit/],
      ["a raw block cut short", frameOf(0x20, [8], rawLastBlock(8)).subarray(0, 16), /ends inside a block/],
    ];
    for (const [name, frame, rule] of cases) {
      const outline = readZstdFrameOutline(frame, MAX);
      expect({ name, problem: typeof outline === "string" ? outline : "taken" }).toEqual({ name, problem: expect.stringMatching(rule) });
    }
    // The hand-made frame the cases vary is itself taken (and inflates to what it declares).
    const handMade = frameOf(0x20, [4], rawLastBlock(4));
    expect(readZstdFrameOutline(handMade, MAX)).toEqual({ contentBytes: 4 });
    expect(Array.from(Bun.zstdDecompressSync(handMade))).toEqual([0, 0, 0, 0]);
  });

  test("a frame cut at any byte is refused", () => {
    const frame = Bun.zstdCompressSync(new Uint8Array(300_000).map((_, i) => (i * 7) % 11), { level: 1 });
    for (let length = 0; length < frame.length; length++) {
      expect(typeof readZstdFrameOutline(frame.subarray(0, length), MAX)).toBe("string");
    }
    expect(readZstdFrameOutline(frame, MAX)).toEqual({ contentBytes: 300_000 });
  });

  test("the bound is the caller's: a frame is refused above it and taken at it", () => {
    const frame = Bun.zstdCompressSync(new Uint8Array(5000), { level: 1 });
    expect(readZstdFrameOutline(frame, 5000)).toEqual({ contentBytes: 5000 });
    expect(readZstdFrameOutline(frame, 4999)).toMatch(/above the 4999-byte limit/);
  });
});
