// The contract every MetadataStore implementation must keep (src/node/metadata-store.ts), run
// against each of them by its own test file with a way to make a fresh, empty database:
// every method's contract, compare-and-set racing from several store instances (several
// connections) on one database, and a process killed -9 in the middle of a commit loop.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { CheckedNode } from "../../src/core/tree-structure.ts";
import { HeadMovedError, UnknownFolderError, type NewVersionRecord } from "../../src/node/metadata-records.ts";
import type { MetadataStore } from "../../src/node/metadata-store.ts";
import { openStoreOn, type MetadataBackendName } from "./metadata-backends.ts";
import { REPO_ROOT } from "./processes.ts";

export interface MetadataBackendUnderTest {
  backend: MetadataBackendName;
  /** A new, empty database: its location (a file path, a URL). */
  freshLocation(): Promise<string>;
  /** Removes every database freshLocation made. */
  cleanup(): Promise<void>;
}

export function randomId(): ObjectId {
  return crypto.getRandomValues(new Uint8Array(32)) as ObjectId;
}

function idOf(byte: number, fill = 0): ObjectId {
  const id = new Uint8Array(32).fill(fill);
  id[0] = byte;
  return id as ObjectId;
}

export function newVersion(overrides: Partial<NewVersionRecord> = {}): NewVersionRecord {
  return {
    id: randomId(),
    root: randomId(),
    parents: [],
    author: "node-a",
    hlcWallMs: 1_700_000_000_000,
    hlcCounter: 0,
    message: "a version",
    origin: "push",
    files: 1,
    totalBytes: 10,
    createdMs: 1_700_000_000_000,
    ...overrides,
  };
}

const hex = (id: Uint8Array | null | undefined) => (id ? idToHex(id) : null);

