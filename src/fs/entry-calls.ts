// Looking at and opening an entry named inside a directory handle: statx(2) and openat(2) on
// libc through bun:ffi, without a path.
//
// Node has neither. The scanner used to name an entry as `/proc/self/fd/<fd>/<name>` and lstat
// or open that: the same file, reached the same way (through the handle, no link followed), but
// the kernel walks the /proc link first and Node builds a BigIntStats for every call. For a
// tree of 100 000 small files that was most of a no-change scan. statx on the handle and the
// name takes about half the time and fills one reused buffer, read as plain numbers (inode and
// nanosecond times are only turned into BigInts where a stat cache entry needs them).
//
// Everywhere else (not Linux, no libc statx, a kernel or sandbox that refuses it, or
// DSYNC_ENTRY_CALLS=node) the same answers come from node:fs through `pathInHandle` (or the
// absolute path without /proc), as before. A call that fails through libc is made again through node:fs, which throws the error
// Node would have (its code and message), or succeeds if the entry was back meanwhile: errors are
// rare, and errno read after an FFI call is not reliable.
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { closeSync, constants, fstatSync, lstatSync, openSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { handlesResolveNames, pathInHandle } from "./directory-handle.ts";

export type EntryKind = "file" | "directory" | "symlink" | "other";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** What an lstat (or fstat) saw, as numbers; BigInt forms on demand. */
export class EntryStat {
  constructor(
    /** st_mode: type and permission bits. */
    readonly mode: number,
    readonly sizeBytes: number,
    private readonly inodeHigh: number,
    private readonly inodeLow: number,
    private readonly deviceMajor: number,
    private readonly deviceMinor: number,
    private readonly mtimeSeconds: number,
    private readonly mtimeNanos: number,
    private readonly ctimeSeconds: number,
    private readonly ctimeNanos: number,
  ) {}

  static fromBigIntStats(stats: BigIntStats): EntryStat {
    const seconds = (ns: bigint) => Number(ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n));
    const nanos = (ns: bigint) => Number(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n);
    return new EntryStat(
      Number(stats.mode),
      Number(stats.size),
      Number(stats.ino >> 32n),
      Number(stats.ino & 0xffffffffn),
      // As statx reports it: major and minor (glibc's gnu_dev_major and gnu_dev_minor).
      Number(((stats.dev >> 8n) & 0xfffn) | ((stats.dev >> 32n) & ~0xfffn)),
      Number((stats.dev & 0xffn) | ((stats.dev >> 12n) & ~0xffn & 0xffffffffn)),
      seconds(stats.mtimeNs),
      nanos(stats.mtimeNs),
      seconds(stats.ctimeNs),
      nanos(stats.ctimeNs),
    );
  }

  get kind(): EntryKind {
    const type = this.mode & S_IFMT;
    return type === S_IFREG ? "file" : type === S_IFDIR ? "directory" : type === S_IFLNK ? "symlink" : "other";
  }

  get inode(): bigint {
    return (BigInt(this.inodeHigh) << 32n) | BigInt(this.inodeLow);
  }

  get mtimeNs(): bigint {
    return BigInt(this.mtimeSeconds) * 1_000_000_000n + BigInt(this.mtimeNanos);
  }

  get ctimeNs(): bigint {
    return BigInt(this.ctimeSeconds) * 1_000_000_000n + BigInt(this.ctimeNanos);
  }

  /** The mtime in whole milliseconds, as `Number(mtimeNs / 1_000_000n)` (truncated toward zero). */
  get mtimeMs(): number {
    if (this.mtimeSeconds >= 0) return this.mtimeSeconds * 1000 + Math.floor(this.mtimeNanos / 1_000_000);
    return Number(this.mtimeNs / 1_000_000n);
  }

  /** Whether both name the same file: device and inode. */
  sameFile(other: EntryStat): boolean {
    return this.inodeLow === other.inodeLow && this.inodeHigh === other.inodeHigh && this.deviceMinor === other.deviceMinor && this.deviceMajor === other.deviceMajor;
  }

  /** Whether mode, inode, size, mtime and ctime are all the same (what `writeIdentity` writes). */
  sameIdentity(other: EntryStat): boolean {
    return (
      this.mode === other.mode &&
      this.inodeLow === other.inodeLow &&
      this.inodeHigh === other.inodeHigh &&
      this.sizeBytes === other.sizeBytes &&
      this.mtimeSeconds === other.mtimeSeconds &&
      this.mtimeNanos === other.mtimeNanos &&
      this.ctimeSeconds === other.ctimeSeconds &&
      this.ctimeNanos === other.ctimeNanos
    );
  }

  /**
   * Writes what changes when the entry does (mode, inode, size, mtime, ctime: 36 bytes) at
   * `offset`, for a directory's fingerprint (scanner.ts). The device is left out: it is the
   * same for every entry of a directory, and may be numbered differently after a reboot.
   */
  writeIdentity(view: DataView, offset: number): void {
    view.setUint32(offset, this.mode, true);
    view.setUint32(offset + 4, this.inodeHigh, true);
    view.setUint32(offset + 8, this.inodeLow, true);
    view.setFloat64(offset + 12, this.sizeBytes, true);
    view.setFloat64(offset + 20, this.mtimeSeconds, true);
    view.setUint32(offset + 28, this.mtimeNanos, true);
    view.setFloat64(offset + 32, this.ctimeSeconds, true);
    view.setUint32(offset + 40, this.ctimeNanos, true);
  }
}

