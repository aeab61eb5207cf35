// Block signatures of an old chunk, and finding its blocks again in new bytes: the first half of
// a delta against a chunk only the receiving side holds (docs/format.md, "Delta frames").
//
// The node cuts the old chunk into fixed blocks and sends, per block, a weak rolling checksum
// (rsync's, 32 bits) and the first 8 bytes of the block's BLAKE3. The sender rolls the weak
// checksum over its new chunk, byte by byte; where it names a block, the strong hash decides.
// A block found is one whose bytes the sender holds (in its new chunk), so both sides can build
// the same dictionary (src/core/delta-base.ts) without the sender ever seeing the old chunk.
// Pure: no I/O; the strong hash is BLAKE3, which is core's.
import { blake3 } from "./blake3.ts";

/** Bytes per signature: the weak checksum (u32, big-endian) then the strong hash's first bytes. */
export const SIGNATURE_WEAK_BYTES = 4;
export const SIGNATURE_STRONG_BYTES = 8;
export const SIGNATURE_BYTES = SIGNATURE_WEAK_BYTES + SIGNATURE_STRONG_BYTES;
/** Block sizes a signature may use: powers of two in this range (each side checks the other's). */
export const BLOCK_BYTES_MIN = 64;
export const BLOCK_BYTES_MAX = 64 * 1024;
/**
 * The block size nodes sign with. Measured on the release update (docs/benchmarks.md, case 4):
 * TypeScript 5.5.4 -> 5.6.3's new chunks (19.8 MiB) go in 0.83 MiB of deltas and 0.49 MiB of
 * signatures at 512 bytes, against 1.15 + 0.94 at 256 and 1.61 + 0.23 at 1 KiB. Signatures cost
 * 12 bytes per block: 2.3% of the old chunk.
 */
export const DEFAULT_BLOCK_BYTES = 512;

export function isValidBlockBytes(blockBytes: number): boolean {
  return Number.isInteger(blockBytes) && blockBytes >= BLOCK_BYTES_MIN && blockBytes <= BLOCK_BYTES_MAX && (blockBytes & (blockBytes - 1)) === 0;
}

/** Full blocks of a chunk of `lengthBytes` (a tail shorter than a block is never signed or matched). */
export function blockCount(lengthBytes: number, blockBytes: number): number {
  return Math.floor(lengthBytes / blockBytes);
}

/** rsync's weak checksum of `bytes[start, start + length)`: s1 (sum) in the low half, s2 (weighted sum) in the high half, each mod 2^16. */
export function weakChecksum(bytes: Uint8Array, start: number, length: number): number {
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < length; i++) {
    s1 = (s1 + bytes[start + i]!) & 0xffff;
    s2 = (s2 + s1) & 0xffff;
  }
  return ((s2 << 16) | s1) >>> 0;
}

/** The signatures of every full block of `old`, SIGNATURE_BYTES each, in block order. */
export function blockSignatures(old: Uint8Array, blockBytes: number): Uint8Array {
  if (!isValidBlockBytes(blockBytes)) throw new RangeError(`block size ${blockBytes} is not a power of two in [${BLOCK_BYTES_MIN}, ${BLOCK_BYTES_MAX}]`);
  const count = blockCount(old.length, blockBytes);
  const out = new Uint8Array(count * SIGNATURE_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < count; b++) {
    const start = b * blockBytes;
    view.setUint32(b * SIGNATURE_BYTES, weakChecksum(old, start, blockBytes));
    out.set(blake3(old.subarray(start, start + blockBytes)).subarray(0, SIGNATURE_STRONG_BYTES), b * SIGNATURE_BYTES + SIGNATURE_WEAK_BYTES);
  }
  return out;
}

/**
 * Bits of the weak checksums' filter (a set bit may name a block, a clear one names none): about
 * 64 per block expected, so that one rolled position in 64 asks the Map, between 2^16 and 2^24
 * (2 MiB, for 256 000 blocks: 128 MiB of old chunks).
 */
const FILTER_BITS_LOG2_MIN = 16;
const FILTER_BITS_LOG2_MAX = 24;

/** Whether the strong prefix in `strong` at `at` equals the start of `hash`. */
function strongEquals(strong: Uint8Array, at: number, hash: Uint8Array): boolean {
  for (let i = 0; i < SIGNATURE_STRONG_BYTES; i++) if (strong[at + i] !== hash[i]) return false;
  return true;
}

/** A block of new bytes found among the signed blocks: `block` (its index in the signatures) at `offset`. */
export interface BlockMatch {
  block: number;
  offset: number;
}

/**
 * The signed blocks of one or more old chunks (their signatures added in order, blocks numbered
 * globally in that order), indexed by weak checksum behind a bit filter, so that rolling over
 * new bytes asks the index only where a block may start. Grows as signatures arrive; matched
 * against many new chunks.
 */
