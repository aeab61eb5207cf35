// Closure check: before a head may point at a tree, every object below it must be present and
// well-formed. Objects already known complete (checked by an earlier commit) are not descended
// into, so the cost grows with what is new, not with the size of the folder.
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { decodeObject, isFileLeaf, isTreeLeaf, type StructuredObject } from "../core/objects.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { Metadata } from "./metadata.ts";

export class IncompleteTreeError extends Error {
  override name = "IncompleteTreeError";
  constructor(readonly missing: ObjectId[]) {
    super(`${missing.length} object(s) named by the tree are not stored, e.g. ${missing.slice(0, 3).map(idToHex).join(", ")}`);
  }
}

export class InvalidTreeError extends Error {
  override name = "InvalidTreeError";
}

interface Pending {
  id: ObjectId;
  expect: "tree" | "file";
  depth: number;
  /** For a file's top node: the size the tree entry claims. */
  sizeBytes?: number;
}

const BATCH_SIZE = 512;

/** Verifies the closure of a tree and returns the structured objects it found complete for the first time. */
export async function verifyTreeClosure(rootId: ObjectId, store: ObjectStore, metadata: Metadata): Promise<ObjectId[]> {
  const newlyComplete: ObjectId[] = [];
  const missing: ObjectId[] = [];
  const chunkIds: ObjectId[] = [];
  const seen = new Set<string>();
  const stack: Pending[] = [{ id: rootId, expect: "tree", depth: 0 }];

  const checkChunks = async (final: boolean) => {
    while (chunkIds.length >= BATCH_SIZE || (final && chunkIds.length > 0)) {
      const batch = chunkIds.splice(0, BATCH_SIZE);
      const present = await store.hasMany(batch);
      present.forEach((ok, i) => ok || missing.push(batch[i]!));
    }
  };

  while (stack.length > 0) {
    const batch = stack.splice(Math.max(0, stack.length - BATCH_SIZE));
    const toLoad = batch.filter((item) => item.sizeBytes !== undefined || !metadata.isComplete(item.id));
    const bytesList = await store.getMany(toLoad.map((item) => item.id));
    for (let i = 0; i < toLoad.length; i++) {
      const item = toLoad[i]!;
      const bytes = bytesList[i];
      if (!bytes) {
        missing.push(item.id);
        continue;
      }
      let object: StructuredObject;
      try {
        object = decodeObject(bytes);
      } catch (error) {
        throw new InvalidTreeError(`object ${idToHex(item.id)}: ${(error as Error).message}`);
      }
      if (object.kind !== item.expect) throw new InvalidTreeError(`object ${idToHex(item.id)} is a ${object.kind}, expected a ${item.expect}`);
      if (item.sizeBytes !== undefined && object.kind === "file" && object.sizeBytes !== item.sizeBytes) {
        throw new InvalidTreeError(`file ${idToHex(item.id)} holds ${object.sizeBytes} bytes but its entry says ${item.sizeBytes}`);
      }
      const key = idToHex(item.id);
      if (seen.has(key) || metadata.isComplete(item.id)) continue;
      seen.add(key);
      newlyComplete.push(item.id);
      if (item.depth > LIMITS.treeDepthMax) throw new InvalidTreeError("tree deeper than allowed");
      if (object.kind === "tree") {
        if (isTreeLeaf(object)) {
          for (const entry of object.entries) {
            if (entry.kind === "dir") stack.push({ id: entry.id!, expect: "tree", depth: item.depth + 1 });
            else if (entry.kind === "file") stack.push({ id: entry.id!, expect: "file", depth: item.depth + 1, sizeBytes: entry.sizeBytes });
          }
        } else {
          for (const page of object.pages) stack.push({ id: page.id, expect: "tree", depth: item.depth + 1 });
        }
      } else if (object.kind === "file") {
        if (isFileLeaf(object)) chunkIds.push(...object.chunks.map((c) => c.id));
        else for (const page of object.pages) stack.push({ id: page.id, expect: "file", depth: item.depth + 1 });
      }
    }
    await checkChunks(false);
  }
  await checkChunks(true);
  if (missing.length > 0) throw new IncompleteTreeError(missing);
  return newlyComplete;
}
