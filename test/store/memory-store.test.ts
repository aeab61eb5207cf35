import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { runObjectStoreConformance, runQuarantineConformance, runUsageTrackingConformance } from "./conformance.ts";

runObjectStoreConformance("MemoryObjectStore", async () => new MemoryObjectStore());
runUsageTrackingConformance("MemoryObjectStore", async (nowMs) => new MemoryObjectStore({ nowMs }));
runQuarantineConformance(
  "MemoryObjectStore",
  async () => new MemoryObjectStore(),
  async (store, id) => {
    if (!store.damageForTesting(id, 17)) throw new Error("nothing to damage");
  },
);
