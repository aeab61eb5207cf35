// Writing trees back to disk: a scanned tree materializes into an identical tree (same root id
// on a re-scan), files are replaced atomically and verified chunk by chunk, nothing is ever
// written through a symlink or outside the root, and unsafe relative paths are refused.
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  fchmodSync,
  statSync,
  symlinkSync,
  utimesSync,
  lutimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { chunkLengths, DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from "../../src/core/fastcdc.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { splitRelativePath } from "../../src/core/names.ts";
import { decodeObject, encodeObject, type ChunkRef, type StructuredObject, type TreeEntry } from "../../src/core/objects.ts";
import type { ObjectLoader } from "../../src/core/pages.ts";
import { openDirectoryInside } from "../../src/fs/directory-handle.ts";
import {
  DirectorySyncer,
  ensureDirectory,
  materializeTree,
  moveAsideInside,
  prepareParents,
  removeInside,
  setDirectoryAttributes,
  UnsafePathError,
  writeFileAtomic,
  writeSymlinkAtomic,
  type ChunkSource,
  ChangedMeanwhileError,
  seenEntryAt,
  type SeenEntry,
} from "../../src/fs/materialize.ts";
import { scanDirectory, TEMP_FILE_PREFIX, type ScanSink } from "../../src/fs/scanner.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";

afterAll(cleanupTempDirs);

const SMALL: ChunkerParams = { minSizeBytes: 256, avgSizeBytes: 1024, maxSizeBytes: 4096 };
const MiB = 1024 * 1024;
const MTIME_MS = 1_650_000_000_321;
const LATE_NS = () => BigInt(Date.now() + 10_000) * 1_000_000n;

/** A scan sink that keeps chunks and nodes in a store, so the tree can be written back. */
function storeSink(store: MemoryObjectStore): ScanSink {
  return {
    chunk: (id, bytes) => store.put(id, bytes),
    object: (sealed) => store.put(sealed.id, sealed.bytes),
    hasObject: (id) => store.has(id),
  };
}

function storeLoader(store: MemoryObjectStore): ObjectLoader {
  return async (id) => {
    const bytes = await store.get(id);
    if (bytes === undefined) throw new Error(`no object ${idToHex(id)}`);
    return decodeObject(bytes);
  };
}

function storeSource(store: MemoryObjectStore): ChunkSource & { calls: number; batchBytes: number[] } {
  const source = {
    calls: 0,
    batchBytes: [] as number[],
    async getChunks(ids: readonly ObjectId[]): Promise<Uint8Array[]> {
      source.calls++;
      const found = await store.getMany(ids);
      const out = found.map((bytes, i) => {
        if (bytes === undefined) throw new Error(`no chunk ${idToHex(ids[i]!)}`);
        return bytes;
      });
      source.batchBytes.push(out.reduce((sum, b) => sum + b.length, 0));
      return out;
    },
  };
  return source;
}

async function scanInto(store: MemoryObjectStore, root: string, chunker: ChunkerParams = SMALL): Promise<ObjectId> {
  const result = await scanDirectory(root, { sink: storeSink(store), chunker, nowNs: LATE_NS });
  expect(result.skipped).toEqual([]);
  return result.rootId;
}

/** Every name below root that starts with the temp prefix: a clean write leaves none. */
function tempLeftovers(root: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (name.startsWith(TEMP_FILE_PREFIX)) out.push(path);
    if (lstatSync(path).isDirectory()) out.push(...tempLeftovers(path));
  }
  return out;
}

function setAllMtimes(root: string, ms: number): void {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) setAllMtimes(path, ms);
    if (stats.isSymbolicLink()) lutimesSync(path, new Date(ms), new Date(ms));
    else utimesSync(path, new Date(ms), new Date(ms));
  }
}

/** A file's chunks (cut with SMALL), stored in the store; returns the refs writeFileAtomic takes. */
async function storeChunks(store: MemoryObjectStore, data: Uint8Array, params: ChunkerParams = SMALL): Promise<ChunkRef[]> {
  const refs: ChunkRef[] = [];
  let offset = 0;
  for (const length of chunkLengths(data, params)) {
    const bytes = data.subarray(offset, offset + length);
    const id = blake3(bytes);
    await store.put(id, bytes);
    refs.push({ id, lengthBytes: length });
    offset += length;
  }
  return refs;
}

