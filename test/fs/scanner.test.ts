// The scanner on real temporary directories: what a scan stores (entries, modes, mtimes,
// symlinks, empty files and directories), what it leaves out (ignored, excluded, unsafe and
// special files), the stat cache, the chunks it hands over, its memory use on a big file, and
// paging of a big directory.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  closeSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  lutimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { chunkLengths, type ChunkerParams } from "../../src/core/fastcdc.ts";
import { idEquals, idToHex, type ObjectId } from "../../src/core/id.ts";
import { compareNames, decodeObject, encodeObject, isTreeLeaf, type StructuredObject, type TreeEntry } from "../../src/core/objects.ts";
import { buildFileNodes, buildTreeNodes, FileNodeBuilder, readEntryChunks, readFileChunks, readTreeEntries, type ObjectLoader, type SealedObject } from "../../src/core/pages.ts";
import { scanDirectory, TEMP_FILE_PREFIX, type ScanOptions, type ScanResult, type ScanSink } from "../../src/fs/scanner.ts";
import { RACY_WINDOW_NS, SqliteStatCache } from "../../src/fs/stat-cache.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";
import { randomBytes, writeTree, type DiskTree } from "../helpers/trees.ts";

afterAll(cleanupTempDirs);

/** Small chunks, so a few hundred KiB give many of them. */
const SMALL: ChunkerParams = { minSizeBytes: 256, avgSizeBytes: 1024, maxSizeBytes: 4096 };
const MiB = 1024 * 1024;
const MTIME_MS = 1_600_000_000_123;
/** A scan start far after every file here was written, so nothing is racily clean. */
const LATE_NS = () => BigInt(Date.now() + 10_000) * 1_000_000n;

/** Keeps everything a scan hands over: objects by id, chunk copies by id, and every chunk call in order. */
class CollectingSink implements ScanSink {
  readonly objects = new Map<string, Uint8Array>();
  readonly chunks = new Map<string, Uint8Array>();
  readonly chunkCalls: { id: ObjectId; bytes: Uint8Array }[] = [];
  readonly chunkBuffers = new Set<ArrayBufferLike>();
  /** When set, hasObject answers this; when unset, it answers from what was stored. */
  hasObjectAnswer: boolean | undefined;

  chunk(id: ObjectId, bytes: Uint8Array): void {
    this.chunkBuffers.add(bytes.buffer);
    const copy = new Uint8Array(bytes);
    this.chunks.set(idToHex(id), copy);
    this.chunkCalls.push({ id, bytes: copy });
  }

  object(sealed: SealedObject): void {
    this.objects.set(idToHex(sealed.id), new Uint8Array(sealed.bytes));
  }

  hasObject(id: ObjectId): boolean {
    return this.hasObjectAnswer ?? this.objects.has(idToHex(id));
  }

  readonly load: ObjectLoader = async (id) => {
    const bytes = this.objects.get(idToHex(id));
    if (bytes === undefined) throw new Error(`no object ${idToHex(id)}`);
    return decodeObject(bytes);
  };

  node(id: ObjectId): StructuredObject {
    return decodeObject(this.objects.get(idToHex(id))!);
  }

  async fileBytes(entry: TreeEntry): Promise<Uint8Array> {
    const parts = (await readEntryChunks(entry, this.load)).map((c) => {
      const bytes = this.chunks.get(idToHex(c.id));
      if (bytes === undefined) throw new Error(`chunk ${idToHex(c.id)} never reached the sink`);
      return bytes;
    });
    return new Uint8Array(Buffer.concat(parts));
  }
}

async function scan(root: string, options: Partial<ScanOptions> = {}): Promise<{ result: ScanResult; sink: CollectingSink }> {
  const sink = (options.sink as CollectingSink | undefined) ?? new CollectingSink();
  const result = await scanDirectory(root, { nowNs: LATE_NS, ...options, sink });
  return { result, sink };
}

/** Every path below a tree as "kind mode size" or "link -> target", for whole-tree comparisons. */
async function flatten(sink: CollectingSink, treeId: ObjectId, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readTreeEntries(treeId, sink.load)) {
    const path = prefix + entry.name;
    if (entry.kind === "dir") {
      out[path] = `dir ${entry.mode.toString(8)}`;
      Object.assign(out, await flatten(sink, entry.id!, path + "/"));
    } else if (entry.kind === "symlink") out[path] = `link -> ${entry.target}`;
    else out[path] = `file ${entry.mode.toString(8)} ${entry.sizeBytes}`;
  }
  return out;
}

async function entryAt(sink: CollectingSink, rootId: ObjectId, path: string): Promise<TreeEntry | undefined> {
  let current = rootId;
  const parts = path.split("/");
  for (let i = 0; i < parts.length; i++) {
    const entry = (await readTreeEntries(current, sink.load)).find((e) => e.name === parts[i]);
    if (!entry || i === parts.length - 1) return entry;
    current = entry.id!;
  }
  return undefined;
}

/** Sets every mtime below root (children before their directory, links themselves) to ms. */
function setAllMtimes(root: string, ms: number): void {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) setAllMtimes(path, ms);
    if (stats.isSymbolicLink()) lutimesSync(path, new Date(ms), new Date(ms));
    else utimesSync(path, new Date(ms), new Date(ms));
  }
}

