// Every write the CLI makes to stdout or stderr goes through core/terminal-text.ts, so no name,
// message or node reply reaches a terminal raw. A new print that skips the escaping fails here.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const FOLDERS = ["cli", "src/client"];

test("cli/ and src/client/ write to stdout and stderr only through the terminal-text functions", () => {
  const problems: string[] = [];
  let writes = 0;
  for (const folder of FOLDERS) {
    for (const file of readdirSync(join(ROOT, folder)).filter((name) => name.endsWith(".ts"))) {
      const code = readFileSync(join(ROOT, folder, file), "utf8").replace(/\/\/.*$/gm, "");
      for (const match of code.matchAll(/process\.(stdout|stderr)\.write\(\s*([A-Za-z]*)/g)) {
        writes++;
        if (!/^terminal[A-Z]/.test(match[2]!)) problems.push(`${folder}/${file}: process.${match[1]}.write(${match[2]}...)`);
      }
      for (const match of code.matchAll(/\bconsole\.(log|error|warn|info|debug)\(/g)) problems.push(`${folder}/${file}: console.${match[1]}`);
    }
  }
  expect(writes).toBeGreaterThan(10);
  expect(problems).toEqual([]);
});
