// What a folder-scoped token may know of objects: those its folders' versions reach, and those
// it uploaded itself (it holds their bytes). The object routes ask here before they answer, so
// a token for folder A cannot learn whether folder B holds some bytes: "which do you lack?"
// names every other id as lacking (the upload then proceeds; the store keeps one copy), a
// download reports it missing, and a commit naming it fails as if it were not stored.
//
// Admin tokens, tokens for every folder and a node without tokens skip all of it.
import type { Context } from "hono";
import type { ObjectId } from "../core/id.ts";
import type { Clock } from "../node/clock.ts";
import { FolderMembership } from "../node/folder-membership.ts";
import type { DsyncNode } from "../node/node.ts";
import { isTokenValid, type TokenStore } from "../node/token-store.ts";
import { grantOf, scopedFolders } from "./access.ts";

/** Opens the membership record of `node`'s data folder (":memory:" for a node without one). */
export function openMembership(node: DsyncNode, dataDir: string): FolderMembership {
  return FolderMembership.open(dataDir, {
    // The node's own reads (a corrupt object is quarantined and reads as absent), never a repair from peers.
    store: {
      getMany: (ids) => node.getObjects(ids, { repair: false }),
      get: async (id) => (await node.getObjects([id], { repair: false }))[0],
    },
    versionsPage: async (folder, limit, below) => {
      if (!(await node.findFolder(folder))) return null;
      return await node.listVersionsPage(folder, limit, below);
    },
  });
}

export class ObjectVisibility {
  constructor(
    private readonly membership: FolderMembership,
    private readonly clock: Clock,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Keeps the record of folders a scoped token has asked about up to date as heads move, so a
   * request usually finds nothing left to catch up. A folder no scoped token asked about costs
   * nothing here.
   */
  follow(node: DsyncNode): () => void {
    return node.onHeadChanged((folder) => {
      if (!this.membership.isTracked(folder)) return;
      this.membership.catchUp(folder).catch((error: unknown) => this.log(`dsync: recording the objects of folder ${folder} failed: ${(error as Error).message}`));
    });
  }

  /** Records `folders` in the background, so a token for them finds its first answer ready. */
  warm(folders: readonly string[]): void {
    for (const folder of folders) {
      this.membership.catchUp(folder).catch((error: unknown) => this.log(`dsync: recording the objects of folder ${folder} failed: ${(error as Error).message}`));
    }
  }

  /** Warms the folders of every valid scoped token in `tokens` (at the node's start). */
  warmFor(tokens: TokenStore): void {
    tokens
      .list()
      .then((list) => this.warm([...new Set(list.filter((t) => t.role !== "admin" && isTokenValid(t, this.clock.nowMs())).flatMap((t) => t.folders))]))
      .catch((error: unknown) => this.log(`dsync: reading the tokens failed: ${(error as Error).message}`));
  }

  /** The folders' records, complete up to their current versions. */
  private async caughtUp(folders: readonly string[]): Promise<void> {
    for (const folder of folders) {
      const report = await this.membership.catchUp(folder);
      if (report.unreadable > 0) this.log(`dsync: ${report.unreadable} object(s) of folder ${folder} could not be read; what lies above them is withheld from its scoped tokens until they are repaired`);
    }
  }

  /** For each id, may this request know of it? null: every id (no scope). */
  async visible(c: Context, ids: readonly ObjectId[]): Promise<boolean[] | null> {
    const folders = scopedFolders(c);
    if (folders === null) return null;
    await this.caughtUp(folders);
    const members = this.membership.membersOf(folders, ids);
    const hidden = ids.filter((_, i) => !members[i]);
    const uploaded = hidden.length === 0 ? [] : this.membership.uploadedBy(grantOf(c).tokenId!, hidden, this.clock.nowMs());
    let next = 0;
    return members.map((member) => member || uploaded[next++]!);
  }

  /** `ids` split into those the request may know of and the rest, each in the order given. */
  async split(c: Context, ids: readonly ObjectId[]): Promise<{ shown: ObjectId[]; hidden: ObjectId[] }> {
    const visible = await this.visible(c, ids);
    if (visible === null) return { shown: [...ids], hidden: [] };
    return { shown: ids.filter((_, i) => visible[i]), hidden: ids.filter((_, i) => !visible[i]) };
  }

  /** Records what a scoped token uploaded (after the store has it durably). */
  recordUploads(c: Context, ids: readonly ObjectId[]): void {
    if (scopedFolders(c) === null) return;
    this.membership.recordUploads(grantOf(c).tokenId!, ids, this.clock.nowMs());
  }

  /** The objects of a tree a scoped token may not commit (empty when it may, or has no scope). */
  async invisibleInTree(c: Context, root: ObjectId): Promise<ObjectId[]> {
    const folders = scopedFolders(c);
    if (folders === null) return [];
    await this.caughtUp(folders);
    return this.membership.invisibleBelow(root, folders, grantOf(c).tokenId!, this.clock.nowMs());
  }
}
