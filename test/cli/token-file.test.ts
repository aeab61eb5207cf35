// --token-file and its kin: the first line, trimmed; a clear usage error when the file cannot be
// read, is empty, is not a regular file (a FIFO is never waited on) or is too long; a warning
// when others can read it.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readTokenFile } from "../../cli/token-file.ts";
import { UsageError } from "../../src/client/sync-target.ts";
import { cleanupTempDirs, runCli, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

function file(name: string, content: string, mode = 0o600): string {
  const path = join(tempDir(), name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

test("the first line, trimmed; nothing said of a file only its owner reads", () => {
  const warnings: string[] = [];
  expect(readTokenFile(file("t", "  s3cret-token \r\nsecond line\n"), "--token-file", (line) => warnings.push(line))).toBe("s3cret-token");
  expect(readTokenFile(file("t", "no-newline"), "--token-file", (line) => warnings.push(line))).toBe("no-newline");
  expect(warnings).toEqual([]);
});

test("a file others can read is used, and said", () => {
  const warnings: string[] = [];
  const path = file("t", "s3cret-token\n", 0o644);
  expect(readTokenFile(path, "--token-file", (line) => warnings.push(line))).toBe("s3cret-token");
  expect(warnings).toEqual([`dsync: warning: ${path} (--token-file) can be read by other users (mode 644): chmod 600 ${path}`]);
});

test("missing, empty, a directory, a FIFO or an oversized file: a usage error naming the flag and the file", () => {
  const dir = tempDir();
  const fifo = join(dir, "fifo");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  mkdirSync(join(dir, "sub"));
  const cases: [string, string][] = [
    [join(dir, "absent"), "cannot read it (no such file)"],
    [file("empty", ""), "the file is empty (the token is its first line)"],
    [file("blank", "\n\nsecond\n"), "the file is empty (the token is its first line)"],
    [join(dir, "sub"), "not a regular file"],
    [fifo, "not a regular file"],
    [file("big", "x".repeat(70_000)), "70000 bytes is too long for a token file"],
  ];
  for (const [path, why] of cases) {
    let caught: unknown;
    try {
      readTokenFile(path, "--cluster-token-file", () => {});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toStartWith(`--cluster-token-file ${path}: ${why}`);
  }
});

test("the CLI: --token-file for a client command, exit 2 on an empty one; serve refuses --token with --token-file", async () => {
  const empty = file("empty", "");
  const ls = await runCli(["ls", "--remote", "http://127.0.0.1:1", "--token-file", empty]);
  expect({ code: ls.code, stderr: ls.stderr.trim() }).toEqual({ code: 2, stderr: `dsync: --token-file ${empty}: the file is empty (the token is its first line) (see dsync help ls)` });
  const token = file("token", "s3cret-token\n");
  const both = await runCli(["serve", "--data", join(tempDir(), "d"), "--listen", "127.0.0.1:0", "--token", "other-token", "--token-file", token]);
  expect({ code: both.code, stderr: both.stderr.trim() }).toEqual({ code: 2, stderr: "dsync: --token and --token-file: give one" });
});
