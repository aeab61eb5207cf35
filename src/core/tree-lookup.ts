// Looking entries up by path in one tree, decoding each directory once.
import { idToHex, type ObjectId } from "./id.ts";
import type { TreeEntry } from "./objects.ts";
import { readTreeEntries, type ObjectLoader } from "./pages.ts";

/** Finds entries by path in one tree, decoding each directory once. */
export class TreeLookup {
  private readonly directories = new Map<string, Map<string, TreeEntry>>();
  constructor(private readonly root: ObjectId, private readonly load: ObjectLoader) {}

  private async directory(id: ObjectId): Promise<Map<string, TreeEntry>> {
    const key = idToHex(id);
    let entries = this.directories.get(key);
    if (!entries) {
      entries = new Map((await readTreeEntries(id, this.load)).map((e) => [e.name, e]));
      this.directories.set(key, entries);
    }
    return entries;
  }

  async entryAt(path: string): Promise<TreeEntry | undefined> {
    let current = this.root;
    let found: TreeEntry | undefined;
    const parts = path.split("/");
    for (let i = 0; i < parts.length; i++) {
      found = (await this.directory(current)).get(parts[i]!);
      if (!found) return undefined;
      if (i < parts.length - 1) {
        if (found.kind !== "dir") return undefined;
        current = found.id!;
      }
    }
    return found;
  }
}
