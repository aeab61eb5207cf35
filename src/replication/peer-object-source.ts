// Objects by id from the node's peers, for repairing what this node found corrupt.
//
// Each peer is asked in turn for what the ones before it did not send. Requests are small
// enough that no answer can pass the peer's per-download byte limit whatever the objects'
// sizes, and a peer that fails or hangs (every transport call has a deadline) is skipped for
// the rest of this fetch. What comes back is checked against its id by the repairer.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { ObjectSource } from "../node/repair.ts";
import type { StoredObject } from "../store/object-store.ts";
import type { PeerTransport } from "./transport.ts";

/** Ids per download request: that many objects of the largest size still fit in one answer. */
export const REPAIR_IDS_PER_REQUEST = Math.max(1, Math.floor(LIMITS.requestBodyBytesMax / LIMITS.objectBytesMax));

export class PeerObjectSource implements ObjectSource {
  constructor(
    private readonly transport: PeerTransport,
    /** Peer addresses, asked in this order. */
    private readonly peers: () => readonly string[],
    private readonly log?: (line: string) => void,
  ) {}

  async fetch(ids: readonly ObjectId[]): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    let wanted = [...ids];
    for (const peer of this.peers()) {
      if (wanted.length === 0) break;
      const got = new Set<string>();
      try {
        for (let at = 0; at < wanted.length; at += REPAIR_IDS_PER_REQUEST) {
          const reply = await this.transport.download(peer, wanted.slice(at, at + REPAIR_IDS_PER_REQUEST));
          for (const object of reply.objects) {
            found.push(object);
            // Only a copy that hashes to its id stops the search; the repairer checks again before storing.
            if (idEquals(blake3(object.bytes), object.id)) got.add(idToHex(object.id));
          }
        }
      } catch (error) {
        this.log?.(`dsync: asking ${peer} for ${wanted.length} object(s) to repair failed: ${(error as Error).message}`);
      }
      wanted = wanted.filter((id) => !got.has(idToHex(id)));
    }
    return found;
  }
}
