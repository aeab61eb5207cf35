// A directory whose entries are all as the last scan recorded them takes its tree id from the
// stat cache (directory_records) instead of being rebuilt. These tests check that it is taken
// (no file read, no tree node built) and that it never hides a change: after each change the
// root id is the one a scan without any cache gives, and every directory above the change is
// built again.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { decodeObject } from "../../src/core/objects.ts";
import type { SealedObject } from "../../src/core/pages.ts";
import { scanDirectory, type ScanResult, type ScanSink } from "../../src/fs/scanner.ts";
import { RACY_WINDOW_NS, SqliteStatCache } from "../../src/fs/stat-cache.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs, 60_000);

/** Well after every file's mtime: nothing is racily clean. */
const LATE_NS = () => BigInt(Date.now() + 60_000) * 1_000_000n;

/** Keeps every node, so stat cache hits and directory records find theirs; counts the tree nodes it is given. */
class KeepingSink implements ScanSink {
  readonly ids = new Set<string>();
  treeNodes = 0;
  missing = false;
  object(sealed: SealedObject): void {
    this.ids.add(idToHex(sealed.id));
    if (decodeObject(sealed.bytes).kind === "tree") this.treeNodes++;
  }
  hasObject(id: ObjectId): boolean {
    return !this.missing && this.ids.has(idToHex(id));
  }
}

function sampleTree(): string {
  const root = tempDir();
  for (const dir of ["a", "a/deep", "b", "c"]) mkdirSync(join(root, dir));
  for (const [path, text] of [["top.txt", "top"], ["a/one.txt", "one"], ["a/deep/two.txt", "two!"], ["b/three.txt", "three"], ["c/four.txt", "four"]]) {
    writeFileSync(join(root, path!), text!);
  }
  symlinkSync("../top.txt", join(root, "b/link"));
  // Every mtime well in the past, so nothing is racily clean whatever the clock says.
  for (const path of ["top.txt", "a/one.txt", "a/deep/two.txt", "b/three.txt", "c/four.txt"]) utimesSync(join(root, path), 1_600_000_000, 1_600_000_000);
  return root;
}

class Scans {
  readonly sink = new KeepingSink();
  readonly cache = new SqliteStatCache(join(tempDir(), "stat-cache.sqlite"));

  /** A scan with the cache; the tree nodes it built, and the root id a scan with no cache gives. */
  async scan(root: string, nowNs = LATE_NS): Promise<{ result: ScanResult; treeNodes: number; uncachedRoot: string }> {
    const before = this.sink.treeNodes;
    const result = await scanDirectory(root, { sink: this.sink, statCache: this.cache, nowNs });
    const uncached = await scanDirectory(root, { sink: { object() {} }, nowNs });
    return { result, treeNodes: this.sink.treeNodes - before, uncachedRoot: idToHex(uncached.rootId) };
  }
}

/** Scans once to record, changes the tree, scans again: the root id is the uncached one, and `rebuilt` trees were built. */
async function expectSeen(change: (root: string) => void, rebuilt: number): Promise<ScanResult> {
  const root = sampleTree();
  const scans = new Scans();
  const first = await scans.scan(root);
  change(root);
  const second = await scans.scan(root);
  expect(idToHex(second.result.rootId)).toBe(second.uncachedRoot);
  expect(idToHex(second.result.rootId)).not.toBe(idToHex(first.result.rootId));
  expect(second.treeNodes).toBe(rebuilt);
  scans.cache.close();
  return second.result;
}

describe("an unchanged directory", () => {
  test("takes its recorded tree id: the second scan reads no file, builds no tree node, and counts as the first", async () => {
    const root = sampleTree();
    const scans = new Scans();
    const first = await scans.scan(root);
    expect(first.treeNodes).toBe(5);
    const second = await scans.scan(root);
    expect(second.treeNodes).toBe(0);
    expect(idToHex(second.result.rootId)).toBe(idToHex(first.result.rootId));
    expect(second.result).toMatchObject({
      filesRead: 0,
      filesFromCache: 5,
      files: first.result.files,
      directories: first.result.directories,
      symlinks: first.result.symlinks,
      totalBytes: first.result.totalBytes,
      chunks: first.result.chunks,
    });
    scans.cache.close();
  });

  test("whose tree node the sink no longer holds is built again", async () => {
    const root = sampleTree();
    const scans = new Scans();
    const first = await scans.scan(root);
    scans.sink.missing = true;
    const second = await scans.scan(root);
    expect(second.treeNodes).toBe(5);
    expect(idToHex(second.result.rootId)).toBe(idToHex(first.result.rootId));
    scans.cache.close();
  });

  test("takes a fresh cache's records (they persist with the stat cache)", async () => {
    const root = sampleTree();
    const scans = new Scans();
    const path = join(tempDir(), "persisted.sqlite");
    const first = new SqliteStatCache(path);
    await scanDirectory(root, { sink: scans.sink, statCache: first, nowNs: LATE_NS });
    first.close();
    const again = new SqliteStatCache(path);
    const before = scans.sink.treeNodes;
    const result = await scanDirectory(root, { sink: scans.sink, statCache: again, nowNs: LATE_NS });
    expect(scans.sink.treeNodes - before).toBe(0);
    expect(result.filesRead).toBe(0);
    again.close();
    scans.cache.close();
  });
});

