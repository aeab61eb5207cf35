// An upload batch with its objects as zstd frames of their own (upload items of kind 1), for a
// node that lists 1 in GET /v1/health "uploadItems".
//
// Compressing the whole body (Content-Encoding: zstd) saves the same bytes on the wire, but the
// node inflates the body and its store then compresses each object again to keep it small on
// disk. A frame per object is inflated once to be verified and kept as it came: the node does no
// compression. The batch is built plain, as ObjectBatchWriter builds it (chunks read straight
// into place), and rewritten here at send time, when the per-batch choice (upload-compression.ts)
// asks for frames:
//
//   plain pair   fixarray(2) [bin8 id(32), bin32 bytes]
//   kind 1       fixarray(3) [bin8 id(32), positive fixint 1, bin32 frame]
//
// Items of other kinds (kind 2, deltas) are copied as they are.
import { DecodeError } from "../core/encoding.ts";

const ARRAY32 = 0xdd;
const FIXARRAY_2 = 0x92;
const FIXARRAY_3 = 0x93;
const FIXARRAY_4 = 0x94;
const BIN8 = 0xc4;
const BIN32 = 0xc6;
const FRAME_KIND = 1;
const ID_BYTES = 32;
const HEADER_BYTES = 5;
/** fixarray(2), bin8 header and id, bin32 header. */
const PAIR_OVERHEAD_BYTES = 1 + 2 + ID_BYTES + 5;
/** A pair's overhead and the kind byte. */
export const FRAME_ITEM_OVERHEAD_BYTES = PAIR_OVERHEAD_BYTES + 1;
/** fixarray(4), bin8 id, the kind, bin32 header of the delta, then bin8 base id. */
const DELTA_OVERHEAD_BYTES = 1 + 2 + ID_BYTES + 1 + 5 + 2 + ID_BYTES;

/** The length of the item at `at` (the `index`th): a plain pair or a delta, as the batch writer writes them. */
function itemBytesAt(batch: Uint8Array, view: DataView, at: number, index: number): number {
  const kindByte = batch[at];
  if (kindByte === FIXARRAY_4) return DELTA_OVERHEAD_BYTES + view.getUint32(at + 1 + 2 + ID_BYTES + 2);
  if (kindByte !== FIXARRAY_2 || batch[at + 1] !== BIN8 || batch[at + 2] !== ID_BYTES || batch[at + 35] !== BIN32) {
    throw new DecodeError(`upload batch item ${index} is not as the batch writer writes it`);
  }
  return PAIR_OVERHEAD_BYTES + view.getUint32(at + 36);
}

/** What reframeBatch made: the body to send, and how many objects went as frames. */
export interface FramedBatch {
  body: Uint8Array;
  framed: number;
  /** Object bytes that went as frames, and the frames' bytes. */
  framedRawBytes: number;
  framedBytes: number;
}

/**
 * `batch` (an encoded batch as ObjectBatchWriter.finish returns it) with each object for which
 * `frame` returns a zstd frame of its bytes as an item of kind 1, the others as they were.
 * `frame` returns null for an object not worth a frame (one that does not shrink). Written
 * into `into` when it has room (at most one byte more per item than the batch), else into a new
 * buffer; the body is a view, valid until `into` is written again.
 */
export function reframeBatch(batch: Uint8Array, frame: (bytes: Uint8Array) => Uint8Array | null, into?: Uint8Array): FramedBatch {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  if (batch.length < HEADER_BYTES || batch[0] !== ARRAY32) throw new DecodeError("not an upload batch as the batch writer writes it");
  const count = view.getUint32(1);
  const room = batch.length + count;
  const out = into !== undefined && into.length >= room ? into : new Uint8Array(room);
  const outView = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(batch.subarray(0, HEADER_BYTES));
  let read = HEADER_BYTES;
  let write = HEADER_BYTES;
  const result: FramedBatch = { body: out, framed: 0, framedRawBytes: 0, framedBytes: 0 };
  for (let i = 0; i < count; i++) {
    const itemBytes = itemBytesAt(batch, view, read, i);
    if (batch[read] === FIXARRAY_4) {
      out.set(batch.subarray(read, read + itemBytes), write);
      read += itemBytes;
      write += itemBytes;
      continue;
    }
    const lengthBytes = itemBytes - PAIR_OVERHEAD_BYTES;
    const bytes = batch.subarray(read + PAIR_OVERHEAD_BYTES, read + PAIR_OVERHEAD_BYTES + lengthBytes);
    const framed = frame(bytes);
    if (framed === null || framed.length >= lengthBytes) {
      out.set(batch.subarray(read, read + PAIR_OVERHEAD_BYTES + lengthBytes), write);
      write += PAIR_OVERHEAD_BYTES + lengthBytes;
    } else {
      out[write] = FIXARRAY_3;
      out.set(batch.subarray(read + 1, read + 35), write + 1);
      out[write + 35] = FRAME_KIND;
      out[write + 36] = BIN32;
      outView.setUint32(write + 37, framed.length);
      out.set(framed, write + FRAME_ITEM_OVERHEAD_BYTES);
      write += FRAME_ITEM_OVERHEAD_BYTES + framed.length;
      result.framed++;
      result.framedRawBytes += lengthBytes;
      result.framedBytes += framed.length;
    }
    read += PAIR_OVERHEAD_BYTES + lengthBytes;
  }
  if (read !== batch.length) throw new DecodeError("bytes after the last item of the upload batch");
  result.body = out.subarray(0, write);
  return result;
}

/**
 * `batch` cut in two batches between items: the first holds the items that start within its
 * first `headBytesMax` bytes (at least one), the second the rest. Null when the batch has a
 * single item or its first item already passes the bound. Each is a batch of its own (its own
 * array32 header), so either can be sent, compressed or framed like any other.
 */
export function splitBatch(batch: Uint8Array, headBytesMax: number): { head: Uint8Array; tail: Uint8Array } | null {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  if (batch.length < HEADER_BYTES || batch[0] !== ARRAY32) throw new DecodeError("not an upload batch as the batch writer writes it");
  const count = view.getUint32(1);
  let read = HEADER_BYTES;
  let headCount = 0;
  for (; headCount < count; headCount++) {
    const itemBytes = itemBytesAt(batch, view, read, headCount);
    if (read + itemBytes > headBytesMax && headCount > 0) break;
    read += itemBytes;
  }
  if (headCount === 0 || headCount === count) return null;
  const head = new Uint8Array(read);
  head.set(batch.subarray(0, read));
  new DataView(head.buffer).setUint32(1, headCount);
  const tail = new Uint8Array(HEADER_BYTES + batch.length - read);
  tail[0] = ARRAY32;
  new DataView(tail.buffer).setUint32(1, count - headCount);
  tail.set(batch.subarray(read), HEADER_BYTES);
  return { head, tail };
}
