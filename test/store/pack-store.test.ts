import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { join } from "node:path";
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { blake3 } from "../../src/core/blake3.ts";
import { CorruptObjectError } from "../../src/store/object-store.ts";
import { PACK_HEADER_LENGTH_BYTES, RECORD_HEADER_LENGTH_BYTES, writeRecordHeader } from "../../src/store/pack-format.ts";
import { StoreInUseError } from "../../src/store/pack-index.ts";
import { INDEX_FILE_NAME, PackObjectStore, PACKS_DIR_NAME, type PackObjectStoreOptions } from "../../src/store/pack-store.ts";
import {
  collect,
  compressibleObject,
  hexSet,
  randomObject,
  runObjectStoreConformance,
  runQuarantineConformance,
  runUsageTrackingConformance,
  smallObject,
} from "./conformance.ts";
import { findRecord, packPaths } from "../helpers/pack-files.ts";
import { cleanupTempDirs, tempDir as tempDirUnder } from "../helpers/processes.ts";

afterAll(() => cleanupTempDirs());

const tempDir = () => tempDirUnder("dsync-pack-store-");

function packBytesTotal(dir: string): number {
  return packPaths(dir).reduce((sum, path) => sum + fs.statSync(path).size, 0);
}

function flipByte(path: string, offsetBytes: number): void {
  const bytes = fs.readFileSync(path);
  bytes[offsetBytes] = bytes[offsetBytes]! ^ 0x5a;
  fs.writeFileSync(path, bytes);
}

runObjectStoreConformance("PackObjectStore", () => PackObjectStore.open(tempDir()));
runObjectStoreConformance("PackObjectStore with 1 MiB packs, no compression", () =>
  PackObjectStore.open(tempDir(), { packSizeBytesMax: 1 << 20, compression: false }),
);
runUsageTrackingConformance("PackObjectStore", (nowMs) => PackObjectStore.open(tempDir(), { nowMs }));

