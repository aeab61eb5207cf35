// The core stays pure: no file system, network, process, clock or randomness, so it can be
// tested with tables and run inside a deterministic simulation. This test fails the build when
// a file in src/core reaches for any of them.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";

const CORE_DIR = join(import.meta.dir, "../../src/core");

// Packages the core may import: hashing and encoding, nothing that does I/O.
const ALLOWED_PACKAGES = new Set(["@noble/hashes/blake3.js", "msgpackr", "@napi-rs/blake-hash"]);

const FORBIDDEN_PATTERNS: [RegExp, string][] = [
  [/\bDate\.now\(|\bnew Date\(/, "reads the clock"],
  [/\bMath\.random\(/, "uses unseeded randomness"],
  [/\bperformance\.now\(/, "reads the clock"],
  [/\bsetTimeout\(|\bsetInterval\(/, "schedules by time"],
  [/\bfetch\(/, "uses the network"],
  [/\bBun\.(file|write|spawn|serve|connect|listen)\b/, "does I/O through Bun"],
  [/\bprocess\.(?!env\.DSYNC_BLAKE3\b)/, "touches the process"],
];

test("src/core imports only pure modules and reads no clock, randomness or I/O", () => {
  const problems: string[] = [];
  // Subfolders too (raft/), whose files may import from the core above them but not outside it.
  const files = (readdirSync(CORE_DIR, { recursive: true }) as string[]).filter((name) => name.endsWith(".ts"));
  for (const file of files) {
    const text = readFileSync(join(CORE_DIR, file), "utf8");
    const code = text.replace(/\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
    for (const match of code.matchAll(/(?:from|import|require)\s*\(?\s*"([^"]+)"/g)) {
      const specifier = match[1]!;
      if (specifier.startsWith("./") || specifier.startsWith("../")) {
        const target = resolve(CORE_DIR, dirname(file), specifier);
        if (!target.startsWith(CORE_DIR + sep)) problems.push(`${file} imports ${specifier}, outside src/core`);
        continue;
      }
      if (!ALLOWED_PACKAGES.has(specifier)) problems.push(`${file} imports ${specifier}`);
    }
    for (const [pattern, why] of FORBIDDEN_PATTERNS) if (pattern.test(code)) problems.push(`${file} ${why}`);
  }
  // The one exception, on purpose: blake3.ts may read DSYNC_BLAKE3 to force the portable
  // implementation (for benchmarks); it changes speed, never results.
  expect(problems).toEqual([]);
});
