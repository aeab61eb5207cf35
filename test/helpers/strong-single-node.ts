// One node whose Raft group is itself alone: the real driver over the node's own metadata, its
// strong heads wired as src/assemble.ts wires them, started and led by it. For the server tests
// of strong folders that need the log but no second member.
import { RaftDriver } from "../../src/consensus/raft-driver.ts";
import { systemClock, systemRandom, systemTimers } from "../../src/node/clock.ts";
import type { DsyncNode } from "../../src/node/node.ts";
import { strongHeadsOver } from "../../src/server/consensus-heads.ts";

const ELECTION_TIMEOUT_MS = 10_000;

/** Starts `node`'s group of one and waits until it leads; the driver goes into `started` first, for the test's cleanup to stop. */
export async function leadAlone(node: DsyncNode, started: RaftDriver[]): Promise<RaftDriver> {
  const driver = new RaftDriver({ node, timers: systemTimers, clock: systemClock, random: systemRandom, log: () => {} });
  started.push(driver);
  await driver.start();
  node.setStrongHeads(strongHeadsOver(driver, node.clock, systemTimers, node.metadata));
  const deadline = Date.now() + ELECTION_TIMEOUT_MS;
  while (!driver.isLeader()) {
    if (Date.now() > deadline) throw new Error(`a one-member Raft group did not elect itself within ${ELECTION_TIMEOUT_MS / 1000} s`);
    await Bun.sleep(20);
  }
  return driver;
}
