// A damaged index.sqlite does not keep the store from opening: the index is derived data (every
// record in a pack carries its id), so the damaged file is moved aside (kept, never deleted) and
// the index rebuilt from the packs, each record re-verified by its hash. A record that fails is
// not indexed but quarantined, so its pack is kept until a good copy is stored.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { RECORD_HEADER_LENGTH_BYTES } from "../../src/store/pack-format.ts";
import { StoreInUseError } from "../../src/store/pack-index.ts";
import { INDEX_FILE_NAME, PackObjectStore, PACKS_DIR_NAME } from "../../src/store/pack-store.ts";
import { findRecord, packPaths } from "../helpers/pack-files.ts";
import { cleanupTempDirs, tempDir as tempDirUnder } from "../helpers/processes.ts";

afterAll(() => cleanupTempDirs());

const tempDir = () => tempDirUnder("dsync-index-damage-");

/** Random bytes: no two alike, and incompressible, so each is stored as it is. */
function randomObject(sizeBytes: number): { id: ObjectId; bytes: Uint8Array } {
  const bytes = crypto.getRandomValues(new Uint8Array(sizeBytes));
  return { id: blake3(bytes) as ObjectId, bytes };
}

/** Flips a payload byte of an object's record, as a failing disk would. */
function damagePayload(dir: string, id: ObjectId): void {
  const { path, offsetBytes } = findRecord(dir, id);
  const bytes = fs.readFileSync(path);
  bytes[offsetBytes + RECORD_HEADER_LENGTH_BYTES + 7]! ^= 0x5a;
  fs.writeFileSync(path, bytes);
}

/** Overwrites part of the index's third page with 0xff: SQLite then reports it malformed. */
function damageIndexPage(dir: string): Buffer {
  const path = join(dir, INDEX_FILE_NAME);
  const bytes = fs.readFileSync(path);
  expect(bytes.length).toBeGreaterThan(4 * 4096);
  bytes.fill(0xff, 2 * 4096 + 8, 2 * 4096 + 400);
  fs.writeFileSync(path, bytes);
  return bytes;
}

function damagedCopies(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => name.startsWith(`${INDEX_FILE_NAME}.damaged-`));
}

async function filledStore(count: number, sizeBytes: number) {
  const dir = tempDir();
  const objects = Array.from({ length: count }, () => randomObject(sizeBytes));
  const store = await PackObjectStore.open(dir);
  await store.putMany(objects);
  const stats = await store.stats();
  await store.close();
  return { dir, objects, stats };
}