export class BlockIndex {
  private readonly filter: Uint32Array;
  private readonly filterMask: number;
  /** The last block added with each weak checksum; `previous` chains to the earlier ones. */
  private readonly latest = new Map<number, number>();
  private previous = new Int32Array(1024);
  private strong = new Uint8Array(1024 * SIGNATURE_STRONG_BYTES);
  blocks = 0;

  /** `expectedBlocks` sizes the filter (more blocks than that still work, with more false hits). */
  constructor(readonly blockBytes: number, expectedBlocks = 1 << 18) {
    if (!isValidBlockBytes(blockBytes)) throw new RangeError(`block size ${blockBytes} is not a power of two in [${BLOCK_BYTES_MIN}, ${BLOCK_BYTES_MAX}]`);
    const bitsLog2 = Math.min(FILTER_BITS_LOG2_MAX, Math.max(FILTER_BITS_LOG2_MIN, Math.ceil(Math.log2(Math.max(1, expectedBlocks) * 64))));
    this.filter = new Uint32Array(1 << (bitsLog2 - 5));
    this.filterMask = (1 << bitsLog2) - 1;
  }

  /** Adds the blocks of `signatures` (blockSignatures' output), numbered from `blocks` on. */
  add(signatures: Uint8Array): void {
    if (signatures.length % SIGNATURE_BYTES !== 0) throw new RangeError("signatures are not whole");
    const count = signatures.length / SIGNATURE_BYTES;
    const total = this.blocks + count;
    if (total > this.previous.length) {
      const size = Math.max(total, this.previous.length * 2);
      const previous = new Int32Array(size);
      previous.set(this.previous.subarray(0, this.blocks));
      this.previous = previous;
      const strong = new Uint8Array(size * SIGNATURE_STRONG_BYTES);
      strong.set(this.strong.subarray(0, this.blocks * SIGNATURE_STRONG_BYTES));
      this.strong = strong;
    }
    const view = new DataView(signatures.buffer, signatures.byteOffset, signatures.byteLength);
    for (let i = 0; i < count; i++) {
      const b = this.blocks + i;
      const weak = view.getUint32(i * SIGNATURE_BYTES);
      const at = (weak ^ (weak >>> 11)) & this.filterMask;
      this.filter[at >>> 5]! |= 1 << (at & 31);
      this.previous[b] = this.latest.get(weak) ?? -1;
      this.latest.set(weak, b);
      this.strong.set(signatures.subarray(i * SIGNATURE_BYTES + SIGNATURE_WEAK_BYTES, (i + 1) * SIGNATURE_BYTES), b * SIGNATURE_STRONG_BYTES);
    }
    this.blocks = total;
  }

  /**
   * Where signed blocks occur in `fresh`, left to right, not overlapping: at each position the
   * first block (in signature order) whose weak checksum and strong hash both match; after a
   * match the window jumps past it, as rsync's does.
   */
  match(fresh: Uint8Array): BlockMatch[] {
    const matches: BlockMatch[] = [];
    const blockBytes = this.blockBytes;
    if (this.blocks === 0 || fresh.length < blockBytes) return matches;
    const filter = this.filter;
    const filterMask = this.filterMask;
    const last = fresh.length - blockBytes;
    let p = 0;
    while (p <= last) {
      const weak = weakChecksum(fresh, p, blockBytes);
      let s1 = weak & 0xffff;
      let s2 = weak >>> 16;
      // Roll until the filter says a block may start here (the low bits of the hash are the same
      // whether the checksum is read signed or not, so the hot loop never makes it unsigned).
      for (;;) {
        const w = (s2 << 16) | s1;
        const at = (w ^ (w >>> 11)) & filterMask;
        if ((filter[at >>> 5]! & (1 << (at & 31))) !== 0) {
          const block = this.strongMatch(w >>> 0, fresh.subarray(p, p + blockBytes));
          if (block !== -1) {
            matches.push({ block, offset: p });
            p += blockBytes;
            break;
          }
        }
        if (p === last) return matches;
        // Roll one byte: out goes fresh[p], in comes fresh[p + blockBytes].
        const out = fresh[p]!;
        s1 = (s1 - out + fresh[p + blockBytes]!) & 0xffff;
        s2 = (s2 - blockBytes * out + s1) & 0xffff;
        p++;
      }
    }
    return matches;
  }

  /** The earliest block (by number) whose weak checksum is `weak` and whose strong hash is the window's; -1 when none. */
  private strongMatch(weak: number, window: Uint8Array): number {
    let b = this.latest.get(weak);
    if (b === undefined) return -1;
    const hash = blake3(window);
    let best = -1;
    for (; b !== -1; b = this.previous[b]!) if (strongEquals(this.strong, b * SIGNATURE_STRONG_BYTES, hash)) best = b;
    return best;
  }
}