const SAMPLE: DiskTree = {
  "a.txt": "alpha\n",
  "b.bin": randomBytes(20_000, 7),
  "empty.txt": "",
  "run.sh": { mode: 0o755, content: "#!/bin/sh\necho hi\n" },
  docs: { "guide.md": "# guide\n", img: { "logo.png": randomBytes(3_000, 9) } },
  "empty-dir": {},
  link: { symlink: "a.txt" },
};

function writeSample(): string {
  const root = tempDir();
  writeTree(root, SAMPLE);
  setAllMtimes(root, MTIME_MS);
  return root;
}

const HAS_MKFIFO = Bun.which("mkfifo") !== null;

async function mkfifo(path: string): Promise<void> {
  const proc = Bun.spawn(["mkfifo", path], { stdout: "ignore", stderr: "pipe" });
  if ((await proc.exited) !== 0) throw new Error(`mkfifo failed: ${await new Response(proc.stderr).text()}`);
}

describe("root id", () => {
  test("is deterministic: two identical trees written separately scan to the same id", async () => {
    const one = writeSample();
    const two = writeSample();
    const a = await scan(one);
    const b = await scan(two);
    const again = await scan(one);
    expect(idToHex(b.result.rootId)).toBe(idToHex(a.result.rootId));
    expect(idToHex(again.result.rootId)).toBe(idToHex(a.result.rootId));
    expect(a.result.skipped).toEqual([]);
  });

  const mutations: [string, (root: string) => void][] = [
    [
      "one byte of a file (same size, same mtime)",
      (root) => {
        const path = join(root, "b.bin");
        const bytes = readFileSync(path);
        bytes[12_345] ^= 1;
        writeFileSync(path, bytes);
        utimesSync(path, new Date(MTIME_MS), new Date(MTIME_MS));
      },
    ],
    [
      "one byte of a file deep down",
      (root) => {
        const path = join(root, "docs/img/logo.png");
        const bytes = readFileSync(path);
        bytes[0] ^= 0x80;
        writeFileSync(path, bytes);
        utimesSync(path, new Date(MTIME_MS), new Date(MTIME_MS));
      },
    ],
    ["the exec bit", (root) => chmodSync(join(root, "a.txt"), 0o755)],
    ["a directory's mode", (root) => chmodSync(join(root, "docs"), 0o700)],
    ["a file's mtime by 1 ms", (root) => utimesSync(join(root, "a.txt"), new Date(MTIME_MS + 1), new Date(MTIME_MS + 1))],
    [
      "a symlink's target",
      (root) => {
        unlinkSync(join(root, "link"));
        symlinkSync("b.bin", join(root, "link"));
        lutimesSync(join(root, "link"), new Date(MTIME_MS), new Date(MTIME_MS));
      },
    ],
    [
      "an empty file added",
      (root) => {
        writeFileSync(join(root, "docs/new"), "");
        setAllMtimes(root, MTIME_MS);
      },
    ],
    [
      "an empty directory added",
      (root) => {
        mkdirSync(join(root, "empty-dir/inner"));
        setAllMtimes(root, MTIME_MS);
      },
    ],
    [
      "a file renamed",
      (root) => {
        renameSync(join(root, "a.txt"), join(root, "A.txt"));
        setAllMtimes(root, MTIME_MS);
      },
    ],
  ];
  test.each(mutations)("changes with %s", async (_, mutate) => {
    const root = writeSample();
    const before = await scan(root);
    mutate(root);
    const after = await scan(root);
    expect(idToHex(after.result.rootId)).not.toBe(idToHex(before.result.rootId));
  });
});

