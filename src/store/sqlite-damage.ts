// A damaged SQLite file: telling damage (a malformed page, not a database at all) from every
// other failure (a lock, a permission, an I/O error), and keeping the damaged file beside its
// replacement rather than deleting it.
import { basename, dirname, join } from "node:path";
import type { FileSystem } from "./file-system.ts";

/** The files SQLite keeps beside a WAL-mode database; they belong to it and move with it. */
const COMPANION_SUFFIXES = ["-wal", "-shm"] as const;

/** The object index turned out damaged while the store was open (a query failed on a damaged page). */
export class ObjectIndexDamagedError extends Error {
  override name = "ObjectIndexDamagedError";

  constructor(readonly path: string, readonly problem: string) {
    super(
      `the object index ${path} is damaged (${problem}); it is derived from the packs, so nothing is lost: ` +
        "restart the node, which moves the damaged index aside (keeping it) and rebuilds it from the packs",
    );
  }
}

/**
 * True for SQLite's own "this file is damaged" errors (SQLITE_CORRUPT and its extended codes,
 * SQLITE_NOTADB). Anything else (busy, locked, read-only, I/O, out of space) is not damage:
 * the file may be perfectly good, so nothing must be moved or rebuilt because of it.
 */
export function isSqliteDamage(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB");
}

/**
 * Renames `path` (and its -wal and -shm files, which hold part of its content) to
 * `<path>.damaged-<UTC time>`, never over an earlier one, and flushes the directory. Returns
 * the new path of the database file. Nothing is deleted: what is in it may still be wanted.
 * The database goes first: a crash after it leaves only companions without their database,
 * which `hasOrphanedCompanions` finds, so they are moved aside before a new database is made
 * (SQLite would otherwise replay the old log into the new file).
 */
export function moveAsideDamaged(files: FileSystem, path: string, nowMs: number): string {
  const dir = dirname(path);
  const present = new Set(files.readdir(dir));
  const name = basename(path);
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, "-");
  let target = `${name}.damaged-${stamp}`;
  for (let n = 2; [target, ...COMPANION_SUFFIXES.map((s) => target + s)].some((t) => present.has(t)); n++) target = `${name}.damaged-${stamp}-${n}`;
  if (present.has(name)) files.rename(path, join(dir, target));
  for (const suffix of COMPANION_SUFFIXES) {
    if (present.has(name + suffix)) files.rename(path + suffix, join(dir, target + suffix));
  }
  files.fsyncDirectory(dir);
  return join(dir, target);
}

/** A -wal or -shm file without its database: left by a move that was interrupted. */
export function hasOrphanedCompanions(files: FileSystem, path: string): boolean {
  const present = new Set(files.readdir(dirname(path)));
  const name = basename(path);
  return !present.has(name) && COMPANION_SUFFIXES.some((suffix) => present.has(name + suffix));
}
