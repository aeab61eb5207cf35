// Streamed replication (stored-notices.ts, prefetch.ts) against replication at the head, in one
// process: node A takes a push group by group (as its upload route does: putUploaded, then the
// replicator told), node B hears of each group and fetches it ahead. Every scenario runs twice,
// streaming on and off, and B must end with exactly the same head, versions and stored objects
// either way; what changes is only when B fetched them. Then the ways it can go wrong: a push
// that never commits (B holds nothing of it once gc's grace has passed), a peer that hangs or
// goes away mid-push (A's push never waits for it, what waits for it stays bounded), and a
// hostile peer (ids it does not have, bytes that are not the ids', too many, unknown senders).
import { describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { FETCH_BYTES_MAX, Prefetcher, QUEUED_OBJECTS_MAX } from "../../src/replication/prefetch.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import { PENDING_OBJECTS_MAX } from "../../src/replication/stored-notices.ts";
import { RecentUploads } from "../../src/replication/recent-uploads.ts";
import type { PeerTransport, StoredNotice } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import type { StoredObject } from "../../src/store/object-store.ts";
import { file, MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";

class ManualClock {
  constructor(public now = Date.UTC(2026, 11, 1, 12)) {}
  nowMs = () => this.now;
}

/** Real timers: a pull's wait for what is being fetched ahead is bounded by them. */
const timers = { setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>) };

interface Hooks {
  /** Replaces B's download from A (a peer lying, or gone). */
  downloadFromA?: PeerTransport["download"];
  /** Replaces A's stored-objects notice to B. */
  notifyStoredToB?: (notice: StoredNotice) => Promise<void>;
}

class Pair {
  readonly clock = new ManualClock();
  readonly a: DsyncNode;
  readonly b: DsyncNode;
  replicatorA!: Replicator;
  replicatorB!: Replicator;
  readonly services = new Map<string, PeerService>();
  readonly hooks: Hooks = {};
  /** Ids B downloaded from A, ahead or at the head. */
  readonly downloadedByB: string[] = [];

  private constructor(a: DsyncNode, b: DsyncNode) {
    this.a = a;
    this.b = b;
  }

  static async open(streaming: boolean): Promise<Pair> {
    const clock = new ManualClock();
    const open = (nodeId: string) => DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId, clock });
    const pair = new Pair(await open("a"), await open("b"));
    (pair as { clock: ManualClock }).clock = clock;
    pair.replicatorA = new Replicator({ node: pair.a, peers: ["b"], transport: pair.transport("a"), timers, intervalMs: 60_000, streaming });
    pair.replicatorB = new Replicator({ node: pair.b, peers: ["a"], transport: pair.transport("b"), timers, intervalMs: 60_000, streaming });
    for (const [name, node, replicator] of [["a", pair.a, pair.replicatorA], ["b", pair.b, pair.replicatorB]] as const) {
      const service = new PeerService(node, (notice) => replicator.onNotice(notice), (notice) => replicator.onStoredNotice(notice));
      // As the assembly wires it: fetches of the last upload groups are answered from memory.
      service.recentUploads = replicator.recentUploads;
      pair.services.set(name, service);
    }
    pair.replicatorA.start();
    pair.replicatorB.start();
    // Each learns the other's node id (notices are matched to peers by it).
    await pair.replicatorA.round();
    await pair.replicatorB.round();
    return pair;
  }

  private transport(from: string): PeerTransport {
    const service = (peer: string) => this.services.get(peer)!;
    return {
      listFolders: (peer, page) => service(peer).listFolders(page),
      history: (peer, request) => service(peer).history(request),
      download: async (peer, ids) => {
        if (from === "b") for (const id of ids) this.downloadedByB.push(idToHex(id));
        if (from === "b" && this.hooks.downloadFromA) return this.hooks.downloadFromA(peer, ids);
        const reply = await service(peer).download(ids);
        return { objects: reply.objects.map((o) => ({ id: o.id, bytes: new Uint8Array(o.bytes) })), missing: reply.missing };
      },
      notify: async (peer, notice) => service(peer).notify(notice),
      notifyStored: async (peer, notice) => {
        if (from === "a" && this.hooks.notifyStoredToB) return this.hooks.notifyStoredToB(notice);
        service(peer).notifyStored(structuredClone(notice));
      },
    };
  }

  /** One upload group on A, as the upload route takes it: stored durably, then the peers told. */
  async upload(folder: string, objects: readonly StoredObject[]): Promise<void> {
    await this.a.putUploaded(objects);
    this.replicatorA.objectsStored(folder, objects);
  }

  stop(): void {
    this.replicatorA.stop();
    this.replicatorB.stop();
  }
}

