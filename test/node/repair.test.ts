// Quarantine and repair on nodes in one process, on a manual clock and manual timers, so the
// scrub and the repair are driven step by step and "repaired within a bounded time" is counted
// in simulated seconds, not hoped for.
import { describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { Timers } from "../../src/node/clock.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { Repairer } from "../../src/node/repair.ts";
import { Scrubber } from "../../src/node/scrub.ts";
import { PeerObjectSource } from "../../src/replication/peer-object-source.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import type { PeerTransport } from "../../src/replication/transport.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { file, MemoryObjects, type TreeLiteral } from "../helpers/memory-objects.ts";
import { createPrng } from "../helpers/prng.ts";

/** A clock and timers that move only when the test says so. */
class ManualTime implements Timers {
  nowMs = Date.UTC(2026, 11, 1, 9);
  private readonly pending: { atMs: number; callback: () => void; handle: number }[] = [];
  private nextHandle = 1;
  readonly clock = { nowMs: () => this.nowMs };

  setTimeout(callback: () => void, delayMs: number): unknown {
    const handle = this.nextHandle++;
    this.pending.push({ atMs: this.nowMs + delayMs, callback, handle });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    const at = this.pending.findIndex((p) => p.handle === handle);
    if (at !== -1) this.pending.splice(at, 1);
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order, and what it starts. */
  async advance(ms: number): Promise<void> {
    const endMs = this.nowMs + ms;
    for (;;) {
      await settle();
      this.pending.sort((a, b) => a.atMs - b.atMs);
      const next = this.pending[0];
      if (next === undefined || next.atMs > endMs) break;
      this.pending.shift();
      this.nowMs = Math.max(this.nowMs, next.atMs);
      next.callback();
    }
    this.nowMs = endMs;
    await settle();
  }
}

/** Lets promise chains started by timers run to their end (in-memory stores answer at once). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Bun.sleep(0);
}

async function makeNode(name: string, time: ManualTime): Promise<{ node: DsyncNode; store: MemoryObjectStore }> {
  const store = new MemoryObjectStore({ nowMs: time.clock.nowMs });
  const node = await DsyncNode.over(store, SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: name, clock: time.clock });
  return { node, store };
}

/** Downloads go to the named node's peer service; nothing else is needed to repair. */
function transportTo(services: Map<string, PeerService>): PeerTransport & { downloads: number } {
  const transport = {
    downloads: 0,
    listFolders: async () => {
      throw new Error("not used");
    },
    history: async () => {
      throw new Error("not used");
    },
    download: async (peer: string, ids: readonly ObjectId[]) => {
      transport.downloads++;
      const service = services.get(peer);
      if (!service) throw new Error(`cannot reach ${peer}`);
      return service.download(ids);
    },
    notify: async () => {},
  };
  return transport;
}

async function pushTo(node: DsyncNode, folder: string, literal: TreeLiteral): Promise<MemoryObjects> {
  const objects = new MemoryObjects();
  const root = objects.tree(literal);
  await node.putObjects(objects.all());
  await node.commit({ folder, root, parent: (await node.metadata.getFolder(folder))?.head ?? null, message: "", chunking: "test", files: 1, totalBytes: 1 });
  return objects;
}

const prng = createPrng(4242);
const CONTENT: TreeLiteral = {
  "big.bin": file(prng.bytes(40_000), { chunkSizeBytes: 4096 }),
  docs: { "a.txt": "alpha\n", "b.txt": file(prng.bytes(9000), { chunkSizeBytes: 3000 }) },
};

function chunkIdsOf(objects: MemoryObjects): ObjectId[] {
  return objects.all().filter((o) => objects.chunk(o.id) !== undefined).map((o) => o.id);
}

describe("quarantine and repair between two nodes", () => {
  test("a byte flipped on one node is found by the scrub and repaired from the peer within one pass", async () => {
    const time = new ManualTime();
    const a = await makeNode("a", time);
    const b = await makeNode("b", time);
    const services = new Map([["a", new PeerService(a.node)]]);
    const objects = await pushTo(a.node, "team", CONTENT);
    await pushTo(b.node, "team", CONTENT); // the same content: what replication would have brought

    const transport = transportTo(services);
    const repairer = new Repairer({ store: b.store, source: new PeerObjectSource(transport, () => ["a"]), clock: time.clock, timers: time });
    b.node.setRepairer(repairer);
    await repairer.start();
    const bytesPerSecond = 8192;
    const scrubber = new Scrubber({ store: b.store, bytesPerSecond, clock: time.clock, timers: time });
    scrubber.start();

    const victim = chunkIdsOf(objects)[5]!;
    expect(b.store.damageForTesting(victim, 100)).toBe(true);
    // Before anything reads it, the node still vouches for it: this is what the scrub is for.
    expect(await b.node.missing([victim])).toEqual([]);

    // One pass reads every stored byte at the rate; the repair follows within a pause.
    const storedBytes = (await b.store.stats()).rawBytes;
    const boundMs = Math.ceil((storedBytes / bytesPerSecond) * 1000) + 2 * 1000 + 1000;
    let elapsedMs = 0;
    while (elapsedMs < boundMs && (await b.node.corruptionStatus()).repaired === 0) {
      await time.advance(250);
      elapsedMs += 250;
    }
    expect(elapsedMs).toBeLessThan(boundMs);
    expect(scrubber.stats.corruptFound).toBe(1);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 0, repaired: 1, unrepairable: 0 });
    expect(await b.store.get(victim)).toEqual(objects.chunk(victim)!);
    expect(await b.node.missing([victim])).toEqual([]);
    expect(repairer.stats.repaired).toBe(1);
    const report = await b.node.verify();
    expect(report.corrupt).toEqual([]);
    expect(report.unrepairable).toEqual([]);
    scrubber.stop();
    repairer.stop();
  });

  test("a read that finds damage quarantines it: the missing check names it, and a put of the right bytes restores it", async () => {
    const time = new ManualTime();
    const b = await makeNode("b", time);
    const objects = await pushTo(b.node, "team", CONTENT);
    const victim = chunkIdsOf(objects)[2]!;
    b.store.damageForTesting(victim);
    // A download of the damaged chunk is refused with the reason, once, and then names it corrupt.
    const first = await b.node.download([victim]);
    expect(first.objects).toEqual([]);
    expect(first.corrupt.map(idToHex)).toEqual([idToHex(victim)]);
    expect(await b.node.missing([victim])).toEqual([victim]);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 1, repaired: 0, unrepairable: 1 });
    // The same bytes pushed again (the push's "which do you lack?" names the chunk) lift the quarantine.
    await b.node.putObjects([{ id: victim, bytes: objects.chunk(victim)! }]);
    expect((await b.node.download([victim])).objects.map((o) => idToHex(o.id))).toEqual([idToHex(victim)]);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 0, repaired: 1, unrepairable: 0 });
  });

  test("a download of a corrupt object waits for the peer's copy and answers with it", async () => {
    const time = new ManualTime();
    const a = await makeNode("a", time);
    const b = await makeNode("b", time);
    const objects = await pushTo(a.node, "team", CONTENT);
    await pushTo(b.node, "team", CONTENT);
    const transport = transportTo(new Map([["a", new PeerService(a.node)]]));
    const repairer = new Repairer({ store: b.store, source: new PeerObjectSource(transport, () => ["a"]), clock: time.clock, timers: time });
    b.node.setRepairer(repairer);
    const victim = chunkIdsOf(objects)[0]!;
    b.store.damageForTesting(victim);
    const reply = await b.node.download([victim]);
    expect(reply.corrupt).toEqual([]);
    expect(reply.objects).toEqual([{ id: victim, bytes: objects.chunk(victim)! }]);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 0, repaired: 1, unrepairable: 0 });
  });

  test("what no peer holds is counted unrepairable, tried again later, and repaired once a peer has it", async () => {
    const time = new ManualTime();
    const a = await makeNode("a", time);
    const b = await makeNode("b", time);
    const services = new Map<string, PeerService>();
    const transport = transportTo(services);
    const objects = await pushTo(b.node, "team", CONTENT);
    const repairer = new Repairer({ store: b.store, source: new PeerObjectSource(transport, () => ["a"]), clock: time.clock, timers: time, retryMs: 30_000 });
    b.node.setRepairer(repairer);
    await repairer.start();
    const victim = chunkIdsOf(objects)[1]!;
    b.store.damageForTesting(victim);
    await expect(b.store.get(victim)).rejects.toThrow(/corrupt/);
    await time.advance(1000);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 1, repaired: 0, unrepairable: 1 });
    const report = await b.node.verify({ repair: true });
    expect(report.repairFrom).toBe("peers");
    expect(report.repaired).toEqual([]);
    expect(report.unrepairable.map((d) => d.id)).toEqual([idToHex(victim)]);
    expect(report.unrepairable[0]!.affected).toEqual([{ folder: "team", version: idToHex((await b.node.metadata.getFolder("team"))!.head!) }]);

    // The peer comes up with the content; the next background attempt (after retryMs) repairs it.
    await pushTo(a.node, "team", CONTENT);
    services.set("a", new PeerService(a.node));
    const downloadsBefore = transport.downloads;
    await time.advance(10_000);
    expect(transport.downloads).toBe(downloadsBefore); // not before the retry is due
    await time.advance(25_000);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 0, repaired: 1, unrepairable: 0 });
    expect(await b.store.get(victim)).toEqual(objects.chunk(victim)!);
    repairer.stop();
  });

  test("a peer that comes back is asked at once for what no peer had (retryNow), not after the retry delay", async () => {
    const time = new ManualTime();
    const a = await makeNode("a", time);
    const b = await makeNode("b", time);
    const services = new Map<string, PeerService>();
    const objects = await pushTo(b.node, "team", CONTENT);
    const repairer = new Repairer({ store: b.store, source: new PeerObjectSource(transportTo(services), () => ["a"]), clock: time.clock, timers: time });
    b.node.setRepairer(repairer);
    await repairer.start();
    const victim = chunkIdsOf(objects)[6]!;
    b.store.damageForTesting(victim);
    await expect(b.store.get(victim)).rejects.toThrow(/corrupt/);
    await time.advance(1000);
    expect((await b.node.corruptionStatus()).unrepairable).toBe(1);
    await pushTo(a.node, "team", CONTENT);
    services.set("a", new PeerService(a.node));
    repairer.retryNow();
    await time.advance(1);
    expect(await b.node.corruptionStatus()).toEqual({ quarantined: 0, repaired: 1, unrepairable: 0 });
    repairer.stop();
  });

  test("a peer's copy that does not hash to its id is refused and another peer is asked", async () => {
    const time = new ManualTime();
    const c = await makeNode("c", time);
    const b = await makeNode("b", time);
    const objects = await pushTo(b.node, "team", CONTENT);
    await pushTo(c.node, "team", CONTENT);
    const victim = chunkIdsOf(objects)[3]!;
    // Peer a lies: it answers with other bytes under the id.
    const lying = { download: async (ids: readonly ObjectId[]) => ({ objects: ids.map((id) => ({ id, bytes: new Uint8Array([1, 2, 3]) })), missing: [] }) };
    const transport = transportTo(new Map([["a", lying as unknown as PeerService], ["c", new PeerService(c.node)]]));
    const repairer = new Repairer({ store: b.store, source: new PeerObjectSource(transport, () => ["a", "c"]), clock: time.clock, timers: time });
    b.store.damageForTesting(victim);
    await expect(b.store.get(victim)).rejects.toThrow(/corrupt/);
    const result = await repairer.repair([victim]);
    expect(result.repaired.map(idToHex)).toEqual([idToHex(victim)]);
    expect(repairer.stats.rejectedCopies).toBe(1);
    expect(await b.store.get(victim)).toEqual(objects.chunk(victim)!);
  });

  test("two nodes that both found the same object corrupt do not ask each other for it in turn", async () => {
    const time = new ManualTime();
    const a = await makeNode("a", time);
    const b = await makeNode("b", time);
    const objects = await pushTo(a.node, "team", CONTENT);
    await pushTo(b.node, "team", CONTENT);
    const services = new Map([
      ["a", new PeerService(a.node)],
      ["b", new PeerService(b.node)],
    ]);
    const fromA = transportTo(services);
    const fromB = transportTo(services);
    const repairA = new Repairer({ store: a.store, source: new PeerObjectSource(fromA, () => ["b"]), clock: time.clock, timers: time });
    const repairB = new Repairer({ store: b.store, source: new PeerObjectSource(fromB, () => ["a"]), clock: time.clock, timers: time });
    a.node.setRepairer(repairA);
    b.node.setRepairer(repairB);
    const victim = chunkIdsOf(objects)[4]!;
    for (const store of [a.store, b.store]) {
      store.damageForTesting(victim);
      await expect(store.get(victim)).rejects.toThrow(/corrupt/);
    }
    const result = await repairA.repair([victim]);
    expect(result.unrepairable.map(idToHex)).toEqual([idToHex(victim)]);
    // A asked B once; B answered from what it holds, without turning to A.
    expect(fromA.downloads).toBe(1);
    expect(fromB.downloads).toBe(0);
  });

  test("the scrub keeps its position across restarts and paces itself to the rate", async () => {
    const time = new ManualTime();
    const b = await makeNode("b", time);
    await pushTo(b.node, "team", CONTENT);
    const saved: string[] = [];
    const position = { load: () => saved.at(-1), save: (value: string) => void saved.push(value) };
    const first = new Scrubber({ store: b.store, bytesPerSecond: 10_000, clock: time.clock, timers: time, position, saveEveryMs: 0 });
    first.start();
    await time.advance(2500); // steps at 0, 1000 and 2000 ms
    expect(first.stats.checkedObjects).toBeGreaterThan(0);
    // Within the rate: no more than one object past each step's budget.
    expect(first.stats.checkedBytes).toBeLessThanOrEqual(3 * (10_000 + 4096));
    first.stop();
    await first.settled();
    const stoppedAt = first.stats.position;
    expect(stoppedAt).not.toBeNull();
    expect(saved.at(-1)).toBe(stoppedAt!);
    const second = new Scrubber({ store: b.store, bytesPerSecond: 10_000, clock: time.clock, timers: time, position });
    expect(second.stats.position).toBe(stoppedAt);
    const total = (await b.store.stats()).objects;
    let steps = 0;
    while (second.stats.passes === 0 && steps++ < 100) await second.step();
    // The rest of the pass: together the two runs checked every object once.
    expect(first.stats.checkedObjects + second.stats.checkedObjects).toBe(total);
  });

  test("saves of the scrub position land one after another, and settled() waits for the last, made at stop", async () => {
    const time = new ManualTime();
    const b = await makeNode("b", time);
    await pushTo(b.node, "team", CONTENT);
    // A store that answers later, the first save slowest: unordered, it would land last.
    const landed: string[] = [];
    let saves = 0;
    const position = {
      load: () => undefined,
      save: async (value: string) => {
        await Bun.sleep(saves++ === 0 ? 60 : 5);
        landed.push(value);
      },
    };
    const scrubber = new Scrubber({ store: b.store, bytesPerSecond: 10_000, clock: time.clock, timers: time, position, saveEveryMs: 0 });
    scrubber.start();
    await time.advance(1500);
    scrubber.stop();
    const stoppedAt = scrubber.stats.position;
    expect(stoppedAt).not.toBeNull();
    await scrubber.settled();
    expect(landed.length).toBe(saves);
    expect(landed.at(-1)).toBe(stoppedAt!);
  });

  test("the scrub writes its position only when it moved: an empty or small store ends a pass every step without a write each time", async () => {
    const time = new ManualTime();
    const empty = await makeNode("empty", time);
    const saved: string[] = [];
    const position = { load: () => saved.at(-1), save: (value: string) => void saved.push(value) };
    const idle = new Scrubber({ store: empty.store, bytesPerSecond: 10_000, clock: time.clock, timers: time, position, saveEveryMs: 0 });
    idle.start();
    await time.advance(20_500); // 21 steps, each a whole (empty) pass
    expect(idle.stats.passes).toBeGreaterThanOrEqual(20);
    // The start of a pass, once; nothing more while it stays there, nor at stop.
    expect(saved).toEqual([""]);
    idle.stop();
    await idle.settled();
    expect(saved).toEqual([""]);
    // A restart from that position writes nothing either.
    const again = new Scrubber({ store: empty.store, bytesPerSecond: 10_000, clock: time.clock, timers: time, position, saveEveryMs: 0 });
    again.start();
    await time.advance(5_500);
    again.stop();
    await again.settled();
    expect(saved).toEqual([""]);

    // A store that fits one step: each pass ends at the start again, so the position never moves once saved.
    const small = await makeNode("small", time);
    await pushTo(small.node, "team", CONTENT);
    const smallSaved: string[] = [];
    const smallPosition = { load: () => undefined, save: (value: string) => void smallSaved.push(value) };
    const whole = new Scrubber({ store: small.store, bytesPerSecond: 100_000_000, clock: time.clock, timers: time, position: smallPosition, saveEveryMs: 0 });
    whole.start();
    await time.advance(10_500);
    whole.stop();
    await whole.settled();
    expect(whole.stats.passes).toBeGreaterThanOrEqual(10);
    expect(smallSaved).toEqual([""]);
  });
});
