// Id lists as they cross the wire: `{"ids": [bin32, ...]}` (a "which do you lack?" question, a
// download request) and the answers to the question. They are the most frequent messages of a
// first push (one id per chunk and node, 200 000 ids for 100 000 small files), so both ends write
// and read their one msgpack layout directly, byte for byte what the canonical encoder makes,
// instead of through the generic encoder and the shape check plus unpacker (some 0.8 µs per id
// each way). Anything else, such as the same map with its entries written another way, goes
// through the generic decoder (formats.ts), so every valid message is still read.
//
// The answer: in the id list a node lacked (`{"missing": [bin32, ...]}`, as always), or, when the
// question asks `"reply": "bits"`, one bit per id asked (`{"lacking": bin}`): 1.25 KB for 10 000
// ids instead of 340 KB, and no id to decode. A node that does not know the field ignores it and
// answers with the list, which the client still reads.
import { DecodeError } from "../core/encoding.ts";
import { ID_LENGTH_BYTES, type ObjectId } from "../core/id.ts";

const BIN8 = 0xc4;
const ARRAY16 = 0xdc;
const ARRAY32 = 0xdd;
const FIXARRAY = 0x90;
const FIXSTR = 0xa0;
const FIXMAP = 0x80;
/** One id in the list: bin8 type, its length, 32 bytes. */
const ID_ENTRY_BYTES = 2 + ID_LENGTH_BYTES;

/** The reply format a question asks for: the lacking ids as bits, one per id asked. */
export const LACKING_BITS_REPLY = "bits";

function arrayHeaderBytes(count: number): number {
  return count < 16 ? 1 : count < 0x10000 ? 3 : 5;
}

function writeArrayHeader(out: Uint8Array, at: number, count: number): number {
  if (count < 16) {
    out[at] = FIXARRAY | count;
    return at + 1;
  }
  if (count < 0x10000) {
    out[at] = ARRAY16;
    out[at + 1] = count >>> 8;
    out[at + 2] = count & 0xff;
    return at + 3;
  }
  out[at] = ARRAY32;
  new DataView(out.buffer, out.byteOffset).setUint32(at + 1, count);
  return at + 5;
}

function writeFixstr(out: Uint8Array, at: number, text: string): number {
  out[at] = FIXSTR | text.length;
  for (let i = 0; i < text.length; i++) out[at + 1 + i] = text.charCodeAt(i);
  return at + 1 + text.length;
}

/**
 * `{field: [bin32, ...]}`, with `"reply": reply` after it when given: what encodeCanonical makes
 * of the same map (keys in order, both short ASCII names, `field` sorting before "reply").
 */
export function encodeIdListMessage(field: string, ids: readonly ObjectId[], reply?: string): Uint8Array {
  const replyBytes = reply === undefined ? 0 : 1 + "reply".length + 1 + reply.length;
  const out = new Uint8Array(1 + 1 + field.length + arrayHeaderBytes(ids.length) + ids.length * ID_ENTRY_BYTES + replyBytes);
  let at = 0;
  out[at++] = FIXMAP | (reply === undefined ? 1 : 2);
  at = writeFixstr(out, at, field);
  at = writeArrayHeader(out, at, ids.length);
  for (const id of ids) {
    if (id.length !== ID_LENGTH_BYTES) throw new Error(`an id is ${ID_LENGTH_BYTES} bytes, got ${id.length}`);
    out[at] = BIN8;
    out[at + 1] = ID_LENGTH_BYTES;
    out.set(id, at + 2);
    at += ID_ENTRY_BYTES;
  }
  if (reply !== undefined) {
    at = writeFixstr(out, at, "reply");
    at = writeFixstr(out, at, reply);
  }
  return out;
}

function fixstrAt(bytes: Uint8Array, at: number): { text: string; end: number } | null {
  const type = bytes[at];
  if (type === undefined || (type & 0xe0) !== FIXSTR) return null;
  const length = type & 0x1f;
  const end = at + 1 + length;
  if (end > bytes.length) return null;
  let text = "";
  for (let i = at + 1; i < end; i++) text += String.fromCharCode(bytes[i]!);
  return { text, end };
}

/**
 * Reads the layout encodeIdListMessage writes (`reply` optional): the ids, as views into `bytes`,
 * and the reply asked for. Null when the bytes are laid out any other way (the caller then uses
 * the generic decoder, which reads or refuses them); a DecodeError when there are more than
 * `idsMax` ids. Every byte is accounted for: nothing may follow the map.
 */
export function readIdListMessage(bytes: Uint8Array, field: string, idsMax: number): { ids: ObjectId[]; reply?: string } | null {
  const header = bytes[0];
  if (header !== (FIXMAP | 1) && header !== (FIXMAP | 2)) return null;
  const key = fixstrAt(bytes, 1);
  if (!key || key.text !== field) return null;
  let at = key.end;
  const type = bytes[at];
  let count: number;
  if (type === undefined) return null;
  if ((type & 0xf0) === FIXARRAY) {
    count = type & 0x0f;
    at += 1;
  } else if (type === ARRAY16 && at + 3 <= bytes.length) {
    count = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    at += 3;
  } else if (type === ARRAY32 && at + 5 <= bytes.length) {
    count = new DataView(bytes.buffer, bytes.byteOffset).getUint32(at + 1);
    at += 5;
  } else return null;
  if (count > idsMax) throw new DecodeError(`at most ${idsMax} ids per request`);
  if (at + count * ID_ENTRY_BYTES > bytes.length) return null;
  const ids = new Array<ObjectId>(count);
  for (let i = 0; i < count; i++) {
    if (bytes[at] !== BIN8 || bytes[at + 1] !== ID_LENGTH_BYTES) return null;
    ids[i] = bytes.subarray(at + 2, at + ID_ENTRY_BYTES) as ObjectId;
    at += ID_ENTRY_BYTES;
  }
  let reply: string | undefined;
  if (header === (FIXMAP | 2)) {
    const replyKey = fixstrAt(bytes, at);
    if (!replyKey || replyKey.text !== "reply") return null;
    const value = fixstrAt(bytes, replyKey.end);
    if (!value) return null;
    reply = value.text;
    at = value.end;
  }
  if (at !== bytes.length) return null;
  return reply === undefined ? { ids } : { ids, reply };
}

/** The lacking ids as bits, in the order asked: bit i (byte i >> 3, lowest bit first) is 1 when `lacking(i)`. */
export function lackingBits(count: number, lacking: (index: number) => boolean): Uint8Array {
  const bits = new Uint8Array(Math.ceil(count / 8));
  for (let i = 0; i < count; i++) if (lacking(i)) bits[i >> 3]! |= 1 << (i & 7);
  return bits;
}

/** The ids of `asked` whose bit is set; refuses bits of another length or with a bit set past the last id. */
export function idsFromLackingBits(asked: readonly ObjectId[], bits: Uint8Array): ObjectId[] {
  if (bits.length !== Math.ceil(asked.length / 8)) throw new DecodeError(`"lacking" holds ${bits.length} bytes for ${asked.length} ids asked (expected ${Math.ceil(asked.length / 8)})`);
  if (asked.length % 8 !== 0 && bits[bits.length - 1]! >> asked.length % 8 !== 0) throw new DecodeError(`"lacking" has bits set past the ${asked.length} ids asked`);
  const out: ObjectId[] = [];
  for (let i = 0; i < asked.length; i++) if ((bits[i >> 3]! >> (i & 7)) & 1) out.push(asked[i]!);
  return out;
}