/** A folder of text and multi-chunk binary files in a few directories (seeded, so both runs push the same bytes). */
function folderLiteral(seed: number, files = 40): TreeLiteral {
  const tree: TreeLiteral = {};
  let state = seed >>> 0 || 1;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
  for (let i = 0; i < files; i++) {
    const dirName = `d${i % 4}`;
    const children = (tree[dirName] ??= {}) as TreeLiteral;
    if (i % 2 === 0) children[`t${i}.txt`] = `text ${seed} ${i} `.repeat(50 + (next() % 200));
    else {
      const bytes = new Uint8Array(3000 + (next() % 5000));
      for (let j = 0; j < bytes.length; j++) bytes[j] = next() & 0xff;
      children[`b${i}.bin`] = file(bytes, { chunkSizeBytes: 1024 });
    }
  }
  return tree;
}

/** The objects of a tree split into upload groups, chunks first and the root last (as a client sends them). */
function uploadGroups(objects: MemoryObjects, groupSize: number): StoredObject[][] {
  const all = objects.all();
  const chunks = all.filter((o) => objects.chunk(o.id) !== undefined);
  const nodes = all.filter((o) => objects.chunk(o.id) === undefined);
  const ordered = [...chunks, ...nodes];
  const groups: StoredObject[][] = [];
  for (let i = 0; i < ordered.length; i += groupSize) groups.push(ordered.slice(i, i + groupSize));
  return groups;
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

async function storedIds(node: DsyncNode): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of node.store.list()) ids.push(idToHex(id));
  return ids.sort();
}

/** B's view of a folder: its head, every version it recorded, and every object its store holds. */
async function stateOf(node: DsyncNode, folder: string) {
  const record = await node.findFolder(folder);
  const versions = record ? (await node.metadata.listVersions(folder)).map((v) => idToHex(v.id)).sort() : [];
  return { head: record?.head ? idToHex(record.head) : null, versions, objects: await storedIds(node) };
}

/** Pushes `literal` to A in groups and commits it, then waits until B's head is A's. */
async function pushAndReplicate(pair: Pair, folder: string, literal: TreeLiteral, options: { groupSize?: number; beforeCommit?: (uploaded: readonly StoredObject[]) => Promise<void> } = {}) {
  const objects = new MemoryObjects();
  const root = objects.tree(literal);
  for (const group of uploadGroups(objects, options.groupSize ?? 8)) await pair.upload(folder, group);
  await options.beforeCommit?.(objects.all());
  pair.clock.now += 1000;
  const parent = (await pair.a.findFolder(folder))?.head ?? null;
  const result = await pair.a.commit({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 1 });
  await until("B to hold A's head", async () => idToHex((await pair.b.findFolder(folder))?.head ?? new Uint8Array(32)) === idToHex(result.version));
  return result;
}

