// Canonical msgpack for structured objects.
//
// Objects are encoded as msgpack arrays (never maps), so the bytes depend only on the values:
// the same object always encodes to the same bytes and therefore the same id. The encoder
// options are fixed here and pinned by golden fixtures in test/core/objects.test.ts.
// Integers outside the 32-bit range are written as float64 (msgpackr's rule); every integer
// dsync stores is a safe integer, so this is exact.
import { Packr, Unpackr } from "msgpackr";
import { LIMITS } from "./limits.ts";

const packer = new Packr({ useRecords: false, variableMapSize: true, useFloat32: 0 });
const unpacker = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: "number" });

export function encodeCanonical(value: unknown): Uint8Array {
  return packer.pack(value);
}

export class DecodeError extends Error {
  override name = "DecodeError";
}

/**
 * Decodes msgpack, turning every failure (truncation, trailing bytes, bad types) into a DecodeError.
 * The bytes are first walked without building anything (checkMsgpackShape), so a body of a few
 * MiB that would unpack into millions of empty maps or arrays is refused before it costs memory.
 * `valuesMax`: for a format whose own bounds allow more values than the default (a snapshot).
 */
export function decodeMsgpack(bytes: Uint8Array, valuesMax: number = LIMITS.msgpackValuesMax): unknown {
  checkMsgpackShape(bytes, valuesMax);
  try {
    return unpacker.unpack(bytes);
  } catch (error) {
    throw new DecodeError(`malformed msgpack: ${(error as Error).message}`);
  }
}

/**
 * Payload bytes after the type byte, for the types whose size is fixed by the type byte alone
 * (numbers and fixext; fixext adds its own type byte). -1: a length or count follows instead.
 */
function fixedPayloadBytes(type: number): number {
  if (type <= 0x7f || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3) return 0;
  switch (type) {
    case 0xcc: case 0xd0: return 1;
    case 0xcd: case 0xd1: return 2;
    case 0xca: case 0xce: case 0xd2: return 4;
    case 0xcb: case 0xcf: case 0xd3: return 8;
    case 0xd4: return 2;
    case 0xd5: return 3;
    case 0xd6: return 5;
    case 0xd7: return 9;
    case 0xd8: return 17;
    default: return -1;
  }
}

/**
 * Walks one msgpack value iteratively, counting values and nesting, and throws a DecodeError
 * when it holds more than `valuesMax` values (every map key and value, array item and scalar
 * counts) or nests deeper than `depthMax`. Unpacking turns each byte of an empty map or array
 * into an object of tens of bytes; the count bounds that, whatever the body's size. Truncation
 * and bytes that are no type are left to the unpacker to report.
 */
export function checkMsgpackShape(bytes: Uint8Array, valuesMax: number = LIMITS.msgpackValuesMax, depthMax: number = LIMITS.msgpackDepthMax): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Values still to read in each open container, innermost last; the top level is one value.
  const pending: number[] = [1];
  let at = 0;
  let values = 0;
  while (pending.length > 0) {
    if (pending[pending.length - 1] === 0) {
      pending.pop();
      continue;
    }
    pending[pending.length - 1]!--;
    if (at >= bytes.length) return; // truncated: the unpacker says so
    if (++values > valuesMax) throw new DecodeError(`malformed msgpack: more than ${valuesMax} values`);
    const type = bytes[at]!;
    at++;
    const fixed = fixedPayloadBytes(type);
    if (fixed >= 0) {
      at += fixed;
      continue;
    }
    let skip = -1;
    let children = -1;
    const need = (n: number) => at + n <= bytes.length;
    if (type >= 0xa0 && type <= 0xbf) skip = type & 0x1f;
    else if (type >= 0x90 && type <= 0x9f) children = type & 0x0f;
    else if (type >= 0x80 && type <= 0x8f) children = (type & 0x0f) * 2;
    else if (type === 0xc4 || type === 0xd9) { if (!need(1)) return; skip = view.getUint8(at); at += 1; }
    else if (type === 0xc5 || type === 0xda) { if (!need(2)) return; skip = view.getUint16(at); at += 2; }
    else if (type === 0xc6 || type === 0xdb) { if (!need(4)) return; skip = view.getUint32(at); at += 4; }
    else if (type === 0xc7) { if (!need(1)) return; skip = view.getUint8(at) + 1; at += 1; }
    else if (type === 0xc8) { if (!need(2)) return; skip = view.getUint16(at) + 1; at += 2; }
    else if (type === 0xc9) { if (!need(4)) return; skip = view.getUint32(at) + 1; at += 4; }
    else if (type === 0xdc) { if (!need(2)) return; children = view.getUint16(at); at += 2; }
    else if (type === 0xdd) { if (!need(4)) return; children = view.getUint32(at); at += 4; }
    else if (type === 0xde) { if (!need(2)) return; children = view.getUint16(at) * 2; at += 2; }
    else if (type === 0xdf) { if (!need(4)) return; children = view.getUint32(at) * 2; at += 4; }
    else return; // 0xc1, never used: the unpacker refuses it
    if (skip >= 0) {
      at += skip;
      continue;
    }
    // A declared count beyond what is left of the budget is refused before a single child is read.
    if (values + children > valuesMax) throw new DecodeError(`malformed msgpack: more than ${valuesMax} values`);
    if (children > 0) {
      if (pending.length >= depthMax) throw new DecodeError(`malformed msgpack: nested deeper than ${depthMax} levels`);
      pending.push(children);
    }
  }
}
