// An upload group's index commit need not wait for the disk (one fsync per group, its pack's):
// the records are flushed before their rows commit, and a crash that takes the rows (the WAL's
// unsynced tail) leaves the records past each pack's committed end, where the next open indexes
// them again, in the old pack and in a new pack the index had no row for. What a failed batch
// left behind in a pack whose cut failed is sealed and never indexed, however whole it looks.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import * as fs from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { nodeFileSystem, type FileSystem } from "../../src/store/file-system.ts";
import { INDEX_FILE_NAME, PackObjectStore, PACKS_DIR_NAME } from "../../src/store/pack-store.ts";
import { createPrng } from "../helpers/prng.ts";
import { cleanupTempDirs, tempDir as tempDirUnder } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);
const tempDir = () => tempDirUnder("dsync-pack-lost-rows-");

function objectsOf(count: number, size: number, seed: number): { id: ObjectId; bytes: Uint8Array }[] {
  const prng = createPrng(seed);
  return Array.from({ length: count }, (_, i) => {
    const bytes = i % 2 === 0 ? prng.bytes(size) : new Uint8Array(size).map(() => 97 + prng.nextInt(4));
    return { id: blake3(bytes), bytes };
  });
}

/** What a crash that loses the last index commits leaves: rows and counters as they were after `keepIds`, the records still in the packs. */
function loseRowsExcept(dir: string, keptEnds: Map<number, number>): void {
  const db = new Database(join(dir, INDEX_FILE_NAME));
  try {
    db.transaction(() => {
      for (const { pack } of db.query<{ pack: number }, []>(`SELECT pack FROM packs`).all()) {
        const end = keptEnds.get(pack);
        if (end === undefined) {
          db.query(`DELETE FROM objects WHERE pack = ?`).run(pack);
          db.query(`DELETE FROM packs WHERE pack = ?`).run(pack);
          continue;
        }
        db.query(`DELETE FROM objects WHERE pack = ? AND "offset" >= ?`).run(pack, end);
        db.query(
          `UPDATE packs SET committed_end = ?, live_objects = (SELECT count(*) FROM objects WHERE pack = ?),
             live_stored_bytes = (SELECT coalesce(sum(stored_length), 0) FROM objects WHERE pack = ?),
             live_raw_bytes = (SELECT coalesce(sum(raw_length), 0) FROM objects WHERE pack = ?) WHERE pack = ?`,
        ).run(end, pack, pack, pack, pack);
      }
    })();
  } finally {
    db.close();
  }
}

function packSizes(dir: string): Map<number, number> {
  const packs = join(dir, PACKS_DIR_NAME);
  return new Map(fs.readdirSync(packs).filter((name) => name.endsWith(".pack")).map((name) => [Number(name.slice(0, 8)), fs.statSync(join(packs, name)).size]));
}

describe("index rows lost with a commit that did not wait for the disk", () => {
  test("are found again past the committed end, in the same pack and in a new one", async () => {
    const dir = tempDir();
    const options = { packSizeBytesMax: 1024 * 1024 };
    const first = objectsOf(40, 10_000, 1);
    const store = await PackObjectStore.open(dir, options);
    await store.putMany(first);
    await store.close();
    const keptEnds = packSizes(dir);
    expect(keptEnds.size).toBe(1);

    // More batches: the rest of the first pack, then past its cap into new ones.
    const later = [objectsOf(30, 10_000, 2), objectsOf(60, 20_000, 3), objectsOf(5, 3_000, 4)];
    const again = await PackObjectStore.open(dir, options);
    for (const batch of later) await again.putMany(batch);
    const statsBefore = await again.stats();
    await again.close();
    expect(packSizes(dir).size).toBeGreaterThan(1);

    loseRowsExcept(dir, keptEnds);
    const all = [first, ...later].flat();
    const recovered = await PackObjectStore.open(dir, options);
    try {
      expect(recovered.recovery).toMatchObject({ recordsRecovered: all.length - first.length, truncatedBytes: 0, packFilesRemoved: 0 });
      expect(await recovered.hasMany(all.map((o) => o.id))).toEqual(all.map(() => true));
      expect(await recovered.getMany(all.map((o) => o.id))).toEqual(all.map((o) => o.bytes));
      expect(await recovered.stats()).toEqual(statsBefore);
      expect(await recovered.verifyAll()).toEqual([]);
      const more = objectsOf(3, 5000, 5);
      await recovered.putMany(more);
      all.push(...more);
    } finally {
      await recovered.close();
    }
    const clean = await PackObjectStore.open(dir, options);
    try {
      expect(clean.recovery).toMatchObject({ recordsRecovered: 0, truncatedBytes: 0, packFilesRemoved: 0 });
      expect(await clean.getMany(all.map((o) => o.id))).toEqual(all.map((o) => o.bytes));
    } finally {
      await clean.close();
    }
  });

  test("the bytes of a failed batch whose cut failed are sealed: never indexed on open, and cut off", async () => {
    const dir = tempDir();
    const acknowledged = objectsOf(10, 8000, 6);
    const failed = objectsOf(10, 8000, 7);
    const afterwards = objectsOf(10, 8000, 8);
    let failFlushes = false;
    // A disk that fails a flush and then the truncate that would cut the batch off: the batch's
    // records stay in the pack, whole and hashing right (they sit in the page cache).
    const failing: FileSystem = {
      ...nodeFileSystem,
      fdatasync: (fd) => (failFlushes ? Promise.reject(Object.assign(new Error("EIO: flush failed"), { code: "EIO" })) : nodeFileSystem.fdatasync(fd)),
      truncate: (fd, lengthBytes) => {
        if (failFlushes) throw Object.assign(new Error("EIO: truncate failed"), { code: "EIO" });
        nodeFileSystem.truncate(fd, lengthBytes);
      },
    };
    const store = await PackObjectStore.open(dir, { fileSystem: failing });
    await store.putMany(acknowledged);
    const trustedEnd = packSizes(dir).get(1)!;
    failFlushes = true;
    await expect(store.putMany(failed)).rejects.toThrow(/flush failed/);
    failFlushes = false;
    // The cut failed: the failed batch's bytes are still there, and writes go to a new pack.
    expect(packSizes(dir).get(1)!).toBeGreaterThan(trustedEnd);
    await store.putMany(afterwards);
    await store.close();
    expect(packSizes(dir).size).toBe(2);

    const reopened = await PackObjectStore.open(dir);
    try {
      expect(reopened.recovery.recordsRecovered).toBe(0);
      expect(reopened.recovery.truncatedBytes).toBeGreaterThan(0);
      expect(packSizes(dir).get(1)).toBe(trustedEnd);
      expect(await reopened.hasMany(failed.map((o) => o.id))).toEqual(failed.map(() => false));
      expect(await reopened.getMany([...acknowledged, ...afterwards].map((o) => o.id))).toEqual([...acknowledged, ...afterwards].map((o) => o.bytes));
    } finally {
      await reopened.close();
    }
    // The seal went with the bytes it guarded.
    const db = new Database(join(dir, INDEX_FILE_NAME), { readonly: true });
    try {
      expect(db.query(`SELECT key FROM meta WHERE key LIKE 'sealed:%'`).all()).toEqual([]);
    } finally {
      db.close();
    }
  });
});
