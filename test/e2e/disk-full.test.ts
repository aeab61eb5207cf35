// A node whose disk fills up: a real `dsync serve` on a small tmpfs. The push that runs out of
// space is answered 507 and the client says so; nothing of it is acknowledged; the node gives
// the space back at once and works again without a restart once space is free; gc reports the
// bytes it really returned to the file system.
//
// Needs to mount a tmpfs (root, as in CI). If the mount fails the test fails, saying why.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdirSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

const DISK_BYTES = 8 * 1024 * 1024;
let mountDir = "";
let mounted = false;
let node: NodeProcess | undefined;

beforeAll(() => {
  mountDir = tempDir("dsync-disk-full-");
  const result = spawnSync(["mount", "-t", "tmpfs", "-o", `size=${DISK_BYTES}`, "tmpfs", mountDir]);
  if (result.exitCode !== 0) {
    throw new Error(
      `the disk-full test needs a small file system: 'mount -t tmpfs -o size=${DISK_BYTES} tmpfs ${mountDir}' failed ` +
        `(${result.stderr.toString().trim()}); run the tests as root or in a container allowed to mount tmpfs`,
    );
  }
  mounted = true;
});

afterAll(async () => {
  await node?.stop();
  if (mounted) spawnSync(["umount", mountDir]);
  cleanupTempDirs();
});

function freeBytes(): number {
  const stats = statfsSync(mountDir);
  return stats.bavail * stats.bsize;
}

/** The space every file under a directory takes on the file system, added up. */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).blocks * 512;
  }
  return total;
}

/** Fills the disk until at most `leaveBytes` are free, in a file that can be removed later. */
function fillDisk(path: string, leaveBytes: number): void {
  const block = new Uint8Array(64 * 1024).fill(7);
  const parts: Uint8Array[] = [];
  let size = 0;
  const target = freeBytes() - leaveBytes;
  while (size + block.length <= target) {
    parts.push(block);
    size += block.length;
  }
  writeFileSync(path, Buffer.concat(parts));
}

test("a push that fills the disk gets 507 and a clear message; the node recovers without a restart", async () => {
  expect(mounted).toBe(true);
  node = await startNode({ dataDir: join(mountDir, "data") });

  const first = join(tempDir(), "first");
  writeTree(first, { "a.txt": new TextEncoder().encode("before the disk filled up\n") });
  expect((await runCli(["push", first, "--remote", node.url, "--json"])).code).toBe(0);

  // Leave about 1.5 MiB free, then push 3 MiB of incompressible bytes.
  fillDisk(join(mountDir, "filler"), 1536 * 1024);
  const freeBefore = freeBytes();
  const big = join(tempDir(), "big");
  writeTree(big, { "video.bin": randomBytes(3 * 1024 * 1024, 41) });
  const failed = await runCli(["push", big, "--remote", node.url]);
  expect(failed.code).toBe(1);
  expect(failed.stderr).toContain("is out of disk space (507); free space on the node and push again");

  // Nothing of it was acknowledged: no folder, and the space the failed batch took is back.
  expect((await runCli(["log", "--folder", "big", "--remote", node.url, "--json"])).code).toBe(1);
  expect(freeBytes()).toBeGreaterThan(freeBefore - 256 * 1024);

  // Without freeing anything, a small push fits in the space that came back.
  const small = join(tempDir(), "small");
  writeTree(small, { "note.txt": new TextEncoder().encode("x".repeat(247)) });
  const smallPush = await runCli(["push", small, "--remote", node.url, "--json"]);
  expect(smallPush.stderr).toBe("");
  expect(smallPush.code).toBe(0);

  // Free space: the big push now succeeds, same process.
  rmSync(join(mountDir, "filler"));
  const retried = await runCli(["push", big, "--remote", node.url, "--json", "--keep-versions", "1"]);
  expect(retried.stderr).toBe("");
  expect(retried.code).toBe(0);
  const verify = await runCli(["verify", "--remote", node.url, "--json"]);
  expect(verify.json()).toMatchObject({ healthy: true, corrupt: [], missing: [] });

  // Replace the big file; the old version is pruned and gc gives its 3 MiB back to the file system.
  writeTree(big, { "video.bin": randomBytes(100_000, 42) });
  expect((await runCli(["push", big, "--remote", node.url, "--json"])).code).toBe(0);
  const dataDir = join(mountDir, "data");
  const dataBytesBefore = folderBytes(dataDir);
  const freeBeforeGc = freeBytes();
  const gc = await runCli(["gc", "--remote", node.url, "--grace-ms", "0", "--json"]);
  expect(gc.code).toBe(0);
  const report = gc.json();
  const dataBytesFreed = dataBytesBefore - folderBytes(dataDir);
  expect(report.bytesReclaimed).toBeGreaterThan(3_000_000);
  expect(report.bytesReclaimed).toBe(dataBytesFreed);
  expect(freeBytes() - freeBeforeGc).toBeGreaterThan(3_000_000);
  expect((await runCli(["verify", "--remote", node.url, "--json"])).json()).toMatchObject({ healthy: true });
}, 120_000);

test("gc on a disk with no byte free still frees space (the node keeps a reserve for it)", async () => {
  expect(node).toBeDefined();
  const url = node!.url;
  const dir = join(tempDir(), "doomed");
  mkdirSync(dir, { recursive: true });
  writeTree(dir, { "one.bin": randomBytes(1024 * 1024, 51) });
  expect((await runCli(["push", dir, "--remote", url, "--json", "--keep-versions", "1"])).code).toBe(0);
  writeTree(dir, { "one.bin": randomBytes(1000, 52) });
  expect((await runCli(["push", dir, "--remote", url, "--json"])).code).toBe(0);
  fillDisk(join(mountDir, "filler"), 0);
  const freeBefore = freeBytes();
  expect(freeBefore).toBeLessThan(64 * 1024);
  const gc = await runCli(["gc", "--remote", url, "--grace-ms", "0", "--json"]);
  expect(gc.stderr).toBe("");
  expect(gc.code).toBe(0);
  expect(gc.json().bytesReclaimed).toBeGreaterThan(1_000_000);
  expect(freeBytes() - freeBefore).toBeGreaterThan(1_000_000);
  rmSync(join(mountDir, "filler"));
  // With space again the node works and is whole, and the reserve is back.
  expect(statSync(join(mountDir, "data", "space-reserve")).size).toBe(2 * 1024 * 1024);
  expect((await runCli(["gc", "--remote", url, "--grace-ms", "0", "--json"])).code).toBe(0);
  expect((await runCli(["verify", "--remote", url, "--json"])).json()).toMatchObject({ healthy: true });
}, 120_000);
