// The stat cache read one directory at a time: what `directory()` returns for paths that sort
// around a directory's range ("a-b/x" < "a.txt" < "a/b" < "a0"), across query batches, and that
// a scan after renames, deletions and a directory turned file (or back) keeps exactly the paths
// on disk, with the root id of a scan without any cache.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import type { SealedObject } from "../../src/core/pages.ts";
import { scanDirectory, type ScanSink } from "../../src/fs/scanner.ts";
import { Database } from "bun:sqlite";
import { SqliteStatCache, type StatCacheEntry } from "../../src/fs/stat-cache.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs, 60_000);

const LATE_NS = () => BigInt(Date.now() + 60_000) * 1_000_000n;

function entry(n: number): StatCacheEntry {
  return { sizeBytes: n, mtimeNs: BigInt(n), ctimeNs: BigInt(n), inode: BigInt(n), mode: 0o644, fileId: new Uint8Array(32).fill(n % 256) as ObjectId, chunkCount: 1 };
}

function openCache(): SqliteStatCache {
  return new SqliteStatCache(join(tempDir(), "stat-cache.sqlite"));
}

class KeepingSink implements ScanSink {
  readonly ids = new Set<string>();
  object(sealed: SealedObject): void {
    this.ids.add(idToHex(sealed.id));
  }
  hasObject(id: ObjectId): boolean {
    return this.ids.has(idToHex(id));
  }
}

describe("directory()", () => {
  test("returns a directory's own files and the subdirectories holding files, never rows deeper down", () => {
    const cache = openCache();
    const paths = ["a-b/x", "a.txt", "a/b", "a/c/d", "a/c/e/f", "a0", "b/z", "top", "é/ü"];
    cache.remember(new Map(paths.map((path, i) => [path, entry(i)])));
    const root = cache.directory("");
    expect([...root.files.keys()].sort()).toEqual(["a.txt", "a0", "top"]);
    expect([...root.subdirectories].sort()).toEqual(["a", "a-b", "b", "é"]);
    expect(root.files.get("a0")).toEqual(entry(5));
    const a = cache.directory("a");
    expect([...a.files.keys()]).toEqual(["b"]);
    expect([...a.subdirectories]).toEqual(["c"]);
    expect([...cache.directory("a/c").files.keys()]).toEqual(["d"]);
    expect([...cache.directory("a/c").subdirectories]).toEqual(["e"]);
    expect([...cache.directory("é").files.keys()]).toEqual(["ü"]);
    expect(cache.directory("missing").files.size).toBe(0);
    cache.close();
  });

  test("a directory with more files than one query batch, subdirectories between them, is read whole", () => {
    const cache = openCache();
    const remembered = new Map<string, StatCacheEntry>();
    for (let i = 0; i < 1500; i++) remembered.set(`d/f${String(i).padStart(4, "0")}`, entry(i));
    for (let i = 0; i < 1500; i += 100) remembered.set(`d/f${String(i).padStart(4, "0")}x/inner`, entry(i));
    cache.remember(remembered);
    const d = cache.directory("d");
    expect(d.files.size).toBe(1500);
    expect(d.subdirectories.size).toBe(15);
    cache.close();
  });

  test("a directory of many subdirectories reads about one row per subdirectory, not a query batch each", () => {
    // The root of a first push of 1 000 000 files in 1 000 directories read 512 rows per
    // subdirectory to use one (and grew the client by ~110 MB): count the rows SQLite returns.
    let rowsRead = 0;
    const prepare = Database.prototype.prepare;
    Database.prototype.prepare = function (this: Database, ...args: Parameters<typeof prepare>) {
      const statement = prepare.apply(this, args);
      const all = statement.all.bind(statement);
      statement.all = (...params: Parameters<typeof all>) => {
        const rows = all(...params);
        rowsRead += rows.length;
        return rows;
      };
      return statement;
    } as typeof prepare;
    let cache: SqliteStatCache;
    try {
      cache = openCache();
    } finally {
      Database.prototype.prepare = prepare;
    }
    const remembered = new Map<string, StatCacheEntry>();
    for (let d = 0; d < 200; d++) for (let f = 0; f < 600; f++) remembered.set(`d${String(d).padStart(3, "0")}/f${f}`, entry(f));
    for (let f = 0; f < 700; f++) remembered.set(`top${f}`, entry(f));
    for (let f = 0; f < 3; f++) remembered.set(`d050x${f}`, entry(f));
    cache.remember(remembered);
    const root = cache.directory("");
    expect(root.files.size).toBe(703);
    expect(root.subdirectories.size).toBe(200);
    // A row per subdirectory (the one that makes the walk jump past it), and per own file at
    // most two (the batches grow from one, so what is read past a run of files is at most the run).
    expect(rowsRead).toBeLessThanOrEqual(200 + 2 * 703);
    rowsRead = 0;
    expect(cache.directory("d007").files.size).toBe(600);
    expect(rowsRead).toBe(600);
    cache.close();
  });
});

