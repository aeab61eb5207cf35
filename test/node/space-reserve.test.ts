import { expect, test } from "bun:test";
import { SPACE_RESERVE_FILE_NAME, SpaceReserve } from "../../src/node/space-reserve.ts";
import { FaultFileSystem } from "../helpers/fault-fs.ts";

const DATA = "/data";
const SIZE_BYTES = 600_000;

function setUp(capacityBytes = Number.POSITIVE_INFINITY): { files: FaultFileSystem; reserve: SpaceReserve } {
  const files = new FaultFileSystem({ capacityBytes });
  files.mkdirs(DATA);
  return { files, reserve: new SpaceReserve(files, DATA, SIZE_BYTES) };
}

test("the reserve is made whole and durable, released, and made again", () => {
  const { files, reserve } = setUp();
  expect(reserve.refill()).toBe(true);
  expect(files.durableContent(`${DATA}/${SPACE_RESERVE_FILE_NAME}`)?.length).toBe(SIZE_BYTES);
  expect(files.readdir(DATA)).toEqual([SPACE_RESERVE_FILE_NAME]);
  expect(reserve.refill()).toBe(true);
  expect(files.stepCount).toBeLessThan(20);
  expect(reserve.release()).toBe(true);
  expect(files.usedBytes()).toBe(0);
  expect(reserve.release()).toBe(false);
  expect(reserve.refill()).toBe(true);
  expect(files.usedBytes()).toBe(SIZE_BYTES);
});

test("without room the reserve is not made, nothing is left behind, and nothing throws", () => {
  const { files, reserve } = setUp(SIZE_BYTES - 1);
  expect(reserve.refill()).toBe(false);
  expect(files.readdir(DATA)).toEqual([]);
  expect(files.usedBytes()).toBe(0);
});

test("a reserve cut short by a power cut is made whole again", () => {
  const { files, reserve } = setUp();
  files.cutPowerAtStep(3);
  expect(reserve.refill()).toBe(false);
  files.restart();
  expect(files.readdir(DATA)).toEqual([]);
  expect(reserve.refill()).toBe(true);
  expect(files.currentContent(`${DATA}/${SPACE_RESERVE_FILE_NAME}`)?.length).toBe(SIZE_BYTES);
});
