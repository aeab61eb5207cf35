// The answering side of replication: what a node tells its peers. The HTTP peer routes and the
// simulation's in-memory transport both call these, so both run the same code.
import { idToHex, type ObjectId } from "../core/id.ts";
import { isReplicationMerge } from "../core/concurrent-merge.ts";
import { coversDot, counterOf } from "../core/version-vector.ts";
import type { DsyncNode } from "../node/node.ts";
import type { StoredObject } from "../store/object-store.ts";
import type { HeadNotice, HistoryItem, HistoryRequest, PeerListing } from "./transport.ts";

/** Most versions one history answer carries; a longer gap is closed over several syncs. */
export const HISTORY_VERSIONS_MAX = 50_000;

export class PeerService {
  constructor(
    private readonly node: DsyncNode,
    /** Called when a peer says one of its heads changed. */
    private readonly onNotice: (notice: HeadNotice) => void = () => {},
  ) {}

  async listFolders(): Promise<PeerListing> {
    const folders = [];
    for (const folder of this.node.listFolders()) {
      folders.push({ name: folder.name, mode: folder.mode, head: folder.head, vector: await this.node.vectorOf(folder.head) });
    }
    return { node: this.node.nodeId, folders };
  }

  /**
   * The versions behind `head` that the asker lacks: a breadth-first walk over parents that
   * stops at writes the asker's vector covers (it holds them and everything behind them).
   * Merges and stale-push records carry no dot of their own, so the walk goes through them.
   * A parent this node no longer holds (pruned) ends that branch.
   */
  async history(request: HistoryRequest): Promise<HistoryItem[]> {
    const folder = this.node.getFolder(request.folder);
    if (!this.node.metadata.getVersion(folder.name, request.head)) return [];
    const out: HistoryItem[] = [];
    const seen = new Set<string>();
    let frontier: ObjectId[] = [request.head];
    while (frontier.length > 0 && out.length < HISTORY_VERSIONS_MAX) {
      const next: ObjectId[] = [];
      for (const id of frontier) {
        const key = idToHex(id);
        if (seen.has(key)) continue;
        seen.add(key);
        const record = this.node.metadata.getVersion(folder.name, id);
        if (!record) continue;
        const version = await this.node.decodeVersion(id);
        const ownCounter = counterOf(version.versionVector, version.author);
        const isWrite = !isReplicationMerge(version) && ownCounter > 0;
        if (isWrite && coversDot(request.known, version.author, ownCounter)) continue;
        // Never repaired from peers on a peer's behalf (the asker may be the only other holder).
        const [bytes] = await this.node.getObjects([id], { repair: false });
        if (!bytes) continue;
        out.push({ bytes, files: record.files, totalBytes: record.totalBytes });
        next.push(...record.parents);
        if (out.length >= HISTORY_VERSIONS_MAX) break;
      }
      frontier = next;
    }
    return out;
  }

  /** What this node holds of `ids`; what it found corrupt is listed as missing, and the asker tries another peer. */
  download(ids: readonly ObjectId[]): Promise<{ objects: StoredObject[]; missing: ObjectId[] }> {
    return this.node.download(ids, { repair: false });
  }

  notify(notice: HeadNotice): void {
    this.onNotice(notice);
  }
}
