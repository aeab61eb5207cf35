// Strong folders through the API: which node takes a write (the leader of the cluster's Raft
// group; any other member hands it over, one hop), linearizable reads (a ReadIndex barrier
// before a strong folder is read, unless the request says `stale`), folder creation in either
// mode, and membership changes. The answers a minority gives: 503 with the leader this node
// knows, and Retry-After.
//
//   POST   /v1/folders                    JSON {name, consistency, keepVersions?, keepDays?} -> 201 made, 200 exists in that mode, 409 other mode
//   POST   /v1/cluster/members            JSON {address} -> 200 {node, address} (the leader asks that node its id, then adds it)
//   DELETE /v1/cluster/members/:node      -> 200 {node}
//   POST   /v1/peer/strong/commit         a member hands the leader a client's commit: {from, folder, ...the commit body}
//   POST   /v1/peer/strong/restore        ... a restore: {from, folder, version, message}
//   POST   /v1/peer/strong/folders        ... a strong folder's creation: {from, name, consistency, keepVersions?, keepDays?}
//   POST   /v1/peer/strong/members        ... a membership change: {from, action: "add", address} or {from, action: "remove", node}
//   POST   /v1/peer/strong/retention      ... a strong folder's retention: {from, folder, keepVersions?, keepDays?} (app.ts)
//
// A forwarded request is answered by the leader as it would answer the client, and that answer
// goes back to the client unchanged. A node that is handed one and is not the leader answers 503
// naming the leader it knows: it never hands it on again.
import type { Context, Hono } from "hono";
import type { ConsistencyMode, FolderRecord } from "../node/metadata-records.ts";
import { UserError, type DsyncNode } from "../node/node.ts";
import { ConsensusUnavailableError, NotLeaderError, type MemberAddress, type StrongConsensus } from "../consensus/strong-consensus.ts";
import { fetchClosure, PeerMissingObjectsError } from "../replication/fetch-closure.ts";
import { inContactWithLeader, LEADER_CONTACT_LOST_MS, leaderContactLost, whileLeaderInContact } from "../consensus/leader-contact.ts";
import { systemTimers } from "../node/clock.ts";
import type { PeerTransport, StrongForward } from "../replication/transport.ts";
import type { ObjectId } from "../core/id.ts";
import { scopedFolders } from "./access.ts";
import { readJson } from "./http-body.ts";
import { optionalNullableCount, requireFolderName, requireNodeId } from "./validate.ts";

/** How long a read of a strong folder waits for its linearizable read point before it answers 503. */
export const READ_BARRIER_TIMEOUT_MS = 5_000;
/**
 * How long a request for a folder this node does not hold waits to learn whether the log made
 * it (a strong folder created through another member a moment ago); past it, the folder is
 * taken as absent (an eventual folder's write goes on as on a node without peers).
 */
export const UNKNOWN_FOLDER_BARRIER_TIMEOUT_MS = 2_000;
/** How long a member waits for the leader's answer to a forwarded request, beyond the commit's own allowance per file. */
export const FORWARD_TIMEOUT_MS = 120_000;
/** A forwarded commit's allowance per file it names (the leader fetches and checks its tree, as client/remote.ts waits for it). */
export const FORWARD_TIMEOUT_MS_PER_FILE = 1;
/** How long a membership change may take to commit. */
export const MEMBERSHIP_TIMEOUT_MS = 10_000;
/** The Retry-After of every 503 the strong mode gives: an election takes about a second. */
export const STRONG_RETRY_AFTER_SECONDS = 1;
/** The longest member address taken. */
const ADDRESS_CHARS_MAX = 2048;

export interface StrongRouteOptions {
  /** The cluster's Raft group; absent on a node assembled without it (strong folders then cannot be made or written there). */
  consensus?: StrongConsensus;
  /** How this node reaches the leader and the members (forwarding, fetching a forwarded push's objects, asking a new member its id). */
  transport?: PeerTransport;
  /** A peer's address by its node id as replication knows it, for a member the consensus has no address of. */
  peerAddress?: (nodeId: string) => string | undefined;
}

/** The 503 of the strong mode: what failed, the leader this node knows (null: none), and when to try again. */
export function unavailableReply(c: Context, message: string, leader: MemberAddress | null): Response {
  c.header("retry-after", String(STRONG_RETRY_AFTER_SECONDS));
  return c.json({ error: message, leader: leader ? { id: leader.id, address: leader.address } : null }, 503);
}

/** Whether the request asked for a read without the linearizable barrier (`?stale=1`). */
export function wantsStale(c: Context): boolean {
  const value = c.req.query("stale");
  if (value === undefined || value === "0" || value === "false") return false;
  if (value === "1" || value === "true" || value === "") return true;
  throw new UserError("stale must be 1 or 0");
}

