// Which conflict copies a merge version made: the paths named like a conflict copy
// ("name.sync-conflict-YYYYMMDD-HHMMSS-<who>.ext", core/conflict-name.ts) that its tree has and
// none of its parents' trees had. Read from the trees themselves, so every node that holds the
// version gives the same answer, after a restart too, whichever node made the merge.
//
// Cost: one Merkle diff per parent, which descends only into what differs (directories new to
// the merge are not listed below their own name), so it grows with the merge's changes, not
// with the folder.
import { diffTrees } from "../core/diff.ts";
import { idToHex, type ObjectId } from "../core/id.ts";
import type { ObjectLoader } from "../core/pages.ts";
import type { MetadataStore } from "./metadata-store.ts";

/** At most this many copies are reported for one version. */
export const CONFLICT_COPIES_MAX = 1000;

const CONFLICT_COPY_NAME = /\.sync-conflict-\d{8}-\d{6}-[^/]+$/;

export function isConflictCopyPath(path: string): boolean {
  return CONFLICT_COPY_NAME.test(path.slice(path.lastIndexOf("/") + 1));
}

/**
 * The conflict copies `version` of `folder` added over all of its parents this node holds;
 * empty for a version with fewer than two parents (only merges make copies).
 */
export async function conflictCopiesMadeBy(metadata: MetadataStore, load: ObjectLoader, folder: string, version: ObjectId): Promise<string[]> {
  const record = await metadata.getVersion(folder, version);
  if (!record || record.parents.length < 2) return [];
  const parents = (await metadata.getVersions(folder, record.parents)).filter((parent) => parent !== undefined);
  if (parents.length === 0) return [];
  let copies: string[] | null = null;
  for (const parent of parents) {
    // Collapsed: a copy sits beside a path both sides had, so never inside a directory new to a parent.
    const diff = await diffTrees(parent.root, record.root, load, { collapseDirectories: true });
    const added = new Set(diff.added.map((entry) => entry.path).filter(isConflictCopyPath));
    // A copy a parent already had (made by an earlier merge) is not this merge's.
    copies = (copies ?? [...added]).filter((path) => added.has(path));
    if (copies.length === 0) return [];
  }
  return (copies ?? []).sort().slice(0, CONFLICT_COPIES_MAX);
}

export function conflictCopiesJson(folder: string, version: ObjectId, copies: readonly string[]) {
  return { folder, version: idToHex(version), copies };
}
