// FastCDC content-defined chunking, the 2020 variant (Xia et al., "The Design of Fast
// Content-Defined Chunking for Data Deduplication Based Storage Systems", IEEE TPDS 2020).
//
// Files are cut where a rolling "gear" hash of the bytes matches a mask, so cut points follow
// the content: inserting or deleting bytes moves only the boundaries near the edit, and every
// other chunk keeps its BLAKE3 id and is deduplicated. The three ideas taken from the paper:
//
// - Gear hash: h = (h << 1) + GEAR[byte]. One shift, one add and one table load per byte; the
//   shift pushes old bytes out of the top, so a 32-bit hash sees the last 32 bytes.
// - Normalized chunking, level 2: before the average size the mask has log2(avg) + 2 bits (a
//   cut is 4x less likely), after it log2(avg) - 2 bits (4x more likely). Sizes bunch up around
//   the average, and the minimum size can be skipped without hashing (cut-point skipping).
// - Two bytes per step: (h << 2) + GEAR_LS[b0] is exactly (true hash after b0) << 1, tested
//   against MASK << 1; adding GEAR[b1] then gives the true hash after b1. That saves one shift
//   per two bytes and halves the loop overhead, and it finds the same cut points as a plain
//   byte-at-a-time loop (the tests check this against such a loop). The sum is grouped as
//   (h << 2) + (GEAR_LS[b0] + GEAR[b1]) so the chain from one step to the next is one shift and
//   one add per two bytes; the table sum and the first byte's test run beside it. That grouping
//   alone took the loop from ~1.1 to ~1.8 GB/s on an idle development machine (relative gain;
//   docs/benchmarks.md has the figures measured beside b3sum).
//
// This is part of the on-disk format: the gear table, the masks and the rules below decide the
// chunk ids, so for the same parameters the cut points must never change. New behaviour needs
// a new descriptor name (see chunkingDescriptor), never an edit here.
//
// The hot loop uses int32 arithmetic only (shifts, adds wrapped with `| 0`): JavaScript engines
// keep such values unboxed in registers, while BigInt or `>>> 0` per byte is several times slower.
//
// Exact cut rule, for a chunk starting at offset 0 of the bytes left (indices are into the chunk):
//   - The first minSizeBytes bytes are skipped: the hash starts at 0 and takes in bytes from
//     index minSizeBytes on, so the shortest content-defined chunk is minSizeBytes + 1 bytes.
//   - After taking in byte i, cut after it (length i + 1) when (h & mask) === 0, where mask is
//     the strict mask (the paper's MaskS) for i < avgSizeBytes and the loose one (MaskL) for
//     i >= avgSizeBytes. See "Masks" below for their bits.
//   - With no match by index maxSizeBytes - 1, the chunk is maxSizeBytes long.
//   - At the end of the data, the rest is one (possibly short) last chunk.
import { LIMITS } from "./limits.ts";

export interface ChunkerParams {
  minSizeBytes: number;
  avgSizeBytes: number;
  maxSizeBytes: number;
}

export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({
  minSizeBytes: 16 * 1024,
  avgSizeBytes: 64 * 1024,
  maxSizeBytes: 256 * 1024,
});

/** Bounds on the parameters. Below 64 bytes, per-chunk overhead dwarfs the data; above, a chunk must still be one object. */
export const CHUNKER_PARAM_BOUNDS = Object.freeze({
  minSizeBytesMin: 64,
  avgSizeBytesMin: 256,
  avgSizeBytesMax: 4 * 1024 * 1024,
  maxSizeBytesMax: LIMITS.objectBytesMax,
});

/** Normalization level 2 of the paper: masks of log2(avg) +/- 2 bits. */
const NORMALIZATION_LEVEL = 2;

const DESCRIPTOR_NAME = "fastcdc2020";

// ---------------------------------------------------------------------------------------------
// Gear table
//
// GEAR[i] (i = 0..255) is the high 32 bits of the (i + 1)-th output of splitmix64 (Steele, Lea
// and Flood, "Fast Splittable Pseudorandom Number Generators", OOPSLA 2014; the generator of
// Java's SplittableRandom) seeded with 0x6473796e63636463 (the ASCII bytes of "dsynccdc"):
//
//   state = (state + 0x9e3779b97f4a7c15) mod 2^64
//   z = state
//   z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) mod 2^64
//   z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) mod 2^64
//   output z ^ (z >> 31)
//
// so the table can be rebuilt in any language. BigInt is fine here: it runs 256 times, once.
// GEAR[0..3] = 0xfd40746e 0xa501279d 0x27d4206e 0xe2fda653; the tests rebuild the whole table
// from this rule and pin it through the golden fixture.

