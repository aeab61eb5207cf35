// A pull's memory stays flat in the number of files: a real `dsync pull` process bringing a
// tree of FILES small files into an empty directory keeps its peak resident set (VmHWM, polled
// from /proc) under a bound that a pull holding the whole tree's diff, jobs and nodes exceeds.
//
// The copy goes to /dev/shm where there is one: a pull fsyncs every file, and on a disk shared
// by a whole test run that alone would take minutes; memory, not time, is what is measured.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dsyncCommand, REPO_ROOT, runCli, sharedNode, tempDir } from "../helpers/processes.ts";

const FILES = 100_000;
const DIRS = 100;
/** A pull of FILES files must stay below this: it peaks near 180 MiB (bun and its caches about 100); dca41c9, which held the whole diff, its file jobs and every fetched node, peaked at 380 MiB. */
const PEAK_RSS_BYTES_MAX = 250 * 1024 * 1024;

const node = sharedNode();
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function vmHwmBytes(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

test(`a pull of ${FILES} files into an empty directory peaks below ${PEAK_RSS_BYTES_MAX / 1024 / 1024} MiB`, async () => {
  if (!existsSync("/proc/self/status")) throw new Error("this test reads peak memory from /proc/PID/status (Linux)");
  const source = join(tempDir(), "many");
  for (let d = 0; d < DIRS; d++) mkdirSync(join(source, `d${d}`), { recursive: true });
  // Sizes 0–500 bytes, contents distinct (seeded by the index).
  for (let n = 0; n < FILES; n++) writeFileSync(join(source, `d${n % DIRS}`, `f${n}`), `${n} `.repeat((n * 7919) % 120).slice(0, (n * 7919) % 501));
  const pushed = await runCli(["push", source, "--remote", node().url, "--json"]);
  expect(pushed.code).toBe(0);

  const base = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/dsync-pull-memory-") : tempDir();
  scratch.push(base);
  const copy = join(base, "copy");
  const [command, ...args] = [...dsyncCommand(), "pull", copy, "--remote", node().url, "--folder", "many", "--json", "--no-progress"];
  const child = Bun.spawn([command!, ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, DSYNC_TOKEN: undefined } });
  let peak = 0;
  let done = false;
  const exited = child.exited.then((code) => ((done = true), code));
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  while (!done) {
    peak = Math.max(peak, vmHwmBytes(child.pid) ?? 0);
    await Bun.sleep(20);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`dsync pull exited ${code}: ${await stderr}`);
  const report = JSON.parse(await stdout);
  expect(report.files_written).toBe(FILES);
  expect(readdirSync(join(copy, "d7")).length).toBe(FILES / DIRS);
  expect(readFileSync(join(copy, "d3", "f103"), "utf8")).toBe(`${103} `.repeat((103 * 7919) % 120).slice(0, (103 * 7919) % 501));
  expect(peak).toBeGreaterThan(0);
  expect(peak).toBeLessThan(PEAK_RSS_BYTES_MAX);
}, 900_000);