describe("streamed replication gives B what replication at the head gives it", () => {
  test("two pushes, one on top of the other: the same head, versions and stored objects; streamed, B fetched the closure ahead", async () => {
    const outcomes = [];
    for (const streaming of [true, false]) {
      const pair = await Pair.open(streaming);
      try {
        await pushAndReplicate(pair, "docs", folderLiteral(1), {
          // Streamed, B has every uploaded object before the commit is even made.
          beforeCommit: async (uploaded) => {
            if (streaming) await until("B to fetch the upload ahead", async () => (await pair.b.hasObjects(uploaded.map((o) => o.id))).every(Boolean));
          },
        });
        const second = folderLiteral(2);
        (second as Record<string, unknown>)["d0"] = folderLiteral(1)["d0"]; // part of the first push kept
        await pushAndReplicate(pair, "docs", second);
        const stats = pair.replicatorB.stats;
        if (streaming) {
          expect(stats.storedNoticesReceived).toBeGreaterThan(0);
          expect(stats.objectsFetchedAhead).toBeGreaterThan(0);
        } else {
          expect(stats.storedNoticesReceived).toBe(0);
          expect(stats.objectsFetchedAhead).toBe(0);
        }
        // Never fetched twice: ahead and at the head together are each object once.
        expect(new Set(pair.downloadedByB).size).toBe(pair.downloadedByB.length);
        if (streaming) expect(pair.replicatorA.recentUploads.stats.served).toBeGreaterThan(0);
        outcomes.push({ streaming, b: await stateOf(pair.b, "docs"), a: await stateOf(pair.a, "docs"), atHead: stats.objectsFetched, ahead: stats.objectsFetchedAhead });
      } finally {
        pair.stop();
      }
    }
    const [streamed, atHead] = outcomes;
    expect(streamed!.b).toEqual(atHead!.b);
    expect(streamed!.b.head).toBe(streamed!.a.head);
    expect(streamed!.b.objects).toEqual(streamed!.a.objects);
    // Streamed, the head's descent found (nearly) everything here: at most what the last groups left.
    expect(streamed!.atHead).toBeLessThan(atHead!.atHead / 4);
    expect(streamed!.ahead + streamed!.atHead).toBe(atHead!.atHead);
  });

  test("a push that fails half-way: no head on B, what it fetched ahead kept through gc's grace and collected after it, as on A", async () => {
    const outcomes = [];
    for (const streaming of [true, false]) {
      const pair = await Pair.open(streaming);
      try {
        const objects = new MemoryObjects();
        objects.tree(folderLiteral(3));
        const groups = uploadGroups(objects, 8);
        // Half the groups land; the client then goes away without committing.
        for (const group of groups.slice(0, Math.ceil(groups.length / 2))) await pair.upload("half", group);
        if (streaming) await until("B to fetch what landed", () => pair.replicatorB.stats.objectsFetchedAhead >= 8);
        await Bun.sleep(20);
        expect(await pair.b.findFolder("half")).toBeUndefined();
        const fetchedAhead = (await storedIds(pair.b)).length;
        if (streaming) expect(fetchedAhead).toBeGreaterThan(0);
        // Within the grace period a late commit could still use them: gc keeps them.
        pair.clock.now += 60_000;
        await pair.b.gc();
        expect((await storedIds(pair.b)).length).toBe(fetchedAhead);
        // Past it they are unreferenced garbage, on B as on A.
        pair.clock.now += 16 * 60_000;
        await pair.a.gc();
        await pair.b.gc();
        expect(await storedIds(pair.a)).toEqual([]);
        outcomes.push(await stateOf(pair.b, "half"));
      } finally {
        pair.stop();
      }
    }
    expect(outcomes[0]).toEqual({ head: null, versions: [], objects: [] });
    expect(outcomes[0]).toEqual(outcomes[1]);
  });
});

