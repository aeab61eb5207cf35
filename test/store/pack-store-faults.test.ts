// The pack store over a file system that fails and loses power (test/helpers/fault-fs.ts).
//
// For every injection point of a seeded workload (EIO or ENOSPC on each write, flush and
// rename; a power cut before each mutating step), then a power cut and a restart:
// - nothing acknowledged is lost: every put that resolved reads back, byte for byte;
// - no half object is visible: every indexed object verifies, torn tails are cut and leftover
//   packs removed on open (a second open finds nothing left to fix);
// - a failed flush fails its put, and the store never counts those bytes as safe later;
// - without a restart, the store keeps working once the fault has passed.
// And the order of the writes: a pack's header and name are durable before records go in, and
// at every acknowledgement the acknowledged bytes are already durable.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { idFromHex, idToHex } from "../../src/core/id.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { PACKS_DIR_NAME, PackObjectStore } from "../../src/store/pack-store.ts";
import { FaultFileSystem, type FaultCode, type FaultOperation, type FaultPoint } from "../helpers/fault-fs.ts";
import { createPrng } from "../helpers/prng.ts";
import { objectOf } from "./conformance.ts";
import { cleanupTempDirs, tempDir as tempDirUnder } from "../helpers/processes.ts";

afterAll(() => cleanupTempDirs());

const tempDir = () => tempDirUnder("dsync-pack-faults-");

/** Small packs, so a workload rolls over several times; no compression, so payloads can be found in pack bytes. */
const STORE_OPTIONS = { packSizeBytesMax: 48 * 1024, compression: false } as const;
const FAULT_CODES: FaultCode[] = ["EIO", "ENOSPC"];
const FAULT_OPERATIONS: FaultOperation[] = ["write", "fsync", "rename"];
/** One seed in the suite; DSYNC_FAULT_SEEDS=1,2,3,... runs a longer sweep (docs/reliability.md). */
const SEEDS = (process.env.DSYNC_FAULT_SEEDS ?? "11").split(",").map((seed) => Number(seed));
if (SEEDS.some((seed) => !Number.isSafeInteger(seed))) throw new Error(`DSYNC_FAULT_SEEDS must list whole numbers, got ${process.env.DSYNC_FAULT_SEEDS}`);

/** A seeded workload: batches of objects (some put concurrently, to share a group commit), a delete and a repack. */
function workload(seed: number): StoredObject[][] {
  const random = createPrng(seed);
  const batches: StoredObject[][] = [];
  for (let b = 0; b < 14; b++) {
    const batch: StoredObject[] = [];
    const count = 1 + random.nextInt(5);
    for (let i = 0; i < count; i++) batch.push(objectOf(random.bytes(1 + random.nextInt(random.nextInt(4) === 0 ? 30_000 : 3_000))));
    batches.push(batch);
  }
  return batches;
}

interface RunResult {
  acknowledged: Map<string, Uint8Array>;
  deleted: Set<string>;
  rejectedPuts: number;
  failedRepacks: number;
  /** Puts that resolved after a fault had been raised and before the power went off: the store recovered by itself. */
  putsAfterFault: number;
  /** Problems found at acknowledgement time (acknowledged bytes not yet durable). */
  notDurableAtAck: string[];
}

function packPathsIn(files: FaultFileSystem, packsDir: string): string[] {
  return files.readdir(packsDir).map((name) => join(packsDir, name));
}

/** True when the object's bytes are in the durable content of some pack whose name is durable too. */
function durableSomewhere(files: FaultFileSystem, packsDir: string, bytes: Uint8Array): boolean {
  for (const path of packPathsIn(files, packsDir)) {
    const durable = files.durableContent(path);
    if (durable !== undefined && Buffer.from(durable).indexOf(bytes) >= 0) return true;
  }
  return false;
}

