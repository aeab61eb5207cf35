// The repairer tells who listens (the node's event log, wired in serve.ts) which objects it
// stored again, and only those: not what was already present, not what no source had.
import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { systemTimers } from "../../src/node/clock.ts";
import { Repairer } from "../../src/node/repair.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";

test("onRepaired hears exactly the objects stored again from a source", async () => {
  const store = new MemoryObjectStore();
  const bytes = ["held", "lost-and-found", "lost-for-good"].map((text) => new TextEncoder().encode(text));
  const [held, found, gone] = bytes.map((b) => blake3(b)) as [ObjectId, ObjectId, ObjectId];
  await store.putMany([{ id: held, bytes: bytes[0]! }]);
  const heard: string[][] = [];
  const repairer = new Repairer({
    store,
    source: { fetch: async (ids) => ids.filter((id) => idToHex(id) === idToHex(found)).map((id) => ({ id, bytes: bytes[1]! })) },
    clock: { nowMs: () => 0 },
    timers: systemTimers,
    onRepaired: (ids) => heard.push(ids.map(idToHex)),
  });
  const result = await repairer.repair([held, found, gone]);
  expect(result.unrepairable.map(idToHex)).toEqual([idToHex(gone)]);
  expect(heard).toEqual([[idToHex(found)]]);
});
