// The top-down Merkle descent the walkers share: from some roots, down through the objects
// each names, in batches, never below what the caller already knows.
//
// What "knowing" and "having" mean is the caller's, injected as batch functions:
//   known(ids)       prune: these need no visit, nor anything below them (completeness marks,
//                    objects known present on the other side)
//   have(ids)        which of these the side asked holds (one question per batch)
//   load(ids, held)  the bytes of the objects to descend into, from wherever the caller gets them
//                    (its store, a download); undefined where the walk stops at that object
//   chunks(refs)     the chunks reached (the leaves), each once, in batches
//   settled(ids)     a batch whose whole subtree has been walked (children before parents)
// Children come from the object format (objects.ts childRefs), so a change in what an object
// may name is made in one place.
//
// Memory stays flat for wide trees: the walk goes depth first over batches, so it holds the
// children of one batch per level on its way down (never a whole level of a million files),
// and ids it has passed are kept as 32-byte keys, not hex. Ids name their bytes, so the graph
// has no cycles; a graph that names the same subtree from many places (a hostile fan-out) is
// walked once per distinct object, by the set of ids already passed.
import type { ObjectId } from "./id.ts";
import { LIMITS } from "./limits.ts";
import { childRefs, decodeObject, isFileLeaf, isTreeLeaf, type ChunkRef, type StructuredObject } from "./objects.ts";

export interface DescendSources {
  /** True for each id that needs no visit, nor anything below it. Default: none. */
  known?: (ids: readonly ObjectId[]) => readonly boolean[] | Promise<readonly boolean[]>;
  /** Which ids the side asked holds, one batch at a time. Default: all (load then says). */
  have?: (ids: readonly ObjectId[]) => Promise<readonly boolean[]>;
  /** The bytes of the objects to go below, given what `have` said of each; undefined stops there. */
  load: (ids: readonly ObjectId[], held: readonly boolean[]) => Promise<readonly (Uint8Array | undefined)[]>;
  /**
   * Called once everything below a batch has been walked (children before parents), with what
   * load gave for it: a cache that stores here never holds an object without what is below it,
   * so a walk cut short and started again can still prune at what the cache holds.
   */
  settled?: (ids: readonly ObjectId[], loaded: readonly (Uint8Array | undefined)[]) => void | Promise<void>;
  /** The chunks reached, each once, at most `batchIds` at a time. */
  chunks?: (chunks: readonly ChunkRef[]) => void | Promise<void>;
  /** Bytes that are not a valid object: the default is to throw (the decoder's error). */
  undecodable?: (id: ObjectId, bytes: Uint8Array, error: Error) => void;
  /** Ids per batch of known/have/load; LIMITS.descentBatchIds by default. */
  batchIds?: number;
  /**
   * The caller's `known` or `have` already says no to every object it was handed before (it
   * stores what it loads): the walk then keeps no set of passed ids, only each batch's.
   */
  prunesPassed?: boolean;
}

export interface DescendReport {
  /** Objects passed to load. */
  objectsLoaded: number;
  /** Objects decoded and gone below. */
  objectsDescended: number;
  /** Ids pruned by `known`. */
  objectsKnown: number;
  chunksReached: number;
  batches: number;
  /** The most ids waiting at once: the frontier's high-water mark. */
  frontierIdsMax: number;
}

/** The ids an object names and the chunks among them, with their lengths where the object states them. */
export function childrenOf(object: StructuredObject): { objects: ObjectId[]; chunks: ChunkRef[] } {
  const refs = childRefs(object);
  if (object.kind === "file" && isFileLeaf(object)) return { objects: refs.objects, chunks: object.chunks };
  if (refs.chunks.length === 0) return { objects: refs.objects, chunks: [] };
  // A chunk named elsewhere than a file leaf (a tree entry naming its file's one chunk): the
  // entry's size is the chunk's length.
  const sizes = new Map<string, number>();
  if (object.kind === "tree" && isTreeLeaf(object)) for (const entry of object.entries) if (entry.id) sizes.set(keyOf(entry.id), entry.sizeBytes);
  return { objects: refs.objects, chunks: refs.chunks.map((id) => ({ id, lengthBytes: sizes.get(keyOf(id)) ?? 0 })) };
}

/** An id as a 32-character one-byte string: half the memory of hex in a set of millions. */
function keyOf(id: ObjectId): string {
  return String.fromCharCode.apply(null, id as unknown as number[]);
}

export async function descend(roots: readonly ObjectId[], sources: DescendSources): Promise<DescendReport> {
  const batchIds = Math.max(1, sources.batchIds ?? LIMITS.descentBatchIds);
  const report: DescendReport = { objectsLoaded: 0, objectsDescended: 0, objectsKnown: 0, chunksReached: 0, batches: 0, frontierIdsMax: 0 };
  // Ids passed: across the walk, or (prunesPassed) within the batch being gathered.
  let passed = new Set<string>();
  // A stack of id lists (each the children of one batch); batches are taken from the top one
  // alone, so when a list is used up, everything below the batch that named it has been walked.
  const stack: { ids: readonly ObjectId[]; next: number; settle?: () => void | Promise<void> }[] = [{ ids: roots, next: 0 }];
  let waiting = roots.length;
  let chunkBatch: ChunkRef[] = [];
  const flushChunks = async () => {
    if (chunkBatch.length === 0) return;
    const batch = chunkBatch;
    chunkBatch = [];
    await sources.chunks?.(batch);
  };

  while (stack.length > 0) {
    // Up to batchIds new ids from the deepest list.
    const top = stack[stack.length - 1]!;
    if (top.next >= top.ids.length) {
      stack.pop();
      await top.settle?.();
      continue;
    }
    if (sources.prunesPassed) passed = new Set();
    const batch: ObjectId[] = [];
    while (batch.length < batchIds && top.next < top.ids.length) {
      const id = top.ids[top.next++]!;
      waiting--;
      const key = keyOf(id);
      if (passed.has(key)) continue;
      passed.add(key);
      batch.push(id);
    }
    if (batch.length === 0) continue;
    report.batches++;
    let wanted = batch;
    if (sources.known) {
      const known = await sources.known(batch);
      wanted = batch.filter((_, i) => !known[i]);
      report.objectsKnown += batch.length - wanted.length;
      if (wanted.length === 0) continue;
    }
    const held = sources.have ? await sources.have(wanted) : wanted.map(() => true);
    const loaded = await sources.load(wanted, held);
    report.objectsLoaded += wanted.length;
    const below: ObjectId[] = [];
    for (let i = 0; i < wanted.length; i++) {
      const bytes = loaded[i];
      if (bytes === undefined) continue;
      let object: StructuredObject;
      try {
        object = decodeObject(bytes);
      } catch (error) {
        if (!sources.undecodable) throw error;
        sources.undecodable(wanted[i]!, bytes, error as Error);
        continue;
      }
      report.objectsDescended++;
      const children = childrenOf(object);
      below.push(...children.objects);
      if (!sources.chunks) continue;
      for (const chunk of children.chunks) {
        const key = keyOf(chunk.id);
        if (passed.has(key)) continue;
        passed.add(key);
        report.chunksReached++;
        chunkBatch.push(chunk);
        if (chunkBatch.length >= batchIds) await flushChunks();
      }
    }
    const settle = sources.settled && (() => sources.settled!(wanted, loaded));
    if (below.length > 0) {
      stack.push({ ids: below, next: 0, settle });
      waiting += below.length;
      if (waiting > report.frontierIdsMax) report.frontierIdsMax = waiting;
    } else await settle?.();
  }
  await flushChunks();
  return report;
}
