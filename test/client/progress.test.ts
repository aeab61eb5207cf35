// The progress bar: its text (bar, bytes done and total, rate, time left, files), when it is
// drawn (a terminal, --progress, --no-progress, --json), and the pre-walk that gives a first
// scan its totals (ignore rules and the stat cache applied as the scan applies them).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createProgress, progressLine, progressWanted } from "../../src/client/progress.ts";
import { estimateScan } from "../../src/fs/scan-estimate.ts";
import { scanDirectory } from "../../src/fs/scanner.ts";
import { SqliteStatCache } from "../../src/fs/stat-cache.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

afterAll(cleanupTempDirs);

const MiB = 1024 * 1024;

describe("the line", () => {
  test("with totals: bar, bytes done/total, rate, time left, files done/total", () => {
    expect(progressLine({ label: "scanning", totalBytes: 100 * MiB, doneBytes: 25 * MiB, elapsedMs: 5000, totalFiles: 400, filesDone: 100 })).toBe(
      "scanning [######------------------] 25.0 MiB/100.0 MiB 5.0 MiB/s 15s left, 100/400 files",
    );
  });

  test("long waits read as minutes and hours", () => {
    expect(progressLine({ label: "pushing", totalBytes: 1000 * MiB, doneBytes: 10 * MiB, elapsedMs: 10_000 })).toContain("16m30s left");
    expect(progressLine({ label: "pushing", totalBytes: 100_000 * MiB, doneBytes: 10 * MiB, elapsedMs: 10_000 })).toContain("27h46m left");
  });

  test("a total passed (a file grew after the count) grows with what was done", () => {
    expect(progressLine({ label: "scanning", totalBytes: 10 * MiB, doneBytes: 12 * MiB, elapsedMs: 1000 })).toBe("scanning [########################] 12.0 MiB/12.0 MiB 12.0 MiB/s done");
  });

  test("nothing to read but files to visit: the bar counts files", () => {
    expect(progressLine({ label: "scanning", totalBytes: 0, doneBytes: 0, elapsedMs: 1000, totalFiles: 1000, filesDone: 250 })).toBe(
      "scanning [######------------------] 250/1000 files, 0 B read",
    );
  });

  test("a files total from the last scan grows when there are more files now", () => {
    expect(progressLine({ label: "scanning", totalBytes: 0, doneBytes: 0, elapsedMs: 1000, totalFiles: 10, filesDone: 12 })).toBe("scanning [########################] 12/12 files, 0 B read");
  });

  test("no total: what was done and how fast, no bar", () => {
    expect(progressLine({ label: "scanning", totalBytes: 0, doneBytes: 3 * MiB, elapsedMs: 1000 })).toBe("scanning 3.0 MiB 3.0 MiB/s");
  });
});

describe("when it is drawn", () => {
  test("on a terminal without --json; --progress and --no-progress decide either way", () => {
    expect(progressWanted({}, true)).toBe(true);
    expect(progressWanted({}, false)).toBe(false);
    expect(progressWanted({ json: true }, true)).toBe(false);
    expect(progressWanted({ progress: true }, false)).toBe(true);
    expect(progressWanted({ progress: true, json: true }, false)).toBe(true);
    expect(progressWanted({ progress: false }, true)).toBe(false);
  });

  test("redrawn in place at most every 100 ms, ended by a newline; silent when off", () => {
    let now = 0;
    const written: string[] = [];
    const progress = createProgress(true, () => now, { write: (text) => written.push(text), columns: 120 });
    expect(progress.shown).toBe(true);
    progress.phase("scanning", 4 * MiB, 2);
    now = 50;
    progress.advance(MiB, 0); // within 100 ms of the last draw: not drawn
    now = 1000;
    progress.advance(MiB, 1);
    now = 2000;
    progress.advance(2 * MiB, 2);
    progress.done();
    expect(written).toHaveLength(5);
    expect(written.slice(0, 4).every((w) => w.startsWith("\r") && w.length === 120)).toBe(true);
    expect(written[1]!.trimEnd()).toBe("\rscanning [############------------] 2.0 MiB/4.0 MiB 2.0 MiB/s 1s left, 1/2 files");
    expect(written[3]!.trimEnd()).toBe("\rscanning [########################] 4.0 MiB/4.0 MiB 2.0 MiB/s done, 2/2 files");
    expect(written[4]).toBe("\n");
    const off = createProgress(false, () => now, { write: () => expect.unreachable() });
    expect(off.shown).toBe(false);
    off.phase("x", 1);
    off.advance(1);
    off.done();
  });
});

describe("the pre-walk", () => {
  test("counts the files and bytes the scan visits and reads: ignore rules, the state folder and cached files applied", async () => {
    const root = tempDir();
    writeTree(root, {
      ".dsyncignore": "*.log\nbuild/\n",
      "a.txt": "a".repeat(1000),
      "b.log": "x".repeat(5000),
      build: { "out.bin": "o".repeat(7000) },
      sub: { ".dsyncignore": "!keep.log\n", "keep.log": "k".repeat(300), "c.txt": "c".repeat(20) },
      ".dsync": { "state.json": "{}" },
    });
    const fresh = estimateScan(root, { excludeTopLevel: [".dsync"] });
    // .dsyncignore (13) + a.txt + sub/.dsyncignore (10) + keep.log + c.txt
    expect(fresh).toEqual({ files: 5, totalBytes: 13 + 1000 + 10 + 300 + 20, bytesToRead: 13 + 1000 + 10 + 300 + 20 });
    const cache = new SqliteStatCache(join(tempDir(), "stat.db"));
    try {
      // A scan far after the files were written caches them all; the next estimate reads nothing.
      const scanned = await scanDirectory(root, { sink: { object() {} }, statCache: cache, excludeTopLevel: [".dsync"], nowNs: () => BigInt(Date.now() + 10_000) * 1_000_000n });
      expect(scanned.files).toBe(fresh.files);
      expect(scanned.bytesRead).toBe(fresh.bytesToRead);
      expect(estimateScan(root, { excludeTopLevel: [".dsync"], statCache: cache })).toEqual({ files: 5, totalBytes: fresh.totalBytes, bytesToRead: 0 });
      writeTree(root, { "a.txt": "changed" });
      expect(estimateScan(root, { excludeTopLevel: [".dsync"], statCache: cache }).bytesToRead).toBe(7);
    } finally {
      cache.close();
    }
  });
});
