import { describe, expect, test } from "bun:test";
import { idFromBytes, idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { isFileLeaf, isTreeLeaf, type ChunkRef, type StructuredObject, type TreeEntry } from "../../src/core/objects.ts";
import { buildFileNodes, buildTreeNodes, nameBoundaryHash, readFileChunks, readTreeEntries, splitIntoPages, type SealedObject } from "../../src/core/pages.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { createPrng, type Prng } from "../helpers/prng.ts";

function randomChunks(prng: Prng, count: number): ChunkRef[] {
  return Array.from({ length: count }, () => ({ id: idFromBytes(prng.bytes(32)), lengthBytes: 1 + prng.nextInt(65536) }));
}

const entryName = (i: number) => `file-${String(i).padStart(6, "0")}`;

function randomEntries(prng: Prng, count: number): TreeEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    name: entryName(i),
    kind: "file" as const,
    mode: 0o644,
    mtimeMs: 1_700_000_000_000 + i,
    sizeBytes: 100,
    id: idFromBytes(prng.bytes(32)),
    target: null,
  }));
}

function stored(objects: readonly SealedObject[]): MemoryObjects {
  const memory = new MemoryObjects();
  memory.putObjects(objects);
  return memory;
}

const rootOf = <T extends StructuredObject>(objects: readonly SealedObject<T>[]) => objects[objects.length - 1]!;

/** Node ids grouped by level. */
function idsByLevel(objects: readonly SealedObject[]): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const sealed of objects) {
    const level = (sealed.object as { level: number }).level;
    if (!out.has(level)) out.set(level, new Set());
    out.get(level)!.add(idToHex(sealed.id));
  }
  return out;
}

// Built once and shared by the tests below: the large lists are the slow part. With these seeds
// both lists need three levels (leaves, one level of inner pages, a root above them).
const bigChunks = randomChunks(createPrng(2), 100_000);
const bigChunkNodes = buildFileNodes(bigChunks);
// (Seed 1 for the entries since tree format 2: the inner cuts follow the leaves' ids, which changed.)
const bigEntries = randomEntries(createPrng(1), 20_000);
const bigTreeNodes = buildTreeNodes(bigEntries);

describe("small lists", () => {
  test("a short chunk list is one level-0 file node", () => {
    const chunks = randomChunks(createPrng(3), 10);
    const nodes = buildFileNodes(chunks);
    expect(nodes).toHaveLength(1);
    const root = nodes[0]!.object;
    expect(isFileLeaf(root) && root.chunks).toEqual(chunks);
    expect(root.sizeBytes).toBe(chunks.reduce((sum, c) => sum + c.lengthBytes, 0));
  });

  test("a short entry list is one level-0 tree node", () => {
    const entries = randomEntries(createPrng(4), 10);
    const nodes = buildTreeNodes(entries);
    expect(nodes).toHaveLength(1);
    const root = nodes[0]!.object;
    expect(isTreeLeaf(root) && root.entries).toEqual(entries);
  });

  test.each([
    ["file", () => buildFileNodes([])],
    ["tree", () => buildTreeNodes([])],
  ] as const)("an empty %s list is one empty leaf", (_kind, build) => {
    const nodes = build();
    expect(nodes).toHaveLength(1);
    expect(nodes[0]!.object).toMatchObject({ level: 0 });
  });
});

describe("long lists", () => {
  test("100 000 chunk refs are paged over several levels and read back exactly", async () => {
    const byLevel = idsByLevel(bigChunkNodes);
    const root = rootOf(bigChunkNodes).object;
    expect(root.level).toBeGreaterThanOrEqual(2);
    expect(byLevel.get(0)!.size).toBeGreaterThan(100_000 / LIMITS.pageEntriesMax);
    expect(byLevel.get(root.level)!.size).toBe(1);
    expect(root.sizeBytes).toBe(bigChunks.reduce((sum, c) => sum + c.lengthBytes, 0));
    const memory = stored(bigChunkNodes);
    const back = await readFileChunks(rootOf(bigChunkNodes).id, memory.load);
    expect(back.length).toBe(bigChunks.length);
    const allIds = (chunks: readonly ChunkRef[]) => Buffer.concat(chunks.map((c) => c.id));
    expect(allIds(back).equals(allIds(bigChunks))).toBe(true);
    expect(back.map((c) => c.lengthBytes)).toEqual(bigChunks.map((c) => c.lengthBytes));
  });

  test("20 000 tree entries are paged and read back exactly", async () => {
    const root = rootOf(bigTreeNodes);
    expect(root.object.level).toBeGreaterThanOrEqual(2);
    const back = await readTreeEntries(root.id, stored(bigTreeNodes).load);
    expect(back).toEqual(bigEntries);
  });

  test("every page but the last of a level holds between the minimum and the maximum", () => {
    for (const nodes of [bigChunkNodes, bigTreeNodes]) {
      const lengths = new Map<number, number[]>();
      for (const { object } of nodes) {
        const count = "chunks" in object ? object.chunks.length : "entries" in object ? object.entries.length : object.pages.length;
        const level = (object as { level: number }).level;
        lengths.set(level, [...(lengths.get(level) ?? []), count]);
      }
      for (const counts of lengths.values()) {
        for (const count of counts.slice(0, -1)) {
          expect(count).toBeGreaterThanOrEqual(LIMITS.pageEntriesMin);
          expect(count).toBeLessThanOrEqual(LIMITS.pageEntriesMax);
        }
      }
    }
  });

  test("inner tree pages carry the first name below them", () => {
    const byId = new Map(bigTreeNodes.map((n) => [idToHex(n.id), n.object]));
    for (const { object } of bigTreeNodes) {
      if (isTreeLeaf(object)) continue;
      for (const page of object.pages) {
        const child = byId.get(idToHex(page.id))!;
        const first = isTreeLeaf(child) ? child.entries[0]!.name : child.pages[0]!.firstName;
        expect(page.firstName).toBe(first);
      }
    }
  });
});