describe("materializeTree", () => {
  test("a scanned tree written back re-scans to the same root id (modes, mtimes, symlinks, empty dirs)", async () => {
    const source = tempDir();
    const shared = randomBytes(40_000, 11);
    writeTree(source, {
      "a.txt": "alpha\n",
      "big.bin": randomBytes(300_000, 12),
      "copy1.bin": shared,
      "empty.txt": "",
      "run.sh": { mode: 0o755, content: "#!/bin/sh\n" },
      "private.key": { mode: 0o600, content: "secret" },
      "setgid-ish": { mode: 0o2750, content: "odd mode bits" },
      docs: { "guide.md": "# guide\n", img: { "copy2.bin": shared }, "deep-empty": { deeper: {} } },
      locked: { "inside.txt": "in a read-only directory" },
      "empty-dir": {},
      links: {
        relative: { symlink: "../a.txt" },
        absolute: { symlink: "/etc/passwd" },
        dangling: { symlink: "no/such/target" },
        "to-dir": { symlink: "../docs" },
      },
    });
    chmodSync(join(source, "docs"), 0o750);
    chmodSync(join(source, "empty-dir"), 0o700);
    setAllMtimes(source, MTIME_MS);
    utimesSync(join(source, "a.txt"), new Date(MTIME_MS + 7), new Date(MTIME_MS + 7));
    lutimesSync(join(source, "links/relative"), new Date(MTIME_MS - 3), new Date(MTIME_MS - 3));
    utimesSync(join(source, "docs/deep-empty"), new Date(MTIME_MS - 11), new Date(MTIME_MS - 11));
    chmodSync(join(source, "locked"), 0o555);
    const out = join(tempDir(), "out");
    try {
      const store = new MemoryObjectStore();
      const rootId = await scanInto(store, source);
      await materializeTree(out, rootId, storeLoader(store), storeSource(store));

      expect(idToHex(await scanInto(store, out))).toBe(idToHex(rootId));
      // Special bits (setgid here) are not synced (core/file-mode.ts): apart from them, the copy is the source.
      chmodSync(join(source, "setgid-ish"), 0o750);
      expect(describeTree(out)).toEqual(describeTree(source));
      expect(tempLeftovers(out)).toEqual([]);
      // Spot checks of what the ids above already cover, for readable failures.
      expect(lstatSync(join(out, "run.sh")).mode & 0o7777).toBe(0o755);
      expect(lstatSync(join(out, "setgid-ish")).mode & 0o7777).toBe(0o750);
      expect(lstatSync(join(out, "locked")).mode & 0o7777).toBe(0o555);
      expect(lstatSync(join(out, "a.txt")).mtimeMs).toBe(MTIME_MS + 7);
      expect(lstatSync(join(out, "links/relative")).mtimeMs).toBe(MTIME_MS - 3);
      expect(lstatSync(join(out, "docs/deep-empty")).mtimeMs).toBe(MTIME_MS - 11);
      expect(lstatSync(join(out, "docs")).mtimeMs).toBe(MTIME_MS);
      expect(readlinkSync(join(out, "links/absolute"))).toBe("/etc/passwd");
      expect(lstatSync(join(out, "links/to-dir")).isSymbolicLink()).toBe(true);
      expect(readdirSync(join(out, "empty-dir"))).toEqual([]);
      expect(readFileSync(join(out, "big.bin")).equals(readFileSync(join(source, "big.bin")))).toBe(true);
    } finally {
      chmodSync(join(source, "locked"), 0o755);
      if (existsSync(join(out, "locked"))) chmodSync(join(out, "locked"), 0o755);
    }
  });

  test("over an existing directory: entries are replaced, whatever their type, and extra paths are left alone", async () => {
    const source = tempDir();
    writeTree(source, { "f.txt": "new", "was-dir": "now a file", "was-file": { "inner.txt": "now a directory" }, "was-link": { "x.txt": "x" } });
    setAllMtimes(source, MTIME_MS);
    const outside = tempDir();
    const out = tempDir();
    writeTree(out, {
      "f.txt": "old content",
      "was-dir": {},
      "was-file": "old file",
      "was-link": { symlink: outside },
      "extra.txt": "not in the tree",
    });
    const store = new MemoryObjectStore();
    const rootId = await scanInto(store, source);
    await materializeTree(out, rootId, storeLoader(store), storeSource(store));

    expect(readFileSync(join(out, "f.txt"), "utf8")).toBe("new");
    expect(readFileSync(join(out, "was-dir"), "utf8")).toBe("now a file");
    expect(readFileSync(join(out, "was-file/inner.txt"), "utf8")).toBe("now a directory");
    expect(lstatSync(join(out, "was-link")).isDirectory()).toBe(true);
    expect(readFileSync(join(out, "was-link/x.txt"), "utf8")).toBe("x");
    // The link was replaced, not written through.
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(out, "extra.txt"), "utf8")).toBe("not in the tree");
    expect(tempLeftovers(out)).toEqual([]);
  });

  test("a missing chunk fails the write and leaves no temp file", async () => {
    const source = tempDir();
    writeTree(source, { "a.txt": "some content" });
    const store = new MemoryObjectStore();
    const rootId = await scanInto(store, source);
    const empty: ChunkSource = { getChunks: async () => [] };
    const out = tempDir();
    await expect(materializeTree(out, rootId, storeLoader(store), empty)).rejects.toThrow();
    expect(readdirSync(out)).toEqual([]);
  });
});

