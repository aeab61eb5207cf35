// Re-chunking a changed file against its previous chunk list gives exactly the chunks a fresh
// pass gives, for every kind of edit.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from "../../src/core/fastcdc.ts";
import { idToHex } from "../../src/core/id.ts";
import type { ChunkRef } from "../../src/core/objects.ts";
import { forEachChunk } from "../../src/fs/chunk-reader.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";
import { randomBytes } from "../helpers/trees.ts";

afterAll(() => cleanupTempDirs());

const SMALL: ChunkerParams = { minSizeBytes: 1024, avgSizeBytes: 4096, maxSizeBytes: 16384 };

async function chunksOf(bytes: Uint8Array, params: ChunkerParams, previous?: readonly ChunkRef[]) {
  const path = join(tempDir(), "file.bin");
  writeFileSync(path, bytes);
  const fd = openSync(path, "r");
  const out: { offset: number; length: number; id: string }[] = [];
  try {
    await forEachChunk(fd, new Uint8Array(params.maxSizeBytes * 4), params, ({ id, offsetBytes, bytes: view }) => {
      out.push({ offset: offsetBytes, length: view.length, id: idToHex(id) });
    }, undefined, previous);
  } finally {
    closeSync(fd);
  }
  return out;
}

const asRefs = (chunks: { length: number; id: string }[]): ChunkRef[] =>
  chunks.map((c) => ({ id: Uint8Array.from(Buffer.from(c.id, "hex")) as ChunkRef["id"], lengthBytes: c.length }));

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe.each([
  ["small chunks", SMALL, 400_000],
  ["default chunks", DEFAULT_CHUNKER_PARAMS, 3_000_000],
])("%s", (_name, params, size) => {
  const base = randomBytes(size, 11);
  const edits: [string, () => Uint8Array][] = [
    ["unchanged", () => base],
    ["one byte overwritten in the middle", () => { const b = base.slice(); b[size >> 1] ^= 1; return b; }],
    ["1 KiB overwritten at the start", () => { const b = base.slice(); b.set(randomBytes(1024, 3), 0); return b; }],
    ["bytes inserted in the middle", () => concat(base.subarray(0, size >> 1), randomBytes(777, 4), base.subarray(size >> 1))],
    ["bytes deleted in the middle", () => concat(base.subarray(0, size >> 1), base.subarray((size >> 1) + 5000))],
    ["appended", () => concat(base, randomBytes(10_000, 5))],
    ["truncated", () => base.subarray(0, size - 12_345)],
    ["truncated inside the last chunk by one byte", () => base.subarray(0, size - 1)],
    ["prepended", () => concat(randomBytes(100, 6), base)],
    ["replaced entirely", () => randomBytes(size, 7)],
    ["emptied", () => new Uint8Array(0)],
    ["two edits far apart", () => { const b = base.slice(); b[1000] ^= 1; b[size - 1000] ^= 1; return b; }],
    ["a repeated block (duplicate chunks)", () => concat(base.subarray(0, 200_000), base.subarray(0, 200_000), base.subarray(200_000))],
  ];
  test.each(edits)("%s", async (_edit, make) => {
    const previous = asRefs(await chunksOf(base, params));
    const edited = make();
    const fresh = await chunksOf(edited, params);
    const hinted = await chunksOf(edited, params, previous);
    expect(hinted).toEqual(fresh);
  });
});
