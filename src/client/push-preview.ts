// dsync push --dry-run: what a push would do, doing none of it. The directory is scanned as a
// push scans it (ignore rules, paths not read kept as last synced) and compared with the tree
// the push would be made on (the last synced version's; nothing on a first push): new and
// changed paths would be sent, removed ones deleted, and every path not read is listed with
// why it would be skipped. The node is asked which of the objects it lacks (a read), so the
// bytes to send are the real ones; nothing is uploaded, nothing committed, and the directory's
// sync state is left as it was (only its local caches, never synced, learn the scan).
import { existsSync, statSync } from "node:fs";
import { diffTrees, type DiffEntry } from "../core/diff.ts";
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { decodeObject } from "../core/objects.ts";
import type { SkipCause } from "../fs/scanner.ts";
import { countDeletedFiles, DEFAULT_DELETION_LIMITS, DeletionGuardError, checkDeletions, type DeletionLimits } from "./deletion-guard.ts";
import { openLocalCaches, readSyncState } from "./local-state.ts";
import { silentProgress, type Progress } from "./progress.ts";
import { planUpload } from "./push.ts";
import { RemoteNode } from "./remote.ts";
import { cachedRemoteLoader } from "./remote-objects.ts";
import { lastSyncedTree, scanIntoCache } from "./scan-local.ts";
import { clientToken, resolveSyncTarget } from "./sync-target.ts";

export interface PushPreviewOptions {
  remote?: string;
  folder?: string;
  rebind?: boolean;
  allowDeletes?: boolean;
  deletionLimits?: DeletionLimits;
  progress?: Progress;
}

export interface PreviewPath {
  path: string;
  kind: "file" | "dir" | "symlink";
}

export interface PushPreview {
  dry_run: true;
  remote: string;
  folder: string;
  /** The version the push would be made on (null: a first push). */
  parent: string | null;
  /** The folder's head on the node now (null: no such folder yet); when it is not `parent`, the node merges the push with it. */
  head: string | null;
  /** Paths the push would add (directories and everything in them). */
  new: PreviewPath[];
  /** Paths whose content, mode, target or kind would change. */
  changed: PreviewPath[];
  /** Paths the pushed version would no longer hold. */
  deleted: PreviewPath[];
  /** Paths not read, with why: their last synced entries would be kept, never deleted. */
  skipped: { path: string; cause: SkipCause; reason: string }[];
  /** What the node lacks of the pushed tree: what would go over the wire. */
  chunks_to_send: number;
  bytes_to_send: number;
  objects_to_send: number;
  /** The deletion guard's refusal, when the push would be refused (without --allow-deletes). */
  refused: string | null;
}

const kindOf = (change: DiffEntry, side: "before" | "after"): PreviewPath => ({ path: change.path, kind: change[side]!.kind });

export async function previewPush(dir: string, options: PushPreviewOptions = {}): Promise<PushPreview> {
  if (!existsSync(dir)) throw new Error(`${dir} does not exist: nothing to push (check the path, or pull to create it)`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory: push sends a directory`);
  const state = readSyncState(dir);
  const { remote: remoteUrl, folder, rebound } = resolveSyncTarget(dir, state, options);
  const remote = new RemoteNode(remoteUrl, clientToken());
  const sameTarget = !rebound && state.remote === remoteUrl && state.folder === folder;
  const parent = sameTarget ? state.lastVersion ?? null : null;
  const caches = await openLocalCaches(dir);
  try {
    const load = cachedRemoteLoader(remote, caches.objects);
    const keepFrom = parent === null ? undefined : lastSyncedTree(state.lastRoot, load, state.heldBack);
    const scan = await scanIntoCache(dir, caches, options.progress ?? silentProgress, undefined, keepFrom);
    options.progress?.done();
    const treeLoad = async (id: ObjectId) => {
      const fresh = scan.newObjects.get(idToHex(id));
      return fresh ? decodeObject(fresh) : load(id);
    };
    const base = keepFrom?.root ?? null;
    const diff = await diffTrees(base, scan.rootId, treeLoad);
    let refused: string | null = null;
    if (base && !options.allowDeletes) {
      try {
        checkDeletions(await countDeletedFiles(base, scan.rootId, scan.files, treeLoad), options.deletionLimits ?? DEFAULT_DELETION_LIMITS, { dir, folder, pushedFiles: scan.files });
      } catch (error) {
        if (!(error instanceof DeletionGuardError)) throw error;
        refused = error.message;
      }
    }
    const readNode = async (id: ObjectId): Promise<Uint8Array> => {
      const bytes = scan.newObjects.get(idToHex(id)) ?? (await caches.objects.get(id));
      if (!bytes) throw new Error(`the local cache lost object ${idToHex(id)}; delete .dsync/ and try again`);
      return bytes;
    };
    const previous = sameTarget && state.lastRoot ? { root: idFromHex(state.lastRoot), load: cachedRemoteLoader(undefined, caches.objects) } : undefined;
    const unchanged = previous !== undefined && idToHex(scan.rootId) === state.lastRoot;
    const plan = unchanged ? { objects: [], chunks: [], chunkBytes: 0 } : await planUpload(remote, scan.rootId, dir, readNode, previous);
    const nodeBytes = await Promise.all(plan.objects.map(async (id) => (await readNode(id)).length));
    const head = (await remote.getFolder(folder))?.head ?? null;
    // Ignored paths are only in notRead; the others are in skipped too, with the error.
    const reasons = new Map(scan.skipped.map((s) => [s.path, s.reason]));
    const skipped = scan.notRead.map((p) => ({ path: p.path, cause: p.cause, reason: reasons.get(p.path) ?? "ignored by .dsyncignore" }));
    const listed = new Set(skipped.map((s) => s.path));
    for (const s of scan.skipped) if (!listed.has(s.path)) skipped.push({ path: s.path, cause: s.cause ?? "unsupported", reason: s.reason });
    return {
      dry_run: true,
      remote: remoteUrl,
      folder,
      parent,
      head,
      new: diff.added.map((c) => kindOf(c, "after")),
      changed: [...diff.modified, ...diff.typeChanged].map((c) => kindOf(c, "after")).sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)),
      deleted: diff.removed.map((c) => kindOf(c, "before")),
      skipped,
      chunks_to_send: plan.chunks.length,
      bytes_to_send: plan.chunkBytes + nodeBytes.reduce((sum, n) => sum + n, 0),
      objects_to_send: plan.chunks.length + plan.objects.length,
      refused,
    };
  } finally {
    await caches.close();
  }
}