describe("writeFileAtomic", () => {
  test("writes content, mode and mtime, creates missing parents, and leaves no temp file", async () => {
    const root = tempDir();
    const store = new MemoryObjectStore();
    const data = randomBytes(50_000, 21);
    const chunks = await storeChunks(store, data);
    await writeFileAtomic(root, "a/b/c.bin", { chunks, source: storeSource(store), mode: 0o751, mtimeMs: MTIME_MS });
    const path = join(root, "a/b/c.bin");
    expect(readFileSync(path).equals(Buffer.from(data))).toBe(true);
    expect(lstatSync(path).mode & 0o7777).toBe(0o751);
    expect(lstatSync(path).mtimeMs).toBe(MTIME_MS);
    expect(lstatSync(join(root, "a")).isDirectory()).toBe(true);
    expect(tempLeftovers(root)).toEqual([]);
    expect(readdirSync(join(root, "a/b"))).toEqual(["c.bin"]);
  });

  test("an empty chunk list writes an empty file", async () => {
    const root = tempDir();
    await writeFileAtomic(root, "empty", { chunks: [], source: storeSource(new MemoryObjectStore()), mode: 0o644, mtimeMs: MTIME_MS });
    expect(readFileSync(join(root, "empty")).length).toBe(0);
    expect(readdirSync(root)).toEqual(["empty"]);
  });

  test("replaces an existing file atomically: a new inode, and a reader of the old file keeps the old bytes", async () => {
    const root = tempDir();
    const path = join(root, "f.txt");
    writeFileSync(path, "old old old");
    const oldInode = lstatSync(path).ino;
    const reader = openSync(path, "r");
    try {
      const store = new MemoryObjectStore();
      const chunks = await storeChunks(store, new TextEncoder().encode("brand new"));
      await writeFileAtomic(root, "f.txt", { chunks, source: storeSource(store), mode: 0o644, mtimeMs: MTIME_MS });
      expect(readFileSync(path, "utf8")).toBe("brand new");
      expect(lstatSync(path).ino).not.toBe(oldInode);
      const buffer = Buffer.alloc(64);
      const n = readSync(reader, buffer, 0, 64, 0);
      expect(buffer.subarray(0, n).toString()).toBe("old old old");
    } finally {
      closeSync(reader);
    }
    expect(readdirSync(root)).toEqual(["f.txt"]);
  });

  test("replaces an empty directory in the way", async () => {
    const root = tempDir();
    writeTree(root, { target: {} });
    const store = new MemoryObjectStore();
    const chunks = await storeChunks(store, new TextEncoder().encode("a file now"));
    await writeFileAtomic(root, "target", { chunks, source: storeSource(store), mode: 0o644, mtimeMs: MTIME_MS });
    expect(lstatSync(join(root, "target")).isFile()).toBe(true);
    expect(readFileSync(join(root, "target"), "utf8")).toBe("a file now");
    expect(readdirSync(root)).toEqual(["target"]);
  });

  test("never deletes a directory that still holds entries: the write is refused and everything in it stays", async () => {
    const root = tempDir();
    writeTree(root, { target: { "inner.txt": "i", sub: { "deep.txt": "d" } } });
    const store = new MemoryObjectStore();
    const chunks = await storeChunks(store, new TextEncoder().encode("a file now"));
    await expect(writeFileAtomic(root, "target", { chunks, source: storeSource(store), mode: 0o644, mtimeMs: MTIME_MS })).rejects.toBeInstanceOf(UnsafePathError);
    expect(() => writeSymlinkAtomic(root, "target", "elsewhere", MTIME_MS)).toThrow(UnsafePathError);
    expect(() => removeInside(root, "target")).toThrow(UnsafePathError);
    expect(readFileSync(join(root, "target/inner.txt"), "utf8")).toBe("i");
    expect(readFileSync(join(root, "target/sub/deep.txt"), "utf8")).toBe("d");
    expect(readdirSync(root)).toEqual(["target"]);
  });

  test("a symlink at the final name is replaced, never written through", async () => {
    const outside = tempDir();
    writeFileSync(join(outside, "victim.txt"), "untouched");
    const root = tempDir();
    symlinkSync(join(outside, "victim.txt"), join(root, "link"));
    const store = new MemoryObjectStore();
    const chunks = await storeChunks(store, new TextEncoder().encode("mine"));
    await writeFileAtomic(root, "link", { chunks, source: storeSource(store), mode: 0o644, mtimeMs: MTIME_MS });
    expect(lstatSync(join(root, "link")).isFile()).toBe(true);
    expect(readFileSync(join(root, "link"), "utf8")).toBe("mine");
    expect(readFileSync(join(outside, "victim.txt"), "utf8")).toBe("untouched");
  });

  test("a big file is fetched in bounded batches", async () => {
    const root = tempDir();
    const store = new MemoryObjectStore();
    const data = randomBytes(12 * MiB, 31);
    const chunks = await storeChunks(store, data, DEFAULT_CHUNKER_PARAMS);
    const source = storeSource(store);
    await writeFileAtomic(root, "big", { chunks, source, mode: 0o644, mtimeMs: MTIME_MS });
    expect(readFileSync(join(root, "big")).equals(Buffer.from(data))).toBe(true);
    expect(source.calls).toBeGreaterThan(1);
    for (const bytes of source.batchBytes) expect(bytes).toBeLessThan(LIMITS.batchBytesTarget + DEFAULT_CHUNKER_PARAMS.maxSizeBytes);
  });

  // Chunk sources that misbehave. In every case the write throws, the old file keeps its bytes,
  // mode and mtime, and no temp file is left.
  const bad: [string, (good: ChunkSource) => ChunkSource][] = [
    [
      "returns wrong bytes of the right length",
      (good) => ({
        async getChunks(ids) {
          const out = await good.getChunks(ids);
          return out.map((b, i) => (i === out.length - 1 ? b.map((x, j) => (j === 0 ? x ^ 1 : x)) : b));
        },
      }),
    ],
    ["returns a chunk one byte short", (good) => ({ getChunks: async (ids) => (await good.getChunks(ids)).map((b) => b.subarray(1)) })],
    ["returns a chunk one byte long", (good) => ({ getChunks: async (ids) => (await good.getChunks(ids)).map((b) => Buffer.concat([b, Buffer.from([0])])) })],
    ["returns another chunk's bytes", (good) => ({ getChunks: async (ids) => (await good.getChunks(ids)).reverse() })],
    ["returns too few chunks", (good) => ({ getChunks: async (ids) => (await good.getChunks(ids)).slice(1) })],
    [
      "fails on its second batch",
      (good) => {
        let calls = 0;
        return {
          async getChunks(ids) {
            if (++calls === 2) throw new Error("connection lost");
            return good.getChunks(ids);
          },
        };
      },
    ],
  ];
  test.each(bad)("a chunk source that %s: the write throws and the old file stays intact", async (_, wrap) => {
    const root = tempDir();
    const path = join(root, "f.bin");
    writeFileSync(path, "the old file");
    chmodSync(path, 0o640);
    utimesSync(path, new Date(MTIME_MS), new Date(MTIME_MS));
    const store = new MemoryObjectStore();
    // Big enough for two batches, with several distinct chunks in each.
    const data = randomBytes(LIMITS.batchBytesTarget + 300_000, 41);
    const chunks = await storeChunks(store, data, DEFAULT_CHUNKER_PARAMS);
    expect(chunks.length).toBeGreaterThan(4);
    const source = wrap(storeSource(store));
    await expect(writeFileAtomic(root, "f.bin", { chunks, source, mode: 0o644, mtimeMs: MTIME_MS + 1 })).rejects.toThrow();
    expect(readFileSync(path, "utf8")).toBe("the old file");
    expect(lstatSync(path).mode & 0o7777).toBe(0o640);
    expect(lstatSync(path).mtimeMs).toBe(MTIME_MS);
    expect(readdirSync(root)).toEqual(["f.bin"]);
  });

  test("a chunk source returning wrong bytes is reported with the chunk and the path", async () => {
    const root = tempDir();
    const store = new MemoryObjectStore();
    const chunks = await storeChunks(store, new TextEncoder().encode("expected bytes"));
    const liar: ChunkSource = { getChunks: async (ids) => ids.map(() => new TextEncoder().encode("EXPECTED BYTES")) };
    await expect(writeFileAtomic(root, "dir/x.txt", { chunks, source: liar, mode: 0o644, mtimeMs: MTIME_MS })).rejects.toThrow(
      new RegExp(`${idToHex(chunks[0]!.id)}.*dir/x\\.txt`),
    );
    expect(existsSync(join(root, "dir/x.txt"))).toBe(false);
    expect(tempLeftovers(root)).toEqual([]);
  });
});

