// The version index answers by keyset and by range, never by reading the history: a page below a
// sequence, the ids under a prefix (a primary-key range), the latest clock stamp a reopened node
// starts from. Each is checked against the same answer computed the slow way.
import { expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

async function nodeWithVersions(count: number) {
  const metadata = SqliteMetadataStore.open(":memory:");
  const store = new MemoryObjectStore();
  let now = Date.UTC(2026, 0, 1);
  const clock = { nowMs: () => now };
  const node = await DsyncNode.over(store, metadata, { dataDir: "", nodeId: "n1", clock });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  let parent: ObjectId | null = null;
  for (let i = 0; i < count; i++) {
    // Some commits in the same millisecond, so the clock's counter matters too.
    if (i % 3 === 0) now += 7;
    parent = (await node.commit({ folder: "f", root, parent, message: "", chunking: "test", files: 1, totalBytes: 5 })).version;
  }
  return { node, metadata, store, clock, advance: (ms: number) => (now += ms) };
}

test("pages below a sequence are the history in order, each version once, the last with next null", async () => {
  const { metadata } = await nodeWithVersions(95);
  const all = (await metadata.listVersions("f")).map((v) => v.sequence);
  const seen: number[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await metadata.listVersionsPage("f", 10, before);
    expect(page.versions.length).toBeLessThanOrEqual(10);
    seen.push(...page.versions.map((v) => v.sequence));
    if (page.next === null) break;
    before = page.next;
  }
  expect(seen).toEqual(all);
  expect((await metadata.listVersionsPage("f", 95)).next).toBeNull();
  expect((await metadata.listVersionsPage("f", 94)).next).toBe(2);
  expect(await metadata.listVersionsPage("nothing", 10)).toEqual({ versions: [], next: null });
});

test("the versions under a prefix, of any length, are exactly those whose hex id starts with it", async () => {
  const { metadata } = await nodeWithVersions(300);
  const ids = (await metadata.listVersions("f")).map((v) => idToHex(v.id));
  const prefixes = ["", "0", "a", "f", ...ids.slice(0, 20).flatMap((id) => [id.slice(0, 1), id.slice(0, 2), id.slice(0, 3), id.slice(0, 7), id])];
  for (const prefix of prefixes) {
    const expected = ids.filter((id) => id.startsWith(prefix)).sort();
    const found = (await metadata.findVersionsByPrefix("f", prefix, 1000)).map((v) => idToHex(v.id));
    expect({ prefix, found }).toEqual({ prefix, found: expected });
  }
  expect((await metadata.findVersionsByPrefix("f", ids[0]!.toUpperCase())).map((v) => idToHex(v.id))).toEqual([ids[0]!]);
  expect(await metadata.findVersionsByPrefix("other", ids[0]!)).toEqual([]);
});

test("the latest clock stamp is the greatest of all versions, and a node reopened over the metadata goes on after it", async () => {
  const { node, metadata, store, clock, advance } = await nodeWithVersions(50);
  const stamps = (await metadata.listVersions("f")).map((v) => ({ wallMs: v.hlcWallMs, counter: v.hlcCounter }));
  stamps.sort((a, b) => a.wallMs - b.wallMs || a.counter - b.counter);
  expect(await metadata.latestHlc()).toEqual(stamps.at(-1)!);
  expect(await SqliteMetadataStore.open(":memory:").latestHlc()).toEqual({ wallMs: 0, counter: 0 });

  // The wall clock goes back (a restart on a machine whose clock was set back): the next
  // version's stamp is still after every recorded one.
  advance(-60_000);
  const reopened = await DsyncNode.over(store, metadata, { dataDir: "", nodeId: "n1", clock });
  const head = (await metadata.getFolder("f"))!.head!;
  const root = (await metadata.getVersion("f", head))!.root;
  const next = await reopened.commit({ folder: "f", root, parent: head, message: "", chunking: "test", files: 1, totalBytes: 5 });
  const record = (await metadata.getVersion("f", next.version))!;
  const latest = stamps.at(-1)!;
  expect(record.hlcWallMs > latest.wallMs || (record.hlcWallMs === latest.wallMs && record.hlcCounter > latest.counter)).toBe(true);
  void node;
});

test("a sequence is never given twice, even when the newest versions were deleted, so no cursor handed out can see a later version", async () => {
  const { node, metadata } = await nodeWithVersions(6);
  const newest = await metadata.listVersions("f");
  const cursor = (await metadata.listVersionsPage("f", 3)).next!; // a client holds this, below versions 6..4
  expect(cursor).toBe(4);
  // The three listed and one below the cursor go (as a pruning of them would), then a version
  // is recorded: counting from the highest left, it would take sequence 3, below the cursor.
  await metadata.deleteVersions("f", newest.slice(0, 4).map((v) => v.id));
  const root = newest.at(-1)!.root;
  const parent = newest[4]!.id;
  await metadata.commitVersions("f", (await metadata.getFolder("f"))!.head, parent, [], 0);
  const fresh = await node.commit({ folder: "f", root, parent, message: "later", chunking: "test", files: 1, totalBytes: 5 });
  expect((await metadata.getVersion("f", fresh.version))!.sequence).toBe(7);
  // The client's next page is still exactly what was below its cursor.
  expect((await metadata.listVersionsPage("f", 10, cursor)).versions.map((v) => v.id)).toEqual(newest.slice(4).map((v) => v.id));
  // Reopened, the metadata keeps counting from there.
  expect(await metadata.getMeta("sequence_high/f")).toBe("7");
});