describe("entries", () => {
  test("files, directories, symlinks, modes, mtimes and sizes are recorded as on disk", async () => {
    const root = writeSample();
    chmodSync(join(root, "a.txt"), 0o600);
    chmodSync(join(root, "docs"), 0o750);
    // An mtime with a sub-millisecond part is recorded in whole milliseconds, rounded down.
    utimesSync(join(root, "a.txt"), 1_500_000_000, 1_500_000_000.9876);
    setAllMtimes(join(root, "docs"), MTIME_MS);
    utimesSync(join(root, "docs"), new Date(MTIME_MS - 5), new Date(MTIME_MS - 5));
    const { result, sink } = await scan(root);

    expect(await flatten(sink, result.rootId)).toEqual({
      "a.txt": "file 600 6",
      "b.bin": "file 644 20000",
      docs: "dir 750",
      "docs/guide.md": "file 644 8",
      "docs/img": "dir 755",
      "docs/img/logo.png": "file 644 3000",
      "empty-dir": "dir 755",
      "empty.txt": "file 644 0",
      link: "link -> a.txt",
      "run.sh": "file 755 18",
    });
    expect((await entryAt(sink, result.rootId, "a.txt"))!.mtimeMs).toBe(1_500_000_000_987);
    expect((await entryAt(sink, result.rootId, "docs"))!.mtimeMs).toBe(MTIME_MS - 5);
    expect((await entryAt(sink, result.rootId, "docs/img/logo.png"))!.mtimeMs).toBe(MTIME_MS);
    expect((await entryAt(sink, result.rootId, "link"))!.mtimeMs).toBe(MTIME_MS);

    const link = (await entryAt(sink, result.rootId, "link"))!;
    expect(link).toMatchObject({ kind: "symlink", id: null, sizeBytes: 0, target: "a.txt" });

    // An empty file is a file node with no chunks; an empty directory is an empty tree node.
    const emptyFile = (await entryAt(sink, result.rootId, "empty.txt"))!;
    expect(idToHex(emptyFile.id!)).toBe(idToHex(buildFileNodes([]).at(-1)!.id));
    const emptyDir = (await entryAt(sink, result.rootId, "empty-dir"))!;
    expect(idToHex(emptyDir.id!)).toBe(idToHex(buildTreeNodes([]).at(-1)!.id));

    // Contents round-trip through the sink's chunks.
    for (const path of ["a.txt", "b.bin", "run.sh", "docs/img/logo.png"]) {
      const entry = (await entryAt(sink, result.rootId, path))!;
      expect(Buffer.from(await sink.fileBytes(entry)).equals(readFileSync(join(root, path)))).toBe(true);
    }

    expect(result).toMatchObject({ files: 6, directories: 3, symlinks: 1, totalBytes: 6 + 20_000 + 18 + 8 + 3_000, filesRead: 6, filesFromCache: 0 });
    expect(result.bytesRead).toBe(result.totalBytes);
    expect(result.skipped).toEqual([]);
  });

  test("the id of a file is the id of its chunk list, and equal files share it", async () => {
    const root = tempDir();
    const data = randomBytes(50_000, 3);
    writeTree(root, { one: data, dir: { two: data } });
    const { result, sink } = await scan(root, { chunker: SMALL });
    const one = (await entryAt(sink, result.rootId, "one"))!;
    const two = (await entryAt(sink, result.rootId, "dir/two"))!;
    expect(idToHex(one.id!)).toBe(idToHex(two.id!));
    const refs = [];
    let offset = 0;
    for (const length of chunkLengths(data, SMALL)) {
      refs.push({ id: blake3(data.subarray(offset, offset + length)), lengthBytes: length });
      offset += length;
    }
    expect(idToHex(one.id!)).toBe(idToHex(buildFileNodes(refs).at(-1)!.id));
  });

  describe("symlinks are stored with their target and never followed", () => {
    test("links to an outside directory, /etc/passwd, a missing path and themselves", async () => {
      const outside = tempDir();
      writeTree(outside, { "secret.txt": "outside secret", inner: { "deep.txt": "deeper secret" } });
      const root = tempDir();
      writeTree(root, {
        "real.txt": "real",
        out: { symlink: outside },
        passwd: { symlink: "/etc/passwd" },
        dangling: { symlink: "does/not/exist" },
        loop: { symlink: "loop" },
        up: { symlink: "../.." },
      });
      const { result, sink } = await scan(root);

      expect(await flatten(sink, result.rootId)).toEqual({
        dangling: "link -> does/not/exist",
        loop: "link -> loop",
        out: `link -> ${outside}`,
        passwd: "link -> /etc/passwd",
        "real.txt": "file 644 4",
        up: "link -> ../..",
      });
      expect(result).toMatchObject({ files: 1, directories: 0, symlinks: 5, totalBytes: 4, bytesRead: 4 });
      // Nothing from the outside directory (or /etc/passwd) was read or stored.
      const seen = [...sink.chunks.values()].map((b) => Buffer.from(b).toString());
      expect(seen).toEqual(["real"]);
      expect(result.skipped).toEqual([]);
    });
  });

  test("a name that fails validateName is reported in skipped and not stored", async () => {
    const root = tempDir();
    writeTree(root, { "a\\b": "backslash", "ok.txt": "fine", sub: { "c\\d": { "inside.txt": "x" }, "e.txt": "e" } });
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({ "ok.txt": "file 644 4", sub: "dir 755", "sub/e.txt": "file 644 1" });
    expect(result.skipped.map((s) => s.path).sort()).toEqual(["a\\b", "sub/c\\d"]);
    for (const s of result.skipped) expect(s.reason).toContain("\\");
    expect(result.files).toBe(2);
  });

  test("a name that is not valid UTF-8 is reported in skipped and not stored", async () => {
    const root = tempDir();
    writeFileSync(join(root, "ok.txt"), "ok");
    writeFileSync(Buffer.concat([Buffer.from(root + "/bad-"), Buffer.from([0xff, 0xfe])]), "bad");
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({ "ok.txt": "file 644 2" });
    expect(result.skipped).toHaveLength(1);
    expect(result.skipped[0]!.path.startsWith("bad-")).toBe(true);
  });

  test("a name that is not UTF-8 beside the file its lossy decoding names: both seen, the bad one skipped by itself, escaped", async () => {
    const root = tempDir();
    mkdirSync(join(root, "dir"));
    // x\xff.txt decodes lossily to x\uFFFD.txt, the exact name of the file beside it.
    writeFileSync(Buffer.concat([Buffer.from(join(root, "dir") + "/x"), Buffer.from([0xff]), Buffer.from(".txt")]), "not utf-8");
    writeFileSync(join(root, "dir", "x\uFFFD.txt"), "the real replacement-character file");
    writeFileSync(join(root, "dir", "z.txt"), "z");
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({ dir: "dir 755", "dir/x\uFFFD.txt": "file 644 35", "dir/z.txt": "file 644 1" });
    // The stored file is the real one, not the one a lossy path would have opened.
    const entry = (await entryAt(sink, result.rootId, "dir/x\uFFFD.txt"))!;
    expect(Buffer.from(await sink.fileBytes(entry)).toString()).toBe("the real replacement-character file");
    expect(result.skipped).toEqual([{ path: "dir/x\\xff.txt", reason: "the name is not valid UTF-8; not synced", cause: "unsupported" }]);
    // No tree can hold that name: there is nothing to keep in its place.
    expect(result.notRead).toEqual([]);
  });

  test("names differing only by Unicode normalization or by case are distinct entries, not an error", async () => {
    const root = tempDir();
    const nfc = "caf\u00e9.txt";
    const nfd = "cafe\u0301.txt";
    writeTree(root, { [nfc]: "nfc", [nfd]: "nfd", "Readme.md": "upper", "readme.md": "lower" });
    const { result, sink } = await scan(root);
    expect(Object.keys(await flatten(sink, result.rootId)).sort()).toEqual([nfc, nfd, "Readme.md", "readme.md"].sort());
    expect(result.skipped).toEqual([]);
  });

  test("a link whose target is not valid UTF-8 is skipped, not stored with a lossy target", async () => {
    const root = tempDir();
    symlinkSync(Buffer.concat([Buffer.from("to-"), Buffer.from([0xfe])]), join(root, "bad-link"));
    symlinkSync("a.txt", join(root, "good-link"));
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({ "good-link": "link -> a.txt" });
    expect(result.skipped).toEqual([{ path: "bad-link", reason: "the link target to-\\xfe is not valid UTF-8", cause: "unsupported" }]);
  });

  test("notRead lists every ignored, unsupported and unreadable path a tree can hold, and nothing below them", async () => {
    const root = tempDir();
    writeTree(root, { ".dsyncignore": "*.bin\ncache/\n", "a.txt": "a", "x.bin": "x", cache: { "c.txt": "c" }, sub: { "y.bin": "y", "a\\b": "bad name" } });
    if (HAS_MKFIFO) await mkfifo(join(root, "sub", "pipe"));
    const { result } = await scan(root);
    const notRead = [...result.notRead].sort((x, y) => (x.path < y.path ? -1 : 1));
    expect(notRead).toEqual([
      { path: "cache", cause: "ignored" },
      ...(HAS_MKFIFO ? [{ path: "sub/pipe", cause: "unsupported" as const }] : []),
      { path: "sub/y.bin", cause: "ignored" },
      { path: "x.bin", cause: "ignored" },
    ]);
  });

  test("a sink that fails while a file is read fails the scan; it does not make the file look unreadable", async () => {
    const root = tempDir();
    writeTree(root, { "a.txt": "some bytes" });
    const sink = new CollectingSink();
    sink.chunk = () => {
      throw new Error("cache is full");
    };
    await expect(scan(root, { sink })).rejects.toThrow("cache is full");
  });

  test("a FIFO is skipped with a reason, and never opened", async () => {
    const root = tempDir();
    writeTree(root, { "a.txt": "a", sub: {} });
    await mkfifo(join(root, "pipe"));
    await mkfifo(join(root, "sub/pipe2"));
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({ "a.txt": "file 644 1", sub: "dir 755" });
    expect(result.skipped.map((s) => s.path).sort()).toEqual(["pipe", "sub/pipe2"]);
    for (const s of result.skipped) expect(s.reason).toMatch(/not a regular file/);
  });

  test("a FIFO named .dsyncignore is skipped, not read (reading it would block)", async () => {
    const root = tempDir();
    writeTree(root, { "a.txt": "a" });
    const fifo = join(root, ".dsyncignore");
    await mkfifo(fifo);
    // Should the scan block reading the FIFO, this writer unblocks it after a second with rules
    // that ignore everything, so the test fails instead of hanging.
    const writer = Bun.spawn(["sh", "-c", `sleep 1; printf '*\\n' > "${fifo}"`], { stdout: "ignore", stderr: "ignore" });
    try {
      const { result, sink } = await scan(root);
      expect(await flatten(sink, result.rootId)).toEqual({ "a.txt": "file 644 1" });
      expect(result.skipped.length).toBeGreaterThanOrEqual(1);
      expect(result.skipped.every((s) => s.path === ".dsyncignore")).toBe(true);
    } finally {
      writer.kill();
      await writer.exited;
    }
  });

  test("temp names starting with .dsync-tmp- are ignored at every level, silently", async () => {
    const root = tempDir();
    writeTree(root, {
      [`${TEMP_FILE_PREFIX}0123abcd`]: "half-written",
      "keep.txt": "k",
      sub: { [`${TEMP_FILE_PREFIX}ffff`]: "x", [`${TEMP_FILE_PREFIX}dir`]: { "f": "y" }, "also.txt": "a", ".dsync-tmpX": "not the prefix" },
    });
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({
      "keep.txt": "file 644 1",
      sub: "dir 755",
      "sub/.dsync-tmpX": "file 644 14",
      "sub/also.txt": "file 644 1",
    });
    expect(result.skipped).toEqual([]);
  });

  test("excludeTopLevel leaves out '.dsync' at the top only", async () => {
    const root = tempDir();
    writeTree(root, { ".dsync": { "state.db": "state" }, "a.txt": "a", sub: { ".dsync": { "x": "kept" } } });
    const excluded = await scan(root, { excludeTopLevel: [".dsync"] });
    expect(await flatten(excluded.sink, excluded.result.rootId)).toEqual({
      "a.txt": "file 644 1",
      sub: "dir 755",
      "sub/.dsync": "dir 755",
      "sub/.dsync/x": "file 644 4",
    });
    const all = await scan(root);
    expect(Object.keys(await flatten(all.sink, all.result.rootId))).toContain(".dsync/state.db");
  });
});

