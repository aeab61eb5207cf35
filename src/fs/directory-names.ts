// Reading a directory's names as the bytes they are on disk.
//
// Node's string API decodes names lossily: a name holding a byte that is not UTF-8 (`x\xff.txt`)
// comes back as `x\uFFFD.txt`, which is also the exact name of another file that may sit beside
// it. A path built from the lossy string then opens the *other* file, and the directory seems to
// hold the same name twice. So names are read as bytes and decoded strictly: a name that is
// valid UTF-8 decodes to a string that encodes back to the same bytes (every later path
// operation on it reaches this very file); a name that is not is reported, escaped, and left
// alone.
import { readdirSync } from "node:fs";
import { compareNames } from "../core/objects.ts";

export interface DirectoryNames {
  /** Names that are valid UTF-8, sorted in tree order. */
  names: string[];
  /** Names that are not valid UTF-8, escaped for reports (see escapeNameBytes). */
  undecodable: string[];
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The name as a string when its bytes are valid UTF-8, else undefined. */
export function decodeNameBytes(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A readable, unambiguous form of a name's bytes: valid UTF-8 sequences as they are, every
 * other byte as `\xNN`, and a backslash as `\\` (so `\xff` cannot be confused with the four
 * characters a name could hold).
 */
export function escapeNameBytes(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    const sequence = length > 0 && i + length <= bytes.length ? decodeNameBytes(bytes.subarray(i, i + length)) : undefined;
    if (sequence === undefined) {
      out += `\\x${lead.toString(16).padStart(2, "0")}`;
      i += 1;
    } else {
      out += sequence === "\\" ? "\\\\" : sequence;
      i += length;
    }
  }
  return out;
}

/** A character outside ASCII: a name holding one may not be what its bytes are (see below). */
const NON_ASCII = /[^\x00-\x7f]/;

/** Lists a directory by name bytes. Throws what readdir throws (the directory cannot be read). */
export function readDirectoryNames(absolutePath: string): DirectoryNames {
  // Most listings are ASCII alone. Listed as strings, a name whose bytes are not UTF-8 comes back
  // with a character outside ASCII (U+FFFD), so a listing of ASCII names is exactly the bytes on
  // disk, and sorts bytewise as strings do. Anything else is listed again as bytes.
  const listed = readdirSync(absolutePath);
  if (!listed.some((name) => NON_ASCII.test(name))) return { names: listed.sort(), undecodable: [] };
  const names: string[] = [];
  const undecodable: string[] = [];
  for (const raw of readdirSync(absolutePath, { encoding: "buffer" })) {
    const name = decodeNameBytes(raw);
    if (name === undefined) undecodable.push(escapeNameBytes(raw));
    else names.push(name);
  }
  names.sort(compareNames);
  undecodable.sort();
  return { names, undecodable };
}
