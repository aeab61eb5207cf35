// The file operations the pack store performs, behind one small interface.
//
// Production uses `nodeFileSystem`, a thin pass-through to node:fs. Tests pass an implementation
// that keeps what is durable apart from what was merely written, cuts the power, and fails
// chosen writes, flushes and renames (test/helpers/fault-fs.ts), to check that nothing
// acknowledged is lost and no half object becomes visible. Only what the store uses is here.
// The SQLite index does its own I/O and is not covered: it relies on synchronous=FULL.
import * as fs from "node:fs";

/** How a file is opened: read only, read-write of an existing file, or created (failing if it exists) for read-write. */
export type OpenMode = "read" | "read-write" | "create-exclusive";

export interface FileSystem {
  /** Returns a descriptor; throws an error with code ENOENT when the file does not exist (read, read-write). */
  open(path: string, mode: OpenMode): number;
  close(fd: number): void;
  /** Reads at a position; returns the bytes read (0 at end of file). */
  read(fd: number, target: Uint8Array, offsetBytes: number, lengthBytes: number, positionBytes: number): number;
  /** Writes at a position; returns the bytes written, which may be fewer than asked. */
  write(fd: number, source: Uint8Array, offsetBytes: number, lengthBytes: number, positionBytes: number): number;
  /** Flushes a file's data and size. Async so a server keeps answering while it runs. */
  fdatasync(fd: number): Promise<void>;
  /** Flushes a file's data and all its metadata. */
  fsync(fd: number): void;
  truncate(fd: number, lengthBytes: number): void;
  sizeBytes(fd: number): number;
  rename(fromPath: string, toPath: string): void;
  unlink(path: string): void;
  readdir(path: string): string[];
  /** Creates a directory and its missing parents. */
  mkdirs(path: string): void;
  /** Makes the entries created, renamed or removed in a directory durable. */
  fsyncDirectory(path: string): void;
}

const OPEN_FLAGS: Record<OpenMode, string> = { read: "r", "read-write": "r+", "create-exclusive": "wx+" };

export const nodeFileSystem: FileSystem = {
  open: (path, mode) => fs.openSync(path, OPEN_FLAGS[mode]),
  close: (fd) => fs.closeSync(fd),
  read: (fd, target, offsetBytes, lengthBytes, positionBytes) => fs.readSync(fd, target, offsetBytes, lengthBytes, positionBytes),
  write: (fd, source, offsetBytes, lengthBytes, positionBytes) => fs.writeSync(fd, source, offsetBytes, lengthBytes, positionBytes),
  // On the thread pool: flushing a large batch must not stop reads.
  fdatasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve()))),
  fsync: (fd) => fs.fsyncSync(fd),
  truncate: (fd, lengthBytes) => fs.ftruncateSync(fd, lengthBytes),
  sizeBytes: (fd) => fs.fstatSync(fd).size,
  rename: (fromPath, toPath) => fs.renameSync(fromPath, toPath),
  unlink: (path) => fs.unlinkSync(path),
  readdir: (path) => fs.readdirSync(path),
  mkdirs: (path) => void fs.mkdirSync(path, { recursive: true }),
  fsyncDirectory(path) {
    const fd = fs.openSync(path, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};
