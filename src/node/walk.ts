// Walks everything reachable from some ids: used to mark live objects for garbage collection
// and to check that a head's whole closure is stored. Chunks are only checked for presence,
// never read. The descent is core/descend.ts, pruned by the visited set.
import { idToHex, type ObjectId } from "../core/id.ts";
import { descend } from "../core/descend.ts";
import { peekKind } from "../core/objects.ts";
import type { ObjectStore } from "../store/object-store.ts";

export interface WalkStart {
  id: ObjectId;
  /** "unknown": may be a chunk or a structured object (decided by reading it). */
  kind: "structured" | "chunk" | "unknown";
}

export interface WalkOptions {
  /** Ids (hex) already visited; the walk adds to it, so several walks can share one set. */
  visited?: Set<string>;
  /** Told of each id reached but not stored, and what the walk took it for ("chunk": nothing lies below it). */
  onMissing?: (id: ObjectId, kind: WalkStart["kind"]) => void;
}

export async function walkClosure(starts: readonly WalkStart[], store: ObjectStore, options: WalkOptions = {}): Promise<Set<string>> {
  const visited = options.visited ?? new Set<string>();
  /** Marks an id visited; true when it was already. */
  const seen = (id: ObjectId): boolean => {
    const key = idToHex(id);
    if (visited.has(key)) return true;
    visited.add(key);
    return false;
  };
  const checkChunks = async (ids: readonly ObjectId[]) => {
    const fresh = ids.filter((id) => !seen(id));
    if (fresh.length === 0) return;
    const present = await store.hasMany(fresh);
    present.forEach((ok, i) => ok || options.onMissing?.(fresh[i]!, "chunk"));
  };
  const startKinds = new Map<string, WalkStart["kind"]>(starts.map((s) => [idToHex(s.id), s.kind]));
  const kindOf = (id: ObjectId) => startKinds.get(idToHex(id)) ?? "structured";
  await checkChunks(starts.filter((s) => s.kind === "chunk").map((s) => s.id));
  await descend(
    starts.filter((s) => s.kind !== "chunk").map((s) => s.id),
    {
      known: (ids) => ids.map(seen),
      prunesPassed: true,
      load: async (ids) => {
        const datas = await store.getMany(ids);
        return datas.map((bytes, i) => {
          const id = ids[i]!;
          if (!bytes) {
            options.onMissing?.(id, kindOf(id));
            return undefined;
          }
          // A start that may be a chunk and does not look structured: nothing below it.
          if (kindOf(id) === "unknown" && peekKind(bytes) === undefined) return undefined;
          return bytes;
        });
      },
      chunks: (chunks) => checkChunks(chunks.map((c) => c.id)),
      // A chunk that merely looks structured, or a malformed object: nothing below it.
      undecodable: () => {},
    },
  );
  return visited;
}
