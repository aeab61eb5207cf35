// The dashboard's Cluster panel (src/server/dashboard/cluster-view.ts): the Raft group's status in
// words, the leader flagged when there is none or it went silent, and a member flagged only when
// this node should be hearing from it and has not for longer than an election timeout.
import { describe, expect, test } from "bun:test";
import type { NodeStatus } from "../../src/client/remote.ts";
import { RAFT_ELECTION_TICKS, RAFT_TICK_MS } from "../../src/consensus/raft-driver.ts";
import { clusterView, ELECTION_TIMEOUT_MS } from "../../src/server/dashboard/cluster-view.ts";

type Consensus = NonNullable<NodeStatus["consensus"]>;

const NOW = 1_800_000_000_000;
const SELF = "http://127.0.0.1:7701";

function consensus(overrides: Partial<Consensus>): Consensus {
  return {
    nodeId: "alpha",
    role: "follower",
    term: 7,
    leader: { id: "bravo", address: "http://127.0.0.1:7702" },
    commit: 40,
    applied: 40,
    lastIndex: 40,
    members: [
      { id: "alpha", address: null, match: null, lastContactMs: NOW, self: true },
      { id: "bravo", address: "http://127.0.0.1:7702", match: null, lastContactMs: NOW - 100, self: false },
      { id: "charlie", address: "http://127.0.0.1:7703", match: null, lastContactMs: NOW - 60_000, self: false },
    ],
    lastLeaderContactMs: NOW - 100,
    ...overrides,
  };
}

describe("dashboard cluster view", () => {
  test("the election timeout is the driver's longest: its tick times twice its election ticks", () => {
    expect(ELECTION_TIMEOUT_MS).toBe(RAFT_TICK_MS * RAFT_ELECTION_TICKS * 2);
  });

  test("a follower: its leader by id and address, other followers not flagged however long ago they were heard", () => {
    const view = clusterView(consensus({}), NOW, SELF);
    expect(view.roleText).toBe("follower");
    expect(view.term).toBe(7);
    expect(view.leader).toEqual({ id: "bravo", address: "http://127.0.0.1:7702", self: false });
    expect(view.leaderProblem).toBeNull();
    const [alpha, bravo, charlie] = view.members;
    expect(alpha).toMatchObject({ id: "alpha", address: SELF, self: true, lastContactText: "this node", silent: false, matchText: "—" });
    expect(bravo).toMatchObject({ leader: true, lastContactText: "just now", expected: true, silent: false });
    expect(charlie).toMatchObject({ leader: false, lastContactText: "60 s ago", expected: false, silent: false });
  });

  test("a follower whose leader went silent: the leader's row and the panel are flagged", () => {
    const view = clusterView(
      consensus({
        lastLeaderContactMs: NOW - 3_000,
        members: [
          { id: "alpha", address: null, match: null, lastContactMs: NOW, self: true },
          { id: "bravo", address: "http://127.0.0.1:7702", match: null, lastContactMs: NOW - 3_000, self: false },
        ],
      }),
      NOW,
      SELF,
    );
    expect(view.leaderProblem).toBe("the leader was last heard from 3 s ago: this node may be cut off from it.");
    expect(view.members[1]).toMatchObject({ id: "bravo", lastContactText: "3 s ago", silent: true });
  });

  test("the leader: itself at this page's address, each follower's match index and how far behind, a silent follower flagged", () => {
    const view = clusterView(
      consensus({
        role: "leader",
        leader: { id: "alpha", address: null },
        lastIndex: 42,
        commit: 41,
        applied: 39,
        members: [
          { id: "alpha", address: null, match: 42, lastContactMs: NOW, self: true },
          { id: "bravo", address: "http://127.0.0.1:7702", match: 42, lastContactMs: NOW - 200, self: false },
          { id: "charlie", address: "http://127.0.0.1:7703", match: 30, lastContactMs: NOW - ELECTION_TIMEOUT_MS - 1, self: false },
          { id: "delta", address: null, match: 0, lastContactMs: null, self: false },
        ],
      }),
      NOW,
      SELF,
    );
    expect(view.leader).toEqual({ id: "alpha", address: SELF, self: true });
    expect(view.leaderProblem).toBeNull();
    expect(view.applyBacklog).toBe(2);
    expect(view.members.map((m) => [m.id, m.matchText, m.lastContactText, m.silent])).toEqual([
      ["alpha", "42", "this node", false],
      ["bravo", "42", "just now", false],
      ["charlie", "30 (12 behind)", "1 s ago", true],
      ["delta", "0 (42 behind)", "never", true],
    ]);
    expect(view.members[3]!.address).toBeNull();
  });

  test("no leader (an election, or a minority side): flagged, and every member that did not answer within the timeout is too", () => {
    const view = clusterView(
      consensus({
        role: "preCandidate",
        leader: null,
        lastLeaderContactMs: NOW - 20_000,
        members: [
          { id: "alpha", address: null, match: null, lastContactMs: NOW, self: true },
          { id: "bravo", address: "http://127.0.0.1:7702", match: null, lastContactMs: NOW - 20_000, self: false },
          { id: "charlie", address: "http://127.0.0.1:7703", match: null, lastContactMs: NOW - 300, self: false },
        ],
      }),
      NOW,
      SELF,
    );
    expect(view.roleText).toBe("pre-candidate");
    expect(view.leader).toBeNull();
    expect(view.leaderProblem).toContain("no leader");
    expect(view.members.map((m) => m.silent)).toEqual([false, true, false]);
  });
});
