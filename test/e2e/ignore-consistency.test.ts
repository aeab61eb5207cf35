// Ignore rules hold everywhere a path can leak or be lost, on real processes: an ignore file
// that cannot be read, diff of a directory (what a push would send), a pull that holds back a
// directory replaced on the node, a directory moved aside as a conflict copy, and
// push --dry-run (what would be sent, skipped and deleted; nothing sent).
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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

/** Every file below dir (not .dsync) with its content. */
function filesIn(dir: string, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = `${prefix}${entry.name}`;
    if (path === ".dsync") continue;
    if (entry.isDirectory()) Object.assign(out, filesIn(dir, `${path}/`));
    else out[path] = readFileSync(join(dir, path), "utf8");
  }
  return out;
}

/** The folder's head as a fresh copy sees it. */
async function headFiles(folder: string): Promise<Record<string, string>> {
  const copy = join(tempDir(), "head");
  expect((await pull(copy, folder)).code).toBe(0);
  return filesIn(copy);
}

async function headId(folder: string): Promise<string | null> {
  const listed = (await runCli(["ls", "--remote", node().url, "--json"])).json<{ folders: { name: string; head: string | null }[] }>();
  return listed.folders.find((f) => f.name === folder)?.head ?? null;
}

describe("an ignore file that cannot be read", () => {
  test("its directory is not read: the push keeps it as last synced (exit 3) instead of sending what it excluded", async () => {
    const dir = join(tempDir(), "rules-gone");
    writeTree(dir, { "a.txt": "a", sub: { ".dsyncignore": ".env\n", "b.txt": "b" } });
    expect((await push(dir)).code).toBe(0);
    writeFileSync(join(dir, "sub", ".env"), "SECRET=1");
    writeFileSync(join(dir, "sub", "b.txt"), "b v2");
    writeFileSync(join(dir, "a.txt"), "a v2");
    // The rules become a link to a file that is gone (shared rules on an unmounted drive).
    rmSync(join(dir, "sub", ".dsyncignore"));
    symlinkSync("/nonexistent/dsync-rules", join(dir, "sub", ".dsyncignore"));
    const pushed = await push(dir);
    expect(pushed.code).toBe(3);
    const report = pushed.json();
    expect(report.skipped).toContainEqual({ path: "sub", cause: "unreadable", reason: expect.stringMatching(/cannot read its ignore file sub\/\.dsyncignore/) });
    expect(await headFiles("rules-gone")).toEqual({ "a.txt": "a v2", "sub/.dsyncignore": ".env\n", "sub/b.txt": "b" });
  });
});

/** As nobody, when this runs as root with setpriv; otherwise an error saying so, never a skip. */
async function runAsNobodyChecked(args: string[], home: string): Promise<CliResult> {
  if (process.getuid?.() !== 0 || Bun.which("setpriv") === null) throw new Error("this test runs as root with setpriv (util-linux) to become an unprivileged user");
  return runAsNobody(args, home);
}

describe("an ignore file its user cannot read", () => {
  test("chmod 000 on sub/.dsyncignore, as an unprivileged client: sub is kept as last synced, its .env never sent", async () => {
    const home = tempDir();
    chmodSync(home, 0o777);
    const dir = join(home, "rules-locked");
    writeTree(dir, { "a.txt": "a", sub: { ".dsyncignore": ".env\n", "b.txt": "b" } });
    chownTree(home);
    expect((await runAsNobodyChecked(["push", dir, "--remote", node().url, "--json"], home)).code).toBe(0);
    writeFileSync(join(dir, "sub", ".env"), "SECRET=1");
    chownSync(join(dir, "sub", ".env"), NOBODY, NOBODY);
    chmodSync(join(dir, "sub", ".dsyncignore"), 0o000);
    const pushed = await runAsNobodyChecked(["push", dir, "--remote", node().url, "--json"], home);
    expect(pushed.code).toBe(3);
    expect(pushed.json().skipped).toContainEqual({ path: "sub", cause: "unreadable", reason: expect.stringMatching(/cannot read its ignore file sub\/\.dsyncignore: .*(EACCES|permission denied)/i) });
    expect(await headFiles("rules-locked")).toEqual({ "a.txt": "a", "sub/.dsyncignore": ".env\n", "sub/b.txt": "b" });
  });
});

