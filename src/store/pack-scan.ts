// Reading a whole pack front to back to find its valid records, for rebuilding the index, and
// the valid records past a pack's committed end, for recovery.
//
// Only records whose bytes hash to their id count. After anything that is not a valid record
// (a torn tail, a damaged header, flipped bits) the scan searches forward for the next record
// magic, so one damaged record does not hide the ones behind it.
import { LIMITS } from "../core/limits.ts";
import { PACK_HEADER_LENGTH_BYTES, RECORD_HEADER_LENGTH_BYTES, RECORD_MAGIC, readRecordHeader, type RecordHeader } from "./pack-format.ts";
import type { FileSystem } from "./file-system.ts";
import { readFully } from "./pack-io.ts";
import { verifyRecord } from "./pack-record.ts";

export interface ScannedRecord extends RecordHeader {
  offsetBytes: number;
}

/** A whole record whose header names an id but whose bytes fail verification. */
export interface DamagedRecord extends ScannedRecord {
  /** What is wrong with it (from verifyRecord). */
  detail: string;
}

export interface PackScanResult {
  records: number;
  /** End of the last valid record (the pack header's end when there is none). */
  validEndBytes: number;
  /** End of the last record, valid or damaged, that lies wholly in the file (at least validEndBytes). */
  recordEndBytes: number;
  /** Bytes after the pack header that belong to no valid record. */
  invalidBytes: number;
}

/** Large enough to hold the largest possible record twice over, so one refill always suffices. */
const WINDOW_LENGTH_BYTES = 2 * (LIMITS.objectBytesMax + RECORD_HEADER_LENGTH_BYTES);

export function scanPack(
  files: FileSystem,
  path: string,
  onRecord: (record: ScannedRecord) => void,
  onDamaged?: (record: DamagedRecord) => void,
): PackScanResult {
  const fd = files.open(path, "read");
  try {
    const window = new PackWindow(files, fd, files.sizeBytes(fd));
    return scanWindow(window, onRecord, onDamaged);
  } finally {
    files.close(fd);
  }
}

/**
 * The whole, valid records that follow each other from `fromBytes` (a pack's committed end), up
 * to `limitBytes`: the first byte that does not start one ends the tail, since an acknowledged
 * batch follows the one before it with no gap and everything after a torn record was never
 * acknowledged. For recovery, whose index rows may have been lost with a commit that did not
 * wait for the disk.
 */
export function scanTail(files: FileSystem, fd: number, fromBytes: number, limitBytes: number, onRecord: (record: ScannedRecord) => void): { records: number; endBytes: number } {
  const window = new PackWindow(files, fd, Math.min(limitBytes, files.sizeBytes(fd)));
  let position = fromBytes;
  let records = 0;
  while (position + RECORD_HEADER_LENGTH_BYTES <= window.sizeBytes) {
    const header = readRecordHeader(window.bytesAt(position, RECORD_HEADER_LENGTH_BYTES), 0);
    if (typeof header === "string") break;
    const endBytes = position + RECORD_HEADER_LENGTH_BYTES + header.storedLengthBytes;
    if (endBytes > window.sizeBytes || typeof verifyRecord(window.bytesAt(position, endBytes - position)) === "string") break;
    onRecord({ ...header, offsetBytes: position });
    records++;
    position = endBytes;
  }
  return { records, endBytes: position };
}

function scanWindow(window: PackWindow, onRecord: (record: ScannedRecord) => void, onDamaged?: (record: DamagedRecord) => void): PackScanResult {
  const sizeBytes = window.sizeBytes;
  let position = PACK_HEADER_LENGTH_BYTES;
  let records = 0;
  let validEndBytes = PACK_HEADER_LENGTH_BYTES;
  let recordEndBytes = PACK_HEADER_LENGTH_BYTES;
  let validBytes = 0;
  while (position + RECORD_HEADER_LENGTH_BYTES <= sizeBytes) {
    const header = readRecordHeader(window.bytesAt(position, RECORD_HEADER_LENGTH_BYTES), 0);
    const endBytes = typeof header === "string" ? -1 : position + RECORD_HEADER_LENGTH_BYTES + header.storedLengthBytes;
    if (typeof header !== "string" && endBytes <= sizeBytes) {
      const verified = verifyRecord(window.bytesAt(position, endBytes - position));
      if (typeof verified !== "string") {
        onRecord({ ...header, offsetBytes: position });
        records++;
        validBytes += endBytes - position;
        validEndBytes = endBytes;
        recordEndBytes = Math.max(recordEndBytes, endBytes);
        position = endBytes;
        continue;
      }
      // A whole record with a readable header that fails its hash: its id is known, so the
      // caller can keep its bytes. The scan still searches on from the next byte, since the
      // length in a damaged header cannot be trusted to find the next record.
      if (onDamaged !== undefined) {
        onDamaged({ ...header, offsetBytes: position, detail: verified });
        recordEndBytes = Math.max(recordEndBytes, endBytes);
      }
    }
    position = window.findMagic(position + 1);
  }
  return { records, validEndBytes, recordEndBytes, invalidBytes: Math.max(0, sizeBytes - PACK_HEADER_LENGTH_BYTES - validBytes) };
}

/** A sliding view over the file, refilled by positional reads. */
class PackWindow {
  private backing = Buffer.allocUnsafe(0);
  private startBytes = 0;
  private filledBytes = 0;

  constructor(private readonly files: FileSystem, private readonly fd: number, readonly sizeBytes: number) {}

  /** The bytes at [position, position + length), which must lie within the file. */
  bytesAt(position: number, lengthBytes: number): Uint8Array {
    if (position < this.startBytes || position + lengthBytes > this.startBytes + this.filledBytes) {
      const wantedBytes = Math.min(Math.max(WINDOW_LENGTH_BYTES, lengthBytes), this.sizeBytes - position);
      if (this.backing.length < wantedBytes) this.backing = Buffer.allocUnsafe(wantedBytes);
      this.filledBytes = readFully(this.files, this.fd, this.backing.subarray(0, wantedBytes), position);
      this.startBytes = position;
    }
    const at = position - this.startBytes;
    return this.backing.subarray(at, at + lengthBytes);
  }

  /** The position of the next record magic at or after `from`, or the file size when there is none. */
  findMagic(from: number): number {
    let position = from;
    while (position + RECORD_MAGIC.length <= this.sizeBytes) {
      const lengthBytes = Math.min(WINDOW_LENGTH_BYTES, this.sizeBytes - position);
      const chunk = this.bytesAt(position, lengthBytes);
      const found = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).indexOf(RECORD_MAGIC);
      if (found >= 0) return position + found;
      // Overlap by the magic's length minus one so a magic split across windows is still found.
      position += lengthBytes - (RECORD_MAGIC.length - 1);
      if (lengthBytes < WINDOW_LENGTH_BYTES) break;
    }
    return this.sizeBytes;
  }
}
