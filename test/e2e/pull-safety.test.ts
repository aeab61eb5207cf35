// A pull, run as the user who owns everything (root here), against a hostile node or over a
// directory a careless user changed: it never changes anything outside the directory, never
// deletes bytes the last synced version does not hold, and fetches each distinct chunk once.
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TreeEntry } from "../../src/core/objects.ts";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { RawObjects, rawObjectServer } from "../helpers/raw-object-server.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

const node = sharedNode();
const OLD_MS = 1_600_000_000_000;
const MiB = 1024 * 1024;

/** A file and a directory outside any synced directory, with a known mode and mtime. */
function outsideTargets() {
  const outside = tempDir("dsync-outside-");
  const file = join(outside, "victim.txt");
  writeFileSync(file, "not yours\n");
  const dir = join(outside, "victim-dir");
  mkdirSync(dir);
  writeFileSync(join(dir, "inside.txt"), "not yours either\n");
  for (const [path, mode] of [[file, 0o600], [dir, 0o700]] as const) {
    chmodSync(path, mode);
    utimesSync(path, new Date(OLD_MS), new Date(OLD_MS));
  }
  const state = () =>
    [file, dir].map((path) => {
      const stats = statSync(path);
      return { path, mode: (stats.mode & 0o7777).toString(8), mtimeMs: stats.mtimeMs };
    });
  const before = state();
  return { file, dir, unchanged: () => expect(state()).toEqual(before), list: () => readdirSync(dir).sort() };
}

/** Pushes a directory: the first time to the shared node, later to where it last synced. */
async function push(source: string, first = false) {
  const result = await runCli(["push", source, "--json", ...(first ? ["--remote", node().url] : [])]);
  expect(result.code).toBe(0);
  return result.json();
}

/** Every path a pull report names as kept, moved aside or not applied. */
function reportedPaths(report: { conflicts: { path: string }[]; skipped: { path: string }[] }): string[] {
  return [...report.conflicts, ...report.skipped].map((p) => p.path);
}

async function pullJson(target: string, args: string[] = []) {
  const result = await runCli(["pull", target, "--json", ...args]);
  if (result.code !== 0) throw new Error(`pull exited ${result.code}: ${result.stdout}${result.stderr}`);
  return result.json();
}

describe("attributes never go through a link", () => {
  test("a hostile paged tree naming d twice (a setuid, world-writable directory and a link outside) changes nothing outside", async () => {
    for (const targetKind of ["file", "dir"] as const) {
      const targets = outsideTargets();
      const objects = new RawObjects();
      const content = new TextEncoder().encode("inside\n");
      const chunk = objects.addBytes(content);
      const fileId = objects.add({ kind: "file", level: 0, sizeBytes: content.length, chunks: [{ id: chunk, lengthBytes: content.length }] });
      const file = (name: string): TreeEntry => ({ name, kind: "file", mode: 0o644, mtimeMs: OLD_MS, sizeBytes: content.length, id: fileId, target: null });
      const inner = objects.add({ kind: "tree", level: 0, entries: [file("new.txt")] });
      const asDir: TreeEntry = { name: "d", kind: "dir", mode: 0o4777, mtimeMs: 0, sizeBytes: 0, id: inner, target: null };
      const target = targetKind === "file" ? targets.file : targets.dir;
      const asLink: TreeEntry = { name: "d", kind: "symlink", mode: 0o777, mtimeMs: 0, sizeBytes: 0, id: null, target };
      const first = objects.add({ kind: "tree", level: 0, entries: [file("a.txt"), asDir] });
      const second = objects.add({ kind: "tree", level: 0, entries: [asLink] });
      const root = objects.add({ kind: "tree", level: 1, pages: [{ id: first, firstName: "a.txt" }, { id: second, firstName: "d" }] });
      const server = rawObjectServer(objects, root);
      try {
        const victim = join(tempDir(), "victim");
        const result = await runCli(["pull", victim, "--remote", server.url, "--folder", server.folder, "--json"]);
        expect(result.code === 0 || result.code === 1).toBe(true);
        targets.unchanged();
        expect(readFileSync(targets.file, "utf8")).toBe("not yours\n");
        expect(targets.list()).toEqual(["inside.txt"]);
      } finally {
        server.stop();
      }
    }
  });

  test("a directory replaced here by a link outside: the new file below it is skipped and the outside directory keeps its mode and mtime", async () => {
    const targets = outsideTargets();
    const source = join(tempDir(), "attr-swap");
    writeTree(source, { d: { "a.txt": "a\n" }, "top.txt": "t\n" });
    chmodSync(join(source, "d"), 0o4777);
    await push(source, true);
    const victim = join(tempDir(), "victim");
    await pullJson(victim, ["--remote", node().url, "--folder", "attr-swap"]);

    rmSync(join(victim, "d"), { recursive: true });
    symlinkSync(targets.dir, join(victim, "d"));
    writeFileSync(join(source, "d", "new.txt"), "new\n");
    utimesSync(join(source, "d"), new Date(0), new Date(0));
    await push(source);

    const report = await pullJson(victim);
    expect(report.skipped.map((s: { path: string }) => s.path)).toContain("d/new.txt");
    targets.unchanged();
    expect(targets.list()).toEqual(["inside.txt"]);
  });
});

