// Reading chunks back out of local files: verified by id, and never through a link or into
// something that is not a regular file (a FIFO would block the pull for ever).
import { afterAll, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { FileChunkReader } from "../../src/client/file-chunks.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const bytes = new TextEncoder().encode("chunk bytes here");
const id = blake3(bytes);

test("reads a chunk from a regular file and checks it against its id", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "f"), Buffer.concat([Buffer.from("xx"), bytes]));
  const reader = new FileChunkReader();
  try {
    expect(Buffer.from(reader.tryRead(id, { path: join(dir, "f"), offsetBytes: 2, lengthBytes: bytes.length })!).equals(Buffer.from(bytes))).toBe(true);
    expect(reader.tryRead(id, { path: join(dir, "f"), offsetBytes: 1, lengthBytes: bytes.length })).toBeUndefined();
  } finally {
    reader.closeAll();
  }
});

test("a location that became a symlink (even to the right bytes) or a FIFO is not read, and nothing blocks", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "real"), bytes);
  symlinkSync(join(dir, "real"), join(dir, "link"));
  execFileSync("mkfifo", [join(dir, "pipe")]);
  const reader = new FileChunkReader();
  try {
    expect(reader.tryRead(id, { path: join(dir, "link"), offsetBytes: 0, lengthBytes: bytes.length })).toBeUndefined();
    expect(reader.tryRead(id, { path: join(dir, "pipe"), offsetBytes: 0, lengthBytes: bytes.length })).toBeUndefined();
    expect(reader.tryRead(id, { path: join(dir, "real"), offsetBytes: 0, lengthBytes: bytes.length })).toBeDefined();
  } finally {
    reader.closeAll();
  }
}, 5_000);
