// Open read-only descriptors for pack files, least recently used closed first.
//
// Opening a file per read would double the syscalls of a small-object read; keeping every pack
// open would run into descriptor limits on large stores.
import { join } from "node:path";
import type { FileSystem } from "./file-system.ts";
import { packFileName } from "./pack-format.ts";
import { isNotFound } from "./pack-io.ts";

export class PackReadCache {
  // Map iteration order is insertion order; re-inserting on use makes the first key the oldest.
  private readonly fds = new Map<number, number>();

  constructor(private readonly files: FileSystem, private readonly packsDir: string, private readonly openFilesMax = 32) {}

  /** The descriptor for a pack, or undefined when the file does not exist. */
  fdFor(packNumber: number): number | undefined {
    const cached = this.fds.get(packNumber);
    if (cached !== undefined) {
      this.fds.delete(packNumber);
      this.fds.set(packNumber, cached);
      return cached;
    }
    let fd: number;
    try {
      fd = this.files.open(join(this.packsDir, packFileName(packNumber)), "read");
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    this.fds.set(packNumber, fd);
    if (this.fds.size > this.openFilesMax) {
      const [oldestPack, oldestFd] = this.fds.entries().next().value!;
      this.fds.delete(oldestPack);
      this.files.close(oldestFd);
    }
    return fd;
  }

  /** Called before a pack is unlinked so no descriptor keeps its space allocated. */
  forget(packNumber: number): void {
    const fd = this.fds.get(packNumber);
    if (fd === undefined) return;
    this.fds.delete(packNumber);
    this.files.close(fd);
  }

  closeAll(): void {
    for (const fd of this.fds.values()) this.files.close(fd);
    this.fds.clear();
  }
}
