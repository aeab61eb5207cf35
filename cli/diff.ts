// dsync diff A B: exits 0 when identical, 1 when they differ, 2 on error (as diff(1) does).
import { compare } from "../src/client/compare.ts";
import { printJson } from "./errors.ts";

export async function diffCommand(a: string, b: string, flags: { json?: boolean }): Promise<number> {
  const report = await compare(a, b);
  if (flags.json) printJson(report);
  else {
    const lines = [
      ...report.added.map((p) => ({ p, line: `A ${p}` })),
      ...report.removed.map((p) => ({ p, line: `D ${p}` })),
      ...report.modified.map((p) => ({ p, line: `M ${p}` })),
      ...report.typeChanged.map((p) => ({ p, line: `T ${p}` })),
    ].sort((x, y) => (x.p < y.p ? -1 : x.p > y.p ? 1 : 0));
    if (lines.length > 0) process.stdout.write(lines.map((l) => l.line).join("\n") + "\n");
  }
  return report.identical ? 0 : 1;
}