describe(".dsyncignore", () => {
  test("rules are honoured, nested files apply to their subtree, and the ignore files themselves are kept", async () => {
    const root = tempDir();
    writeTree(root, {
      ".dsyncignore": "# top rules\n*.log\n!keep.log\nbuild/\n/top-only.txt\n!build/wanted.txt\n",
      "a.log": "x",
      "keep.log": "k",
      "top-only.txt": "t",
      "main.ts": "m",
      build: { "out.js": "o", "wanted.txt": "inside an ignored directory: cannot be re-included" },
      sub: {
        ".dsyncignore": "/local.txt\n*.bak\n!again.log\n",
        "again.log": "re-included by the inner file",
        "b.log": "ignored by the outer file",
        "local.txt": "l",
        "top-only.txt": "anchored at the top only",
        "c.bak": "c",
        build: "a file named build: 'build/' is for directories",
        deep: { "local.txt": "anchored one level up", "d.bak": "d" },
      },
      other: { "c.bak": "the inner file does not reach here" },
    });
    const { result, sink } = await scan(root);
    expect(Object.keys(await flatten(sink, result.rootId)).sort()).toEqual(
      [
        ".dsyncignore",
        "keep.log",
        "main.ts",
        "other",
        "other/c.bak",
        "sub",
        "sub/.dsyncignore",
        "sub/again.log",
        "sub/build",
        "sub/deep",
        "sub/deep/local.txt",
        "sub/top-only.txt",
      ].sort(),
    );
    expect(result.skipped).toEqual([]);
    expect(result.files).toBe(9);
    // Ignored files are not even read.
    const contents = [...sink.chunks.values()].map((b) => Buffer.from(b).toString());
    expect(contents).not.toContain("inside an ignored directory: cannot be re-included");
    expect(contents).not.toContain("ignored by the outer file");
    expect(contents).toContain("re-included by the inner file");
  });

  test("a .dsyncignore that ignores itself leaves itself out", async () => {
    const root = tempDir();
    writeTree(root, { ".dsyncignore": ".dsyncignore\n", "a.txt": "a" });
    const { result, sink } = await scan(root);
    expect(Object.keys(await flatten(sink, result.rootId))).toEqual(["a.txt"]);
  });

  test("ignoredAt applies the rules the scan read to paths the directory does not hold", async () => {
    const root = tempDir();
    writeTree(root, { ".dsyncignore": "*.log\nbuild/\n", sub: { ".dsyncignore": "*.tmp\n", "a.txt": "a" } });
    const { result } = await scan(root);
    expect(result.ignoredAt("new.log", false)).toBe("new.log");
    expect(result.ignoredAt("deep/er/x.log", false)).toBe("deep/er/x.log");
    expect(result.ignoredAt("build/out/x.js", false)).toBe("build");
    expect(result.ignoredAt("build", false)).toBeUndefined(); // 'build/' is for directories
    expect(result.ignoredAt("sub/x.tmp", false)).toBe("sub/x.tmp");
    expect(result.ignoredAt("x.tmp", false)).toBeUndefined(); // sub's rules stay in sub
    expect(result.ignoredAt("sub/a.txt", false)).toBeUndefined();
  });

  test("a .dsyncignore that cannot be read makes its directory not read: nothing it meant to exclude is stored", async () => {
    const root = tempDir();
    writeTree(root, { "a.txt": "a", sub: { ".env": "SECRET=1", "b.txt": "b", inner: { "c.txt": "c" } } });
    // Shared rules through a link whose target is gone (an unmounted drive): open fails.
    symlinkSync(join(root, "nowhere", "rules"), join(root, "sub", ".dsyncignore"));
    const { result, sink } = await scan(root);
    expect(await flatten(sink, result.rootId)).toEqual({ "a.txt": "file 644 1" });
    expect(result.notRead).toEqual([{ path: "sub", cause: "unreadable" }]);
    expect(result.skipped).toHaveLength(1);
    expect(result.skipped[0]!.path).toBe("sub");
    expect(result.skipped[0]!.reason).toMatch(/cannot read its ignore file sub\/\.dsyncignore: .*ENOENT/);
  });

  test("a root .dsyncignore that cannot be read fails the scan, naming it", async () => {
    const root = tempDir();
    writeTree(root, { "a.txt": "a" });
    symlinkSync(join(root, "nowhere"), join(root, ".dsyncignore"));
    await expect(scan(root)).rejects.toThrow(`cannot read ${join(root, ".dsyncignore")}`);
  });

  test("an ignored directory is not descended into", async () => {
    const root = tempDir();
    writeTree(root, { ".dsyncignore": "skipme/\n", skipme: { "a\\b": "would be skipped if seen", "f.txt": "f" } });
    const { result } = await scan(root);
    expect(result.skipped).toEqual([]);
    expect(result.files).toBe(1);
    expect(result.directories).toBe(0);
  });
});

