// The kill sweep's workload: a directory tree drawn from the seed (a few hundred small files in
// nested directories, a few large files of 1–3 MiB so uploads and pulls take long enough to be
// cut in the middle, a symlink, an executable), and the changes made to it before each push:
// edits, additions, deletions, renames, a mode change, a region rewritten inside a large file,
// and always one new large file so every push has chunks to send.
import { chmodSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Prng } from "../../test/helpers/prng.ts";
import { randomBytes } from "../../test/helpers/trees.ts";

const MiB = 1024 * 1024;
const SMALL_FILES_INITIAL = 300;
const SMALL_FILE_BYTES_MAX = 8 * 1024;
const DIRECTORIES = ["docs", "docs/old", "src", "src/lib", "src/lib/deep", "assets", "notes", "notes/2026", "empty-later", "misc"];
const LEAF_DIRECTORIES = DIRECTORIES.filter((dir) => !DIRECTORIES.some((other) => other.startsWith(dir + "/")));
/** Large files kept at most; the oldest is deleted when a push adds one more. */
const LARGE_FILES_MAX = 3;
const LARGE_FILE_BYTES_MIN = 1 * MiB;
const LARGE_FILE_BYTES_SPAN = 2 * MiB;
/** The state folder of a synced directory: never part of the tree. */
const STATE_DIR_NAME = ".dsync";

export interface WorkloadSizes {
  /** Small files written at the start. */
  smallFiles: number;
  /** Large files written at the start (each 1–3 MiB). */
  largeFiles: number;
}

export const DEFAULT_SIZES: WorkloadSizes = { smallFiles: SMALL_FILES_INITIAL, largeFiles: 2 };

/** Every regular file under root (relative paths, sorted), the state folder excluded. */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      if (relative === "" && name === STATE_DIR_NAME) continue;
      const path = relative === "" ? name : `${relative}/${name}`;
      const stats = lstatSync(join(root, path));
      if (stats.isDirectory()) walk(path);
      else if (stats.isFile()) out.push(path);
    }
  };
  walk("");
  return out;
}

export class SeededTree {
  private largeSerial = 0;
  private smallSerial = 0;

  constructor(
    readonly root: string,
    private readonly prng: Prng,
  ) {}

  /** Writes the first tree. */
  create(sizes: WorkloadSizes = DEFAULT_SIZES): void {
    mkdirSync(this.root, { recursive: true });
    for (const dir of DIRECTORIES) mkdirSync(join(this.root, dir), { recursive: true });
    for (let i = 0; i < sizes.smallFiles; i++) this.addSmallFile();
    for (let i = 0; i < sizes.largeFiles; i++) this.addLargeFile();
    symlinkSync("../src/lib", join(this.root, "misc/lib-link"));
    writeFileSync(join(this.root, "misc/run.sh"), "#!/bin/sh\necho run\n");
    chmodSync(join(this.root, "misc/run.sh"), 0o755);
  }

