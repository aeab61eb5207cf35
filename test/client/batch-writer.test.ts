import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { ObjectBatchWriter, BATCH_ITEM_OVERHEAD_BYTES } from "../../src/client/batch-writer.ts";
import { decodeObjectBatch } from "../../src/wire/formats.ts";
import { randomBytes } from "../helpers/trees.ts";

test("a batch built in place decodes to exactly the objects appended, and the writer is reusable", () => {
  const writer = new ObjectBatchWriter(new Uint8Array(300_000));
  for (let round = 0; round < 2; round++) {
    const objects = [0, 1, 31, 32, 255, 256, 65_535, 65_536, 100_000].map((length, i) => {
      const bytes = randomBytes(length, round * 100 + i + 1);
      return { id: blake3(bytes), bytes };
    });
    let appended = 0;
    for (const object of objects) {
      if (!writer.fits(object.bytes.length)) break;
      if (appended % 2 === 0) writer.append(object.id, object.bytes);
      else expect(writer.appendWith(object.id, object.bytes.length, (target) => (target.set(object.bytes), true))).toBe(true);
      appended++;
    }
    // A fill that fails adds nothing.
    expect(writer.appendWith(objects[0]!.id, 10, () => false)).toBe(false);
    const decoded = decodeObjectBatch(writer.finish());
    expect(decoded.map((o) => idToHex(o.id))).toEqual(objects.slice(0, appended).map((o) => idToHex(o.id)));
    decoded.forEach((o, i) => expect(o.bytes).toEqual(objects[i]!.bytes));
    expect(writer.objectBytes).toBe(objects.slice(0, appended).reduce((sum, o) => sum + o.bytes.length, 0));
    writer.reset();
  }
  expect(() => new ObjectBatchWriter(new Uint8Array(100)).append(blake3(new Uint8Array(1)), new Uint8Array(100 - BATCH_ITEM_OVERHEAD_BYTES))).toThrow();
});
