// What a node needs of its object store beyond the common interface: gc's marks of use and
// sweep, verification, repacking. The pack store (src/store/pack-store.ts) is one; the memory
// store of the tests and the simulation is another.
import type { ObjectId } from "../core/id.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { PackObjectStore } from "../store/pack-store.ts";

/** What a node needs of its object store beyond the common interface (GC and verification). */
export type NodeStore = ObjectStore &
  Pick<PackObjectStore, "touch" | "listUnusedSince" | "deleteUnusedSince"> & {
    verifyAll(): Promise<{ id: ObjectId; detail: string }[]>;
    /** SQLite's structural check of the store's own database, where it has one. */
    integrityCheck?(): Promise<string>;
    repack(): Promise<unknown>;
    /** Buffers kept for the next write, let go while the node is quiet, where the store keeps any. */
    releaseBuffers?(): void;
  };
