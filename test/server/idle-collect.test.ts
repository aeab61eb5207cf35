// The idle collector: heavy requests (many body bytes, a commit) lead to one collection once the
// node is quiet; light traffic never does, and another heavy request in time puts it off.
import { expect, test } from "bun:test";
import { BUSY_COLLECT_BYTES, HEAVY_BYTES_MIN, IdleCollector } from "../../src/server/idle-collect.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("collects once after heavy requests, when no request came for the idle time", async () => {
  let runs = 0;
  const collector = new IdleCollector(() => void runs++, 50, () => undefined);
  for (let i = 0; i < 4; i++) {
    collector.noteBytes(HEAVY_BYTES_MIN / 4);
  }
  await sleep(20);
  expect(runs).toBe(0);
  await sleep(80);
  expect(runs).toBe(1);
  await sleep(100);
  expect(runs).toBe(1);
});

test("light traffic never collects; a commit counts as heavy, collected right after it", async () => {
  let runs = 0;
  const collector = new IdleCollector(() => void runs++, 5000, () => undefined);
  for (let i = 0; i < 20; i++) {
    collector.noteBytes(1000);
  }
  await sleep(80);
  expect(runs).toBe(0);
  collector.stop();
  collector.noteCommit();
  await sleep(80);
  expect(runs).toBe(1);
});

test("another heavy request before the idle time puts the collection off", async () => {
  let runs = 0;
  const collector = new IdleCollector(() => void runs++, 60, () => undefined);
  collector.noteBytes(HEAVY_BYTES_MIN);
  await sleep(40);
  collector.noteBytes(HEAVY_BYTES_MIN);
  await sleep(40);
  expect(runs).toBe(0);
  await sleep(60);
  expect(runs).toBe(1);
  collector.stop();
});

test("bodies streaming in ask for a collection every BUSY_COLLECT_BYTES, without waiting for quiet", async () => {
  let idle = 0;
  let busy = 0;
  const collector = new IdleCollector(() => void idle++, 50, () => void busy++);
  for (let i = 0; i < 8; i++) collector.noteBytes(BUSY_COLLECT_BYTES / 4);
  expect(busy).toBe(2);
  expect(idle).toBe(0);
  await sleep(100);
  expect(idle).toBe(1);
  collector.stop();
});

test("commits in a row share a collection: one right after the first, the next only after quiet", async () => {
  let runs = 0;
  const collector = new IdleCollector(() => void runs++, 200, () => undefined);
  collector.noteCommit();
  await sleep(10);
  collector.noteCommit();
  await sleep(70);
  expect(runs).toBe(1);
  await sleep(250);
  expect(runs).toBe(2);
  collector.stop();
});

test("what is kept for the next transfer is let go right before the quiet-time collection, never at a busy one", async () => {
  const order: string[] = [];
  const collector = new IdleCollector(() => void order.push("collect"), 40, () => void order.push("busy"));
  const stop = collector.onQuiet(() => void order.push("release"));
  collector.noteBytes(BUSY_COLLECT_BYTES);
  expect(order).toEqual(["busy"]);
  await sleep(90);
  expect(order).toEqual(["busy", "release", "collect"]);
  stop();
  collector.noteCommit();
  await sleep(90);
  expect(order).toEqual(["busy", "release", "collect", "collect"]);
});

test("a commit after a push of many bytes collects at once, before its reply; after a small one, just after", async () => {
  let runs = 0;
  const collector = new IdleCollector(() => void runs++, 1000, () => undefined);
  collector.noteBytes(HEAVY_BYTES_MIN);
  collector.noteCommit();
  expect(runs).toBe(1);
  await sleep(1100);
  collector.noteBytes(1000);
  collector.noteCommit();
  expect(runs).toBe(1);
  await sleep(20);
  expect(runs).toBe(2);
  collector.stop();
});
