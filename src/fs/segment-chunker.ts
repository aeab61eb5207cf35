// Cuts and hashes one segment of an open file: the work a chunk worker does (chunk-worker.ts),
// and the scanning thread too when it would otherwise wait for a segment no worker has taken
// yet (chunk-worker-pool.ts). Reads from `startBytes` to `endBytes` plus one largest chunk (or to
// the file's end) into the buffer, then runs FastCDC from `startBytes` as if a chunk began
// there, until the first cut at or past `endBytes`, hashing each chunk with the BLAKE3 the
// scanner uses. Whether `startBytes` is a true cut of the file is the pool's to work out.
import { readSync } from "node:fs";
import { blake3 } from "../core/blake3.ts";
import { findCutPoint, type ChunkerParams } from "../core/fastcdc.ts";
import { ID_LENGTH_BYTES } from "../core/id.ts";

export interface SegmentWork {
  fd: number;
  /** Where chunking starts, taken as a cut. */
  startBytes: number;
  /** Chunking stops at the first cut at or past this offset (at the file's end for the last segment). */
  endBytes: number;
  /** The file's size as its fstat said when it was opened; reading stops there. */
  fileSizeBytes: number;
  params: ChunkerParams;
  /** Holds at least endBytes - startBytes + params.maxSizeBytes bytes. */
  buffer: ArrayBuffer;
}

export interface SegmentChunks {
  /** Bytes of the file in the buffer, from startBytes. */
  filledBytes: number;
  /** The chunks from startBytes, in order. */
  lengths: Int32Array<ArrayBuffer>;
  /** Their ids, 32 bytes each. */
  ids: Uint8Array<ArrayBuffer>;
}

/** A segment could not be read (an errno, or the file shrank while read): the file is unreadable for this scan. */
export class SegmentReadFailure extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

export function chunkSegment(work: SegmentWork): SegmentChunks {
  const { startBytes, endBytes, fileSizeBytes, params } = work;
  const bytes = new Uint8Array(work.buffer);
  const readEnd = Math.min(endBytes + params.maxSizeBytes, fileSizeBytes);
  const wanted = readEnd - startBytes;
  if (!(0 <= startBytes && startBytes < endBytes && endBytes <= fileSizeBytes && wanted <= bytes.length)) {
    throw new Error(`bad segment ${startBytes}..${endBytes} of ${fileSizeBytes} bytes for a ${bytes.length}-byte buffer`);
  }
  let filled = 0;
  while (filled < wanted) {
    let n: number;
    try {
      n = readSync(work.fd, bytes, filled, wanted - filled, startBytes + filled);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new SegmentReadFailure(e.message, e.code);
    }
    if (n === 0) throw new SegmentReadFailure(`the file shrank while it was read (it ended at ${startBytes + filled} of the ${fileSizeBytes} bytes it had when opened)`);
    filled += n;
  }
  const eof = readEnd === fileSizeBytes;
  const stop = endBytes - startBytes;
  // Chunks are longer than minSizeBytes (but the last), so this many always suffice.
  const capacity = Math.ceil(filled / (params.minSizeBytes + 1)) + 1;
  const lengths = new Int32Array(capacity);
  const ids = new Uint8Array(capacity * ID_LENGTH_BYTES);
  let count = 0;
  let start = 0;
  while (start < stop) {
    // With endBytes + maxSizeBytes read (or the file's end), a cut is always found here.
    const length = findCutPoint(bytes, start, filled, params, eof);
    if (length <= 0) throw new Error(`no cut at ${startBytes + start} with ${filled - start} bytes in view`);
    ids.set(blake3(bytes.subarray(start, start + length)), count * ID_LENGTH_BYTES);
    lengths[count++] = length;
    start += length;
  }
  return { filledBytes: filled, lengths: lengths.slice(0, count), ids: ids.slice(0, count * ID_LENGTH_BYTES) };
}
