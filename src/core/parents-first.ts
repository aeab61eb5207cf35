// Versions ordered so each comes after those of its parents that are among them: the order a
// node records versions received from a peer in (replication, and a strong folder's history
// fetched with a snapshot), so a version is never recorded before a parent that came with it.
import { idToHex, type ObjectId } from "./id.ts";

/**
 * `versions` reordered parents first; otherwise in the order given (a caller that needs the same
 * order on every node sorts them first). Iterative depth-first: histories may be thousands of
 * versions deep.
 */
export function parentsFirst<T extends { id: ObjectId; version: { parents: readonly ObjectId[] } }>(versions: readonly T[]): T[] {
  const byId = new Map(versions.map((v) => [idToHex(v.id), v]));
  const out: T[] = [];
  const placed = new Set<string>();
  for (const start of versions) {
    const stack: { v: T; next: number }[] = [{ v: start, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const key = idToHex(top.v.id);
      if (placed.has(key)) {
        stack.pop();
        continue;
      }
      const parents = top.v.version.parents;
      if (top.next < parents.length) {
        const parent = byId.get(idToHex(parents[top.next++]!));
        if (parent && !placed.has(idToHex(parent.id))) stack.push({ v: parent, next: 0 });
        continue;
      }
      placed.add(key);
      out.push(top.v);
      stack.pop();
    }
  }
  return out;
}
