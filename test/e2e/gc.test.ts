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
