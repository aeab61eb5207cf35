// Build-time assets of the dashboard, inlined by Bun's macros: `bun build --compile` puts the
// bundled script, the page and the style sheet into the binary as strings (nothing is read from
// disk when it runs), and `bun cli/main.ts` computes the same strings when it loads routes.ts.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The browser script: ui.ts and what it imports, bundled and minified by `bun build`. */
export function dashboardScript(): string {
  const entry = join(import.meta.dir, "ui.ts");
  const built = Bun.spawnSync([process.execPath, "build", entry, "--target=browser", "--format=esm", "--minify"], { stdout: "pipe", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`bundling the dashboard failed: ${built.stderr.toString()}`);
  return built.stdout.toString();
}

export function dashboardAsset(name: "index.html" | "style.css"): string {
  return readFileSync(join(import.meta.dir, name), "utf8");
}