describe("a damaged object index", () => {
  test("with a malformed page: moved aside, rebuilt from the packs, and every object reads back", async () => {
    const { dir, objects, stats } = await filledStore(3000, 100);
    const damagedBytes = damageIndexPage(dir);
    const store = await PackObjectStore.open(dir, { nowMs: () => Date.UTC(2026, 11, 1, 9, 30) });
    const { damagedIndex } = store.recovery;
    expect(damagedIndex?.problem).toMatch(/malformed|corrupt|Tree|page/i);
    expect(damagedIndex?.movedTo).toBe(join(dir, `${INDEX_FILE_NAME}.damaged-2026-12-01T09-30-00-000Z`));
    // Kept as it was, not deleted.
    expect(fs.readFileSync(damagedIndex!.movedTo).equals(damagedBytes)).toBe(true);
    expect(store.recovery.rebuiltIndex).toBe(true);
    expect(store.recovery.recordsIndexed).toBe(objects.length);
    expect(store.recovery.truncatedBytes).toBe(0);
    expect(await store.stats()).toEqual(stats);
    expect(await store.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    expect(await store.integrityCheck()).toBe("ok");
    await store.close();
    // The next open finds a sound index and rebuilds nothing.
    const again = await PackObjectStore.open(dir);
    expect(again.recovery.damagedIndex).toBeNull();
    expect(again.recovery.rebuiltIndex).toBe(false);
    await again.close();
    expect(damagedCopies(dir)).toHaveLength(1);
  });

  test("that is not a database at all: moved aside and rebuilt; a second damage gets its own name", async () => {
    const { dir, objects } = await filledStore(20, 3000);
    const nowMs = () => Date.UTC(2026, 11, 1, 9, 31);
    for (let round = 1; round <= 2; round++) {
      fs.writeFileSync(join(dir, INDEX_FILE_NAME), Buffer.alloc(8192, 0x41));
      const store = await PackObjectStore.open(dir, { nowMs });
      expect(store.recovery.damagedIndex?.problem).toContain("not a database");
      expect(await store.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
      await store.close();
      expect(damagedCopies(dir)).toHaveLength(round);
    }
    expect(damagedCopies(dir).sort()).toEqual([`${INDEX_FILE_NAME}.damaged-2026-12-01T09-31-00-000Z`, `${INDEX_FILE_NAME}.damaged-2026-12-01T09-31-00-000Z-2`]);
  });

  test("a damaged record found by the rebuild is quarantined, kept by repack and by the tail cut, and garbage once a good copy is stored", async () => {
    const { dir, objects } = await filledStore(10, 5000);
    // The last record of the pack: a rebuild that trusted only valid records would cut it off.
    const victim = objects[9]!;
    damagePayload(dir, victim.id);
    const damagedPack = fs.readFileSync(packPaths(dir)[0]!);
    damageIndexPage(dir);
    const store = await PackObjectStore.open(dir);
    expect(store.recovery.damagedIndex).not.toBeNull();
    expect(store.recovery.recordsIndexed).toBe(9);
    expect(store.recovery.recordsQuarantined).toBe(1);
    expect(store.recovery.truncatedBytes).toBe(0);
    expect(await store.has(victim.id)).toBe(false);
    const quarantined = await store.listQuarantine({ unrepairedOnly: true });
    expect(quarantined.map((q) => [idToHex(q.id), q.foundBy])).toEqual([[idToHex(victim.id), "rebuild"]]);
    expect(quarantined[0]!.detail).toContain("content hashes to");

    // Every other object deleted: repack would rewrite this pack, but it holds the only copy of the damaged record.
    await store.deleteMany(objects.slice(0, 9).map((o) => o.id));
    const kept = await store.repack();
    expect(kept.packFilesRemoved).toBe(0);
    expect(fs.readFileSync(packPaths(dir)[0]!).equals(damagedPack)).toBe(true);

    // A good copy stored: the damaged record is garbage now, and repack reclaims its pack.
    await store.put(victim.id, victim.bytes);
    expect(await store.quarantineStats()).toEqual({ quarantined: 0, repaired: 1 });
    const reclaimed = await store.repack();
    expect(reclaimed.packFilesRemoved).toBe(1);
    expect(await store.get(victim.id)).toEqual(victim.bytes);
    await store.close();
  });

  test("a damaged record with a good copy in an earlier pack is not quarantined", async () => {
    const dir = tempDir();
    const objects = Array.from({ length: 4 }, () => randomObject(4000));
    const store = await PackObjectStore.open(dir);
    await store.putMany(objects);
    await store.close();
    // A second pack holding a damaged copy of the same records (what an interrupted repack can leave).
    const [first] = packPaths(dir);
    const copy = join(dir, PACKS_DIR_NAME, "00000002.pack");
    fs.copyFileSync(first!, copy);
    const bytes = fs.readFileSync(copy);
    const at = bytes.indexOf(objects[1]!.id) - 16 + RECORD_HEADER_LENGTH_BYTES + 3;
    bytes[at]! ^= 0x01;
    fs.writeFileSync(copy, bytes);
    damageIndexPageSmall(dir);
    const reopened = await PackObjectStore.open(dir);
    expect(reopened.recovery.damagedIndex).not.toBeNull();
    expect(reopened.recovery.recordsQuarantined).toBe(0);
    expect(await reopened.listQuarantine()).toEqual([]);
    expect(await reopened.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    await reopened.close();
  });

  test("an index in use by another store is refused, not moved aside", async () => {
    const { dir } = await filledStore(5, 1000);
    const store = await PackObjectStore.open(dir);
    await expect(PackObjectStore.open(dir)).rejects.toBeInstanceOf(StoreInUseError);
    expect(damagedCopies(dir)).toEqual([]);
    await store.close();
  });

  test("a log left without its database is moved aside, never replayed into a new index", async () => {
    const { dir, objects } = await filledStore(5, 1000);
    fs.rmSync(join(dir, INDEX_FILE_NAME));
    fs.writeFileSync(join(dir, `${INDEX_FILE_NAME}-wal`), Buffer.alloc(4096, 0x42));
    const store = await PackObjectStore.open(dir, { nowMs: () => Date.UTC(2026, 11, 1, 9, 32) });
    expect(store.recovery.rebuiltIndex).toBe(true);
    expect(await store.getMany(objects.map((o) => o.id))).toEqual(objects.map((o) => o.bytes));
    await store.close();
    expect(fs.existsSync(join(dir, `${INDEX_FILE_NAME}.damaged-2026-12-01T09-32-00-000Z-wal`))).toBe(true);
  });
});

/** For a small index: the whole file after its first page overwritten, so any read of it fails. */
function damageIndexPageSmall(dir: string): void {
  const path = join(dir, INDEX_FILE_NAME);
  const bytes = fs.readFileSync(path);
  bytes.fill(0xff, 4096 + 8);
  fs.writeFileSync(path, bytes);
}
