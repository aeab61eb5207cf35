// What one node asks of another during replication, as an interface: the HTTP transport
// (http-transport.ts) sends it over the network, a simulation delivers it in memory.
import type { ObjectId } from "../core/id.ts";
import type { VersionVector } from "../core/version-vector.ts";
import type { ConsistencyMode } from "../node/metadata-records.ts";
import type { StoredObject } from "../store/object-store.ts";
import type { HistoryPage } from "../wire/history.ts";
import type { Message } from "../core/raft/types.ts";
import type { RaftReply } from "../wire/raft-message.ts";

export interface PeerFolder {
  name: string;
  mode: ConsistencyMode;
  head: ObjectId | null;
  /** The head's version vector. */
  vector: VersionVector;
}

export interface PeerListing {
  /** The answering node's id. */
  node: string;
  /** One page of the folders, by name. */
  folders: PeerFolder[];
  /** The name the next page starts at; null (or absent, from a node that does not page) on the last. */
  next?: string | null;
}

/** Which page of folders: at most `limit` (at most LIMITS.foldersPageMax), from the name `from` on. */
export interface ListingRequest {
  from?: string;
  limit?: number;
}

export interface HistoryRequest {
  folder: string;
  /** The version whose history is wanted. */
  head: ObjectId;
  /** The asking node's head vector: writes it covers (and what lies behind them) are left out. */
  known: VersionVector;
  /** Where an earlier page stopped (its `more`): the walk goes on from these instead of from `head`. */
  resumeFrom?: ObjectId[];
}

/**
 * One page of a history answer: at most LIMITS.historyPageVersionsMax versions and about
 * LIMITS.historyPageBytesMax bytes of them. `more` is where the walk stopped (empty when it
 * went all the way): the asker asks again with `resumeFrom: more` until it is empty.
 */
// A history page's shape is the wire format's (src/wire/history.ts), which both ends decode.
export type { HistoryItem, HistoryPage } from "../wire/history.ts";

export interface HeadNotice {
  /** The id of the node whose head changed. */
  from: string;
  folder: string;
  head: ObjectId;
  vector: VersionVector;
}

/**
 * What a node stored of a push still arriving (one upload group or a few, coalesced): the peers
 * that replicate the folder fetch these objects ahead of the head (prefetch.ts), so the head's
 * closure is mostly here once the push commits. Only a hint: nothing is recorded from it, and a
 * lost one costs only time. At most LIMITS.storedNoticeObjectsMax objects.
 */
export interface StoredNotice {
  /** The id of the node that stored them. */
  from: string;
  /** The folder the upload said it serves (X-Dsync-Folder). */
  folder: string;
  /** Each object's id and its length in bytes as stored there (for sizing the fetches; not trusted beyond that). */
  objects: { id: ObjectId; lengthBytes: number }[];
}

/**
 * A write to a strong folder that a member took from a client and hands to the leader, one hop
 * (src/server/strong-routes.ts): a commit (the client's commit body and the folder; the leader
 * first fetches the pushed tree's objects from the member), a restore, a strong folder's
 * creation, a retention change, or a membership change. `from` is the forwarding node's id.
 */
export interface StrongForward {
  op: "commit" | "restore" | "folders" | "members" | "retention";
  from: string;
  body: Record<string, unknown>;
}

/** The leader's answer, as it would have answered the client: status, JSON body, Retry-After. */
export interface StrongForwardReply {
  status: number;
  body: unknown;
  retryAfter: string | null;
}

export interface DownloadOptions {
  /** Whether the reply may come zstd-compressed (the default): on a fast link compressing costs more than it saves (prefetch.ts). */
  compressed?: boolean;
}

export interface PeerTransport {
  listFolders(peer: string, page?: ListingRequest): Promise<PeerListing>;
  history(peer: string, request: HistoryRequest): Promise<HistoryPage>;
  download(peer: string, ids: readonly ObjectId[], options?: DownloadOptions): Promise<{ objects: StoredObject[]; missing: ObjectId[] }>;
  notify(peer: string, notice: HeadNotice): Promise<void>;
  /**
   * Tells the peer what this node stored of a push still arriving (a hint: the peer fetches it
   * ahead of the head). Absent from a transport without it: the peer then fetches at the head.
   */
  notifyStored?(peer: string, notice: StoredNotice): Promise<void>;
  /**
   * Hands a strong folder's write to the leader `peer` and brings back its answer whatever its
   * status (a failure to reach it rejects). Absent from a transport that carries replication only
   * (a test's): such a node answers a strong write it cannot take with 503.
   */
  forwardStrong?(peer: string, request: StrongForward, timeoutMs: number, signal?: AbortSignal): Promise<StrongForwardReply>;
  /**
   * Delivers a batch of Raft messages of the strong mode's group (src/consensus) from this node
   * to the peer's; resolves with the peer's id and the voters of its group (null: it holds no
   * Raft state yet) once it took them in, without waiting for what they cause. An empty batch
   * asks only that (how a starting node learns whether a group exists). Absent from a transport
   * that carries replication only (a test's): the node then runs a group of its own alone.
   */
  raft?(peer: string, messages: readonly Message[]): Promise<RaftReply>;
}

/**
 * Who takes in the Raft messages peers send (the strong mode's driver, src/consensus), set on
 * the PeerService by the assembly. `senderFingerprint` is the certificate the request proved
 * it holds (TLS peers), so the receiver can check the messages' sender is that node.
 */
export interface RaftReceiver {
  receiveRaft(messages: Message[], senderFingerprint: string | undefined): Promise<RaftReply>;
}

export type { RaftReply } from "../wire/raft-message.ts";

/** Timers as an input, so a simulation can run replication on its own schedule (defined beside the clock). */
export { systemTimers, type Timers } from "../node/clock.ts";
