// BLAKE3: the official test vectors (input: bytes 0, 1, ..., 250 repeating; first 32 bytes of
// the published hash outputs), and agreement of the fast implementation with the portable
// reference on random inputs of many lengths.
import { describe, expect, test } from "bun:test";
import { blake3, blake3BackendName, blake3Portable, createBlake3, EMPTY_BLAKE3_HEX } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { randomBytes } from "../helpers/trees.ts";

const OFFICIAL_VECTORS: [number, string][] = [
  [0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"],
  [1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"],
  [1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"],
  [1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"],
  [1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"],
  [2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"],
  [2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"],
  [3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"],
  [3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"],
  [4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"],
  [4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"],
  [5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"],
  [5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"],
  [6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"],
  [6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"],
  [7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"],
  [7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"],
];

function vectorInput(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = i % 251;
  return out;
}

describe("BLAKE3", () => {
  test("the fast implementation is the native one here", () => {
    expect(blake3BackendName).toContain("native");
  });

  test.each(OFFICIAL_VECTORS)("official vector, %i bytes", (length, expected) => {
    const input = vectorInput(length);
    expect(expected).toHaveLength(64);
    expect(idToHex(blake3(input))).toBe(expected);
    expect(idToHex(blake3Portable(input))).toBe(expected);
  });

  test("the empty input", () => {
    expect(idToHex(blake3(new Uint8Array(0)))).toBe(EMPTY_BLAKE3_HEX);
  });

  test("native and portable agree on random inputs of many lengths, one-shot and incremental", () => {
    const lengths = [1, 2, 31, 32, 33, 63, 64, 65, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537, 262_144, 1_000_003];
    for (const [index, length] of lengths.entries()) {
      const input = randomBytes(length, index + 1);
      const expected = idToHex(blake3Portable(input));
      expect(idToHex(blake3(input))).toBe(expected);
      const hasher = createBlake3();
      for (let offset = 0; offset < length; offset += 7777) hasher.update(input.subarray(offset, offset + 7777));
      expect(idToHex(hasher.digest())).toBe(expected);
    }
  });
});