describe("stat cache", () => {
  let cacheDir: string;
  let cache: SqliteStatCache;
  beforeAll(() => {
    cacheDir = tempDir();
  });
  afterEach(() => cache?.close());

  // A cache hit needs the sink to still hold the file node, so scans that should hit share one.
  let sink: CollectingSink;
  beforeEach(() => {
    sink = new CollectingSink();
  });

  function openCache(name = "cache"): SqliteStatCache {
    cache = new SqliteStatCache(join(cacheDir, `${name}-${Math.random().toString(36).slice(2)}.db`));
    return cache;
  }

  test("a second scan reads no file, and gives the same root id and counts", async () => {
    const root = writeSample();
    const statCache = openCache();
    const first = await scan(root, { statCache, sink });
    expect(first.result.filesRead).toBe(6);
    expect(first.result.filesFromCache).toBe(0);
    const chunkCallsBefore = sink.chunkCalls.length;
    const second = await scan(root, { statCache, sink });
    expect(second.result).toMatchObject({ filesRead: 0, filesFromCache: 6, bytesRead: 0, chunksRead: 0, files: 6 });
    expect(second.result.chunks).toBe(first.result.chunks);
    expect(second.result.totalBytes).toBe(first.result.totalBytes);
    expect(idToHex(second.result.rootId)).toBe(idToHex(first.result.rootId));
    expect(sink.chunkCalls.length).toBe(chunkCallsBefore);
  });

  test("the cache persists: a new SqliteStatCache on the same file serves the next scan", async () => {
    const root = writeSample();
    const path = join(cacheDir, "persist.db");
    const first = new SqliteStatCache(path);
    const sink = new CollectingSink();
    await scan(root, { statCache: first, sink });
    first.close();
    cache = new SqliteStatCache(path);
    const second = await scan(root, { statCache: cache, sink });
    expect(second.result.filesRead).toBe(0);
    expect(second.result.filesFromCache).toBe(6);
  });

  test("a modified file (content and mtime changed, same size) is read again; the others are not", async () => {
    const root = writeSample();
    const statCache = openCache();
    const first = await scan(root, { statCache, sink });
    const path = join(root, "a.txt");
    writeFileSync(path, "ALPHA\n");
    utimesSync(path, new Date(MTIME_MS + 1000), new Date(MTIME_MS + 1000));
    const second = await scan(root, { statCache, sink });
    expect(second.result).toMatchObject({ filesRead: 1, filesFromCache: 5, bytesRead: 6 });
    expect(idToHex(second.result.rootId)).not.toBe(idToHex(first.result.rootId));
    const fresh = await scan(root);
    expect(idToHex(second.result.rootId)).toBe(idToHex(fresh.result.rootId));
    // The new content is cached in turn.
    const third = await scan(root, { statCache, sink });
    expect(third.result.filesRead).toBe(0);
  });

  test("a file replaced by another with the same size and mtime (a new inode) is read again", async () => {
    const root = writeSample();
    const statCache = openCache();
    await scan(root, { statCache, sink });
    const path = join(root, "a.txt");
    writeFileSync(path + ".new", "ALPHA\n");
    utimesSync(path + ".new", new Date(MTIME_MS), new Date(MTIME_MS));
    renameSync(path + ".new", path);
    const second = await scan(root, { statCache, sink });
    expect(second.result.filesRead).toBe(1);
    const entry = (await entryAt(second.sink, second.result.rootId, "a.txt"))!;
    expect(Buffer.from(await second.sink.fileBytes(entry)).toString()).toBe("ALPHA\n");
  });

  test("a cache hit needs the sink to still have the file node; a file named by its chunk has none to need", async () => {
    const root = writeSample();
    const statCache = openCache();
    await scan(root, { statCache, sink });
    sink.hasObjectAnswer = false;
    const second = await scan(root, { statCache, sink });
    // empty.txt (the empty file node) is read again; the five one-chunk files are not.
    expect(second.result.filesRead).toBe(1);
    expect(second.result.filesFromCache).toBe(5);
  });

  test("paths gone from the tree are dropped from the cache", async () => {
    const root = writeSample();
    const statCache = openCache();
    await scan(root, { statCache, sink });
    expect(statCache.get("docs/guide.md")).toBeDefined();
    rmSync(join(root, "docs"), { recursive: true });
    await scan(root, { statCache, sink });
    expect(statCache.get("docs/guide.md")).toBeUndefined();
    expect(statCache.get("a.txt")).toBeDefined();
  });

  // Offsets of the scan start from the file's last change (the later of mtime and ctime).
  const racyCases: [string, bigint, boolean][] = [
    ["at the same instant", 0n, false],
    ["10 ms later", 10_000_000n, false],
    ["just inside the window", RACY_WINDOW_NS - 1n, false],
    ["exactly the window later", RACY_WINDOW_NS, true],
    ["10 s later", 10_000_000_000n, true],
    ["before the change (a clock behind the file system)", -1_000_000_000n, false],
  ];
  test.each(racyCases)("a scan starting %s: cached %p", async (_, offsetNs, cached) => {
    const root = tempDir();
    writeFileSync(join(root, "f.txt"), "racy");
    const stats = lstatSync(join(root, "f.txt"), { bigint: true });
    const changedNs = stats.mtimeNs > stats.ctimeNs ? stats.mtimeNs : stats.ctimeNs;
    const statCache = openCache();
    const first = await scan(root, { statCache, sink, nowNs: () => changedNs + offsetNs });
    expect(first.result.filesRead).toBe(1);
    const second = await scan(root, { statCache, sink });
    expect(second.result.filesFromCache).toBe(cached ? 1 : 0);
    expect(second.result.filesRead).toBe(cached ? 0 : 1);
  });

  test("a file whose mtime is in the future (after the scan start) is not cached", async () => {
    const root = tempDir();
    const path = join(root, "future.txt");
    writeFileSync(path, "from the future");
    const future = Date.now() + 3_600_000;
    utimesSync(path, new Date(future), new Date(future));
    const statCache = openCache();
    await scan(root, { statCache, sink });
    const second = await scan(root, { statCache, sink });
    expect(second.result.filesRead).toBe(1);
  });
});

