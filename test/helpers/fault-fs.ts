// A FileSystem (src/store/file-system.ts) in memory that knows what is durable, for fault tests.
//
// Every file has the bytes a reader sees now and the bytes that would survive a power cut; a
// directory has its entries now and its durable entries. fsync/fdatasync make a file's written
// pages durable; fsyncDirectory makes a directory's creates, renames and unlinks durable.
// cutPower() (or a cut armed at the n-th operation) stops the machine: every later operation
// fails until restart(), which keeps what was durable (and, if asked, a seeded part of what was
// not), like a machine coming back up.
//
// Faults: EIO or ENOSPC on the n-th write, flush (fsync, fdatasync, directory fsync) or rename.
// A failed write leaves a prefix of its bytes written (a torn write). A failed flush behaves as
// Linux does after writeback errors ("fsyncgate"): the pages it should have written are dropped
// from the dirty set, so readers still see them but a later flush that succeeds does not write
// them; only bytes written again after the failure can become durable.
//
// Simplification: directories made by mkdirs are durable at once (the store makes its pack
// folder once, at open).
import { basename, dirname, resolve } from "node:path";
import type { FileSystem, OpenMode } from "../../src/store/file-system.ts";
import { createPrng, type Prng } from "./prng.ts";

export type FaultCode = "EIO" | "ENOSPC";
export type FaultOperation = "write" | "fsync" | "rename";

export interface FaultPoint {
  operation: FaultOperation;
  /** Fails the operation of that kind with this 0-based number, counted since the file system was made. */
  index: number;
  code: FaultCode;
}

export interface FsEvent {
  operation: "create" | "write" | "fsync" | "fsync-directory" | "rename" | "unlink" | "truncate";
  path: string;
  ok: boolean;
}

const PAGE_BYTES = 4096;

class Inode {
  data = new Uint8Array(0);
  lengthBytes = 0;
  durable = new Uint8Array(0);
  dirtyPages = new Set<number>();

  view(): Uint8Array {
    return this.data.subarray(0, this.lengthBytes);
  }

  resize(lengthBytes: number): void {
    if (lengthBytes > this.data.length) {
      const grown = new Uint8Array(Math.max(lengthBytes, this.data.length * 2));
      grown.set(this.view());
      this.data = grown;
    } else if (lengthBytes < this.lengthBytes) {
      this.data.fill(0, lengthBytes, this.lengthBytes);
    }
    this.lengthBytes = lengthBytes;
  }

  markDirty(fromBytes: number, toBytes: number): void {
    for (let page = Math.floor(fromBytes / PAGE_BYTES); page * PAGE_BYTES < toBytes; page++) this.dirtyPages.add(page);
  }

  /** What a successful flush does: the current size and every dirty page reach the disk. */
  flush(): void {
    const durable = new Uint8Array(this.lengthBytes);
    durable.set(this.durable.subarray(0, Math.min(this.durable.length, this.lengthBytes)));
    for (const page of this.dirtyPages) {
      const start = page * PAGE_BYTES;
      if (start >= this.lengthBytes) continue;
      durable.set(this.data.subarray(start, Math.min(start + PAGE_BYTES, this.lengthBytes)), start);
    }
    this.durable = durable;
    this.dirtyPages.clear();
  }

  /** What a failed flush does: the dirty pages are lost to the disk, though readers still see them. */
  dropDirty(): void {
    this.dirtyPages.clear();
  }

  /** Some of what was written but not flushed may have reached the disk anyway before the cut. */
  keepSomeDirtyPages(random: Prng): void {
    for (const page of this.dirtyPages) {
      if (random.nextInt(2) === 0) continue;
      const start = page * PAGE_BYTES;
      const end = Math.min(start + PAGE_BYTES, this.lengthBytes);
      if (start >= end) continue;
      if (this.durable.length < end) {
        const grown = new Uint8Array(end);
        grown.set(this.durable);
        this.durable = grown;
      }
      this.durable.set(this.data.subarray(start, end), start);
    }
  }

