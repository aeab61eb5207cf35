// Text bound for a terminal, made harmless. Names of files and folders, version messages, node
// ids and error text that came from a node are data, and a terminal obeys some data: ESC starts
// a sequence that can clear the screen, move the cursor, retitle the window or rewrite what was
// printed before; CR overwrites the line; a bidirectional override shows "exe.txt" for
// "txt\u202eexe". Every line the CLI prints goes through here, so none of that reaches a
// terminal raw. Each such character is shown as an escape instead (`\x1b`, `\r`, `\u202e`);
// `--json` output is exact JSON (terminalJson), where the same characters are \u escapes.
//
// The escaping is for reading, not for parsing back: a backslash is left as it is, so a name
// that really contains the text `\x1b` looks the same as one holding ESC. --json is exact.

/**
 * What is never written raw: C0 controls and DEL, C1 controls (U+0080–U+009F: a terminal may
 * read U+009B as CSI), the bidirectional marks, embeddings, overrides and isolates (U+061C,
 * U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph separators
 * (U+2028–U+2029), and lone surrogates (no character at all; some terminals garble the rest of
 * the line). The regex works on UTF-16 code units (no `u` flag) so lone surrogates can match.
 */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSAFE_EXCEPT_TAB = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** In JSON text: the same minus C0 (JSON.stringify escapes those in strings; outside, a newline is layout). */
const UNSAFE_IN_JSON = /[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT_ESCAPES: Record<string, string> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function escapeOne(char: string): string {
  const short = SHORT_ESCAPES[char];
  if (short) return short;
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One value (a name, a path, a message) with every unsafe character escaped, tabs and newlines included. */
export function escapeTerminalText(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/** One line of output: the same escaping, except that a tab stays a tab (it separates columns). */
export function escapeTerminalLine(line: string): string {
  return line.replace(UNSAFE_EXCEPT_TAB, escapeOne);
}

/**
 * The longest line printed, before escaping. Real lines stay far below (a path is at most 4 096
 * bytes, a version message too); a node that sends a 100 MB message gets its line cut, not the
 * terminal flooded. --json output is never cut.
 */
export const LINE_CHARS_MAX = 16_384;

/**
 * Lines ready to write: each cut to LINE_CHARS_MAX, escaped on its own and ended by a newline.
 * A newline inside a line (a message spanning lines, a name holding one) is shown as `\n`, so
 * one item stays one line.
 */
export function terminalLines(lines: readonly string[]): string {
  return lines.map((line) => `${escapeTerminalLine(truncateText(line, LINE_CHARS_MAX))}\n`).join("");
}

/** A progress line redrawn in place: the carriage return is ours, the text's own are escaped. */
export function terminalRedraw(line: string): string {
  return `\r${escapeTerminalLine(line)}`;
}

/** Text cut to at most `maxChars` characters, saying how much was left out. */
export function truncateText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  return `${text.slice(0, maxChars)}… (${text.length - maxChars} more characters)`;
}

/** The longest error message the CLI prints: a node's reason is one sentence, not a document. */
export const ERROR_MESSAGE_CHARS_MAX = 2000;

/** An error message for stderr: cut to ERROR_MESSAGE_CHARS_MAX, then escaped, on one line. */
export function terminalError(message: string): string {
  return terminalLines([`dsync: ${truncateText(message, ERROR_MESSAGE_CHARS_MAX)}`]);
}

/**
 * A value as pretty JSON, for stdout. JSON.stringify already escapes C0 controls and lone
 * surrogates; DEL, C1, the bidirectional controls and U+2028/U+2029 it leaves raw. Those can
 * only occur inside strings, where `\uXXXX` means the same character, so replacing them keeps
 * the document exact: it parses to the same value.
 */
export function terminalJson(value: unknown): string {
  return `${(JSON.stringify(value, null, 2) ?? "null").replace(UNSAFE_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)}\n`;
}

/**
 * One JSON document written in parts, for a list too long to build whole: an object whose last
 * field is an array, laid out exactly as terminalJson lays out the whole. `terminalJsonOpen`
 * gives the object's other fields and opens the array named `field`; `terminalJsonItems` the
 * elements a few at a time (the count written before puts the commas); `terminalJsonClose` ends both, given how many
 * elements were written. Each part is escaped like terminalJson, so the document stays exact.
 */
export function terminalJsonOpen(fields: Record<string, unknown>, field: string): string {
  const head = Object.keys(fields).length === 0 ? "{" : `${terminalJson(fields).replace(/\n}\n$/, "")},`;
  return `${head}\n  ${JSON.stringify(field)}: [`;
}

/** The next elements of the array, `firstIndex` being how many were written before them. */
export function terminalJsonItems(values: readonly unknown[], firstIndex: number): string {
  return values
    .map((value, i) => {
      const lines = terminalJson(value).replace(/\n$/, "").split("\n");
      return `${firstIndex + i === 0 ? "" : ","}\n${lines.map((line) => `    ${line}`).join("\n")}`;
    })
    .join("");
}

export function terminalJsonClose(count: number): string {
  return count === 0 ? "]\n}\n" : "\n  ]\n}\n";
}

/** Values as JSON lines (one compact document per line), each escaped like terminalJson. */
export function terminalJsonLines(values: readonly unknown[]): string {
  return values.map((value) => `${(JSON.stringify(value) ?? "null").replace(UNSAFE_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)}\n`).join("");
}
