// An object store held in memory, for tests and for throwaway servers.
//
// It keeps the same contract as the pack store, including used_ms for the collector, so code
// written against one behaves the same on the other. Bytes are copied on the way in and out:
// a caller reusing its buffer must not change what is stored.
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { verifyObjects, type ObjectStore, type StoredObject } from "./object-store.ts";

export interface MemoryObjectStoreOptions {
  /** The clock for used_ms. Default Date.now. */
  nowMs?: () => number;
}

interface MemoryEntry {
  bytes: Uint8Array;
  usedMs: number;
}

export class MemoryObjectStore implements ObjectStore {
  private readonly entries = new Map<string, MemoryEntry>();
  private readonly nowMs: () => number;
  private closed = false;

  constructor(options: MemoryObjectStoreOptions = {}) {
    this.nowMs = options.nowMs ?? Date.now;
  }

  async has(id: ObjectId): Promise<boolean> {
    this.assertOpen();
    return this.entries.has(idToHex(id));
  }

  async hasMany(ids: readonly ObjectId[]): Promise<boolean[]> {
    this.assertOpen();
    return ids.map((id) => this.entries.has(idToHex(id)));
  }

  async get(id: ObjectId): Promise<Uint8Array | undefined> {
    this.assertOpen();
    return this.read(id);
  }

  async getMany(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen();
    return ids.map((id) => this.read(id));
  }

  async put(id: ObjectId, bytes: Uint8Array): Promise<void> {
    await this.putMany([{ id, bytes }]);
  }

  async putMany(objects: readonly StoredObject[]): Promise<void> {
    this.assertOpen();
    verifyObjects(objects);
    const nowMs = this.nowMs();
    for (const { id, bytes } of objects) {
      const hex = idToHex(id);
      const entry = this.entries.get(hex);
      if (entry === undefined) this.entries.set(hex, { bytes: new Uint8Array(bytes), usedMs: nowMs });
      else entry.usedMs = Math.max(entry.usedMs, nowMs);
    }
  }

  async delete(id: ObjectId): Promise<void> {
    await this.deleteMany([id]);
  }

  async deleteMany(ids: readonly ObjectId[]): Promise<void> {
    this.assertOpen();
    for (const id of ids) this.entries.delete(idToHex(id));
  }

  /** Deletes those of `ids` not put or touched since `cutoffMs`; returns how many were deleted. */
  async deleteUnusedSince(ids: readonly ObjectId[], cutoffMs: number): Promise<number> {
    this.assertOpen();
    let deleted = 0;
    for (const id of ids) {
      const hex = idToHex(id);
      const entry = this.entries.get(hex);
      if (entry !== undefined && entry.usedMs < cutoffMs) {
        this.entries.delete(hex);
        deleted++;
      }
    }
    return deleted;
  }

  /** Raises used_ms to at least `nowMs`; one answer per id, true when present. */
  async touch(ids: readonly ObjectId[], nowMs: number = this.nowMs()): Promise<boolean[]> {
    this.assertOpen();
    return ids.map((id) => {
      const entry = this.entries.get(idToHex(id));
      if (entry === undefined) return false;
      entry.usedMs = Math.max(entry.usedMs, nowMs);
      return true;
    });
  }

  async *list(): AsyncIterable<ObjectId> {
    this.assertOpen();
    // A snapshot of the keys, so deleting while iterating is safe.
    for (const hex of [...this.entries.keys()]) yield idFromHex(hex);
  }

  async *listUnusedSince(cutoffMs: number): AsyncIterable<ObjectId> {
    this.assertOpen();
    const unused = [...this.entries].filter(([, entry]) => entry.usedMs < cutoffMs).map(([hex]) => hex);
    for (const hex of unused) yield idFromHex(hex);
  }

  async stats(): Promise<{ objects: number; storedBytes: number; rawBytes: number }> {
    this.assertOpen();
    let rawBytes = 0;
    for (const entry of this.entries.values()) rawBytes += entry.bytes.length;
    return { objects: this.entries.size, storedBytes: rawBytes, rawBytes };
  }

  /** Re-hashes every object; the ids whose bytes no longer match. */
  async verifyAll(): Promise<{ id: ObjectId; detail: string }[]> {
    this.assertOpen();
    const problems: { id: ObjectId; detail: string }[] = [];
    for (const [key, entry] of this.entries) {
      const id = idFromHex(key);
      try {
        verifyObjects([{ id, bytes: entry.bytes }]);
      } catch (error) {
        problems.push({ id, detail: (error as Error).message });
      }
    }
    return problems;
  }

  /** Nothing to compact in memory; present so the store can stand in for a pack store. */
  async repack(): Promise<{ packsRewritten: number }> {
    this.assertOpen();
    return { packsRewritten: 0 };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
  }

  private read(id: ObjectId): Uint8Array | undefined {
    const entry = this.entries.get(idToHex(id));
    return entry === undefined ? undefined : new Uint8Array(entry.bytes);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("object store is closed");
  }
}
