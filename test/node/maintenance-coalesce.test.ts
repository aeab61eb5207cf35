// A burst of verify or gc requests costs at most two passes over the store (one running, one
// shared by everyone who asked during it), not one pass each: a client could otherwise start
// any number of whole-store re-reads at once, or queue gc runs that hold every commit back.
import { describe, expect, test } from "bun:test";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode, UserError } from "../../src/node/node.ts";
import { CoalescingRunner } from "../../src/node/coalesce.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

async function nodeWithData() {
  const store = new MemoryObjectStore();
  const node = await DsyncNode.over(store, SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello", "b.txt": "world" });
  await node.putObjects(objects.all());
  await node.commit({ folder: "f", root, parent: null, message: "", chunking: "test", files: 2, totalBytes: 10 });
  return { node, store };
}

/** A gate the first pass waits on, so the test decides when it ends. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe("whole-store maintenance under a burst of requests", () => {
  test("twenty verifications at once re-read the store twice, and the shared run sees what was stored while the first ran", async () => {
    const { node, store } = await nodeWithData();
    const first = gate();
    let passes = 0;
    const verifyAll = store.verifyAll.bind(store);
    store.verifyAll = async () => {
      passes++;
      if (passes === 1) await first.opened;
      return verifyAll();
    };
    const running = node.verify();
    await Bun.sleep(0);
    // Stored while the first pass runs, before the next requests are made.
    const more = new MemoryObjects();
    more.tree({ "c.txt": "stored during the first pass" });
    await node.putObjects(more.all());
    const burst = Array.from({ length: 20 }, () => node.verify());
    first.open();
    const reports = await Promise.all([running, ...burst]);
    expect(passes).toBe(2);
    const before = reports[0]!.objectsChecked;
    for (const report of reports.slice(1)) expect(report.objectsChecked).toBe(before + more.all().length);
  });

  test("twenty gc requests at once run gc twice; other options while one waits are refused with 409, and later ones run", async () => {
    const { node, store } = await nodeWithData();
    const first = gate();
    let passes = 0;
    const list = store.listUnusedSince.bind(store);
    store.listUnusedSince = (cutoffMs: number) => {
      passes++;
      const inner = list(cutoffMs);
      const wait = passes === 1 ? first.opened : Promise.resolve();
      return (async function* () {
        await wait;
        yield* inner;
      })();
    };
    const running = node.gc({ graceMs: 0 });
    await Bun.sleep(0);
    const burst = Array.from({ length: 20 }, () => node.gc({ graceMs: 0 }));
    const other = node.gc({ graceMs: 0, dryRun: true }).then(
      () => "ran",
      (error: unknown) => error,
    );
    first.open();
    await Promise.all([running, ...burst]);
    expect(passes).toBe(2);
    const refused = await other;
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as UserError).status).toBe(409);
    // Nothing is left stuck: the next request runs a pass of its own.
    expect((await node.gc({ graceMs: 0, dryRun: true })).dryRun).toBe(true);
    expect(passes).toBe(3);
  });

  test("a failed run does not fail the one waiting behind it; runs one after another each run", async () => {
    const runner = new CoalescingRunner<number>(() => new Error("busy"));
    let calls = 0;
    const failing = runner.run("k", async () => {
      calls++;
      await Bun.sleep(5);
      throw new Error("disk error");
    });
    const waiting = runner.run("k", async () => ++calls);
    await expect(failing).rejects.toThrow("disk error");
    expect(await waiting).toBe(2);
    expect(await runner.run("k", async () => ++calls)).toBe(3);
    expect(await runner.run("other", async () => ++calls)).toBe(4);
  });
});
