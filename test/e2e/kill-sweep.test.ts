// A sample of the kill sweep (scripts/kill-sweep.ts) in the suite: the same code, about 20 points
// over every phase with a fixed seed. Where a kill lands (before, during or after the operation)
// depends on the machine's speed and never fails the test; a lost acknowledged version, a verify
// or integrity failure, a temp file left behind or a pulled tree that is not its version does.
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PHASES, formatSummary, runKillSweep } from "../../scripts/kill-sweep.ts";
import { checkSqliteIntegrity, findTempFiles, treeRootHex } from "../../scripts/kill-sweep/checks.ts";
import { cleanupTempDirs, runCli, startNode, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

afterAll(() => cleanupTempDirs());

test("the sweep's own checks see what they look for", async () => {
  // A damaged database page: the integrity check names the file.
  const dir = tempDir();
  const path = join(dir, "sub", "some.sqlite");
  mkdirSync(join(dir, "sub"));
  const db = new Database(path, { create: true });
  db.run("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
  db.run("CREATE INDEX t_v ON t (v)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  for (let i = 0; i < 2000; i++) insert.run(`value ${i}`);
  db.close();
  expect(checkSqliteIntegrity(dir)).toEqual({ files: 1, problems: [] });
  const pageBytes = 4096;
  const fd = openSync(path, "r+");
  const page = Buffer.alloc(pageBytes);
  readSync(fd, page, 0, pageBytes, 3 * pageBytes);
  page.fill(0x5a, 8, pageBytes); // keep the page header, scramble its cells
  writeSync(fd, page, 0, pageBytes, 3 * pageBytes);
  closeSync(fd);
  const damaged = checkSqliteIntegrity(dir);
  expect(damaged.files).toBe(1);
  expect(damaged.problems.length).toBe(1);
  expect(damaged.problems[0]).toContain(path);

  // A temp file a pull left, anywhere but the state folder.
  const tree = join(tempDir(), "tree");
  writeTree(tree, { a: { ".dsync-tmp-0123": "half", "b.txt": "b" }, ".dsync": { ".dsync-tmp-x": "state" } });
  expect(findTempFiles(tree)).toEqual(["a/.dsync-tmp-0123"]);

  // The root computed here is the one a push of the directory records.
  const node = await startNode();
  try {
    const clean = join(tempDir(), "clean");
    writeTree(clean, { x: "x\n", d: { y: "y\n" } });
    const pushed = await runCli(["push", clean, "--remote", node.url, "--folder", "roots", "--json"]);
    expect(pushed.code).toBe(0);
    expect(await treeRootHex(clean)).toBe(pushed.json().root);
  } finally {
    await node.stop();
  }
}, 30_000);

const SEED = 20261201;
const POINTS = 20;

test("kill sweep sample: SIGKILL at 20 seeded points loses nothing and leaves nothing half done", async () => {
  const summary = await runKillSweep({ seed: SEED, points: POINTS, epochPoints: 10, fullPullEvery: 5 });
  if (summary.failures.length > 0) console.error(formatSummary(summary));
  expect(summary.failures).toEqual([]);
  expect(summary.versionsLost).toBe(0);
  expect(summary.points).toBe(POINTS);
  // Every phase ran its share (the schedule depends on the seed only).
  for (const phase of DEFAULT_PHASES) expect(summary.pointsByPhase[phase]).toBeGreaterThanOrEqual(Math.floor(POINTS / DEFAULT_PHASES.length));
  expect(summary.killsDelivered).toBeGreaterThan(0);
  expect(summary.acknowledgedVersions).toBeGreaterThan(0);
  expect(summary.fullPullsCompared).toBeGreaterThan(0);
  expect(summary.sqliteFilesChecked).toBeGreaterThan(0);
}, 90_000);
