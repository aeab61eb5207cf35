// The objects of the last upload groups, kept a few seconds for the peers that were just told of
// them (stored-notices.ts): their fetches ahead (prefetch.ts) are answered from here instead of
// reading back, and verifying again, what was written to the store a moment ago.
//
// Only objects the store has just acknowledged as durable are added (each verified against its
// id on receipt), copied, since an upload's buffers may be reused once its group is stored.
// Bounded by bytes and by age; an object is handed out once and then forgotten (a second peer
// asking for it reads it from the store). Being here never stands for being stored: a peer
// asking for an id gets its bytes, which hash to it whatever became of the stored copy.
import { idToHex, type ObjectId } from "../core/id.ts";
import type { StoredObject } from "../store/object-store.ts";

/** Bytes kept at most: a few upload groups, what fetching ahead lags behind by on a fast link. */
export const RECENT_UPLOAD_BYTES_MAX = 32 * 1024 * 1024;
/** How long an object is kept for a peer that has not asked for it yet. */
export const RECENT_UPLOAD_AGE_MS = 10_000;

interface Entry {
  bytes: Uint8Array;
  addedMs: number;
}

export class RecentUploads {
  /** In the order added (a Map keeps it), so the oldest are dropped first. */
  private readonly entries = new Map<string, Entry>();
  private bytesHeld = 0;
  /** Objects handed out from here, and asked for but not here (for the benchmarks). */
  readonly stats = { served: 0, missed: 0 };

  constructor(
    private readonly nowMs: () => number,
    private readonly bytesMax: number = RECENT_UPLOAD_BYTES_MAX,
    private readonly ageMs: number = RECENT_UPLOAD_AGE_MS,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** Objects the store has just acknowledged: copies are kept, the oldest dropped past the bounds. */
  add(objects: readonly StoredObject[]): void {
    const nowMs = this.nowMs();
    for (const object of objects) {
      if (object.bytes.length > this.bytesMax) continue;
      const key = idToHex(object.id);
      if (this.entries.has(key)) continue;
      this.entries.set(key, { bytes: new Uint8Array(object.bytes), addedMs: nowMs });
      this.bytesHeld += object.bytes.length;
    }
    this.expire(nowMs);
  }

  /** For each id, its bytes if held here (then forgotten), else undefined. */
  take(ids: readonly ObjectId[]): (Uint8Array | undefined)[] {
    this.expire(this.nowMs());
    return ids.map((id) => {
      const key = idToHex(id);
      const entry = this.entries.get(key);
      if (!entry) {
        this.stats.missed++;
        return undefined;
      }
      this.entries.delete(key);
      this.bytesHeld -= entry.bytes.length;
      this.stats.served++;
      return entry.bytes;
    });
  }

  /** Forgets everything (the node stops, or goes quiet). */
  clear(): void {
    this.entries.clear();
    this.bytesHeld = 0;
  }

  /** Drops what is past its age or the bytes bound (a timer calls it, so nothing stays held at rest). */
  expire(nowMs: number = this.nowMs()): void {
    for (const [key, entry] of this.entries) {
      if (this.bytesHeld <= this.bytesMax && nowMs - entry.addedMs <= this.ageMs) break;
      this.entries.delete(key);
      this.bytesHeld -= entry.bytes.length;
    }
  }
}