describe("diff of a directory compares what a push would send", () => {
  test("ignored paths are not differences; they are counted as not compared", async () => {
    const dir = join(tempDir(), "diff-ign");
    writeTree(dir, { "a.txt": "a", "x.bin": "x v1" });
    expect((await push(dir)).code).toBe(0);
    writeFileSync(join(dir, ".dsyncignore"), ".dsyncignore\n*.bin\n");
    writeFileSync(join(dir, "x.bin"), "x changed here, ignored");
    writeFileSync(join(dir, "local.bin"), "never synced, ignored");
    const url = `${node().url}/diff-ign`;
    const text = await runCli(["diff", dir, url]);
    expect({ code: text.code, stdout: text.stdout }).toEqual({ code: 0, stdout: "" });
    expect(text.stderr).toContain("a: 3 paths not compared (3 ignored)");
    const json = (await runCli(["diff", dir, url, "--json"])).json();
    expect(json.identical).toBe(true);
    expect(json.a.notRead).toEqual({ ignored: 3, unreadable: 0, unsupported: 0, paths: expect.any(Array) });
    expect(json.a.notRead.paths.map((p: { path: string }) => p.path).sort()).toEqual([".dsyncignore", "local.bin", "x.bin"]);
    // A change that is not ignored still shows.
    writeFileSync(join(dir, "a.txt"), "a v2");
    const changed = await runCli(["diff", dir, url]);
    expect({ code: changed.code, stdout: changed.stdout }).toEqual({ code: 1, stdout: "M a.txt\n" });
  });
});

describe("a pull holds back a directory replaced on the node while it holds paths not read", () => {
  test("the whole subtree change is held back: no removal below it is applied", async () => {
    const a = join(tempDir(), "held");
    writeTree(a, { d: { "a.txt": "a", e: { "b.txt": "b" } }, "other.txt": "o" });
    expect((await push(a)).code).toBe(0);
    const b = join(tempDir(), "held-b");
    expect((await pull(b, "held")).code).toBe(0);
    writeFileSync(join(b, ".dsyncignore"), ".dsyncignore\n*.log\n");
    writeFileSync(join(b, "d", "e", "x.log"), "local log");
    // On A, d becomes a file.
    rmSync(join(a, "d"), { recursive: true });
    writeFileSync(join(a, "d"), "d is a file now");
    writeFileSync(join(a, "other.txt"), "o v2");
    expect((await push(a)).code).toBe(0);
    const pulled = await pull(b, "held");
    expect(pulled.code).toBe(0);
    expect(filesIn(b)).toEqual({ ".dsyncignore": ".dsyncignore\n*.log\n", "d/a.txt": "a", "d/e/b.txt": "b", "d/e/x.log": "local log", "other.txt": "o v2" });
    const report = pulled.json();
    expect(report.not_applied).toBe(4); // d itself, d/a.txt, d/e, d/e/b.txt
    expect(report.skipped).toContainEqual({ path: "d/e/x.log", cause: "ignored", reason: "ignored here: 4 change(s) on the node not applied" });
  });
});

describe("a directory moved aside as a conflict copy keeps its ignored files private", () => {
  test("rules anchored to the old path still leave them out of the next push", async () => {
    const a = join(tempDir(), "moved");
    writeTree(a, { "readme.txt": "r" });
    expect((await push(a)).code).toBe(0);
    const b = join(tempDir(), "moved-b");
    expect((await pull(b, "moved")).code).toBe(0);
    // B starts a directory d of its own, with a secret its rules keep out (anchored to d).
    writeTree(b, { ".dsyncignore": "/d/.env\n/d/keys/\n", d: { ".env": "SECRET=1", keys: { id: "private key" }, "notes.txt": "notes" } });
    // Meanwhile A pushes a file named d.
    writeFileSync(join(a, "d"), "a file from a");
    expect((await push(a)).code).toBe(0);
    const pulled = await pull(b, "moved");
    expect(pulled.code).toBe(0);
    const [conflict] = pulled.json().conflicts;
    expect(conflict.path).toBe("d");
    expect(conflict.keptAs).toMatch(/^d\.sync-conflict-\d{8}-\d{6}-local$/);
    const copy = conflict.keptAs as string;
    expect(readFileSync(join(b, copy, ".env"), "utf8")).toBe("SECRET=1");
    expect(lstatSync(join(b, "d")).isFile()).toBe(true);
    // B pushes: the conflict copy's notes are sent, its secret and keys are not.
    const pushed = await push(b);
    expect(pushed.code).toBe(0);
    expect(await headFiles("moved")).toEqual({ ".dsyncignore": "/d/.env\n/d/keys/\n", "readme.txt": "r", d: "a file from a", [`${copy}/notes.txt`]: "notes" });
  });
});

