// The JSON of GET /v1/status (dsync status, the dashboard): the node, its peers, a page of its
// folders with how each stands against each peer, replication counters, the objects found
// corrupt and the background scrub, and what its metadata store is. The server builds it
// typed by this (src/server/app.ts) and the client reads it, so neither needs the other's code.

export interface NodeStatus {
  node: string;
  /** The node's program version, and its clock when it answered (for "how long ago"). */
  version?: string;
  nowMs?: number;
  peers: { address: string; node: string | null; reachable: boolean | null; lastContactMs: number | null; lastError: string | null }[];
  folders: {
    name: string;
    mode: string;
    head: string | null;
    vector: Record<string, number>;
    /** What the head holds, when it was written (its wall clock) and by which node; absent from older nodes. */
    files?: number;
    bytes?: number;
    lastChangeMs?: number | null;
    changedBy?: string | null;
    changeOrigin?: string | null;
    /** `lagMs`: how long this node has lacked writes the peer has (0 when it lacks none). */
    peers: { peer: string; node: string | null; head: string | null; state: string; behindWrites: number; aheadWrites: number; lagMs?: number }[];
  }[];
  /** How many folders the node has: `folders` holds at most a page of them (the first by name); absent from older nodes. */
  foldersTotal?: number;
  replication: Record<string, number> | null;
  /** Objects found corrupt: quarantined now, repaired since, and with no copy on any peer. */
  objects?: {
    quarantined: number;
    repaired: number;
    unrepairable: number;
    repair: Record<string, number> | null;
    scrub: { bytesPerSecond: number; passes: number; checkedObjects: number; checkedBytes: number; corruptFound: number; position: string | null } | null;
  };
  /** Which metadata store the node runs on ("sqlite", "postgres") and the bytes it takes where known; absent from older nodes. */
  metadata?: { backend: string; sizeBytes: number | null };
  /** The cluster's Raft group as this node sees it (strong folders); null on a node without it, absent from older nodes. */
  consensus?: ConsensusStatusJson | null;
}

/** One member of the Raft group: `match` (on the leader only) is the highest index known replicated there; `lastContactMs` when this node last heard from it. */
export interface ConsensusMemberJson {
  id: string;
  address: string | null;
  match: number | null;
  lastContactMs: number | null;
  self: boolean;
}

/** The Raft group's state on one node (src/consensus/strong-consensus.ts, ConsensusStatus). */
export interface ConsensusStatusJson {
  nodeId: string;
  role: "follower" | "preCandidate" | "candidate" | "leader";
  term: number;
  leader: { id: string; address: string | null } | null;
  commit: number;
  applied: number;
  lastIndex: number;
  members: ConsensusMemberJson[];
  lastLeaderContactMs: number | null;
}
