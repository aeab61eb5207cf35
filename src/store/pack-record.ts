// Checking one record read back from a pack: header, lengths, decompression, and the hash.
// Reads, index rebuilds and repack all go through here, so no path can hand out unverified bytes.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex } from "../core/id.ts";
import { decodePayload } from "./pack-compression.ts";
import { readRecordHeader, RECORD_HEADER_LENGTH_BYTES, type RecordHeader } from "./pack-format.ts";

export interface VerifiedRecord {
  header: RecordHeader;
  /** The object's raw bytes. */
  bytes: Uint8Array;
  /** What follows the header on disk (equal to bytes unless compressed). */
  payload: Uint8Array;
}

/**
 * `record` holds a header and the payload it announces. `expected` is what the index says
 * should be there. Returns the verified record, or a description of what is wrong.
 */
export function verifyRecord(record: Uint8Array, expected?: RecordHeader): VerifiedRecord | string {
  const header = readRecordHeader(record, 0);
  if (typeof header === "string") return header;
  if (expected !== undefined) {
    if (!idEquals(header.id, expected.id)) return `record at this offset is for ${idToHex(header.id)}`;
    if (header.flags !== expected.flags || header.storedLengthBytes !== expected.storedLengthBytes || header.rawLengthBytes !== expected.rawLengthBytes) {
      return "record header does not match the index";
    }
  }
  const endBytes = RECORD_HEADER_LENGTH_BYTES + header.storedLengthBytes;
  if (record.length < endBytes) return "pack ends inside the record";
  const payload = record.subarray(RECORD_HEADER_LENGTH_BYTES, endBytes);
  let bytes: Uint8Array;
  try {
    bytes = decodePayload(header.flags, payload);
  } catch (error) {
    return `payload does not decompress (${error instanceof Error ? error.message : String(error)})`;
  }
  if (bytes.length !== header.rawLengthBytes) return `payload holds ${bytes.length} bytes, header says ${header.rawLengthBytes}`;
  const actual = blake3(bytes);
  if (!idEquals(actual, header.id)) return `content hashes to ${idToHex(actual)}`;
  return { header, bytes, payload };
}