/** Bytes `writeIdentity` writes (ctime's nanoseconds last). */
export const ENTRY_IDENTITY_BYTES = 44;

/** How an entry inside a directory handle is looked at and opened. */
export interface EntryCalls {
  /** lstat of `name` inside the directory open as `dirFd` (at `dirPath`); throws as lstatSync does. */
  lstatAt(dirFd: number, dirPath: string, name: string): EntryStat;
  /** fstat of an open descriptor. */
  fstat(fd: number): EntryStat;
  /** openat(dirFd, name, flags) (close-on-exec); throws as openSync does. */
  openAt(dirFd: number, dirPath: string, name: string, flags: number): number;
}

/** The path naming `name` inside the directory open as `dirFd`, resolved through the handle when /proc allows. */
export function entryPath(dirFd: number, dirPath: string, name: string): string {
  return handlesResolveNames() ? pathInHandle(dirFd, name) : join(dirPath, name);
}

/** Through node:fs: the path through the handle (or the absolute path without /proc). */
export const nodeEntryCalls: EntryCalls = {
  lstatAt: (dirFd, dirPath, name) => EntryStat.fromBigIntStats(lstatSync(entryPath(dirFd, dirPath, name), { bigint: true })),
  fstat: (fd) => EntryStat.fromBigIntStats(fstatSync(fd, { bigint: true })),
  openAt: (dirFd, dirPath, name, flags) => openSync(entryPath(dirFd, dirPath, name), flags),
};

const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
/** STATX_TYPE | MODE | MTIME | CTIME | INO | SIZE: what an EntryStat needs. */
const STATX_NEEDED = 0x1 | 0x2 | 0x40 | 0x80 | 0x100 | 0x200;
const STATX_BUFFER_BYTES = 256;
/** Linux's O_CLOEXEC (the same on every architecture Bun runs on); node:fs sets it on every open. */
const O_CLOEXEC = 0o2000000;

interface LibcSymbols {
  statx(dirFd: number, path: Uint8Array | Pointer, flags: number, mask: number, buffer: Uint8Array | Pointer): number;
  openat(dirFd: number, path: Uint8Array | Pointer, flags: number): number;
}

/** statx and openat on libc. Names are encoded into one reused NUL-terminated buffer. */
class LibcEntryCalls implements EntryCalls {
  private readonly statBuffer = new Uint8Array(STATX_BUFFER_BYTES);
  private readonly view = new DataView(this.statBuffer.buffer);
  /** A name is at most 255 bytes (NAME_MAX); a longer one is left to node:fs, which reports it. */
  private readonly nameBuffer = new Uint8Array(1024);
  /** Where a name is encoded: the buffer less the room for its NUL. */
  private readonly nameRoom = this.nameBuffer.subarray(0, this.nameBuffer.length - 1);
  private readonly emptyName = new Uint8Array(1);
  private readonly encoder = new TextEncoder();

