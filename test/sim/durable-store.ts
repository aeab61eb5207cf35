// A node incarnation's view of its durable object store: writes take simulated time.
//
// Each putMany lands in the shared MemoryObjectStore (the "disk", which outlives crashes) only
// when a scheduled event fires a few simulated milliseconds later, and resolves then. So other
// events (peer calls, replies, other clients' commits) run while a write is in flight, and a
// crash can fall between any two writes of a commit or a pull. When the incarnation has
// crashed by then, the write never resolves, as the process is gone, and a random prefix of its
// objects may have reached the disk anyway. Reads answer at once, and so do deletions and
// touches (used times follow the node's simulated clock, through the MemoryObjectStore's clock).
import type { ObjectId } from "../../src/core/id.ts";
import type { NodeStore } from "../../src/node/node.ts";
import type { QuarantineListener, QuarantineRecord, QuarantineStats, ScrubStep, StoredObject } from "../../src/store/object-store.ts";
import type { MemoryObjectStore } from "../../src/store/memory-store.ts";
import type { Incarnation } from "./network.ts";
import type { Scheduler, SimRandom } from "./scheduler.ts";

export class IncarnationStore implements NodeStore {
  constructor(
    private readonly disk: MemoryObjectStore,
    private readonly incarnation: Incarnation,
    private readonly scheduler: Scheduler,
    private readonly random: SimRandom,
    private readonly maxWriteMs: number,
    private readonly hooks: {
      /** Called as a write starts, with the time it will take (a chance for the harness to crash the node meanwhile). */
      onWrite?: (delayMs: number) => void;
      /** Called when a crash cuts a write short. */
      onCut?: () => void;
    } = {},
  ) {}

  has(id: ObjectId): Promise<boolean> {
    return this.disk.has(id);
  }

  hasMany(ids: readonly ObjectId[]): Promise<boolean[]> {
    return this.disk.hasMany(ids);
  }

  get(id: ObjectId): Promise<Uint8Array | undefined> {
    return this.disk.get(id);
  }

  getMany(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]> {
    return this.disk.getMany(ids);
  }

  put(id: ObjectId, bytes: Uint8Array): Promise<void> {
    return this.putMany([{ id, bytes }]);
  }

  putMany(objects: readonly StoredObject[]): Promise<void> {
    if (!this.incarnation.alive) return new Promise<void>(() => {});
    // The caller may reuse its array; the disk copies the bytes themselves.
    const batch = [...objects];
    const delayMs = this.random.between(0, this.maxWriteMs);
    this.hooks.onWrite?.(delayMs);
    return new Promise<void>((resolve, reject) => {
      this.scheduler.schedule(delayMs, `write ${this.incarnation.address} ${batch.length}`, () => {
        if (!this.incarnation.alive) {
          // Crashed mid-write: some of it may be on disk, and nobody is left to hear back.
          this.hooks.onCut?.();
          void this.disk.putMany(batch.slice(0, this.random.int(batch.length + 1))).catch(() => {});
          return;
        }
        this.disk.putMany(batch).then(resolve, reject);
      });
    });
  }

  // A crashed process deletes nothing (a collection it had started never finishes).
  delete(id: ObjectId): Promise<void> {
    if (!this.incarnation.alive) return new Promise<void>(() => {});
    return this.disk.delete(id);
  }

  deleteMany(ids: readonly ObjectId[]): Promise<void> {
    if (!this.incarnation.alive) return new Promise<void>(() => {});
    return this.disk.deleteMany(ids);
  }

  touch(ids: readonly ObjectId[], nowMs?: number): Promise<boolean[]> {
    return this.disk.touch(ids, nowMs);
  }

  listUnusedSince(cutoffMs: number): AsyncIterable<ObjectId> {
    return this.disk.listUnusedSince(cutoffMs);
  }

  deleteUnusedSince(ids: readonly ObjectId[], cutoffMs: number): Promise<number> {
    if (!this.incarnation.alive) return new Promise<number>(() => {});
    return this.disk.deleteUnusedSince(ids, cutoffMs);
  }

  list(): AsyncIterable<ObjectId> {
    return this.disk.list();
  }

  stats(): Promise<{ objects: number; storedBytes: number; rawBytes: number }> {
    return this.disk.stats();
  }

  verifyAll(): Promise<{ id: ObjectId; detail: string }[]> {
    return this.disk.verifyAll();
  }

  repack(): Promise<{ packsRewritten: number }> {
    return this.disk.repack();
  }

  scrub(afterId: ObjectId | null, bytesMax: number): Promise<ScrubStep> {
    return this.disk.scrub(afterId, bytesMax);
  }

  listQuarantine(options?: { unrepairedOnly?: boolean }): Promise<QuarantineRecord[]> {
    return this.disk.listQuarantine(options);
  }

  quarantineStats(): Promise<QuarantineStats> {
    return this.disk.quarantineStats();
  }

  onQuarantine(listener: QuarantineListener): () => void {
    return this.disk.onQuarantine(listener);
  }

  dropQuarantined(ids: readonly ObjectId[]): Promise<number> {
    return this.disk.dropQuarantined(ids);
  }

  /** The disk stays; only this incarnation's handle goes. */
  async close(): Promise<void> {}
}