describe("bytes that exist nowhere else are never deleted", () => {
  test("a directory replaced by a file on the node while it holds an ignored file and a FIFO here: none of it is lost, and it is reported", async () => {
    const source = join(tempDir(), "dir-to-file");
    writeTree(source, { d: { "a.txt": "a\n", sub: { "b.txt": "b\n" } }, "top.txt": "t\n" });
    await push(source, true);
    const victim = join(tempDir(), "victim");
    await pullJson(victim, ["--remote", node().url, "--folder", "dir-to-file"]);
    writeFileSync(join(victim, ".dsyncignore"), "*.secret\n");
    writeFileSync(join(victim, "d", "sub", "keys.secret"), "exists only here\n");
    execFileSync("mkfifo", [join(victim, "d", "pipe")]);

    rmSync(join(source, "d"), { recursive: true });
    writeFileSync(join(source, "d"), "d is a file now\n");
    await push(source);

    const report = await pullJson(victim);
    // Either the node's change is not applied here (the directory stays) or the directory is
    // kept as a conflict copy; in both cases everything in it survives and the path is reported.
    expect(reportedPaths(report).some((path) => path === "d" || path.startsWith("d/"))).toBe(true);
    const conflict = report.conflicts.find((c: { path: string }) => c.path === "d");
    const kept = join(victim, conflict?.keptAs ?? "d");
    if (conflict) expect(readFileSync(join(victim, "d"), "utf8")).toBe("d is a file now\n");
    expect(readFileSync(join(kept, "sub", "keys.secret"), "utf8")).toBe("exists only here\n");
    expect(lstatSync(join(kept, "pipe")).isFIFO()).toBe(true);
    // a.txt is in history either way; with the directory moved aside it moves along.
    if (conflict) expect(readFileSync(join(kept, "a.txt"), "utf8")).toBe("a\n");
  });

  test("a directory replaced by a file while it holds a directory the scan passes over (a name like dsync's temp files): kept as a conflict copy", async () => {
    const source = join(tempDir(), "dir-to-file-temp-name");
    writeTree(source, { d: { "a.txt": "a\n" } });
    await push(source, true);
    const victim = join(tempDir(), "victim");
    await pullJson(victim, ["--remote", node().url, "--folder", "dir-to-file-temp-name"]);
    writeTree(join(victim, "d", ".dsync-tmp-not-ours"), { "work.txt": "exists only here\n" });

    rmSync(join(source, "d"), { recursive: true });
    writeFileSync(join(source, "d"), "d is a file now\n");
    await push(source);

    const report = await pullJson(victim);
    expect(readFileSync(join(victim, "d"), "utf8")).toBe("d is a file now\n");
    const conflict = report.conflicts.find((c: { path: string }) => c.path === "d");
    expect(conflict?.keptAs).toMatch(/^d\.sync-conflict-\d{8}-\d{6}-local$/);
    expect(conflict?.reason).toContain(".dsync-tmp-not-ours");
    expect(readFileSync(join(victim, conflict.keptAs, ".dsync-tmp-not-ours", "work.txt"), "utf8")).toBe("exists only here\n");
    expect(readFileSync(join(victim, conflict.keptAs, "a.txt"), "utf8")).toBe("a\n");
  });

  test("a directory replaced by a file when it holds only what was synced: replaced in place, nothing kept, no skips", async () => {
    const source = join(tempDir(), "dir-to-file-clean");
    writeTree(source, { d: { "a.txt": "a\n", sub: { "b.txt": "b\n" } } });
    await push(source, true);
    const victim = join(tempDir(), "victim");
    await pullJson(victim, ["--remote", node().url, "--folder", "dir-to-file-clean"]);
    rmSync(join(source, "d"), { recursive: true });
    writeFileSync(join(source, "d"), "file\n");
    await push(source);
    const report = await pullJson(victim);
    expect(readFileSync(join(victim, "d"), "utf8")).toBe("file\n");
    expect(report.conflicts).toEqual([]);
    expect(report.skipped).toEqual([]);
    expect(readdirSync(victim).sort()).toEqual([".dsync", "d"]);
  });

  test("a file deleted on the node that is ignored here and was changed since: kept and reported", async () => {
    const source = join(tempDir(), "ignored-delete");
    writeTree(source, { "notes.txt": "synced\n", "other.txt": "o\n" });
    await push(source, true);
    const victim = join(tempDir(), "victim");
    await pullJson(victim, ["--remote", node().url, "--folder", "ignored-delete"]);
    writeFileSync(join(victim, ".dsyncignore"), "notes.txt\n");
    writeFileSync(join(victim, "notes.txt"), "my private edits, never synced\n");

    rmSync(join(source, "notes.txt"));
    await push(source);
    const report = await pullJson(victim);
    expect(readFileSync(join(victim, "notes.txt"), "utf8")).toBe("my private edits, never synced\n");
    expect(reportedPaths(report)).toContain("notes.txt");
  });
});

