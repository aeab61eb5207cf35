// How this node reaches the other members of its Raft group: member id -> base URL. Learned from
// three places: the peers of --peers (each asked its id), the config changes of the log (an
// added member comes with its address), and a snapshot's data (the addresses its leader knew).
// Kept in the metadata so a restart knows the members added since it was started.
import type { RaftNodeId } from "../core/raft/types.ts";
import type { MetadataStore } from "../node/metadata-store.ts";
import { nodeIdProblem } from "../node/node-id.ts";
import { isMemberAddress } from "./strong-state-machine.ts";

const ADDRESSES_KEY = "raft_member_addresses";

/** Members whose addresses are kept, at most (a group has at most 64 voters; removed ones linger a while). */
export const ADDRESSES_KEPT_MAX = 1024;

export class MemberAddresses {
  private readonly byId = new Map<RaftNodeId, string>();

  constructor(private readonly metadata: Pick<MetadataStore, "getMeta" | "setMeta">) {}

  async load(): Promise<void> {
    const text = await this.metadata.getMeta(ADDRESSES_KEY);
    if (!text) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return; // a damaged value costs the addresses, learned again from --peers and the log
    }
    if (typeof value !== "object" || value === null) return;
    for (const [id, address] of Object.entries(value as Record<string, unknown>)) {
      if (!nodeIdProblem(id) && typeof address === "string" && isMemberAddress(address)) this.byId.set(id, address);
    }
  }

  get(id: RaftNodeId): string | undefined {
    return this.byId.get(id);
  }

  /** The member at `address`, if one is known there. */
  idAt(address: string): RaftNodeId | undefined {
    for (const [id, known] of this.byId) if (known === address) return id;
    return undefined;
  }

  entries(): ReadonlyMap<RaftNodeId, string> {
    return this.byId;
  }

  /** Records where `id` is reached; durable when resolved (unchanged: nothing written). */
  async set(id: RaftNodeId, address: string): Promise<void> {
    if (nodeIdProblem(id) || !isMemberAddress(address) || this.byId.get(id) === address) return;
    if (!this.byId.has(id) && this.byId.size >= ADDRESSES_KEPT_MAX) return;
    this.byId.set(id, address);
    await this.metadata.setMeta(ADDRESSES_KEY, JSON.stringify(Object.fromEntries(this.byId)));
  }
}
