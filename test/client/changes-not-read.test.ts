// setAsideChangesNotRead: the node's changes at paths this copy did not read, or ignores, are
// set aside and reported one line per path; everything else passes.
import { describe, expect, test } from "bun:test";
import type { DiffEntry, TreeDiff } from "../../src/core/diff.ts";
import type { TreeEntry } from "../../src/core/objects.ts";
import { setAsideChangesNotRead } from "../../src/client/changes-not-read.ts";
import type { NotReadPath } from "../../src/fs/scanner.ts";

const fileEntry = (name: string): TreeEntry => ({ name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: 1, id: null, target: null });
const dirEntry = (name: string): TreeEntry => ({ name, kind: "dir", mode: 0o755, mtimeMs: 0, sizeBytes: 0, id: null, target: null });
const name = (path: string) => path.slice(path.lastIndexOf("/") + 1);
const added = (path: string): DiffEntry => ({ path, before: null, after: fileEntry(name(path)) });
const removed = (path: string): DiffEntry => ({ path, before: fileEntry(name(path)), after: null });
const modified = (path: string): DiffEntry => ({ path, before: fileEntry(name(path)), after: fileEntry(name(path)) });

function diffOf(parts: Partial<TreeDiff>): TreeDiff {
  return { added: [], removed: [], modified: [], typeChanged: [], ...parts };
}

const paths = (diff: TreeDiff) => [...diff.added, ...diff.removed, ...diff.modified, ...diff.typeChanged].map((c) => c.path).sort();
const nothingIgnored = () => undefined;

describe("setAsideChangesNotRead", () => {
  test("changes at or below a path not read are set aside, grouped per path; the others pass", () => {
    const notRead: NotReadPath[] = [
      { path: "x.bin", cause: "ignored" },
      { path: "cache", cause: "ignored" },
      { path: "secret.txt", cause: "unreadable" },
    ];
    const diff = diffOf({
      added: [added("cache/a"), added("cache/b"), added("new.txt"), added("cachet")],
      removed: [removed("x.bin"), removed("old.txt")],
      modified: [modified("secret.txt"), modified("notes.txt")],
    });
    const result = setAsideChangesNotRead(diff, { notRead, ignoredAt: nothingIgnored });
    expect(paths(result.diff)).toEqual(["cachet", "new.txt", "notes.txt", "old.txt"]);
    expect(result.count).toBe(4);
    expect(result.skipped).toEqual([
      { path: "cache", reason: "ignored here: 2 change(s) on the node not applied", cause: "ignored" },
      { path: "x.bin", reason: "ignored here: 1 change(s) on the node not applied", cause: "ignored" },
      { path: "secret.txt", reason: "could not be read here: 1 change(s) on the node not applied", cause: "unreadable" },
    ]);
  });

  test("a path this copy's rules ignore but does not hold (added on the node) is set aside too", () => {
    const diff = diffOf({ added: [added("logs/today.log"), added("a.txt")] });
    const result = setAsideChangesNotRead(diff, { notRead: [], ignoredAt: (path) => (path.endsWith(".log") ? path : undefined) });
    expect(paths(result.diff)).toEqual(["a.txt"]);
    expect(result.skipped).toEqual([{ path: "logs/today.log", reason: "ignored here: 1 change(s) on the node not applied", cause: "ignored" }]);
  });

  test("a directory holding a path not read is not replaced by a file", () => {
    const diff = diffOf({ typeChanged: [{ path: "d", before: dirEntry("d"), after: fileEntry("d") }] });
    const result = setAsideChangesNotRead(diff, { notRead: [{ path: "d/e/pipe", cause: "unsupported" }], ignoredAt: nothingIgnored });
    expect(paths(result.diff)).toEqual([]);
    expect(result.count).toBe(1);
  });

  test("a directory replaced by a file is held back whole: the removals below it too", () => {
    const diff = diffOf({
      typeChanged: [{ path: "d", before: dirEntry("d"), after: fileEntry("d") }],
      removed: [removed("d/a.txt"), removed("d/e/b.txt"), removed("other.txt")],
      added: [added("dx/new.txt")],
    });
    const result = setAsideChangesNotRead(diff, { notRead: [{ path: "d/e/pipe", cause: "unsupported" }], ignoredAt: nothingIgnored });
    expect(paths(result.diff)).toEqual(["dx/new.txt", "other.txt"]);
    expect(result.count).toBe(3);
    expect(result.skipped).toEqual([{ path: "d/e/pipe", reason: "holds something dsync does not sync here: 3 change(s) on the node not applied", cause: "unsupported" }]);
  });

  test("the report is bounded: one line per path, at most reportMax lines, while count has them all", () => {
    const notRead: NotReadPath[] = [];
    const changes: DiffEntry[] = [];
    for (let i = 0; i < 500; i++) {
      notRead.push({ path: `f${i}.bin`, cause: "ignored" });
      changes.push(modified(`f${i}.bin`));
    }
    const result = setAsideChangesNotRead(diffOf({ modified: changes }), { notRead, ignoredAt: nothingIgnored }, 100);
    expect(result.skipped.length).toBe(100);
    expect(result.count).toBe(500);
    expect(result.diff.modified).toEqual([]);
  });
});
