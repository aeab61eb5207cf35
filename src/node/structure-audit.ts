// The structural audit behind `dsync verify`: every version a folder keeps, not only its head,
// is checked against the format's structural rules (core/tree-structure.ts), ignoring the
// completeness marks: they are what an earlier check established, and verify is there to find
// what an earlier check (or an older dsync, which checked less) let through. Versions share
// their unchanged subtrees, so what one version's check vouched for is reused by the next one
// within the same audit; a subtree that broke a rule is not, so every version holding it is
// reported. That reuse is a cache with a bound: past it, it starts over (later versions then
// re-read what they share), and the check itself holds only its frontier, so memory follows
// neither the largest tree nor the whole history.
import { idToHex, type ObjectId } from "../core/id.ts";
import type { NodeSummary } from "../core/tree-structure.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { checkTree, InvalidTreeError } from "./closure.ts";
import type { MetadataStore } from "./metadata-store.ts";

export interface StructureProblem {
  folder: string;
  /** The version whose tree breaks the rule (hex). */
  version: string;
  /** The object that breaks it (hex), and where it sits in the version's tree. */
  object: string;
  path: string;
  problem: string;
}

export interface StructureAudit {
  problems: StructureProblem[];
  /** Objects some kept version needs that are not stored (hex, each once). */
  missing: string[];
}

/** Summaries kept for reuse across versions (about 200 bytes each: at most ~50 MB). */
const VOUCHED_ENTRIES_MAX = 250_000;

export async function auditStructure(store: ObjectStore, metadata: MetadataStore): Promise<StructureAudit> {
  const vouched = new Map<string, NodeSummary>();
  const known = (id: ObjectId) => vouched.get(idToHex(id));
  const problems: StructureProblem[] = [];
  const missing = new Set<string>();
  for (const folder of await metadata.listFolders()) {
    for (const version of await metadata.listVersions(folder.name)) {
      try {
        // What the check establishes is vouched for as it goes (a tree is never held whole).
        const report = await checkTree(version.root, store, known, (nodes) => {
          if (vouched.size + nodes.length > VOUCHED_ENTRIES_MAX) vouched.clear();
          for (const item of nodes) vouched.set(idToHex(item.id), item.summary);
        });
        for (const id of report.missing) missing.add(idToHex(id));
      } catch (error) {
        if (!(error instanceof InvalidTreeError)) throw error;
        problems.push({
          folder: folder.name,
          version: idToHex(version.id),
          object: error.objectId ? idToHex(error.objectId) : idToHex(version.root),
          path: error.path ?? "",
          problem: error.rule ?? error.message,
        });
      }
    }
  }
  return { problems, missing: [...missing] };
}
