// Directory trees on disk for end-to-end tests: write one from a literal, read one back as a
// comparable description (contents hashed, modes, symlink targets).
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";

export type DiskTree = { [name: string]: string | Uint8Array | { symlink: string } | { mode: number; content: string | Uint8Array } | DiskTree };

export function writeTree(root: string, tree: DiskTree): void {
  mkdirSync(root, { recursive: true });
  for (const [name, value] of Object.entries(tree)) {
    const path = join(root, name);
    if (typeof value === "string" || value instanceof Uint8Array) writeFileSync(path, value);
    else if ("symlink" in value && typeof value.symlink === "string") symlinkSync(value.symlink, path);
    else if ("mode" in value && "content" in value && typeof value.mode === "number") {
      writeFileSync(path, value.content as string | Uint8Array);
      chmodSync(path, value.mode);
    } else writeTree(path, value as DiskTree);
  }
}

/** A description of a directory: files as "mode:blake3", symlinks as "-> target", directories as objects. */
export function describeTree(root: string, skip: string[] = [".dsync"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of readdirSync(root).sort()) {
    if (skip.includes(name)) continue;
    const path = join(root, name);
    const stats = lstatSync(path);
    if (stats.isSymbolicLink()) out[name] = `-> ${readlinkSync(path)}`;
    else if (stats.isDirectory()) out[name] = { mode: (stats.mode & 0o777).toString(8), entries: describeTree(path, []) };
    else out[name] = `${(stats.mode & 0o777).toString(8)}:${idToHex(blake3(readFileSync(path)))}`;
  }
  return out;
}

export function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    // xorshift32: fast, seeded, good enough for test data that must not compress or dedupe.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
    out[i + 1] = (state >>> 8) & 0xff;
    out[i + 2] = (state >>> 16) & 0xff;
    out[i + 3] = (state >>> 24) & 0xff;
  }
  return out;
}