describe("how a file entry names its content", () => {
  test("a one-chunk file by its chunk, with no file node; an empty or a many-chunk file by its node", async () => {
    const root = tempDir();
    const one = randomBytes(5_000, 41);
    const many = randomBytes(300_000, 42);
    writeTree(root, { "one.bin": one, "many.bin": many, "empty.txt": "" });
    const { result, sink } = await scan(root);
    const single = (await entryAt(sink, result.rootId, "one.bin"))!;
    expect(single).toMatchObject({ kind: "file", sizeBytes: 5_000, idNamesChunk: true });
    expect(idToHex(single.id!)).toBe(idToHex(blake3(one)));
    // The sink got the chunk and no node naming it.
    expect(sink.chunks.has(idToHex(single.id!))).toBe(true);
    const nodes = [...sink.objects.values()].map((bytes) => decodeObject(bytes));
    expect(nodes.filter((n) => n.kind === "file" && "chunks" in n && n.chunks.some((c) => idEquals(c.id, single.id!)))).toEqual([]);
    for (const name of ["many.bin", "empty.txt"]) {
      const entry = (await entryAt(sink, result.rootId, name))!;
      expect(entry.idNamesChunk).toBeUndefined();
      expect(sink.node(entry.id!).kind).toBe("file");
    }
    expect(Buffer.from(await sink.fileBytes(single)).equals(Buffer.from(one))).toBe(true);
    expect(Buffer.from(await sink.fileBytes((await entryAt(sink, result.rootId, "many.bin"))!)).equals(Buffer.from(many))).toBe(true);
  });

  test("a one-chunk file whose bytes are a structured object keeps a file node (no id is both)", async () => {
    const root = tempDir();
    const objectBytes = encodeObject({ kind: "tree", level: 0, entries: [] });
    writeTree(root, { "tree.bin": objectBytes, "plain.txt": "not an object\n" });
    const { result, sink } = await scan(root);
    const kept = (await entryAt(sink, result.rootId, "tree.bin"))!;
    expect(kept.idNamesChunk).toBeUndefined();
    expect(sink.node(kept.id!)).toMatchObject({ kind: "file", level: 0, sizeBytes: objectBytes.length });
    expect((await entryAt(sink, result.rootId, "plain.txt"))!.idNamesChunk).toBe(true);
    expect(Buffer.from(await sink.fileBytes(kept)).equals(Buffer.from(objectBytes))).toBe(true);
  });

  test("the stat cache remembers the form: a second scan reads nothing and builds the same tree", async () => {
    const root = writeSample();
    const statCache = new SqliteStatCache(join(tempDir(), "forms.db"));
    try {
      const first = await scan(root, { statCache });
      expect(statCache.get("a.txt")).toMatchObject({ idNamesChunk: true, chunkCount: 1 });
      expect(statCache.get("empty.txt")!.idNamesChunk).toBeUndefined();
      const second = await scan(root, { statCache, sink: first.sink });
      expect(second.result.filesRead).toBe(0);
      expect(idToHex(second.result.rootId)).toBe(idToHex(first.result.rootId));
    } finally {
      statCache.close();
    }
  });
});

