// The merge base of a push onto a moved head: the nearest common ancestor of two versions of a
// folder, found breadth-first over the parents this node records (a parent pruned by retention
// ends its branch, and then there may be none: the merge keeps every path of both sides).
import { idToHex, type ObjectId } from "../core/id.ts";
import type { MetadataStore } from "./metadata-store.ts";

export async function findMergeBase(metadata: Pick<MetadataStore, "getVersion">, folder: string, a: ObjectId, b: ObjectId): Promise<ObjectId | null> {
  const ancestorsOfA = new Set<string>();
  let frontier: ObjectId[] = [a];
  while (frontier.length > 0) {
    const next: ObjectId[] = [];
    for (const id of frontier) {
      const key = idToHex(id);
      if (ancestorsOfA.has(key)) continue;
      ancestorsOfA.add(key);
      next.push(...((await metadata.getVersion(folder, id))?.parents ?? []));
    }
    frontier = next;
  }
  const seen = new Set<string>();
  frontier = [b];
  while (frontier.length > 0) {
    const next: ObjectId[] = [];
    for (const id of frontier) {
      const key = idToHex(id);
      if (ancestorsOfA.has(key)) return id;
      if (seen.has(key)) continue;
      seen.add(key);
      next.push(...((await metadata.getVersion(folder, id))?.parents ?? []));
    }
    frontier = next;
  }
  return null;
}
