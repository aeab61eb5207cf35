// putHashed, for a scan that hashed the bytes it read: the same store as putMany gives on the
// same objects (stats, reads), the size bound still enforced, and what a caller wrongly vouched
// for caught by the first read (re-hashed, quarantined, never returned).
import { afterAll, describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { CorruptObjectError } from "../../src/store/object-store.ts";
import { PackObjectStore } from "../../src/store/pack-store.ts";
import { createPrng } from "../helpers/prng.ts";
import { cleanupTempDirs, tempDir as tempDirUnder } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);
const tempDir = () => tempDirUnder("dsync-pack-put-hashed-");

function objects() {
  const prng = createPrng(21);
  return [0, 10, 5000, 65_536, 200_000].flatMap((size) => {
    const random = prng.bytes(size);
    const text = new Uint8Array(size).map(() => 97 + prng.nextInt(3));
    return [random, text].map((bytes) => ({ id: blake3(bytes), bytes }));
  });
}

describe("putHashed", () => {
  test("stores what putMany stores for the same objects", async () => {
    const viaPutMany = await PackObjectStore.open(tempDir());
    const viaPutHashed = await PackObjectStore.open(tempDir());
    try {
      const all = objects();
      await viaPutMany.putMany(all);
      await viaPutHashed.putHashed(all);
      expect(await viaPutHashed.stats()).toEqual(await viaPutMany.stats());
      expect(await viaPutHashed.getMany(all.map((o) => o.id))).toEqual(all.map((o) => o.bytes));
      expect(await viaPutHashed.verifyAll()).toEqual([]);
    } finally {
      await viaPutMany.close();
      await viaPutHashed.close();
    }
  });

  test("refuses an object past the size bound; a wrong id vouched for is caught by the first read", async () => {
    const store = await PackObjectStore.open(tempDir());
    try {
      const tooLarge = new Uint8Array(LIMITS.objectBytesMax + 1);
      await expect(store.putHashed([{ id: blake3(tooLarge), bytes: tooLarge }])).rejects.toThrow(RangeError);
      const bytes = new TextEncoder().encode("the bytes");
      const wrongId = blake3(new TextEncoder().encode("other bytes"));
      await store.putHashed([{ id: wrongId, bytes }]);
      await expect(store.get(wrongId)).rejects.toThrow(CorruptObjectError);
      expect(await store.has(wrongId)).toBe(false);
    } finally {
      await store.close();
    }
  });
});