const GEAR_SEED = 0x6473796e63636463n;

function buildGearTable(): Int32Array {
  const mask64 = (1n << 64n) - 1n;
  const table = new Int32Array(256);
  let state = GEAR_SEED;
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & mask64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask64;
    z = z ^ (z >> 31n);
    table[i] = Number(BigInt.asIntN(32, z >> 32n));
  }
  return table;
}

const GEAR = buildGearTable();
/** GEAR shifted left by one, for the first byte of each two-byte step. */
const GEAR_LS = GEAR.map((value) => value << 1);

/** A copy of the gear table as unsigned values, for inspection and tests (the live table is private so nothing can alter it). */
export function gearTable(): Uint32Array {
  return new Uint32Array(GEAR.buffer.slice(0));
}

// ---------------------------------------------------------------------------------------------
// Masks
//
// A mask of n bits is the n bits just below bit 31: bits (31 - n) .. 30. High bits because bit
// k of a gear hash depends on the last k + 1 bytes only, so the highest bits see the widest
// window (the paper spreads bits over a 64-bit hash for the same reason). Bit 31 stays out so
// that MASK << 1 loses nothing and the two-bytes-per-step test is exact. For the default 64 KiB
// average: strict = 0x7fffe000 (18 bits), loose = 0x7ffe0000 (14 bits).

/** The mask with `bitCount` one bits directly below bit 31. */
function gearMask(bitCount: number): number {
  return ((1 << bitCount) - 1) << (31 - bitCount);
}

interface Masks {
  strict: number;
  strictLs: number;
  loose: number;
  looseLs: number;
}

function masksFor(avgSizeBytes: number): Masks {
  const avgLog2 = 31 - Math.clz32(avgSizeBytes);
  const strict = gearMask(avgLog2 + NORMALIZATION_LEVEL);
  const loose = gearMask(avgLog2 - NORMALIZATION_LEVEL);
  return { strict, strictLs: strict << 1, loose, looseLs: loose << 1 };
}