  powerCut(): void {
    this.data = this.durable.slice();
    this.lengthBytes = this.durable.length;
    this.dirtyPages.clear();
  }
}

class Directory {
  entries = new Map<string, Inode>();
  durableEntries = new Map<string, Inode>();
}

interface OpenFile {
  inode: Inode;
  path: string;
  writable: boolean;
}

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: ${syscall} '${path}' (injected)`) as NodeJS.ErrnoException;
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

export interface FaultFileSystemOptions {
  /** Fails these operations. */
  faults?: readonly FaultPoint[];
  /** Total bytes files may hold; writes past it fail with ENOSPC after writing what fits. */
  capacityBytes?: number;
  /** Seeds the length of torn writes. */
  seed?: number;
}

export class FaultFileSystem implements FileSystem {
  private readonly directories = new Map<string, Directory>();
  private readonly openFiles = new Map<number, OpenFile>();
  private nextFd = 1000;
  private readonly counts: Record<FaultOperation, number> = { write: 0, fsync: 0, rename: 0 };
  private faults: FaultPoint[];
  private readonly random: Prng;
  private powerCutAtStep: number | undefined;
  private steps = 0;
  private powerIsOff = false;
  capacityBytes: number;
  readonly events: FsEvent[] = [];
  /** Faults that were actually raised, in order. */
  readonly injected: FaultPoint[] = [];

  constructor(options: FaultFileSystemOptions = {}) {
    this.faults = [...(options.faults ?? [])];
    this.capacityBytes = options.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.random = createPrng(options.seed ?? 1);
  }

  /** How many operations of each kind have run (the numbers FaultPoint.index counts). */
  get operationCounts(): Readonly<Record<FaultOperation, number>> {
    return { ...this.counts };
  }

  /** Mutating operations so far (creates, writes, flushes, renames, unlinks, truncates). */
  get stepCount(): number {
    return this.steps;
  }

  get isPowerOff(): boolean {
    return this.powerIsOff;
  }

  addFault(fault: FaultPoint): void {
    this.faults.push(fault);
  }

  /** The power goes off just before mutating step `step` (0-based) would run. */
  cutPowerAtStep(step: number): void {
    this.powerCutAtStep = step;
  }

  cutPower(): void {
    this.powerIsOff = true;
  }

  /**
   * Back up after a power cut: only durable bytes and entries remain; every old descriptor is
   * gone. With `unflushedPages: "some"`, a seeded half of the pages written but not flushed
   * survive too (the disk wrote them on its own, in no particular order): torn, out-of-order
   * tails that recovery must never index.
   */
  restart(options: { unflushedPages?: "none" | "some" } = {}): void {
    const liveInodes = new Set<Inode>();
    for (const directory of this.directories.values()) {
      directory.entries = new Map(directory.durableEntries);
      for (const inode of directory.entries.values()) liveInodes.add(inode);
    }
    for (const inode of liveInodes) {
      if (options.unflushedPages === "some") inode.keepSomeDirtyPages(this.random);
      inode.powerCut();
    }
    this.openFiles.clear();
    this.powerIsOff = false;
    this.powerCutAtStep = undefined;
  }

  usedBytes(): number {
    const inodes = new Set<Inode>();
    for (const directory of this.directories.values()) for (const inode of directory.entries.values()) inodes.add(inode);
    for (const file of this.openFiles.values()) inodes.add(file.inode);
    let total = 0;
    for (const inode of inodes) total += inode.lengthBytes;
    return total;
  }

  /** The bytes that would survive a power cut now, or undefined when the file would not. */
  durableContent(path: string): Uint8Array | undefined {
    const inode = this.directories.get(dirname(resolve(path)))?.durableEntries.get(basename(path));
    return inode?.durable.slice();
  }

  /** The bytes a reader sees now, or undefined. */
  currentContent(path: string): Uint8Array | undefined {
    const inode = this.directories.get(dirname(resolve(path)))?.entries.get(basename(path));
    return inode?.view().slice();
  }

  // ---------- FileSystem ----------

  open(path: string, mode: OpenMode): number {
    this.assertPowered("open", path);
    const directory = this.directoryOf(path, "open");
    const name = basename(path);
    let inode = directory.entries.get(name);
    if (mode === "create-exclusive") {
      this.step("create", path);
      if (inode !== undefined) throw fsError("EEXIST", "open", path);
      inode = new Inode();
      directory.entries.set(name, inode);
      this.events.push({ operation: "create", path, ok: true });
    } else if (inode === undefined) {
      throw fsError("ENOENT", "open", path);
    }
    const fd = this.nextFd++;
    this.openFiles.set(fd, { inode, path: resolve(path), writable: mode !== "read" });
    return fd;
  }

  close(fd: number): void {
    // Closing never fails here: a descriptor from before a power cut is simply forgotten.
    this.openFiles.delete(fd);
  }

  read(fd: number, target: Uint8Array, offsetBytes: number, lengthBytes: number, positionBytes: number): number {
    const file = this.file(fd, "read");
    const source = file.inode.view();
    if (positionBytes >= source.length) return 0;
    const n = Math.min(lengthBytes, source.length - positionBytes);
    target.set(source.subarray(positionBytes, positionBytes + n), offsetBytes);
    return n;
  }

  write(fd: number, source: Uint8Array, offsetBytes: number, lengthBytes: number, positionBytes: number): number {
    const file = this.file(fd, "write");
    if (!file.writable) throw fsError("EBADF", "write", file.path);
    this.step("write", file.path);
    const fault = this.takeFault("write");
    let n = lengthBytes;
    const growthBytes = Math.max(0, positionBytes + n - file.inode.lengthBytes);
    const freeBytes = this.capacityBytes - this.usedBytes();
    if (growthBytes > freeBytes) n = Math.max(0, file.inode.lengthBytes + Math.max(0, freeBytes) - positionBytes);
    if (fault !== undefined) n = Math.min(n, this.random.nextInt(lengthBytes));
    if (n > 0) {
      if (positionBytes + n > file.inode.lengthBytes) file.inode.resize(positionBytes + n);
      file.inode.data.set(source.subarray(offsetBytes, offsetBytes + n), positionBytes);
      file.inode.markDirty(positionBytes, positionBytes + n);
    }
    if (fault !== undefined) {
      this.events.push({ operation: "write", path: file.path, ok: false });
      throw fsError(fault, "write", file.path);
    }
    if (n === 0) {
      this.events.push({ operation: "write", path: file.path, ok: false });
      throw fsError("ENOSPC", "write", file.path);
    }
    this.events.push({ operation: "write", path: file.path, ok: true });
    return n;
  }

  async fdatasync(fd: number): Promise<void> {
    this.fsync(fd);
  }

  fsync(fd: number): void {
    const file = this.file(fd, "fsync");
    this.step("fsync", file.path);
    const fault = this.takeFault("fsync");
    if (fault !== undefined) {
      file.inode.dropDirty();
      this.events.push({ operation: "fsync", path: file.path, ok: false });
      throw fsError(fault, "fsync", file.path);
    }
    file.inode.flush();
    this.events.push({ operation: "fsync", path: file.path, ok: true });
  }

  truncate(fd: number, lengthBytes: number): void {
    const file = this.file(fd, "ftruncate");
    this.step("truncate", file.path);
    if (lengthBytes > file.inode.lengthBytes) file.inode.markDirty(file.inode.lengthBytes, lengthBytes);
    file.inode.resize(lengthBytes);
    this.events.push({ operation: "truncate", path: file.path, ok: true });
  }

  sizeBytes(fd: number): number {
    return this.file(fd, "fstat").inode.lengthBytes;
  }

  rename(fromPath: string, toPath: string): void {
    this.assertPowered("rename", fromPath);
    const from = this.directoryOf(fromPath, "rename");
    const to = this.directoryOf(toPath, "rename");
    this.step("rename", toPath);
    const fault = this.takeFault("rename");
    const inode = from.entries.get(basename(fromPath));
    if (fault !== undefined || inode === undefined) {
      this.events.push({ operation: "rename", path: toPath, ok: false });
      throw fsError(fault ?? "ENOENT", "rename", fromPath);
    }
    from.entries.delete(basename(fromPath));
    to.entries.set(basename(toPath), inode);
    // Events on descriptors opened under the old name are reported under the new one.
    for (const file of this.openFiles.values()) if (file.inode === inode) file.path = resolve(toPath);
    this.events.push({ operation: "rename", path: resolve(toPath), ok: true });
  }

  unlink(path: string): void {
    this.assertPowered("unlink", path);
    const directory = this.directoryOf(path, "unlink");
    this.step("unlink", path);
    if (!directory.entries.delete(basename(path))) throw fsError("ENOENT", "unlink", path);
    this.events.push({ operation: "unlink", path: resolve(path), ok: true });
  }

  readdir(path: string): string[] {
    this.assertPowered("scandir", path);
    const directory = this.directories.get(resolve(path));
    if (directory === undefined) throw fsError("ENOENT", "scandir", path);
    return [...directory.entries.keys()].sort();
  }

  mkdirs(path: string): void {
    this.assertPowered("mkdir", path);
    for (let at = resolve(path); !this.directories.has(at); at = dirname(at)) {
      this.directories.set(at, new Directory());
      if (dirname(at) === at) break;
    }
  }

  fsyncDirectory(path: string): void {
    this.assertPowered("fsync", path);
    const directory = this.directories.get(resolve(path));
    if (directory === undefined) throw fsError("ENOENT", "open", path);
    this.step("fsync-directory", path);
    const fault = this.takeFault("fsync");
    if (fault !== undefined) {
      this.events.push({ operation: "fsync-directory", path: resolve(path), ok: false });
      throw fsError(fault, "fsync", path);
    }
    directory.durableEntries = new Map(directory.entries);
    this.events.push({ operation: "fsync-directory", path: resolve(path), ok: true });
  }

  // ---------- internals ----------

  private assertPowered(syscall: string, path: string): void {
    if (this.powerIsOff) throw fsError("EIO", syscall, `${path} (the power is off)`);
  }

  /** Counts a mutating step; the power goes off here when a cut is armed for it. */
  private step(operation: FsEvent["operation"], path: string): void {
    this.assertPowered(operation, path);
    if (this.powerCutAtStep !== undefined && this.steps >= this.powerCutAtStep) {
      this.powerIsOff = true;
      this.assertPowered(operation, path);
    }
    this.steps++;
  }

  private takeFault(operation: FaultOperation): FaultCode | undefined {
    const index = this.counts[operation]++;
    const at = this.faults.findIndex((f) => f.operation === operation && f.index === index);
    if (at < 0) return undefined;
    const [fault] = this.faults.splice(at, 1);
    this.injected.push(fault!);
    return fault!.code;
  }

  private file(fd: number, syscall: string): OpenFile {
    const file = this.openFiles.get(fd);
    if (this.powerIsOff) throw fsError("EIO", syscall, `${file?.path ?? `fd ${fd}`} (the power is off)`);
    if (file === undefined) throw fsError("EBADF", syscall, `fd ${fd}`);
    return file;
  }

  private directoryOf(path: string, syscall: string): Directory {
    const directory = this.directories.get(dirname(resolve(path)));
    if (directory === undefined) throw fsError("ENOENT", syscall, path);
    return directory;
  }
}
