// status --wait: in sync means every folder's every peer has the same head and every peer
// answered; the wait asks again until then, bounded by its timeout, on a manual clock.
import { describe, expect, test } from "bun:test";
import type { NodeStatus } from "../../src/client/remote.ts";
import { notInSync, waitForSync } from "../../src/client/sync-wait.ts";

type FolderPeer = NodeStatus["folders"][number]["peers"][number];
const peer = (address: string, state: FolderPeer["state"] | string): FolderPeer => ({ peer: address, node: null, head: null, state, behindWrites: 0, aheadWrites: 0 });

function status(states: string[], reachable: (boolean | null)[] = states.map(() => true)): NodeStatus {
  const addresses = states.map((_, i) => `http://127.0.0.1:770${i + 2}`);
  return {
    node: "a",
    peers: addresses.map((address, i) => ({ address, node: null, reachable: reachable[i]!, lastContactMs: null, lastError: reachable[i] === false ? "connection refused" : null })),
    folders: [{ name: "notes", mode: "eventual", head: "ab", vector: {}, peers: addresses.map((address, i) => peer(address, states[i]!)) }],
    replication: null,
  };
}

describe("notInSync", () => {
  test("names each folder and peer not in sync, and each peer that has not answered", () => {
    expect(notInSync(status(["in-sync", "in-sync"]))).toEqual([]);
    expect(notInSync(status(["in-sync", "unknown"]))).toEqual(["folder notes on peer http://127.0.0.1:7703: not listed by the peer yet"]);
    expect(notInSync(status(["behind", "in-sync"], [true, null]))).toEqual(["folder notes on peer http://127.0.0.1:7702: behind", "peer http://127.0.0.1:7703: not contacted yet"]);
    expect(notInSync(status(["in-sync"], [false]))).toEqual(["peer http://127.0.0.1:7702: unreachable (connection refused)"]);
    expect(notInSync({ node: "a", peers: [], folders: [], replication: null })).toEqual([]);
  });

  test("folders the status leaves out (it describes the first page) are never taken to be in sync", () => {
    expect(notInSync({ ...status(["in-sync"]), foldersTotal: 1 })).toEqual([]);
    expect(notInSync({ ...status(["in-sync"]), foldersTotal: 1500 })).toEqual([
      "1499 folders after the first 1 by name: the status describes only the first 1, so whether they are in sync is not known",
    ]);
  });
});

describe("waitForSync", () => {
  test("a status that leaves folders out ends the wait at once, not in sync: waiting longer would not show them", async () => {
    let now = 0;
    const result = await waitForSync(async () => ({ ...status(["in-sync"]), foldersTotal: 1500 }), { timeoutMs: 10_000, nowMs: () => now, sleep: async (ms) => void (now += ms) });
    expect(result).toMatchObject({ inSync: false, polls: 1, waitedMs: 0 });
    expect(result.pending[0]).toContain("1499 folders after the first 1");
  });

  test("asks again every interval until in sync", async () => {
    let now = 0;
    const answers = [status(["unknown", "behind"]), status(["in-sync", "behind"]), status(["in-sync", "in-sync"])];
    const slept: number[] = [];
    const result = await waitForSync(async () => answers.shift()!, { timeoutMs: 10_000, intervalMs: 200, nowMs: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms)) });
    expect(result).toMatchObject({ inSync: true, pending: [], waitedMs: 400, polls: 3 });
    expect(slept).toEqual([200, 200]);
  });

  test("gives up at the timeout, saying what is still not in sync; a node that fails to answer is asked again", async () => {
    let now = 0;
    let calls = 0;
    const result = await waitForSync(
      async () => {
        calls++;
        if (calls === 1) throw new Error("connection refused");
        return status(["in-sync", "diverged"]);
      },
      { timeoutMs: 1000, intervalMs: 300, nowMs: () => now, sleep: async (ms) => void (now += ms) },
    );
    expect(result.inSync).toBe(false);
    expect(result.waitedMs).toBe(1000);
    expect(result.polls).toBe(5); // at 0 (refused), 300, 600, 900, 1000
    expect(result.pending).toEqual(["folder notes on peer http://127.0.0.1:7703: diverged"]);
  });

  test("a status request that never answers is bounded by the timeout too", async () => {
    const result = await waitForSync(() => new Promise<NodeStatus>(() => {}), { timeoutMs: 50 });
    expect(result.inSync).toBe(false);
    expect(result.pending).toEqual(["the node: no answer within 50 ms"]);
  });
});
