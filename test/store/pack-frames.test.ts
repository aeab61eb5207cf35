// A pack store keeps an object's zstd frame that came with it (an upload item of kind 1) as the
// stored payload, byte for byte, and reads the object back from it; with compression off, or a
// frame that saves less than 5%, it stores the raw bytes instead.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { PackObjectStore } from "../../src/store/pack-store.ts";
import { createPrng } from "../helpers/prng.ts";

const tempDir = () => mkdtempSync(join(tmpdir(), "dsync-pack-frames-"));
function text(size: number, seed: number): Uint8Array {
  const prng = createPrng(seed);
  return new Uint8Array(size).map(() => 97 + prng.nextInt(5));
}

describe("a frame that came with an object", () => {
  test("is stored as it is and read back as the object", async () => {
    const store = await PackObjectStore.open(tempDir());
    try {
      const bytes = text(100_000, 7);
      const frame = new Uint8Array(Bun.zstdCompressSync(bytes, { level: 9 }));
      await store.putMany([{ id: blake3(bytes), bytes, frame }]);
      expect(await store.get(blake3(bytes))).toEqual(bytes);
      expect(await store.stats()).toEqual({ objects: 1, storedBytes: frame.length, rawBytes: bytes.length });
      // Not what the store's own level would have made: the frame sent is what is kept.
      expect(Bun.zstdCompressSync(bytes, { level: 1 }).length).not.toBe(frame.length);
    } finally {
      await store.close();
    }
  });

  test("is not kept with compression off, nor when it saves less than 5%", async () => {
    const bytes = text(50_000, 3);
    const frame = new Uint8Array(Bun.zstdCompressSync(bytes, { level: 1 }));
    const off = await PackObjectStore.open(tempDir(), { compression: false });
    try {
      await off.putMany([{ id: blake3(bytes), bytes, frame }]);
      expect(await off.stats()).toEqual({ objects: 1, storedBytes: bytes.length, rawBytes: bytes.length });
    } finally {
      await off.close();
    }
    const on = await PackObjectStore.open(tempDir());
    try {
      const random = new Uint8Array(20_000);
      crypto.getRandomValues(random);
      // A "frame" of 96% of the object: not worth the inflation at every read.
      await on.putMany([{ id: blake3(random), bytes: random, frame: new Uint8Array(19_200) }]);
      expect(await on.stats()).toEqual({ objects: 1, storedBytes: 20_000, rawBytes: 20_000 });
      expect(await on.get(blake3(random))).toEqual(random);
    } finally {
      await on.close();
    }
  });
});