async function runWorkload(store: PackObjectStore, files: FaultFileSystem, packsDir: string, seed: number): Promise<RunResult> {
  const result: RunResult = { acknowledged: new Map(), deleted: new Set(), rejectedPuts: 0, failedRepacks: 0, putsAfterFault: 0, notDurableAtAck: [] };
  const batches = workload(seed);
  const put = async (batch: StoredObject[]) => {
    const faultsBefore = files.injected.length;
    try {
      await store.putMany(batch);
    } catch {
      result.rejectedPuts++;
      return;
    }
    if (files.isPowerOff) return;
    if (faultsBefore > 0) result.putsAfterFault++;
    for (const object of batch) {
      result.acknowledged.set(idToHex(object.id), object.bytes);
      if (!durableSomewhere(files, packsDir, object.bytes)) result.notDurableAtAck.push(idToHex(object.id));
    }
  };
  for (let b = 0; b < batches.length; b++) {
    if (b % 4 === 1 && b + 1 < batches.length) {
      await Promise.all([put(batches[b]!), put(batches[b + 1]!)]);
      b++;
    } else {
      await put(batches[b]!);
    }
    if (b === 8) {
      // Delete some acknowledged objects and repack, so moved records go through the same faults.
      const victims = [...result.acknowledged.keys()].filter((_, i) => i % 2 === 0);
      try {
        await store.deleteMany(victims.map(idFromHex));
        for (const hex of victims) result.deleted.add(hex);
        await store.repack({ liveRatioMin: 0.9 });
      } catch {
        // A fault during repack fails it; what was acknowledged must still be there.
        result.failedRepacks++;
      }
    }
  }
  return result;
}

interface Scenario {
  seed: number;
  faults?: FaultPoint[];
  powerCutAtStep?: number;
  /** Whether some unflushed pages survive the cut (see FaultFileSystem.restart). */
  unflushedPages?: "none" | "some";
}

interface ScenarioOutcome extends RunResult {
  lost: string[];
  verifyProblems: string[];
  /** What the open after the cut had to cut off and remove (torn tails, packs without rows). */
  firstRecovery: { truncatedBytes: number; packFilesRemoved: number };
  secondRecovery: { truncatedBytes: number; packFilesRemoved: number };
  leftoverTemporaryFiles: string[];
  faultsRaised: number;
  powerWentOffEarly: boolean;
}

