// The outline of one zstd frame (RFC 8878, section 3.1.1), read without inflating it.
//
// An upload item of kind 1 carries an object as a zstd frame the node may keep as its stored
// payload. Before inflating a frame from the network the node must know how much it will
// produce, and that the bytes are one frame and nothing more: zstd's one-shot decoder inflates
// concatenated frames one after the other (so a frame's declared size alone bounds nothing), and
// a frame that does not declare its size is inflated by a growing buffer. So a frame is taken
// only when it is exactly one frame, declares its content size within the bound, names no
// dictionary, and its blocks end exactly where the bytes do. The decoder then checks that what
// it produces is the declared size (a frame that lies about it fails to inflate).
const FRAME_MAGIC = 0xfd2fb528;
const MAGIC_BYTES = 4;
const BLOCK_HEADER_BYTES = 3;
const CHECKSUM_BYTES = 4;
/** The largest block a frame may hold (Block_Maximum_Size). */
const BLOCK_BYTES_MAX = 128 * 1024;
const BLOCK_RAW = 0;
const BLOCK_RLE = 1;
const BLOCK_COMPRESSED = 2;

export interface ZstdFrameOutline {
  /** The content size the frame declares: what it inflates to. */
  contentBytes: number;
}

/**
 * The outline of `frame` when it is exactly one zstd frame that declares a content size of at
 * most `contentBytesMax` and uses no dictionary; otherwise what is wrong with it.
 */
export function readZstdFrameOutline(frame: Uint8Array, contentBytesMax: number): ZstdFrameOutline | string {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < MAGIC_BYTES + 1 || view.getUint32(0, true) !== FRAME_MAGIC) return "not a zstd frame (magic number)";
  const descriptor = frame[MAGIC_BYTES]!;
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const hasChecksum = (descriptor & 0x04) !== 0;
  if ((descriptor & 0x08) !== 0) return "zstd frame header sets its reserved bit";
  if ((descriptor & 0x03) !== 0) return "zstd frame names a dictionary";
  let at = MAGIC_BYTES + 1 + (singleSegment ? 0 : 1);
  const sizeBytes = sizeFlag === 0 ? (singleSegment ? 1 : 0) : sizeFlag === 1 ? 2 : sizeFlag === 2 ? 4 : 8;
  if (sizeBytes === 0) return "zstd frame does not declare its content size";
  if (frame.length < at + sizeBytes) return "zstd frame header is cut short";
  let contentBytes: number;
  if (sizeBytes === 1) contentBytes = frame[at]!;
  else if (sizeBytes === 2) contentBytes = view.getUint16(at, true) + 256;
  else if (sizeBytes === 4) contentBytes = view.getUint32(at, true);
  else contentBytes = view.getUint32(at + 4, true) === 0 ? view.getUint32(at, true) : Number.POSITIVE_INFINITY;
  // Zero is also what a decoder may take for "unknown"; no frame is shorter than empty content anyway.
  if (contentBytes === 0) return "zstd frame declares no content";
  if (contentBytes > contentBytesMax) return `zstd frame declares ${contentBytes} bytes of content, above the ${contentBytesMax}-byte limit`;
  at += sizeBytes;
  for (;;) {
    if (frame.length < at + BLOCK_HEADER_BYTES) return "zstd frame ends inside a block header";
    const header = frame[at]! | (frame[at + 1]! << 8) | (frame[at + 2]! << 16);
    at += BLOCK_HEADER_BYTES;
    const last = (header & 1) !== 0;
    const type = (header >> 1) & 3;
    const blockBytes = header >>> 3;
    if (blockBytes > BLOCK_BYTES_MAX) return `zstd block of ${blockBytes} bytes is above the ${BLOCK_BYTES_MAX}-byte block limit`;
    if (type === BLOCK_RAW || type === BLOCK_COMPRESSED) at += blockBytes;
    else if (type === BLOCK_RLE) at += 1;
    else return "zstd frame holds a block of the reserved type";
    if (at > frame.length) return "zstd frame ends inside a block";
    if (last) break;
  }
  if (hasChecksum) at += CHECKSUM_BYTES;
  if (at !== frame.length) return at > frame.length ? "zstd frame ends inside its checksum" : `${frame.length - at} bytes follow the zstd frame`;
  return { contentBytes };
}
