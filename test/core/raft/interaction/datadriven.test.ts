// The trace file format itself: parsing, rewriting with new outputs, and the mismatch report.

import { describe, expect, test } from "bun:test";
import { parseCommandLine } from "./commands.ts";
import { describeMismatches, diffLines, normalizeOutput, parseTrace, renderTrace, TraceFormatError } from "./datadriven.ts";

const SAMPLE = `# A comment before the first command.
add-nodes 3
----
1: follower term=0

# Two lines of comment
# before the second.
campaign 1
----
ok

stabilize
----
> 1 handling Ready
  Ready mustSync=true:
`;

describe("trace files", () => {
  test("blocks keep their command, line, expected output and comments", () => {
    const trace = parseTrace("sample.txt", SAMPLE);
    expect(trace.blocks.map((b) => [b.command, b.line, b.expected])).toEqual([
      ["add-nodes 3", 2, ["1: follower term=0"]],
      ["campaign 1", 8, ["ok"]],
      ["stabilize", 12, ["> 1 handling Ready", "  Ready mustSync=true:"]],
    ]);
    expect(trace.blocks[1].preamble).toEqual(["", "# Two lines of comment", "# before the second."]);
  });

  test("rendering the recorded outputs gives the file back byte for byte", () => {
    const trace = parseTrace("sample.txt", SAMPLE);
    expect(renderTrace(trace, trace.blocks.map((b) => b.expected))).toBe(SAMPLE);
  });

  test("rendering new outputs replaces only the outputs", () => {
    const trace = parseTrace("sample.txt", SAMPLE);
    const rendered = renderTrace(trace, [["a"], ["b", "c"], ["d"]]);
    expect(rendered).toBe(
      "# A comment before the first command.\nadd-nodes 3\n----\na\n\n# Two lines of comment\n" +
        "# before the second.\ncampaign 1\n----\nb\nc\n\nstabilize\n----\nd\n",
    );
    // A block whose output grew still parses back as the same blocks.
    expect(parseTrace("x", rendered).blocks.map((b) => b.command)).toEqual(["add-nodes 3", "campaign 1", "stabilize"]);
  });

  test("a new command without an output gets one on update", () => {
    const trace = parseTrace("new.txt", "campaign 1\n----\n");
    expect(trace.blocks[0].expected).toEqual([]);
    expect(renderTrace(trace, [["ok"]])).toBe("campaign 1\n----\nok\n");
  });

  test("a command without its separator is refused with its line", () => {
    expect(() => parseTrace("bad.txt", "# c\ncampaign 1\nstabilize\n")).toThrow(TraceFormatError);
    expect(() => parseTrace("bad.txt", "# c\ncampaign 1\nstabilize\n")).toThrow("bad.txt:2:");
  });

  test("outputs never hold blank lines, and an empty one reads ok", () => {
    expect(normalizeOutput("")).toEqual(["ok"]);
    expect(normalizeOutput("a  \n\nb")).toEqual(["a", "b"]);
  });

  test("a mismatch names the file, the line and the command, with a line diff", () => {
    const trace = parseTrace("sample.txt", SAMPLE);
    const report = describeMismatches("sample.txt", [{ block: trace.blocks[2], actual: ["> 1 handling Ready", "  other"] }]);
    expect(report).toContain("sample.txt:12: stabilize");
    expect(report).toContain("-   Ready mustSync=true:");
    expect(report).toContain("+   other");
    expect(report).toContain("    > 1 handling Ready");
  });

  test("the line diff keeps common lines in order", () => {
    expect(diffLines(["a", "b", "c"], ["a", "x", "c", "d"])).toEqual(["  a", "- b", "+ x", "  c", "+ d"]);
  });
});

describe("command lines", () => {
  test("positional words, key=value options and quoted data", () => {
    const line = parseCommandLine(`add-nodes 3 voters=1,2,3 pre-vote=true`);
    expect(line.name).toBe("add-nodes");
    expect(line.positional).toEqual(["3"]);
    expect([...line.options]).toEqual([["voters", "1,2,3"], ["pre-vote", "true"]]);
    expect(parseCommandLine(`propose 1 "a b=c"`).positional).toEqual(["1", "a b=c"]);
    expect(parseCommandLine(`propose 1 "x=1"`).positional).toEqual(["1", "x=1"]);
    expect(parseCommandLine(`propose 1 x=1`).options.get("x")).toBe("1");
    expect(parseCommandLine(`send 1 2 append logTerm=3`).options.get("logTerm")).toBe("3");
  });
});
