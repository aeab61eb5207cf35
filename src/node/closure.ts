// Closure check: before a head may point at a tree, every object below it must be present and
// the whole tree must keep the format's structural rules (across pages and levels, the kind and
// size of every child). Objects already known complete (checked by an earlier commit) are not
// read again but matched against the summary that check recorded, so the cost grows with what
// is new, not with the size of the folder, and a mark never vouches for more than was checked.
import { idToHex, type ObjectId } from "../core/id.ts";
import { checkTreeStructure, TreeStructureError, type CheckedNode, type NodeSummary, type StructureReport } from "../core/tree-structure.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { Metadata } from "./metadata.ts";

export class IncompleteTreeError extends Error {
  override name = "IncompleteTreeError";
  constructor(readonly missing: ObjectId[]) {
    super(`${missing.length} object(s) named by the tree are not stored, e.g. ${missing.slice(0, 3).map(idToHex).join(", ")}`);
  }
}

/** A tree that breaks a rule of the format: names the object, where it sits, and the rule. */
export class InvalidTreeError extends Error {
  override name = "InvalidTreeError";
  constructor(message: string, readonly objectId?: ObjectId, readonly path?: string, readonly rule?: string) {
    super(message);
  }
}

/**
 * Checks that everything below a tree is stored and that the tree keeps every structural rule
 * (core/tree-structure.ts), taking what earlier commits marked complete at the value of their
 * summaries. Returns what it checked for the first time, for the caller to mark complete once
 * it commits; throws IncompleteTreeError or InvalidTreeError and then nothing is to be marked.
 */
export async function verifyTreeClosure(rootId: ObjectId, store: ObjectStore, metadata: Metadata): Promise<CheckedNode[]> {
  const report = await checkTree(rootId, store, (id) => metadata.completeSummary(id));
  if (report.missing.length > 0) throw new IncompleteTreeError(report.missing);
  return report.checked;
}

/** The structural check over a store; a broken rule becomes InvalidTreeError (HTTP 422). */
export async function checkTree(rootId: ObjectId, store: ObjectStore, known: (id: ObjectId) => NodeSummary | undefined): Promise<StructureReport> {
  try {
    return await checkTreeStructure(rootId, { getMany: (ids) => store.getMany(ids), hasMany: (ids) => store.hasMany(ids), known });
  } catch (error) {
    if (error instanceof TreeStructureError) throw new InvalidTreeError(error.message, error.objectId, error.path, error.rule);
    throw error;
  }
}
