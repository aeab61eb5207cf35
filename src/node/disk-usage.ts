// How much of the file system a node's data folder takes, for reports that must say what was
// really freed (deleting index rows frees nothing; only a shorter or removed file does).
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Bytes allocated to the files under `dir` (st_blocks × 512, so sparse and preallocated files count as they are); 0 when it does not exist. */
export function allocatedBytesUnder(dir: string): number {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  let total = 0;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    try {
      total += entry.isDirectory() ? allocatedBytesUnder(path) : lstatSync(path).blocks * 512;
    } catch (error) {
      // A file removed while we count (a temporary file, a pack being repacked) takes no space.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  return total;
}
