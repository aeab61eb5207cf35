// Resuming after an interrupted pull.
//
// A pull records the root it is moving the directory to (`pulling` in .dsync/state.json) before
// it writes anything, and forgets it only when the directory matches. A pull killed midway has
// already rewritten or removed some paths, so the directory no longer matches the last synced
// version there. Compared with that version alone, those paths would look like local edits: the
// next pull would keep them (silently leaving the directory half-moved), and a push would send
// the half-moved state as a new version, reverting the target's changes on the node.
//
// They are not edits: they hold what a version in history holds. `resumedBase` gives the tree to
// compare against instead: the last synced tree, with every path where the directory matches an
// interrupted pull's target taken from that target. A real local edit matches neither and stays
// an edit; only what the interrupted pull wrote stops being one.
import { diffTrees, type TreeDiff } from "../core/diff.ts";
import { type ObjectId } from "../core/id.ts";
import type { ObjectLoader } from "../core/pages.ts";
import { storedEmptyTree, withEntriesOf, type HeldBackObjectSink } from "./held-back.ts";

/** How many interrupted targets a directory remembers (a pull interrupted again and again, each time towards another version). */
export const INTERRUPTED_TARGETS_MAX = 8;

function pathsOf(diff: TreeDiff): string[] {
  return [...diff.added, ...diff.removed, ...diff.modified, ...diff.typeChanged].map((change) => change.path);
}

/**
 * The tree a pull resuming after `targets` (oldest first) compares the directory with: `base`,
 * except at every path where `local` (the directory as scanned now) equals a target at and
 * below that path; there the target's entry (or its absence) is taken.
 */
export async function resumedBase(
  base: ObjectId | null,
  targets: readonly ObjectId[],
  local: ObjectId,
  load: ObjectLoader,
  sink: HeldBackObjectSink,
): Promise<ObjectId | null> {
  if (targets.length === 0) return base;
  // An interrupted first pull: nothing was synced before, so the base is the empty directory.
  let current = base ?? (await storedEmptyTree(sink));
  for (const target of targets) {
    const stillDifferent = pathsOf(await diffTrees(current, local, load));
    if (stillDifferent.length === 0) break;
    let unlikeTarget: string[];
    try {
      unlikeTarget = pathsOf(await diffTrees(target, local, load));
    } catch {
      // The target's nodes are gone from here and from the node (pruned and collected): its
      // paths stay local edits, which is what they were before this resume existed, never lost.
      continue;
    }
    const unlike = new Set(unlikeTarget);
    // A directory counts as the target's only when nothing at or below it differs from it.
    const unlikeDirectories = new Set<string>();
    for (const path of unlikeTarget) {
      for (let slash = path.lastIndexOf("/"); slash > 0; slash = path.lastIndexOf("/", slash - 1)) unlikeDirectories.add(path.slice(0, slash));
    }
    const asTarget = stillDifferent.filter((path) => !unlike.has(path) && !unlikeDirectories.has(path));
    if (asTarget.length === 0) continue;
    current = await withEntriesOf(current, target, asTarget, load, sink);
  }
  return current;
}
