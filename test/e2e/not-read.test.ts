// What a copy does not read is never pushed as deleted, and a pull leaves it alone: ignored
// paths, unreadable files and directories (a real unprivileged client), and names that are not
// UTF-8. The mass-deletion guard refuses pushing an emptied directory over a folder.
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, sharedNode, tempDir, type CliResult } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";
import { chownTree, NOBODY, runAsNobody } from "../helpers/unprivileged.ts";

const node = sharedNode();

async function push(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli(["push", dir, "--remote", node().url, "--json", ...args]);
}

async function pull(dir: string, folder: string, ...args: string[]): Promise<CliResult> {
  return runCli(["pull", dir, "--remote", node().url, "--folder", folder, "--json", ...args]);
}

/** The folder's head as a fresh copy sees it: every file path with its content. */
async function headFiles(folder: string): Promise<Record<string, string>> {
  const copy = join(tempDir(), "head");
  const pulled = await pull(copy, folder);
  expect(pulled.code).toBe(0);
  const out: Record<string, string> = {};
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (prefix === "" && entry.name === ".dsync") continue;
      if (entry.isDirectory()) walk(join(dir, entry.name), `${prefix}${entry.name}/`);
      else out[`${prefix}${entry.name}`] = readFileSync(join(dir, entry.name), "utf8");
    }
  };
  walk(copy, "");
  return out;
}

async function headId(folder: string): Promise<string | null> {
  const listed = (await runCli(["ls", "--remote", node().url, "--json"])).json<{ folders: { name: string; head: string | null }[] }>();
  return listed.folders.find((f) => f.name === folder)?.head ?? null;
}

describe("ignoring a path stops syncing it; it never deletes it elsewhere", () => {
  test("*.bin ignored after a sync: the push keeps them in the head, the other copy keeps its files, and neither side overwrites the other's", async () => {
    const a = join(tempDir(), "ign");
    writeTree(a, { "notes.txt": "notes", "x.bin": "x v1", data: { "y.bin": "y v1", "z.txt": "z" }, cache: { "c.txt": "c" } });
    expect((await push(a)).code).toBe(0);
    const b = join(tempDir(), "ign-b");
    expect((await pull(b, "ign")).code).toBe(0);

    // A stops syncing *.bin and cache/ (with rules of its own: the ignore file ignores itself,
    // so B does not get them), and edits a synced file.
    writeFileSync(join(a, ".dsyncignore"), ".dsyncignore\n*.bin\ncache/\n");
    writeFileSync(join(a, "notes.txt"), "notes v2");
    const pushed = await push(a);
    expect(pushed.code).toBe(0);
    expect(await headFiles("ign")).toEqual({ "notes.txt": "notes v2", "x.bin": "x v1", "data/y.bin": "y v1", "data/z.txt": "z", "cache/c.txt": "c" });
    const report = pushed.json();
    expect(report.ignored).toBe(4);
    expect(report.kept).toBe(3);
    expect(report.files).toBe(5);

    // B pulls: its files are all still there.
    expect((await pull(b, "ign")).json().paths_removed).toBe(0);
    expect(readFileSync(join(b, "x.bin"), "utf8")).toBe("x v1");
    expect(readFileSync(join(b, "cache/c.txt"), "utf8")).toBe("c");

    // B changes an ignored-in-A file; A's pull does not write over A's own copy of it ...
    writeFileSync(join(b, "x.bin"), "x changed by b");
    expect((await push(b)).code).toBe(0);
    writeFileSync(join(a, "data/y.bin"), "y local to a");
    const pulledA = (await pull(a, "ign")).json();
    expect(readFileSync(join(a, "x.bin"), "utf8")).toBe("x v1");
    expect(pulledA.not_applied).toBe(1);
    expect(pulledA.skipped).toContainEqual({ path: "x.bin", reason: "ignored here: 1 change(s) on the node not applied", cause: "ignored" });
    // ... and A's next push does not revert B's change, nor send its own ignored edit.
    writeFileSync(join(a, "notes.txt"), "notes v3");
    expect((await push(a)).code).toBe(0);
    const head = await headFiles("ign");
    expect(head["x.bin"]).toBe("x changed by b");
    expect(head["data/y.bin"]).toBe("y v1");
    expect(head["notes.txt"]).toBe("notes v3");
  });

  test("a pull does not delete an ignored local file the node deleted, nor write one the node added", async () => {
    const a = join(tempDir(), "ign2");
    writeTree(a, { "keep.txt": "k", "old.log": "old log" });
    expect((await push(a)).code).toBe(0);
    const b = join(tempDir(), "ign2-b");
    expect((await pull(b, "ign2")).code).toBe(0);
    writeFileSync(join(b, ".dsyncignore"), "*.log\n");
    expect((await push(b)).code).toBe(0);
    // On A (which syncs logs): delete old.log, add new.log.
    rmSync(join(a, "old.log"));
    writeFileSync(join(a, "new.log"), "new log");
    expect((await push(a)).code).toBe(0);
    const pulled = (await pull(b, "ign2")).json();
    expect(existsSync(join(b, "old.log"))).toBe(true);
    expect(existsSync(join(b, "new.log"))).toBe(false);
    expect(pulled.not_applied).toBe(2);
  });
});