describe("a scan keeps the cache to what is on disk", () => {
  test("renames, deletions, a directory replaced by a file and a file by a directory", async () => {
    const root = tempDir();
    mkdirSync(join(root, "keep"));
    mkdirSync(join(root, "gone/deep"), { recursive: true });
    mkdirSync(join(root, "becomes-file"));
    writeFileSync(join(root, "keep/a.txt"), "a");
    writeFileSync(join(root, "keep/old-name.txt"), "renamed");
    writeFileSync(join(root, "keep/deleted.txt"), "deleted");
    writeFileSync(join(root, "gone/deep/x.txt"), "x");
    writeFileSync(join(root, "gone/y.txt"), "y");
    writeFileSync(join(root, "becomes-file/inner.txt"), "inner");
    writeFileSync(join(root, "becomes-dir"), "was a file");
    const cache = openCache();
    const sink = new KeepingSink();
    await scanDirectory(root, { sink, statCache: cache, nowNs: LATE_NS });
    expect(cache.size()).toBe(7);

    renameSync(join(root, "keep/old-name.txt"), join(root, "keep/new-name.txt"));
    rmSync(join(root, "keep/deleted.txt"));
    rmSync(join(root, "gone"), { recursive: true });
    rmSync(join(root, "becomes-file"), { recursive: true });
    writeFileSync(join(root, "becomes-file"), "now a file");
    rmSync(join(root, "becomes-dir"));
    mkdirSync(join(root, "becomes-dir"));
    writeFileSync(join(root, "becomes-dir/child.txt"), "child");

    const second = await scanDirectory(root, { sink, statCache: cache, nowNs: LATE_NS });
    // The renamed file keeps its inode and stat but not its path: read again under its new name.
    expect(second.filesFromCache).toBe(1);
    expect(second.filesRead).toBe(3);
    const uncached = await scanDirectory(root, { sink: new KeepingSink(), nowNs: LATE_NS });
    expect(idToHex(second.rootId)).toBe(idToHex(uncached.rootId));
    for (const path of ["keep/old-name.txt", "keep/deleted.txt", "gone/deep/x.txt", "gone/y.txt", "becomes-file/inner.txt", "becomes-dir"]) {
      expect(cache.get(path)).toBeUndefined();
    }
    for (const path of ["keep/a.txt", "keep/new-name.txt", "becomes-file", "becomes-dir/child.txt"]) expect(cache.get(path)).toBeDefined();
    expect(cache.size()).toBe(4);

    // And the third scan reads nothing.
    const third = await scanDirectory(root, { sink, statCache: cache, nowNs: LATE_NS });
    expect(third).toMatchObject({ filesRead: 0, filesFromCache: 4 });
    cache.close();
  });

  test("a directory that cannot be listed any more has its remembered files dropped, the rest kept", async () => {
    const root = tempDir();
    mkdirSync(join(root, "shut"));
    mkdirSync(join(root, "open"));
    writeFileSync(join(root, "shut/s.txt"), "s");
    writeFileSync(join(root, "open/o.txt"), "o");
    const cache = openCache();
    const sink = new KeepingSink();
    await scanDirectory(root, { sink, statCache: cache, nowNs: LATE_NS });
    writeFileSync(join(root, ".dsyncignore"), "/shut/\n");
    const second = await scanDirectory(root, { sink, statCache: cache, nowNs: LATE_NS });
    expect(second.notRead).toEqual([{ path: "shut", cause: "ignored" }]);
    expect(cache.get("shut/s.txt")).toBeUndefined();
    expect(cache.get("open/o.txt")).toBeDefined();
    cache.close();
  });
});

describe("memory", () => {
  test("a no-change scan while the cache remembers 305 000 files holds a directory's rows at a time, not the cache (RSS of a child process)", async () => {
    const root = tempDir();
    for (let d = 0; d < 50; d++) {
      const dir = join(root, `dir-${d}`);
      mkdirSync(dir);
      for (let f = 0; f < 100; f++) writeFileSync(join(dir, `file-${f}.txt`), `${d}/${f}`);
    }
    const cachePath = join(tempDir(), "stat-cache.sqlite");
    const child = join(import.meta.dir, "fixtures/no-change-scan.ts");
    const run = (goneFiles: number): { filesFromCache: number; filesRead: number; remembered: number; peakRssGrowthBytes: number } => {
      const proc = Bun.spawnSync([process.execPath, child, root, cachePath, String(goneFiles)], { stderr: "pipe", timeout: 120_000 });
      if (proc.exitCode !== 0) throw new Error(`the scan child failed (exit ${proc.exitCode}): ${proc.stderr.toString()}`);
      return JSON.parse(proc.stdout.toString());
    };
    expect(run(0)).toMatchObject({ filesRead: 5000, filesFromCache: 0, remembered: 5000 });
    // 300 000 more remembered files, below a directory no longer on disk.
    const noChange = run(300_000);
    expect(noChange).toMatchObject({ filesRead: 0, filesFromCache: 5000, remembered: 5000 });
    // Every row read into one map, as before, rose by ~150 MiB here; now ~8 MiB.
    expect(noChange.peakRssGrowthBytes).toBeLessThan(48 * 1024 * 1024);
  }, 180_000);
});
