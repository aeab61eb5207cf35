// The contract every ObjectStore implementation must keep (see src/store/object-store.ts).
// Each implementation's test file calls these with a factory for fresh, empty stores.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { blake3, EMPTY_BLAKE3_HEX } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { CorruptObjectError, ObjectHashMismatchError, type ObjectStore, type StoredObject } from "../../src/store/object-store.ts";

export function objectOf(bytes: Uint8Array): StoredObject {
  return { id: blake3(bytes), bytes };
}

export function randomObject(lengthBytes: number): StoredObject {
  return objectOf(new Uint8Array(randomBytes(lengthBytes)));
}

/** Text-like bytes that zstd shrinks a lot; `seed` makes each one distinct. */
export function compressibleObject(lengthBytes: number, seed: number): StoredObject {
  const line = new TextEncoder().encode(`line of object ${seed}: the quick brown fox jumps over the lazy dog\n`);
  const bytes = new Uint8Array(lengthBytes);
  for (let at = 0; at < lengthBytes; at += line.length) bytes.set(line.subarray(0, lengthBytes - at), at);
  return objectOf(bytes);
}

export function smallObject(seed: number): StoredObject {
  return objectOf(new TextEncoder().encode(`small object number ${seed}`));
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function hexSet(ids: readonly Uint8Array[]): Set<string> {
  return new Set(ids.map(idToHex));
}

function withWrongId(object: StoredObject): StoredObject {
  const id = new Uint8Array(object.id) as ObjectId;
  id[0] = id[0]! ^ 0xff;
  return { id, bytes: object.bytes };
}

export function runObjectStoreConformance(name: string, makeStore: () => Promise<ObjectStore>): void {
  describe(`${name} (ObjectStore contract)`, () => {
    let store: ObjectStore;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    test("an absent id reads as absent", async () => {
      const { id } = smallObject(1);
      expect(await store.has(id)).toBe(false);
      expect(await store.get(id)).toBeUndefined();
    });

    test("put then get returns the same bytes", async () => {
      const object = randomObject(1000);
      await store.put(object.id, object.bytes);
      expect(await store.has(object.id)).toBe(true);
      expect(await store.get(object.id)).toEqual(object.bytes);
    });

    test("the empty object is stored under the BLAKE3 of nothing", async () => {
      const empty = objectOf(new Uint8Array(0));
      expect(idToHex(empty.id)).toBe(EMPTY_BLAKE3_HEX);
      await store.put(empty.id, empty.bytes);
      expect(await store.has(empty.id)).toBe(true);
      const read = await store.get(empty.id);
      expect(read).toBeInstanceOf(Uint8Array);
      expect(read!.length).toBe(0);
    });

    test("hasMany answers one per id, in order", async () => {
      const [a, b, c] = [smallObject(1), smallObject(2), smallObject(3)];
      await store.putMany([a, c]);
      expect(await store.hasMany([a.id, b.id, c.id, b.id, a.id])).toEqual([true, false, true, false, true]);
      expect(await store.hasMany([])).toEqual([]);
    });

    test("getMany returns undefined for absent ids, in order", async () => {
      const [a, b, c] = [smallObject(1), smallObject(2), randomObject(5000)];
      await store.putMany([a, c]);
      const read = await store.getMany([b.id, a.id, c.id, b.id]);
      expect(read).toEqual([undefined, a.bytes, c.bytes, undefined]);
    });

    test("a wrong id throws ObjectHashMismatchError and stores nothing of the batch", async () => {
      const good = [smallObject(1), randomObject(3000), compressibleObject(20_000, 1)];
      const bad = withWrongId(smallObject(2));
      const error = await store.putMany([...good, bad]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ObjectHashMismatchError);
      expect((error as ObjectHashMismatchError).claimedIdHex).toBe(idToHex(bad.id));
      expect((error as ObjectHashMismatchError).actualIdHex).toBe(idToHex(blake3(bad.bytes)));
      expect(await store.hasMany([...good, bad].map((o) => o.id))).toEqual([false, false, false, false]);
      expect(await store.get(blake3(bad.bytes))).toBeUndefined();
      expect((await store.stats()).objects).toBe(0);
      expect(await collect(store.list())).toEqual([]);
      await expect(store.put(bad.id, bad.bytes)).rejects.toBeInstanceOf(ObjectHashMismatchError);
    });

    test("an object above the size limit is refused and nothing of the batch is stored", async () => {
      const small = smallObject(1);
      const huge = objectOf(new Uint8Array(LIMITS.objectBytesMax + 1));
      await expect(store.putMany([small, huge])).rejects.toBeInstanceOf(RangeError);
      expect(await store.has(small.id)).toBe(false);
    });

    test("putting a present id again is a no-op", async () => {
      const object = compressibleObject(10_000, 7);
      await store.put(object.id, object.bytes);
      const before = await store.stats();
      await store.put(object.id, object.bytes);
      await store.putMany([object, object]);
      expect(await store.stats()).toEqual(before);
      expect(await store.get(object.id)).toEqual(object.bytes);
    });

    test("an id repeated within one batch is stored once", async () => {
      const object = randomObject(2000);
      await store.putMany([object, smallObject(1), object]);
      expect((await store.stats()).objects).toBe(2);
      expect(await collect(store.list())).toHaveLength(2);
    });

    test("deleting an absent id is fine; deleted objects read as absent and can be put again", async () => {
      const [a, b] = [smallObject(1), randomObject(4000)];
      await store.delete(a.id);
      await store.putMany([a, b]);
      await store.delete(a.id);
      await store.deleteMany([a.id, a.id, smallObject(9).id]);
      expect(await store.has(a.id)).toBe(false);
      expect(await store.get(a.id)).toBeUndefined();
      expect(await store.get(b.id)).toEqual(b.bytes);
      expect((await store.stats()).objects).toBe(1);
      await store.put(a.id, a.bytes);
      expect(await store.get(a.id)).toEqual(a.bytes);
    });

    test("list returns exactly the stored ids", async () => {
      const objects = Array.from({ length: 2500 }, (_, i) => smallObject(i));
      await store.putMany(objects);
      await store.deleteMany(objects.slice(0, 100).map((o) => o.id));
      const listed = await collect(store.list());
      expect(listed).toHaveLength(2400);
      expect(hexSet(listed)).toEqual(hexSet(objects.slice(100).map((o) => o.id)));
    });

    test("stats count live objects and their raw bytes", async () => {
      expect(await store.stats()).toEqual({ objects: 0, storedBytes: 0, rawBytes: 0 });
      const objects = [randomObject(1000), randomObject(2345), smallObject(1)];
      await store.putMany(objects);
      await store.put(objects[0]!.id, objects[0]!.bytes);
      const rawBytes = objects.reduce((sum, o) => sum + o.bytes.length, 0);
      const stats = await store.stats();
      expect(stats.objects).toBe(3);
      expect(stats.rawBytes).toBe(rawBytes);
      // Random and tiny objects gain nothing from compression, so they are stored as they are.
      expect(stats.storedBytes).toBe(rawBytes);
      await store.delete(objects[1]!.id);
      expect(await store.stats()).toEqual({ objects: 2, storedBytes: rawBytes - 2345, rawBytes: rawBytes - 2345 });
    });

    test("many objects: 5000 small and a few of 1 MiB", async () => {
      const small = Array.from({ length: 5000 }, (_, i) => smallObject(i));
      const large = [randomObject(1 << 20), randomObject(1 << 20), compressibleObject(1 << 20, 3)];
      await store.putMany(small.slice(0, 2000));
      await store.putMany([...large, ...small.slice(2000)]);
      const all = [...small, ...large];
      expect((await store.hasMany(all.map((o) => o.id))).every(Boolean)).toBe(true);
      const read = await store.getMany(all.map((o) => o.id));
      for (let i = 0; i < all.length; i++) {
        if (read[i]!.length !== all[i]!.bytes.length) throw new Error(`object ${i} has the wrong length`);
      }
      expect(read.slice(-3)).toEqual(large.map((o) => o.bytes));
      expect(read[1234]).toEqual(small[1234]!.bytes);
      expect((await store.stats()).objects).toBe(5003);
      expect(await collect(store.list())).toHaveLength(5003);
    });

    test("compressible and incompressible data round trip", async () => {
      const objects = [
        compressibleObject(64 * 1024, 1),
        compressibleObject(100, 2),
        compressibleObject(4096, 3),
        compressibleObject(4097, 4),
        randomObject(64 * 1024),
        randomObject(4096),
        // Compressible start, random rest: the sample says compress, the whole result may not pay.
        objectOf(new Uint8Array([...compressibleObject(4096, 5).bytes, ...randomBytes(60_000)])),
        objectOf(new Uint8Array(300_000)),
      ];
      await store.putMany(objects);
      expect(await store.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    });

    test("stored bytes do not share memory with the caller's buffers", async () => {
      const object = randomObject(1000);
      const original = new Uint8Array(object.bytes);
      await store.put(object.id, object.bytes);
      object.bytes.fill(0);
      const read = (await store.get(object.id))!;
      expect(read).toEqual(original);
      read.fill(1);
      expect(await store.get(object.id)).toEqual(original);
    });

    test("concurrent putMany calls all land", async () => {
      const batches = Array.from({ length: 12 }, (_, b) =>
        Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? compressibleObject(3000 + i, b * 100 + i) : randomObject(500 + i * 50))),
      );
      // Every batch also carries one shared object, so some calls find it present.
      const shared = smallObject(424242);
      await Promise.all(batches.map((batch) => store.putMany([...batch, shared])));
      const all = [...batches.flat(), shared];
      expect((await store.stats()).objects).toBe(all.length);
      expect(await store.getMany(all.map((o) => o.id))).toEqual(all.map((o) => o.bytes));
    });

    test("a closed store refuses further calls", async () => {
      const object = smallObject(1);
      await store.put(object.id, object.bytes);
      await store.close();
      await expect(store.get(object.id)).rejects.toThrow(/closed/);
      await expect(store.put(object.id, object.bytes)).rejects.toThrow(/closed/);
    });
  });
}