describe("push --dry-run", () => {
  test("lists what would be sent, skipped and deleted; sends and records nothing", async () => {
    const dir = join(tempDir(), "preview");
    writeTree(dir, { "keep.txt": "k", "old.txt": "old", "edit.txt": "v1", sub: { "s.txt": "s" } });
    expect((await push(dir)).code).toBe(0);
    const before = await headId("preview");
    const state = readFileSync(join(dir, ".dsync", "state.json"), "utf8");
    rmSync(join(dir, "old.txt"));
    writeFileSync(join(dir, "edit.txt"), "v2");
    writeTree(dir, { ".dsyncignore": "*.log\n", "new.txt": "n", "debug.log": "log", docs: { "d.md": "d" } });
    const dry = await push(dir, "--dry-run");
    expect(dry.code).toBe(0);
    const preview = dry.json();
    expect(preview.dry_run).toBe(true);
    expect(preview.parent).toBe(before);
    expect(preview.head).toBe(before);
    expect(preview.new.map((p: { path: string }) => p.path)).toEqual([".dsyncignore", "docs", "docs/d.md", "new.txt"]);
    expect(preview.changed).toEqual([{ path: "edit.txt", kind: "file" }]);
    expect(preview.deleted).toEqual([{ path: "old.txt", kind: "file" }]);
    expect(preview.skipped).toEqual([{ path: "debug.log", cause: "ignored", reason: "ignored by .dsyncignore" }]);
    expect(preview.chunks_to_send).toBe(4); // .dsyncignore, d.md, new.txt, edit.txt: one small chunk each
    expect(preview.bytes_to_send).toBeGreaterThan(0);
    expect(preview.refused).toBeNull();
    // Nothing changed: the node's head, the directory's state.
    expect(await headId("preview")).toBe(before);
    expect(readFileSync(join(dir, ".dsync", "state.json"), "utf8")).toBe(state);

    const text = await runCli(["push", dir, "--remote", node().url, "--dry-run"]);
    expect(text.code).toBe(0);
    expect(text.stdout.split("\n")).toEqual([
      expect.stringMatching(/^dry run: would push .*preview to http:\/\/127\.0\.0\.1:\d+, folder preview \(on version [0-9a-f]{12}\); nothing sent, nothing recorded$/),
      "  new      .dsyncignore",
      "  new      docs/",
      "  new      docs/d.md",
      "  new      new.txt",
      "  changed  edit.txt",
      "  deleted  old.txt",
      "  skipped  debug.log: ignored by .dsyncignore",
      expect.stringMatching(/^  4 new paths, 1 changed path, 1 deleted path, 1 path skipped; would send 4 chunks and \d+ nodes, [\d.]+ (B|KiB)$/),
      "",
    ]);
    // The real push sends what the dry run said.
    const pushed = (await push(dir)).json();
    expect(pushed.chunks_sent).toBe(4);
    expect(await headFiles("preview")).toEqual({ ".dsyncignore": "*.log\n", "keep.txt": "k", "edit.txt": "v2", "new.txt": "n", "docs/d.md": "d", "sub/s.txt": "s" });
  });

  test("a first push's dry run creates no folder; a push the deletion guard would refuse says so and exits 1", async () => {
    const dir = join(tempDir(), "preview-first");
    const files: Record<string, string> = {};
    for (let i = 0; i < 120; i++) files[`f${i}.txt`] = `file ${i}`;
    writeTree(dir, files);
    const first = await push(dir, "--dry-run");
    expect(first.code).toBe(0);
    expect(first.json().parent).toBeNull();
    expect(first.json().head).toBeNull();
    expect(first.json().new).toHaveLength(120);
    expect(await headId("preview-first")).toBeNull();
    expect(existsSync(join(dir, ".dsync", "state.json"))).toBe(false);
    expect((await push(dir)).code).toBe(0);
    for (let i = 0; i < 110; i++) rmSync(join(dir, `f${i}.txt`));
    const refused = await push(dir, "--dry-run");
    expect(refused.code).toBe(1);
    expect(refused.json().deleted).toHaveLength(110);
    expect(refused.json().refused).toContain("refusing to push");
  });

  test("a dry run based on an older version says the node would merge it with the head", async () => {
    const a = join(tempDir(), "preview-merge");
    writeTree(a, { "a.txt": "a" });
    expect((await push(a)).code).toBe(0);
    const b = join(tempDir(), "preview-merge-b");
    expect((await pull(b, "preview-merge")).code).toBe(0);
    writeFileSync(join(b, "b.txt"), "b");
    expect((await push(b)).code).toBe(0);
    writeFileSync(join(a, "a.txt"), "a v2");
    const dry = await runCli(["push", a, "--remote", node().url, "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("  changed  a.txt\n");
    expect(dry.stdout).toMatch(/the folder's head on the node is [0-9a-f]{12}, not this push's base: the node would merge the two/);
  });
});
