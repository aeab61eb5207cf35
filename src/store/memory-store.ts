// An object store held in memory, for tests and for throwaway servers.
//
// It keeps the same contract as the pack store, including used_ms for the collector, so code
// written against one behaves the same on the other. Bytes are copied on the way in and out:
// a caller reusing its buffer must not change what is stored. Reads re-hash like the pack store
// does, so a test that damages an entry sees the same quarantine a disk store would apply.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import {
  CorruptObjectError,
  QuarantineListeners,
  verifyObjects,
  type ObjectStore,
  type QuarantineFinder,
  type QuarantineListener,
  type QuarantineRecord,
  type QuarantineStats,
  type ScrubStep,
  type StoredObject,
} from "./object-store.ts";

export interface MemoryObjectStoreOptions {
  /** The clock for used_ms. Default Date.now. */
  nowMs?: () => number;
}

interface MemoryEntry {
  bytes: Uint8Array;
  usedMs: number;
}

interface MemoryQuarantine {
  record: QuarantineRecord;
  /** The damaged bytes, kept until a good copy is stored. */
  bytes: Uint8Array | undefined;
}

export class MemoryObjectStore implements ObjectStore {
  private readonly entries = new Map<string, MemoryEntry>();
  private readonly quarantine = new Map<string, MemoryQuarantine>();
  private readonly quarantineListeners = new QuarantineListeners();
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
    return this.readMany([id])[0];
  }

  async getMany(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen();
    return this.readMany(ids);
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
      if (entry === undefined) {
        this.entries.set(hex, { bytes: new Uint8Array(bytes), usedMs: nowMs });
        const quarantined = this.quarantine.get(hex);
        if (quarantined !== undefined && quarantined.record.repairedMs === null) {
          quarantined.record.repairedMs = nowMs;
          quarantined.bytes = undefined;
        }
      } else entry.usedMs = Math.max(entry.usedMs, nowMs);
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

  /** Re-hashes every object; the ids whose bytes no longer match (now quarantined). */
  async verifyAll(): Promise<{ id: ObjectId; detail: string }[]> {
    this.assertOpen();
    const problems: { id: ObjectId; detail: string }[] = [];
    for (const [key, entry] of [...this.entries]) {
      const detail = damageOf(key, entry.bytes);
      if (detail !== undefined) problems.push({ id: idFromHex(key), detail });
    }
    this.quarantineIds(problems, "verify");
    return problems;
  }

  async scrub(afterId: ObjectId | null, bytesMax: number): Promise<ScrubStep> {
    this.assertOpen();
    const step: ScrubStep = { checkedObjects: 0, checkedBytes: 0, corrupt: [], nextAfterId: null };
    const afterHex = afterId === null ? "" : idToHex(afterId);
    const keys = [...this.entries.keys()].filter((hex) => hex > afterHex).sort();
    const found: { id: ObjectId; detail: string }[] = [];
    for (const hex of keys) {
      if (step.checkedObjects > 0 && step.checkedBytes >= bytesMax) {
        step.nextAfterId = idFromHex(keys[step.checkedObjects - 1]!);
        break;
      }
      const bytes = this.entries.get(hex)!.bytes;
      step.checkedObjects++;
      step.checkedBytes += bytes.length;
      const detail = damageOf(hex, bytes);
      if (detail !== undefined) found.push({ id: idFromHex(hex), detail });
    }
    step.corrupt = this.quarantineIds(found, "scrub");
    return step;
  }

  async listQuarantine(options: { unrepairedOnly?: boolean } = {}): Promise<QuarantineRecord[]> {
    this.assertOpen();
    return [...this.quarantine.values()]
      .map((q) => q.record)
      .filter((record) => !options.unrepairedOnly || record.repairedMs === null)
      .sort((a, b) => a.foundMs - b.foundMs || idToHex(a.id).localeCompare(idToHex(b.id)))
      .map((record) => ({ ...record }));
  }

  async quarantineStats(): Promise<QuarantineStats> {
    this.assertOpen();
    let quarantined = 0;
    for (const { record } of this.quarantine.values()) if (record.repairedMs === null) quarantined++;
    return { quarantined, repaired: this.quarantine.size - quarantined };
  }

  onQuarantine(listener: QuarantineListener): () => void {
    return this.quarantineListeners.add(listener);
  }

  async dropQuarantined(ids: readonly ObjectId[]): Promise<number> {
    this.assertOpen();
    let dropped = 0;
    for (const id of ids) {
      const hex = idToHex(id);
      if (this.quarantine.get(hex)?.record.repairedMs !== null) continue;
      this.quarantine.delete(hex);
      dropped++;
    }
    return dropped;
  }

  /**
   * Changes one stored byte in place, as a failing disk would; for tests of the quarantine.
   * Returns false when the object is absent (or empty, which has no byte to change).
   */
  damageForTesting(id: ObjectId, offsetBytes = 0): boolean {
    const entry = this.entries.get(idToHex(id));
    if (entry === undefined || entry.bytes.length === 0) return false;
    const at = offsetBytes % entry.bytes.length;
    entry.bytes[at] = entry.bytes[at]! ^ 0x5a;
    return true;
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

  private readMany(ids: readonly ObjectId[]): (Uint8Array | undefined)[] {
    const found: { id: ObjectId; detail: string }[] = [];
    const out = ids.map((id) => {
      const hex = idToHex(id);
      const entry = this.entries.get(hex);
      if (entry === undefined) return undefined;
      const detail = damageOf(hex, entry.bytes);
      if (detail === undefined) return new Uint8Array(entry.bytes);
      found.push({ id, detail });
      return undefined;
    });
    if (found.length > 0) {
      this.quarantineIds(found, "read");
      throw new CorruptObjectError(idToHex(found[0]!.id), found[0]!.detail);
    }
    return out;
  }

  /** Moves damaged entries out of the live set, keeping their bytes; returns the ids moved. */
  private quarantineIds(found: readonly { id: ObjectId; detail: string }[], foundBy: QuarantineFinder): ObjectId[] {
    const moved: ObjectId[] = [];
    for (const { id, detail } of found) {
      const hex = idToHex(id);
      const entry = this.entries.get(hex);
      if (entry === undefined) continue;
      this.entries.delete(hex);
      this.quarantine.set(hex, { record: { id, foundMs: this.nowMs(), foundBy, detail, repairedMs: null }, bytes: entry.bytes });
      moved.push(id);
    }
    this.quarantineListeners.emit(moved);
    return moved;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("object store is closed");
  }
}

/** What is wrong with an entry's bytes, or undefined when they hash to its id. */
function damageOf(hex: string, bytes: Uint8Array): string | undefined {
  const actual = blake3(bytes);
  return idEquals(actual, idFromHex(hex)) ? undefined : `content hashes to ${idToHex(actual)}`;
}