/** Which node takes a strong folder's writes and reads, seen from this one. */
export class StrongRouting {
  constructor(
    private readonly node: DsyncNode,
    private readonly options: StrongRouteOptions,
  ) {}

  get consensus(): StrongConsensus | undefined {
    return this.options.consensus;
  }

  get transport(): PeerTransport | undefined {
    return this.options.transport;
  }

  /**
   * The folder's mode as the cluster knows it, or undefined when it does not exist. A folder
   * this node does not hold may be a strong one the log made and this node has not applied yet:
   * a read barrier first (bounded; on a minority side the folder is taken as absent).
   */
  async modeOf(folder: string): Promise<ConsistencyMode | undefined> {
    const local = await this.node.findFolder(folder);
    if (local || !this.options.consensus) return local?.mode;
    try {
      await this.options.consensus.readBarrier(UNKNOWN_FOLDER_BARRIER_TIMEOUT_MS);
    } catch (error) {
      if (error instanceof ConsensusUnavailableError || error instanceof NotLeaderError) return undefined;
      throw error;
    }
    return (await this.node.findFolder(folder))?.mode;
  }

  /** Whether a write to `folder` goes to the leader: a strong folder, on a node that is not the leader. */
  async writeGoesToLeader(folder: string): Promise<boolean> {
    const consensus = this.options.consensus;
    if (!consensus || consensus.isLeader()) return false;
    return (await this.modeOf(folder)) === "strong";
  }

  /**
   * Before a read of `folder`: a linearizable read point (ReadIndex) when it is strong, unless
   * the request asked for a stale read. A folder this node does not hold takes the barrier too
   * (the log may have made it). Throws ConsensusUnavailableError (503) on a minority side.
   */
  async beforeRead(c: Context, folder: string): Promise<void> {
    const consensus = this.options.consensus;
    if (!consensus || wantsStale(c)) return;
    const local = await this.node.findFolder(folder);
    if (local && local.mode !== "strong") return;
    if (!local) {
      await this.modeOf(folder);
      return;
    }
    // A node that lost contact with the leader answers at once rather than after the barrier's wait.
    const status = consensus.status();
    if (status.role !== "leader" && leaderContactLost(status, this.node.clock.nowMs())) {
      throw new ConsensusUnavailableError(`this node has not heard from a leader of the cluster's log within ${LEADER_CONTACT_LOST_MS} ms (it may be cut off from the others, or an election is under way): no linearizable read here now`, status.leader);
    }
    const watch = { consensus, clock: this.node.clock, timers: systemTimers, leaderId: null, what: "no linearizable read point" };
    await whileLeaderInContact(watch, () => consensus.readBarrier(READ_BARRIER_TIMEOUT_MS));
  }

  /**
   * A client's write made here, or, when this node turned out not to be the leader (it lost
   * leadership meanwhile: the proposal was refused before it reached the log, so nothing was
   * applied), handed to the leader it now knows. A request handed over is never handed on: the
   * peer routes call requireLeader instead.
   */
  async orToLeader(here: () => Promise<Response>, toLeader: () => Promise<Response>): Promise<Response> {
    try {
      return await here();
    } catch (error) {
      if (!(error instanceof NotLeaderError) || !this.options.consensus || error.leader === null) throw error;
      return toLeader();
    }
  }

  /** On a node handed a forwarded request: it must be the leader (one hop only), else 503 naming the one it knows. */
  requireLeader(): StrongConsensus {
    const consensus = this.options.consensus;
    if (!consensus) throw new ConsensusUnavailableError("this node runs without the cluster's log: it takes no strong writes", null);
    if (!consensus.isLeader()) throw new NotLeaderError(consensus.leader());
    return consensus;
  }

  /** The base URL of member `nodeId`: the consensus's record of it, else replication's. */
  addressOf(nodeId: string): string | undefined {
    const member = this.options.consensus?.status().members.find((m) => m.id === nodeId);
    return member?.address ?? this.options.peerAddress?.(nodeId);
  }

