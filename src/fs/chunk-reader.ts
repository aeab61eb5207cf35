// Streams an open file through one reused buffer, cutting it with FastCDC and hashing each
// chunk as it completes. Memory is the buffer, whatever the file's size.
import { readSync } from "node:fs";
import { blake3 } from "../core/blake3.ts";
import { findCutPoint, type ChunkerParams } from "../core/fastcdc.ts";
import type { ObjectId } from "../core/id.ts";

export interface ChunkVisit {
  id: ObjectId;
  offsetBytes: number;
  /** A view into the reused buffer, valid only until the callback returns (or its promise settles). */
  bytes: Uint8Array;
}

/** Reads fd from its start to its end; returns the number of bytes read. */
export async function forEachChunk(
  fd: number,
  buffer: Uint8Array,
  params: ChunkerParams,
  visit: (chunk: ChunkVisit) => void | Promise<void>,
  onRead?: (bytes: number) => void,
): Promise<number> {
  let filled = 0;
  let start = 0;
  let eof = false;
  let position = 0;
  let offset = 0;
  for (;;) {
    while (!eof && filled < buffer.length) {
      const n = readSync(fd, buffer, filled, buffer.length - filled, position);
      if (n === 0) eof = true;
      filled += n;
      position += n;
      onRead?.(n);
    }
    while (start < filled) {
      const length = findCutPoint(buffer, start, filled, params, eof);
      if (length < 0) break;
      const bytes = buffer.subarray(start, start + length);
      const pending = visit({ id: blake3(bytes), offsetBytes: offset, bytes });
      if (pending) await pending;
      start += length;
      offset += length;
    }
    if (eof && start >= filled) return position;
    buffer.copyWithin(0, start, filled);
    filled -= start;
    start = 0;
  }
}