describe("a peer that hangs or goes away never holds up the push", () => {
  test("B hangs on every notice: A's uploads and commit go on, what waits for B stays bounded, and B catches up at the head", async () => {
    const pair = await Pair.open(true);
    try {
      let hung = 0;
      pair.hooks.notifyStoredToB = () => {
        hung++;
        return new Promise(() => {}); // never answers
      };
      const objects = new MemoryObjects();
      const root = objects.tree(folderLiteral(4, 60));
      // Far more than may wait for one peer, in many groups.
      const many: StoredObject[] = [];
      for (let i = 0; i < PENDING_OBJECTS_MAX + 5000; i++) many.push({ id: new Uint8Array(32).fill(i & 0xff) as ObjectId, bytes: new Uint8Array(1) });
      const started = performance.now();
      for (let i = 0; i < many.length; i += 4096) pair.replicatorA.objectsStored("busy", many.slice(i, i + 4096));
      expect(performance.now() - started).toBeLessThan(1000);
      for (const group of uploadGroups(objects, 8)) await pair.upload("busy", group);
      const sender = (pair.replicatorA as unknown as { storedNotices: { queues: Map<string, { count: number }> } }).storedNotices;
      expect(hung).toBe(1); // one notice in flight, the rest waiting or dropped
      expect(sender.queues.get("b")!.count).toBeLessThanOrEqual(PENDING_OBJECTS_MAX);
      const result = await pair.a.commit({ folder: "busy", root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 1 });
      // The head notice still reaches B, which fetches the whole closure at the head.
      await until("B to hold the head", async () => idToHex((await pair.b.findFolder("busy"))?.head ?? new Uint8Array(32)) === idToHex(result.version));
      expect(pair.replicatorB.stats.objectsFetchedAhead).toBe(0);
    } finally {
      pair.stop();
    }
  });

  test("A goes away mid-push (B's fetches fail): B holds nothing of it, and once A is back and commits, B gets the same as without streaming", async () => {
    const outcomes = [];
    for (const streaming of [true, false]) {
      const pair = await Pair.open(streaming);
      try {
        let away = true;
        pair.hooks.downloadFromA = async (peer, ids) => {
          if (away) throw new Error("connection refused");
          const reply = await pair.services.get(peer)!.download(ids);
          return { objects: reply.objects, missing: reply.missing };
        };
        const literal = folderLiteral(5);
        await pushAndReplicate(pair, "away", literal, {
          beforeCommit: async () => {
            if (streaming) await until("B's fetches ahead to fail", () => (pair.replicatorB as unknown as { prefetcher: { stats: { batchFailures: number } } }).prefetcher.stats.batchFailures > 0);
            await Bun.sleep(20);
            expect(await storedIds(pair.b)).toEqual([]);
            away = false;
          },
        });
        outcomes.push(await stateOf(pair.b, "away"));
      } finally {
        pair.stop();
      }
    }
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]!.head).not.toBeNull();
  });
});