test("a pull that removes a non-empty directory succeeds the first time", async () => {
  const source = join(tempDir(), "remove-dir");
  writeTree(source, { d: { "a.txt": "a\n", "b.txt": "b\n", sub: { "c.txt": "c\n" } }, "keep.txt": "k\n" });
  await push(source, true);
  const victim = join(tempDir(), "victim");
  await pullJson(victim, ["--remote", node().url, "--folder", "remove-dir"]);
  rmSync(join(source, "d"), { recursive: true });
  await push(source);
  const result = await runCli(["pull", victim, "--json"]);
  expect({ code: result.code, enoent: result.stderr.includes("ENOENT") }).toEqual({ code: 0, enoent: false });
  expect(result.json().paths_removed).toBe(5);
  expect(existsSync(join(victim, "d"))).toBe(false);
});

test("a sparse file pulls back sparse, each distinct chunk fetched once", async () => {
  const source = join(tempDir(), "sparse");
  mkdirSync(source);
  const path = join(source, "disk.img");
  execFileSync("truncate", ["-s", `${192 * MiB}`, path]);
  writeFileSync(join(source, "small.txt"), "s\n");
  const pushed = await push(source, true);
  // Pushing reads the zeros; one distinct chunk (plus the small file's) goes over the wire.
  expect(pushed.chunks_sent).toBeLessThanOrEqual(3);

  const victim = join(tempDir(), "victim");
  const report = await pullJson(victim, ["--remote", node().url, "--folder", "sparse"]);
  expect(report.chunks_fetched).toBeLessThanOrEqual(3);
  expect(report.bytes_fetched).toBeLessThan(MiB);
  const pulled = statSync(join(victim, "disk.img"));
  expect(pulled.size).toBe(192 * MiB);
  expect(pulled.blocks * 512).toBeLessThan(MiB);
  const probe = readFileSync(join(victim, "disk.img")).subarray(100 * MiB, 100 * MiB + 4096);
  expect(probe.every((b) => b === 0)).toBe(true);
});

