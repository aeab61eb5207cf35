// An upload batch read as it arrives: objects are taken out of the body stream one by one into a
// reused buffer and handed on in groups, instead of holding the whole body (up to
// LIMITS.requestBodyBytesMax) and its decoded copy.
//
// The batch is the msgpack the client sends (wire/formats.ts encodeObjectBatch): an array of
// [id, bytes] pairs, ids 32-byte bins, bytes bins of at most LIMITS.objectBytesMax. Any msgpack
// spelling of that shape is read (array and bin headers of every width), nothing else: a body
// this reader refuses is one decodeObjectBatch refuses too.
//
// An item of kind 1, [id, 1, frame], carries the object as one zstd frame: the frame is checked
// to be exactly one frame declaring at most LIMITS.objectBytesMax of content before it is
// inflated (core/zstd-frame.ts), and handed on with the object's bytes so the store may keep it
// as the stored payload instead of compressing the bytes again. The store verifies the bytes
// against the id, as for a plain pair: once per object.
//
// A group's objects are views into the reader's buffer, valid until the promise `onGroup`
// returned settles; the buffer is then reused for the next group. Groups already handed on stay
// stored when a later part of the body turns out bad: each object was verified against its id
// by the store, and an object no version names is collected like any other.
import { DecodeError } from "../core/encoding.ts";
import type { ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { readZstdFrameOutline } from "../core/zstd-frame.ts";
import type { StoredObject } from "../store/object-store.ts";
import { BodyTooLargeError } from "../wire/formats.ts";
import { idleCollector } from "./idle-collect.ts";

const ID_LENGTH_BYTES = 32;
/** Bytes of objects per group: about one client batch, so a typical upload is one store write. */
export const GROUP_BYTES_MAX = LIMITS.batchBytesTarget;
/** Buffers kept for the next requests (one per request in flight beyond this is dropped after use). */
const POOLED_BUFFERS_MAX = 2;

const pool: Uint8Array[] = [];

function takeBuffer(): Uint8Array {
  return pool.pop() ?? new Uint8Array(GROUP_BYTES_MAX);
}

function giveBack(buffer: Uint8Array): void {
  if (pool.length < POOLED_BUFFERS_MAX) pool.push(buffer);
}

/** Lets the pooled buffers go (the node went quiet): 8 MiB that would stay resident until the next push. */
export function releasePooledBuffers(): void {
  pool.length = 0;
}

idleCollector.onQuiet(releasePooledBuffers);

/** Pieces of a byte stream read exactly, counted against a bound. */
class PieceReader {
  private piece: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;
  totalBytes = 0;

  constructor(pieces: AsyncIterable<Uint8Array>, private readonly bytesMax: number) {
    this.iterator = pieces[Symbol.asyncIterator]();
  }

  /** Whether more bytes follow (waits for the next piece when the current one is used up). */
  async more(): Promise<boolean> {
    while (this.offset >= this.piece.length) {
      const next = await this.iterator.next();
      if (next.done) return false;
      this.totalBytes += next.value.length;
      if (this.totalBytes > this.bytesMax) throw new BodyTooLargeError(`request body larger than ${this.bytesMax} bytes`);
      this.piece = next.value;
      this.offset = 0;
    }
    return true;
  }

  async byte(what: string): Promise<number> {
    if (!(await this.more())) throw new DecodeError(`the batch ends inside ${what}`);
    return this.piece[this.offset++]!;
  }

  /** A big-endian unsigned integer of `length` bytes. */
  async uint(length: number, what: string): Promise<number> {
    let value = 0;
    for (let i = 0; i < length; i++) value = value * 256 + (await this.byte(what));
    return value;
  }

  /** Exactly `target.length` bytes into `target`. */
  async fill(target: Uint8Array, what: string): Promise<void> {
    let at = 0;
    while (at < target.length) {
      if (!(await this.more())) throw new DecodeError(`the batch ends inside ${what}`);
      const n = Math.min(target.length - at, this.piece.length - this.offset);
      target.set(this.piece.subarray(this.offset, this.offset + n), at);
      this.offset += n;
      at += n;
    }
  }

  /**
   * An [id, bytes] pair's header taken at once when the current piece holds all of it in the
   * spelling clients send (fixarray of 2, a bin8 of 32 bytes, a bin header of any width): the id
   * (copied) and the byte length. Undefined, with nothing taken, when it does not: the general
   * path (pairHeader) then reads it, waiting for pieces, and refuses what is malformed. Most
   * pairs are taken here, without the promise per byte the general path costs.
   */
  pairHeaderNow(): ItemHeader | undefined {
    const piece = this.piece;
    let at = this.offset;
    if (piece.length - at < 3 + ID_LENGTH_BYTES + 2) return undefined;
    // A pair, or an item of kind 1 ([id, 1, frame]: one more element, the kind before the bin).
    const framed = piece[at] === 0x93;
    if ((piece[at] !== 0x92 && !framed) || piece[at + 1] !== 0xc4 || piece[at + 2] !== ID_LENGTH_BYTES) return undefined;
    at += 3;
    const idAt = at;
    at += ID_LENGTH_BYTES;
    if (framed && piece[at++] !== FRAME_ITEM) return undefined;
    const type = piece[at++];
    const width = type === 0xc4 ? 1 : type === 0xc5 ? 2 : type === 0xc6 ? 4 : 0;
    if (width === 0 || piece.length - at < width) return undefined;
    let length = 0;
    for (let i = 0; i < width; i++) length = length * 256 + piece[at++]!;
    this.offset = at;
    // Copied with set, not slice: a piece may be a Buffer (an inflated body), whose slice is a
    // view into memory the inflater goes on to reuse.
    const id = new Uint8Array(ID_LENGTH_BYTES);
    id.set(piece.subarray(idAt, idAt + ID_LENGTH_BYTES));
    return { id, length, kind: framed ? FRAME_ITEM : PLAIN_ITEM };
  }

  /** Copies into `target` from `at` what the current piece holds, without waiting; the position reached. */
  fillNow(target: Uint8Array, at: number): number {
    const n = Math.min(target.length - at, this.piece.length - this.offset);
    if (n <= 0) return at;
    target.set(this.piece.subarray(this.offset, this.offset + n), at);
    this.offset += n;
    return at + n;
  }

  async cancel(): Promise<void> {
    await this.iterator.return?.();
  }
}

/** An item's id, the length of the bin that follows (the object's bytes, or a delta), and its kind. */
interface ItemHeader {
  id: Uint8Array;
  length: number;
  kind: number;
}

/** A plain [id, bytes] pair. */
const PLAIN_ITEM = 0;
/** [id, 1, frame]: the object as one zstd frame, which the store may keep as it is. */
export const FRAME_ITEM = 1;
/** [id, 2, delta, base id]: the object rebuilt from old objects the node holds (wire/delta-frame.ts). */
export const DELTA_ITEM = 2;
/** The item kinds beyond plain pairs an upload takes, as GET /v1/health lists them ("uploadItems"). */
export const UPLOAD_ITEM_KINDS: readonly number[] = [FRAME_ITEM, DELTA_ITEM];

/**
 * An item's header read whatever its spelling and wherever the pieces split it: an [id, bytes]
 * pair, or [id, kind, ...] of a kind this reader takes; refuses anything else (an unknown kind
 * is an error, never skipped).
 */
async function pairHeader(reader: PieceReader, index: number): Promise<ItemHeader> {
  const item = `batch item ${index}`;
  const elements = await arrayLength(reader, item);
  if (elements !== 2 && elements !== 3 && elements !== 4) throw new DecodeError(`${item} is not an [id, bytes] pair`);
  if ((await binLength(reader, `${item}: the id`)) !== ID_LENGTH_BYTES) throw new DecodeError(`${item}: id is not 32 bytes`);
  const id = new Uint8Array(ID_LENGTH_BYTES);
  await reader.fill(id, `${item}: the id`);
  let kind = PLAIN_ITEM;
  if (elements > 2) {
    kind = await reader.byte(`${item}: the kind`);
    // Each kind has its own element count: [id, 1, frame], [id, 2, delta, base id].
    if (kind !== (elements === 3 ? FRAME_ITEM : DELTA_ITEM)) throw new DecodeError(`${item}: unknown item kind ${kind} of ${elements} elements`);
  }
  return { id, length: await binLength(reader, `${item}: the bytes`), kind };
}

/** Rebuilds a kind-2 item's object from its delta and base (the route's: it reads the bases); throws when it cannot. */
export type DeltaRebuilder = (id: ObjectId, delta: Uint8Array, baseId: ObjectId) => Promise<Uint8Array>;

/** The element count after an array header of any width. */
async function arrayLength(reader: PieceReader, what: string): Promise<number> {
  const type = await reader.byte(what);
  if (type >= 0x90 && type <= 0x9f) return type - 0x90;
  if (type === 0xdc) return reader.uint(2, what);
  if (type === 0xdd) return reader.uint(4, what);
  throw new DecodeError(`${what} is not an array`);
}

/** The byte length after a bin header of any width. */
async function binLength(reader: PieceReader, what: string): Promise<number> {
  const type = await reader.byte(what);
  if (type === 0xc4) return reader.uint(1, what);
  if (type === 0xc5) return reader.uint(2, what);
  if (type === 0xc6) return reader.uint(4, what);
  throw new DecodeError(`${what} must be binary`);
}

/**
 * The content of a kind-1 item's frame: refused (DecodeError, nothing of it stored) unless it is
 * one zstd frame declaring at most LIMITS.objectBytesMax, checked before a byte is inflated, and
 * inflating to exactly what it declares. Whether that content is the item's id the store checks.
 */
function inflateFrame(frame: Uint8Array, index: number): Uint8Array {
  const outline = readZstdFrameOutline(frame, LIMITS.objectBytesMax);
  if (typeof outline === "string") throw new DecodeError(`batch item ${index}: ${outline}`);
  let bytes: Uint8Array;
  try {
    bytes = Bun.zstdDecompressSync(frame);
  } catch (error) {
    throw new DecodeError(`batch item ${index}: the zstd frame does not inflate (${error instanceof Error ? error.message : String(error)})`);
  }
  if (bytes.length !== outline.contentBytes) throw new DecodeError(`batch item ${index}: the zstd frame inflates to ${bytes.length} bytes, not the ${outline.contentBytes} it declares`);
  // A plain Uint8Array, as every other object is (Bun returns a Buffer).
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface BatchTotals {
  objects: number;
  bytes: number;
}

/**
 * Reads an object batch from `pieces` (at most `bodyBytesMax` bytes in all, 413 beyond) and
 * hands its objects to `onGroup` in groups of at most GROUP_BYTES_MAX bytes, waiting for each
 * before reading on. At most LIMITS.batchIdsMax objects (400 beyond, before any is read).
 */
export async function readObjectBatchStream(
  pieces: AsyncIterable<Uint8Array>,
  onGroup: (objects: StoredObject[]) => Promise<void>,
  bodyBytesMax: number = LIMITS.requestBodyBytesMax,
  /** Takes items of kind 2 (deltas) with this; without it they are refused. */
  rebuildDelta?: DeltaRebuilder,
): Promise<BatchTotals> {
  const reader = new PieceReader(pieces, bodyBytesMax);
  const buffer = takeBuffer();
  let used = 0;
  /** Bytes of rebuilt objects in the group (each in a buffer of its own). */
  let rebuiltBytes = 0;
  let group: StoredObject[] = [];
  const totals: BatchTotals = { objects: 0, bytes: 0 };
  const handOn = async () => {
    if (group.length === 0) return;
    const objects = group;
    group = [];
    await onGroup(objects);
    used = 0;
    rebuiltBytes = 0;
  };
  try {
    const count = await arrayLength(reader, "an object batch");
    if (count > LIMITS.batchIdsMax) throw new DecodeError(`at most ${LIMITS.batchIdsMax} objects per batch`);
    for (let i = 0; i < count; i++) {
      const { id: idBytes, length, kind } = reader.pairHeaderNow() ?? (await pairHeader(reader, i));
      if (length > LIMITS.objectBytesMax) throw new DecodeError(`batch item ${i}: object larger than ${LIMITS.objectBytesMax} bytes`);
      if (kind === DELTA_ITEM) {
        if (!rebuildDelta) throw new DecodeError(`batch item ${i}: deltas are not taken here`);
        const delta = new Uint8Array(length);
        await reader.fill(delta, `batch item ${i}: the delta`);
        if ((await binLength(reader, `batch item ${i}: the base id`)) !== ID_LENGTH_BYTES) throw new DecodeError(`batch item ${i}: base id is not 32 bytes`);
        const baseId = new Uint8Array(ID_LENGTH_BYTES);
        await reader.fill(baseId, `batch item ${i}: the base id`);
        const bytes = await rebuildDelta(idBytes as ObjectId, delta, baseId as ObjectId);
        group.push({ id: idBytes as ObjectId, bytes });
        totals.objects += 1;
        totals.bytes += bytes.length;
        rebuiltBytes += bytes.length;
        if (rebuiltBytes >= GROUP_BYTES_MAX) await handOn();
        continue;
      }
      if (used + length > buffer.length) await handOn();
      // An object larger than the buffer gets one of its own, handed on alone.
      const bin = length > buffer.length ? new Uint8Array(length) : buffer.subarray(used, used + length);
      const filled = reader.fillNow(bin, 0);
      if (filled < length) await reader.fill(bin.subarray(filled), `batch item ${i}: the bytes`);
      if (length <= buffer.length) used += length;
      if (kind === FRAME_ITEM) {
        // The frame stays in the buffer (the store may keep it); its content gets a buffer of its own.
        const bytes = inflateFrame(bin, i);
        group.push({ id: idBytes as ObjectId, bytes, frame: bin });
        totals.objects += 1;
        totals.bytes += bytes.length;
        rebuiltBytes += bytes.length;
        if (length > buffer.length || rebuiltBytes >= GROUP_BYTES_MAX) await handOn();
        continue;
      }
      group.push({ id: idBytes as ObjectId, bytes: bin });
      totals.objects += 1;
      totals.bytes += length;
      if (length > buffer.length) await handOn();
    }
    if (await reader.more()) throw new DecodeError("bytes after the object batch");
    await handOn();
    return totals;
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    giveBack(buffer);
  }
}
