// A careless user's directory against a pull: a root that is a symlink, a full disk, a mount
// point where the node replaces a directory, a FIFO or a device at a path the node writes.
import { afterAll, afterEach, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

const node = sharedNode();
const MiB = 1024 * 1024;
/** Mounts made by the running test, unmounted (deepest first) when it ends, before temp dirs go. */
const mounts: string[] = [];
function unmountAll(): void {
  for (const dir of mounts.splice(0).reverse()) spawnSync("umount", [dir]);
}
afterEach(unmountAll);

/** Mounts a small tmpfs at dir (root, as in CI); fails the test saying why when it cannot. */
function mountTmpfs(dir: string, sizeBytes: number): void {
  mkdirSync(dir, { recursive: true });
  const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir]);
  if (result.status !== 0) throw new Error(`this test mounts a tmpfs at ${dir} and could not (${result.stderr}): run it as root`);
  mounts.push(dir);
}

async function push(source: string, first = false) {
  const result = await runCli(["push", source, "--json", ...(first ? ["--remote", node().url] : [])]);
  if (result.code !== 0) throw new Error(`push exited ${result.code}: ${result.stdout}${result.stderr}`);
  return result.json();
}

async function pull(target: string, args: string[] = []) {
  return runCli(["pull", target, "--json", ...args]);
}

test("a root that is a symlink to a directory: push and pull both go to the directory it names", async () => {
  const source = join(tempDir(), "linked-root");
  writeTree(source, { "a.txt": "a\n" });
  await push(source, true);
  const real = join(tempDir(), "real");
  mkdirSync(real);
  const link = join(tempDir(), "link");
  symlinkSync(real, link);
  const result = await pull(link, ["--remote", node().url, "--folder", "linked-root"]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  expect(readFileSync(join(real, "a.txt"), "utf8")).toBe("a\n");
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
});

test("a pull onto a full disk fails naming the file and the cause; the old file is untouched, no temp file is left", async () => {
  const source = join(tempDir(), "full-disk");
  writeTree(source, { "big.bin": "small at first\n", "keep.txt": "k\n" });
  await push(source, true);
  const victim = join(tempDir(), "victim");
  mountTmpfs(victim, 1 * MiB);
  const first = await pull(victim, ["--remote", node().url, "--folder", "full-disk"]);
  expect(first.code).toBe(0);
  writeFileSync(join(source, "big.bin"), randomBytes(4 * MiB, 9));
  await push(source);
  const result = await pull(victim);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain("big.bin");
  expect(result.stderr).toMatch(/no space left|ENOSPC|out of disk space/i);
  expect(readFileSync(join(victim, "big.bin"), "utf8")).toBe("small at first\n");
  expect(readdirSync(victim).filter((name) => name.startsWith(".dsync-tmp-"))).toEqual([]);
});

test("a directory that is a mount point, replaced by a file on the node: the pull does not fail, keeps the mount and reports it", async () => {
  const source = join(tempDir(), "mount-point");
  writeTree(source, { d: { "a.txt": "a\n" }, "other.txt": "o\n" });
  await push(source, true);
  const victim = join(tempDir(), "victim");
  const first = await pull(victim, ["--remote", node().url, "--folder", "mount-point"]);
  expect(first.code).toBe(0);
  // The user mounts something at d and puts the synced file back in it.
  mountTmpfs(join(victim, "d"), 1 * MiB);
  writeFileSync(join(victim, "d", "a.txt"), "a\n");
  rmSync(join(source, "d"), { recursive: true });
  writeFileSync(join(source, "d"), "now a file\n");
  writeFileSync(join(source, "other.txt"), "changed\n");
  await push(source);
  const result = await pull(victim);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  const report = result.json();
  const d = report.skipped.find((s: { path: string }) => s.path === "d");
  expect(d?.reason).toContain("mount point");
  expect(readFileSync(join(victim, "other.txt"), "utf8")).toBe("changed\n");
  expect(lstatSync(join(victim, "d")).isDirectory()).toBe(true);
  // And the next pull is not blocked by it either.
  expect((await pull(victim)).code).toBe(0);
});

test("a FIFO and a device where the node writes files: never opened (the pull does not block), left as they are and reported", async () => {
  const source = join(tempDir(), "special-targets");
  writeTree(source, { "keep.txt": "k\n" });
  await push(source, true);
  const victim = join(tempDir(), "victim");
  expect((await pull(victim, ["--remote", node().url, "--folder", "special-targets"])).code).toBe(0);
  execFileSync("mkfifo", [join(victim, "pipe")]);
  execFileSync("mknod", [join(victim, "null-dev"), "c", "1", "3"]);
  writeFileSync(join(source, "pipe"), "a file now\n");
  writeFileSync(join(source, "null-dev"), "a file too\n");
  writeFileSync(join(source, "keep.txt"), "changed\n");
  await push(source);
  // Bounded: a pull that opened the FIFO would block until killed.
  const result = await pull(victim);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  // Paths this copy does not sync (durability.md): the node's changes there are not applied.
  const skipped = result.json().skipped.map((s: { path: string }) => s.path);
  expect(skipped).toEqual(expect.arrayContaining(["pipe", "null-dev"]));
  expect([lstatSync(join(victim, "pipe")).isFIFO(), lstatSync(join(victim, "null-dev")).isCharacterDevice()]).toEqual([true, true]);
  expect(readFileSync(join(victim, "keep.txt"), "utf8")).toBe("changed\n");
});
