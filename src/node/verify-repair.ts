// The repair half of `dsync verify`: which objects the kept versions need that this node does
// not hold (missing, or quarantined because they were found corrupt), which folders and
// versions need them, and, with --repair, getting them back from peers.
//
// Repairing a tree node can only reveal more of what lies below it, so the need is computed
// again after each round of repairs, until a round repairs nothing (or ROUNDS_MAX rounds: a tree
// is at most that many levels of objects that could each have been lost at once).
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { CorruptObjectError, type ObjectStore } from "../store/object-store.ts";
import type { MetadataStore } from "./metadata-store.ts";
import type { Repairer } from "./repair.ts";
import { walkClosure } from "./walk.ts";

/** A needed object this node does not hold, and (up to AFFECTED_MAX of) the versions that need it. */
export interface DamagedObject {
  id: string;
  affected: { folder: string; version: string }[];
}

export interface RepairReport {
  /** Objects in quarantine after the run (found corrupt, no good copy stored since). */
  quarantined: number;
  /** "peers": --repair asked the node's peers; "none": no repair asked, or nobody to ask (--data). */
  repairFrom: "peers" | "none";
  /** Objects stored again from a peer by this run (hex). */
  repaired: string[];
  /** Objects a kept version needs that are still not here: nothing could repair them (or no repair was asked). */
  unrepairable: DamagedObject[];
  /** Quarantined objects no kept version needs (their damaged bytes stay until a good copy comes). */
  quarantinedUnneeded: number;
}

const AFFECTED_MAX = 16;
const ROUNDS_MAX = LIMITS.treeDepthMax + 2;
const WALK_ATTEMPTS_MAX = 3;

/** Objects the kept versions of every folder need and the store does not hold, by hex id. */
export async function findNeeded(store: ObjectStore, metadata: MetadataStore): Promise<Map<string, DamagedObject>> {
  const needed = new Map<string, DamagedObject>();
  for (const folder of await metadata.listFolders()) {
    // Versions of one folder share most of their trees: one visited set per folder walks each
    // object once, and names the newest version that needs it.
    const visited = new Set<string>();
    for (const version of await metadata.listVersions(folder.name)) {
      const onMissing = (id: ObjectId) => {
        const key = idToHex(id);
        let damaged = needed.get(key);
        if (damaged === undefined) needed.set(key, (damaged = { id: key, affected: [] }));
        if (damaged.affected.length < AFFECTED_MAX) damaged.affected.push({ folder: folder.name, version: idToHex(version.id) });
      };
      for (let attempt = 1; ; attempt++) {
        try {
          await walkClosure([{ id: version.id, kind: "structured" }], store, { visited, onMissing });
          break;
        } catch (error) {
          // A read found fresh damage: the store quarantined it, so walking again reads it as missing.
          if (!(error instanceof CorruptObjectError) || attempt >= WALK_ATTEMPTS_MAX) throw error;
          for (const key of [...visited]) visited.delete(key);
        }
      }
    }
  }
  return needed;
}

export async function checkAndRepair(store: ObjectStore, metadata: MetadataStore, repairer: Repairer | undefined): Promise<RepairReport> {
  let needed = await findNeeded(store, metadata);
  let quarantined = await quarantinedIds(store);
  const repaired = new Set<string>();
  if (repairer !== undefined) {
    for (let round = 0; round < ROUNDS_MAX; round++) {
      const wanted = new Set([...needed.keys(), ...quarantined]);
      if (wanted.size === 0) break;
      const result = await repairer.repair([...wanted].map(idFromHex));
      const fresh = result.repaired.map(idToHex).filter((key) => !repaired.has(key));
      for (const key of fresh) repaired.add(key);
      if (fresh.length === 0) break;
      needed = await findNeeded(store, metadata);
      quarantined = await quarantinedIds(store);
    }
  }
  return {
    quarantined: quarantined.size,
    repairFrom: repairer === undefined ? "none" : "peers",
    repaired: [...repaired],
    unrepairable: [...needed.values()],
    quarantinedUnneeded: [...quarantined].filter((key) => !needed.has(key)).length,
  };
}

async function quarantinedIds(store: ObjectStore): Promise<Set<string>> {
  return new Set((await store.listQuarantine({ unrepairedOnly: true })).map((record) => idToHex(record.id)));
}