export function runMetadataConformance(name: string, under: MetadataBackendUnderTest): void {
  const open: MetadataStore[] = [];
  async function openOn(location: string): Promise<MetadataStore> {
    const store = await openStoreOn(under.backend, location);
    open.push(store);
    return store;
  }
  async function fresh(): Promise<{ store: MetadataStore; location: string }> {
    const location = await under.freshLocation();
    return { store: await openOn(location), location };
  }
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
  });
  // Dropping a file's databases waits for a checkpoint each.
  afterAll(async () => {
    await under.cleanup();
  }, 60_000);

  describe(`${name}: keyed values`, () => {
    test("a key never set is undefined; set replaces; values survive a reopen", async () => {
      const { store, location } = await fresh();
      expect(await store.getMeta("node_id")).toBeUndefined();
      await store.setMeta("node_id", "n1");
      await store.setMeta("node_id", "n2");
      await store.setMeta("scrub_position", "ab/cd ünïcode");
      expect(await store.getMeta("node_id")).toBe("n2");
      await store.close();
      const again = await openOn(location);
      expect(await again.getMeta("node_id")).toBe("n2");
      expect(await again.getMeta("scrub_position")).toBe("ab/cd ünïcode");
    });
  });

  describe(`${name}: folders`, () => {
    test("ensureFolder creates with defaults once, and leaves an existing folder as it is", async () => {
      const { store } = await fresh();
      expect(await store.getFolder("docs")).toBeUndefined();
      const made = await store.ensureFolder("docs", 1000);
      expect(made).toEqual({ name: "docs", head: null, mode: "eventual", keepVersions: null, keepDays: null, createdMs: 1000, updatedMs: 1000 });
      const again = await store.ensureFolder("docs", 2000, { keepVersions: 5, keepDays: 3, mode: "strong" });
      expect(again).toEqual(made);
      const other = await store.ensureFolder("photos", 3000, { keepVersions: 7, keepDays: 1.5, mode: "strong" });
      expect(other).toMatchObject({ mode: "strong", keepVersions: 7, keepDays: 1.5, createdMs: 3000 });
      expect(await store.countFolders()).toBe(2);
    });

    test("folders are listed and paged by byte order of the name, next naming the first of the next page", async () => {
      const { store } = await fresh();
      const names = ["b", "a", "B", "_x", "-y", ".z", "0", "a.b", "a-b", "A"];
      for (const n of names) await store.ensureFolder(n, 1);
      const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect((await store.listFolders()).map((f) => f.name)).toEqual(sorted);
      const seen: string[] = [];
      let from: string | undefined;
      for (;;) {
        const page = await store.listFoldersPage(3, from);
        expect(page.folders.length).toBeLessThanOrEqual(3);
        seen.push(...page.folders.map((f) => f.name));
        if (page.next === null) break;
        expect(page.next).toBe(sorted[seen.length]!);
        from = page.next;
      }
      expect(seen).toEqual(sorted);
      // fromName is inclusive, and need not name a folder.
      expect((await store.listFoldersPage(2, "a")).folders.map((f) => f.name)).toEqual(["a", "a-b"]);
      expect((await store.listFoldersPage(100, "a0")).folders.map((f) => f.name)).toEqual(sorted.filter((n) => Buffer.compare(Buffer.from(n), Buffer.from("a0")) >= 0));
      expect(await store.listFoldersPage(5, "zzz")).toEqual({ folders: [], next: null });
      expect((await store.listFoldersPage(names.length)).next).toBeNull();
    });

    test("ensureFolder racing from several instances creates the folder once", async () => {
      const location = await under.freshLocation();
      const stores = await Promise.all([0, 1, 2, 3].map(() => openOn(location)));
      const results = await Promise.all(stores.flatMap((s, i) => [s.ensureFolder("race", 100 + i), s.ensureFolder("race", 200 + i)]));
      for (const r of results) expect(r).toEqual(results[0]!);
      expect(await stores[0]!.countFolders()).toBe(1);
    });

    test("setRetention: an absent field keeps its value, null removes it; an unknown folder is UnknownFolderError", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1, { keepVersions: 10, keepDays: 30 });
      await store.setRetention("f", { keepVersions: 3 }, 5);
      expect(await store.getFolder("f")).toMatchObject({ keepVersions: 3, keepDays: 30, updatedMs: 5, createdMs: 1 });
      await store.setRetention("f", { keepDays: null }, 6);
      expect(await store.getFolder("f")).toMatchObject({ keepVersions: 3, keepDays: null, updatedMs: 6 });
      await store.setRetention("f", { keepVersions: null, keepDays: 0.5 }, 7);
      expect(await store.getFolder("f")).toMatchObject({ keepVersions: null, keepDays: 0.5, updatedMs: 7 });
      await expect(store.setRetention("nope", { keepVersions: 1 }, 8)).rejects.toBeInstanceOf(UnknownFolderError);
      expect(await store.getFolder("nope")).toBeUndefined();
    });
  });

  describe(`${name}: heads and versions`, () => {
    test("commitVersions moves the head from the expected one, numbers versions in order, and keeps every field", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const first = newVersion({ message: "first: ünïcode, a NUL \u0000 and 💾", totalBytes: 2 ** 40 + 3, files: 123456, hlcWallMs: 1_800_000_000_123, hlcCounter: 7 });
      await store.commitVersions("f", null, first.id, [first], 10);
      const folder = await store.getFolder("f");
      expect(hex(folder!.head)).toBe(idToHex(first.id));
      expect(folder!.updatedMs).toBe(10);
      expect(folder!.createdMs).toBe(1);
      const stored = await store.getVersion("f", first.id);
      expect(stored).toEqual({ ...first, folder: "f", sequence: 1 });

      const side = newVersion({ parents: [first.id], origin: "replica", author: "node-b" });
      const merge = newVersion({ parents: [first.id, side.id, randomId()], origin: "merge", author: "" });
      await store.commitVersions("f", first.id, merge.id, [side, merge], 20);
      expect((await store.getVersion("f", side.id))!.sequence).toBe(2);
      expect(await store.getVersion("f", merge.id)).toEqual({ ...merge, folder: "f", sequence: 3 });
      expect(hex((await store.getFolder("f"))!.head)).toBe(idToHex(merge.id));
    });

    test("a head that moved is HeadMovedError, naming what is there, and changes nothing", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const a = newVersion();
      await store.commitVersions("f", null, a.id, [a], 10);
      const b = newVersion({ parents: [a.id] });
      const error = await store.commitVersions("f", null, b.id, [b], 20).catch((e) => e);
      expect(error).toBeInstanceOf(HeadMovedError);
      expect(hex((error as HeadMovedError).actual)).toBe(idToHex(a.id));
      expect((error as HeadMovedError).expected).toBeNull();
      const wrong = await store.commitVersions("f", randomId(), b.id, [b], 20).catch((e) => e);
      expect(wrong).toBeInstanceOf(HeadMovedError);
      expect(await store.getVersion("f", b.id)).toBeUndefined();
      expect(await store.getFolder("f")).toMatchObject({ updatedMs: 10 });
      expect(hex((await store.getFolder("f"))!.head)).toBe(idToHex(a.id));
      // The sequence b would have taken was not used up.
      await store.commitVersions("f", a.id, b.id, [b], 30);
      expect((await store.getVersion("f", b.id))!.sequence).toBe(2);
    });

    test("commitVersions and recordVersions on an unknown folder are UnknownFolderError", async () => {
      const { store } = await fresh();
      const v = newVersion();
      await expect(store.commitVersions("nope", null, v.id, [v], 1)).rejects.toBeInstanceOf(UnknownFolderError);
      await expect(store.recordVersions("nope", [v])).rejects.toBeInstanceOf(UnknownFolderError);
      expect(await store.getFolder("nope")).toBeUndefined();
      expect(await store.getVersion("nope", v.id)).toBeUndefined();
    });

    test("recordVersions leaves the head; a version already recorded, or given twice, takes no sequence", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const [a, b, c] = [newVersion(), newVersion(), newVersion()];
      await store.recordVersions("f", [a, b]);
      expect((await store.getFolder("f"))!.head).toBeNull();
      await store.recordVersions("f", [b, c, c, { ...a, message: "changed" }]);
      const all = await store.listVersions("f");
      expect(all.map((v) => [hex(v.id), v.sequence])).toEqual([
        [idToHex(c.id), 3],
        [idToHex(b.id), 2],
        [idToHex(a.id), 1],
      ]);
      expect((await store.getVersion("f", a.id))!.message).toBe("a version");
      // A head can move to a version recorded earlier (commit with nothing new).
      await store.commitVersions("f", null, b.id, [], 5);
      expect(hex((await store.getFolder("f"))!.head)).toBe(idToHex(b.id));
      // The same id in another folder is another version.
      await store.ensureFolder("g", 1);
      await store.recordVersions("g", [a]);
      expect((await store.getVersion("g", a.id))!.sequence).toBe(1);
    });

    test("a sequence is never given twice, even after the newest versions are deleted, and across a reopen", async () => {
      const { store, location } = await fresh();
      await store.ensureFolder("f", 1);
      const vs = [newVersion(), newVersion(), newVersion()];
      await store.recordVersions("f", vs);
      await store.deleteVersions("f", [vs[1]!.id, vs[2]!.id, randomId()]);
      expect((await store.listVersions("f")).map((v) => v.sequence)).toEqual([1]);
      await store.close();
      const again = await openOn(location);
      const d = newVersion();
      await again.recordVersions("f", [d]);
      expect((await again.getVersion("f", d.id))!.sequence).toBe(4);
      await again.deleteVersions("f", []);
      expect(await again.getVersion("f", vs[1]!.id)).toBeUndefined();
    });

    test("getVersion and getVersions: undefined where not recorded, answers in the order asked, copies the caller may keep", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const [a, b] = [newVersion(), newVersion()];
      await store.recordVersions("f", [a, b]);
      expect(await store.getVersion("f", randomId())).toBeUndefined();
      expect(await store.getVersion("other", a.id)).toBeUndefined();
      const missing = randomId();
      const many = await store.getVersions("f", [b.id, missing, a.id, b.id]);
      expect(many.map((v) => hex(v?.id))).toEqual([idToHex(b.id), null, idToHex(a.id), idToHex(b.id)]);
      expect(await store.getVersions("f", [])).toEqual([]);
      const got = (await store.getVersion("f", a.id))!;
      got.id.fill(0);
      got.root.fill(0);
      expect(hex((await store.getVersion("f", a.id))!.id)).toBe(idToHex(a.id));
      const lots = Array.from({ length: 1500 }, () => randomId());
      expect((await store.getVersions("f", [...lots, a.id])).filter(Boolean).length).toBe(1);
    });

    test("findVersionsByPrefix: a range of ids in id order, any case, bounded; anything but hex matches nothing", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const ids = [idOf(0xab, 1), idOf(0xab, 2), idOf(0xac, 0), idOf(0x0a, 0xff)];
      await store.recordVersions("f", ids.map((id) => newVersion({ id })));
      const found = async (prefix: string, limit?: number) => (await store.findVersionsByPrefix("f", prefix, limit)).map((v) => hex(v.id));
      expect(await found("ab")).toEqual([idToHex(ids[0]!), idToHex(ids[1]!)]);
      expect(await found("AB")).toEqual([idToHex(ids[0]!), idToHex(ids[1]!)]);
      expect(await found("ab01")).toEqual([idToHex(ids[0]!)]);
      expect(await found(idToHex(ids[1]!))).toEqual([idToHex(ids[1]!)]);
      expect(await found("")).toEqual([ids[3]!, ids[0]!, ids[1]!, ids[2]!].map(idToHex));
      expect(await found("", 2)).toEqual([ids[3]!, ids[0]!].map(idToHex));
      expect(await found("a")).toEqual([ids[0]!, ids[1]!, ids[2]!].map(idToHex));
      expect(await found("xyz")).toEqual([]);
      expect(await found("ab%")).toEqual([]);
      expect(await found("'; DROP TABLE versions; --")).toEqual([]);
      expect(await found("0".repeat(65))).toEqual([]);
      expect(await store.findVersionsByPrefix("other", "ab")).toEqual([]);
    });

    test("listVersions is newest first, bounded by limit; listVersionsPage pages by sequence and ends with next null", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const vs = Array.from({ length: 23 }, (_, i) => newVersion({ hlcWallMs: 1000 + i }));
      for (let i = 0; i < vs.length; i += 5) await store.recordVersions("f", vs.slice(i, i + 5));
      const all = await store.listVersions("f");
      expect(all.map((v) => v.sequence)).toEqual(Array.from({ length: 23 }, (_, i) => 23 - i));
      expect((await store.listVersions("f", 4)).map((v) => v.sequence)).toEqual([23, 22, 21, 20]);
      const seen: number[] = [];
      let before: number | undefined;
      for (;;) {
        const page = await store.listVersionsPage("f", 5, before);
        seen.push(...page.versions.map((v) => v.sequence));
        if (page.next === null) break;
        expect(page.next).toBe(page.versions.at(-1)!.sequence);
        before = page.next;
      }
      expect(seen).toEqual(all.map((v) => v.sequence));
      // An exact multiple ends on a full page with next null, not on an empty one.
      expect((await store.listVersionsPage("f", 23)).next).toBeNull();
      expect((await store.listVersionsPage("f", 22)).next).toBe(2);
      expect(await store.listVersionsPage("f", 5, 1)).toEqual({ versions: [], next: null });
      expect(await store.listVersionsPage("nope", 5)).toEqual({ versions: [], next: null });
      expect(await store.listVersions("nope")).toEqual([]);
    });

    test("versionTotals and latestHlc across folders", async () => {
      const { store } = await fresh();
      expect(await store.versionTotals()).toEqual([]);
      expect(await store.latestHlc()).toEqual({ wallMs: 0, counter: 0 });
      await store.ensureFolder("f", 1);
      await store.ensureFolder("g", 1);
      await store.ensureFolder("empty", 1);
      await store.recordVersions("f", [newVersion({ totalBytes: 5, hlcWallMs: 50, hlcCounter: 9 }), newVersion({ totalBytes: 2 ** 41, hlcWallMs: 70, hlcCounter: 1 })]);
      await store.recordVersions("g", [newVersion({ totalBytes: 0, hlcWallMs: 70, hlcCounter: 3 })]);
      const totals = (await store.versionTotals()).sort((a, b) => a.folder.localeCompare(b.folder));
      expect(totals).toEqual([
        { folder: "f", versions: 2, totalBytes: 2 ** 41 + 5 },
        { folder: "g", versions: 1, totalBytes: 0 },
      ]);
      expect(await store.latestHlc()).toEqual({ wallMs: 70, counter: 3 });
    });
  });

  describe(`${name}: completeness marks`, () => {
    const file = (id: ObjectId, sizeBytes: number): CheckedNode => ({ id, summary: { kind: "file", level: 1, sizeBytes } });
    const tree = (id: ObjectId, firstName: string | null): CheckedNode => ({
      id,
      summary: { kind: "tree", level: 0, firstName, lastName: firstName === null ? null : `${firstName}-last`, heightDirs: 2 },
    });

    test("mark, read back, keep the first summary, unmark some, unmark all", async () => {
      const { store } = await fresh();
      const [a, b, c] = [randomId(), randomId(), randomId()];
      expect(await store.isComplete(a)).toBe(false);
      expect(await store.completeSummary(a)).toBeUndefined();
      await store.markComplete([]);
      await store.markComplete([file(a, 2 ** 40), tree(b, "é name"), tree(c, null)]);
      expect(await store.isComplete(a)).toBe(true);
      expect(await store.completeSummary(a)).toEqual({ kind: "file", level: 1, sizeBytes: 2 ** 40 });
      expect(await store.completeSummary(b)).toEqual({ kind: "tree", level: 0, firstName: "é name", lastName: "é name-last", heightDirs: 2 });
      expect(await store.completeSummary(c)).toEqual({ kind: "tree", level: 0, firstName: null, lastName: null, heightDirs: 2 });
      await store.markComplete([file(a, 1)]);
      expect(await store.completeSummary(a)).toEqual({ kind: "file", level: 1, sizeBytes: 2 ** 40 });
      const missing = randomId();
      expect((await store.completeSummaries([c, missing, a])).map((s) => s?.kind)).toEqual(["tree", undefined, "file"]);
      expect(await store.completeSummaries([])).toEqual([]);
      expect(new Set((await store.listCompleteIds()).map(idToHex))).toEqual(new Set([a, b, c].map(idToHex)));
      await store.unmarkComplete([a, missing]);
      await store.unmarkComplete([]);
      expect(await store.isComplete(a)).toBe(false);
      expect(await store.isComplete(b)).toBe(true);
      await store.unmarkAllComplete();
      expect(await store.listCompleteIds()).toEqual([]);
    });

    test("many marks at once (beyond one statement's batch), racing from several instances", async () => {
      const location = await under.freshLocation();
      const stores = await Promise.all([0, 1, 2].map(() => openOn(location)));
      const nodes = Array.from({ length: 2500 }, (_, i) => file(randomId(), i));
      // Overlapping sets in different orders: no deadlock, no duplicate, first summary kept.
      await Promise.all([stores[0]!.markComplete(nodes.slice(0, 1500)), stores[1]!.markComplete(nodes.slice(1000).reverse()), stores[2]!.markComplete(nodes)]);
      expect((await stores[0]!.listCompleteIds()).length).toBe(2500);
      const summaries = await stores[1]!.completeSummaries(nodes.map((n) => n.id));
      expect(summaries.map((s) => (s as { sizeBytes: number }).sizeBytes)).toEqual(nodes.map((_, i) => i));
      await stores[2]!.unmarkComplete(nodes.slice(0, 1200).map((n) => n.id));
      expect((await stores[0]!.listCompleteIds()).length).toBe(1300);
    });
  });

  describe(`${name}: health`, () => {
    test("integrityCheck is ok, stat counts what is held, isDamage is false for ordinary errors, close twice is fine", async () => {
      const { store } = await fresh();
      await store.ensureFolder("f", 1);
      const v = newVersion();
      await store.commitVersions("f", null, v.id, [v], 2);
      await store.markComplete([{ id: randomId(), summary: { kind: "file", level: 0, sizeBytes: 1 } }]);
      expect(await store.integrityCheck()).toBe("ok");
      const stat = await store.stat();
      expect(stat).toMatchObject({ backend: under.backend, folders: 1, versions: 1, checkedNodes: 1 });
      expect(stat.schemaVersion).toBeGreaterThanOrEqual(1);
      expect(stat.location.length).toBeGreaterThan(0);
      expect(stat.location).not.toContain("password");
      expect(store.isDamage(new Error("no"))).toBe(false);
      expect(store.isDamage(new HeadMovedError("f", null, null))).toBe(false);
      expect(store.isDamage(new UnknownFolderError("f"))).toBe(false);
      await store.close();
      await store.close();
    });
  });

  describe(`${name}: compare-and-set racing from several instances`, () => {
    test("many racing commits: exactly one wins per expected head, no version lost or doubled, sequences dense", async () => {
      const location = await under.freshLocation();
      const writers = 4;
      const attemptsPerWriter = 40;
      const stores = await Promise.all(Array.from({ length: writers }, () => openOn(location)));
      await stores[0]!.ensureFolder("race", 1);
      const won: { expected: string | null; id: string; side: string }[] = [];
      let lost = 0;
      await Promise.all(
        stores.map(async (store, w) => {
          for (let i = 0; i < attemptsPerWriter; i++) {
            const head = (await store.getFolder("race"))!.head;
            const side = newVersion({ author: `w${w}`, parents: head ? [head] : [] });
            const next = newVersion({ author: `w${w}`, parents: head ? [head, side.id] : [side.id], hlcCounter: i });
            try {
              await store.commitVersions("race", head, next.id, [side, next], i);
              won.push({ expected: hex(head), id: idToHex(next.id), side: idToHex(side.id) });
            } catch (error) {
              if (!(error instanceof HeadMovedError)) throw error;
              lost++;
              // Nothing of a losing commit is recorded.
              expect(await store.getVersion("race", next.id)).toBeUndefined();
              expect(await store.getVersion("race", side.id)).toBeUndefined();
            }
          }
        }),
      );
      expect(won.length + lost).toBe(writers * attemptsPerWriter);
      expect(won.length).toBeGreaterThan(0);
      // One winner per expected head: the expected heads are all distinct.
      expect(new Set(won.map((w) => w.expected)).size).toBe(won.length);
      const reader = stores[0]!;
      const all = await reader.listVersions("race");
      expect(all.length).toBe(won.length * 2);
      expect(all.map((v) => v.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
      expect(new Set(all.map((v) => hex(v.id)))).toEqual(new Set(won.flatMap((w) => [w.id, w.side])));
      // The winners form one chain from the head back to the first commit, each a side
      // version's sequence just below its head's (both recorded by one call).
      const byId = new Map(all.map((v) => [idToHex(v.id), v]));
      let at = hex((await reader.getFolder("race"))!.head);
      let chain = 0;
      while (at !== null) {
        const v = byId.get(at)!;
        expect(v).toBeDefined();
        const side = byId.get(idToHex(v.parents.at(-1)!))!;
        expect(side.sequence).toBe(v.sequence - 1);
        chain++;
        at = v.parents.length === 2 ? idToHex(v.parents[0]!) : null;
      }
      expect(chain).toBe(won.length);
      expect(await reader.integrityCheck()).toBe("ok");
    }, 60_000);

    test("recordVersions racing with commits on one folder never gives a sequence twice", async () => {
      const location = await under.freshLocation();
      const stores = await Promise.all([0, 1, 2].map(() => openOn(location)));
      await stores[0]!.ensureFolder("f", 1);
      const shared = Array.from({ length: 30 }, () => newVersion());
      await Promise.all([
        ...stores.map(async (store) => {
          for (let i = 0; i < 30; i += 3) await store.recordVersions("f", shared.slice(i, i + 6));
        }),
        (async () => {
          for (let i = 0; i < 15; i++) {
            const head = (await stores[2]!.getFolder("f"))!.head;
            const v = newVersion({ parents: head ? [head] : [] });
            await stores[2]!.commitVersions("f", head, v.id, [v], i);
          }
        })(),
      ]);
      const all = await stores[1]!.listVersions("f");
      expect(all.length).toBe(45);
      expect(all.map((v) => v.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    }, 60_000);
  });

  describe(`${name}: a process killed -9 in the middle of a commit loop`, () => {
    test("afterwards the head names a recorded version, every acknowledged commit is there, nothing half-written", async () => {
      const location = await under.freshLocation();
      const child = spawn([process.execPath, `${REPO_ROOT}/test/helpers/metadata-commit-loop.ts`, under.backend, location, "loop"], {
        cwd: REPO_ROOT,
        stdout: "pipe",
        stderr: "pipe",
      });
      let output = "";
      const decoder = new TextDecoder();
      const target = 40 + Math.floor(Math.random() * 40);
      const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
      const deadline = Date.now() + 60_000;
      while ((output.match(/\n/g) ?? []).length < target) {
        if (Date.now() > deadline) throw new Error(`the commit loop did not get to ${target} commits: ${output}${await new Response(child.stderr).text()}`);
        const { done, value } = await reader.read();
        if (done) throw new Error(`the commit loop exited: ${output}${await new Response(child.stderr).text()}`);
        output += decoder.decode(value);
      }
      child.kill("SIGKILL");
      await child.exited;
      // Whatever was still in the pipe was printed before the kill: acknowledged too.
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        output += decoder.decode(value);
      }
      const acknowledged = output
        .split("\n")
        .filter((line) => line.startsWith("committed "))
        .map((line) => line.split(" ")[2]!);
      const lastAcknowledged = acknowledged.at(-1)!;

      const store = await openOn(location);
      const folder = (await store.getFolder("loop"))!;
      const all = await store.listVersions("loop");
      const byId = new Map(all.map((v) => [idToHex(v.id), v]));
      const head = hex(folder.head)!;
      expect(byId.has(head)).toBe(true);
      // Two versions per commit, never one: a commit is all or nothing.
      expect(all.length % 2).toBe(0);
      expect(all.map((v) => v.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
      // The head is the last acknowledged commit, or the one after it (done, not yet printed).
      const commits = all.length / 2;
      expect(commits === acknowledged.length || commits === acknowledged.length + 1).toBe(true);
      if (commits === acknowledged.length) expect(head).toBe(lastAcknowledged);
      else expect(idToHex(byId.get(head)!.parents[0]!)).toBe(lastAcknowledged);
      // Every acknowledged commit is on the head's chain, with its side version.
      const chain: string[] = [];
      let at: string | null = head;
      while (at !== null) {
        const v = byId.get(at);
        expect(v).toBeDefined();
        expect(byId.has(idToHex(v!.parents.at(-1)!))).toBe(true);
        chain.push(at);
        at = v!.parents.length === 2 ? idToHex(v!.parents[0]!) : null;
      }
      expect(chain.length).toBe(commits);
      for (const id of acknowledged) expect(chain).toContain(id);
      expect(await store.integrityCheck()).toBe("ok");
      // And the store takes commits again.
      const next = newVersion({ parents: [folder.head!] });
      await store.commitVersions("loop", folder.head, next.id, [next], 1);
    }, 90_000);
  });
}
