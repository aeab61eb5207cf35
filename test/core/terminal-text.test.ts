// The terminal escaping, table by table: what is escaped and how, what passes untouched, and
// that --json output stays exact JSON.
import { describe, expect, test } from "bun:test";
import {
  ERROR_MESSAGE_CHARS_MAX,
  LINE_CHARS_MAX,
  escapeTerminalLine,
  escapeTerminalText,
  terminalError,
  terminalJson,
  terminalLines,
  terminalRedraw,
  truncateText,
} from "../../src/core/terminal-text.ts";

/** Nothing a terminal would act on or reorder: no C0, DEL, C1, bidi control, separator or lone surrogate. */
function isInert(text: string, allowed = ""): boolean {
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    const code = text.charCodeAt(i);
    if (allowed.includes(char)) continue;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return false;
    if (code === 0x061c || code === 0x200e || code === 0x200f || (code >= 0x2028 && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069)) return false;
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) return false;
  }
  return true;
}

describe("escapeTerminalText", () => {
  const table: [string, string, string][] = [
    ["clear screen", "\x1b[2J", "\\x1b[2J"],
    ["window title (OSC, BEL)", "\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"],
    ["carriage return", "ok\rFAKE", "ok\\rFAKE"],
    ["newline", "a\nb", "a\\nb"],
    ["tab", "a\tb", "a\\tb"],
    ["NUL", "a\0b", "a\\x00b"],
    ["backspace", "abc\b\b", "abc\\x08\\x08"],
    ["DEL", "a\x7f", "a\\x7f"],
    ["C1 CSI", "\x9b2J", "\\x9b2J"],
    ["C1 NEL", "a\x85b", "a\\x85b"],
    ["right-to-left override", "txt\u202eexe.", "txt\\u202eexe."],
    ["embeddings and pop", "\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"],
    ["isolates", "\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"],
    ["marks", "\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"],
    ["line and paragraph separators", "a\u2028b\u2029", "a\\u2028b\\u2029"],
    ["lone high surrogate", "a\ud800b", "a\\ud800b"],
    ["lone low surrogate", "a\udc00b", "a\\udc00b"],
    ["high surrogate at the end", "a\ud83d", "a\\ud83d"],
    ["a pair is a character", "a\ud83d\ude00b", "a\ud83d\ude00b"],
    ["plain ASCII", "notes/todo.txt", "notes/todo.txt"],
    ["letters of any script", "café 東京 Ελλάδα", "café 東京 Ελλάδα"],
    ["a backslash stays", "a\\b", "a\\b"],
    ["zero-width joiner stays (part of emoji)", "👩\u200d💻", "👩\u200d💻"],
    ["empty", "", ""],
  ];
  for (const [what, input, expected] of table) {
    test(what, () => {
      expect(escapeTerminalText(input)).toBe(expected);
      expect(isInert(escapeTerminalText(input))).toBe(true);
    });
  }

  test("every code unit from U+0000 to U+FFFF comes out inert, and escaping twice changes nothing", () => {
    for (let code = 0; code <= 0xffff; code++) {
      const text = `a${String.fromCharCode(code)}b`;
      const once = escapeTerminalText(text);
      expect(isInert(once)).toBe(true);
      expect(escapeTerminalText(once)).toBe(once);
    }
  });
});

describe("lines", () => {
  test("a line keeps its tabs; a newline inside an item stays on its line", () => {
    expect(escapeTerminalLine("name\t\x1b[31mhead\tmode")).toBe("name\t\\x1b[31mhead\tmode");
    expect(terminalLines(["first\nfake second line", "\x1b[2Jthird"])).toBe("first\\nfake second line\n\\x1b[2Jthird\n");
    expect(terminalLines([])).toBe("");
  });

  test("a line is cut to a bound, with a marker; a line of real length is whole", () => {
    const path = "d/".repeat(2048);
    expect(terminalLines([`A ${path}`])).toBe(`A ${path}\n`);
    const huge = terminalLines([`message ${"\x1b".repeat(50_000_000)}`]);
    expect(huge.length).toBeLessThan(LINE_CHARS_MAX * 4 + 100);
    expect(huge.endsWith(" more characters)\n")).toBe(true);
  });

  test("a progress redraw starts with our carriage return only", () => {
    expect(terminalRedraw("pushing\r\x1b[1A")).toBe("\rpushing\\r\\x1b[1A");
  });
});

describe("error messages", () => {
  test("cut to a bound with a marker, escaped, one line", () => {
    expect(truncateText("abcdef", 4)).toBe("abcd… (2 more characters)");
    expect(truncateText("abcd", 4)).toBe("abcd");
    const huge = "\x1b[2J" + "x".repeat(1_000_000);
    const line = terminalError(huge);
    expect(line.length).toBeLessThan(ERROR_MESSAGE_CHARS_MAX + 100);
    expect(line.startsWith("dsync: \\x1b[2J")).toBe(true);
    expect(line).toContain("more characters)");
    expect(line.endsWith("\n")).toBe(true);
    expect(line.indexOf("\n")).toBe(line.length - 1);
    expect(isInert(line, "\n")).toBe(true);
  });
});

describe("terminalJson", () => {
  test("parses back to exactly the same value, with nothing a terminal acts on", () => {
    const value = {
      name: "\x1b[2J\u202eevil\r\n\t\0",
      message: "a\x7f\x9b\u2028\u2066b",
      lone: "x\ud800y",
      pair: "😀",
      nested: [{ path: "txt\u202eexe" }],
      number: 7,
      none: null,
    };
    const text = terminalJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(isInert(text, "\n")).toBe(true);
    expect(text.endsWith("\n")).toBe(true);
    expect(terminalJson({ a: 1 })).toBe(JSON.stringify({ a: 1 }, null, 2) + "\n");
  });
});
