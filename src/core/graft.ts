// Grafting: putting entries of one tree back into another at given paths.
//
// A scan leaves out what it did not read (ignored, unreadable, unsupported paths). Left out is
// not deleted: the tree that is pushed, or compared with the last sync, must hold there what
// the last synced tree held. graftEntries takes, for each given path, the entry the source
// tree has there (if any) and puts it into the target tree, rebuilding only the directories
// on those paths (paged directories through sealTree, like any tree built in memory); every
// other directory keeps its id.
import { idEquals, type ObjectId } from "./id.ts";
import type { TreeEntry, TreeNode } from "./objects.ts";
import { readTreeEntries, type ObjectLoader, type SealedObject } from "./pages.ts";
import { sealTree } from "./tree-builder.ts";
import { TreeLookup } from "./tree-lookup.ts";

export interface GraftedEntry {
  path: string;
  entry: TreeEntry;
}

export interface GraftResult {
  /** The target tree with the entries grafted in (the target's own id when nothing changed). */
  root: ObjectId;
  /** The directory nodes built, children before their parents (the order to store them in). */
  objects: SealedObject<TreeNode>[];
  /** The entries taken from the source, in the order of `paths`' tree walk. */
  grafted: GraftedEntry[];
}

interface PathTrie {
  /** This path itself is to be grafted (nothing below it is then looked at). */
  terminal: boolean;
  children: Map<string, PathTrie>;
}

function buildTrie(paths: readonly string[]): PathTrie {
  const root: PathTrie = { terminal: false, children: new Map() };
  for (const path of paths) {
    let node = root;
    for (const part of path.split("/")) {
      let child = node.children.get(part);
      if (!child) {
        child = { terminal: false, children: new Map() };
        node.children.set(part, child);
      }
      node = child;
    }
    node.terminal = true;
  }
  return root;
}

/**
 * Returns `into` with, at each of `paths`, the entry `from` has at that path. A path `from`
 * has no entry at is left as `into` has it (or, with `removeWhereAbsent`, removed). An entry already in `into` at a grafted path is
 * replaced. A path whose parent directory `into` lacks (or holds as a file) is skipped: there
 * is nothing to attach it to, and a scan never reports such a path. `load` must reach the
 * nodes of both trees.
 */
export async function graftEntries(
  into: ObjectId,
  from: ObjectId | null,
  paths: readonly string[],
  load: ObjectLoader,
  options: {
    /** A path `from` has no entry at is removed from `into` too (the result then matches `from` at every path). */
    removeWhereAbsent?: boolean;
  } = {},
): Promise<GraftResult> {
  const result: GraftResult = { root: into, objects: [], grafted: [] };
  if (from === null || paths.length === 0) return result;
  const source = new TreeLookup(from, load);

  const rebuild = async (directoryId: ObjectId, trie: PathTrie, prefix: string): Promise<ObjectId> => {
    const entries = new Map((await readTreeEntries(directoryId, load)).map((entry) => [entry.name, entry]));
    let changed = false;
    for (const [name, child] of trie.children) {
      const path = prefix === "" ? name : `${prefix}/${name}`;
      if (child.terminal) {
        const entry = await source.entryAt(path);
        if (!entry) {
          if (options.removeWhereAbsent && entries.delete(name)) changed = true;
          continue;
        }
        entries.set(name, entry);
        result.grafted.push({ path, entry });
        changed = true;
        continue;
      }
      const existing = entries.get(name);
      if (existing?.kind !== "dir") continue;
      const id = await rebuild(existing.id!, child, path);
      if (!idEquals(id, existing.id!)) {
        entries.set(name, { ...existing, id });
        changed = true;
      }
    }
    if (!changed) return directoryId;
    const sealed = sealTree([...entries.values()]);
    result.objects.push(...sealed.objects);
    return sealed.id;
  };

  result.root = await rebuild(into, buildTrie(paths), "");
  return result;
}

export interface EntryCounts {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of file sizes. */
  bytes: number;
}

/** What some entries hold, counting everything below directories (their tree nodes are loaded, never file nodes). */
export async function countEntries(entries: readonly TreeEntry[], load: ObjectLoader): Promise<EntryCounts> {
  const counts: EntryCounts = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const visit = async (list: readonly TreeEntry[]): Promise<void> => {
    for (const entry of list) {
      if (entry.kind === "file") {
        counts.files++;
        counts.bytes += entry.sizeBytes;
      } else if (entry.kind === "symlink") counts.symlinks++;
      else {
        counts.directories++;
        await visit(await readTreeEntries(entry.id!, load));
      }
    }
  };
  await visit(entries);
  return counts;
}