describe("edits touch few pages", () => {
  function newIdsPerLevel(before: readonly SealedObject[], after: readonly SealedObject[]): number[] {
    const old = idsByLevel(before);
    const fresh = idsByLevel(after);
    const levels = Math.max(...old.keys(), ...fresh.keys());
    return Array.from({ length: levels + 1 }, (_, level) => [...(fresh.get(level) ?? [])].filter((id) => !old.get(level)?.has(id)).length);
  }

  test("inserting one entry in the middle of 20 000 changes at most 3 pages per level", () => {
    const inserted: TreeEntry = { ...bigEntries[10_000]!, name: `${entryName(10_000)}a`, id: idFromBytes(createPrng(5).bytes(32)) };
    const after = buildTreeNodes([...bigEntries.slice(0, 10_001), inserted, ...bigEntries.slice(10_001)]);
    const changed = newIdsPerLevel(bigTreeNodes, after);
    for (const count of changed) expect(count).toBeLessThanOrEqual(3);
    const pages = idsByLevel(bigTreeNodes).get(0)!.size;
    const shared = [...idsByLevel(after).get(0)!].filter((id) => idsByLevel(bigTreeNodes).get(0)!.has(id)).length;
    expect(shared).toBeGreaterThanOrEqual(pages - 3);
  });

  test("changing one entry's content changes one leaf, and does not move the cuts between leaves", () => {
    const edited = bigEntries.map((e, i) => (i === 12_345 ? { ...e, id: idFromBytes(createPrng(8).bytes(32)), sizeBytes: 7 } : e));
    const after = buildTreeNodes(edited);
    const changed = newIdsPerLevel(bigTreeNodes, after);
    expect(changed[0]).toBe(1);
    for (const count of changed) expect(count).toBeLessThanOrEqual(3);
    // Leaves are cut by name, so each leaf holds the same names as before.
    const names = (nodes: readonly SealedObject[]) => nodes.filter((n) => n.object.kind === "tree" && isTreeLeaf(n.object)).map((n) => (n.object as { entries: TreeEntry[] }).entries.map((e) => e.name).join());
    expect(names(after)).toEqual(names(bigTreeNodes));
  });

  test("removing one chunk from the middle of 100 000 changes at most 3 file pages per level", () => {
    const after = buildFileNodes([...bigChunks.slice(0, 50_000), ...bigChunks.slice(50_001)]);
    for (const count of newIdsPerLevel(bigChunkNodes, after)) expect(count).toBeLessThanOrEqual(3);
  });
});

describe("determinism", () => {
  test("the same list gives the same ids, built again from copies", () => {
    const again = buildTreeNodes(bigEntries.map((e) => ({ ...e, id: idFromBytes(e.id!) })));
    expect(again.map((n) => idToHex(n.id))).toEqual(bigTreeNodes.map((n) => idToHex(n.id)));
    const chunksAgain = buildFileNodes(bigChunks.map((c) => ({ ...c })));
    expect(idToHex(rootOf(chunksAgain).id)).toBe(idToHex(rootOf(bigChunkNodes).id));
  });

  test("an entry removed and added back gives back the original ids", () => {
    const without = buildTreeNodes([...bigEntries.slice(0, 777), ...bigEntries.slice(778)]);
    expect(idToHex(rootOf(without).id)).not.toBe(idToHex(rootOf(bigTreeNodes).id));
    const back = buildTreeNodes([...bigEntries.slice(0, 777), bigEntries[777]!, ...bigEntries.slice(778)]);
    expect(idToHex(rootOf(back).id)).toBe(idToHex(rootOf(bigTreeNodes).id));
  });

  // The cut rule is part of the format: a peer with another rule would page the same directory
  // into different objects and lose all sharing. These values pin it.
  test.each([
    ["a", 0x1a80b1b3],
    ["README.md", 0xd5025d41],
    ["", 0xab3e7c0b],
    ["é", 0x8e4756c7],
  ])("nameBoundaryHash(%p) is pinned", (name, hash) => {
    expect(nameBoundaryHash(name)).toBe(hash);
  });

  test("splitIntoPages cuts after a matching entry once a page holds the minimum, and at the maximum", () => {
    const mask = (1 << LIMITS.pageEntriesAvgLog2) - 1;
    const items = Array.from({ length: 5000 }, (_, i) => i);
    // Every 100th item matches; item 5 matches too but comes before the minimum.
    const pages = splitIntoPages(items, (i) => (i % 100 === 99 || i === 5 ? 0 : mask));
    expect(pages[0]).toHaveLength(100);
    expect(pages.every((p, i) => i === pages.length - 1 || p.length === 100)).toBe(true);
    const never = splitIntoPages(items, () => mask);
    expect(never.map((p) => p.length)).toEqual([LIMITS.pageEntriesMax, LIMITS.pageEntriesMax, 5000 - 2 * LIMITS.pageEntriesMax]);
  });
});

describe("reading", () => {
  test("readTreeEntries refuses a file node and readFileChunks a tree node", async () => {
    const fileNodes = buildFileNodes(randomChunks(createPrng(7), 3));
    const memory = stored([...bigTreeNodes, ...fileNodes]);
    await expect(readTreeEntries(rootOf(fileNodes).id, memory.load)).rejects.toThrow(/expected a tree/);
    await expect(readFileChunks(rootOf(bigTreeNodes).id, memory.load)).rejects.toThrow(/expected a file/);
  });
});
