// The reply of POST /v1/objects/signatures: the block size the node signs with and, per id asked
// and in its place, the block signatures of that object (src/core/block-signatures.ts), empty
// for one the node does not hold, may not show, or left out past the reply's byte bound.
//   { "blockBytes": 512, "signatures": [bin, ...] }
import { isValidBlockBytes, SIGNATURE_BYTES } from "../core/block-signatures.ts";
import { DecodeError, decodeMsgpack, encodeCanonical } from "../core/encoding.ts";
import { LIMITS } from "../core/limits.ts";

export interface SignaturesReply {
  blockBytes: number;
  signatures: Uint8Array[];
}

export function encodeSignaturesReply(reply: SignaturesReply): Uint8Array {
  return encodeCanonical({ blockBytes: reply.blockBytes, signatures: reply.signatures });
}

/** Reads a reply to a request for `asked` ids: one signature list per id, each whole blocks, within the reply bound in all. */
export function decodeSignaturesReply(bytes: Uint8Array, asked: number): SignaturesReply {
  if (bytes.length > LIMITS.signatureReplyBytesMax + 64 * 1024 + asked * 8) throw new DecodeError(`a signatures reply larger than ${LIMITS.signatureReplyBytesMax} bytes`);
  const value = decodeMsgpack(bytes);
  if (!(value instanceof Map)) throw new DecodeError("a signatures reply is a map");
  const blockBytes = value.get("blockBytes");
  if (typeof blockBytes !== "number" || !isValidBlockBytes(blockBytes)) throw new DecodeError(`"blockBytes" is not a valid block size`);
  const list = value.get("signatures");
  if (!Array.isArray(list) || list.length !== asked) throw new DecodeError(`"signatures" must hold one entry per id asked (${asked})`);
  let total = 0;
  const signatures = list.map((entry, i) => {
    if (!(entry instanceof Uint8Array)) throw new DecodeError(`signatures[${i}] must be binary`);
    if (entry.length % SIGNATURE_BYTES !== 0) throw new DecodeError(`signatures[${i}] is not whole signatures`);
    if (entry.length / SIGNATURE_BYTES > Math.floor(LIMITS.objectBytesMax / blockBytes)) throw new DecodeError(`signatures[${i}] has more blocks than an object can`);
    total += entry.length;
    return entry;
  });
  if (total > LIMITS.signatureReplyBytesMax) throw new DecodeError(`signatures past the reply's bound of ${LIMITS.signatureReplyBytesMax} bytes`);
  return { blockBytes, signatures };
}