  constructor(private readonly libc: LibcSymbols) {}

  /** The name in `nameBuffer`, NUL-terminated; false when it does not fit. */
  private encodeName(name: string): boolean {
    const { read, written } = this.encoder.encodeInto(name, this.nameRoom);
    if (read !== name.length) return false;
    this.nameBuffer[written] = 0;
    return true;
  }

  /** The stat in the buffer, or undefined when the file system did not fill in a field needed. */
  private readStat(): EntryStat | undefined {
    const v = this.view;
    if ((v.getUint32(0, true) & STATX_NEEDED) !== STATX_NEEDED) return undefined;
    return new EntryStat(
      v.getUint16(28, true),
      v.getUint32(44, true) * 0x1_0000_0000 + v.getUint32(40, true),
      v.getUint32(36, true),
      v.getUint32(32, true),
      v.getUint32(136, true),
      v.getUint32(140, true),
      v.getInt32(116, true) * 0x1_0000_0000 + v.getUint32(112, true),
      v.getUint32(120, true),
      v.getInt32(100, true) * 0x1_0000_0000 + v.getUint32(96, true),
      v.getUint32(104, true),
    );
  }

  lstatAt(dirFd: number, dirPath: string, name: string): EntryStat {
    if (this.encodeName(name) && this.libc.statx(dirFd, this.nameBuffer, AT_SYMLINK_NOFOLLOW, STATX_NEEDED, this.statBuffer) === 0) {
      const stat = this.readStat();
      if (stat) return stat;
    }
    return nodeEntryCalls.lstatAt(dirFd, dirPath, name);
  }

  fstat(fd: number): EntryStat {
    if (this.libc.statx(fd, this.emptyName, AT_EMPTY_PATH, STATX_NEEDED, this.statBuffer) === 0) {
      const stat = this.readStat();
      if (stat) return stat;
    }
    return nodeEntryCalls.fstat(fd);
  }

  openAt(dirFd: number, dirPath: string, name: string, flags: number): number {
    if (this.encodeName(name)) {
      const fd = this.libc.openat(dirFd, this.nameBuffer, flags | O_CLOEXEC);
      if (fd >= 0) return fd;
    }
    return nodeEntryCalls.openAt(dirFd, dirPath, name, flags);
  }
}

let chosen: EntryCalls | undefined;

/** libc's calls where they work here (checked once against node:fs on "/"), else node:fs's. */
export function entryCalls(): EntryCalls {
  chosen ??= loadLibcCalls() ?? nodeEntryCalls;
  return chosen;
}

/** Whether the libc calls are in use (for tests and reports). */
export function entryCallsUseLibc(): boolean {
  return entryCalls() !== nodeEntryCalls;
}

function loadLibcCalls(): EntryCalls | undefined {
  if (process.platform !== "linux" || process.env.DSYNC_ENTRY_CALLS === "node") return undefined;
  for (const name of ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"]) {
    let calls: LibcEntryCalls;
    try {
      const lib = dlopen(name, {
        statx: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
        openat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
      });
      calls = new LibcEntryCalls(lib.symbols as unknown as LibcSymbols);
    } catch {
      continue;
    }
    // One look at the root both ways: a statx refused (ENOSYS under an old kernel or a
    // sandbox) or a layout not as expected leaves node:fs in charge.
    try {
      const root = openSync("/", constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        const expected = EntryStat.fromBigIntStats(fstatSync(root, { bigint: true }));
        const seen = calls.fstat(root);
        if (seen.mode === expected.mode && seen.sameFile(expected) && seen.mtimeNs === expected.mtimeNs && seen.ctimeNs === expected.ctimeNs) return calls;
      } finally {
        closeSync(root);
      }
    } catch {}
    return undefined;
  }
  return undefined;
}
