// Three real nodes, one strong folder; node 2's data folder (its objects and its SQLite metadata,
// where the Raft log is) on a small tmpfs that fills up while pushes go on. It cannot store what
// the moves name, so it acknowledges none of them (the other two commit on); when the leader is
// killed, the vote node 1 asks of it cannot be saved, so it is not granted and no leader is
// elected until the killed node is back (a vote sent before it is durable could elect two leaders
// in one term: this fails when the driver sends before it saves). Through node 2 pushes and reads
// are refused (503, 507) or forwarded and committed by the others, never a success it made up.
// With space back it catches up without a restart; killed -9 afterwards its data folder verifies
// whole, and every acknowledged push is in every node's history (checkStrongRun).
//
// Needs to mount a tmpfs (root, as in CI). If the mount fails the test fails, saying why.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, runCli, tempDir } from "../helpers/processes.ts";
import { acknowledgedMore, checkStrongRun, startStrongCluster, startWriters, strongFolderWithClients, waitForAgreement, type StrongCluster } from "../helpers/strong-cluster.ts";

const FOLDER = "ledger";
const DISK_BYTES = 24 * 1024 * 1024;
let mountDir = "";
let mounted = false;
const clusters: StrongCluster[] = [];

beforeAll(() => {
  mountDir = tempDir("dsync-strong-disk-full-");
  const result = spawnSync(["mount", "-t", "tmpfs", "-o", `size=${DISK_BYTES}`, "tmpfs", mountDir]);
  if (result.exitCode !== 0) {
    throw new Error(
      `the strong disk-full test needs a small file system: 'mount -t tmpfs -o size=${DISK_BYTES} tmpfs ${mountDir}' failed ` +
        `(${result.stderr.toString().trim()}); run the tests as root or in a container allowed to mount tmpfs`,
    );
  }
  mounted = true;
});

afterAll(async () => {
  for (const cluster of clusters) await cluster.stopAll();
  if (mounted) spawnSync(["umount", mountDir]);
  cleanupTempDirs();
});

/** Fills the tmpfs to its last byte, writing until the file system says it is full (the node writes meanwhile). */
function fillDisk(path: string): void {
  const fd = openSync(path, "w");
  try {
    for (const size of [1024 * 1024, 64 * 1024, 4096, 512, 1]) {
      const block = Buffer.alloc(size, 7);
      for (;;) {
        try {
          writeSync(fd, block);
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOSPC") throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function appliedOf(c: StrongCluster, i: number): Promise<number> {
  return (await c.consensus(i))?.applied ?? -1;
}

test("a member whose disk fills stops acknowledging, answers with errors, catches up when space returns, and is whole after kill -9", async () => {
  expect(mounted).toBe(true);
  const c = await startStrongCluster({ dataDirOf: (i) => (i === 2 ? join(mountDir, "node-c") : undefined) });
  clusters.push(c);
  const { clients } = await strongFolderWithClients(c, FOLDER, 0);
  let load = startWriters(c, clients, [0, 1, 2]);
  try {
    expect(await acknowledgedMore(clients, 6, 15_000), "pushes through every node").toBeGreaterThanOrEqual(6);
    await load.stop();
    // Node 2 does not lead while its disk is full (a full leader would only step down sooner or later).
    for (let attempt = 0; (await c.waitForLeader()) === 2 && attempt < 3; attempt++) {
      await c.kill9(2);
      await c.waitForLeader("a leader other than node 2");
      await c.start(2);
    }

    fillDisk(join(mountDir, "filler"));
    load = startWriters(c, clients, [0, 1]);
    expect(await acknowledgedMore(clients, 8, 20_000), "pushes with node 2's disk full").toBeGreaterThanOrEqual(8);
    const leader = (await c.consensus(0))!.leader!.id;
    expect(leader).not.toBe(c.nodeIds[2]);
    // Node 2 is behind what the others applied (it persisted nothing since). Through it, a push
    // is refused (503, 507) or forwarded to the leader and committed by the other two; a
    // linearizable read is refused or, if answered, checked with the rest of the history.
    let applied0 = await appliedOf(c, 0);
    expect(await appliedOf(c, 2)).toBeLessThan(applied0);
    // It could not store what the moves name, so it acknowledged none of them; and entries that
    // name no objects (folders made meanwhile) failed at its Raft save for want of space. Which
    // of the two it meets first depends on timing: a group stopped by a failed save restarts
    // after a second, and may fail at the save again before an append naming objects arrives.
    expect(c.output(2)).toMatch(/an append from node-\w waits: could not fetch|the Raft group stopped on an error, restarting it from what is stored in \d+ ms: database or disk is full/);
    // The leader killed: node 1 asks node 2 for its vote, which node 2 cannot store, so it must
    // not grant it (a vote sent before it is durable could elect two leaders in one term). No
    // leader then, until the killed node is back.
    await load.stop();
    const killed = c.nodeIds.indexOf(leader);
    await c.kill9(killed);
    const saveFailed = Date.now() + 10_000;
    while (!/Raft group stopped on an error/.test(c.output(2)) && Date.now() < saveFailed) await Bun.sleep(50);
    expect(c.output(2)).toMatch(/Raft group stopped on an error.*(full|space|SQLITE_FULL|ENOSPC)/i);
    const other = killed === 0 ? 1 : 0;
    for (const until = Date.now() + 3_000; Date.now() < until; await Bun.sleep(100)) {
      expect((await c.consensus(other))?.role, `node ${other} without a durable vote from node 2`).not.toBe("leader");
    }
    await c.start(killed);
    await c.waitForLeader("a leader once the killed node is back");
    load = startWriters(c, clients, [0, 1]);
    const answers: string[] = [];
    for (let i = 0; i < 2; i++) {
      answers.push((await clients.push("writer-3", c.urls[2]!, 8_000)) ? "push acknowledged" : "push refused");
      answers.push((await clients.read("reader-2", c.urls[2]!, 8_000)) === undefined ? "read refused" : "read answered");
    }
    applied0 = Math.max(await appliedOf(c, 0), await appliedOf(c, 1));
    console.log(`through node 2 with its disk full: ${answers.join(", ")}; ${JSON.stringify(clients.tally)}`);
    expect(clients.tally.unexpected.filter((u) => !/: 507 /.test(u)), "node 2 answered only 503 or 507").toEqual([]);
    clients.tally.unexpected = [];

    // Space back: node 2 catches up without a restart.
    rmSync(join(mountDir, "filler"));
    await waitForAgreement(c.urls, FOLDER, 30_000);
    const deadline = Date.now() + 20_000;
    while ((await appliedOf(c, 2)) < applied0 && Date.now() < deadline) await Bun.sleep(50);
    expect(await appliedOf(c, 2)).toBeGreaterThanOrEqual(applied0);
    await load.stop();
    load = startWriters(c, clients, [0, 1, 2]);
    expect(await acknowledgedMore(clients, 4, 15_000), "pushes through every node again").toBeGreaterThanOrEqual(4);
  } finally {
    await load.stop();
  }
  // Killed -9 and started on what its disk holds: whole, and at the head the others hold.
  await c.kill9(2);
  const verify = await runCli(["verify", "--data", join(mountDir, "node-c"), "--json"]);
  expect(verify.json(), verify.stderr).toMatchObject({ healthy: true });
  await c.start(2);
  console.log(await checkStrongRun(c, clients));
}, 120_000);
