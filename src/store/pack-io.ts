// Whole positional reads and writes, durable truncation and the error tests the pack store
// needs, over a FileSystem (file-system.ts).
import type { FileSystem } from "./file-system.ts";

/** Reads up to target.length bytes at a position; returns how many were read (short only at end of file). */
export function readFully(files: FileSystem, fd: number, target: Uint8Array, positionBytes: number): number {
  let done = 0;
  while (done < target.length) {
    const n = files.read(fd, target, done, target.length - done, positionBytes + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function writeFully(files: FileSystem, fd: number, source: Uint8Array, positionBytes: number): void {
  let done = 0;
  while (done < source.length) {
    done += files.write(fd, source, done, source.length - done, positionBytes + done);
  }
}

export function fileSizeBytes(files: FileSystem, path: string): number | undefined {
  let fd: number;
  try {
    fd = files.open(path, "read");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    return files.sizeBytes(fd);
  } finally {
    files.close(fd);
  }
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/** Cuts a file back to a length and flushes the new size. */
export function truncateDurably(files: FileSystem, path: string, lengthBytes: number): void {
  const fd = files.open(path, "read-write");
  try {
    files.truncate(fd, lengthBytes);
    files.fsync(fd);
  } finally {
    files.close(fd);
  }
}
