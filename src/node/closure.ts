// Closure check: before a head may point at a tree, every object below it must be present and
// the whole tree must keep the format's structural rules (across pages and levels, the kind and
// size of every child). Objects already known complete (checked by an earlier commit) are not
// read again but matched against the summary that check recorded, so the cost grows with what
// is new, not with the size of the folder, and a mark never vouches for more than was checked.
import { idToHex, type ObjectId } from "../core/id.ts";
import { checkTreeStructure, TreeStructureError, type CheckedNode, type StructureReport, type StructureSources } from "../core/tree-structure.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { MetadataStore } from "./metadata-store.ts";

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
 * summaries. Marks what it checked for the first time as it goes, children before parents, in
 * transactions of at most RECORD_BATCH_NODES, so a tree of millions of files is never held
 * whole: each mark is true of its own subtree whatever the rest of the tree holds, so the marks
 * of a check that then fails (IncompleteTreeError, InvalidTreeError) stay true, and the next
 * attempt does not read those subtrees again. The root is marked last, only when all passed.
 */
export async function verifyTreeClosure(
  rootId: ObjectId,
  store: ObjectStore,
  metadata: Pick<MetadataStore, "completeSummary" | "completeSummaries" | "markComplete">,
  chunkLengths?: StructureSources["chunkLengths"],
): Promise<void> {
  // Paced by what the check reads (nodes, and the chunks that files named by their chunk are
  // checked against), not by what it marks: a tree of 100 000 small files reads 100 000 chunks
  // and marks only its few hundred directories' nodes.
  let sinceCollection = 0;
  const reading: Pick<ObjectStore, "getMany" | "hasMany"> = {
    getMany: async (ids) => {
      const found = await store.getMany(ids);
      sinceCollection += ids.length;
      if (sinceCollection >= CHECK_COLLECT_NODES) {
        sinceCollection = 0;
        Bun.gc(true);
      }
      return found;
    },
    hasMany: (ids) => store.hasMany(ids),
  };
  const record = (nodes: CheckedNode[]) => metadata.markComplete(nodes);
  const report = await checkTree(rootId, reading, (id) => metadata.completeSummary(id), record, (ids) => metadata.completeSummaries(ids), chunkLengths);
  if (report.missing.length > 0) throw new IncompleteTreeError(report.missing);
}

/**
 * Objects read between two full collections during a commit's check. Each read leaves a
 * few hundred bytes of garbage (the record, its decoded object, the index row), and
 * JavaScriptCore, pacing itself by its small live heap, let a 100 000-file check grow the node
 * by ~200 MB before collecting; a collection of that small heap takes ~10 ms.
 */
const CHECK_COLLECT_NODES = 32_768;

/**
 * The structural check over a store; a broken rule becomes InvalidTreeError (HTTP 422). With
 * `record`, what it checked goes there in bounded batches instead of into the report.
 */
export async function checkTree(
  rootId: ObjectId,
  store: Pick<ObjectStore, "getMany" | "hasMany">,
  known: StructureSources["known"],
  record?: StructureSources["record"],
  knownMany?: StructureSources["knownMany"],
  chunkLengths?: StructureSources["chunkLengths"],
): Promise<StructureReport> {
  try {
    return await checkTreeStructure(rootId, { getMany: (ids) => store.getMany(ids), hasMany: (ids) => store.hasMany(ids), known, knownMany, record, chunkLengths });
  } catch (error) {
    if (error instanceof TreeStructureError) throw new InvalidTreeError(error.message, error.objectId, error.path, error.rule);
    throw error;
  }
}
