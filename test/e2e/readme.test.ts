// The README runs as written: every ```sh block marked "run as a script by
// test/e2e/readme.test.ts" is run, in order, as one bash script against real processes (the
// tour's node on 7700, the three replicating nodes on 7701-7703), with a temporary HOME and a
// temporary working directory that holds the project's files (so `npm run build` really
// builds ./dist/dsync there). Every command must succeed, except where its comment says
// "(exit N)": it must then exit N. The script runs in a network namespace of its own, so the
// README's fixed ports never meet another process's. Every other ```sh block must say why it
// is not run, so a new block is never silently left out.
import { afterAll, expect, test } from "bun:test";
import { spawn } from "bun";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, REPO_ROOT, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const RUN_MARK = "run as a script by test/e2e/readme.test.ts";
const SKIP_MARK = "not run by test/e2e/readme.test.ts:";

interface Block {
  line: number;
  run: boolean;
  text: string;
}

/** The README's ```sh blocks, each with the HTML comment before it that says whether it runs. */
export function shellBlocks(readme: string): Block[] {
  const lines = readme.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```sh") continue;
    const end = lines.indexOf("```", i + 1);
    if (end === -1) throw new Error(`README.md:${i + 1}: a shell block never closes`);
    const mark = lines[i - 1] ?? "";
    const run = mark.startsWith("<!--") && mark.includes(RUN_MARK);
    const skip = mark.startsWith("<!--") && mark.includes(SKIP_MARK);
    if (run === skip) throw new Error(`README.md:${i + 1}: the line before a shell block must say "${RUN_MARK}" or "${SKIP_MARK} <why>"`);
    blocks.push({ line: i + 1, run, text: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

/**
 * The blocks as one bash script: each command checked for its exit code (0, or the N of a
 * "(exit N)" in its comment), background jobs ended when the script ends.
 */
export function scriptOf(blocks: Block[]): string {
  const out = ["set -uo pipefail", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"];
  for (const block of blocks) {
    for (const [index, line] of block.text.split("\n").entries()) {
      const command = line.replace(/\s+#.*$/, "").trim();
      if (command === "" || command.startsWith("#")) continue;
      const where = `README.md:${block.line + 1 + index}`;
      if (command.endsWith("&")) {
        out.push(command);
        continue;
      }
      const expected = Number(/#.*\(exit (\d+)\)/.exec(line)?.[1] ?? 0);
      out.push(command, `code=$?; if [ "$code" -ne ${expected} ]; then echo "${where}: exit $code, expected ${expected}: ${command.replace(/["$`\\]/g, "\\$&")}" >&2; exit 1; fi`);
    }
  }
  return out.join("\n") + "\n";
}

test("the README's checks see a block without a mark, and a command's expected exit code", () => {
  expect(() => shellBlocks("text\n```sh\nls\n```\n")).toThrow("README.md:2: the line before a shell block must say");
  const blocks = shellBlocks(`<!-- ${RUN_MARK} -->\n\`\`\`sh\ntrue  # fine\nfalse   # fails (exit 1)\n\`\`\`\n`);
  const script = scriptOf(blocks);
  expect(script).toContain('false\ncode=$?; if [ "$code" -ne 1 ]; then echo "README.md:4: exit $code, expected 1: false"');
  expect(script).toContain('true\ncode=$?; if [ "$code" -ne 0 ]');
});

test("the README's tour and three-node example run as a script", async () => {
  const blocks = shellBlocks(readFileSync(join(REPO_ROOT, "README.md"), "utf8"));
  const runnable = blocks.filter((b) => b.run);
  expect(runnable.length).toBeGreaterThanOrEqual(2);
  expect(runnable.map((b) => b.text).join("\n")).toContain("status --wait");

  const home = tempDir("dsync-readme-home-");
  const work = tempDir("dsync-readme-work-");
  // The project's files, so `npm run build` builds ./dist/dsync here and ./dsync-data lands here.
  for (const name of ["package.json", "cli", "src", "node_modules", "tsconfig.json", "bunfig.toml"]) symlinkSync(join(REPO_ROOT, name), join(work, name));
  mkdirSync(join(work, "dist"));
  const scriptPath = join(work, "readme.sh");
  writeFileSync(scriptPath, scriptOf(runnable));

  const env: Record<string, string> = { HOME: home, PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: tempDir("dsync-readme-tmp-") };
  // A network of its own: a loopback where 7700-7703 are free whatever else runs on this machine.
  const proc = spawn(["unshare", "--net", "bash", "-c", `ip link set lo up && exec bash ${scriptPath}`], { cwd: work, env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 240_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  expect({ code, stderr: code === 0 ? "" : `${stderr}\n--- stdout ---\n${stdout}` }).toEqual({ code: 0, stderr: "" });
  // What the README says happened, happened.
  expect(stdout).toContain("pushed notes to http://127.0.0.1:7700");
  expect(stdout).toContain("dry run: would push");
  expect(stdout).toContain("pushed notes to http://127.0.0.1:7701");
  expect(stdout).toMatch(/pulled notes from http:\/\/127\.0\.0\.1:7703/);
  expect(readFileSync(join(home, "notes-c", "todo.txt"), "utf8")).toBe("first\n");
  expect(readFileSync(join(home, "old", "todo.txt"), "utf8")).toBe("first\n");
}, 300_000);
