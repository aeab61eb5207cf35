// Low-level file operations the pack store needs: whole positional reads and writes, and the
// flushes that make them durable.
import * as fs from "node:fs";

/** Reads up to target.length bytes at a position; returns how many were read (short only at end of file). */
export function readFully(fd: number, target: Uint8Array, positionBytes: number): number {
  let done = 0;
  while (done < target.length) {
    const n = fs.readSync(fd, target, done, target.length - done, positionBytes + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function writeFully(fd: number, source: Uint8Array, positionBytes: number): void {
  let done = 0;
  while (done < source.length) {
    done += fs.writeSync(fd, source, done, source.length - done, positionBytes + done);
  }
}

/**
 * fdatasync on the thread pool, so a server keeps answering reads while a batch is flushed.
 * fdatasync (not fsync) is enough: it also flushes the file size, which appends change.
 */
export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}

/** Makes a created, renamed or removed directory entry durable. */
export function fsyncDirectory(path: string): void {
  const fd = fs.openSync(path, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function fileSizeBytes(path: string): number | undefined {
  try {
    return fs.statSync(path).size;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/** Cuts a file back to a length and flushes the new size. */
export function truncateDurably(path: string, lengthBytes: number): void {
  const fd = fs.openSync(path, "r+");
  try {
    fs.ftruncateSync(fd, lengthBytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
