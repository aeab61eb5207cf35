// The store's per-object compression off the event loop (encodePayloadOffThread, what putMany
// uses) against the one on the calling thread (encodePayload) on the same inputs: the same
// flags and the same payload bytes for text, random bytes, small objects, objects no larger than
// the sample, frames that came with their objects, and compression off; and putMany's records
// read back as the objects whatever was in flight at once.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { encodePayload, encodePayloadOffThread } from "../../src/store/pack-compression.ts";
import { PackObjectStore } from "../../src/store/pack-store.ts";
import { createPrng } from "../helpers/prng.ts";

function inputs(): { bytes: Uint8Array; frame?: Uint8Array }[] {
  const prng = createPrng(17);
  const text = (size: number) => new Uint8Array(size).map(() => 97 + prng.nextInt(8));
  const out: { bytes: Uint8Array; frame?: Uint8Array }[] = [];
  for (const size of [0, 1, 127, 128, 4095, 4096, 4097, 65_536, 300_000, 1 << 20]) {
    out.push({ bytes: text(size) }, { bytes: prng.bytes(size) });
    // Random bytes after a compressible first 4 KiB: the sample says yes, the whole says no.
    if (size > 8192) out.push({ bytes: new Uint8Array([...text(4096), ...prng.bytes(size - 4096)]) });
  }
  const framed = text(50_000);
  out.push({ bytes: framed, frame: new Uint8Array(Bun.zstdCompressSync(framed, { level: 7 })) });
  return out;
}

describe("the store's compression off the event loop", () => {
  test("gives the payloads the one on the calling thread gives", async () => {
    for (const level of [1, 3, undefined]) {
      for (const { bytes, frame } of inputs()) {
        const here = encodePayload(bytes, level, frame);
        const there = await encodePayloadOffThread(bytes, level, frame);
        expect({ level, size: bytes.length, flags: there.flags, payload: Buffer.from(there.payload).toString("base64") }).toEqual({
          level,
          size: bytes.length,
          flags: here.flags,
          payload: Buffer.from(here.payload).toString("base64"),
        });
      }
    }
  });

  test("putMany calls in flight at once store every object, read back equal", async () => {
    const store = await PackObjectStore.open(mkdtempSync(join(tmpdir(), "dsync-pack-compression-")));
    try {
      const objects = inputs().map(({ bytes }) => ({ id: blake3(bytes), bytes }));
      // Each object in several calls at once, so the same id is encoded by more than one.
      await Promise.all([objects, objects.slice(3), objects.slice(0, 5), objects.reverse()].map((batch) => store.putMany(batch)));
      const unique = new Map(objects.map((o) => [Buffer.from(o.id).toString("hex"), o]));
      expect((await store.stats()).objects).toBe(unique.size);
      expect(await store.getMany([...unique.values()].map((o) => o.id))).toEqual([...unique.values()].map((o) => o.bytes));
      expect(await store.verifyAll()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
