// Walks everything reachable from some ids: used to mark live objects for garbage collection
// and to check that a head's whole closure is stored. Chunks are only checked for presence,
// never read.
import { idToHex, type ObjectId } from "../core/id.ts";
import { childRefs, decodeObject, peekKind, type StructuredObject } from "../core/objects.ts";
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

const BATCH_SIZE = 256;

export async function walkClosure(starts: readonly WalkStart[], store: ObjectStore, options: WalkOptions = {}): Promise<Set<string>> {
  const visited = options.visited ?? new Set<string>();
  const pending: WalkStart[] = [...starts];
  const chunks: ObjectId[] = [];
  const flushChunks = async () => {
    const present = await store.hasMany(chunks);
    present.forEach((ok, i) => ok || options.onMissing?.(chunks[i]!, "chunk"));
    chunks.length = 0;
  };
  while (pending.length > 0) {
    const batch: WalkStart[] = [];
    while (pending.length > 0 && batch.length < BATCH_SIZE) {
      const item = pending.pop()!;
      const key = idToHex(item.id);
      if (visited.has(key)) continue;
      visited.add(key);
      if (item.kind === "chunk") {
        chunks.push(item.id);
        if (chunks.length >= BATCH_SIZE) await flushChunks();
      } else batch.push(item);
    }
    if (batch.length === 0) continue;
    const datas = await store.getMany(batch.map((b) => b.id));
    for (let i = 0; i < batch.length; i++) {
      const bytes = datas[i];
      const item = batch[i]!;
      if (!bytes) {
        options.onMissing?.(item.id, item.kind);
        continue;
      }
      if (item.kind === "unknown" && peekKind(bytes) === undefined) continue;
      let object: StructuredObject;
      try {
        object = decodeObject(bytes);
      } catch {
        // A chunk that merely looks structured, or a malformed object: nothing below it.
        continue;
      }
      const children = childRefs(object);
      for (const id of children.objects) pending.push({ id, kind: "structured" });
      for (const id of children.chunks) pending.push({ id, kind: "chunk" });
    }
  }
  if (chunks.length > 0) await flushChunks();
  return visited;
}
