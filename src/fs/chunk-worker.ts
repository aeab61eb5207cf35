// The thread side of chunk-worker-pool.ts: cuts and hashes one segment of an open file.
//
// A segment request names a file descriptor of this process (threads share the descriptor
// table, so the file the scanner opened and checked is the one read here: nothing is opened by
// path), a start offset, an end offset and the file's size. The bytes from the start to the
// end plus one largest chunk (or to the file's end) are read into the transferred buffer, and
// FastCDC runs from the start as if a chunk began there, until the first cut at or past the
// end. Each chunk is hashed with the same BLAKE3 the scanner uses. The buffer, the chunk
// lengths and the ids go back transferred, not copied. Whether the start is a true cut of the
// file is the pool's to work out (it stitches segments together; see chunk-worker-pool.ts).
//
// A failed read (an errno, or the file ending before the size its fstat gave: it shrank while
// read) is answered as a read failure, which makes the file unreadable for this scan, as a
// failed read on the scanner's thread does. Anything else this thread throws ends it, and the
// pool fails the scan.
import { readSync } from "node:fs";
import { blake3 } from "../core/blake3.ts";
import { ID_LENGTH_BYTES } from "../core/id.ts";
import { findCutPoint, type ChunkerParams } from "../core/fastcdc.ts";

export interface SegmentRequest {
  job: number;
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

export type SegmentReply =
  | {
      job: number;
      ok: true;
      buffer: ArrayBuffer;
      /** Bytes of the file in the buffer, from startBytes. */
      filledBytes: number;
      /** The chunks from startBytes, in order. */
      lengths: Int32Array<ArrayBuffer>;
      /** Their ids, 32 bytes each. */
      ids: Uint8Array<ArrayBuffer>;
    }
  | { job: number; ok: false; buffer: ArrayBuffer; message: string; code?: string };

declare const self: Worker;

self.onmessage = (event: MessageEvent) => {
  const request = event.data as SegmentRequest;
  let reply: SegmentReply;
  try {
    reply = chunkSegment(request);
  } catch (error) {
    if (!(error instanceof ReadFailure)) throw error;
    reply = { job: request.job, ok: false, buffer: request.buffer, message: error.message, code: error.code };
  }
  postMessage(reply, reply.ok ? [reply.buffer, reply.lengths.buffer, reply.ids.buffer] : [reply.buffer]);
};

class ReadFailure extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** Cuts and hashes one segment. */
function chunkSegment(request: SegmentRequest): SegmentReply & { ok: true } {
  const { startBytes, endBytes, fileSizeBytes, params } = request;
  const bytes = new Uint8Array(request.buffer);
  const readEnd = Math.min(endBytes + params.maxSizeBytes, fileSizeBytes);
  const wanted = readEnd - startBytes;
  if (!(0 <= startBytes && startBytes < endBytes && endBytes <= fileSizeBytes && wanted <= bytes.length)) {
    throw new Error(`chunk worker: bad segment ${startBytes}..${endBytes} of ${fileSizeBytes} bytes for a ${bytes.length}-byte buffer`);
  }
  let filled = 0;
  while (filled < wanted) {
    let n: number;
    try {
      n = readSync(request.fd, bytes, filled, wanted - filled, startBytes + filled);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new ReadFailure(e.message, e.code);
    }
    if (n === 0) throw new ReadFailure(`the file shrank while it was read (it ended at ${startBytes + filled} of the ${fileSizeBytes} bytes it had when opened)`);
    filled += n;
  }
  const eof = readEnd === fileSizeBytes;
  const stop = endBytes - startBytes;
  // Chunks end after at least minSizeBytes + 1 bytes (but the last), so this many always suffice.
  const capacity = Math.ceil(filled / (params.minSizeBytes + 1)) + 1;
  const lengths = new Int32Array(capacity);
  const ids = new Uint8Array(capacity * ID_LENGTH_BYTES);
  let count = 0;
  let start = 0;
  while (start < stop) {
    // With endBytes + maxSizeBytes read (or the file's end), a cut is always found here.
    const length = findCutPoint(bytes, start, filled, params, eof);
    if (length <= 0) throw new Error(`chunk worker: no cut at ${startBytes + start} with ${filled - start} bytes in view`);
    ids.set(blake3(bytes.subarray(start, start + length)), count * ID_LENGTH_BYTES);
    lengths[count++] = length;
    start += length;
  }
  return { job: request.job, ok: true, buffer: request.buffer, filledBytes: filled, lengths: lengths.slice(0, count), ids: ids.slice(0, count * ID_LENGTH_BYTES) };
}
