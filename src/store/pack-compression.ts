// Deciding per object whether to store it zstd-compressed.
//
// Most file chunks are already compressed (media, archives), and zstd spends ~1 ms per MiB on
// them for nothing, which alone would cap the store near the scan pipeline's 400 MB/s target.
// So a 4 KiB sample is compressed first and the whole object only when the sample shrinks.
import { RECORD_FLAG_ZSTD } from "./pack-format.ts";

const SAMPLE_LENGTH_BYTES = 4096;
/** Below this, zstd's frame overhead eats any gain. */
const COMPRESS_LENGTH_BYTES_MIN = 128;
/** Keep compressed output only when it saves at least 5%. */
const KEEP_RATIO_MAX = 0.95;

export interface EncodedPayload {
  flags: number;
  payload: Uint8Array;
}

/**
 * The payload to store for `bytes`: `frame` as it is when one came with them (a zstd frame that
 * inflates to them, compressed by the client) and it is shorter, else compressed here where that
 * pays, else the bytes. A frame that does not shrink the object says it is incompressible, so no
 * attempt is made. The store's read (decodePayload) is the same inflater the frame's reader used.
 */
export function encodePayload(bytes: Uint8Array, compressionLevel: number | undefined, frame?: Uint8Array): EncodedPayload {
  const raw = { flags: 0, payload: bytes };
  if (compressionLevel === undefined) return raw;
  if (frame !== undefined) return frame.length <= bytes.length * KEEP_RATIO_MAX ? { flags: RECORD_FLAG_ZSTD, payload: frame } : raw;
  if (bytes.length < COMPRESS_LENGTH_BYTES_MIN) return raw;
  const sample = bytes.length <= SAMPLE_LENGTH_BYTES ? bytes : bytes.subarray(0, SAMPLE_LENGTH_BYTES);
  const compressedSample = Bun.zstdCompressSync(sample, { level: compressionLevel });
  if (compressedSample.length > sample.length * KEEP_RATIO_MAX) return raw;
  const compressed = sample === bytes ? compressedSample : Bun.zstdCompressSync(bytes, { level: compressionLevel });
  if (compressed.length > bytes.length * KEEP_RATIO_MAX) return raw;
  return { flags: RECORD_FLAG_ZSTD, payload: asPlainBytes(compressed) };
}

/** Throws on a malformed frame; callers turn that into a corruption report. */
export function decodePayload(flags: number, payload: Uint8Array): Uint8Array {
  if ((flags & RECORD_FLAG_ZSTD) === 0) return payload;
  return asPlainBytes(Bun.zstdDecompressSync(payload));
}

/** Bun returns Buffers; callers get plain Uint8Arrays so equality checks and subclass checks agree. */
function asPlainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
