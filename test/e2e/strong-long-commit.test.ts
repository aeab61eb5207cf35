// A long strong commit through a follower completes: the leader fetches a large pushed tree from
// the follower (96 MiB and 3000 files, the whole push taking longer than an election timeout on
// loopback), and the follower, which ends a forward once it loses contact with the leader
// (src/consensus/leader-contact.ts), keeps waiting because the leader goes on sending heartbeats
// while it fetches. Three real `dsync serve` processes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LEADER_CONTACT_LOST_MS } from "../../src/consensus/leader-contact.ts";
import { cleanupTempDirs, runCli, tempDir } from "../helpers/processes.ts";
import { allVersions, createStrongFolder, startStrongCluster, waitForAgreement, type StrongCluster } from "../helpers/strong-cluster.ts";

let cluster: StrongCluster;

beforeAll(async () => {
  cluster = await startStrongCluster();
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
  cleanupTempDirs();
});

describe("a long commit through a follower", () => {
  test("the leader fetching a large tree from the follower: acknowledged, on every node, not cut short", async () => {
    const leader = await cluster.waitForLeader();
    const follower = (leader + 1) % cluster.size;
    await createStrongFolder(cluster.urls[follower], "big");
    const dir = join(tempDir("strong-long-commit-"), "big");
    mkdirSync(join(dir, "many"), { recursive: true });
    // Random bytes, so nothing dedups: 96 MiB in large files and 3000 small ones.
    for (let i = 0; i < 6; i++) writeFileSync(join(dir, `large-${i}.bin`), randomBytes(16 * 1024 * 1024));
    for (let i = 0; i < 3000; i++) writeFileSync(join(dir, "many", `f-${i}.txt`), randomBytes(2048));

    const started = performance.now();
    const pushed = await runCli(["push", dir, "--remote", cluster.urls[follower], "--folder", "big", "--json"]);
    const tookMs = performance.now() - started;
    expect(pushed.code, pushed.stderr).toBe(0);
    const version = pushed.json().version as string;
    console.log(`a 96 MiB, 3006-file strong push through a follower: ${tookMs.toFixed(0)} ms (contact is lost after ${LEADER_CONTACT_LOST_MS} ms without the leader)`);
    expect(tookMs).toBeGreaterThan(LEADER_CONTACT_LOST_MS);
    expect(await waitForAgreement(cluster.urls, "big", 60_000)).toBe(version);
    for (const url of cluster.urls) expect((await allVersions(url, "big")).map((v) => v.id)).toEqual([version]);
  }, 240_000);
});
