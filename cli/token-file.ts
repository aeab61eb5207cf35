// A token kept in a file (--token-file, --cluster-token-file): its first line, trimmed, so the
// token stays out of the process list and the shell history. A file others can read is said
// (the token is a password); an unreadable, empty or oversized one is a usage error naming it.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { constants } from "node:fs";
import { UsageError } from "../src/client/sync-target.ts";
import { terminalLines } from "../src/core/terminal-text.ts";

/** A token file holds one short line: more than this is not a token file. */
export const TOKEN_FILE_BYTES_MAX = 64 * 1024;

export function readTokenFile(path: string, flag: string, warn: (line: string) => void = (line) => process.stderr.write(terminalLines([line]))): string {
  let fd: number;
  try {
    // Non-blocking, so a FIFO with no writer is refused below rather than waited on forever.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : code;
    throw new UsageError(`${flag} ${path}: cannot read it (${why})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UsageError(`${flag} ${path}: not a regular file`);
    if (stat.size > TOKEN_FILE_BYTES_MAX) throw new UsageError(`${flag} ${path}: ${stat.size} bytes is too long for a token file (its first line is the token)`);
    const buffer = Buffer.alloc(Math.min(stat.size, TOKEN_FILE_BYTES_MAX));
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, length);
      if (read === 0) break;
      length += read;
    }
    const token = buffer.subarray(0, length).toString("utf8").split(/\r?\n/, 1)[0]!.trim();
    if (token === "") throw new UsageError(`${flag} ${path}: the file is empty (the token is its first line)`);
    if ((stat.mode & 0o044) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(3, "0");
      warn(`dsync: warning: ${path} (${flag}) can be read by other users (mode ${mode}): chmod 600 ${path}`);
    }
    return token;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  } finally {
    closeSync(fd);
  }
}
