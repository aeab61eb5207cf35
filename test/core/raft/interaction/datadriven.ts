// The trace file format (after the datadriven files of etcd's raft tests): a command line, a
// `----` line, the command's expected output, and a blank line before the next command. Lines
// starting with `#` between blocks are comments. Running a file executes its commands in order
// and compares each output with the one written down; with DSYNC_UPDATE_TRACES=1 the file is
// rewritten with the actual outputs instead, comments and commands kept as they were.
//
// An output never holds a blank line (the blank line ends the block); a command that prints
// nothing is recorded as "ok".

export interface TraceBlock {
  /** The command line as written. */
  command: string;
  /** 1-based line of the command in the file. */
  line: number;
  /** The expected output lines (empty when the file was never updated for this block). */
  expected: string[];
  /** Comment and blank lines written before the command, kept verbatim on rewrite. */
  preamble: string[];
}

export interface ParsedTrace {
  blocks: TraceBlock[];
  /** Comment and blank lines after the last block. */
  trailer: string[];
}

export class TraceFormatError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "TraceFormatError";
  }
}

const SEPARATOR = "----";

export function parseTrace(file: string, text: string): ParsedTrace {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const blocks: TraceBlock[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "" || line.startsWith("#")) {
      preamble.push(line);
      i++;
      continue;
    }
    const command = line.trim();
    const commandLine = i + 1;
    i++;
    if (i >= lines.length || lines[i] !== SEPARATOR) {
      throw new TraceFormatError(file, commandLine, `expected "${SEPARATOR}" after the command "${command}"`);
    }
    i++;
    const expected: string[] = [];
    while (i < lines.length && lines[i] !== "") {
      expected.push(lines[i]);
      i++;
    }
    blocks.push({ command, line: commandLine, expected, preamble });
    preamble = [];
  }
  return { blocks, trailer: preamble };
}

/** The file text with every block's output replaced by `outputs[i]`. */
export function renderTrace(trace: ParsedTrace, outputs: string[][]): string {
  const out: string[] = [];
  trace.blocks.forEach((block, index) => {
    out.push(...block.preamble, block.command, SEPARATOR, ...outputs[index]);
    // The blank line that ends a block, unless the next block's preamble starts with one.
    const next = trace.blocks[index + 1];
    const following = next ? next.preamble : trace.trailer;
    if (following.length === 0 || following[0].trim() !== "") out.push("");
  });
  out.push(...trace.trailer);
  while (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out.join("\n") + "\n";
}

/** An output as it will be written: no blank lines, "ok" when empty. */
export function normalizeOutput(text: string): string[] {
  const lines = text.split("\n").map((line) => line.replace(/\s+$/, ""));
  const kept = lines.filter((line) => line !== "");
  return kept.length === 0 ? ["ok"] : kept;
}

/** A line diff of two outputs (longest common subsequence), "-" expected, "+" actual. */
export function diffLines(expected: string[], actual: string[]): string[] {
  const n = expected.length;
  const m = actual.length;
  const common: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i][j] =
        expected[i] === actual[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      out.push(`  ${expected[i]}`);
      i++;
      j++;
    } else if (i < n && (j === m || common[i + 1][j] >= common[i][j + 1])) {
      out.push(`- ${expected[i]}`);
      i++;
    } else {
      out.push(`+ ${actual[j]}`);
      j++;
    }
  }
  return out;
}

export interface TraceMismatch {
  block: TraceBlock;
  actual: string[];
}

/** A readable report of mismatching blocks: file:line, the command, and the diff. */
export function describeMismatches(file: string, mismatches: TraceMismatch[]): string {
  const parts = mismatches.map(({ block, actual }) =>
    [
      `${file}:${block.line}: ${block.command}`,
      `  output differs ("-" expected, "+" actual):`,
      ...diffLines(block.expected, actual).map((line) => `  ${line}`),
    ].join("\n"),
  );
  return `${mismatches.length} block(s) of ${file} differ from their recorded output ` +
    `(DSYNC_UPDATE_TRACES=1 rewrites them; review the diff first):\n\n${parts.join("\n\n")}`;
}
