// The streaming file-node builder gives exactly the pages a one-shot split gives, and hands
// leaf pages out while chunks are still arriving (so a huge file never holds its whole list).
import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { sealObject, type ChunkRef, type FileNode } from "../../src/core/objects.ts";
import { FileNodeBuilder, splitIntoPages } from "../../src/core/pages.ts";

const firstWord = (id: Uint8Array) => (id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0;

/** A plain reference: split the whole list, then each level, with splitIntoPages. */
function referenceRoot(chunks: ChunkRef[]): { rootHex: string; leafCount: number } {
  let level = 0;
  let refs = splitIntoPages(chunks, (c) => firstWord(c.id)).map((page) => {
    const node: FileNode = { kind: "file", level: 0, sizeBytes: page.reduce((s, c) => s + c.lengthBytes, 0), chunks: page };
    return { id: sealObject(node).id, sizeBytes: node.sizeBytes };
  });
  const leafCount = refs.length;
  while (refs.length > 1) {
    level++;
    const nodeLevel = level;
    refs = splitIntoPages(refs, (r) => firstWord(r.id)).map((page) => {
      const node: FileNode = { kind: "file", level: nodeLevel, sizeBytes: page.reduce((s, r) => s + r.sizeBytes, 0), pages: page };
      return { id: sealObject(node).id, sizeBytes: node.sizeBytes };
    });
  }
  return { rootHex: idToHex(refs[0]!.id), leafCount };
}

test.each([0, 1, 15, 16, 300, 5_000, 40_000])("%i chunks: same root as a one-shot split; leaves handed out early", (count) => {
  const chunks: ChunkRef[] = Array.from({ length: count }, (_, i) => ({
    id: blake3(new TextEncoder().encode(`chunk ${i}`)) as ObjectId,
    lengthBytes: 1000 + (i % 5000),
  }));
  const builder = new FileNodeBuilder();
  let early = 0;
  for (const chunk of chunks) if (builder.add(chunk)) early++;
  const rest = builder.finish();
  const reference = referenceRoot(chunks);
  expect(idToHex(builder.rootId)).toBe(reference.rootHex);
  if (rest.length > 0) expect(idToHex(rest[rest.length - 1]!.id)).toBe(reference.rootHex);
  expect(builder.sizeBytes).toBe(chunks.reduce((s, c) => s + c.lengthBytes, 0));
  // Every leaf but possibly the last one is sealed before finish().
  expect(early).toBeGreaterThanOrEqual(reference.leafCount - 1);
});

test("a file whose last chunk completes its only leaf page: finish() has nothing left, rootId names that leaf", () => {
  // The smallest chunk count whose last chunk is a page boundary with no boundary before it:
  // add() seals the one leaf, so finish() seals nothing and its list is empty.
  const chunkAt = (i: number): ChunkRef => ({ id: blake3(new TextEncoder().encode(`leaf end ${i}`)) as ObjectId, lengthBytes: 700 + i });
  const chunks: ChunkRef[] = [];
  const builder = new FileNodeBuilder();
  let leaf: ReturnType<FileNodeBuilder["add"]>;
  for (let i = 0; leaf === undefined; i++) {
    chunks.push(chunkAt(i));
    leaf = builder.add(chunks[i]!);
  }
  expect(chunks.length).toBeGreaterThanOrEqual(16);
  expect(builder.finish()).toEqual([]);
  expect(builder.rootId).toEqual(leaf!.id);
  expect(idToHex(builder.rootId)).toBe(referenceRoot(chunks).rootHex);
});