describe("a change is never hidden by a recorded directory", () => {
  test("a file changed in place with the same size and mtime (only its ctime moves)", async () => {
    const result = await expectSeen((root) => {
      const path = join(root, "a/deep/two.txt");
      const { mtime } = statSync(path);
      writeFileSync(path, "TWO!");
      utimesSync(path, mtime, mtime);
    }, 3);
    expect(result.filesRead).toBe(1);
  });

  test("a name added to a directory whose other entries are unchanged", async () => {
    await expectSeen((root) => writeFileSync(join(root, "c/five.txt"), "five"), 2);
  });

  test("a name removed from a directory whose other entries are unchanged", async () => {
    await expectSeen((root) => unlinkSync(join(root, "c/four.txt")), 2);
  });

  test("a file renamed within its directory", async () => {
    await expectSeen((root) => renameSync(join(root, "c/four.txt"), join(root, "c/vier.txt")), 2);
  });

  test("a directory replaced by a symlink to a copy of it", async () => {
    await expectSeen((root) => {
      renameSync(join(root, "a"), join(root, "a-moved"));
      symlinkSync("a-moved", join(root, "a"));
      // a-moved and a-moved/deep have no record (records go by path), and the root changed.
    }, 3);
  });

  test("a symlink's target changed", async () => {
    await expectSeen((root) => {
      unlinkSync(join(root, "b/link"));
      symlinkSync("three.txt", join(root, "b/link"));
    }, 2);
  });

  test("a file's mode changed", async () => {
    await expectSeen((root) => chmodSync(join(root, "b/three.txt"), 0o755), 2);
  });

  test("a subdirectory emptied and removed", async () => {
    await expectSeen((root) => rmSync(join(root, "a/deep"), { recursive: true }), 2);
  });
});

describe("the racily-clean rule", () => {
  test("a directory holding a file changed within the window is not recorded: the next scan reads that file again and sees it changed", async () => {
    const root = sampleTree();
    const scans = new Scans();
    // The rest of the tree well outside the window (its ctimes are those of its writing).
    await Bun.sleep(Number(RACY_WINDOW_NS / 1_000_000n) * 2);
    writeFileSync(join(root, "c/four.txt"), "FOUR");
    // The first scan starts right after the write: c/four.txt is racily clean, so neither it nor c is taken next time.
    const first = await scans.scan(root, () => BigInt(Date.now()) * 1_000_000n);
    expect(scans.cache.directoryRecord("c")).toBeUndefined();
    expect(scans.cache.directoryRecord("a")).toBeDefined();
    const { mtime } = statSync(join(root, "c/four.txt"));
    writeFileSync(join(root, "c/four.txt"), "vier");
    utimesSync(join(root, "c/four.txt"), mtime, mtime);
    const second = await scans.scan(root);
    expect(second.result.filesRead).toBe(1);
    expect(idToHex(second.result.rootId)).toBe(second.uncachedRoot);
    expect(idToHex(second.result.rootId)).not.toBe(idToHex(first.result.rootId));
    scans.cache.close();
  });
});

describe("a file changed while it is read", () => {
  test("is read again by the next scan, which sees the change (same size, mtime put back)", async () => {
    const root = sampleTree();
    const path = join(root, "c/four.txt");
    const { mtime } = statSync(path);
    const scans = new Scans();
    let changed = false;
    // The sink hears of the file's chunk while the file is open and read: change it right then.
    const changing: ScanSink = {
      chunk(_id, bytes) {
        if (!changed && new TextDecoder().decode(bytes) === "four") {
          changed = true;
          writeFileSync(path, "vier");
          utimesSync(path, mtime, mtime);
        }
      },
      object: (sealed) => scans.sink.object(sealed),
      hasObject: (id) => scans.sink.hasObject(id),
    };
    const first = await scanDirectory(root, { sink: changing, statCache: scans.cache, nowNs: LATE_NS });
    expect(changed).toBe(true);
    const second = await scans.scan(root);
    expect(second.result.filesRead).toBe(1);
    expect(idToHex(second.result.rootId)).toBe(second.uncachedRoot);
    expect(idToHex(second.result.rootId)).not.toBe(idToHex(first.rootId));
    scans.cache.close();
  });
});

describe("rows written outside a scan", () => {
  test("drop the records above them, so a directory removed since is found gone and its rows dropped", async () => {
    const root = sampleTree();
    const scans = new Scans();
    await scans.scan(root);
    expect(scans.cache.directoryRecord("")).toBeDefined();
    // As a pull does for a file it wrote in a new directory, later removed by hand.
    scans.cache.remember(new Map([["n/m/f.txt", { sizeBytes: 1, mtimeNs: 1n, ctimeNs: 1n, inode: 1n, mode: 0o644, fileId: new Uint8Array(32) as ObjectId, chunkCount: 1 }]]));
    expect(scans.cache.directoryRecord("")).toBeUndefined();
    expect(scans.cache.directoryRecord("a")).toBeDefined();
    const sizeBefore = scans.cache.size();
    const again = await scans.scan(root);
    expect(again.treeNodes).toBe(1);
    expect(scans.cache.get("n/m/f.txt")).toBeUndefined();
    expect(scans.cache.size()).toBe(sizeBefore - 1);
    scans.cache.close();
  });
});