describe("chunks", () => {
  // Sizes around the chunker's and the read buffer's edges; the buffer is its minimum, twice
  // the max chunk size, so it is refilled many times.
  const bufferBytes = 2 * SMALL.maxSizeBytes;
  const sizes = [0, 1, SMALL.minSizeBytes, SMALL.maxSizeBytes, SMALL.maxSizeBytes + 1, bufferBytes - 1, bufferBytes, bufferBytes + 1, 3 * bufferBytes + 17, 300_000];

  test("the sink receives exactly each file's chunks, in order, cut as the one-shot chunker cuts them", async () => {
    const root = tempDir();
    const contents = new Map<string, Uint8Array>();
    sizes.forEach((size, i) => contents.set(`f${String(i).padStart(2, "0")}-${size}`, randomBytes(size, 100 + i)));
    for (const [name, data] of contents) writeFileSync(join(root, name), data);
    const { result, sink } = await scan(root, { chunker: SMALL, readBufferBytes: bufferBytes });

    let call = 0;
    for (const [name, data] of contents) {
      const entry = (await entryAt(sink, result.rootId, name))!;
      const refs = await readEntryChunks(entry, sink.load);
      const expectedLengths = chunkLengths(data, SMALL);
      // A file of one chunk is named by it; any other (the empty one too) by its file node.
      expect(entry.idNamesChunk === true).toBe(expectedLengths.length === 1);
      expect(refs.map((r) => r.lengthBytes)).toEqual(expectedLengths);
      // The sink saw this file's chunks one by one, in file order (files are scanned in name order).
      const calls = sink.chunkCalls.slice(call, call + refs.length);
      call += refs.length;
      expect(calls.map((c) => idToHex(c.id))).toEqual(refs.map((r) => idToHex(r.id)));
      for (const c of calls) expect(idEquals(blake3(c.bytes), c.id)).toBe(true);
      const reassembled = Buffer.concat(calls.map((c) => c.bytes));
      expect(reassembled.equals(Buffer.from(data))).toBe(true);
      expect(entry.sizeBytes).toBe(data.length);
    }
    expect(call).toBe(sink.chunkCalls.length);
    expect(result.chunks).toBe(sink.chunkCalls.length);
    expect(result.chunksRead).toBe(sink.chunkCalls.length);
    // Every chunk was a view into the one read buffer.
    expect(sink.chunkBuffers.size).toBe(1);
  });

  test("a chunk sink that returns a promise is awaited before the buffer is reused", async () => {
    const root = tempDir();
    const data = randomBytes(100_000, 5);
    writeFileSync(join(root, "f"), data);
    const copies: Uint8Array[] = [];
    const sink: ScanSink = {
      object() {},
      async chunk(_id, bytes) {
        await new Promise((r) => setTimeout(r, 0));
        copies.push(new Uint8Array(bytes));
      },
    };
    await scanDirectory(root, { sink, chunker: SMALL, readBufferBytes: 2 * SMALL.maxSizeBytes, nowNs: LATE_NS });
    expect(Buffer.concat(copies).equals(Buffer.from(data))).toBe(true);
  });

  test("onProgress reports bytes read as they grow, up to the total", async () => {
    const root = tempDir();
    writeFileSync(join(root, "f"), randomBytes(200_000, 1));
    writeFileSync(join(root, "g"), randomBytes(50_000, 2));
    const seen: number[] = [];
    const { result } = await scan(root, { chunker: SMALL, readBufferBytes: 16_384, onProgress: (p) => seen.push(p.bytesRead) });
    expect(seen.length).toBeGreaterThan(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)).toBe(250_000);
    expect(result.bytesRead).toBe(250_000);
  });
});

