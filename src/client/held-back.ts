// Paths a pull could not apply (held back), and what the directory holds there.
//
// A pull that skips a path (a link or a mount point in the way, an unsafe name, a file changed
// while it ran) still records the version it pulled as synced: everything else is that
// version's. At a skipped path, though, the directory still holds the entry of the tree the pull
// compared against (its base), not the pulled version's. Compared with the pulled version alone,
// that old entry would look like a local edit: a push would send it back over the node's change
// (a silent revert), and the next pull would keep it forever.
//
// So the pull also records `heldBack`: its base's root and the skipped paths. Where the
// directory still holds exactly that base's entry at a held-back path (or still lacks one, where
// the base had none), the path counts as not changed here: the next pull compares it with the
// old entry, so the node's change is applied then, and a push keeps the node's entry there, as
// it does for paths it did not read. A path edited here since matches neither and stays an edit.
import { entriesEqual } from "../core/diff.ts";
import { graftEntries } from "../core/graft.ts";
import { idFromHex, type ObjectId } from "../core/id.ts";
import type { ObjectLoader } from "../core/pages.ts";
import { sealTree } from "../core/tree-builder.ts";
import { TreeLookup } from "../core/tree-lookup.ts";

/** How many held-back paths state.json records; a pull skipping more does not record its version as synced. */
export const HELD_BACK_PATHS_MAX = 10_000;

export interface HeldBack {
  /** Hex id of the tree whose entries the directory still holds at `paths`. */
  root: string;
  paths: string[];
}

/** Where directory nodes built here (grafts, the empty tree) are kept, so later loads find them. */
export interface HeldBackObjectSink {
  putMany(objects: readonly { id: ObjectId; bytes: Uint8Array }[]): Promise<void>;
}

/** The empty directory's id, its node kept in `sink`: the base of a directory nothing was synced to. */
export async function storedEmptyTree(sink: HeldBackObjectSink): Promise<ObjectId> {
  const empty = sealTree([]);
  await sink.putMany(empty.objects.map(({ id, bytes }) => ({ id, bytes })));
  return empty.id;
}

/** Whether something other than a directory (a link, a file) stands above `path` in the tree. */
async function behindNonDirectory(path: string, lookup: TreeLookup): Promise<boolean> {
  for (let slash = path.indexOf("/"); slash !== -1; slash = path.indexOf("/", slash + 1)) {
    const above = await lookup.entryAt(path.slice(0, slash));
    if (above === undefined) return false;
    if (above.kind !== "dir") return true;
  }
  return false;
}

/**
 * The held-back paths where `local` still holds exactly `heldBack.root`'s entry (or its absence).
 * With `whereUnreachable`, also those below a link or file in `local` (what is in the way is then
 * reported by the pull once more, and the path stays held back until it can be written).
 */
export async function stillHeldBack(local: ObjectId, heldBack: HeldBack | undefined, load: ObjectLoader, options: { whereUnreachable?: boolean } = {}): Promise<string[]> {
  if (!heldBack || heldBack.paths.length === 0) return [];
  const here = new TreeLookup(local, load);
  const old = new TreeLookup(idFromHex(heldBack.root), load);
  const held: string[] = [];
  for (const path of heldBack.paths) {
    try {
      const entry = (await here.entryAt(path)) ?? null;
      if (entriesEqual(entry, (await old.entryAt(path)) ?? null)) held.push(path);
      else if (options.whereUnreachable && entry === null && (await behindNonDirectory(path, here))) held.push(path);
    } catch {
      // The old tree's nodes are gone (pruned and collected): the path stays a local edit, as it
      // was before held-back paths were recorded; nothing is lost.
    }
  }
  return held;
}

/**
 * `into` with, at each of `paths`, `from`'s entry there (removed where `from` has none): the
 * pull's base with the old entries, or the pushed tree with the node's.
 */
export async function withEntriesOf(into: ObjectId, from: ObjectId, paths: readonly string[], load: ObjectLoader, sink: HeldBackObjectSink): Promise<ObjectId> {
  if (paths.length === 0) return into;
  const grafted = await graftEntries(into, from, paths, load, { removeWhereAbsent: true });
  if (grafted.objects.length > 0) await sink.putMany(grafted.objects.map(({ id, bytes }) => ({ id, bytes })));
  return grafted.root;
}