/** Each scenario removes its own folder: a long sweep makes thousands. */
async function runScenario(scenario: Scenario): Promise<ScenarioOutcome> {
  const dir = fs.mkdtempSync(join(tmpdir(), "dsync-pack-faults-"));
  try {
    return await runScenarioIn(dir, scenario);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runScenarioIn(dir: string, scenario: Scenario): Promise<ScenarioOutcome> {
  const packsDir = join(dir, PACKS_DIR_NAME);
  const files = new FaultFileSystem({ faults: scenario.faults, seed: scenario.seed });
  if (scenario.powerCutAtStep !== undefined) files.cutPowerAtStep(scenario.powerCutAtStep);
  const store = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
  const run = await runWorkload(store, files, packsDir, scenario.seed);
  const powerWentOffEarly = files.isPowerOff;
  files.cutPower();
  await store.close();
  files.restart({ unflushedPages: scenario.unflushedPages });

  const reopened = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
  const firstRecovery = { truncatedBytes: reopened.recovery.truncatedBytes, packFilesRemoved: reopened.recovery.packFilesRemoved };
  const lost: string[] = [];
  for (const [hex, bytes] of run.acknowledged) {
    if (run.deleted.has(hex)) continue;
    const read = await reopened.get(idFromHex(hex));
    if (read === undefined || Buffer.compare(Buffer.from(read), Buffer.from(bytes)) !== 0) lost.push(hex);
  }
  const verifyProblems = (await reopened.verifyAll()).map((p) => `${idToHex(p.id)}: ${p.detail}`);
  // The store keeps working after the restart.
  await reopened.put(objectOf(new TextEncoder().encode(`after restart ${scenario.seed}`)).id, new TextEncoder().encode(`after restart ${scenario.seed}`));
  await reopened.close();
  const again = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
  const secondRecovery = { truncatedBytes: again.recovery.truncatedBytes, packFilesRemoved: again.recovery.packFilesRemoved };
  const leftoverTemporaryFiles = files.readdir(packsDir).filter((name) => !/^\d{8}\.pack$/.test(name));
  await again.close();
  return { ...run, lost, verifyProblems, firstRecovery, secondRecovery, leftoverTemporaryFiles, faultsRaised: files.injected.length, powerWentOffEarly };
}

function expectSound(outcome: ScenarioOutcome, label: string): void {
  expect({ label, lost: outcome.lost, verify: outcome.verifyProblems, notDurableAtAck: outcome.notDurableAtAck }).toEqual({
    label,
    lost: [],
    verify: [],
    notDurableAtAck: [],
  });
  expect({ label, ...outcome.secondRecovery, leftovers: outcome.leftoverTemporaryFiles }).toEqual({
    label,
    truncatedBytes: 0,
    packFilesRemoved: 0,
    leftovers: [],
  });
}

/** Counts of each operation in a run without faults: the injection points to try. */
async function cleanRunCounts(seed: number): Promise<{ operations: Record<FaultOperation, number>; steps: number }> {
  const dir = fs.mkdtempSync(join(tmpdir(), "dsync-pack-faults-"));
  try {
    const files = new FaultFileSystem({ seed });
    const store = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
    await runWorkload(store, files, join(dir, PACKS_DIR_NAME), seed);
    await store.close();
    return { operations: { ...files.operationCounts }, steps: files.stepCount };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Totals across the sweeps, printed at the end for the record. */
const tally = { tried: {} as Record<string, number>, acknowledgedLost: 0, acknowledgedChecked: 0, reopensThatCutATail: 0, reopensThatRemovedAPack: 0 };
function count(key: string, outcome: ScenarioOutcome): void {
  tally.tried[key] = (tally.tried[key] ?? 0) + 1;
  tally.acknowledgedLost += outcome.lost.length;
  if (outcome.firstRecovery.truncatedBytes > 0) tally.reopensThatCutATail++;
  if (outcome.firstRecovery.packFilesRemoved > 0) tally.reopensThatRemovedAPack++;
  tally.acknowledgedChecked += [...outcome.acknowledged.keys()].filter((hex) => !outcome.deleted.has(hex)).length;
}
afterAll(() => {
  console.log(`fault sweep (seeds ${SEEDS.join(", ")}): ${JSON.stringify(tally)}`);
});

describe("pack store under injected faults", () => {
  test("without faults, the workload is acknowledged whole and survives a power cut", async () => {
    for (const seed of SEEDS) {
      const outcome = await runScenario({ seed });
      expect(outcome.rejectedPuts).toBe(0);
      expect(outcome.acknowledged.size).toBeGreaterThan(20);
      expectSound(outcome, `seed ${seed}`);
    }
  });

  for (const code of FAULT_CODES) {
    for (const operation of FAULT_OPERATIONS) {
      test(`${code} on every ${operation}: the operation fails, the store recovers without a restart, nothing acknowledged is lost`, async () => {
        let tried = 0;
        let recoveredWithoutRestart = 0;
        for (const seed of SEEDS) {
          const { operations } = await cleanRunCounts(seed);
          expect(operations[operation]).toBeGreaterThan(0);
          for (let index = 0; index < operations[operation]; index++) {
            const outcome = await runScenario({ seed, faults: [{ operation, index, code }] });
            const label = `seed ${seed}, ${code} on ${operation} #${index}`;
            count(`${code}/${operation}`, outcome);
            tried++;
            expectSound(outcome, label);
            if (outcome.faultsRaised > 0) {
              // The fault failed something (a put, or the repack), and later puts still worked.
              expect({ label, failed: outcome.rejectedPuts + outcome.failedRepacks }).not.toEqual({ label, failed: 0 });
              // Puts after the fault went through without a restart (the fault hit before the last batch).
              if (outcome.rejectedPuts > 0 && !outcome.powerWentOffEarly) recoveredWithoutRestart++;
            }
          }
        }
        expect(tried).toBeGreaterThan(SEEDS.length);
        expect(recoveredWithoutRestart).toBeGreaterThan(0);
      }, 300_000);
    }
  }

  test("a put whose flush failed is rejected, and after a power cut its bytes are not trusted", async () => {
    // The first flush of records: the put fails; the next put of the same objects must write them again.
    const dir = tempDir();
    const files = new FaultFileSystem({ seed: 3 });
    const store = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
    const first = objectOf(new TextEncoder().encode("first object, flushed fine"));
    await store.putMany([first]);
    const victim = objectOf(createPrng(5).bytes(5000));
    files.addFault({ operation: "fsync", index: files.operationCounts.fsync, code: "EIO" });
    await expect(store.putMany([victim])).rejects.toThrow(/EIO/);
    expect(await store.has(victim.id)).toBe(false);
    // The retry succeeds without a restart and is durable: the bytes were written again, not just flushed again.
    await store.putMany([victim]);
    files.cutPower();
    await store.close();
    files.restart();
    const reopened = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
    expect(Buffer.from((await reopened.get(victim.id))!)).toEqual(Buffer.from(victim.bytes));
    expect(Buffer.from((await reopened.get(first.id))!)).toEqual(Buffer.from(first.bytes));
    expect(await reopened.verifyAll()).toEqual([]);
    await reopened.close();
  });

  for (const seed of SEEDS) {
    test(`a power cut before every mutating step (seed ${seed}) loses nothing acknowledged and shows no half object`, async () => {
      const { steps } = await cleanRunCounts(seed);
      expect(steps).toBeGreaterThan(20);
      for (let step = 0; step <= steps; step++) {
        // Every other cut lets a random half of the unflushed pages through, as a disk may.
        const unflushedPages = step % 2 === 0 ? "none" : "some";
        const outcome = await runScenario({ seed, powerCutAtStep: step, unflushedPages });
        count(`power-cut/${unflushedPages}-unflushed-survive`, outcome);
        expectSound(outcome, `seed ${seed}, power cut at step ${step}, ${unflushedPages} unflushed pages survive`);
      }
    }, 300_000);
  }

  test("a full disk fails the put, gives the space back at once, and the next put works once space is free", async () => {
    const dir = tempDir();
    const packsDir = join(dir, PACKS_DIR_NAME);
    const files = new FaultFileSystem({ seed: 9 });
    const store = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
    const random = createPrng(21);
    const kept = Array.from({ length: 4 }, () => objectOf(random.bytes(2000)));
    await store.putMany(kept);
    const usedBefore = files.usedBytes();
    files.capacityBytes = usedBefore + 10_000;
    const tooBig = Array.from({ length: 3 }, () => objectOf(random.bytes(6000)));
    await expect(store.putMany(tooBig)).rejects.toMatchObject({ code: "ENOSPC" });
    // The failed batch's bytes were cut off: the disk holds what it held before.
    expect(files.usedBytes()).toBe(usedBefore);
    // A small put fits in the space that came back, without a restart.
    const small = objectOf(new TextEncoder().encode("x".repeat(247)));
    await store.putMany([small]);
    files.capacityBytes = Number.POSITIVE_INFINITY;
    await store.putMany(tooBig);
    for (const object of [...kept, small, ...tooBig]) expect(Buffer.from((await store.get(object.id))!)).toEqual(Buffer.from(object.bytes));
    expect(packPathsIn(files, packsDir).every((path) => /\d{8}\.pack$/.test(path))).toBe(true);
    await store.close();
  });

  test("repack on a nearly full disk removes dead packs first, so the space it needs for live records is there", async () => {
    const dir = tempDir();
    const files = new FaultFileSystem({ seed: 8 });
    const store = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
    const random = createPrng(77);
    // Pack 1: a live object and a dead one; pack 2: dead only.
    const live = objectOf(random.bytes(10_000));
    const deadInFirst = objectOf(random.bytes(30_000));
    const deadInSecond = objectOf(random.bytes(40_000));
    await store.putMany([live, deadInFirst]);
    await store.putMany([deadInSecond]);
    expect(files.readdir(join(dir, PACKS_DIR_NAME))).toHaveLength(2);
    await store.deleteMany([deadInFirst.id, deadInSecond.id]);
    // Not enough room to copy the live object before anything is removed.
    files.capacityBytes = files.usedBytes() + 5_000;
    const report = await store.repack();
    expect(report.packFilesRemoved).toBe(2);
    expect(Buffer.from((await store.get(live.id))!)).toEqual(Buffer.from(live.bytes));
    expect(files.usedBytes()).toBeLessThan(20_000);
    await store.close();
  });

  test("a new pack is durable (header flushed, renamed, directory flushed) before any record is written to it", async () => {
    const dir = tempDir();
    const files = new FaultFileSystem({ seed: 4 });
    const store = await PackObjectStore.open(dir, { ...STORE_OPTIONS, fileSystem: files });
    await runWorkload(store, files, join(dir, PACKS_DIR_NAME), 11);
    await store.close();
    const events = files.events;
    const renames = events.map((event, at) => ({ event, at })).filter(({ event }) => event.operation === "rename" && event.ok);
    expect(renames.length).toBeGreaterThan(2);
    for (const { event, at } of renames) {
      const fsyncBefore = events.slice(0, at).findLastIndex((e) => e.operation === "fsync" && e.ok && e.path === `${event.path}.new`);
      const createAt = events.slice(0, at).findLastIndex((e) => e.operation === "create" && e.path === `${event.path}.new`);
      expect(fsyncBefore).toBeGreaterThan(createAt);
      const laterWrites = events.slice(at + 1).findIndex((e) => e.operation === "write" && e.path === event.path);
      const directoryFsync = events.slice(at + 1).findIndex((e) => e.operation === "fsync-directory" && e.ok);
      expect(directoryFsync).toBeGreaterThanOrEqual(0);
      if (laterWrites >= 0) expect(directoryFsync).toBeLessThan(laterWrites);
    }
  });
});
