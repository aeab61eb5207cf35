// Canonical msgpack for structured objects.
//
// Objects are encoded as msgpack arrays (never maps), so the bytes depend only on the values:
// the same object always encodes to the same bytes and therefore the same id. The encoder
// options are fixed here and pinned by golden fixtures in test/core/objects.test.ts.
// Integers outside the 32-bit range are written as float64 (msgpackr's rule); every integer
// dsync stores is a safe integer, so this is exact.
import { Packr, Unpackr } from "msgpackr";

const packer = new Packr({ useRecords: false, variableMapSize: true, useFloat32: 0 });
const unpacker = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: "number" });

export function encodeCanonical(value: unknown): Uint8Array {
  return packer.pack(value);
}

export class DecodeError extends Error {
  override name = "DecodeError";
}

/** Decodes msgpack, turning every failure (truncation, trailing bytes, bad types) into a DecodeError. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  try {
    return unpacker.unpack(bytes);
  } catch (error) {
    throw new DecodeError(`malformed msgpack: ${(error as Error).message}`);
  }
}