describe("memory", () => {
  test("a 64 MiB file scans through one reused buffer on one thread, with RSS growth well under the file size", async () => {
    const root = tempDir();
    const path = join(root, "big.bin");
    const fd = openSync(path, "w");
    try {
      for (let i = 0; i < 64; i++) writeSync(fd, randomBytes(MiB, 1000 + i));
    } finally {
      closeSync(fd);
    }
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    let peak = before;
    const buffers = new Set<ArrayBufferLike>();
    let chunkBytes = 0;
    const sink: ScanSink = {
      object() {},
      chunk(_id, bytes) {
        buffers.add(bytes.buffer);
        chunkBytes += bytes.length;
      },
    };
    const result = await scanDirectory(root, {
      sink,
      nowNs: LATE_NS,
      chunkThreads: 1,
      onProgress: () => {
        peak = Math.max(peak, process.memoryUsage().rss);
      },
    });
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(result.bytesRead).toBe(64 * MiB);
    expect(chunkBytes).toBe(64 * MiB);
    expect(buffers.size).toBe(1);
    expect([...buffers][0]!.byteLength).toBeLessThanOrEqual(8 * MiB);
    expect(peak - before).toBeLessThan(48 * MiB);
  }, 30_000);
});

describe("large directories", () => {
  test("3 000 entries are paged, and readTreeEntries returns them all in byte order", async () => {
    const root = tempDir();
    const dir = join(root, "big");
    mkdirSync(dir);
    const names: string[] = [];
    for (let i = 0; i < 2_990; i++) names.push(`file-${String(i).padStart(4, "0")}`);
    // Names whose UTF-8 byte order differs from JavaScript's UTF-16 order, and mixed case.
    names.push("\u{1F600}", "\uFF5E", "\u00E9", "Z", "a", "z", "_", "~", "0", "file-");
    // Hard links to one empty file: each is a regular file to the scanner, and a link is far
    // cheaper to create than a new inode on a slow file system.
    const base = join(root, "base");
    writeFileSync(base, "");
    for (const name of names) linkSync(base, join(dir, name));
    const { result, sink } = await scan(dir);

    const node = sink.node(result.rootId);
    expect(node.kind).toBe("tree");
    expect(node.kind === "tree" && !isTreeLeaf(node)).toBe(true);
    const treeNodes = [...sink.objects.values()].map((b) => decodeObject(b)).filter((o) => o.kind === "tree");
    expect(treeNodes.length).toBeGreaterThanOrEqual(3);

    const entries = await readTreeEntries(result.rootId, sink.load);
    const expected = [...names].sort(compareNames);
    expect(entries.map((e) => e.name)).toEqual(expected);
    expect(expected.indexOf("\uFF5E")).toBeLessThan(expected.indexOf("\u{1F600}"));
    expect(entries.every((e) => e.kind === "file" && e.sizeBytes === 0)).toBe(true);
    expect(result.files).toBe(3_000);
  }, 30_000);
});

test("a file whose last chunk completes its only leaf page scans to that leaf (no empty finish)", async () => {
  // Cut random bytes with the small chunker and keep them up to the first chunk that ends a
  // leaf page: the builder hands that leaf out from add(), and finish() has nothing left.
  const data = randomBytes(400_000, 77);
  const lengths = chunkLengths(data, SMALL);
  const builder = new FileNodeBuilder();
  let endBytes = 0;
  let leafId: ObjectId | undefined;
  for (const length of lengths) {
    const chunk = data.subarray(endBytes, endBytes + length);
    endBytes += length;
    const leaf = builder.add({ id: blake3(chunk) as ObjectId, lengthBytes: length });
    if (leaf) {
      leafId = leaf.id;
      break;
    }
  }
  expect(leafId).toBeDefined();
  const root = tempDir();
  writeFileSync(join(root, "exact-page.bin"), data.subarray(0, endBytes));
  const { result, sink } = await scan(root, { chunker: SMALL });
  const [entry] = await readTreeEntries(result.rootId, sink.load);
  expect(entry!.name).toBe("exact-page.bin");
  expect(idToHex(entry!.id!)).toBe(idToHex(leafId!));
  expect(entry!.sizeBytes).toBe(endBytes);
});
