// dsync diff A B: exits 0 when identical, 1 when they differ, 2 on error (as diff(1) does).
// The A/D/M/T lines go to stdout; one summary line goes to stderr: what each side lacks
// relative to the other, the requests made to nodes and the depth the descent reached.
import { compare, type CompareReport } from "../src/client/compare.ts";
import { createProgress, formatBytes, progressWanted } from "../src/client/progress.ts";
import { escapeTerminalText, terminalLines } from "../src/core/terminal-text.ts";
import { counted } from "../src/core/plural.ts";
import { printJson } from "./errors.ts";

export function summaryLine(report: CompareReport): string {
  const lacks = (side: "a" | "b") => {
    const { objects, bytes } = report[side].lacks;
    return `${side} lacks ${objects} object${objects === 1 ? "" : "s"} (${formatBytes(bytes)})`;
  };
  const requests = `${report.requests} request${report.requests === 1 ? "" : "s"} (a ${report.a.requests}, b ${report.b.requests})`;
  // A directory's paths not read are not compared (a push keeps them as synced): say so.
  const notRead = (side: "a" | "b") => {
    const { ignored, unreadable, unsupported } = report[side].notRead;
    const parts = [ignored && `${ignored} ignored`, unreadable && `${unreadable} unreadable`, unsupported && `${unsupported} unsupported`].filter(Boolean);
    return parts.length === 0 ? [] : [`${side}: ${counted(ignored + unreadable + unsupported, "path")} not compared (${parts.join(", ")})`];
  };
  return [`${lacks("a")}, ${lacks("b")}; ${requests}, depth ${report.depth}`, ...notRead("a"), ...notRead("b")].join("; ");
}

export async function diffCommand(a: string, b: string, flags: { json?: boolean; progress?: boolean; stale?: boolean }): Promise<number> {
  const report = await compare(a, b, { progress: createProgress(progressWanted(flags)), stale: flags.stale === true });
  if (flags.json) printJson(report);
  else {
    const lines = [
      ...report.added.map((p) => ({ p, line: `A ${escapeTerminalText(p)}` })),
      ...report.removed.map((p) => ({ p, line: `D ${escapeTerminalText(p)}` })),
      ...report.modified.map((p) => ({ p, line: `M ${escapeTerminalText(p)}` })),
      ...report.typeChanged.map((p) => ({ p, line: `T ${escapeTerminalText(p)}` })),
    ].sort((x, y) => (x.p < y.p ? -1 : x.p > y.p ? 1 : 0));
    process.stdout.write(terminalLines(lines.map((l) => l.line)));
    process.stderr.write(terminalLines([summaryLine(report)]));
  }
  return report.identical ? 0 : 1;
}