test("a file that repeats one block, and a second copy of it, fetch each distinct chunk once", async () => {
  const source = join(tempDir(), "repeats");
  mkdirSync(source);
  const block = randomBytes(MiB, 5);
  const repeated = Buffer.concat(Array.from({ length: 24 }, () => block));
  writeFileSync(join(source, "repeated.bin"), repeated);
  writeFileSync(join(source, "copy.bin"), repeated);
  const pushed = await push(source, true);
  const victim = join(tempDir(), "victim");
  const report = await pullJson(victim, ["--remote", node().url, "--folder", "repeats"]);
  // Every chunk the push had to send is a distinct one; the pull needs no more than those.
  expect(report.chunks_fetched).toBe(pushed.chunks_sent);
  expect(report.bytes_fetched).toBeLessThan(3 * MiB);
  expect(readFileSync(join(victim, "repeated.bin")).equals(repeated)).toBe(true);
  expect(readFileSync(join(victim, "copy.bin")).equals(repeated)).toBe(true);
});

describe("special mode bits are never synced", () => {
  test("a hostile tree's setuid-root file, setgid file and setuid/sticky world-writable directories are pulled (as root) with their permission bits alone", async () => {
    const objects = new RawObjects();
    const content = new TextEncoder().encode("#!/bin/sh\nid\n");
    const chunk = objects.addBytes(content);
    const fileId = objects.add({ kind: "file", level: 0, sizeBytes: content.length, chunks: [{ id: chunk, lengthBytes: content.length }] });
    const file = (name: string, mode: number): TreeEntry => ({ name, kind: "file", mode, mtimeMs: OLD_MS, sizeBytes: content.length, id: fileId, target: null });
    const inner = objects.add({ kind: "tree", level: 0, entries: [file("inner-suid", 0o4755)] });
    const dir = (name: string, mode: number): TreeEntry => ({ name, kind: "dir", mode, mtimeMs: OLD_MS, sizeBytes: 0, id: inner, target: null });
    const root = objects.add({
      kind: "tree",
      level: 0,
      entries: [dir("d-setuid", 0o4777), dir("d-sticky", 0o1777), file("sgid", 0o2755), file("suid", 0o4755), file("suid-all", 0o7777)],
    });
    const server = rawObjectServer(objects, root);
    try {
      const victim = join(tempDir(), "victim");
      const result = await runCli(["pull", victim, "--remote", server.url, "--folder", server.folder, "--json"]);
      expect(result.code).toBe(0);
      const modeOf = (path: string) => (lstatSync(join(victim, path)).mode & 0o7777).toString(8);
      expect(Object.fromEntries(["suid", "sgid", "suid-all", "d-setuid", "d-sticky", "d-setuid/inner-suid", "d-sticky/inner-suid"].map((p) => [p, modeOf(p)]))).toEqual({
        suid: "755",
        sgid: "755",
        "suid-all": "777",
        "d-setuid": "777",
        "d-sticky": "777",
        "d-setuid/inner-suid": "755",
        "d-sticky/inner-suid": "755",
      });
    } finally {
      server.stop();
    }
  });
});

test("a local setuid file pushes as its permission bits; a pull keeps a local setgid directory's bit and the copy round-trips without a change", async () => {
  const source = join(tempDir(), "special-bits");
  writeTree(source, { shared: { "a.txt": "a\n" }, "tool": "#!/bin/sh\n" });
  chmodSync(join(source, "tool"), 0o4755);
  chmodSync(join(source, "shared"), 0o2775);
  await push(source, true);
  const victim = join(tempDir(), "victim");
  await pullJson(victim, ["--remote", node().url, "--folder", "special-bits"]);
  expect((lstatSync(join(victim, "tool")).mode & 0o7777).toString(8)).toBe("755");
  expect((lstatSync(join(victim, "shared")).mode & 0o7777).toString(8)).toBe("775");
  // A change in the shared directory comes back to the source: its own setgid bit stays.
  writeFileSync(join(victim, "shared", "b.txt"), "b\n");
  await push(victim);
  await pullJson(source);
  expect((lstatSync(join(source, "shared")).mode & 0o7777).toString(8)).toBe("2775");
  expect(readFileSync(join(source, "shared", "b.txt"), "utf8")).toBe("b\n");
  // Neither copy has anything to push: the special bits are not a change.
  for (const copy of [source, victim]) {
    const dry = await runCli(["push", copy, "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    const preview = dry.json();
    expect({ copy, changed: preview.changed, new: preview.new, deleted: preview.deleted }).toEqual({ copy, changed: [], new: [], deleted: [] });
  }
});
