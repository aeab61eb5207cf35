// Directory handles inside a root, opened without following any link, and the one place where
// a directory's attributes (mode, mtime) are written.
//
// Setting attributes by path (chmod, utimes) follows every symlink on the way: a directory that
// a hostile tree or a local user swapped for a link to /etc would have its mode changed there.
// So attributes are only ever set on a handle (fchmod, futimes) to a directory reached from the
// root one component at a time, each opened with O_NOFOLLOW | O_DIRECTORY: a component that is
// a symlink (or anything but a directory) fails the open instead of being followed.
//
// Node has no openat(). On Linux (the target platform) `/proc/self/fd/<fd>/<name>` is resolved by
// the kernel as `<name>` inside the directory open as <fd>, which is openat(fd, name): the walk
// holds each directory by its handle, so swapping a parent for a link between two steps changes
// nothing. Where /proc is missing, each prefix is opened by path and the handle is checked
// against an lstat of the same prefix (device and inode); that leaves a small window against a
// concurrent local attacker, documented in docs/durability.md.
import { closeSync, constants, existsSync, fchmodSync, fstatSync, futimesSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { specialModeBits, syncedMode } from "../core/file-mode.ts";
import { splitRelativePath } from "../core/names.ts";

export class UnsafePathError extends Error {
  override name = "UnsafePathError";
}

const DIRECTORY_NO_FOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Whether `/proc/self/fd/<fd>/<name>` works as openat (Linux with /proc mounted). */
const HAS_PROC_FD = process.platform === "linux" && existsSync("/proc/self/fd");

/** The path the kernel resolves as `name` inside the directory open as `dirFd`. */
export function pathInHandle(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`;
}

/** Whether names can be resolved relative to a handle (see `pathInHandle`). */
export function handlesResolveNames(): boolean {
  return HAS_PROC_FD;
}

function refusal(error: unknown, path: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  // O_NOFOLLOW on a link gives ELOOP; O_DIRECTORY on a link or a file gives ENOTDIR.
  if (code === "ELOOP" || code === "ENOTDIR") {
    let link = code === "ELOOP";
    try {
      link = lstatSync(path).isSymbolicLink();
    } catch {}
    return new UnsafePathError(link ? `refusing to write through the symlink ${path}` : `${path} is in the way: expected a directory`);
  }
  return error as Error;
}

function openNoFollow(path: string): number {
  try {
    return openSync(path, DIRECTORY_NO_FOLLOW);
  } catch (error) {
    throw refusal(error, path);
  }
}

export interface OpenInsideOptions {
  /** Create missing directories on the way (mode 0o755), inside the handle of their parent. */
  create?: boolean;
  /** Told the absolute path of each directory that gained an entry by a creation. */
  onCreated?: (parent: string) => void;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * Opens root/relativeDir as a directory handle ("" for the root itself), never following a
 * link at any component. Throws UnsafePathError when a component is a link or not a directory
 * (ENOENT for a missing one, unless `create`). The caller closes the handle.
 */
export function openDirectoryInside(root: string, relativeDir: string, options: OpenInsideOptions = {}): number {
  const parts = relativeDir === "" ? [] : splitRelativePath(relativeDir);
  let fd = openNoFollow(root);
  let path = root;
  try {
    for (const part of parts) {
      const parent = path;
      path = join(path, part);
      const open = () => (HAS_PROC_FD ? openViaHandle(fd, part, path) : openCheckedByPath(path));
      let next: number;
      try {
        next = open();
      } catch (error) {
        if (!options.create || !isMissing(error)) throw error;
        mkdirSync(HAS_PROC_FD ? pathInHandle(fd, part) : path, { mode: 0o755 });
        options.onCreated?.(parent);
        next = open();
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function openViaHandle(dirFd: number, name: string, pathForErrors: string): number {
  try {
    return openSync(pathInHandle(dirFd, name), DIRECTORY_NO_FOLLOW);
  } catch (error) {
    throw refusal(error, pathForErrors);
  }
}

function openCheckedByPath(path: string): number {
  const fd = openNoFollow(path);
  const opened = fstatSync(fd);
  const seen = lstatSync(path);
  if (!seen.isDirectory() || seen.dev !== opened.dev || seen.ino !== opened.ino) {
    closeSync(fd);
    throw new UnsafePathError(`refusing to go through ${path}: it changed while being opened`);
  }
  return fd;
}

/** Paths longer than this (PATH_MAX is 4096 bytes on Linux, its NUL included) fail in one call. */
const PATH_BYTES_MAX = 4095;

/**
 * Runs `use` with a path the kernel takes in one call for `absolutePath`: the path itself when
 * short enough, else `/proc/self/fd/<fd>/<name>` after opening its parent one component at a
 * time. A tree path may be 4096 bytes by itself, so below a root it can pass PATH_MAX; handles
 * written to never care, and this lets the lstat, readdir and fsync by path around them work
 * too. It follows links like the plain path would: for looking and fsyncing, never writing.
 */
export function withShortPath<T>(absolutePath: string, use: (path: string) => T): T {
  if (Buffer.byteLength(absolutePath) <= PATH_BYTES_MAX || !HAS_PROC_FD) return use(absolutePath);
  const parts = absolutePath.split("/").filter((part) => part !== "");
  const name = parts.pop() ?? "";
  let fd = openSync("/", constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    for (const part of parts) {
      const next = openSync(pathInHandle(fd, part), constants.O_RDONLY | constants.O_DIRECTORY);
      closeSync(fd);
      fd = next;
    }
    return use(pathInHandle(fd, name));
  } finally {
    closeSync(fd);
  }
}

/** Runs `use` with a no-follow handle to root/relativeDir, closing it afterwards. */
export function withDirectoryInside<T>(root: string, relativeDir: string, use: (fd: number) => T): T {
  const fd = openDirectoryInside(root, relativeDir);
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Applies a directory's mode (permission bits) and mtime through a no-follow handle. Every directory attribute a
 * pull or materialize writes goes through here; nothing sets attributes by path.
 */
export function setDirectoryAttributes(root: string, relativeDir: string, mode: number, mtimeMs: number): void {
  withDirectoryInside(root, relativeDir, (fd) => {
    // The tree's permission bits; special bits only as the directory already has them (a
    // local setgid directory stays one), never from a tree (core/file-mode.ts).
    fchmodSync(fd, syncedMode(mode) | specialModeBits(fstatSync(fd).mode));
    futimesSync(fd, new Date(mtimeMs), new Date(mtimeMs));
  });
}
