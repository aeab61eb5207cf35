// The answering side of replication: what a node tells its peers. The HTTP peer routes and the
// simulation's in-memory transport both call these, so both run the same code.
import { idToHex, type ObjectId } from "../core/id.ts";
import { isReplicationMerge } from "../core/concurrent-merge.ts";
import { coversDot, counterOf } from "../core/version-vector.ts";
import type { DsyncNode } from "../node/node.ts";
import type { RecentUploads } from "./recent-uploads.ts";
import type { StoredObject } from "../store/object-store.ts";
import { LIMITS } from "../core/limits.ts";
import type { Message } from "../core/raft/types.ts";
import { RaftUnavailableError } from "../wire/raft-message.ts";
import type { HeadNotice, HistoryItem, HistoryPage, HistoryRequest, ListingRequest, PeerListing, RaftReceiver, RaftReply, StoredNotice } from "./transport.ts";

export class PeerService {
  constructor(
    private readonly node: DsyncNode,
    /** Called when a peer says one of its heads changed. */
    private readonly onNotice: (notice: HeadNotice) => void = () => {},
    /** Called when a peer says what it stored of a push still arriving (the replicator fetches it ahead). */
    private readonly onStored: (notice: StoredNotice) => void = () => {},
  ) {}

  /** One page of this node's folders by name, each with its head's vector (at most LIMITS.foldersPageMax). */
  async listFolders(page: ListingRequest = {}): Promise<PeerListing> {
    const limit = Math.min(page.limit ?? LIMITS.foldersPageMax, LIMITS.foldersPageMax);
    const listed = await this.node.listFoldersPage(limit, page.from);
    const folders = [];
    for (const folder of listed.folders) {
      folders.push({ name: folder.name, mode: folder.mode, head: folder.head, vector: await this.node.vectorOf(folder.head) });
    }
    return { node: this.node.nodeId, folders, next: listed.next };
  }

  /**
   * One page of the versions behind `head` that the asker lacks: a breadth-first walk over
   * parents that stops at writes the asker's vector covers (it holds them and everything behind
   * them). Merges and stale-push records carry no dot of their own, so the walk goes through
   * them. A parent this node no longer holds (pruned) ends that branch.
   *
   * A page holds at most LIMITS.historyPageVersionsMax versions and stops once it passes
   * LIMITS.historyPageBytesMax bytes (one version is always sent, so every page moves on); where
   * the walk stopped is `more`, and a request with `resumeFrom` goes on from there. The asker
   * leaves out of `resumeFrom` what it already received, so each page starts on versions it
   * lacks and the paging ends.
   */
  async history(request: HistoryRequest): Promise<HistoryPage> {
    const folder = await this.node.getFolder(request.folder);
    const done = { versions: [], more: [] };
    if (!(await this.node.hasVersion(folder.name, request.head))) return done;
    const out: HistoryItem[] = [];
    let bytesOut = 0;
    const seen = new Set<string>();
    let frontier: ObjectId[] = request.resumeFrom && request.resumeFrom.length > 0 ? [...request.resumeFrom] : [request.head];
    while (frontier.length > 0) {
      const next: ObjectId[] = [];
      for (let at = 0; at < frontier.length; at++) {
        // Full, or the ids still to walk would pass what one `more` may name: the rest is the
        // next page's. Past the first version sent, what is left to walk stays below the bound;
        // before it, at most the ids resumed from (at most half the bound) and its parents.
        const full = out.length >= LIMITS.historyPageVersionsMax || bytesOut >= LIMITS.historyPageBytesMax;
        const wouldOverflow = frontier.length - at + next.length + LIMITS.versionParentsMax > LIMITS.historyFrontierIdsMax;
        if (out.length > 0 && (full || wouldOverflow)) return { versions: out, more: unique([...frontier.slice(at), ...next]) };
        const id = frontier[at]!;
        const key = idToHex(id);
        if (seen.has(key)) continue;
        seen.add(key);
        const record = await this.node.getVersion(folder.name, id);
        if (!record) continue;
        const version = await this.node.decodeVersion(id);
        const ownCounter = counterOf(version.versionVector, version.author);
        const isWrite = !isReplicationMerge(version) && ownCounter > 0;
        if (isWrite && coversDot(request.known, version.author, ownCounter)) continue;
        // Never repaired from peers on a peer's behalf (the asker may be the only other holder).
        const [bytes] = await this.node.getObjects([id], { repair: false });
        if (!bytes) continue;
        out.push({ bytes, files: record.files, totalBytes: record.totalBytes });
        bytesOut += bytes.length;
        next.push(...record.parents);
      }
      frontier = next;
    }
    return { versions: out, more: [] };
  }

  /**
   * What this node holds of `ids`; what it found corrupt is listed as missing, and the asker tries
   * another peer. Objects of the last upload groups (recentUploads, streamed replication) are
   * answered from memory, the rest read from the store.
   */
  async download(ids: readonly ObjectId[]): Promise<{ objects: StoredObject[]; missing: ObjectId[] }> {
    const recent = this.recentUploads?.take(ids);
    if (!recent || !recent.some((bytes) => bytes !== undefined)) return this.node.download(ids, { repair: false });
    const rest = ids.filter((_, i) => recent[i] === undefined);
    const read = rest.length > 0 ? await this.node.download(rest, { repair: false }) : { objects: [], missing: [] };
    const objects: StoredObject[] = [];
    recent.forEach((bytes, i) => {
      if (bytes !== undefined) objects.push({ id: ids[i]!, bytes });
    });
    return { objects: [...objects, ...read.objects], missing: read.missing };
  }

  /** The replicator's last upload groups, set by the assembly (absent: every download reads the store). */
  recentUploads: RecentUploads | undefined;

  notify(notice: HeadNotice): void {
    this.onNotice(notice);
  }

  /** A peer's stored-objects notice (at most LIMITS.storedNoticeObjectsMax objects, checked by the caller). */
  notifyStored(notice: StoredNotice): void {
    if (notice.objects.length > LIMITS.storedNoticeObjectsMax) throw new Error(`a stored-objects notice names at most ${LIMITS.storedNoticeObjectsMax} objects`);
    this.onStored(notice);
  }

  /** Takes the strong mode's Raft messages to the node's driver (set by the assembly). */
  raftReceiver: RaftReceiver | undefined;

  /** A batch of Raft messages from a peer; 503 while this node runs no Raft group. */
  raft(messages: Message[], senderFingerprint?: string): Promise<RaftReply> {
    if (!this.raftReceiver) throw new RaftUnavailableError("this node runs no Raft group");
    return this.raftReceiver.receiveRaft(messages, senderFingerprint);
  }
}

/** Ids without repeats, in first-seen order. */
function unique(ids: readonly ObjectId[]): ObjectId[] {
  const seen = new Set<string>();
  return ids.filter((id) => {
    const key = idToHex(id);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