  /**
   * Hands a request to the leader and gives back its answer as it is. No leader known, or one
   * that cannot be reached: 503 with the leader (the write may have been made when the leader
   * was reached but its answer lost: the message says so for a commit).
   */
  async forward(c: Context, op: StrongForward["op"], body: Record<string, unknown>, timeoutMs: number = FORWARD_TIMEOUT_MS): Promise<Response> {
    const consensus = this.options.consensus!;
    const leader = consensus.leader();
    if (!leader || leader.address === null || leader.id === this.node.nodeId) {
      return unavailableReply(c, "no leader of the cluster's log is known to this node now (an election may be under way, or this node is on a minority side): try again", leader);
    }
    const transport = this.options.transport;
    if (!transport?.forwardStrong) return unavailableReply(c, `this node cannot hand the request to the leader ${leader.address}: it has no way to reach its peers`, leader);
    // A leader this node has not heard from within an election timeout is not asked at all: the
    // request would wait out its whole allowance on a link that may be dead (a partition).
    if (!inContactWithLeader(consensus.status(), this.node.clock.nowMs(), leader.id)) {
      return unavailableReply(c, `this node has not heard from the leader ${leader.address} within ${LEADER_CONTACT_LOST_MS} ms (it may be cut off from the others, or an election is under way): try again`, leader);
    }
    const maybe = op === "commit" || op === "restore" || op === "retention" ? " (it may have been recorded: dsync log shows whether it was)" : "";
    let reply;
    try {
      // Ended as soon as this node loses contact with that leader, not only at the deadline.
      const watch = { consensus, clock: this.node.clock, timers: systemTimers, leaderId: leader.id, what: `the leader ${leader.address} did not answer the request this node handed it${maybe}` };
      reply = await whileLeaderInContact(watch, (signal) => transport.forwardStrong!(leader.address!, { op, from: this.node.nodeId, body }, timeoutMs, signal));
    } catch (error) {
      if (error instanceof ConsensusUnavailableError) return unavailableReply(c, error.message, error.leader ?? leader);
      return unavailableReply(c, `the leader ${leader.address} did not answer the request this node handed it${maybe}: ${(error as Error).message}`, leader);
    }
    // The peer routes' own refusals (the cluster token, a peer's identity) are this node's, not the client's.
    if (reply.status === 401 || reply.status === 403) {
      const reason = (reply.body as { error?: unknown }).error;
      return c.json({ error: `the leader ${leader.address} refused this node's forwarded request (${reply.status}): ${typeof reason === "string" ? reason : "no reason given"}` }, 502);
    }
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (reply.retryAfter !== null && /^\d{1,6}$/.test(reply.retryAfter)) headers["retry-after"] = reply.retryAfter;
    return new Response(JSON.stringify(reply.body), { status: reply.status, headers });
  }

  /**
   * On the leader, for a commit a member handed over: the pushed tree's objects this node lacks,
   * fetched from that member by Merkle descent. What the member lacks too is left for the
   * commit's closure check to name (409 with the missing ids: the client sends them again).
   */
  async fetchFromForwarder(from: string, root: ObjectId): Promise<void> {
    const address = this.addressOf(from);
    const transport = this.options.transport;
    if (address === undefined || !transport) throw new UserError(`node ${from} handed over a commit, but this node does not know how to reach it`, 409);
    try {
      await fetchClosure(this.node, transport, address, [root]);
    } catch (error) {
      if (!(error instanceof PeerMissingObjectsError)) throw error;
    }
  }
}

/**
 * POST /v1/folders, the cluster member routes, and the peer routes a member hands strong
 * writes to the leader by (registered after the peer routes' credential check). Registered on
 * every node: without the cluster's log a strong folder is refused with 503.
 */
