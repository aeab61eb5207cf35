// Every decoder, fed truncated, mutated and random bytes: it returns a valid value or throws a
// DecodeError, never anything else and never hangs (seeded, so a failure replays).
import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { DecodeError } from "../../src/core/encoding.ts";
import { decodeObject, encodeObject, type StructuredObject } from "../../src/core/objects.ts";
import { decodeDownloadReply, decodeIdList, decodeObjectBatch, encodeDownloadReply, encodeIdList, encodeObjectBatch } from "../../src/wire/formats.ts";
import { randomBytes } from "../helpers/trees.ts";

function prng(seed: number) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

const id = (n: number) => blake3(new Uint8Array([n]));
const samples: StructuredObject[] = [
  { kind: "file", level: 0, sizeBytes: 30, chunks: [{ id: id(1), lengthBytes: 10 }, { id: id(2), lengthBytes: 20 }] },
  { kind: "file", level: 1, sizeBytes: 30, pages: [{ id: id(3), sizeBytes: 30 }] },
  {
    kind: "tree",
    level: 0,
    entries: [
      { name: "a", kind: "file", mode: 0o644, mtimeMs: 1_700_000_000_000, sizeBytes: 30, id: id(4), target: null },
      { name: "b", kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: id(5), target: null },
      { name: "c", kind: "symlink", mode: 0o777, mtimeMs: 0, sizeBytes: 0, id: null, target: "a" },
    ],
  },
  { kind: "tree", level: 1, pages: [{ id: id(6), firstName: "a" }] },
  { kind: "version", root: id(7), parents: [id(8)], author: "node", hlcWallMs: 5, hlcCounter: 1, message: "m", versionVector: [{ node: "n", counter: 1 }], chunking: "fastcdc2020:16384:65536:262144" },
];

function mutations(bytes: Uint8Array, random: () => number, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const kind = Math.floor(random() * 4);
    if (kind === 0) out.push(bytes.subarray(0, Math.floor(random() * bytes.length)));
    else if (kind === 1) {
      const copy = bytes.slice();
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      out.push(copy);
    } else if (kind === 2) {
      const copy = new Uint8Array(bytes.length + 1 + Math.floor(random() * 8));
      copy.set(bytes);
      out.push(copy);
    } else out.push(randomBytes(1 + Math.floor(random() * 64), Math.floor(random() * 1e9)));
  }
  return out;
}

function expectOnlyDecodeErrors(decode: (bytes: Uint8Array) => unknown, inputs: Uint8Array[]): number {
  let rejected = 0;
  for (const input of inputs) {
    try {
      decode(input);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw new Error(`${(error as Error).name}: ${(error as Error).message} for ${Buffer.from(input).toString("hex")}`);
      rejected++;
    }
  }
  return rejected;
}

test("structured object decoder", () => {
  const random = prng(1234);
  let rejected = 0;
  for (const sample of samples) rejected += expectOnlyDecodeErrors(decodeObject, mutations(encodeObject(sample), random, 3000));
  expect(rejected).toBeGreaterThan(10_000);
});

test("wire decoders", () => {
  const random = prng(99);
  const batch = encodeObjectBatch([{ id: id(1), bytes: new Uint8Array([1, 2, 3]) }, { id: id(2), bytes: new Uint8Array(0) }]);
  expectOnlyDecodeErrors(decodeObjectBatch, mutations(batch, random, 3000));
  expectOnlyDecodeErrors((b) => decodeIdList(b), mutations(encodeIdList([id(1), id(2)]), random, 3000));
  expectOnlyDecodeErrors(decodeDownloadReply, mutations(encodeDownloadReply([{ id: id(1), bytes: new Uint8Array([9]) }], [id(2)]), random, 3000));
});
