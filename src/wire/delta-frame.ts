// The delta of an upload item of kind 2 (docs/format.md, "Delta frames"): an object sent as a
// zstd frame compressed with a dictionary made of blocks of old chunks the node holds (the
// bases), so what the old chunks share with it costs matches, not bytes. The sender found those
// blocks by the node's block signatures (src/core/block-signatures.ts) in its own new bytes;
// the node rebuilds the dictionary from the bases (src/core/delta-base.ts), inflates within the
// declared length (itself within LIMITS.objectBytesMax), and the object is verified against its
// id like any other before it is stored.
//
//   u8      format, 1
//   u8      log2 of the block size (6..16)
//   u32     the rebuilt object's length (big-endian, as every number here)
//   u8      further bases e (0..DELTA_BASES_MAX-1): base 0 is the item's base id, bases 1..e follow
//   e × 32  the further bases' ids
//   u32     runs r
//   r × 9   a run: u8 base, u32 first block, u32 blocks (the dictionary is the runs' blocks in order)
//   ...     the zstd frame
import * as zlib from "node:zlib";
import { isValidBlockBytes } from "../core/block-signatures.ts";
import { dictionaryBytes, dictionaryFromBases, type BlockRun } from "../core/delta-base.ts";
import { DecodeError } from "../core/encoding.ts";
import type { ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

export const DELTA_FORMAT = 1;
/** Most bases one delta may name (the item's and 127 more): a new chunk of 128 blocks of 512 bytes could use no more. */
export const DELTA_BASES_MAX = 128;
const HEADER_BYTES = 1 + 1 + 4 + 1;
const RUN_BYTES = 9;
const ID_BYTES = 32;

export interface DeltaFrame {
  blockBytes: number;
  rebuiltBytes: number;
  /** Bases after the first (the item's base id), in the order the runs number them. */
  furtherBases: ObjectId[];
  runs: BlockRun[];
  frame: Uint8Array;
}

export function encodeDeltaFrame(delta: DeltaFrame): Uint8Array {
  if (!isValidBlockBytes(delta.blockBytes)) throw new RangeError(`block size ${delta.blockBytes} is not a valid one`);
  if (delta.furtherBases.length >= DELTA_BASES_MAX) throw new RangeError(`at most ${DELTA_BASES_MAX} bases per delta`);
  const out = new Uint8Array(HEADER_BYTES + delta.furtherBases.length * ID_BYTES + 4 + delta.runs.length * RUN_BYTES + delta.frame.length);
  const view = new DataView(out.buffer);
  let at = 0;
  out[at++] = DELTA_FORMAT;
  out[at++] = Math.log2(delta.blockBytes);
  view.setUint32(at, delta.rebuiltBytes);
  at += 4;
  out[at++] = delta.furtherBases.length;
  for (const id of delta.furtherBases) {
    out.set(id, at);
    at += ID_BYTES;
  }
  view.setUint32(at, delta.runs.length);
  at += 4;
  for (const run of delta.runs) {
    out[at] = run.base;
    view.setUint32(at + 1, run.firstBlock);
    view.setUint32(at + 5, run.blocks);
    at += RUN_BYTES;
  }
  out.set(delta.frame, at);
  return out;
}

/** Reads a delta, every length checked against what follows and against the limits; the frame is a view into `bytes`. */
export function decodeDeltaFrame(bytes: Uint8Array): DeltaFrame {
  if (bytes.length < HEADER_BYTES + 4) throw new DecodeError("the delta is shorter than its header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== DELTA_FORMAT) throw new DecodeError(`unknown delta format ${bytes[0]}`);
  const blockBytes = 2 ** bytes[1]!;
  if (!isValidBlockBytes(blockBytes)) throw new DecodeError(`the delta's block size 2^${bytes[1]} is out of range`);
  const rebuiltBytes = view.getUint32(2);
  if (rebuiltBytes > LIMITS.objectBytesMax) throw new DecodeError(`the delta rebuilds ${rebuiltBytes} bytes, more than an object's ${LIMITS.objectBytesMax}`);
  const further = bytes[6]!;
  if (further >= DELTA_BASES_MAX) throw new DecodeError(`the delta names ${further + 1} bases, more than ${DELTA_BASES_MAX}`);
  let at = HEADER_BYTES;
  if (bytes.length < at + further * ID_BYTES + 4) throw new DecodeError("the delta ends inside its bases");
  const furtherBases: ObjectId[] = [];
  for (let i = 0; i < further; i++) {
    furtherBases.push(bytes.slice(at, at + ID_BYTES) as ObjectId);
    at += ID_BYTES;
  }
  const runCount = view.getUint32(at);
  at += 4;
  if (runCount > (bytes.length - at) / RUN_BYTES) throw new DecodeError("the delta ends inside its runs");
  const runs: BlockRun[] = [];
  for (let i = 0; i < runCount; i++) {
    const run = { base: bytes[at]!, firstBlock: view.getUint32(at + 1), blocks: view.getUint32(at + 5) };
    if (run.base > further) throw new DecodeError(`delta run ${i} names base ${run.base} of ${further + 1}`);
    if (run.blocks < 1) throw new DecodeError(`delta run ${i} is empty`);
    runs.push(run);
    at += RUN_BYTES;
  }
  // The dictionary is blocks found in the rebuilt object, none overlapping: never longer than it.
  // A delta naming more is refused before any base is read.
  if (dictionaryBytes(runs, blockBytes) > rebuiltBytes) throw new DecodeError(`the delta's dictionary is longer than the ${rebuiltBytes} bytes it rebuilds`);
  // Every base is one a run takes blocks of (a base named for nothing would only cost its read).
  const used = new Set(runs.map((run) => run.base));
  if (used.size !== further + 1) throw new DecodeError(`the delta names ${further + 1} bases and takes blocks of ${used.size}`);
  return { blockBytes, rebuiltBytes, furtherBases, runs, frame: bytes.subarray(at) };
}

/** Every base a delta names, the item's first. */
export function deltaBases(baseId: ObjectId, delta: DeltaFrame): ObjectId[] {
  return [baseId, ...delta.furtherBases];
}

/** zstd `bytes` at `level` with `dictionary` as a raw content dictionary (none when empty). */
export function compressWithDictionary(bytes: Uint8Array, dictionary: Uint8Array, level: number): Uint8Array {
  const params = { [zlib.constants.ZSTD_c_compressionLevel]: level };
  return zlib.zstdCompressSync(bytes, dictionary.length > 0 ? { dictionary, params } : { params });
}

/**
 * The object a delta rebuilds from its bases' bytes (in deltaBases' order): the dictionary
 * from the runs, the frame inflated with it within the declared length, which the result must
 * have exactly. Whether it is the object named is the caller's check (by its id).
 */
export function rebuildFromDelta(delta: DeltaFrame, bases: readonly Uint8Array[]): Uint8Array {
  let dictionary: Uint8Array;
  try {
    dictionary = dictionaryFromBases(bases, delta.runs, delta.blockBytes, LIMITS.objectBytesMax);
  } catch (error) {
    throw new DecodeError((error as Error).message);
  }
  let rebuilt: Uint8Array;
  try {
    // One byte more than declared is allowed out, so a frame that runs long is told from one that fits.
    const options = { maxOutputLength: Math.max(1, delta.rebuiltBytes + 1) };
    rebuilt = zlib.zstdDecompressSync(delta.frame, dictionary.length > 0 ? { ...options, dictionary } : options);
  } catch (error) {
    throw new DecodeError(`the delta's frame does not inflate: ${(error as Error).message}`);
  }
  if (rebuilt.length !== delta.rebuiltBytes) throw new DecodeError(`the delta rebuilds ${rebuilt.length} bytes where it declares ${delta.rebuiltBytes}`);
  return rebuilt;
}
