// The bytes of a pack file: a 16-byte file header, then records back to back.
//
// Every record carries the id of its object, so the index can be rebuilt from the packs alone.
// There is no checksum: the id is the BLAKE3 of the raw bytes, and every read re-hashes.
// docs/format.md ("Object store on disk") describes the same layout in prose.
import { ID_LENGTH_BYTES, idFromBytes, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

/** "DSYNCPAK", then u32 LE format version, then u32 LE reserved (zero). */
export const PACK_MAGIC = new TextEncoder().encode("DSYNCPAK");
export const PACK_FORMAT_VERSION = 1;
export const PACK_HEADER_LENGTH_BYTES = 16;

/**
 * Record header, 48 bytes:
 *   0  "DSOB"            record magic, lets a scan find records again after damage
 *   4  u8  version       1
 *   5  u8  flags         bit 0: payload is a zstd frame
 *   6  u16 reserved      zero
 *   8  u32 LE raw length     bytes of the object
 *  12  u32 LE stored length  bytes of the payload that follows the header
 *  16  32 bytes id          BLAKE3 of the raw bytes
 */
export const RECORD_MAGIC = new TextEncoder().encode("DSOB");
export const RECORD_FORMAT_VERSION = 1;
export const RECORD_HEADER_LENGTH_BYTES = 48;
export const RECORD_FLAG_ZSTD = 1;
const RECORD_FLAGS_KNOWN = RECORD_FLAG_ZSTD;

export interface RecordHeader {
  id: ObjectId;
  flags: number;
  rawLengthBytes: number;
  storedLengthBytes: number;
}

export function encodePackHeader(): Uint8Array {
  const out = new Uint8Array(PACK_HEADER_LENGTH_BYTES);
  out.set(PACK_MAGIC, 0);
  new DataView(out.buffer).setUint32(8, PACK_FORMAT_VERSION, true);
  return out;
}

export function isPackHeader(bytes: Uint8Array): boolean {
  if (bytes.length < PACK_HEADER_LENGTH_BYTES) return false;
  for (let i = 0; i < PACK_MAGIC.length; i++) if (bytes[i] !== PACK_MAGIC[i]) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, PACK_HEADER_LENGTH_BYTES);
  return view.getUint32(8, true) === PACK_FORMAT_VERSION;
}

export function writeRecordHeader(target: Uint8Array, offsetBytes: number, header: RecordHeader): void {
  target.set(RECORD_MAGIC, offsetBytes);
  target[offsetBytes + 4] = RECORD_FORMAT_VERSION;
  target[offsetBytes + 5] = header.flags;
  target[offsetBytes + 6] = 0;
  target[offsetBytes + 7] = 0;
  const view = new DataView(target.buffer, target.byteOffset + offsetBytes, RECORD_HEADER_LENGTH_BYTES);
  view.setUint32(8, header.rawLengthBytes, true);
  view.setUint32(12, header.storedLengthBytes, true);
  target.set(header.id, offsetBytes + 16);
}

export function hasRecordMagic(source: Uint8Array, offsetBytes: number): boolean {
  for (let i = 0; i < RECORD_MAGIC.length; i++) if (source[offsetBytes + i] !== RECORD_MAGIC[i]) return false;
  return true;
}

/**
 * Parses and sanity-checks a record header. Returns a description of the problem instead of a
 * header when the bytes cannot be one, so scans can resynchronize and reads can report it.
 */
export function readRecordHeader(source: Uint8Array, offsetBytes: number): RecordHeader | string {
  if (source.length - offsetBytes < RECORD_HEADER_LENGTH_BYTES) return "record header is cut short";
  if (!hasRecordMagic(source, offsetBytes)) return "record magic is wrong";
  if (source[offsetBytes + 4] !== RECORD_FORMAT_VERSION) return `unknown record version ${source[offsetBytes + 4]}`;
  const flags = source[offsetBytes + 5]!;
  if ((flags & ~RECORD_FLAGS_KNOWN) !== 0) return `unknown record flags ${flags}`;
  if (source[offsetBytes + 6] !== 0 || source[offsetBytes + 7] !== 0) return "reserved record bytes are not zero";
  const view = new DataView(source.buffer, source.byteOffset + offsetBytes, RECORD_HEADER_LENGTH_BYTES);
  const rawLengthBytes = view.getUint32(8, true);
  const storedLengthBytes = view.getUint32(12, true);
  if (rawLengthBytes > LIMITS.objectBytesMax) return `raw length ${rawLengthBytes} is above the object size limit`;
  // Compressed payloads are kept only when smaller, and raw payloads are the object itself.
  if ((flags & RECORD_FLAG_ZSTD) !== 0 ? storedLengthBytes >= rawLengthBytes : storedLengthBytes !== rawLengthBytes) {
    return `stored length ${storedLengthBytes} does not fit raw length ${rawLengthBytes} with flags ${flags}`;
  }
  const id = idFromBytes(source.subarray(offsetBytes + 16, offsetBytes + 16 + ID_LENGTH_BYTES));
  return { id, flags, rawLengthBytes, storedLengthBytes };
}

export function recordLengthBytes(storedLengthBytes: number): number {
  return RECORD_HEADER_LENGTH_BYTES + storedLengthBytes;
}

/** Pack files are numbered from 1 and named with eight decimal digits so they sort by name. */
export function packFileName(packNumber: number): string {
  return `${String(packNumber).padStart(8, "0")}.pack`;
}

const PACK_FILE_NAME_PATTERN = /^(\d{8,})\.pack$/;

export function parsePackFileName(name: string): number | undefined {
  const match = PACK_FILE_NAME_PATTERN.exec(name);
  if (!match) return undefined;
  const packNumber = Number(match[1]);
  return Number.isSafeInteger(packNumber) && packNumber > 0 ? packNumber : undefined;
}
