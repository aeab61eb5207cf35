// Retention and garbage collection: pruned versions disappear, what kept versions need stays,
// and the store verifies clean afterwards.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";

const node = sharedNode();

test("keep-versions prunes history and gc reclaims what only pruned versions used", async () => {
  const dir = join(tempDir(), "retained");
  writeTree(dir, { "stable.bin": randomBytes(500_000, 1), "changing.bin": randomBytes(400_000, 2) });
  const versions: string[] = [];
  for (let round = 0; round < 4; round++) {
    writeFileSync(join(dir, "changing.bin"), randomBytes(400_000, 100 + round));
    const args = ["push", dir, "--remote", node().url, "--json", ...(round === 0 ? ["--keep-versions", "2"] : [])];
    versions.push((await runCli(args)).json().version);
  }
  const headTree = describeTree(dir);

  const dry = (await runCli(["gc", "--remote", node().url, "--grace-ms", "0", "--dry-run", "--json"])).json();
  expect(dry.versionsPruned).toBe(2);
  expect(dry.objectsDeleted).toBeGreaterThan(0);
  expect((await runCli(["log", dir, "--json"])).json().versions).toHaveLength(4);

  const report = (await runCli(["gc", "--remote", node().url, "--grace-ms", "0", "--json"])).json();
  expect(report.versionsPruned).toBe(2);
  // The two pruned versions' own changing.bin chunks and nodes, and their version objects.
  expect(report.objectsDeleted).toBeGreaterThanOrEqual(6);
  const log = (await runCli(["log", dir, "--json"])).json();
  expect(log.versions.map((v: { id: string }) => v.id)).toEqual([versions[3], versions[2]]);

  // What is left is whole: the head and the other kept version restore, and verify is clean.
  const head = join(tempDir(), "head");
  expect((await runCli(["pull", head, "--remote", node().url, "--folder", "retained"])).code).toBe(0);
  expect(describeTree(head)).toEqual(headTree);
  const older = join(tempDir(), "older");
  expect((await runCli(["pull", older, "--remote", node().url, "--folder", "retained", "--version", versions[2]!])).code).toBe(0);
  const verify = await runCli(["verify", "--remote", node().url, "--json"]);
  expect(verify.json()).toMatchObject({ healthy: true, corrupt: [], missing: [] });

  // A second collection finds nothing more to do.
  const again = (await runCli(["gc", "--remote", node().url, "--grace-ms", "0", "--json"])).json();
  expect(again.versionsPruned).toBe(0);
  expect(again.objectsDeleted).toBe(0);
});

test("objects used within the grace period survive, and a push after gc still works", async () => {
  const dir = join(tempDir(), "graceful");
  writeTree(dir, { "a.bin": randomBytes(200_000, 5) });
  await runCli(["push", dir, "--remote", node().url, "--json", "--keep-versions", "1"]);
  writeFileSync(join(dir, "a.bin"), randomBytes(200_000, 6));
  await runCli(["push", dir, "--json"]);
  // Default grace (15 minutes): the pruned version's objects were used moments ago and stay.
  const report = (await runCli(["gc", "--remote", node().url, "--json"])).json();
  expect(report.versionsPruned).toBe(1);
  expect(report.objectsDeleted).toBe(0);
  // Bring the old content back: the node still has it, so nothing but nodes need to move.
  writeFileSync(join(dir, "a.bin"), randomBytes(200_000, 5));
  const pushed = (await runCli(["push", dir, "--json"])).json();
  expect(pushed.chunks_sent).toBe(0);
  const verify = await runCli(["verify", "--remote", node().url]);
  expect(verify.code).toBe(0);
});

test("a push that relies on chunks of a version collected since then re-sends them and lands whole", async () => {
  // Alice pushes v1 and keeps it as her last synced version.
  const alice = join(tempDir(), "collected");
  const big = randomBytes(3_000_000, 77);
  writeTree(alice, { "big.bin": big });
  const v1 = (await runCli(["push", alice, "--remote", node().url, "--json", "--keep-versions", "1"])).json();
  // Bob replaces the folder's content; retention keeps only his version, and GC deletes v1's chunks.
  const bob = join(tempDir(), "bob-collected");
  await runCli(["pull", bob, "--remote", node().url, "--folder", "collected"]);
  writeFileSync(join(bob, "big.bin"), randomBytes(3_000_000, 78));
  await runCli(["push", bob, "--json"]);
  const collected = (await runCli(["gc", "--remote", node().url, "--grace-ms", "0", "--json"])).json();
  expect(collected.versionsPruned).toBeGreaterThanOrEqual(1); // other folders of this file may prune too
  expect(collected.objectsDeleted).toBeGreaterThan(30);

  // Alice edits one byte: she assumes the node still has v1's other chunks; it does not.
  big[1_500_000] ^= 0xff;
  writeFileSync(join(alice, "big.bin"), big);
  const pushed = await runCli(["push", alice, "--json"]);
  expect(pushed.stderr).toBe("");
  expect(pushed.code).toBe(0);
  const report = pushed.json();
  expect(report.parent).toBe(v1.version);
  expect(report.chunks_sent).toBeGreaterThan(30);
  const copy = join(tempDir(), "collected-copy");
  expect((await runCli(["pull", copy, "--remote", node().url, "--folder", "collected", "--version", report.pushed])).code).toBe(0);
  expect(describeTree(copy)).toEqual(describeTree(alice));
  expect((await runCli(["verify", "--remote", node().url])).code).toBe(0);
});