describe("a hostile peer's notices", () => {
  test("ids the peer does not have, bytes that are not the ids', an unknown sender, a strong folder: nothing stored, nothing recorded", async () => {
    const pair = await Pair.open(true);
    try {
      const service = pair.services.get("b")!;
      const fake = (i: number) => ({ id: new Uint8Array(32).fill(i) as ObjectId, lengthBytes: 100 });
      // Ids A never stored: B asks, A says it lacks them, B stores nothing.
      service.notifyStored({ from: "a", folder: "f", objects: [fake(1), fake(2), fake(3)] });
      const prefetch = () => (pair.replicatorB as unknown as { prefetcher: { stats: Record<string, number> } }).prefetcher.stats;
      await until("B to ask A", () => prefetch().objectsMissing === 3);
      // Bytes that do not hash to the ids: the batch is refused whole.
      const objects = new MemoryObjects();
      objects.tree({ x: "real content" });
      const real = objects.all();
      pair.hooks.downloadFromA = async (_peer, ids) => ({ objects: ids.map((id) => ({ id, bytes: new Uint8Array([1, 2, 3]) })), missing: [] });
      await pair.a.putUploaded(real);
      service.notifyStored({ from: "a", folder: "f", objects: real.map((o) => ({ id: o.id, lengthBytes: o.bytes.length })) });
      await until("B to refuse the batch", () => prefetch().batchFailures === 1);
      // Genuine objects it was not asked for: refused too (a peer cannot make B store what it likes).
      const unasked = new MemoryObjects();
      unasked.tree({ y: "never asked for" });
      pair.hooks.downloadFromA = async () => ({ objects: unasked.all(), missing: [] });
      service.notifyStored({ from: "a", folder: "f", objects: [fake(8)] });
      await until("B to refuse the unasked object", () => prefetch().batchFailures === 2);
      // A sender that is none of B's peers: not even asked.
      const asked = pair.downloadedByB.length;
      service.notifyStored({ from: "mallory", folder: "f", objects: [fake(4)] });
      // A folder B keeps in strong mode: left to the log.
      await pair.b.metadata.ensureFolder("strongly", pair.clock.now, { mode: "strong" });
      pair.hooks.downloadFromA = undefined;
      service.notifyStored({ from: "a", folder: "strongly", objects: real.map((o) => ({ id: o.id, lengthBytes: o.bytes.length })) });
      await Bun.sleep(20);
      expect(pair.downloadedByB.length).toBe(asked);
      expect(await storedIds(pair.b)).toEqual([]);
      expect(await pair.b.findFolder("f")).toBeUndefined();
    } finally {
      pair.stop();
    }
  });

  test("too many objects in one notice is refused; notices past the queue's bound are dropped, not queued", async () => {
    const pair = await Pair.open(true);
    try {
      const service = pair.services.get("b")!;
      const id = (i: number) => {
        const bytes = new Uint8Array(32);
        new DataView(bytes.buffer).setUint32(0, i);
        return bytes as ObjectId;
      };
      const tooMany = Array.from({ length: LIMITS.storedNoticeObjectsMax + 1 }, (_, i) => ({ id: id(i), lengthBytes: 1 }));
      expect(() => service.notifyStored({ from: "a", folder: "f", objects: tooMany })).toThrow(/at most/);
      // A never answers B's fetches: what B queues stays within its bound however much is noticed.
      pair.hooks.downloadFromA = () => new Promise(() => {});
      let sent = 0;
      for (let n = 0; sent < QUEUED_OBJECTS_MAX * 2; n++) {
        service.notifyStored({ from: "a", folder: "f", objects: Array.from({ length: LIMITS.storedNoticeObjectsMax }, (_, i) => ({ id: id(sent + i), lengthBytes: 1 })) });
        sent += LIMITS.storedNoticeObjectsMax;
      }
      const prefetcher = (pair.replicatorB as unknown as { prefetcher: { stats: Record<string, number>; peers: Map<string, { keys: Set<string>; inFlight: number }> } }).prefetcher;
      await until("every notice taken", () => prefetcher.stats.objectsQueued + prefetcher.stats.objectsDropped === sent);
      const fetches = prefetcher.peers.get("a")!;
      expect(fetches.keys.size).toBeLessThanOrEqual(QUEUED_OBJECTS_MAX);
      expect(fetches.inFlight).toBeLessThanOrEqual(2);
      expect(prefetcher.stats.objectsDropped).toBeGreaterThanOrEqual(sent - QUEUED_OBJECTS_MAX);
    } finally {
      pair.stop();
    }
  });
});

