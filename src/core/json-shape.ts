// JSON from the network, bounded by what it parses into and not only by its size: JSON.parse
// turns each `{}` or `[]` of a body into an object of tens of bytes, so 23 MiB of them become
// most of a gigabyte. The text is walked first, without building anything, and refused past a
// number of values or a depth of nesting; only then is it parsed.
import { DecodeError } from "./encoding.ts";
import { LIMITS } from "./limits.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * Throws a DecodeError when `text` holds more than `valuesMax` values (counted as containers
 * plus separators, an upper bound of what parsing builds) or nests deeper than `depthMax`.
 * Malformed JSON is left to JSON.parse to report.
 */
export function checkJsonShape(text: string, valuesMax: number = LIMITS.jsonValuesMax, depthMax: number = LIMITS.jsonDepthMax): void {
  let values = 1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
      continue;
    }
    if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      if (++depth > depthMax) throw new DecodeError(`malformed JSON: nested deeper than ${depthMax} levels`);
      if (++values > valuesMax) throw new DecodeError(`malformed JSON: more than ${valuesMax} values`);
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) depth--;
    else if (code === COMMA && ++values > valuesMax) throw new DecodeError(`malformed JSON: more than ${valuesMax} values`);
  }
}

/** JSON.parse of UTF-8 bytes from the network, after checkJsonShape; a DecodeError for anything malformed. */
export function parseJsonBounded(bytes: Uint8Array, valuesMax?: number, depthMax?: number): unknown {
  const text = new TextDecoder().decode(bytes);
  checkJsonShape(text, valuesMax, depthMax);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DecodeError(`malformed JSON: ${(error as Error).message}`);
  }
}
