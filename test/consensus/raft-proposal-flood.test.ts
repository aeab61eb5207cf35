// A burst of proposals larger than one Raft save may carry (RAFT_SAVE_LIMITS.maxEntries) lands
// on the leader between two Readies: without a bound the whole burst went into one save, which
// the store refused, and the member was rebuilt from disk with none of it, failing every
// proposal of the burst. Proposals waiting at once are bounded: those past the bound are refused
// at once (503, nothing proposed), the others commit.
import { afterEach, describe, expect, test } from "bun:test";
import { RAFT_PROPOSALS_MAX } from "../../src/consensus/raft-driver.ts";
import { RAFT_SAVE_LIMITS } from "../../src/node/metadata-records.ts";
import { createFolder, MemoryRaftNetwork, waitFor, type TestMember } from "./raft-cluster.ts";

let started: TestMember[] = [];
afterEach(async () => {
  for (const member of started) await member.driver.stop();
  started = [];
});

describe("a burst of proposals", () => {
  test(`${RAFT_SAVE_LIMITS.maxEntries + 500} proposals at once: at most ${RAFT_PROPOSALS_MAX} wait, those commit, the rest are refused at once, and the member is never rebuilt`, async () => {
    const network = new MemoryRaftNetwork();
    const member = await network.add("n1", []);
    started.push(member);
    await member.driver.start();
    await waitFor(() => member.driver.isLeader(), 2000, "the single member to lead");
    const count = RAFT_SAVE_LIMITS.maxEntries + 500;
    const outcomes = await Promise.allSettled(Array.from({ length: count }, (_, i) => member.driver.propose(createFolder(`f${i}`), 20_000)));
    const applied = outcomes.filter((o) => o.status === "fulfilled" && (o.value as { applied: boolean }).applied).length;
    const refused = outcomes.filter((o) => o.status === "rejected" && (o.reason as Error).name === "ConsensusUnavailableError").length;
    expect(member.log.join("\n")).not.toContain("stopped on an error");
    expect(applied).toBeGreaterThanOrEqual(RAFT_PROPOSALS_MAX);
    expect(applied + refused).toBe(count);
    expect((await member.node.listFolders()).length).toBe(applied);
  }, 60_000);
});
