// Streams an open file through one reused buffer, cutting it with FastCDC and hashing each
// chunk as it completes. Memory is the buffer, whatever the file's size.
//
// When the file's previous chunk list is known (it changed since the last scan), most of it is
// usually still there: each old chunk is checked by hashing the bytes where it should be, which
// is several times faster than finding cut points. This gives exactly the chunks a full pass
// would, because a cut depends only on the bytes from the chunk's start to the cut: the same
// bytes from a chunk start always end at the same cut. Where an old chunk no longer matches,
// the chunker takes over, and hands back to checking as soon as it cuts a chunk the old list
// has (from there on the old cuts hold again). The old last chunk was cut by the end of the
// file, so it is accepted only where the file still ends right after it.
import { readSync } from "node:fs";
import { blake3 } from "../core/blake3.ts";
import { findCutPoint, type ChunkerParams } from "../core/fastcdc.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import type { ChunkRef } from "../core/objects.ts";

export interface ChunkVisit {
  id: ObjectId;
  offsetBytes: number;
  /** A view into the reused buffer, valid only until the callback returns (or its promise settles). */
  bytes: Uint8Array;
}

/**
 * Reads fd from its start to its end; returns the number of bytes read. With `sizeBytes` (what
 * an fstat of fd said), a read that comes up short exactly at that size is taken as the end, so
 * a small file takes one read instead of two (the second finding nothing); a caller that caches
 * the result checks the size again after (scanner.ts), as a file that grew meanwhile is cut short.
 */
export async function forEachChunk(
  fd: number,
  buffer: Uint8Array,
  params: ChunkerParams,
  visit: (chunk: ChunkVisit) => void | Promise<void>,
  onRead?: (bytes: number) => void,
  previous?: readonly ChunkRef[],
  sizeBytes?: number,
): Promise<number> {
  let filled = 0;
  let start = 0;
  let eof = false;
  let position = 0;
  let offset = 0;
  // Index into `previous` of the chunk expected at `start`; -1 while the chunker runs.
  let expected = previous && previous.length > 0 ? 0 : -1;
  let lastMatched = -1;
  let indexById: Map<string, number[]> | undefined;

  const emit = async (id: ObjectId, length: number) => {
    const pending = visit({ id, offsetBytes: offset, bytes: buffer.subarray(start, start + length) });
    if (pending) await pending;
    start += length;
    offset += length;
  };

  for (;;) {
    while (!eof && filled < buffer.length) {
      const asked = buffer.length - filled;
      const n = readSync(fd, buffer, filled, asked, position);
      if (n === 0 || (n < asked && position + n === sizeBytes)) eof = true;
      filled += n;
      position += n;
      onRead?.(n);
    }
    while (start < filled) {
      if (expected >= 0) {
        const old = previous![expected]!;
        const isLast = expected === previous!.length - 1;
        // The last old chunk needs one byte more in view, to know whether the file ends there.
        if (!eof && filled - start < old.lengthBytes + (isLast ? 1 : 0)) break;
        const available = filled - start;
        if (available >= old.lengthBytes && (!isLast || (eof && available === old.lengthBytes))) {
          const id = blake3(buffer.subarray(start, start + old.lengthBytes));
          if (idEquals(id, old.id)) {
            lastMatched = expected;
            expected = isLast ? -1 : expected + 1;
            await emit(id, old.lengthBytes);
            continue;
          }
        }
        expected = -1;
      }
      const length = findCutPoint(buffer, start, filled, params, eof);
      if (length < 0) break;
      const id = blake3(buffer.subarray(start, start + length));
      await emit(id, length);
      if (previous && previous.length > 0) {
        // A chunk the old list has: the old cuts after it hold again.
        indexById ??= indexChunks(previous);
        const next = indexById.get(idToHex(id))?.find((index) => index > lastMatched);
        if (next !== undefined && next + 1 < previous.length) {
          lastMatched = next;
          expected = next + 1;
        }
      }
    }
    if (eof && start >= filled) return position;
    buffer.copyWithin(0, start, filled);
    filled -= start;
    start = 0;
  }
}

function indexChunks(chunks: readonly ChunkRef[]): Map<string, number[]> {
  const index = new Map<string, number[]>();
  chunks.forEach((chunk, i) => {
    const key = idToHex(chunk.id);
    const list = index.get(key);
    if (list) list.push(i);
    else index.set(key, [i]);
  });
  return index;
}
