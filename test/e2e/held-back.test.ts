// A pull that could not apply a path (its parent became a link outside the directory) still
// records the version it pulled; the path is held back. Once the user puts the directory back,
// a push must not send the old content there over the node's change, the next pull applies the
// node's change, and a path the user really edited meanwhile is pushed as an edit.
import { expect, test } from "bun:test";
import { readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const node = sharedNode();

async function cli(args: string[]) {
  const result = await runCli([...args, "--json"]);
  if (result.code !== 0) throw new Error(`dsync ${args.join(" ")} exited ${result.code}: ${result.stdout}${result.stderr}`);
  return result.json();
}

test("paths a pull skipped are retried by the next pull, and a push in between keeps the node's content there", async () => {
  const source = join(tempDir(), "held-back");
  writeTree(source, { d: { "a.txt": "a\n", "b.txt": "b\n" }, "top.txt": "t\n" });
  await cli(["push", source, "--remote", node().url]);
  const copy = join(tempDir(), "copy");
  await cli(["pull", copy, "--remote", node().url, "--folder", "held-back"]);

  // Here, d is moved outside and a link to it put in its place; on the node, both files change.
  const outside = join(tempDir("dsync-outside-"), "d");
  renameSync(join(copy, "d"), outside);
  symlinkSync(outside, join(copy, "d"));
  writeFileSync(join(source, "d", "a.txt"), "a from the node\n");
  writeFileSync(join(source, "d", "b.txt"), "b from the node\n");
  writeFileSync(join(source, "top.txt"), "t from the node\n");
  await cli(["push", source]);

  const skippedPull = await cli(["pull", copy]);
  const skipped = skippedPull.skipped.map((s: { path: string }) => s.path);
  expect(skipped).toContain("d/a.txt");
  expect(skipped).toContain("d/b.txt");
  expect(skippedPull.held_back).toBeGreaterThanOrEqual(2);
  expect(readFileSync(join(outside, "a.txt"), "utf8")).toBe("a\n"); // nothing written through the link
  expect(readFileSync(join(copy, "top.txt"), "utf8")).toBe("t from the node\n");
  // Pulled again with the link still there: still held back, and said so.
  const text = await runCli(["pull", copy]);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain("skipped d/a.txt");
  expect(text.stdout).toContain("held back: the next pull retries them");

  // The user puts the real directory back (the old content), and edits b.txt.
  rmSync(join(copy, "d"));
  renameSync(outside, join(copy, "d"));
  writeFileSync(join(copy, "d", "b.txt"), "b edited here\n");
  // A dry run says the same as the push: only the edit is sent.
  const preview = await cli(["push", copy, "--dry-run"]);
  expect(preview.changed.map((p: { path: string }) => p.path)).toEqual(["d/b.txt"]);
  expect([...preview.new, ...preview.deleted]).toEqual([]);
  await cli(["push", copy]);

  // (1) The head keeps the node's a.txt (no silent revert) and (3) has the edit of b.txt.
  const head = join(tempDir(), "head");
  await cli(["pull", head, "--remote", node().url, "--folder", "held-back"]);
  expect(readFileSync(join(head, "d", "a.txt"), "utf8")).toBe("a from the node\n");
  expect(readFileSync(join(head, "d", "b.txt"), "utf8")).toBe("b edited here\n");
  expect(readFileSync(join(head, "top.txt"), "utf8")).toBe("t from the node\n");

  // (2) The next pull applies the node's a.txt here, and keeps the edit.
  const retried = await cli(["pull", copy]);
  expect(retried.conflicts).toEqual([]);
  expect(retried.skipped).toEqual([]);
  expect(retried.held_back).toBe(0);
  expect(readFileSync(join(copy, "d", "a.txt"), "utf8")).toBe("a from the node\n");
  expect(readFileSync(join(copy, "d", "b.txt"), "utf8")).toBe("b edited here\n");

  // And the directory is in sync: a push now sends no change.
  const again = await cli(["push", copy]);
  expect(again.root).toBe(retried.root);
});

test("a pull that would hold back more than 10 000 paths does not record its version as synced, says so, and the next pull finishes it", async () => {
  const source = join(tempDir(), "held-back-many");
  const many: Record<string, string> = {};
  for (let i = 0; i <= 10_000; i++) many[`f${i}`] = "old\n";
  writeTree(source, { d: many, "top.txt": "t\n" });
  await cli(["push", source, "--remote", node().url]);
  const copy = join(tempDir(), "copy");
  await cli(["pull", copy, "--remote", node().url, "--folder", "held-back-many"]);

  const outside = join(tempDir("dsync-outside-"), "d");
  renameSync(join(copy, "d"), outside);
  symlinkSync(outside, join(copy, "d"));
  for (let i = 0; i <= 10_000; i++) writeFileSync(join(source, "d", `f${i}`), "new\n");
  await cli(["push", source]);

  const text = await runCli(["pull", copy]);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain("not recorded as synced: 10001 paths could not be written");
  // Not synced: a push waits for the pull to be finished, so nothing is reverted.
  const refused = await runCli(["push", copy]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain("was interrupted");

  rmSync(join(copy, "d"));
  renameSync(outside, join(copy, "d"));
  const finished = await cli(["pull", copy]);
  expect(finished.recorded).toBe(true);
  expect(finished.conflicts).toEqual([]);
  expect(readFileSync(join(copy, "d", "f10000"), "utf8")).toBe("new\n");
}, 120_000);