export function registerStrongRoutes(app: Hono, node: DsyncNode, routing: StrongRouting, folderJson: (folder: FolderRecord, headRoot: ObjectId | null) => object): void {
  const createFolder = async (c: Context, body: Record<string, unknown>, forwarded: boolean): Promise<Response> => {
    const name = requireFolderName(body.name, "name");
    const consistency = body.consistency ?? "eventual";
    if (consistency !== "strong" && consistency !== "eventual") throw new UserError('consistency must be "strong" or "eventual"');
    const retention = { keepVersions: optionalNullableCount(body.keepVersions, "keepVersions"), keepDays: optionalNullableCount(body.keepDays, "keepDays") };
    if (consistency === "strong") {
      if (forwarded) routing.requireLeader();
      else if (!routing.consensus) throw new ConsensusUnavailableError("this node runs without the cluster's log: it cannot make a strong folder", null);
      else if (!routing.consensus.isLeader()) {
        // A name this node holds already is answered here (its mode is settled); a new one goes to the leader.
        const local = await node.findFolder(name);
        if (!local || local.mode === "strong") return routing.forward(c, "folders", { ...body, name, consistency });
      }
    } else {
      // A strong folder of that name made through another member a moment ago is brought here
      // by the barrier (modeOf), and the eventual one asked for is then refused with its mode.
      await routing.modeOf(name);
    }
    const made = await node.createFolder(name, consistency, retention);
    return c.json({ ...folderJson(made.folder, await node.headRoot(made.folder)), created: made.created }, made.created ? 201 : 200);
  };

  app.post("/v1/folders", async (c) => {
    const body = await readJson(c);
    const name = requireFolderName(body.name, "name");
    // A scoped token makes only folders of its own list.
    const scope = scopedFolders(c);
    if (scope !== null && !scope.includes(name)) return c.json({ error: `this token may not make folder ${JSON.stringify(name)}: it is limited to other folders` }, 403);
    return createFolder(c, body, false);
  });

  const addMember = async (c: Context, body: Record<string, unknown>): Promise<Response> => {
    const address = requireAddress(body.address);
    const consensus = routing.requireLeader();
    const transport = routing.transport;
    if (!transport) throw new ConsensusUnavailableError("this node has no way to reach other nodes (start it with --cluster-token)", consensus.leader());
    // Asked through the Raft peer route, with the cluster token: only a dsync node of this
    // cluster answers it (a server that merely answers like a node's folder listing does not),
    // with its id and the group it is in.
    if (!transport.raft) throw new ConsensusUnavailableError("this node has no way to send Raft messages to other nodes", consensus.leader());
    let probe;
    try {
      probe = await transport.raft(address, []);
    } catch (error) {
      throw new UserError(`cannot add ${address}: it did not answer as a dsync node of this cluster (asked its id with the cluster token): ${(error as Error).message}`, 409);
    }
    const nodeId = probe.node;
    const status = consensus.status();
    if (status.members.some((m) => m.id === nodeId)) return c.json({ node: nodeId, address, added: false });
    // A node in a group of its own (another cluster, or one started with other --peers) is not taken over.
    if (probe.voters !== null && probe.voters.length > 0 && !probe.voters.includes(status.nodeId)) {
      throw new UserError(`cannot add ${address} (node ${nodeId}): it is a member of another Raft group (${probe.voters.join(", ")}); start it with an empty data folder, or remove it from that group first`, 409);
    }
    await consensus.changeMembership({ type: "add", node: nodeId, address }, MEMBERSHIP_TIMEOUT_MS);
    return c.json({ node: nodeId, address, added: true });
  };

  const removeMember = async (c: Context, nodeId: string): Promise<Response> => {
    const consensus = routing.requireLeader();
    if (!consensus.status().members.some((m) => m.id === nodeId)) throw new UserError(`node ${nodeId} is not a member of the cluster's log`, 404);
    await consensus.changeMembership({ type: "remove", node: nodeId, address: "" }, MEMBERSHIP_TIMEOUT_MS);
    return c.json({ node: nodeId, removed: true });
  };

  /** A membership change on the leader, or handed to it. */
  const onLeader = async (c: Context, body: Record<string, unknown>, run: () => Promise<Response>): Promise<Response> => {
    const consensus = routing.consensus;
    if (!consensus) throw new ConsensusUnavailableError("this node runs without the cluster's log", null);
    if (consensus.isLeader()) return run();
    return routing.forward(c, "members", body, MEMBERSHIP_TIMEOUT_MS + 5_000);
  };

  app.post("/v1/cluster/members", async (c) => {
    const body = await readJson(c);
    const address = requireAddress(body.address);
    return onLeader(c, { action: "add", address }, () => addMember(c, { address }));
  });

  app.delete("/v1/cluster/members/:node", async (c) => {
    const nodeId = c.req.param("node"); // checked with every route parameter (route-params.ts)
    return onLeader(c, { action: "remove", node: nodeId }, () => removeMember(c, nodeId));
  });

  // ----- handed over by a member (behind the cluster token) -----

  app.post("/v1/peer/strong/folders", async (c) => {
    const body = await readJson(c);
    requireNodeId(body.from, "from");
    return createFolder(c, body, true);
  });

  app.post("/v1/peer/strong/members", async (c) => {
    const body = await readJson(c);
    requireNodeId(body.from, "from");
    if (body.action === "add") return addMember(c, body);
    if (body.action === "remove") return removeMember(c, requireNodeId(body.node, "node"));
    throw new UserError('action must be "add" or "remove"');
  });
}

/** A member's base URL: http(s)://host[:port], no credentials, no query. */
function requireAddress(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > ADDRESS_CHARS_MAX) throw new UserError("address must be a node's URL, http(s)://HOST:PORT");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError("address must be a node's URL, http(s)://HOST:PORT");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password || url.search || url.hash) {
    throw new UserError("address must be a node's URL, http(s)://HOST:PORT, without credentials, query or fragment");
  }
  return value.replace(/\/+$/, "");
}
