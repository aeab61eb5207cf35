// Dependencies point one way: core ← store/fs ← node ← replication ← consensus ← server, with the wire
// formats (src/wire) below every end that speaks them, and the client beside the node's side
// rather than on top of it: it uses the wire formats, never the server's code. This test reads
// every import of every file in src/ and fails on one that points the wrong way.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const SRC = resolve(import.meta.dir, "../src");

/** The folders of src/ each may import (itself always). */
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  store: ["core"],
  fs: ["core", "store"],
  wire: ["core", "store"],
  node: ["core", "store"],
  replication: ["core", "store", "node", "wire"],
  // The strong mode's Raft group: it moves log entries between nodes and applies them to the node.
  consensus: ["core", "store", "node", "replication", "wire"],
  server: ["core", "store", "node", "replication", "consensus", "wire"],
  client: ["core", "store", "fs", "wire"],
  // src/assemble.ts: the one place that picks concrete parts (stores, transport, services).
  assemble: ["core", "store", "fs", "wire", "node", "replication", "consensus", "server"],
};

/**
 * Allowed on purpose, for a reason: the dashboard's script is a client of the API, bundled for
 * the browser, and says things the way `dsync status` does.
 */
function isException(fromFolder: string, fromFile: string, toFolder: string): boolean {
  if (fromFolder === "server" && toFolder === "client") return fromFile.startsWith(`server${sep}dashboard${sep}`);
  return false;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

test("every import in src/ points down the layers", () => {
  const problems: string[] = [];
  const files = sourceFiles(SRC);
  for (const path of files) {
    const file = relative(SRC, path);
    // A file directly in src/ (assemble.ts) is its own layer, named without ".ts".
    const folder = file.split(sep)[0]!.replace(/\.ts$/, "");
    const allowed = MAY_IMPORT[folder];
    if (allowed === undefined) {
      problems.push(`${file}: src/${folder} has no place in the layers (add it to this test and docs/architecture.md)`);
      continue;
    }
    const code = readFileSync(path, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const match of code.matchAll(/^\s*(import|export)(\s+type)?[^;]*?\sfrom\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/gms)) {
      const specifier = match[3] ?? match[4]!;
      const typeOnly = match[2] !== undefined;
      const target = relative(SRC, resolve(dirname(path), specifier));
      if (target.startsWith("..")) {
        problems.push(`${file} imports ${specifier}, outside src/`);
        continue;
      }
      const toFolder = target.split(sep)[0]!.replace(/\.ts$/, "");
      if (toFolder === folder || allowed.includes(toFolder) || isException(folder, file, toFolder)) continue;
      problems.push(`${file} imports ${specifier} (src/${folder} may use ${allowed.join(", ") || "nothing"})`);
    }
  }
  expect(files.length).toBeGreaterThan(50);
  expect(problems).toEqual([]);
});