/** Flips one payload byte of an object's record in place, under the open store, as a failing disk would. */
async function damageRecord(store: PackObjectStore, id: ObjectId): Promise<void> {
  const { path, offsetBytes } = findRecord(store.dir, id);
  const fd = fs.openSync(path, "r+");
  try {
    const one = new Uint8Array(1);
    const at = offsetBytes + RECORD_HEADER_LENGTH_BYTES + 7;
    fs.readSync(fd, one, 0, 1, at);
    one[0] = one[0]! ^ 0x5a;
    fs.writeSync(fd, one, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

runQuarantineConformance("PackObjectStore", () => PackObjectStore.open(tempDir()), damageRecord);

describe("PackObjectStore on disk", () => {
  test("writes go on after the write buffer was let go, between and after batches", async () => {
    const store = await PackObjectStore.open(tempDir());
    const objects = [0, 1, 2].map((n) => {
      const bytes = new TextEncoder().encode(`object ${n} `.repeat(100 + n));
      return { id: blake3(bytes), bytes };
    });
    await store.putMany([objects[0]!]);
    store.releaseBuffers();
    const both = store.putMany([objects[1]!]);
    store.releaseBuffers();
    await both;
    await store.putMany([objects[2]!]);
    expect((await store.getMany(objects.map((o) => o.id))).map((b) => new TextDecoder().decode(b))).toEqual(objects.map((o) => new TextDecoder().decode(o.bytes)));
    await store.close();
  });

  test("reopening keeps every object, deletion and count", async () => {
    const dir = tempDir();
    const objects = [...Array.from({ length: 300 }, (_, i) => smallObject(i)), randomObject(100_000), compressibleObject(200_000, 1)];
    const store = await PackObjectStore.open(dir);
    await store.putMany(objects);
    await store.deleteMany(objects.slice(0, 50).map((o) => o.id));
    const stats = await store.stats();
    await store.close();

    const reopened = await PackObjectStore.open(dir);
    expect(reopened.recovery).toEqual({ rebuiltIndex: false, recordsIndexed: 0, recordsQuarantined: 0, damagedIndex: null, recordsRecovered: 0, truncatedBytes: 0, packFilesRemoved: 0 });
    expect(await reopened.stats()).toEqual(stats);
    expect(await reopened.hasMany(objects.slice(0, 50).map((o) => o.id))).toEqual(Array(50).fill(false));
    expect(await reopened.getMany(objects.slice(50).map((o) => o.id))).toEqual(objects.slice(50).map((o) => o.bytes));
    expect(await reopened.verifyAll()).toEqual([]);
    await reopened.close();
  });

  test("a second open of the same directory is refused while the first is open", async () => {
    const dir = tempDir();
    const store = await PackObjectStore.open(dir);
    await expect(PackObjectStore.open(dir)).rejects.toBeInstanceOf(StoreInUseError);
    await store.close();
    const again = await PackObjectStore.open(dir);
    await again.close();
  });

  test("compressible data is stored smaller; incompressible data and compression: false store raw", async () => {
    const compressible = Array.from({ length: 20 }, (_, i) => compressibleObject(64 * 1024, i));
    const incompressible = Array.from({ length: 20 }, () => randomObject(64 * 1024));

    const store = await PackObjectStore.open(tempDir());
    await store.putMany(compressible);
    const compressed = await store.stats();
    expect(compressed.rawBytes).toBe(20 * 64 * 1024);
    expect(compressed.storedBytes).toBeLessThan(compressed.rawBytes / 10);
    await store.putMany(incompressible);
    const mixed = await store.stats();
    expect(mixed.storedBytes - compressed.storedBytes).toBe(20 * 64 * 1024);
    await store.close();

    const raw = await PackObjectStore.open(tempDir(), { compression: false });
    await raw.putMany(compressible);
    const rawStats = await raw.stats();
    expect(rawStats.storedBytes).toBe(rawStats.rawBytes);
    expect(await raw.getMany(compressible.map((o) => o.id))).toEqual(compressible.map((o) => o.bytes));
    await raw.close();
  });

  test("packs roll over at the size cap", async () => {
    const dir = tempDir();
    const packSizeBytesMax = 64 * 1024;
    const objects = Array.from({ length: 40 }, () => randomObject(10_000));
    const big = randomObject(100_000);
    const store = await PackObjectStore.open(dir, { packSizeBytesMax });
    await store.putMany(objects.slice(0, 15));
    await store.putMany([...objects.slice(15), big]);
    const paths = packPaths(dir);
    expect(paths.length).toBeGreaterThanOrEqual(7);
    for (const path of paths) {
      const sizeBytes = fs.statSync(path).size;
      // Only a record larger than the cap may exceed it, alone in its pack.
      if (sizeBytes > packSizeBytesMax) expect(sizeBytes).toBe(PACK_HEADER_LENGTH_BYTES + RECORD_HEADER_LENGTH_BYTES + 100_000);
    }
    await store.close();
    const reopened = await PackObjectStore.open(dir, { packSizeBytesMax });
    const all = [...objects, big];
    expect(await reopened.getMany(all.map((o) => o.id))).toEqual(all.map((o) => o.bytes));
    await reopened.put(smallObject(1).id, smallObject(1).bytes);
    expect(await reopened.verifyAll()).toEqual([]);
    await reopened.close();
  });

  test("a flipped byte is reported as corruption by get and verifyAll, never returned, and quarantined", async () => {
    const dir = tempDir();
    const [plain, packed, header, healthy] = [randomObject(5000), compressibleObject(50_000, 1), randomObject(3000), randomObject(7000)];
    const store = await PackObjectStore.open(dir);
    await store.putMany([plain, packed, header, healthy]);
    await store.close();

    const plainRecord = findRecord(dir, plain.id);
    flipByte(plainRecord.path, plainRecord.offsetBytes + RECORD_HEADER_LENGTH_BYTES + 2500);
    const packedRecord = findRecord(dir, packed.id);
    flipByte(packedRecord.path, packedRecord.offsetBytes + RECORD_HEADER_LENGTH_BYTES + 40);
    const headerRecord = findRecord(dir, header.id);
    flipByte(headerRecord.path, headerRecord.offsetBytes + 9); // raw length

    const reopened = await PackObjectStore.open(dir);
    // Presence comes from the index; only reading finds the damage.
    expect(await reopened.has(plain.id)).toBe(true);
    await expect(reopened.get(plain.id)).rejects.toBeInstanceOf(CorruptObjectError);
    await expect(reopened.getMany([healthy.id, packed.id])).rejects.toBeInstanceOf(CorruptObjectError);
    expect(await reopened.get(healthy.id)).toEqual(healthy.bytes);
    // What a read found corrupt is quarantined: absent from then on, so it gets sent again.
    expect(await reopened.hasMany([plain.id, packed.id, header.id])).toEqual([false, false, true]);
    const progress: number[] = [];
    const problems = await reopened.verifyAll((p) => progress.push(p.checkedObjects));
    expect(hexSet(problems.map((p) => p.id))).toEqual(hexSet([header.id]));
    expect(problems.every((p) => p.detail.length > 0)).toBe(true);
    expect(progress.at(-1)).toBe(2);
    expect(await reopened.has(header.id)).toBe(false);
    const quarantine = await reopened.listQuarantine();
    expect(quarantine.map((r) => [idToHex(r.id), r.foundBy]).sort()).toEqual(
      [
        [idToHex(plain.id), "read"],
        [idToHex(packed.id), "read"],
        [idToHex(header.id), "verify"],
      ].sort(),
    );
    await reopened.close();
    // The quarantine outlives a restart.
    const again = await PackObjectStore.open(dir);
    expect(await again.quarantineStats()).toEqual({ quarantined: 3, repaired: 0 });
    expect(await again.verifyAll()).toEqual([]);
    await again.close();
  });

  test("a missing or shortened pack is reported as corruption", async () => {
    const dir = tempDir();
    const first = Array.from({ length: 5 }, () => randomObject(20_000));
    const second = Array.from({ length: 5 }, () => randomObject(20_000));
    const store = await PackObjectStore.open(dir, { packSizeBytesMax: 110_000 });
    await store.putMany(first);
    await store.putMany(second);
    await store.close();
    const [firstPack, secondPack] = packPaths(dir);
    fs.rmSync(firstPack!);
    fs.truncateSync(secondPack!, fs.statSync(secondPack!).size - 10);

    const reopened = await PackObjectStore.open(dir, { packSizeBytesMax: 110_000 });
    await expect(reopened.get(first[0]!.id)).rejects.toThrow(/missing/);
    await expect(reopened.get(second[4]!.id)).rejects.toBeInstanceOf(CorruptObjectError);
    expect(await reopened.get(second[0]!.id)).toEqual(second[0]!.bytes);
    // The two read above are quarantined already; verifyAll finds the rest of the missing pack.
    const problems = await reopened.verifyAll();
    expect(hexSet(problems.map((p) => p.id))).toEqual(hexSet(first.slice(1).map((o) => o.id)));
    expect(await reopened.quarantineStats()).toEqual({ quarantined: 6, repaired: 0 });
    // New writes go after the damage and stay readable.
    const later = randomObject(1000);
    await reopened.put(later.id, later.bytes);
    expect(await reopened.get(later.id)).toEqual(later.bytes);
    await reopened.close();
  });

  test("records that follow the committed end whole are indexed again on open; from the first torn one on, all is cut off and never indexed", async () => {
    const dir = tempDir();
    const objects = Array.from({ length: 30 }, (_, i) => (i % 2 ? randomObject(3000) : compressibleObject(3000, i)));
    const store = await PackObjectStore.open(dir);
    await store.putMany(objects);
    await store.close();
    const [packPath] = packPaths(dir);
    const acknowledgedBytes = fs.statSync(packPath!).size;

    // What a crash leaves: one whole record past the committed end (flushed, its index row lost
    // with a commit that did not wait for the disk), one torn record, garbage, and a whole record
    // after them (of a batch never acknowledged, since the one before it is torn).
    const whole = randomObject(2000);
    const torn = randomObject(64 * 1024);
    const after = randomObject(1000);
    const tail = new Uint8Array(RECORD_HEADER_LENGTH_BYTES * 3 + 2000 + 5000 + 777 + 1000);
    writeRecordHeader(tail, 0, { id: whole.id, flags: 0, rawLengthBytes: 2000, storedLengthBytes: 2000 });
    tail.set(whole.bytes, RECORD_HEADER_LENGTH_BYTES);
    const tornAt = RECORD_HEADER_LENGTH_BYTES + 2000;
    writeRecordHeader(tail, tornAt, { id: torn.id, flags: 0, rawLengthBytes: 64 * 1024, storedLengthBytes: 64 * 1024 });
    tail.set(torn.bytes.subarray(0, 5000), tornAt + RECORD_HEADER_LENGTH_BYTES);
    tail.fill(0xab, tornAt + RECORD_HEADER_LENGTH_BYTES + 5000);
    const afterAt = tornAt + RECORD_HEADER_LENGTH_BYTES + 5000 + 777;
    writeRecordHeader(tail, afterAt, { id: after.id, flags: 0, rawLengthBytes: 1000, storedLengthBytes: 1000 });
    tail.set(after.bytes, afterAt + RECORD_HEADER_LENGTH_BYTES);
    fs.appendFileSync(packPath!, tail);

    const reopened = await PackObjectStore.open(dir);
    expect(reopened.recovery.recordsRecovered).toBe(1);
    expect(reopened.recovery.truncatedBytes).toBe(tail.length - tornAt);
    expect(fs.statSync(packPath!).size).toBe(acknowledgedBytes + tornAt);
    expect(await reopened.hasMany([whole.id, torn.id, after.id])).toEqual([true, false, false]);
    expect(await reopened.get(whole.id)).toEqual(whole.bytes);
    expect(await reopened.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    expect(await collect(reopened.list())).toHaveLength(objects.length + 1);
    objects.push(whole);
    const more = [randomObject(4000), compressibleObject(9000, 99)];
    await reopened.putMany(more);
    await reopened.close();

    const again = await PackObjectStore.open(dir);
    expect(again.recovery.truncatedBytes).toBe(0);
    expect(await again.getMany([...objects, ...more].map((o) => o.id))).toEqual([...objects, ...more].map((o) => o.bytes));
    expect(await again.verifyAll()).toEqual([]);
    await again.close();
  });

  test("a pack file with nothing acknowledged is removed on open", async () => {
    const dir = tempDir();
    const object = randomObject(1000);
    const store = await PackObjectStore.open(dir);
    await store.put(object.id, object.bytes);
    await store.close();
    const stray = join(dir, PACKS_DIR_NAME, "00000002.pack");
    fs.writeFileSync(stray, new Uint8Array(100));
    const reopened = await PackObjectStore.open(dir);
    expect(reopened.recovery.packFilesRemoved).toBe(1);
    expect(fs.existsSync(stray)).toBe(false);
    expect(await reopened.get(object.id)).toEqual(object.bytes);
    await reopened.close();
  });

  test("a writer killed mid-stream loses nothing it acknowledged and indexes nothing half-written", async () => {
    // The delays make the kill land at different points of a batch: hashing, writing, flushing, committing.
    for (const [acknowledgedBatchesBeforeKill, killDelayMs] of [[3, 0], [10, 7], [25, 2]] as const) {
      const dir = tempDir();
      const acknowledged = await runAndKillWriter(dir, acknowledgedBatchesBeforeKill, killDelayMs);
      expect(acknowledged.length).toBeGreaterThanOrEqual(acknowledgedBatchesBeforeKill * 16);

      const store = await PackObjectStore.open(dir, { packSizeBytesMax: 512 * 1024 });
      expect(await store.hasMany(acknowledged)).toEqual(acknowledged.map(() => true));
      for (const id of acknowledged) expect((await store.get(id))!.length).toBeGreaterThan(0);
      const listed = await collect(store.list());
      expect(listed.length).toBeGreaterThanOrEqual(acknowledged.length);
      expect((await store.stats()).objects).toBe(listed.length);
      expect(await store.verifyAll()).toEqual([]);
      const after = randomObject(5000);
      await store.put(after.id, after.bytes);
      await store.close();

      const again = await PackObjectStore.open(dir, { packSizeBytesMax: 512 * 1024 });
      expect(again.recovery.truncatedBytes + again.recovery.packFilesRemoved).toBe(0);
      expect(await again.get(after.id)).toEqual(after.bytes);
      await again.close();
    }
  }, 20_000);

  test("repack reclaims the space of deleted objects and keeps live ones readable", async () => {
    const dir = tempDir();
    const options: PackObjectStoreOptions = { packSizeBytesMax: 256 * 1024 };
    const objects = Array.from({ length: 200 }, (_, i) => (i % 4 ? randomObject(8000) : compressibleObject(8000, i)));
    const live = objects.filter((_, i) => i % 5 === 0);
    const dead = objects.filter((_, i) => i % 5 !== 0);
    const store = await PackObjectStore.open(dir, options);
    await store.putMany(objects);
    await store.deleteMany(dead.map((o) => o.id));
    const bytesBefore = packBytesTotal(dir);
    const statsBefore = await store.stats();

    const report = await store.repack();
    expect(report.packFilesRemoved).toBeGreaterThan(0);
    expect(report.objectsMoved).toBe(live.length);
    expect(report.corruptIds).toEqual([]);
    const bytesAfter = packBytesTotal(dir);
    expect(bytesAfter).toBeLessThan(bytesBefore * 0.35);
    expect(report.bytesReclaimed).toBe(bytesBefore - bytesAfter);
    expect(await store.stats()).toEqual(statsBefore);
    expect(await store.getMany(live.map((o) => o.id))).toEqual(live.map((o) => o.bytes));
    expect(await store.hasMany(dead.map((o) => o.id))).toEqual(dead.map(() => false));
    // Nothing left to gain: a second run changes nothing.
    expect((await store.repack()).packFilesRemoved).toBe(0);

    const more = randomObject(9000);
    await store.put(more.id, more.bytes);
    await store.close();
    const reopened = await PackObjectStore.open(dir, options);
    expect(reopened.recovery.packFilesRemoved + reopened.recovery.truncatedBytes).toBe(0);
    expect(await reopened.getMany([...live, more].map((o) => o.id))).toEqual([...live, more].map((o) => o.bytes));
    expect(await reopened.verifyAll()).toEqual([]);
    await reopened.close();
  });

  test("repack empties a mostly dead active pack, but keeps a pack with a corrupt record until a good copy is stored", async () => {
    const dir = tempDir();
    const objects = Array.from({ length: 20 }, () => randomObject(10_000));
    const store = await PackObjectStore.open(dir);
    await store.putMany(objects);
    await store.deleteMany(objects.slice(2).map((o) => o.id));
    await store.close();
    const damaged = findRecord(dir, objects[1]!.id);
    flipByte(damaged.path, damaged.offsetBytes + RECORD_HEADER_LENGTH_BYTES + 10);

    const reopened = await PackObjectStore.open(dir);
    const packBytesBefore = packBytesTotal(dir);
    const report = await reopened.repack();
    // The damaged record may be all there is of that object: its pack stays.
    expect(report.packFilesRemoved).toBe(0);
    expect(report.objectsMoved).toBe(1);
    expect(hexSet(report.corruptIds)).toEqual(hexSet([objects[1]!.id]));
    expect(await reopened.get(objects[0]!.id)).toEqual(objects[0]!.bytes);
    expect(await reopened.has(objects[1]!.id)).toBe(false);
    expect((await reopened.listQuarantine()).map((r) => r.foundBy)).toEqual(["repack"]);
    expect(packBytesTotal(dir)).toBe(packBytesBefore + PACK_HEADER_LENGTH_BYTES + RECORD_HEADER_LENGTH_BYTES + 10_000);
    expect(await reopened.stats()).toEqual({ objects: 1, storedBytes: 10_000, rawBytes: 10_000 });
    // A later repack leaves it too; once a good copy is stored, the old pack is garbage.
    expect((await reopened.repack({ liveRatioMin: 1.01 })).packFilesRemoved).toBe(1);
    expect(fs.existsSync(damaged.path)).toBe(true);
    await reopened.put(objects[1]!.id, objects[1]!.bytes);
    expect(await reopened.quarantineStats()).toEqual({ quarantined: 0, repaired: 1 });
    const afterRepair = await reopened.repack({ liveRatioMin: 0.99 });
    expect(afterRepair.packFilesRemoved).toBeGreaterThanOrEqual(1);
    expect(fs.existsSync(damaged.path)).toBe(false);
    expect(await reopened.getMany([objects[0]!.id, objects[1]!.id])).toEqual([objects[0]!.bytes, objects[1]!.bytes]);
    await reopened.close();
  });

  test("repack running alongside puts, deletes and reads keeps every count and object right", async () => {
    const dir = tempDir();
    const store = await PackObjectStore.open(dir, { packSizeBytesMax: 128 * 1024 });
    const first = Array.from({ length: 120 }, () => randomObject(6000));
    await store.putMany(first);
    const doomed = first.filter((_, i) => i % 3 !== 0);
    const later = Array.from({ length: 60 }, (_, i) => compressibleObject(6000, i));
    const reads = first.filter((_, i) => i % 3 === 0);
    const [report, , , readBack] = await Promise.all([
      store.repack({ liveRatioMin: 0.9 }),
      store.deleteMany(doomed.map((o) => o.id)),
      Promise.all([0, 20, 40].map((start) => store.putMany(later.slice(start, start + 20)))),
      store.getMany(reads.map((o) => o.id)),
      store.repack({ liveRatioMin: 0.9 }),
    ]);
    expect(report.corruptIds).toEqual([]);
    expect(readBack).toEqual(reads.map((o) => o.bytes));
    const live = [...reads, ...later];
    const listed = await collect(store.list());
    expect(hexSet(listed)).toEqual(hexSet(live.map((o) => o.id)));
    expect((await store.stats()).objects).toBe(live.length);
    expect(await store.getMany(live.map((o) => o.id))).toEqual(live.map((o) => o.bytes));
    expect(await store.verifyAll()).toEqual([]);
    await store.close();
    const reopened = await PackObjectStore.open(dir, { packSizeBytesMax: 128 * 1024 });
    expect(reopened.recovery.truncatedBytes + reopened.recovery.packFilesRemoved).toBe(0);
    expect((await reopened.stats()).objects).toBe(live.length);
    await reopened.close();
  });

  test("a missing index is rebuilt from the packs", async () => {
    const dir = tempDir();
    const objects = [...Array.from({ length: 100 }, (_, i) => smallObject(i)), compressibleObject(30_000, 1), randomObject(30_000)];
    const store = await PackObjectStore.open(dir, { packSizeBytesMax: 32 * 1024 });
    await store.putMany(objects);
    const stats = await store.stats();
    await store.close();
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(join(dir, INDEX_FILE_NAME + suffix), { force: true });

    const reopened = await PackObjectStore.open(dir, { packSizeBytesMax: 32 * 1024 });
    expect(reopened.recovery.rebuiltIndex).toBe(true);
    expect(reopened.recovery.recordsIndexed).toBe(objects.length);
    expect(await reopened.stats()).toEqual(stats);
    expect(await reopened.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    await reopened.close();
  });

  test("a rebuild counts an object found in two packs once", async () => {
    // What a repack interrupted before unlinking its source leaves behind.
    const dir = tempDir();
    const objects = Array.from({ length: 10 }, () => randomObject(3000));
    const store = await PackObjectStore.open(dir);
    await store.putMany(objects);
    const [packPath] = packPaths(dir);
    fs.copyFileSync(packPath!, join(dir, PACKS_DIR_NAME, "00000002.pack"));
    const report = await store.rebuildIndex();
    expect(report.recordsIndexed).toBe(20);
    expect(await store.stats()).toEqual({ objects: 10, storedBytes: 30_000, rawBytes: 30_000 });
    // The second pack now holds only dead copies, so repack removes it.
    const repacked = await store.repack();
    expect(repacked.packFilesRemoved).toBe(1);
    expect(await store.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    await store.close();
  });

  test("rebuildIndex skips a damaged record and keeps the ones after it", async () => {
    const dir = tempDir();
    const objects = Array.from({ length: 10 }, () => randomObject(5000));
    const store = await PackObjectStore.open(dir);
    await store.putMany(objects);
    const damaged = findRecord(dir, objects[4]!.id);
    flipByte(damaged.path, damaged.offsetBytes); // the record magic
    const report = await store.rebuildIndex();
    expect(report.rebuiltIndex).toBe(true);
    expect(report.recordsIndexed).toBe(9);
    expect(await store.has(objects[4]!.id)).toBe(false);
    const rest = objects.filter((_, i) => i !== 4);
    expect(await store.getMany(rest.map((o) => o.id))).toEqual(rest.map((o) => o.bytes));
    // The damaged record is inside the acknowledged range, so it is kept, not truncated.
    expect(report.truncatedBytes).toBe(0);
    await store.close();
  });
});

/**
 * Runs a child process that writes batches in a loop and prints each batch's ids once putMany
 * has resolved, and SIGKILLs it `killDelayMs` after `batchesBeforeKill` acknowledgements. Returns the
 * acknowledged ids.
 */
async function runAndKillWriter(dir: string, batchesBeforeKill: number, killDelayMs: number): Promise<ObjectId[]> {
  const storeModule = join(import.meta.dir, "../../src/store/pack-store.ts");
  const blake3Module = join(import.meta.dir, "../../src/core/blake3.ts");
  const script = join(tempDirUnder("dsync-pack-store-writer-"), "writer.ts");
  fs.writeFileSync(
    script,
    `
    import { randomBytes } from "node:crypto";
    import { PackObjectStore } from ${JSON.stringify(storeModule)};
    import { blake3 } from ${JSON.stringify(blake3Module)};
    const store = await PackObjectStore.open(${JSON.stringify(dir)}, { packSizeBytesMax: 512 * 1024 });
    for (let batch = 0; ; batch++) {
      const objects = Array.from({ length: 16 }, (_, i) => {
        const bytes = i % 3 === 0 ? new TextEncoder().encode(("batch " + batch + " object " + i + " ").repeat(300)) : new Uint8Array(randomBytes(1000 + i * 2000));
        return { id: blake3(bytes), bytes };
      });
      await store.putMany(objects);
      process.stdout.write(objects.map((o) => Buffer.from(o.id).toString("hex") + "\\n").join(""));
    }
    `,
  );
  const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit" });
  const acknowledged: ObjectId[] = [];
  let pending = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) acknowledged.push(idFromHex(line));
    if (acknowledged.length >= batchesBeforeKill * 16) {
      await Bun.sleep(killDelayMs);
      child.kill("SIGKILL");
      break;
    }
  }
  await child.exited;
  expect(child.signalCode).toBe("SIGKILL");
  return acknowledged;
}