// The unprivileged client runs through setpriv (util-linux), which needs root: a machine
// without either fails this test, saying so, rather than skipping it.
const HAS_SETPRIV = Bun.which("setpriv") !== null && process.getuid?.() === 0;

describe("an unreadable file or directory keeps its last synced entry", () => {
  test("as an unprivileged client: the push exits 3, names the paths and errors, and the head still holds them", async () => {
    if (!HAS_SETPRIV) throw new Error("this test runs the client as nobody through setpriv (util-linux) and needs root: install util-linux and run as root");
    const home = tempDir();
    chmodSync(home, 0o777);
    const dir = join(home, "unread");
    writeTree(dir, { "a.txt": "a", "secret.txt": "s", locked: { "in.txt": "inside" } });
    chownTree(home);
    const first = await runAsNobody(["push", dir, "--remote", node().url, "--json"], home);
    expect(first.code).toBe(0);

    chmodSync(join(dir, "secret.txt"), 0o000);
    chmodSync(join(dir, "locked"), 0o000);
    writeFileSync(join(dir, "a.txt"), "a v2");
    chownSync(join(dir, "a.txt"), NOBODY, NOBODY);
    const second = await runAsNobody(["push", dir, "--remote", node().url, "--json"], home);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain("2 paths could not be read");
    const report = second.json();
    expect(report.unreadable).toBe(2);
    expect(report.kept).toBe(2);
    const byPath = Object.fromEntries(report.skipped.map((s: { path: string; reason: string }) => [s.path, s.reason]));
    expect(byPath["secret.txt"]).toMatch(/cannot open: .*(EACCES|permission denied)/i);
    expect(byPath["locked"]).toMatch(/cannot read directory: .*(EACCES|permission denied)/i);
    expect(await headFiles("unread")).toEqual({ "a.txt": "a v2", "secret.txt": "s", "locked/in.txt": "inside" });

    // A pull as that user leaves the unreadable paths alone too, and succeeds.
    const pulled = await runAsNobody(["pull", dir, "--remote", node().url, "--json"], home);
    expect(pulled.code).toBe(0);
    chmodSync(join(dir, "secret.txt"), 0o644);
    expect(readFileSync(join(dir, "secret.txt"), "utf8")).toBe("s");
  });
});

const HAS_MKFIFO = Bun.which("mkfifo") !== null;

describe("a path dsync does not sync", () => {
  test("a synced file replaced by a FIFO keeps its synced entry; a pull leaves the FIFO alone", async () => {
    const dir = join(tempDir(), "fifo");
    writeTree(dir, { "a.txt": "a", "p": "was a file" });
    expect((await push(dir)).code).toBe(0);
    rmSync(join(dir, "p"));
    const made = Bun.spawnSync(["mkfifo", join(dir, "p")]);
    expect(made.exitCode).toBe(0);
    writeFileSync(join(dir, "a.txt"), "a v2");
    const pushed = await push(dir);
    expect(pushed.code).toBe(0);
    expect(pushed.json().kept).toBe(1);
    expect(await headFiles("fifo")).toEqual({ "a.txt": "a v2", p: "was a file" });
    const pulled = await pull(dir, "fifo");
    expect(pulled.code).toBe(0);
    expect(lstatSync(join(dir, "p")).isFIFO()).toBe(true);
  });
});

