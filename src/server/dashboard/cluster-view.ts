// The dashboard's Cluster panel: the strong mode's Raft group as this node sees it (GET
// /v1/status, `consensus`), turned into the words and warnings the page shows. Pure: the caller
// gives the node's clock and this page's own address, and sets every text with textContent.
//
// Who is expected to be heard from depends on this node's role: a leader hears every member
// (each answers its heartbeats), a follower hears only the leader (followers do not talk to one
// another), and a node without a leader is asking everyone for votes. Only a member expected to
// be heard from is flagged when it has been silent for longer than an election timeout.
import type { NodeStatus } from "../../client/remote.ts";
import { formatAgo } from "../../client/status-summary.ts";

type ConsensusJson = NonNullable<NodeStatus["consensus"]>;

/**
 * The longest a follower waits for its leader before it campaigns: the Raft driver's tick of
 * 100 ms times twice its 6 election ticks, the top of the randomized range
 * (src/consensus/raft-driver.ts; test/server/dashboard-cluster-view.test.ts holds them together).
 * The status does not carry the timeout, and the node takes no option to change it.
 */
export const ELECTION_TIMEOUT_MS = 1_200;

export interface ClusterMemberRow {
  id: string;
  /** Where peers reach it; this page's own address for this node; null when not known yet. */
  address: string | null;
  self: boolean;
  leader: boolean;
  /** "42" on the leader (with how far behind its log), "—" elsewhere: only the leader knows. */
  matchText: string;
  /** "just now", "3 s ago", "never"; "this node" for this node. */
  lastContactText: string;
  /** Whether this node should be hearing from it now (see the top of this file). */
  expected: boolean;
  /** Expected to be heard from and silent for longer than an election timeout (or never heard). */
  silent: boolean;
  /** Why this row's last contact means what it does (a tooltip). */
  note: string;
}

export interface ClusterView {
  nodeId: string;
  /** "leader", "follower", "candidate", "pre-candidate". */
  roleText: string;
  term: number;
  /** The leader this node knows: `self` when it is this node. Null: none (flagged, with `leaderProblem`). */
  leader: { id: string; address: string | null; self: boolean } | null;
  /** Set when there is no leader or this node has not heard from it within an election timeout. */
  leaderProblem: string | null;
  commit: number;
  applied: number;
  lastIndex: number;
  /** Entries committed but not yet applied here. */
  applyBacklog: number;
  members: ClusterMemberRow[];
}

export function roleText(role: ConsensusJson["role"]): string {
  return role === "preCandidate" ? "pre-candidate" : role;
}

/** formatAgo, but a second of silence already reads "1 s ago": past an election timeout it is not "just now". */
function contactAgo(thenMs: number | null, nowMs: number): string {
  if (thenMs !== null && nowMs - thenMs >= 1000 && nowMs - thenMs < 2000) return "1 s ago";
  return formatAgo(thenMs, nowMs);
}

export function clusterView(consensus: ConsensusJson, nowMs: number, selfAddress: string): ClusterView {
  const isLeader = consensus.role === "leader";
  const leaderId = consensus.leader?.id ?? null;
  const silentFor = (thenMs: number | null) => thenMs === null || nowMs - thenMs > ELECTION_TIMEOUT_MS;
  const members = consensus.members.map((member): ClusterMemberRow => {
    const address = member.self ? selfAddress : member.address;
    const leader = member.id === leaderId;
    if (member.self) {
      return {
        id: member.id,
        address,
        self: true,
        leader,
        matchText: member.match === null ? "—" : String(member.match),
        lastContactText: "this node",
        expected: false,
        silent: false,
        note: "this node",
      };
    }
    // A leader hears every member; a follower only its leader; without a leader, everyone is asked for votes.
    const expected = isLeader || leader || leaderId === null;
    const behind = member.match === null ? 0 : consensus.lastIndex - member.match;
    return {
      id: member.id,
      address,
      self: false,
      leader,
      matchText: member.match === null ? "—" : behind > 0 ? `${member.match} (${behind} behind)` : String(member.match),
      lastContactText: contactAgo(member.lastContactMs, nowMs),
      expected,
      silent: expected && silentFor(member.lastContactMs),
      note: expected
        ? `expected to be heard from at least every ${ELECTION_TIMEOUT_MS / 1000} s`
        : "a follower hears only from the leader: other followers' last contact is from the last election",
    };
  });
  let leader: ClusterView["leader"] = null;
  let leaderProblem: string | null = null;
  if (consensus.leader === null) {
    leaderProblem = "no leader: an election is under way, or this node is cut off from a majority of the members. Strong folders take no pushes here until a leader is elected.";
  } else {
    const self = consensus.leader.id === consensus.nodeId;
    leader = { id: consensus.leader.id, address: self ? selfAddress : consensus.leader.address, self };
    if (!self && silentFor(consensus.lastLeaderContactMs)) {
      const heard = consensus.lastLeaderContactMs === null ? "has not been heard from yet" : `was last heard from ${contactAgo(consensus.lastLeaderContactMs, nowMs)}`;
      leaderProblem = `the leader ${heard}: this node may be cut off from it.`;
    }
  }
  return {
    nodeId: consensus.nodeId,
    roleText: roleText(consensus.role),
    term: consensus.term,
    leader,
    leaderProblem,
    commit: consensus.commit,
    applied: consensus.applied,
    lastIndex: consensus.lastIndex,
    applyBacklog: Math.max(0, consensus.commit - consensus.applied),
    members,
  };
}
