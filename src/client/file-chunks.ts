// Reads chunks back out of local files by position, verifying each against its id: a file
// that changed since it was scanned is detected instead of sending or writing wrong bytes.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { blake3 } from "../core/blake3.ts";
import { idEquals, type ObjectId } from "../core/id.ts";

export interface ChunkLocation {
  path: string;
  offsetBytes: number;
  lengthBytes: number;
}

export class FileChangedError extends Error {
  override name = "FileChangedError";
}

// A location names a path that held the chunk when it was noted; by the time it is read the
// path may be a symlink (to anything, /dev/zero included) or a FIFO, whose open would block.
// So it is opened without following a link and without blocking, and must be a regular file.
const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function openRegularFile(path: string): number {
  const fd = openSync(path, READ_NO_FOLLOW);
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new FileChangedError(`${path} is no longer a regular file`);
  }
  return fd;
}

/** Keeps a few files open while chunks are read from them in order. */
export class FileChunkReader {
  private readonly fds = new Map<string, number>();

  /** The chunk's bytes, or undefined when the file no longer holds them. */
  tryRead(id: ObjectId, location: ChunkLocation): Uint8Array | undefined {
    const bytes = new Uint8Array(location.lengthBytes);
    return this.readInto(id, location, bytes) ? bytes : undefined;
  }

  /** Reads the chunk into `target` (exactly its length); false when the file no longer holds it. */
  readInto(id: ObjectId, location: ChunkLocation, target: Uint8Array): boolean {
    let fd = this.fds.get(location.path);
    try {
      if (fd === undefined) {
        if (this.fds.size >= 16) this.closeAll();
        fd = openRegularFile(location.path);
        this.fds.set(location.path, fd);
      }
      let done = 0;
      while (done < target.length) {
        const n = readSync(fd, target, done, target.length - done, location.offsetBytes + done);
        if (n === 0) return false;
        done += n;
      }
      return idEquals(blake3(target), id);
    } catch {
      return false;
    }
  }

  closeAll(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
