// Block signatures, matching and the delta dictionary (src/core/block-signatures.ts,
// src/core/delta-base.ts) with the frame of src/wire/delta-frame.ts: the signature bytes are
// pinned (a node and a client of different builds must agree on them), and a delta made from
// signatures alone rebuilds exactly the new bytes from the old ones under random edits (inserts,
// deletes, flips, shifts), as the one-shot plain object would be.
import { describe, expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { BlockIndex, blockSignatures, DEFAULT_BLOCK_BYTES, SIGNATURE_BYTES, weakChecksum } from "../../src/core/block-signatures.ts";
import { dictionaryFromBases, dictionaryFromFresh, runsFromMatches, DeltaBaseError } from "../../src/core/delta-base.ts";
import { idToHex } from "../../src/core/id.ts";
import { compressWithDictionary, decodeDeltaFrame, encodeDeltaFrame, rebuildFromDelta } from "../../src/wire/delta-frame.ts";
import { createPrng, type Prng } from "../helpers/prng.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** What a client does for one new chunk against old chunks it never read: signatures in, delta out. */
function makeDelta(fresh: Uint8Array, olds: Uint8Array[], blockBytes = DEFAULT_BLOCK_BYTES) {
  const index = new BlockIndex(blockBytes);
  const firstBlock: number[] = [];
  for (const old of olds) {
    firstBlock.push(index.blocks);
    index.add(blockSignatures(old, blockBytes));
  }
  const matches = index.match(fresh);
  const place = (block: number) => {
    let chunk = firstBlock.length - 1;
    while (firstBlock[chunk]! > block) chunk--;
    return { chunk, block: block - firstBlock[chunk]! };
  };
  const { runs, bases } = runsFromMatches(matches, place);
  const frame = compressWithDictionary(fresh, dictionaryFromFresh(fresh, matches, blockBytes), 3);
  const ids = bases.map((b) => blake3(olds[b]!));
  const bytes = encodeDeltaFrame({ blockBytes, rebuiltBytes: fresh.length, furtherBases: ids.slice(1), runs, frame });
  return { bytes, bases: bases.map((b) => olds[b]!), matches };
}

function edit(prng: Prng, old: Uint8Array): Uint8Array {
  let bytes = old.slice();
  const edits = 1 + prng.nextInt(6);
  for (let e = 0; e < edits; e++) {
    const at = prng.nextInt(bytes.length + 1);
    switch (prng.nextInt(4)) {
      case 0: { // insert
        const piece = prng.bytes(1 + prng.nextInt(300));
        bytes = Buffer.concat([bytes.subarray(0, at), piece, bytes.subarray(at)]);
        break;
      }
      case 1: { // delete
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + 1 + prng.nextInt(2000)))]);
        break;
      }
      case 2: // flip
        if (bytes.length > 0) bytes[Math.min(at, bytes.length - 1)]! ^= 1 + prng.nextInt(255);
        break;
      default: { // shift: a stretch moved elsewhere
        const length = prng.nextInt(5000);
        const piece = bytes.slice(at, at + length);
        const rest = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + length)]);
        const to = prng.nextInt(rest.length + 1);
        bytes = Buffer.concat([rest.subarray(0, to), piece, rest.subarray(to)]);
      }
    }
  }
  return new Uint8Array(bytes);
}

describe("block signatures", () => {
  test("rsync's weak checksum, and the signature bytes, are pinned", () => {
    const text = new TextEncoder().encode("The quick brown fox jumps over the lazy dog");
    // s1, the byte sum, is Adler-32's a less its 1 (0x0fda); both halves mod 2^16, not 65521.
    expect(weakChecksum(text, 0, text.length).toString(16)).toBe("5ba20fd9");
    const old = createPrng(7).bytes(3 * 64 + 10);
    const signatures = blockSignatures(old, 64);
    expect(signatures.length).toBe(3 * SIGNATURE_BYTES); // the 10-byte tail is not signed
    // Per block: the weak checksum, then the first 8 bytes of the block's BLAKE3.
    expect(hex(signatures)).toBe("f1b61e92" + "0281227d9f190fc4" + "2eea20a0" + "12b0f48f23919357" + "13881fc4" + "e3bd490e018b06b4");
  });

  test("the rolling checksum agrees with the one computed afresh at every offset it matches", () => {
    const prng = createPrng(11);
    const old = prng.bytes(8192);
    const fresh = new Uint8Array(Buffer.concat([prng.bytes(37), old.subarray(1000, 5000), prng.bytes(3), old.subarray(6000)]));
    const index = new BlockIndex(512);
    index.add(blockSignatures(old, 512));
    const matches = index.match(fresh);
    // Blocks 2..8 lie whole in old[1000, 5000) (bytes 1024..4607), 12..15 in old[6000, 8192).
    expect(matches.map((m) => m.block)).toEqual([2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15]);
    for (const m of matches) expect(hex(fresh.subarray(m.offset, m.offset + 512))).toBe(hex(old.subarray(m.block * 512, m.block * 512 + 512)));
  });

  test("equal blocks match the first of them, and nothing matches in unrelated bytes", () => {
    const zeros = new Uint8Array(4096);
    const index = new BlockIndex(1024);
    index.add(blockSignatures(zeros, 1024));
    expect(index.match(new Uint8Array(2048)).map((m) => m.block)).toEqual([0, 0]);
    const other = new BlockIndex(512);
    other.add(blockSignatures(createPrng(1).bytes(65536), 512));
    expect(other.match(createPrng(2).bytes(65536))).toEqual([]);
  });
});

