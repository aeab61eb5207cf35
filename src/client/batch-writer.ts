// Builds an upload batch — the msgpack array of [id, bytes] pairs that /v1/objects/upload
// takes — directly in a reusable buffer. Chunks are read from their files straight into place,
// so a push neither allocates a buffer per chunk nor copies each chunk again into the request
// body: on this machine a freshly allocated buffer is several times slower to fill than a
// reused one. The array header is always the 32-bit form (the count is known only at the end);
// any msgpack reader accepts it.
import type { ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

const ARRAY32 = 0xdd;
const FIXARRAY_2 = 0x92;
const BIN8 = 0xc4;
const BIN32 = 0xc6;
const FIXARRAY_4 = 0x94;
const DELTA_KIND = 2;
/** The array32 header before the first item. */
export const BATCH_HEADER_BYTES = 5;
/** fixarray(2) + bin8 header + 32-byte id + bin32 header. */
export const BATCH_ITEM_OVERHEAD_BYTES = 1 + 2 + 32 + 5;
/** fixarray(4) + bin8 header + 32-byte id + the kind + bin32 header + bin8 header + 32-byte base id. */
export const DELTA_ITEM_OVERHEAD_BYTES = 1 + 2 + 32 + 1 + 5 + 2 + 32;

export class ObjectBatchWriter {
  private readonly view: DataView;
  private position = BATCH_HEADER_BYTES;
  count = 0;
  /** Object bytes in the batch (without framing). */
  objectBytes = 0;

  constructor(readonly buffer: Uint8Array) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /**
   * Whether an object of this size still fits: in the buffer, and within the most objects a node
   * takes in one batch (tiny files would otherwise put several hundred thousand in 4 MiB).
   */
  fits(lengthBytes: number): boolean {
    return this.count < LIMITS.batchIdsMax && this.position + BATCH_ITEM_OVERHEAD_BYTES + lengthBytes <= this.buffer.length;
  }

  /**
   * Appends an object whose bytes `fill` writes into the given view (e.g. by reading a file).
   * When `fill` returns false the object is not added. Throws when it does not fit.
   */
  appendWith(id: ObjectId, lengthBytes: number, fill: (target: Uint8Array) => boolean): boolean {
    if (!this.fits(lengthBytes)) throw new RangeError("object does not fit in this batch");
    const start = this.position;
    const buffer = this.buffer;
    this.itemHead(start, FIXARRAY_2, id);
    buffer[start + 35] = BIN32;
    this.view.setUint32(start + 36, lengthBytes);
    const payload = buffer.subarray(start + BATCH_ITEM_OVERHEAD_BYTES, start + BATCH_ITEM_OVERHEAD_BYTES + lengthBytes);
    if (!fill(payload)) return false;
    this.position = start + BATCH_ITEM_OVERHEAD_BYTES + lengthBytes;
    this.count++;
    this.objectBytes += lengthBytes;
    return true;
  }

  /**
   * Appends an item of kind 2, [id, 2, delta, base id]: the object as a delta against old
   * chunks the node holds (wire/delta-frame.ts). Only for a node that lists 2 in "uploadItems".
   */
  appendDelta(id: ObjectId, delta: Uint8Array, baseId: ObjectId): void {
    if (!this.fitsDelta(delta.length)) throw new RangeError("delta does not fit in this batch");
    const start = this.position;
    const buffer = this.buffer;
    this.itemHead(start, FIXARRAY_4, id);
    buffer[start + 35] = DELTA_KIND;
    buffer[start + 36] = BIN32;
    this.view.setUint32(start + 37, delta.length);
    buffer.set(delta, start + 41);
    const baseAt = start + 41 + delta.length;
    buffer[baseAt] = BIN8;
    buffer[baseAt + 1] = 32;
    buffer.set(baseId, baseAt + 2);
    this.position = baseAt + 34;
    this.count++;
    this.objectBytes += delta.length;
  }

  /** An item's array header and its id (bin8 of 32 bytes), at `start`. */
  private itemHead(start: number, arrayHeader: number, id: ObjectId): void {
    this.buffer[start] = arrayHeader;
    this.buffer[start + 1] = BIN8;
    this.buffer[start + 2] = 32;
    this.buffer.set(id, start + 3);
  }

  /** Whether a delta of this size still fits. */
  fitsDelta(deltaBytes: number): boolean {
    return this.count < LIMITS.batchIdsMax && this.position + DELTA_ITEM_OVERHEAD_BYTES + deltaBytes <= this.buffer.length;
  }

  /** Bytes of the item at `at` (a pair or a delta, as this writer writes them), framing included. */
  private itemBytes(at: number): number {
    if (this.buffer[at] === FIXARRAY_4) return DELTA_ITEM_OVERHEAD_BYTES + this.view.getUint32(at + 37);
    return BATCH_ITEM_OVERHEAD_BYTES + this.view.getUint32(at + 36);
  }

  append(id: ObjectId, bytes: Uint8Array): void {
    this.appendWith(id, bytes.length, (target) => {
      target.set(bytes);
      return true;
    });
  }

  /** Keeps only the objects whose id `keep` accepts, compacting the batch in place. */
  retain(keep: (id: Uint8Array) => boolean): void {
    let read = BATCH_HEADER_BYTES;
    let write = BATCH_HEADER_BYTES;
    let count = 0;
    let objectBytes = 0;
    while (read < this.position) {
      const itemBytes = this.itemBytes(read);
      const lengthBytes = itemBytes - (this.buffer[read] === FIXARRAY_4 ? DELTA_ITEM_OVERHEAD_BYTES : BATCH_ITEM_OVERHEAD_BYTES);
      if (keep(this.buffer.subarray(read + 3, read + 35))) {
        if (write !== read) this.buffer.copyWithin(write, read, read + itemBytes);
        write += itemBytes;
        count++;
        objectBytes += lengthBytes;
      }
      read += itemBytes;
    }
    this.position = write;
    this.count = count;
    this.objectBytes = objectBytes;
  }

  /** Bytes the encoded batch takes so far, framing included (tiny objects are mostly framing). */
  get encodedBytes(): number {
    return this.position;
  }

  /** The encoded batch: a view into the buffer, valid until the writer is reset. */
  finish(): Uint8Array {
    this.buffer[0] = ARRAY32;
    this.view.setUint32(1, this.count);
    return this.buffer.subarray(0, this.position);
  }

  reset(): void {
    this.position = BATCH_HEADER_BYTES;
    this.count = 0;
    this.objectBytes = 0;
  }
}
