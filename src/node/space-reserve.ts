// Space kept back so a full disk can be cleaned up. gc must record its deletions (SQLite needs
// room for its log) before repack can give pack space back; on a disk with no byte free that
// first write fails and nothing can ever be freed. So the node keeps a file of zeros in its data
// folder, made at open when there is room; gc removes it first, and makes it again at the end.
import { join } from "node:path";
import type { FileSystem } from "../store/file-system.ts";
import { writeFully } from "../store/pack-io.ts";

export const SPACE_RESERVE_FILE_NAME = "space-reserve";
/** Room for SQLite to record the deletions of a large collection. */
export const SPACE_RESERVE_BYTES = 2 * 1024 * 1024;
const WRITE_STEP_BYTES = 256 * 1024;

export class SpaceReserve {
  private readonly path: string;

  constructor(private readonly files: FileSystem, private readonly dataDir: string, private readonly sizeBytes = SPACE_RESERVE_BYTES) {
    this.path = join(dataDir, SPACE_RESERVE_FILE_NAME);
  }

  /** Makes the reserve when it is missing or short (a crash can leave it so). True when it is whole afterwards; false when there was no room (never throws). */
  refill(): boolean {
    if (this.currentSizeBytes() === this.sizeBytes) return true;
    const temporaryPath = `${this.path}.new`;
    this.removeQuietly(temporaryPath);
    let fd: number | undefined;
    try {
      fd = this.files.open(temporaryPath, "create-exclusive");
      const zeros = new Uint8Array(Math.min(WRITE_STEP_BYTES, this.sizeBytes));
      for (let at = 0; at < this.sizeBytes; at += zeros.length) writeFully(this.files, fd, zeros.subarray(0, Math.min(zeros.length, this.sizeBytes - at)), at);
      // Flushed, so the blocks are really allocated and a crash leaves a whole reserve or none.
      this.files.fsync(fd);
      this.files.close(fd);
      fd = undefined;
      this.files.rename(temporaryPath, this.path);
      this.files.fsyncDirectory(this.dataDir);
      return true;
    } catch {
      // No room (or no working disk): the node runs without a reserve until a later gc makes one.
      if (fd !== undefined) this.files.close(fd);
      this.removeQuietly(temporaryPath);
      return false;
    }
  }

  /** Removes the reserve so the work that follows can use its space; true when there was one. */
  release(): boolean {
    if (this.currentSizeBytes() === undefined) return false;
    this.files.unlink(this.path);
    return true;
  }

  private currentSizeBytes(): number | undefined {
    let fd: number;
    try {
      fd = this.files.open(this.path, "read");
    } catch {
      return undefined;
    }
    try {
      return this.files.sizeBytes(fd);
    } finally {
      this.files.close(fd);
    }
  }

  private removeQuietly(path: string): void {
    try {
      this.files.unlink(path);
    } catch {
      // Not there.
    }
  }
}