  /** One push's worth of changes; returns a short description of them. */
  mutate(): string {
    const small = () => listFiles(this.root).filter((path) => !path.startsWith("large/"));
    const pick = (paths: string[]) => paths[this.prng.nextInt(paths.length)]!;
    const changes: string[] = [];
    // Deletions and emptied directories must not starve the picks below.
    while (small().length < 50) this.addSmallFile();
    const edits = 1 + this.prng.nextInt(8);
    for (let i = 0; i < edits; i++) {
      const path = pick(small());
      writeFileSync(join(this.root, path), this.smallContent());
    }
    changes.push(`${edits} edited`);
    const deletions = this.prng.nextInt(4);
    for (let i = 0; i < deletions; i++) rmSync(join(this.root, pick(small())));
    changes.push(`${deletions} deleted`);
    const renames = this.prng.nextInt(4);
    for (let i = 0; i < renames; i++) {
      const from = pick(small());
      const to = `${DIRECTORIES[this.prng.nextInt(DIRECTORIES.length)]}/renamed-${this.smallSerial++}.txt`;
      mkdirSync(dirname(join(this.root, to)), { recursive: true });
      renameSync(join(this.root, from), join(this.root, to));
    }
    changes.push(`${renames} renamed`);
    const additions = this.prng.nextInt(7);
    for (let i = 0; i < additions; i++) this.addSmallFile();
    changes.push(`${additions} added`);
    if (this.prng.nextInt(10) === 0) {
      const path = pick(small());
      chmodSync(join(this.root, path), 0o700 + this.prng.nextInt(2) * 0o055);
      changes.push("1 mode");
    }
    if (this.prng.nextInt(8) === 0) {
      // A whole directory goes away (and comes back empty, so later renames into it still work).
      // Only one with no directory below it: a tenth of the files or so, so that even several
      // pushes that failed in a row never add up to the mass deletion the push guard refuses.
      const dir = LEAF_DIRECTORIES[this.prng.nextInt(LEAF_DIRECTORIES.length)]!;
      rmSync(join(this.root, dir), { recursive: true, force: true });
      mkdirSync(join(this.root, dir), { recursive: true });
      changes.push(`dir ${dir} emptied`);
    }
    const large = listFiles(this.root).filter((path) => path.startsWith("large/"));
    if (large.length > 0 && this.prng.nextInt(2) === 0) {
      // Rewrite 64 KiB in place: only the chunks around it change.
      const path = pick(large);
      const fd = openSync(join(this.root, path), "r+");
      try {
        writeSync(fd, this.prng.bytes(64 * 1024), 0, 64 * 1024, this.prng.nextInt(LARGE_FILE_BYTES_MIN - 64 * 1024));
      } finally {
        closeSync(fd);
      }
      changes.push(`region of ${path}`);
    }
    this.addLargeFile();
    if (large.length + 1 > LARGE_FILES_MAX) rmSync(join(this.root, large[0]!));
    changes.push("1 large added");
    return changes.join(", ");
  }

  /**
   * A scratch tree for the gc phase: one fresh large file and a few small ones, replacing what was
   * there. The state folder stays, so the next push follows the last one instead of merging with it.
   */
  replaceWithScratch(): void {
    mkdirSync(this.root, { recursive: true });
    for (const name of readdirSync(this.root)) if (name !== STATE_DIR_NAME) rmSync(join(this.root, name), { recursive: true, force: true });
    writeFileSync(join(this.root, "blob.bin"), randomBytes(1 * MiB + this.prng.nextInt(3 * MiB), this.prng.nextUint32()));
    for (let i = 0; i < 20; i++) writeFileSync(join(this.root, `s${i}.txt`), this.smallContent());
  }

  private addSmallFile(): void {
    const dir = DIRECTORIES[this.prng.nextInt(DIRECTORIES.length)]!;
    const path = join(this.root, dir, `f${this.smallSerial++}.${this.prng.nextInt(3) === 0 ? "bin" : "txt"}`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, this.smallContent());
  }

  private addLargeFile(): void {
    mkdirSync(join(this.root, "large"), { recursive: true });
    const sizeBytes = LARGE_FILE_BYTES_MIN + this.prng.nextInt(LARGE_FILE_BYTES_SPAN);
    // Zero-padded serials keep "oldest first" in name order.
    const name = `large/blob-${String(this.largeSerial++).padStart(5, "0")}.bin`;
    writeFileSync(join(this.root, name), randomBytes(sizeBytes, this.prng.nextUint32()));
  }

  private smallContent(): Uint8Array | string {
    const sizeBytes = this.prng.nextInt(SMALL_FILE_BYTES_MAX);
    if (this.prng.nextInt(2) === 0) return this.prng.bytes(sizeBytes);
    return `line ${this.prng.nextUint32()}\n`.repeat(Math.ceil(sizeBytes / 16));
  }
}
