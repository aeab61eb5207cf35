// The one type for content ids: 32 raw bytes of BLAKE3 output.
// Everything that names an object (chunks, files, trees, versions) uses this type,
// so parsing, display and comparison live here and nowhere else.

export const ID_LENGTH_BYTES = 32;

declare const idBrand: unique symbol;
/** A BLAKE3 digest naming an object. Branded so arbitrary byte arrays are not mistaken for ids. */
export type ObjectId = Uint8Array & { readonly [idBrand]: true };

const HEX_DIGITS = "0123456789abcdef";
const HEX_PATTERN = /^[0-9a-f]{64}$/;

export function isObjectIdBytes(value: unknown): value is ObjectId {
  return value instanceof Uint8Array && value.length === ID_LENGTH_BYTES;
}

/** Wraps 32 bytes as an id (copying, so the caller's buffer may be reused). */
export function idFromBytes(bytes: Uint8Array): ObjectId {
  if (bytes.length !== ID_LENGTH_BYTES) {
    throw new Error(`an object id is ${ID_LENGTH_BYTES} bytes, got ${bytes.length}`);
  }
  return new Uint8Array(bytes) as ObjectId;
}

/** Native Uint8Array.prototype.toHex where the runtime has it (several times faster). */
const nativeToHex = (Uint8Array.prototype as { toHex?: () => string }).toHex;

export function idToHex(id: Uint8Array): string {
  if (nativeToHex) return nativeToHex.call(id);
  let out = "";
  for (let i = 0; i < id.length; i++) {
    const byte = id[i]!;
    out += HEX_DIGITS[byte >> 4]! + HEX_DIGITS[byte & 15]!;
  }
  return out;
}

export function isIdHex(text: unknown): text is string {
  return typeof text === "string" && HEX_PATTERN.test(text);
}

/** Parses 64 lowercase hex digits; throws a readable error for anything else. */
export function idFromHex(text: string): ObjectId {
  if (!isIdHex(text)) throw new Error(`not an object id (64 lowercase hex digits): ${JSON.stringify(String(text).slice(0, 80))}`);
  const out = new Uint8Array(ID_LENGTH_BYTES);
  for (let i = 0; i < ID_LENGTH_BYTES; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out as ObjectId;
}

export function idEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Byte-wise order, the same order as the hex forms sort in. */
export function idCompare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
