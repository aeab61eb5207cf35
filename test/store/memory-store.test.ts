import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { runObjectStoreConformance, runUsageTrackingConformance } from "./conformance.ts";

runObjectStoreConformance("MemoryObjectStore", async () => new MemoryObjectStore());
runUsageTrackingConformance("MemoryObjectStore", async (nowMs) => new MemoryObjectStore({ nowMs }));