describe("delta frames", () => {
  test("rebuild exactly under random edits, against one and several old chunks", () => {
    const prng = createPrng(2026);
    let matched = 0;
    for (let round = 0; round < 60; round++) {
      const olds = [prng.bytes(4000 + prng.nextInt(70000)), prng.bytes(prng.nextInt(20000))];
      // New bytes made from the first old chunk edited, sometimes with a piece of the second.
      let fresh = edit(prng, olds[0]!);
      if (round % 3 === 0) fresh = new Uint8Array(Buffer.concat([fresh, olds[1]!.subarray(0, prng.nextInt(olds[1]!.length + 1))]));
      const delta = makeDelta(fresh, olds);
      matched += delta.matches.length;
      const decoded = decodeDeltaFrame(delta.bytes);
      const rebuilt = rebuildFromDelta(decoded, delta.bases);
      expect(idToHex(blake3(rebuilt))).toBe(idToHex(blake3(fresh)));
    }
    expect(matched).toBeGreaterThan(1000);
  });

  test("a small change costs a small delta", () => {
    const old = createPrng(3).bytes(65536);
    const fresh = old.slice();
    fresh[30000]! ^= 0x55;
    const delta = makeDelta(fresh, [old]);
    expect(delta.bytes.length).toBeLessThan(900);
  });

  test("the frame's layout is pinned", () => {
    const id = new Uint8Array(32).fill(0xab);
    const bytes = encodeDeltaFrame({ blockBytes: 512, rebuiltBytes: 70000, furtherBases: [id as never], runs: [{ base: 1, firstBlock: 3, blocks: 2 }], frame: new Uint8Array([0xee]) });
    expect(hex(bytes)).toBe("01" + "09" + "00011170" + "01" + "ab".repeat(32) + "00000001" + "01" + "00000003" + "00000002" + "ee");
  });

  test("malformed and oversized deltas are refused", () => {
    const good = makeDelta(createPrng(4).bytes(10000), [createPrng(4).bytes(10000)]);
    const decoded = decodeDeltaFrame(good.bytes);
    const bad = (mutate: (b: Uint8Array) => void) => {
      const b = good.bytes.slice();
      mutate(b);
      return () => decodeDeltaFrame(b);
    };
    expect(bad((b) => (b[0] = 2))).toThrow("unknown delta format");
    expect(bad((b) => (b[1] = 20))).toThrow("block size");
    expect(bad((b) => new DataView(b.buffer).setUint32(2, 9 * 1024 * 1024))).toThrow("more than an object's");
    expect(bad((b) => (b[6] = 200))).toThrow("bases");
    expect(() => decodeDeltaFrame(good.bytes.subarray(0, 9))).toThrow();
    expect(bad((b) => new DataView(b.buffer).setUint32(7, 1_000_000))).toThrow("ends inside its runs");
    // A dictionary longer than the object (blocks found never overlap in it), a base no run uses.
    const runs = (list: { base: number; firstBlock: number; blocks: number }[], further: Uint8Array[] = [], rebuiltBytes = 10000) =>
      () => decodeDeltaFrame(encodeDeltaFrame({ blockBytes: 512, rebuiltBytes, furtherBases: further as never, runs: list, frame: new Uint8Array(4) }));
    expect(runs([{ base: 0, firstBlock: 0, blocks: 19 }], [], 9000)).toThrow("longer than the 9000 bytes");
    expect(runs([{ base: 0, firstBlock: 0, blocks: 2 }], [new Uint8Array(32)])).toThrow("names 2 bases and takes blocks of 1");
    // A run past its base, a base not given, a declared length the frame does not have.
    expect(() => rebuildFromDelta({ ...decoded, runs: [{ base: 0, firstBlock: 19, blocks: 1 }] }, good.bases)).toThrow("of a base of 19 blocks");
    expect(() => rebuildFromDelta(decoded, [])).toThrow("names base 0 of 0");
    expect(() => rebuildFromDelta({ ...decoded, rebuiltBytes: 9999 }, good.bases)).toThrow();
    expect(() => rebuildFromDelta({ ...decoded, rebuiltBytes: 10001 }, good.bases)).toThrow("declares 10001");
    expect(() => dictionaryFromBases([new Uint8Array(4096)], [{ base: 0, firstBlock: 0, blocks: 8 }], 512, 1024)).toThrow(DeltaBaseError);
  });
});
