// What a name in a tree may be. The same rules run on the scanner (what we store), on the
// server (what we accept) and on the client (what we write), so a hostile peer cannot make
// anyone write outside the directory it syncs.
import { LIMITS } from "./limits.ts";

/** Returns why a single path component is unacceptable, or undefined when it is fine. */
export function validateName(name: string): string | undefined {
  if (name.length === 0) return "empty name";
  if (name === "." || name === "..") return `the name ${JSON.stringify(name)} is reserved`;
  if (name.includes("/")) return "a name must not contain '/'";
  // A backslash is a separator on Windows: a name like "..\\x" would escape a Windows root.
  if (name.includes("\\")) return "a name must not contain '\\'";
  if (name.includes("\0")) return "a name must not contain NUL";
  if (Buffer.byteLength(name) > LIMITS.nameLengthBytesMax) return `a name must be at most ${LIMITS.nameLengthBytesMax} bytes`;
  if (!name.isWellFormed()) return "a name must be valid Unicode";
  return undefined;
}

export function validateSymlinkTarget(target: string): string | undefined {
  if (target.length === 0) return "empty symlink target";
  if (target.includes("\0")) return "a symlink target must not contain NUL";
  if (Buffer.byteLength(target) > LIMITS.symlinkTargetLengthBytesMax) return "symlink target too long";
  return undefined;
}

/** Splits a relative '/'-separated path into validated components; throws on anything unsafe. */
export function splitRelativePath(path: string): string[] {
  if (Buffer.byteLength(path) > LIMITS.pathLengthBytesMax) throw new Error(`path longer than ${LIMITS.pathLengthBytesMax} bytes`);
  if (path.startsWith("/")) throw new Error(`absolute path not allowed: ${JSON.stringify(path)}`);
  const parts = path.split("/");
  for (const part of parts) {
    const problem = validateName(part);
    if (problem) throw new Error(`bad path ${JSON.stringify(path)}: ${problem}`);
  }
  return parts;
}

/**
 * Folder names: a conservative set that is safe in URLs, in file names on every system and on a
 * terminal: ASCII letters, digits, '.', '_' and '-', 1 to 128 of them, and not "." or "..". So
 * no separator, no control character (C0, DEL, C1), no bidirectional override and no space can
 * ever be part of one. The same rule runs on every route of the node and in the client before
 * it sends a name or trusts one a node sent.
 */
export function validateFolderName(name: string): string | undefined {
  if (name.length === 0) return "a folder name cannot be empty";
  if (name.length > LIMITS.folderNameLengthBytesMax) return `a folder name is at most ${LIMITS.folderNameLengthBytesMax} characters`;
  if (name === "." || name === "..") return "a folder name cannot be '.' or '..'";
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return "a folder name uses only letters, digits, '.', '_' and '-'";
  return undefined;
}

/** A version as a client names one: its full id, or an abbreviation of at least 4 hex digits. */
export function validateVersionRef(text: string): string | undefined {
  if (!/^[0-9a-fA-F]{4,64}$/.test(text)) return "a version is named by its id or a prefix of it: 4 to 64 hex digits";
  return undefined;
}