/** The extra methods the garbage collector relies on; both stores provide them. */
export interface UsageTrackingStore extends ObjectStore {
  touch(ids: readonly ObjectId[], nowMs?: number): Promise<boolean[]>;
  listUnusedSince(cutoffMs: number): AsyncIterable<ObjectId>;
  deleteUnusedSince(ids: readonly ObjectId[], cutoffMs: number): Promise<number>;
}

export function runUsageTrackingConformance(name: string, makeStore: (nowMs: () => number) => Promise<UsageTrackingStore>): void {
  describe(`${name} (usage tracking for garbage collection)`, () => {
    let clockMs = 1_000;
    let store: UsageTrackingStore;
    beforeEach(async () => {
      clockMs = 1_000;
      store = await makeStore(() => clockMs);
    });
    afterEach(async () => {
      await store.close();
    });

    test("put records the time; touch raises it; listUnusedSince sees what is older than the cutoff", async () => {
      const [a, b, c] = [smallObject(1), smallObject(2), smallObject(3)];
      await store.putMany([a, b]);
      clockMs = 2_000;
      await store.put(c.id, c.bytes);
      expect(hexSet(await collect(store.listUnusedSince(1_500)))).toEqual(hexSet([a.id, b.id]));
      expect(await store.touch([a.id, smallObject(9).id], 3_000)).toEqual([true, false]);
      expect(hexSet(await collect(store.listUnusedSince(2_500)))).toEqual(hexSet([b.id, c.id]));
      // Touching with an older time never moves used_ms back.
      await store.touch([a.id], 500);
      expect(hexSet(await collect(store.listUnusedSince(2_500)))).toEqual(hexSet([b.id, c.id]));
      expect(await collect(store.listUnusedSince(1_000))).toEqual([]);
    });

    test("putting a present object counts as a use", async () => {
      const a = smallObject(1);
      await store.put(a.id, a.bytes);
      clockMs = 5_000;
      await store.put(a.id, a.bytes);
      expect(await collect(store.listUnusedSince(4_000))).toEqual([]);
    });

    test("deleteUnusedSince spares objects used at or after the cutoff", async () => {
      const [a, b] = [smallObject(1), smallObject(2)];
      await store.putMany([a, b]);
      await store.touch([b.id], 2_000);
      expect(await store.deleteUnusedSince([a.id, b.id, smallObject(3).id], 1_500)).toBe(1);
      expect(await store.hasMany([a.id, b.id])).toEqual([false, true]);
      expect((await store.stats()).objects).toBe(1);
    });
  });
}

