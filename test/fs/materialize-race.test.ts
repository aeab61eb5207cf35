// Writing trees against a racing local process that swaps directories (and a file) of the root
// for links out of it, in a loop: every write, rename, removal and attribute change names its
// entry through a held parent handle, so nothing outside the root changes, whatever the timing.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { decodeObject } from "../../src/core/objects.ts";
import type { ObjectLoader } from "../../src/core/pages.ts";
import { readEntryChunks, readTreeEntries } from "../../src/core/pages.ts";
import { ensureDirectory, materializeTree, moveAsideInside, removeInside, setDirectoryAttributes, writeFileAtomic, writeSymlinkAtomic } from "../../src/fs/materialize.ts";
import { scanDirectory } from "../../src/fs/scanner.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { startPathSwapper } from "../helpers/path-swapper.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const OLD_MS = 1_600_000_000_000;

/** Every entry below dir with its kind, mode, mtime and content: a snapshot to compare. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string, rel: string) => {
    for (const name of readdirSync(path).sort()) {
      const child = join(path, name);
      const stats = lstatSync(child);
      const content = stats.isFile() ? readFileSync(child, "utf8") : "";
      out.push(`${rel}${name} ${stats.mode.toString(8)} ${stats.mtimeMs} ${content}`);
      if (stats.isDirectory()) walk(child, `${rel}${name}/`);
    }
  };
  const stats = lstatSync(dir);
  out.push(`. ${stats.mode.toString(8)} ${stats.mtimeMs}`);
  walk(dir, "");
  return out;
}

test("directories and a file swapped for links out of the root while a tree is written, moved aside and removed: nothing outside changes", async () => {
  const outside = tempDir("dsync-outside-");
  for (const name of ["a", "b"]) {
    mkdirSync(join(outside, name));
    writeFileSync(join(outside, name, "f0.txt"), "outside\n");
    chmodSync(join(outside, name), 0o700);
    utimesSync(join(outside, name), new Date(OLD_MS), new Date(OLD_MS));
  }
  writeFileSync(join(outside, "file.txt"), "outside file\n");
  chmodSync(join(outside, "file.txt"), 0o600);
  utimesSync(join(outside, "file.txt"), new Date(OLD_MS), new Date(OLD_MS));
  const before = snapshot(outside);

  // The tree to write: a/ and b/ with files and a subdirectory each, and a top-level file.
  const source = tempDir();
  for (const name of ["a", "b"]) {
    mkdirSync(join(source, name, "sub"), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(source, name, `f${i}.txt`), `inside ${name} ${i}\n`);
    writeFileSync(join(source, name, "sub", "deep.txt"), "deep\n");
    chmodSync(join(source, name), 0o777);
  }
  writeFileSync(join(source, "top.txt"), "top\n");
  chmodSync(join(source, "top.txt"), 0o666);
  const store = new MemoryObjectStore();
  const { rootId } = await scanDirectory(source, {
    sink: { chunk: (id, bytes) => store.put(id, new Uint8Array(bytes)), object: (sealed) => store.put(sealed.id, sealed.bytes) },
  });
  const load: ObjectLoader = async (id: ObjectId) => {
    const bytes = await store.get(id);
    if (!bytes) throw new Error(`no object ${idToHex(id)}`);
    return decodeObject(bytes);
  };
  const chunks = { getChunks: async (ids: readonly ObjectId[]) => (await store.getMany(ids)).map((b) => b!) };

  const root = tempDir();
  await materializeTree(root, rootId, load, chunks);
  symlinkSync(join(outside, "a"), join(root, "a.link"));
  symlinkSync(join(outside, "b"), join(root, "b.link"));
  symlinkSync(join(outside, "file.txt"), join(root, "top.link"));
  const swapper = await startPathSwapper(4_000, [
    [join(root, "a"), join(root, "a.link")],
    [join(root, "b"), join(root, "b.link")],
    [join(root, "top.txt"), join(root, "top.link")],
  ]);
  let rounds = 0;
  try {
    const endMs = Date.now() + 3_000;
    while (Date.now() < endMs) {
      // Errors are expected (a parent that is a link is refused, one that is gone is missing):
      // only what happened outside matters.
      // Each entry by itself, so one refusal does not end the round.
      for (const top of await readTreeEntries(rootId, load)) {
        if (top.kind === "file") {
          await writeFileAtomic(root, top.name, { chunks: await readEntryChunks(top, load), source: chunks, mode: top.mode, mtimeMs: top.mtimeMs }).catch(() => {});
          continue;
        }
        for (const entry of await readTreeEntries(top.id!, load)) {
          const path = `${top.name}/${entry.name}`;
          if (entry.kind === "file") {
            await writeFileAtomic(root, path, { chunks: await readEntryChunks(entry, load), source: chunks, mode: 0o666, mtimeMs: 0 }).catch(() => {});
          }
        }
        try {
          writeSymlinkAtomic(root, `${top.name}/new-link`, "/etc/passwd", 0);
        } catch {}
        try {
          ensureDirectory(root, `${top.name}/new-dir`);
        } catch {}
        try {
          setDirectoryAttributes(root, top.name, 0o777, 0);
        } catch {}
      }
      for (const path of ["a/f1.txt", "b/sub/deep.txt", "top.txt"]) {
        try {
          moveAsideInside(root, path, `moved-${rounds}`);
        } catch {}
      }
      for (const path of ["a/f2.txt", "b/f3.txt", "a/sub/deep.txt", "a/sub"]) {
        try {
          removeInside(root, path);
        } catch {}
      }
      rounds++;
    }
  } finally {
    await swapper.stop();
  }
  expect(rounds).toBeGreaterThan(3);
  expect(snapshot(outside)).toEqual(before);
}, 30_000);
