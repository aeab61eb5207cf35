// Two clients push concurrently: changes to different paths are all kept, the later push wins a
// path both changed, the overwritten content is kept beside it as a conflict copy and stays in
// history.
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const node = sharedNode();

test("concurrent pushes merge three ways; last writer wins; the loser stays in history", async () => {
  const alice = join(tempDir(), "alice");
  writeTree(alice, { "shared.txt": "base\n", "keep.txt": "keep\n", "drop-by-bob.txt": "x\n", "edit-by-alice.txt": "1\n" });
  const base = (await runCli(["push", alice, "--remote", node().url, "--folder", "team", "--json"])).json();
  const bob = join(tempDir(), "bob");
  expect((await runCli(["pull", bob, "--remote", node().url, "--folder", "team"])).code).toBe(0);

  // Alice: edits shared.txt, adds a file, edits another.
  writeFileSync(join(alice, "shared.txt"), "alice's version\n");
  writeFileSync(join(alice, "from-alice.txt"), "hi from alice\n");
  writeFileSync(join(alice, "edit-by-alice.txt"), "2\n");
  const alicePush = (await runCli(["push", alice, "--json"])).json();
  expect(alicePush.merged).toBe(false);

  // Bob, still on the base version: edits shared.txt too, adds a file, deletes one.
  writeFileSync(join(bob, "shared.txt"), "bob's version\n");
  writeFileSync(join(bob, "from-bob.txt"), "hi from bob\n");
  rmSync(join(bob, "drop-by-bob.txt"));
  const bobResult = await runCli(["push", bob, "--json"]);
  expect(bobResult.code).toBe(0);
  const bobPush = bobResult.json();
  expect(bobPush.parent).toBe(base.version);
  expect(bobPush.merged).toBe(true);
  expect(bobPush.conflicts.map((c: { path: string }) => c.path)).toEqual(["shared.txt"]);
  expect(bobPush.conflicts[0].winner).toBe("theirs");
  // Alice's displaced content is kept beside the winner, named after the node that wrote it.
  expect(bobPush.conflicts[0].copies).toHaveLength(1);
  expect(bobPush.conflicts[0].copies[0]).toMatch(/^shared\.sync-conflict-\d{8}-\d{6}-[0-9a-f]{16}\.txt$/);

  // Everyone converges on the merge.
  const carol = join(tempDir(), "carol");
  expect((await runCli(["pull", carol, "--remote", node().url, "--folder", "team"])).code).toBe(0);
  expect(readFileSync(join(carol, "shared.txt"), "utf8")).toBe("bob's version\n");
  expect(readFileSync(join(carol, "from-alice.txt"), "utf8")).toBe("hi from alice\n");
  expect(readFileSync(join(carol, "from-bob.txt"), "utf8")).toBe("hi from bob\n");
  expect(readFileSync(join(carol, "edit-by-alice.txt"), "utf8")).toBe("2\n");
  expect(readFileSync(join(carol, "keep.txt"), "utf8")).toBe("keep\n");
  expect(existsSync(join(carol, "drop-by-bob.txt"))).toBe(false);
  expect(readFileSync(join(carol, bobPush.conflicts[0].copies[0]), "utf8")).toBe("alice's version\n");

  // Alice's overwritten content is still in history.
  const log = (await runCli(["log", carol, "--json"])).json();
  const merge = log.versions[0];
  expect(merge.parents).toEqual([alicePush.version, bobPush.pushed]);
  const old = join(tempDir(), "alice-old");
  expect((await runCli(["pull", old, "--remote", node().url, "--folder", "team", "--version", alicePush.version])).code).toBe(0);
  expect(readFileSync(join(old, "shared.txt"), "utf8")).toBe("alice's version\n");

  // Bob pulls the merge: he gets Alice's changes; his own files are untouched.
  const bobPull = (await runCli(["pull", bob, "--json"])).json();
  expect(bobPull.conflicts).toEqual([]);
  expect(readFileSync(join(bob, "from-alice.txt"), "utf8")).toBe("hi from alice\n");
  expect(readFileSync(join(bob, "shared.txt"), "utf8")).toBe("bob's version\n");
});

test("a pull never silently overwrites a file changed locally: it keeps a conflict copy", async () => {
  const one = join(tempDir(), "one");
  writeTree(one, { "notes.txt": "v1\n", "other.txt": "o\n" });
  await runCli(["push", one, "--remote", node().url, "--folder", "notes"]);
  const two = join(tempDir(), "two");
  await runCli(["pull", two, "--remote", node().url, "--folder", "notes"]);
  writeFileSync(join(one, "notes.txt"), "remote edit\n");
  await runCli(["push", one]);
  writeFileSync(join(two, "notes.txt"), "local edit\n");
  const pulled = await runCli(["pull", two, "--json"]);
  expect(pulled.code).toBe(0);
  const report = pulled.json();
  expect(report.conflicts).toHaveLength(1);
  expect(report.conflicts[0].path).toBe("notes.txt");
  expect(readFileSync(join(two, "notes.txt"), "utf8")).toBe("remote edit\n");
  expect(readFileSync(join(two, report.conflicts[0].keptAs), "utf8")).toBe("local edit\n");
  expect(report.conflicts[0].keptAs).toMatch(/^notes\.sync-conflict-\d{8}-\d{6}-local\.txt$/);
});

test("temp files left by an interrupted write are never pushed and are cleared by the next pull", async () => {
  const dir = join(tempDir(), "leftovers");
  writeTree(dir, { "a.txt": "a\n", sub: { ".dsync-tmp-0123456789abcdef": "half a file" } });
  const pushed = (await runCli(["push", dir, "--remote", node().url, "--json"])).json();
  expect(pushed.files).toBe(1);
  const pulled = await runCli(["pull", dir, "--json"]);
  expect(pulled.code).toBe(0);
  expect(existsSync(join(dir, "sub", ".dsync-tmp-0123456789abcdef"))).toBe(false);
  expect(readFileSync(join(dir, "a.txt"), "utf8")).toBe("a\n");
});