describe("writeSymlinkAtomic and ensureDirectory", () => {
  test("a symlink replaces a file, a directory or another link, with its mtime, leaving no temp file", async () => {
    const root = tempDir();
    writeTree(root, { file: "f", dir: {}, link: { symlink: "old-target" } });
    for (const name of ["file", "dir", "link", "new"]) {
      writeSymlinkAtomic(root, name, `../target-of-${name}`, MTIME_MS);
      expect(readlinkSync(join(root, name))).toBe(`../target-of-${name}`);
      expect(lstatSync(join(root, name)).mtimeMs).toBe(MTIME_MS);
    }
    expect(readdirSync(root).sort()).toEqual(["dir", "file", "link", "new"]);
  });

  test("ensureDirectory keeps an existing directory's contents and replaces a file or link in the way", () => {
    const outside = tempDir();
    const root = tempDir();
    writeTree(root, { keep: { "x.txt": "x" }, file: "f", link: { symlink: outside } });
    for (const name of ["keep", "file", "link", "new"]) {
      const path = ensureDirectory(root, name);
      expect(path).toBe(join(root, name));
      expect(lstatSync(path).isDirectory()).toBe(true);
    }
    expect(readdirSync(join(root, "keep"))).toEqual(["x.txt"]);
    expect(readdirSync(join(root, "link"))).toEqual([]);
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe("never through a symlink, never outside the root", () => {
  async function chunksFor(text: string): Promise<{ chunks: ChunkRef[]; source: ChunkSource }> {
    const store = new MemoryObjectStore();
    return { chunks: await storeChunks(store, new TextEncoder().encode(text)), source: storeSource(store) };
  }

  const throughLink: [string, string, string][] = [
    ["a symlinked directory at the top", "evil", "evil/x"],
    ["a symlinked directory further down", "a/evil", "a/evil/x"],
    ["a symlinked directory with more below", "evil", "evil/b/c/x"],
  ];
  test.each(throughLink)("refuses %s: UnsafePathError, and the outside directory stays empty", async (_, linkPath, writePath) => {
    const outside = tempDir();
    const root = tempDir();
    mkdirSync(join(root, "a"));
    symlinkSync(outside, join(root, linkPath));
    const { chunks, source } = await chunksFor("should never land outside");

    await expect(writeFileAtomic(root, writePath, { chunks, source, mode: 0o644, mtimeMs: MTIME_MS })).rejects.toBeInstanceOf(UnsafePathError);
    expect(() => writeSymlinkAtomic(root, writePath, "/etc/passwd", MTIME_MS)).toThrow(UnsafePathError);
    expect(() => ensureDirectory(root, writePath)).toThrow(UnsafePathError);
    expect(() => prepareParents(root, writePath)).toThrow(UnsafePathError);
    expect(readdirSync(outside)).toEqual([]);
  });

  test("removeInside does not delete through a symlinked directory", () => {
    const outside = tempDir();
    writeFileSync(join(outside, "x"), "precious");
    const root = tempDir();
    symlinkSync(outside, join(root, "evil"));
    expect(() => removeInside(root, "evil/x")).toThrow(UnsafePathError);
    expect(readFileSync(join(outside, "x"), "utf8")).toBe("precious");
  });

  test("a symlink to a directory inside the root is refused as a parent too", async () => {
    const root = tempDir();
    mkdirSync(join(root, "real"));
    symlinkSync("real", join(root, "alias"));
    const { chunks, source } = await chunksFor("x");
    await expect(writeFileAtomic(root, "alias/x", { chunks, source, mode: 0o644, mtimeMs: MTIME_MS })).rejects.toBeInstanceOf(UnsafePathError);
    expect(readdirSync(join(root, "real"))).toEqual([]);
  });

  test("a file where a parent directory should be is refused", async () => {
    const root = tempDir();
    writeFileSync(join(root, "file"), "f");
    const { chunks, source } = await chunksFor("x");
    await expect(writeFileAtomic(root, "file/x", { chunks, source, mode: 0o644, mtimeMs: MTIME_MS })).rejects.toBeInstanceOf(UnsafePathError);
    expect(readFileSync(join(root, "file"), "utf8")).toBe("f");
  });

  test("prepareParents creates missing parents and names the final path", () => {
    const root = tempDir();
    const { absolutePath, parent } = prepareParents(root, "p/q/r.txt");
    expect(absolutePath).toBe(join(root, "p/q/r.txt"));
    expect(parent).toBe(join(root, "p/q"));
    expect(lstatSync(join(root, "p/q")).isDirectory()).toBe(true);
    expect(existsSync(absolutePath)).toBe(false);
  });

  const escapes = ["../escape", "a/../../escape", "/tmp/escape-absolute", "./escape", "a//escape", "a\\..\\escape"];
  test.each(escapes)("writing %j throws and writes nothing", async (path) => {
    const parent = tempDir();
    const root = join(parent, "root");
    mkdirSync(root);
    const { chunks, source } = await chunksFor("x");
    await expect(writeFileAtomic(root, path, { chunks, source, mode: 0o644, mtimeMs: MTIME_MS })).rejects.toThrow();
    expect(readdirSync(parent)).toEqual(["root"]);
    expect(readdirSync(root)).toEqual([]);
    expect(existsSync("/tmp/escape-absolute")).toBe(false);
  });
});

describe("splitRelativePath", () => {
  const rejected: [string, string][] = [
    ["..", "parent"],
    ["a/..", "parent at the end"],
    ["../a", "parent at the start"],
    ["a/../b", "parent in the middle"],
    [".", "current directory"],
    ["./a", "current directory at the start"],
    ["a/./b", "current directory in the middle"],
    ["/a", "absolute"],
    ["/", "root"],
    ["", "empty path"],
    ["a//b", "empty component"],
    ["a/", "trailing slash"],
    ["//a", "double leading slash"],
    ["a\0b", "NUL"],
    ["a/b\0", "NUL at the end"],
    ["a\\b", "backslash"],
    ["..\\x", "Windows-style parent"],
    ["a/" + "x".repeat(256), "a component longer than 255 bytes"],
    [Array.from({ length: 1100 }, () => "abc").join("/"), "a path longer than 4096 bytes"],
  ];
  test.each(rejected)("rejects %j (%s)", (path) => {
    expect(() => splitRelativePath(path)).toThrow();
  });

  const accepted: [string, string[]][] = [
    ["a", ["a"]],
    ["a/b/c", ["a", "b", "c"]],
    ["...", ["..."]],
    ["..a/a..", ["..a", "a.."]],
    [".hidden/.x", [".hidden", ".x"]],
    ["with space/tab\there", ["with space", "tab\there"]],
    ["ünïcødé/日本語", ["ünïcødé", "日本語"]],
    ["x".repeat(255), ["x".repeat(255)]],
  ];
  test.each(accepted)("accepts %j", (path, parts) => {
    expect(splitRelativePath(path)).toEqual(parts);
  });
});

describe("attributes only through no-follow handles", () => {
  const OLD_MS = 1_600_000_000_000;
  /** An outside file and directory with known modes and mtimes, to check nothing reached them. */
  function outsideTargets() {
    const outside = tempDir();
    const file = join(outside, "victim.txt");
    writeFileSync(file, "not yours\n");
    chmodSync(file, 0o600);
    utimesSync(file, new Date(OLD_MS), new Date(OLD_MS));
    const dir = join(outside, "victim-dir");
    mkdirSync(dir);
    chmodSync(dir, 0o700);
    utimesSync(dir, new Date(OLD_MS), new Date(OLD_MS));
    const unchanged = () => {
      for (const path of [file, dir]) {
        const stats = statSync(path);
        expect({ path, mode: stats.mode & 0o7777, mtimeMs: stats.mtimeMs }).toEqual({ path, mode: path === file ? 0o600 : 0o700, mtimeMs: OLD_MS });
      }
    };
    return { file, dir, unchanged };
  }

  test("setDirectoryAttributes refuses a link at the directory or at any parent; the targets keep their mode and mtime", () => {
    const targets = outsideTargets();
    const root = tempDir();
    mkdirSync(join(root, "real"));
    symlinkSync(targets.file, join(root, "to-file"));
    symlinkSync(targets.dir, join(root, "to-dir"));
    symlinkSync(targets.dir, join(root, "real", "nested-link"));
    for (const path of ["to-file", "to-dir", "real/nested-link"]) {
      expect(() => setDirectoryAttributes(root, path, 0o4777, 0)).toThrow(UnsafePathError);
    }
    // A parent that is a link: the walk never goes through it, even to a directory inside.
    mkdirSync(join(targets.dir, "inner"));
    utimesSync(targets.dir, new Date(OLD_MS), new Date(OLD_MS));
    expect(() => setDirectoryAttributes(root, "to-dir/inner", 0o4777, 0)).toThrow(UnsafePathError);
    expect(statSync(join(targets.dir, "inner")).mode & 0o7777).toBe(0o755);
    targets.unchanged();
  });

  test("a new link's mtime is its own: the outside file it points to keeps its mtime", () => {
    const targets = outsideTargets();
    const root = tempDir();
    writeSymlinkAtomic(root, "to-file", targets.file, MTIME_MS);
    writeSymlinkAtomic(root, "to-dir", targets.dir, MTIME_MS);
    expect(lstatSync(join(root, "to-file")).mtimeMs).toBe(MTIME_MS);
    targets.unchanged();
  });

  test("setDirectoryAttributes sets permission bits and mtime on a real directory; special bits only as the directory already has them", () => {
    const root = tempDir();
    mkdirSync(join(root, "a/b"), { recursive: true });
    setDirectoryAttributes(root, "a/b", 0o6750, MTIME_MS);
    expect(lstatSync(join(root, "a/b")).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(root, "a/b")).mtimeMs).toBe(MTIME_MS);
    chmodSync(join(root, "a/b"), 0o2700);
    setDirectoryAttributes(root, "a/b", 0o755, MTIME_MS);
    expect(lstatSync(join(root, "a/b")).mode & 0o7777).toBe(0o2755);
  });

  test("a write or removal given what was seen at the path refuses (ChangedMeanwhileError) when it changed since; the edit stays, no temp file", async () => {
    const root = tempDir();
    const bytes = new TextEncoder().encode("from the tree\n");
    const write = (path: string, replaces: SeenEntry) =>
      writeFileAtomic(root, path, { chunks: [{ id: blake3(bytes), lengthBytes: bytes.length }], source: { getChunks: async () => [bytes] }, mode: 0o644, mtimeMs: MTIME_MS, replaces });
    writeFileSync(join(root, "edited.txt"), "old\n");
    const seen = seenEntryAt(join(root, "edited.txt"));
    writeFileSync(join(root, "edited.txt"), "edited meanwhile\n");
    await expect(write("edited.txt", seen)).rejects.toThrow(ChangedMeanwhileError);
    expect(readFileSync(join(root, "edited.txt"), "utf8")).toBe("edited meanwhile\n");
    // Nothing seen there, something there now.
    writeFileSync(join(root, "created.txt"), "created meanwhile\n");
    await expect(write("created.txt", null)).rejects.toThrow(ChangedMeanwhileError);
    expect(readFileSync(join(root, "created.txt"), "utf8")).toBe("created meanwhile\n");
    expect(tempLeftovers(root)).toEqual([]);
    // Unchanged since seen: replaced; gone since seen: written.
    await write("edited.txt", seenEntryAt(join(root, "edited.txt")));
    expect(readFileSync(join(root, "edited.txt"), "utf8")).toBe("from the tree\n");
    await write("absent.txt", seen);
    expect(readFileSync(join(root, "absent.txt"), "utf8")).toBe("from the tree\n");
    const removalSeen = seenEntryAt(join(root, "created.txt"));
    writeFileSync(join(root, "created.txt"), "edited again\n");
    expect(() => removeInside(root, "created.txt", undefined, { seen: removalSeen })).toThrow(ChangedMeanwhileError);
    expect(readFileSync(join(root, "created.txt"), "utf8")).toBe("edited again\n");
    removeInside(root, "created.txt", undefined, { seen: seenEntryAt(join(root, "created.txt")) });
    expect(existsSync(join(root, "created.txt"))).toBe(false);
  });

  test("a file that is a hard link to a file outside the root is replaced, never written through", async () => {
    const root = tempDir();
    const outside = join(tempDir(), "victim.txt");
    writeFileSync(outside, "not yours\n");
    linkSync(outside, join(root, "linked.txt"));
    const bytes = new TextEncoder().encode("from the tree\n");
    await writeFileAtomic(root, "linked.txt", { chunks: [{ id: blake3(bytes), lengthBytes: bytes.length }], source: { getChunks: async () => [bytes] }, mode: 0o644, mtimeMs: MTIME_MS });
    expect(readFileSync(outside, "utf8")).toBe("not yours\n");
    expect(readFileSync(join(root, "linked.txt"), "utf8")).toBe("from the tree\n");
    expect(lstatSync(outside).nlink).toBe(1);
  });

  test("a file written from a tree never gets setuid, setgid or sticky bits", async () => {
    const root = tempDir();
    const bytes = new TextEncoder().encode("#!/bin/sh\n");
    const source: ChunkSource = { getChunks: async () => [bytes] };
    for (const mode of [0o4755, 0o2755, 0o1777, 0o7777]) {
      await writeFileAtomic(root, `f${mode.toString(8)}`, { chunks: [{ id: blake3(bytes), lengthBytes: bytes.length }], source, mode, mtimeMs: MTIME_MS });
      expect((lstatSync(join(root, `f${mode.toString(8)}`)).mode & 0o7777).toString(8)).toBe((mode & 0o777).toString(8));
    }
  });

  test("a handle keeps pointing inside the root when a parent is swapped for a link after it was opened", () => {
    const targets = outsideTargets();
    const root = tempDir();
    mkdirSync(join(root, "a"));
    const fd = openDirectoryInside(root, "a");
    try {
      // Swap a for a link to the outside directory: the handle is still the real a, moved aside.
      renameSync(join(root, "a"), join(root, "a-moved"));
      symlinkSync(targets.dir, join(root, "a"));
      fchmodSync(fd, 0o750);
    } finally {
      closeSync(fd);
    }
    expect(lstatSync(join(root, "a-moved")).mode & 0o7777).toBe(0o750);
    targets.unchanged();
  });

  test("a hostile paged tree naming one directory twice (a setuid directory and a link to an outside file) changes nothing outside", async () => {
    const targets = outsideTargets();
    const store = new MemoryObjectStore();
    const put = async (object: StructuredObject): Promise<ObjectId> => {
      const bytes = encodeObject(object);
      const id = blake3(bytes);
      await store.put(id, bytes);
      return id;
    };
    const content = new TextEncoder().encode("inside\n");
    const chunkId = blake3(content);
    await store.put(chunkId, content);
    const fileId = await put({ kind: "file", level: 0, sizeBytes: content.length, chunks: [{ id: chunkId, lengthBytes: content.length }] });
    const fileEntry = (name: string): TreeEntry => ({ name, kind: "file", mode: 0o644, mtimeMs: MTIME_MS, sizeBytes: content.length, id: fileId, target: null });
    const inner = await put({ kind: "tree", level: 0, entries: [fileEntry("new.txt")] });
    const asDir: TreeEntry = { name: "d", kind: "dir", mode: 0o4777, mtimeMs: 0, sizeBytes: 0, id: inner, target: null };
    const asLink: TreeEntry = { name: "d", kind: "symlink", mode: 0o777, mtimeMs: 0, sizeBytes: 0, id: null, target: targets.file };
    for (const pages of [[asDir, asLink], [asLink, asDir]]) {
      const first = await put({ kind: "tree", level: 0, entries: [fileEntry("a.txt"), pages[0]!] });
      const second = await put({ kind: "tree", level: 0, entries: [pages[1]!] });
      const rootId = await put({ kind: "tree", level: 1, pages: [{ id: first, firstName: "a.txt" }, { id: second, firstName: "d" }] });
      const out = tempDir();
      await materializeTree(out, rootId, storeLoader(store), storeSource(store)).catch((error) => {
        if (!(error instanceof UnsafePathError)) throw error;
      });
      targets.unchanged();
      expect(readFileSync(targets.file, "utf8")).toBe("not yours\n");
    }
  });
});

describe("removed directories leave the syncer", () => {
  test("removing a file and then its (now empty) directory: the flush syncs the parent, not the removed directory", () => {
    const root = tempDir();
    writeTree(root, { d: { "f.txt": "f", sub: {} } });
    const syncer = new DirectorySyncer();
    removeInside(root, "d/sub", syncer);
    removeInside(root, "d/f.txt", syncer);
    expect(syncer.pending().sort()).toEqual([join(root, "d")]);
    removeInside(root, "d", syncer);
    expect(syncer.pending()).toEqual([root]);
    expect(() => syncer.flush()).not.toThrow();
    expect(readdirSync(root)).toEqual([]);
  });

  test("a directory removed and made again in the same run is synced again, with what is below it", () => {
    const root = tempDir();
    writeTree(root, { d: { sub: {} } });
    const syncer = new DirectorySyncer();
    syncer.add(join(root, "d/sub"));
    syncer.removed(join(root, "d"), root);
    expect(syncer.pending()).toEqual([root]);
    syncer.add(join(root, "d/sub"));
    expect(syncer.pending().sort()).toEqual([root, join(root, "d/sub")]);
    expect(() => syncer.flush()).not.toThrow();
  });

  test("a directory moved aside takes its pending syncs with it", () => {
    const root = tempDir();
    writeTree(root, { d: { "f.txt": "f" } });
    const syncer = new DirectorySyncer();
    syncer.add(join(root, "d"));
    const keptAs = moveAsideInside(root, "d", "d.copy", syncer);
    expect(keptAs).toBe("d.copy");
    expect(syncer.pending()).toEqual([root]);
    expect(() => syncer.flush()).not.toThrow();
  });
});

describe("moveAsideInside", () => {
  test("never replaces what is at the copy's name (a file, a dangling link, a directory): it picks a free name", () => {
    const root = tempDir();
    writeTree(root, { "f.txt": "mine", "f.copy": "someone else's", "f.copy.1": { symlink: "dangling" }, "f.copy.2": { "x.txt": "x" } });
    expect(moveAsideInside(root, "f.txt", "f.copy")).toBe("f.copy.3");
    expect(readFileSync(join(root, "f.copy.3"), "utf8")).toBe("mine");
    expect(readFileSync(join(root, "f.copy"), "utf8")).toBe("someone else's");
    expect(readlinkSync(join(root, "f.copy.1"))).toBe("dangling");
    expect(readdirSync(join(root, "f.copy.2"))).toEqual(["x.txt"]);
    expect(existsSync(join(root, "f.txt"))).toBe(false);
  });

  test("moves a directory with everything in it, and refuses a path below a link", () => {
    const outside = tempDir();
    writeFileSync(join(outside, "x"), "outside");
    const root = tempDir();
    writeTree(root, { d: { "a.txt": "a", sub: { "b.txt": "b" } }, evil: { symlink: outside } });
    expect(moveAsideInside(root, "d", "d.copy")).toBe("d.copy");
    expect(readFileSync(join(root, "d.copy/sub/b.txt"), "utf8")).toBe("b");
    expect(() => moveAsideInside(root, "evil/x", "x.copy")).toThrow(UnsafePathError);
    expect(readdirSync(outside)).toEqual(["x"]);
  });
});

describe("repeated and all-zero chunks", () => {
  test("a file of one repeated zero chunk: that chunk is fetched once, the file is holes, the bytes read back right", async () => {
    const root = tempDir();
    const store = new MemoryObjectStore();
    const zero = new Uint8Array(DEFAULT_CHUNKER_PARAMS.maxSizeBytes);
    const zeroId = blake3(zero);
    await store.put(zeroId, zero);
    const data = randomBytes(10_000, 77);
    const dataId = blake3(data);
    await store.put(dataId, data);
    // 64 MiB of zeros with one data chunk in the middle, twice, and zeros at the end.
    const chunks: ChunkRef[] = [];
    for (let i = 0; i < 128; i++) chunks.push({ id: zeroId, lengthBytes: zero.length });
    chunks.push({ id: dataId, lengthBytes: data.length });
    for (let i = 0; i < 64; i++) chunks.push({ id: zeroId, lengthBytes: zero.length });
    chunks.push({ id: dataId, lengthBytes: data.length });
    for (let i = 0; i < 64; i++) chunks.push({ id: zeroId, lengthBytes: zero.length });
    const requested: string[] = [];
    const inner = storeSource(store);
    const source: ChunkSource = {
      getChunks: async (ids) => {
        requested.push(...ids.map(idToHex));
        return inner.getChunks(ids);
      },
    };
    await writeFileAtomic(root, "sparse.img", { chunks, source, mode: 0o644, mtimeMs: MTIME_MS });
    expect(requested.sort()).toEqual([idToHex(zeroId), idToHex(dataId)].sort());
    const path = join(root, "sparse.img");
    const sizeBytes = 256 * zero.length + 2 * data.length;
    const stats = statSync(path);
    expect(stats.size).toBe(sizeBytes);
    expect(stats.blocks * 512).toBeLessThan(1 * MiB);
    const back = readFileSync(path);
    const middle = 128 * zero.length;
    expect(back.subarray(middle, middle + data.length).equals(Buffer.from(data))).toBe(true);
    const second = middle + data.length + 64 * zero.length;
    expect(back.subarray(second, second + data.length).equals(Buffer.from(data))).toBe(true);
    expect(back.subarray(0, middle).every((b) => b === 0)).toBe(true);
    expect(back.subarray(second + data.length).every((b) => b === 0)).toBe(true);
  });
});