// ---------------------------------------------------------------------------------------------
// Parameters

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Throws a readable error unless the parameters are usable. */
export function validateChunkerParams(params: ChunkerParams): void {
  if (typeof params !== "object" || params === null) throw new Error("chunker parameters must be an object");
  const { minSizeBytes, avgSizeBytes, maxSizeBytes } = params;
  for (const [name, value] of [
    ["minSizeBytes", minSizeBytes],
    ["avgSizeBytes", avgSizeBytes],
    ["maxSizeBytes", maxSizeBytes],
  ] as const) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`chunker ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  const b = CHUNKER_PARAM_BOUNDS;
  if (avgSizeBytes < b.avgSizeBytesMin || avgSizeBytes > b.avgSizeBytesMax) {
    throw new Error(`chunker avgSizeBytes must be within ${b.avgSizeBytesMin}..${b.avgSizeBytesMax}, got ${avgSizeBytes}`);
  }
  // After the range check, so the int32 bit test below is valid.
  if (!isPowerOfTwo(avgSizeBytes)) throw new Error(`chunker avgSizeBytes must be a power of two, got ${avgSizeBytes}`);
  if (minSizeBytes < b.minSizeBytesMin) throw new Error(`chunker minSizeBytes must be at least ${b.minSizeBytesMin}, got ${minSizeBytes}`);
  if (!(minSizeBytes < avgSizeBytes && avgSizeBytes < maxSizeBytes)) {
    throw new Error(
      `chunker sizes must satisfy min < avg < max, got min ${minSizeBytes}, avg ${avgSizeBytes}, max ${maxSizeBytes}`,
    );
  }
  if (maxSizeBytes > b.maxSizeBytesMax) throw new Error(`chunker maxSizeBytes must be at most ${b.maxSizeBytesMax}, got ${maxSizeBytes}`);
}

/** The text recorded with chunked data, e.g. "fastcdc2020:16384:65536:262144" (min:avg:max in bytes). */
export function chunkingDescriptor(params: ChunkerParams): string {
  validateChunkerParams(params);
  return `${DESCRIPTOR_NAME}:${params.minSizeBytes}:${params.avgSizeBytes}:${params.maxSizeBytes}`;
}

// Decimal without leading zeros or signs, so each parameter set has exactly one descriptor.
const DESCRIPTOR_PATTERN = /^fastcdc2020:([1-9][0-9]{0,15}):([1-9][0-9]{0,15}):([1-9][0-9]{0,15})$/;

/** Parses a descriptor made by chunkingDescriptor; throws on anything else, including unusable sizes. */
export function parseChunkingDescriptor(text: string): ChunkerParams {
  const match = typeof text === "string" ? DESCRIPTOR_PATTERN.exec(text) : null;
  if (!match) {
    throw new Error(`not a chunking descriptor (expected "${DESCRIPTOR_NAME}:<min>:<avg>:<max>"): ${JSON.stringify(String(text).slice(0, 80))}`);
  }
  const params: ChunkerParams = {
    minSizeBytes: Number(match[1]),
    avgSizeBytes: Number(match[2]),
    maxSizeBytes: Number(match[3]),
  };
  validateChunkerParams(params);
  return params;
}

// ---------------------------------------------------------------------------------------------
// Cutting

/**
 * The length of the next chunk starting at `start` within data[start..end), or -1 when more
 * data is needed to decide: not at eof, fewer than maxSizeBytes bytes available and no
 * boundary among them. At eof it returns a length >= 1 whenever start < end (0 when
 * start === end). A result other than -1 never depends on bytes beyond start + result, so a
 * scanner can call this on one reused read buffer and, on -1, read more and call again.
 */
export function findCutPoint(data: Uint8Array, start: number, end: number, params: ChunkerParams, eof: boolean): number {
  validateChunkerParams(params);
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end && end <= data.length)) {
    throw new Error(`findCutPoint: need 0 <= start <= end <= ${data.length}, got start ${start}, end ${end}`);
  }
  const { minSizeBytes, avgSizeBytes, maxSizeBytes } = params;
  const availableBytes = end - start;
  if (availableBytes <= minSizeBytes) {
    // No boundary can lie within the first minSizeBytes bytes.
    return eof ? availableBytes : -1;
  }
  const found = scanForBoundary(data, start, Math.min(availableBytes, maxSizeBytes), minSizeBytes, avgSizeBytes, masksFor(avgSizeBytes));
  if (found > 0) return found;
  if (availableBytes >= maxSizeBytes) return maxSizeBytes;
  return eof ? availableBytes : -1;
}

/**
 * The hot loop: the length of the first content-defined chunk at `start` no longer than
 * `limitBytes`, or 0 when there is none. Kept free of validation, with the masks read into
 * locals, so the loops see only int32 values and two typed arrays.
 */
function scanForBoundary(
  data: Uint8Array,
  start: number,
  limitBytes: number,
  minSizeBytes: number,
  avgSizeBytes: number,
  masks: Masks,
): number {
  const gear = GEAR;
  const gearLs = GEAR_LS;
  let h = 0;
  let i = start + minSizeBytes;
  const limit = start + limitBytes;

  // Before the average size: the strict mask.
  const normalEnd = Math.min(start + avgSizeBytes, limit);
  let mask = masks.strict;
  let maskLs = masks.strictLs;
  let pairEnd = normalEnd - 1;
  for (; i < pairEnd; i += 2) {
    const first = gearLs[data[i]!]!;
    const shifted = h << 2;
    if (((shifted + first) & maskLs) === 0) return i - start + 1;
    h = (shifted + ((first + gear[data[i + 1]!]!) | 0)) | 0;
    if ((h & mask) === 0) return i - start + 2;
  }
  if (i < normalEnd) {
    // An odd byte left before the switch: one plain step keeps h the true hash.
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & mask) === 0) return i - start + 1;
    i++;
  }

  // From the average size on: the loose mask.
  mask = masks.loose;
  maskLs = masks.looseLs;
  pairEnd = limit - 1;
  for (; i < pairEnd; i += 2) {
    const first = gearLs[data[i]!]!;
    const shifted = h << 2;
    if (((shifted + first) & maskLs) === 0) return i - start + 1;
    h = (shifted + ((first + gear[data[i + 1]!]!) | 0)) | 0;
    if ((h & mask) === 0) return i - start + 2;
  }
  if (i < limit) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & mask) === 0) return i - start + 1;
  }
  return 0;
}

/** One-shot chunking of a whole buffer: the chunk lengths, in order, summing to data.length. */
export function chunkLengths(data: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS): number[] {
  validateChunkerParams(params);
  const lengths: number[] = [];
  let start = 0;
  while (start < data.length) {
    const length = findCutPoint(data, start, data.length, params, true);
    lengths.push(length);
    start += length;
  }
  return lengths;
}

/**
 * Chunks a stream that arrives in pieces of any size, with exactly the boundaries of one-shot
 * chunking. A chunk is returned once maxSizeBytes past its start have arrived (or at
 * finish()), because only then is its cut point certain. Fewer than maxSizeBytes are held
 * between calls, in one buffer of 2 * maxSizeBytes; large pieces are cut in place, so most
 * bytes are copied once, into the chunk returned.
 *
 * Returned chunks are fresh copies owned by the caller: they stay valid whatever happens to
 * the pieces passed in or to later calls.
 */
export class StreamingChunker {
  readonly params: Readonly<ChunkerParams>;
  private buffer: Uint8Array | undefined;
  /** Unchunked bytes are buffer[pendingStart..pendingEnd). */
  private pendingStart = 0;
  private pendingEnd = 0;

  constructor(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    validateChunkerParams(params);
    this.params = Object.freeze({ ...params });
  }

  /** Bytes received but not yet returned in a chunk. */
  get bufferedBytes(): number {
    return this.pendingEnd - this.pendingStart;
  }

  /** Takes the next piece of the stream; returns the chunks it completed (often none). */
  push(piece: Uint8Array): Uint8Array[] {
    const params = this.params;
    const maxSizeBytes = params.maxSizeBytes;
    const chunks: Uint8Array[] = [];
    let offset = 0;

    // Chunks that begin in bytes held from earlier pieces: top the held bytes up to exactly
    // maxSizeBytes (enough to decide one cut) and cut, until no held byte is left.
    while (this.pendingStart < this.pendingEnd && offset < piece.length) {
      const buffer = this.buffer!;
      if (this.pendingStart + maxSizeBytes > buffer.length) {
        // Fewer than maxSizeBytes are held, and pendingStart > maxSizeBytes: this moves less
        // than it consumed since the last move, so each byte is moved at most once on average.
        buffer.copyWithin(0, this.pendingStart, this.pendingEnd);
        this.pendingEnd -= this.pendingStart;
        this.pendingStart = 0;
      }
      const takeBytes = Math.min(maxSizeBytes - (this.pendingEnd - this.pendingStart), piece.length - offset);
      buffer.set(piece.subarray(offset, offset + takeBytes), this.pendingEnd);
      this.pendingEnd += takeBytes;
      offset += takeBytes;
      if (this.pendingEnd - this.pendingStart < maxSizeBytes) break; // the piece is used up
      // With maxSizeBytes available the answer is never -1.
      const length = findCutPoint(buffer, this.pendingStart, this.pendingEnd, params, false);
      chunks.push(buffer.slice(this.pendingStart, this.pendingStart + length));
      this.pendingStart += length;
      const heldBytes = this.pendingEnd - this.pendingStart;
      if (heldBytes <= offset) {
        // Everything still held came from this piece: hand it back and cut from the piece.
        offset -= heldBytes;
        this.pendingStart = 0;
        this.pendingEnd = 0;
      }
    }

    if (this.pendingStart === this.pendingEnd) {
      // Nothing held: cut straight from the piece while a cut is certain, keep the tail.
      while (piece.length - offset >= maxSizeBytes) {
        const length = findCutPoint(piece, offset, piece.length, params, false);
        chunks.push(piece.slice(offset, offset + length));
        offset += length;
      }
      if (offset < piece.length) {
        const buffer = (this.buffer ??= new Uint8Array(2 * maxSizeBytes));
        buffer.set(piece.subarray(offset), 0);
        this.pendingStart = 0;
        this.pendingEnd = piece.length - offset;
      }
    }
    return chunks;
  }

  /** Ends the stream: returns the remaining chunks, and leaves the chunker ready for a new stream. */
  finish(): Uint8Array[] {
    const chunks: Uint8Array[] = [];
    const buffer = this.buffer;
    if (buffer) {
      while (this.pendingStart < this.pendingEnd) {
        const length = findCutPoint(buffer, this.pendingStart, this.pendingEnd, this.params, true);
        chunks.push(buffer.slice(this.pendingStart, this.pendingStart + length));
        this.pendingStart += length;
      }
    }
    this.pendingStart = 0;
    this.pendingEnd = 0;
    return chunks;
  }
}