describe("the mass-deletion guard", () => {
  test("an emptied directory pushed over 200 files is refused, nothing changes on the node; --allow-deletes pushes it", async () => {
    const dir = join(tempDir(), "guarded");
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`f${i}.txt`] = `file ${i}`;
    writeTree(dir, { ...files, sub: { "s.txt": "s" } });
    expect((await push(dir)).code).toBe(0);
    const before = await headId("guarded");

    // Everything gone but the sync state: what an unmounted or wiped directory looks like.
    for (const name of readdirSync(dir)) if (name !== ".dsync") rmSync(join(dir, name), { recursive: true });
    const refused = await push(dir);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain("refusing to push");
    expect(refused.stderr).toContain("it would delete 201 of the 201 files of folder guarded (100%)");
    expect(refused.stderr).toContain("holds no files: is it the right directory, and is it mounted?");
    expect(refused.stderr).toContain("--allow-deletes");
    expect(await headId("guarded")).toBe(before);

    // Thresholds are flags: 100% allows anything.
    const lenient = await push(dir, "--max-delete-percent", "100", "--message", "lenient");
    expect(lenient.code).toBe(0);
    expect(await headId("guarded")).not.toBe(before);
  });

  test("deleting fewer than the minimum, or under the share, passes; --allow-deletes passes the rest", async () => {
    const dir = join(tempDir(), "guarded2");
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`f${i}.txt`] = `file ${i}`;
    writeTree(dir, files);
    expect((await push(dir)).code).toBe(0);
    // 120 of 300 (40%): under the share.
    for (let i = 0; i < 120; i++) rmSync(join(dir, `f${i}.txt`));
    expect((await push(dir)).code).toBe(0);
    // 170 of the remaining 180 (94%): refused, then allowed.
    for (let i = 120; i < 290; i++) rmSync(join(dir, `f${i}.txt`));
    const refused = await push(dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("it would delete 170 of the 180 files");
    const allowed = await push(dir, "--allow-deletes");
    expect(allowed.code).toBe(0);
    expect(allowed.json().files).toBe(10);
    // A small folder: 5 of 5 deleted is under the minimum of 100 files.
    const small = join(tempDir(), "guarded3");
    writeTree(small, { a: "a", b: "b", c: "c", d: "d", e: "e" });
    expect((await push(small)).code).toBe(0);
    for (const name of ["a", "b", "c", "d", "e"]) rmSync(join(small, name));
    expect((await push(small)).code).toBe(0);
    // ... unless the minimum is lowered.
    writeTree(small, { a: "a", b: "b" });
    expect((await push(small)).code).toBe(0);
    rmSync(join(small, "a"));
    rmSync(join(small, "b"));
    expect((await push(small, "--max-delete-min-files", "1")).code).toBe(1);
  });

  test("an empty directory without sync state (an unmounted mount point) pushed to the folder deletes nothing", async () => {
    const dir = join(tempDir(), "mounted");
    writeTree(dir, { "a.txt": "a", sub: { "b.txt": "b" } });
    expect((await push(dir)).code).toBe(0);
    const mountPoint = join(tempDir(), "mountpoint");
    mkdirSync(mountPoint);
    const pushed = await push(mountPoint, "--folder", "mounted");
    expect(pushed.code).toBe(0);
    expect(pushed.json().parent).toBeNull();
    expect(await headFiles("mounted")).toEqual({ "a.txt": "a", "sub/b.txt": "b" });
  });

  test("ignored paths are not counted as deletions", async () => {
    const dir = join(tempDir(), "guarded4");
    const files: Record<string, string> = {};
    for (let i = 0; i < 150; i++) files[`f${i}.bin`] = `bin ${i}`;
    writeTree(dir, { ...files, "a.txt": "a" });
    expect((await push(dir)).code).toBe(0);
    writeFileSync(join(dir, ".dsyncignore"), "*.bin\n");
    const pushed = await push(dir);
    expect(pushed.code).toBe(0);
    expect(pushed.json().files).toBe(152);
  });
});

describe("a name that is not UTF-8 never blocks its directory", () => {
  test("names differing only by normalization or case push and pull as distinct files", async () => {
    const dir = join(tempDir(), "lookalikes");
    writeTree(dir, { "caf\u00e9.txt": "nfc", "cafe\u0301.txt": "nfd", "Readme.md": "upper", "readme.md": "lower" });
    const pushed = await push(dir);
    expect(pushed.code).toBe(0);
    expect(pushed.json().skipped).toEqual([]);
    expect(await headFiles("lookalikes")).toEqual({ "caf\u00e9.txt": "nfc", "cafe\u0301.txt": "nfd", "Readme.md": "upper", "readme.md": "lower" });
  });

  test("x\\xff.txt beside x\\uFFFD.txt: the push and pull succeed, the bad name is reported escaped, the rest syncs", async () => {
    const dir = join(tempDir(), "badname");
    mkdirSync(join(dir, "d"), { recursive: true });
    writeFileSync(Buffer.concat([Buffer.from(join(dir, "d") + "/x"), Buffer.from([0xff]), Buffer.from(".txt")]), "latin-1 name");
    writeFileSync(join(dir, "d", "x\uFFFD.txt"), "replacement character name");
    writeFileSync(join(dir, "d", "other.txt"), "other");
    const pushed = await push(dir);
    expect(pushed.code).toBe(0);
    expect(pushed.json().skipped).toEqual([{ path: "d/x\\xff.txt", reason: "the name is not valid UTF-8; not synced", cause: "unsupported" }]);
    expect(await headFiles("badname")).toEqual({ "d/x\uFFFD.txt": "replacement character name", "d/other.txt": "other" });

    // A change elsewhere is pulled into the directory holding the bad name, which stays as it was.
    const other = join(tempDir(), "badname-b");
    expect((await pull(other, "badname")).code).toBe(0);
    writeFileSync(join(other, "d", "new.txt"), "new");
    writeFileSync(join(other, "d", "x\uFFFD.txt"), "changed elsewhere");
    expect((await push(other)).code).toBe(0);
    const pulled = await pull(dir, "badname");
    expect(pulled.code).toBe(0);
    expect(readFileSync(join(dir, "d", "new.txt"), "utf8")).toBe("new");
    expect(readFileSync(join(dir, "d", "x\uFFFD.txt"), "utf8")).toBe("changed elsewhere");
    expect(readFileSync(Buffer.concat([Buffer.from(join(dir, "d") + "/x"), Buffer.from([0xff]), Buffer.from(".txt")]), "utf8")).toBe("latin-1 name");
  });
});