describe("fetching ahead asks for compressed replies only where the link is slow", () => {
  /** Prefetches `batches` batches of ~1 MiB from a peer whose replies take `delayMs`; the compression asked for each. */
  async function askedFor(delayMs: number, batches: number): Promise<boolean[]> {
    const clock = new ManualClock();
    const node = await DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "b", clock });
    const objects = new MemoryObjects();
    for (let i = 0; i < batches; i++) {
      const bytes = new Uint8Array(FETCH_BYTES_MAX - 1024);
      new DataView(bytes.buffer).setUint32(0, i + 1);
      objects.tree({ [`f${i}`]: file(bytes) });
    }
    const byId = new Map(objects.all().map((o) => [idToHex(o.id), o]));
    const asked: boolean[] = [];
    const transport: PeerTransport = {
      listFolders: async () => ({ node: "a", folders: [], next: null }),
      history: async () => ({ versions: [], more: [] }),
      notify: async () => {},
      download: async (_peer, ids, options) => {
        asked.push(options?.compressed !== false);
        await Bun.sleep(delayMs);
        return { objects: ids.map((id) => byId.get(idToHex(id))!), missing: [] };
      },
    };
    const prefetcher = new Prefetcher({ node, transport, timers });
    // One chunk per notice, one at a time: each is a batch of its own.
    for (const chunk of objects.all().filter((o) => o.bytes.length > 1024 * 1024)) {
      await prefetcher.take("http://a", { from: "a", folder: "f", objects: [{ id: chunk.id, lengthBytes: chunk.bytes.length }] });
      await prefetcher.settled("http://a", 5000, 10_000);
    }
    prefetcher.stop();
    return asked;
  }

  test("a fast link (8 MiB in a few ms) gets plain replies throughout; a slow one (8 MiB in 500 ms: 16 MiB/s) compressed ones after the first, with a plain one now and then to measure again", async () => {
    expect(await askedFor(2, 6)).toEqual([false, false, false, false, false, false]);
    const slow = await askedFor(500, 10);
    expect(slow[0]).toBe(false);
    expect(slow.slice(1).filter((c) => c).length).toBeGreaterThanOrEqual(7);
    expect(slow.slice(1).filter((c) => !c).length).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe("the last upload groups, kept for the peers told of them", () => {
  const object = (i: number, length: number) => ({ id: new Uint8Array(32).fill(i) as ObjectId, bytes: new Uint8Array(length).fill(i) });

  test("bounded by bytes and age, each handed out once, copies of what was stored", () => {
    let now = 0;
    const recent = new RecentUploads(() => now, 1000, 5000);
    const first = object(1, 400);
    recent.add([first, object(2, 400)]);
    first.bytes.fill(99); // the upload's buffer reused: what is kept is a copy
    recent.add([object(3, 400)]); // past 1000 bytes: the oldest goes
    expect(recent.bytes).toBe(800);
    const [one, two, three] = recent.take([object(1, 0).id, object(2, 0).id, object(3, 0).id]);
    expect(one).toBeUndefined();
    expect(two).toEqual(new Uint8Array(400).fill(2));
    expect(three).toEqual(new Uint8Array(400).fill(3));
    expect(recent.take([object(2, 0).id])[0]).toBeUndefined(); // once
    const kept = object(4, 10);
    recent.add([kept]);
    kept.bytes.fill(0);
    expect(recent.take([kept.id])[0]).toEqual(new Uint8Array(10).fill(4));
    recent.add([object(5, 10)]);
    now += 6000;
    recent.expire();
    expect(recent.size).toBe(0);
    expect(recent.bytes).toBe(0);
  });

  test("a peer's download takes what is held here and reads the rest from the store, the same objects either way", async () => {
    const clock = new ManualClock();
    const node = await DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "a", clock });
    const objects = new MemoryObjects();
    objects.tree(folderLiteral(7, 10));
    const all = objects.all();
    await node.putUploaded(all);
    const plain = new PeerService(node);
    const served = new PeerService(node);
    served.recentUploads = new RecentUploads(clock.nowMs);
    served.recentUploads.add(all.filter((_, i) => i % 2 === 0));
    const missingId = new Uint8Array(32).fill(0xee) as ObjectId;
    const ids = [...all.map((o) => o.id), missingId];
    const sorted = (reply: { objects: StoredObject[]; missing: ObjectId[] }) => ({
      objects: reply.objects.map((o) => [idToHex(o.id), Buffer.from(o.bytes).toString("base64")]).sort(),
      missing: reply.missing.map(idToHex),
    });
    expect(sorted(await served.download(ids))).toEqual(sorted(await plain.download(ids)));
    expect(served.recentUploads.stats.served).toBe(Math.ceil(all.length / 2));
  });
});