/** Changes one byte of a stored object where the implementation keeps it, as a failing disk would. */
export type DamageObject<S extends ObjectStore> = (store: S, id: ObjectId) => Promise<void>;

export function runQuarantineConformance<S extends ObjectStore>(name: string, makeStore: () => Promise<S>, damage: DamageObject<S>): void {
  describe(`${name} (quarantine of corrupt objects)`, () => {
    let store: S;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    test("an object found corrupt by a read is quarantined: it then reads as absent everywhere", async () => {
      const [bad, good] = [randomObject(5000), randomObject(3000)];
      await store.putMany([bad, good]);
      const heard: string[] = [];
      store.onQuarantine((ids) => heard.push(...ids.map(idToHex)));
      await damage(store, bad.id);
      // Presence alone cannot see the damage: only a read does.
      expect(await store.has(bad.id)).toBe(true);
      const error = await store.get(bad.id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptObjectError);
      expect((error as CorruptObjectError).idHex).toBe(idToHex(bad.id));
      expect(heard).toEqual([idToHex(bad.id)]);
      expect(await store.has(bad.id)).toBe(false);
      expect(await store.hasMany([good.id, bad.id])).toEqual([true, false]);
      expect(await store.get(bad.id)).toBeUndefined();
      expect(await store.getMany([bad.id, good.id])).toEqual([undefined, good.bytes]);
      expect(hexSet(await collect(store.list()))).toEqual(hexSet([good.id]));
      expect((await store.stats()).objects).toBe(1);
      expect(await store.quarantineStats()).toEqual({ quarantined: 1, repaired: 0 });
      const [record] = await store.listQuarantine();
      expect(idToHex(record!.id)).toBe(idToHex(bad.id));
      expect(record!.foundBy).toBe("read");
      expect(record!.detail.length).toBeGreaterThan(0);
      expect(record!.repairedMs).toBeNull();
    });

    test("getMany quarantines every corrupt object of the batch before it throws", async () => {
      const objects = [randomObject(4000), compressibleObject(20_000, 1), smallObject(1), randomObject(2000)];
      await store.putMany(objects);
      await damage(store, objects[0]!.id);
      await damage(store, objects[1]!.id);
      await expect(store.getMany(objects.map((o) => o.id))).rejects.toBeInstanceOf(CorruptObjectError);
      expect(await store.hasMany(objects.map((o) => o.id))).toEqual([false, false, true, true]);
      expect(await store.getMany(objects.map((o) => o.id))).toEqual([undefined, undefined, objects[2]!.bytes, objects[3]!.bytes]);
      expect(await store.quarantineStats()).toEqual({ quarantined: 2, repaired: 0 });
    });

    test("a put of the right bytes stores a good copy and marks the quarantine repaired", async () => {
      const object = randomObject(6000);
      await store.put(object.id, object.bytes);
      await damage(store, object.id);
      await expect(store.get(object.id)).rejects.toBeInstanceOf(CorruptObjectError);
      await store.put(object.id, object.bytes);
      expect(await store.has(object.id)).toBe(true);
      expect(await store.get(object.id)).toEqual(object.bytes);
      expect(await store.quarantineStats()).toEqual({ quarantined: 0, repaired: 1 });
      expect(await store.listQuarantine({ unrepairedOnly: true })).toEqual([]);
      const [record] = await store.listQuarantine();
      expect(record!.repairedMs).not.toBeNull();
      expect((await store.stats()).objects).toBe(1);
    });

    test("scrub walks every object in bounded steps and quarantines what is corrupt", async () => {
      const objects = Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? compressibleObject(3000, i) : randomObject(1000 + i)));
      await store.putMany(objects);
      const damaged = [objects[3]!, objects[17]!, objects[32]!];
      for (const object of damaged) await damage(store, object.id);
      const heard: string[] = [];
      store.onQuarantine((ids) => heard.push(...ids.map(idToHex)));
      let afterId: ObjectId | null = null;
      let steps = 0;
      let checked = 0;
      const corrupt: ObjectId[] = [];
      do {
        const step = await store.scrub(afterId, 5000);
        expect(step.checkedObjects).toBeGreaterThan(0);
        // A step stops once past its byte budget: no more than one object over it.
        expect(step.checkedBytes).toBeLessThan(5000 + 4000);
        checked += step.checkedObjects;
        corrupt.push(...step.corrupt);
        afterId = step.nextAfterId;
        steps++;
      } while (afterId !== null && steps < 100);
      expect(afterId).toBeNull();
      expect(steps).toBeGreaterThan(5);
      expect(checked).toBe(40);
      expect(hexSet(corrupt)).toEqual(hexSet(damaged.map((o) => o.id)));
      expect(new Set(heard)).toEqual(hexSet(damaged.map((o) => o.id)));
      expect(await store.quarantineStats()).toEqual({ quarantined: 3, repaired: 0 });
      expect((await store.listQuarantine()).every((r) => r.foundBy === "scrub")).toBe(true);
      // A second pass finds nothing more: what was damaged is no longer among the stored objects.
      const again = await store.scrub(null, Number.MAX_SAFE_INTEGER);
      expect(again.checkedObjects).toBe(37);
      expect(again.corrupt).toEqual([]);
      expect(again.nextAfterId).toBeNull();
    });

    test("scrub of an empty store ends the pass at once", async () => {
      expect(await store.scrub(null, 1000)).toEqual({ checkedObjects: 0, checkedBytes: 0, corrupt: [], nextAfterId: null });
    });
  });
}
