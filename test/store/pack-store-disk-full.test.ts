// The pack store on a real, tiny file system that fills up: whichever write runs out of space
// (a pack append, its flush, or SQLite's log), the put fails with an out-of-space error, the
// store keeps working without being reopened once space is free, and nothing is left to cut.
// Needs to mount a tmpfs (root, as in CI); if the mount fails the test fails, saying why.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isOutOfSpaceError } from "../../src/store/out-of-space.ts";
import { PackObjectStore } from "../../src/store/pack-store.ts";
import { createPrng } from "../helpers/prng.ts";
import { objectOf } from "./conformance.ts";

const DISK_BYTES = 2 * 1024 * 1024;
const mountDir = mkdtempSync(join(tmpdir(), "dsync-store-full-"));
let mounted = false;

beforeAll(() => {
  const result = spawnSync(["mount", "-t", "tmpfs", "-o", `size=${DISK_BYTES}`, "tmpfs", mountDir]);
  if (result.exitCode !== 0) {
    throw new Error(`this test needs to mount a small tmpfs at ${mountDir} (${result.stderr.toString().trim()}); run the tests as root or in a container allowed to mount tmpfs`);
  }
  mounted = true;
});

afterAll(() => {
  if (mounted) spawnSync(["umount", mountDir]);
  rmSync(mountDir, { recursive: true, force: true });
});

function packBytes(dir: string): number {
  const packsDir = join(dir, "packs");
  return readdirSync(packsDir).reduce((sum, name) => sum + statSync(join(packsDir, name)).size, 0);
}

function fillDisk(path: string): void {
  const stats = statfsSync(mountDir);
  const freeBytes = stats.bavail * stats.bsize;
  try {
    writeFileSync(path, new Uint8Array(freeBytes));
  } catch {
    // Full already, or filled up to the last block: either way no space is left.
  }
}

test("a put on a full disk fails as out of space; once space is free the same store works and nothing is left to cut", async () => {
  expect(mounted).toBe(true);
  const dir = join(mountDir, "store");
  const random = createPrng(3);
  const kept = Array.from({ length: 3 }, () => objectOf(random.bytes(20_000)));
  let store = await PackObjectStore.open(dir, { compression: false });
  await store.putMany(kept);
  const packBytesBefore = packBytes(dir);

  fillDisk(join(mountDir, "filler"));
  const failures: unknown[] = [];
  // New objects of several sizes: the small ones may fit in a pack's last block and fail in SQLite instead.
  for (const lengthBytes of [100_000, 3_000, 10]) {
    try {
      await store.putMany([objectOf(random.bytes(lengthBytes))]);
    } catch (error) {
      failures.push(error);
    }
  }
  // Touching present objects writes only to SQLite.
  try {
    await store.putMany(kept);
  } catch (error) {
    failures.push(error);
  }
  expect(failures.length).toBeGreaterThan(0);
  for (const error of failures) expect(isOutOfSpaceError(error)).toBe(true);
  // What the failed batches wrote was cut off at once: the packs hold what they held before.
  expect(packBytes(dir)).toBe(packBytesBefore);

  rmSync(join(mountDir, "filler"));
  const after = Array.from({ length: 3 }, () => objectOf(random.bytes(30_000)));
  await store.putMany(after);
  for (const object of [...kept, ...after]) expect(Buffer.from((await store.get(object.id))!)).toEqual(Buffer.from(object.bytes));
  expect(await store.verifyAll()).toEqual([]);
  await store.close();

  // The failed batches were cut off when they failed, not left for the next open.
  store = await PackObjectStore.open(dir, { compression: false });
  expect(store.recovery).toMatchObject({ truncatedBytes: 0, packFilesRemoved: 0 });
  expect(await store.verifyAll()).toEqual([]);
  await store.close();
});
