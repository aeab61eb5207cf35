// Reads chunks back out of local files by position, verifying each against its id: a file
// that changed since it was scanned is detected instead of sending or writing wrong bytes.
import { closeSync, openSync, readSync } from "node:fs";
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

/** Keeps a few files open while chunks are read from them in order. */
export class FileChunkReader {
  private readonly fds = new Map<string, number>();

  /** The chunk's bytes, or undefined when the file no longer holds them. */
  tryRead(id: ObjectId, location: ChunkLocation): Uint8Array | undefined {
    let fd = this.fds.get(location.path);
    try {
      if (fd === undefined) {
        if (this.fds.size >= 16) this.closeAll();
        fd = openSync(location.path, "r");
        this.fds.set(location.path, fd);
      }
      const bytes = new Uint8Array(location.lengthBytes);
      let done = 0;
      while (done < bytes.length) {
        const n = readSync(fd, bytes, done, bytes.length - done, location.offsetBytes + done);
        if (n === 0) return undefined;
        done += n;
      }
      return idEquals(blake3(bytes), id) ? bytes : undefined;
    } catch {
      return undefined;
    }
  }

  read(id: ObjectId, location: ChunkLocation): Uint8Array {
    const bytes = this.tryRead(id, location);
    if (!bytes) throw new FileChangedError(`${location.path} changed while dsync was reading it; run the command again`);
    return bytes;
  }

  closeAll(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
