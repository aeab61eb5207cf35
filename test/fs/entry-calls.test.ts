// statx and openat through libc (entry-calls.ts) against node:fs on the same entries: every
// field the scanner and the stat cache use is the same both ways, for each kind of entry, and a
// call that fails throws node:fs's error.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EntryStat, entryCalls, entryCallsUseLibc, nodeEntryCalls, type EntryCalls } from "../../src/fs/entry-calls.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs, 60_000);

function expectSame(seen: EntryStat, path: string): void {
  const expected = lstatSync(path, { bigint: true });
  expect(seen.mode).toBe(Number(expected.mode));
  expect(seen.sizeBytes).toBe(Number(expected.size));
  expect(seen.inode).toBe(expected.ino);
  expect(seen.mtimeNs).toBe(expected.mtimeNs);
  expect(seen.ctimeNs).toBe(expected.ctimeNs);
  expect(seen.mtimeMs).toBe(Number(expected.mtimeNs / 1_000_000n));
  expect(seen.sameFile(EntryStat.fromBigIntStats(expected))).toBe(true);
}

function mkfifo(path: string): void {
  const made = Bun.spawnSync(["mkfifo", path]);
  if (made.exitCode !== 0) throw new Error(`mkfifo ${path} failed: ${made.stderr.toString()}`);
}

function fixture(): string {
  const dir = tempDir();
  writeFileSync(join(dir, "file.txt"), "hello");
  writeFileSync(join(dir, "é ü.txt"), "x".repeat(70_000));
  mkdirSync(join(dir, "sub"));
  symlinkSync("file.txt", join(dir, "link"));
  mkfifo(join(dir, "fifo"));
  // An mtime before 1970 and one with nanoseconds.
  utimesSync(join(dir, "file.txt"), -1.5, -1.5);
  return dir;
}


describe.each([
  ["libc", () => entryCalls()],
  ["node:fs", () => nodeEntryCalls],
] as [string, () => EntryCalls][])("%s", (_name, calls) => {
  test("lstatAt matches lstatSync for a file, a directory, a symlink and a FIFO", () => {
    const dir = fixture();
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      for (const name of ["file.txt", "é ü.txt", "sub", "link", "fifo"]) expectSame(calls().lstatAt(fd, dir, name), join(dir, name));
      expect(calls().lstatAt(fd, dir, "file.txt").kind).toBe("file");
      expect(calls().lstatAt(fd, dir, "sub").kind).toBe("directory");
      expect(calls().lstatAt(fd, dir, "link").kind).toBe("symlink");
      expect(calls().lstatAt(fd, dir, "fifo").kind).toBe("other");
    } finally {
      closeSync(fd);
    }
  });

  test("openAt does not follow a link, and fstat of what it opened matches fstatSync", () => {
    const dir = fixture();
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const file = calls().openAt(fd, dir, "é ü.txt", constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const seen = calls().fstat(file);
        const expected = fstatSync(file, { bigint: true });
        expect(seen.inode).toBe(expected.ino);
        expect(seen.sizeBytes).toBe(70_000);
        expect(seen.ctimeNs).toBe(expected.ctimeNs);
        expect(seen.sameFile(calls().lstatAt(fd, dir, "é ü.txt"))).toBe(true);
        expect(readSync(file, new Uint8Array(10), 0, 10, 0)).toBe(10);
      } finally {
        closeSync(file);
      }
      expect(() => calls().openAt(fd, dir, "link", constants.O_RDONLY | constants.O_NOFOLLOW)).toThrow(expect.objectContaining({ code: "ELOOP" }));
    } finally {
      closeSync(fd);
    }
  });

  test("a name that is not there throws ENOENT, as lstatSync and openSync do", () => {
    const dir = fixture();
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      expect(() => calls().lstatAt(fd, dir, "missing")).toThrow(expect.objectContaining({ code: "ENOENT" }));
      expect(() => calls().openAt(fd, dir, "missing", constants.O_RDONLY)).toThrow(expect.objectContaining({ code: "ENOENT" }));
    } finally {
      closeSync(fd);
    }
  });
});

test("libc's calls are in use on Linux (unless DSYNC_ENTRY_CALLS=node asks for node:fs)", () => {
  // Where this fails, the scan runs at node:fs speed: say so instead of measuring the wrong thing.
  expect(entryCallsUseLibc()).toBe(process.platform === "linux" && process.env.DSYNC_ENTRY_CALLS !== "node");
});
