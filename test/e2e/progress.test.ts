// The progress bar on real processes: a first push draws a bar with its totals (bytes and
// files, counted before the scan) on a terminal (a real pseudo-terminal, through script(1)),
// not through a pipe unless --progress, never with --no-progress; stdout stays clean.
import { describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { join } from "node:path";
import { RACY_WINDOW_NS } from "../../src/fs/stat-cache.ts";
import { dsyncCommand, REPO_ROOT, runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

const node = sharedNode();

/** A tree of 40 files, 3 MiB in all, under a fresh name. */
function someFiles(name: string): string {
  const dir = join(tempDir(), name);
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 39; i++) files[`f${i}.bin`] = randomBytes(2048, i + 1);
  files["big.bin"] = randomBytes(3 * 1024 * 1024 - 39 * 2048, 99);
  writeTree(dir, files);
  return dir;
}

/** Runs dsync with stdout and stderr on a pseudo-terminal (script(1) joins them into one stream). */
async function onTerminal(args: string[]): Promise<{ code: number; output: string }> {
  if (Bun.which("script") === null) throw new Error("script(1) is missing: apt-get install bsdutils (.ci/run installs it)");
  const command = [...dsyncCommand(), ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const proc = spawn(["script", "-qefc", command, "/dev/null"], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tempDir(), COLUMNS: "120", LINES: "40" },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [output, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, output };
}

describe("a first push shows its totals", () => {
  test("on a terminal: a bar with bytes done/total and files done/total; --no-progress draws none", async () => {
    const dir = someFiles("prog-tty");
    const shown = await onTerminal(["push", dir, "--remote", node().url]);
    expect(shown.code).toBe(0);
    const redraws = shown.output.split("\r").map((line) => line.trim());
    const last = redraws.filter((line) => line.startsWith("scanning [")).pop();
    expect(last).toMatch(/^scanning \[#{24}\] 3\.0 MiB\/3\.0 MiB [\d.]+ [KMG]?i?B\/s done, 40\/40 files$/);
    expect(shown.output).toContain("pushed prog-tty to");

    const quiet = await onTerminal(["push", someFiles("prog-quiet"), "--remote", node().url, "--no-progress"]);
    expect(quiet.code).toBe(0);
    expect(quiet.output).not.toContain("\rscanning");
    expect(quiet.output).toContain("pushed prog-quiet to");
  });

  test("through a pipe: nothing unless --progress, which draws it on stderr only", async () => {
    const plain = await runCli(["push", someFiles("prog-pipe"), "--remote", node().url]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toBe("");
    const forced = await runCli(["push", someFiles("prog-forced"), "--remote", node().url, "--progress", "--json"]);
    expect(forced.code).toBe(0);
    expect(forced.json().files).toBe(40);
    expect(forced.stderr).toContain("\rcounting files");
    expect(forced.stderr).toMatch(/\rscanning \[#{24}\] 3\.0 MiB\/3\.0 MiB .* done, 40\/40 files/);
    expect(forced.stderr).toMatch(/\rpushing /);
  });

  test("a pull's bar has bytes done/total and files done/total", async () => {
    const dir = someFiles("prog-pull");
    expect((await runCli(["push", dir, "--remote", node().url])).code).toBe(0);
    const pulled = await runCli(["pull", join(tempDir(), "copy"), "--folder", "prog-pull", "--remote", node().url, "--progress"]);
    expect(pulled.code).toBe(0);
    expect(pulled.stderr).toMatch(/\rpulling \[#{24}\] 3\.0 MiB\/3\.0 MiB .* done, 40\/40 files/);
  });

  test("diff draws a bar for each directory it scans, one after the other", async () => {
    const compared = await runCli(["diff", someFiles("prog-diff-a"), someFiles("prog-diff-b"), "--progress"]);
    expect(compared.code).toBe(0);
    expect(compared.stderr.match(/\rscanning 3\.0 MiB [\d.]+ [KMG]?i?B\/s, 40 files/g)?.length).toBe(2);
  });

  test("a later push counts nothing first: its files total is what the stat cache remembers", async () => {
    const dir = someFiles("prog-again");
    // Files changed within the racy window of a scan are not cached: let it pass first, so the
    // first push caches all 40.
    await Bun.sleep(Number(RACY_WINDOW_NS / 1_000_000n) * 2);
    expect((await runCli(["push", dir, "--remote", node().url])).code).toBe(0);
    const again = await runCli(["push", dir, "--remote", node().url, "--progress"]);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toContain("counting files");
    expect(again.stderr).toMatch(/\rscanning \[#{24}\] 40\/40 files, 0 B read/);
  });
});
