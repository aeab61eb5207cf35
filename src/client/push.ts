// Push: scan the directory, find top-down what the node lacks, send only that (chunks first,
// then the nodes that name them), then ask the node to make the tree the folder's new head.
//
// Finding what is missing walks the Merkle tree level by level: one "which of these do you
// lack?" request per level, descending only below objects the node lacks. An unchanged folder
// (its root is the last synced one) asks nothing; an edit deep in a big file costs O(depth) requests and sends the changed
// chunks plus the O(depth) nodes above them.
import { join } from "node:path";
import { existsSync, statSync } from "node:fs";
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { readEntryChunks, type ObjectLoader } from "../core/pages.ts";
import { cachedRemoteLoader } from "./remote-objects.ts";
import { TreeLookup } from "../core/tree-lookup.ts";
import { LIMITS } from "../core/limits.ts";
import { decodeObject, isFileLeaf, isTreeLeaf } from "../core/objects.ts";
import { DELTA_ITEM_OVERHEAD_BYTES, type ObjectBatchWriter } from "./batch-writer.ts";
import { DeltaEncoder, DELTA_ITEM_KIND, type PreviousChunks } from "./delta-upload.ts";
import { UploadPipeline } from "./upload-pipeline.ts";
import { StreamingChunkUploader } from "./streaming-upload.ts";
import { FileChangedError, FileChunkReader, type ChunkLocation } from "./file-chunks.ts";
import { openLocalCaches, readSyncState, writeSyncState, type LocalCaches } from "./local-state.ts";
import { silentProgress, type Progress } from "./progress.ts";
import { RemoteError, RemoteNode, type CommitInfo } from "./remote.ts";
import { lastSyncedTree, scanIntoCache, type LocalScan } from "./scan-local.ts";
import { checkDeletions, countDeletedFiles, DEFAULT_DELETION_LIMITS, type DeletionLimits } from "./deletion-guard.ts";
import { clientToken, resolveSyncTarget } from "./sync-target.ts";
import type { CompressSetting } from "./upload-compression.ts";

export interface PushOptions {
  remote?: string;
  folder?: string;
  message?: string;
  keepVersions?: number;
  keepDays?: number;
  progress?: Progress;
  /** Push even when the deletion guard would refuse (deletion-guard.ts). */
  allowDeletes?: boolean;
  /** The guard's limits; DEFAULT_DELETION_LIMITS when absent. */
  deletionLimits?: DeletionLimits;
  /** Sync DIR with this remote and folder although it remembers others (sync-target.ts). */
  rebind?: boolean;
  /** `--compress`: whether upload batches go zstd-compressed (upload-compression.ts); default auto. */
  compress?: CompressSetting;
  /** Changed files' chunks as deltas against their old chunks (delta-upload.ts); default on, off with DSYNC_DELTA=0. */
  delta?: boolean;
}

/** Whether a push sends deltas: the option, else DSYNC_DELTA (0 turns them off). */
function deltasWanted(options: PushOptions): boolean {
  return options.delta ?? process.env.DSYNC_DELTA !== "0";
}

export interface PushReport {
  remote: string;
  folder: string;
  /** The folder's head after the push (a merge when the head had moved). */
  version: string;
  /** The version the directory was last in sync with (null on a first push). */
  parent: string | null;
  /** The version made from this directory's tree. */
  pushed: string;
  merged: boolean;
  root: string;
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  chunks: number;
  chunks_sent: number;
  /** Object bytes sent (chunks and nodes, before wire compression). */
  bytes_sent: number;
  objects_sent: number;
  /** Upload batches sent zstd-compressed and as they were (`--compress`). */
  batches_compressed: number;
  batches_plain: number;
  /** Chunks sent as deltas against the chunks their file held before, the deltas' bytes, and the block signatures received for them. */
  chunks_as_delta: number;
  delta_bytes: number;
  signature_bytes: number;
  /** Compressed batches by zstd level ("3": 12), for seeing what auto chose. */
  batches_by_level: Record<string, number>;
  /** Of the compressed batches, those sent as a zstd frame per object (upload item kind 1) rather than compressed whole. */
  batches_framed: number;
  /** Plain batches by why: "setting", "small", "incompressible", "measuring", "faster plain". */
  batches_plain_because: Record<string, number>;
  wire_bytes_sent: number;
  wire_bytes_received: number;
  requests: number;
  files_read: number;
  conflicts: CommitInfo["conflicts"];
  /** Paths not stored, with the reason and its cause (unreadable, unsupported); ignored paths are only counted. */
  skipped: { path: string; reason: string; cause?: string }[];
  /** Paths .dsyncignore left out (an ignored directory counts once). */
  ignored: number;
  /** Paths not read (ignored, unreadable, unsupported) whose last synced entry the pushed version keeps. */
  kept: number;
  /** Paths that could not be read (permissions, I/O errors): also in skipped, with the error. */
  unreadable: number;
  elapsed_ms: number;
  /** Where the time went: scanning, finding what the node lacks, uploading, committing. */
  phases_ms: { scan: number; plan: number; upload: number; commit: number };
}

interface Pending {
  id: ObjectId;
  kind: "tree" | "file";
  path: string;
  offsetBytes: number;
  /** The node a tree entry names (a file's top node), as opposed to one of its pages. */
  top?: boolean;
  /** The chunks the same path held in the last synced version (bases for deltas: delta-upload.ts). */
  previous?: PreviousChunks;
}

/** The version the directory last synced, whose chunks the node holds already. */
export interface PreviousTree {
  root: ObjectId;
  load: ObjectLoader;
}

export interface UploadPlan {
  /** Nodes the remote lacks, deepest last in discovery order. */
  objects: ObjectId[];
  chunks: { id: ObjectId; location: ChunkLocation; previous?: PreviousChunks }[];
  chunkBytes: number;
}

/** Descends from the root, level by level, asking the remote which objects it lacks. */
/**
 * With `previous`, chunks that the same path's file held in the last synced version are taken
 * as present without asking (an edit in a big file would otherwise ask about every chunk of the
 * changed pages). If the node lost them meanwhile, the commit names them and the caller plans
 * again without `previous`.
 */
export async function planUpload(
  remote: RemoteNode,
  rootId: ObjectId,
  dir: string,
  readNode: (id: ObjectId) => Promise<Uint8Array>,
  previous?: PreviousTree,
  /** Descend below nodes the remote has too (after it reported missing objects under present nodes). */
  descendAll = false,
): Promise<UploadPlan> {
  const plan: UploadPlan = { objects: [], chunks: [], chunkBytes: 0 };
  const seen = new Set<string>();
  const previousLookup = previous && new TreeLookup(previous.root, previous.load);
  const knownPresent = new Set<string>();
  let level: Pending[] = [{ id: rootId, kind: "tree", path: "", offsetBytes: 0 }];
  let chunkCandidates = new Map<string, UploadPlan["chunks"][number]>();
  while (level.length > 0 || chunkCandidates.size > 0) {
    const candidates = [...chunkCandidates.values()];
    const query = [...level.map((p) => p.id), ...candidates.map((c) => c.id)];
    const missing = new Set((await remote.missing(query)).map(idToHex));
    for (const candidate of candidates) {
      if (missing.has(idToHex(candidate.id))) {
        plan.chunks.push(candidate);
        plan.chunkBytes += candidate.location.lengthBytes;
      }
    }
    chunkCandidates = new Map();
    const next: Pending[] = [];
    for (const item of level) {
      const lacked = missing.has(idToHex(item.id));
      if (!lacked && !descendAll) continue;
      if (lacked) plan.objects.push(item.id);
      const object = decodeObject(await readNode(item.id));
      if (object.kind === "tree") {
        if (isTreeLeaf(object)) {
          for (const entry of object.entries) {
            const path = item.path === "" ? entry.name : `${item.path}/${entry.name}`;
            if (entry.kind === "dir") next.push({ id: entry.id!, kind: "tree", path, offsetBytes: 0 });
            else if (entry.kind === "file" && entry.idNamesChunk) {
              // A file that is its one chunk: no node to ask about, only the chunk (unless the
              // same path held it in the last synced version).
              const key = idToHex(entry.id!);
              let before: PreviousChunks | undefined;
              if (previousLookup && !knownPresent.has(key)) {
                const entryBefore = await previousLookup.entryAt(path).catch(() => undefined);
                if (entryBefore?.kind === "file") {
                  before = { chunks: await readEntryChunks(entryBefore, previous!.load).catch(() => []) };
                  for (const chunk of before.chunks) knownPresent.add(idToHex(chunk.id));
                }
              }
              if (!chunkCandidates.has(key) && !seen.has(key) && !knownPresent.has(key)) {
                seen.add(key);
                chunkCandidates.set(key, { id: entry.id!, location: { path: join(dir, path), offsetBytes: 0, lengthBytes: entry.sizeBytes }, previous: before });
              }
            } else if (entry.kind === "file") next.push({ id: entry.id!, kind: "file", path, offsetBytes: 0, top: true });
          }
        } else {
          for (const page of object.pages) next.push({ id: page.id, kind: "tree", path: item.path, offsetBytes: 0 });
        }
      } else if (object.kind === "file") {
        if (item.top && previousLookup) {
          const before = await previousLookup.entryAt(item.path).catch(() => undefined);
          if (before?.kind === "file") {
            const chunks = await readEntryChunks(before, previous!.load).catch(() => []);
            for (const chunk of chunks) knownPresent.add(idToHex(chunk.id));
            item.previous = { chunks };
          }
        }
        let offset = item.offsetBytes;
        if (isFileLeaf(object)) {
          for (const chunk of object.chunks) {
            const key = idToHex(chunk.id);
            if (!chunkCandidates.has(key) && !seen.has(key) && !knownPresent.has(key)) {
              seen.add(key);
              chunkCandidates.set(key, { id: chunk.id, location: { path: join(dir, item.path), offsetBytes: offset, lengthBytes: chunk.lengthBytes }, previous: item.previous });
            }
            offset += chunk.lengthBytes;
          }
        } else {
          for (const page of object.pages) {
            next.push({ id: page.id, kind: "file", path: item.path, offsetBytes: offset, previous: item.previous });
            offset += page.sizeBytes;
          }
        }
      }
    }
    // The same node can sit at several paths (identical files): ask about it once.
    level = next.filter((p) => {
      const key = idToHex(p.id);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
  return plan;
}

export async function executeUpload(
  remote: RemoteNode,
  plan: UploadPlan,
  readNode: (id: ObjectId) => Promise<Uint8Array>,
  progress: Progress,
  pipeline: UploadPipeline = new UploadPipeline(remote),
  /** Sends changed files' chunks as deltas against their old chunks where that pays (delta-upload.ts). */
  deltas?: DeltaEncoder,
): Promise<{ objectsSent: number; bytesSent: number }> {
  const reader = new FileChunkReader();
  let bytesSent = 0;
  let writer: ObjectBatchWriter | undefined;
  /** Sends the current batch if it cannot take `lengthBytes` more (or is full), and makes sure there is one. */
  const room = async (lengthBytes: number): Promise<ObjectBatchWriter> => {
    if (writer && (!writer.fits(lengthBytes) || writer.encodedBytes + deltaSavedBytes >= LIMITS.batchBytesTarget)) await flush();
    writer ??= await pipeline.writer(lengthBytes);
    return writer;
  };
  /** Bytes the deltas in the current batch stand for beyond their own (progress counts the objects sent). */
  let deltaSavedBytes = 0;
  const flush = async () => {
    if (!writer) return;
    const batch = writer;
    const advance = batch.objectBytes + deltaSavedBytes;
    writer = undefined;
    deltaSavedBytes = 0;
    if (batch.count === 0) return pipeline.release(batch);
    await pipeline.send(batch);
    progress.advance(advance);
  };
  try {
    // Chunks first, then the nodes that name them, deepest first.
    for (const chunk of plan.chunks) {
      if (deltas && chunk.previous && deltas.mayEncode(chunk.previous, chunk.location.lengthBytes)) {
        const bytes = reader.tryRead(chunk.id, chunk.location);
        if (!bytes) throw new FileChangedError(`${chunk.location.path} changed while dsync was reading it; run the command again`);
        const encoded = await deltas.encode(chunk.id, bytes, chunk.location.offsetBytes, chunk.previous);
        if (encoded) {
          // A batch of deltas closes by the bytes they rebuild, as any batch by its objects': the
          // node rebuilds and stores each while the next is encoded, not all at the end.
          if (writer && (!writer.fitsDelta(encoded.delta.length) || writer.encodedBytes + deltaSavedBytes >= LIMITS.batchBytesTarget)) await flush();
          writer ??= await pipeline.writer(encoded.delta.length + DELTA_ITEM_OVERHEAD_BYTES);
          writer.appendDelta(chunk.id, encoded.delta, encoded.baseId);
          deltaSavedBytes += bytes.length - encoded.delta.length;
        } else {
          (await room(bytes.length)).append(chunk.id, bytes);
        }
        bytesSent += chunk.location.lengthBytes;
        continue;
      }
      const target = await room(chunk.location.lengthBytes);
      const ok = target.appendWith(chunk.id, chunk.location.lengthBytes, (target) => reader.readInto(chunk.id, chunk.location, target));
      if (!ok) throw new FileChangedError(`${chunk.location.path} changed while dsync was reading it; run the command again`);
      bytesSent += chunk.location.lengthBytes;
    }
    for (let i = plan.objects.length - 1; i >= 0; i--) {
      const id = plan.objects[i]!;
      const bytes = await readNode(id);
      (await room(bytes.length)).append(id, bytes);
      bytesSent += bytes.length;
    }
    await flush();
    await pipeline.drain();
  } finally {
    reader.closeAll();
  }
  return { objectsSent: plan.chunks.length + plan.objects.length, bytesSent };
}

function nodeReader(scan: LocalScan, caches: LocalCaches) {
  return async (id: ObjectId): Promise<Uint8Array> => {
    const fresh = scan.newObjects.get(idToHex(id));
    if (fresh) return fresh;
    const cached = await caches.objects.get(id);
    if (!cached) throw new Error(`the local cache lost object ${idToHex(id)}; delete .dsync/ and push again`);
    return cached;
  };
}

export async function push(dir: string, options: PushOptions = {}): Promise<PushReport> {
  const startMs = Date.now();
  // A path that is not there is a failure (exit 1), as in git and restic, not a usage error.
  if (!existsSync(dir)) throw new Error(`${dir} does not exist: nothing to push (check the path, or pull to create it)`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory: push sends a directory`);
  const state = readSyncState(dir);
  // A pull cut short left the directory part old version, part new: pushing it would record
  // that mix as a new version and revert, on the node, what the pull had not written yet.
  if (state.pulling?.length) {
    throw new Error(`a pull into ${dir} was interrupted before it finished: run dsync pull ${dir} to finish it (local edits are kept), then push`);
  }
  const { remote: remoteUrl, folder, rebound } = resolveSyncTarget(dir, state, options);
  const progress = options.progress ?? silentProgress;
  const remote = new RemoteNode(remoteUrl, clientToken(), { compress: options.compress });
  remote.useFolder(folder);
  const sameTarget = !rebound && state.remote === remoteUrl && state.folder === folder;
  const parent = sameTarget ? state.lastVersion ?? null : null;
  // A first push uploads: which upload items the node takes (asked once, before the first batch
  // goes) is asked now, so the answer comes while the local caches open, not in front of the
  // first upload. A later push asks only if it sends anything.
  if (parent === null) void remote.uploadItemKinds();

  const caches = await openLocalCaches(dir);
  try {
    const scanStartMs = Date.now();
    const pipeline = new UploadPipeline(remote);
    // A first push: the node most likely lacks most chunks, so send them while scanning.
    const streamer = parent === null ? new StreamingChunkUploader(remote, pipeline) : undefined;
    // Paths not read keep the entry of the tree this push is made on (the parent's), so the node's
    // merge sees them unchanged: never deleted, never reverted over another copy's change. So do
    // paths the last pull could not apply where the directory still holds the old entry.
    const baseLoad = cachedRemoteLoader(remote, caches.objects);
    const keepFrom = parent === null ? undefined : lastSyncedTree(state.lastRoot, baseLoad, state.heldBack);
    const scan = await scanIntoCache(dir, caches, progress, streamer, keepFrom);
    await streamer?.finish();
    if (keepFrom && !options.allowDeletes) {
      const count = await countDeletedFiles(keepFrom.root, scan.rootId, scan.files, baseLoad);
      checkDeletions(count, options.deletionLimits ?? DEFAULT_DELETION_LIMITS, { dir, folder, pushedFiles: scan.files });
    }
    const readNode = nodeReader(scan, caches);
    const planStartMs = Date.now();
    const previous = sameTarget && state.lastRoot ? { root: idFromHex(state.lastRoot), load: cachedRemoteLoader(undefined, caches.objects) } : undefined;
    // Nothing changed since the last sync: the node has all of it (if it lost something since,
    // the commit says what, and the retry below sends it).
    const unchanged = previous !== undefined && idToHex(scan.rootId) === state.lastRoot;
    // Streamed to the end, every chunk and node the scan built was sent or found present. Files
    // the stat cache served were not built, so a plan still finds what of them the node lacks.
    const streamed = streamer !== undefined && streamer.complete && scan.filesFromCache === 0;
    const plan: UploadPlan = unchanged || streamed ? { objects: [], chunks: [], chunkBytes: 0 } : await planUpload(remote, scan.rootId, dir, readNode, previous);
    progress.phase("pushing", plan.chunkBytes);
    const uploadStartMs = Date.now();
    // Deltas only in an update, only to a node that takes them (an old node gets only pairs).
    const deltas = previous && deltasWanted(options) && plan.chunks.some((c) => c.previous) && (await remote.uploadItemKinds()).has(DELTA_ITEM_KIND) ? new DeltaEncoder(remote) : undefined;
    deltas?.prefetch(plan.chunks);
    let uploaded: { objectsSent: number; bytesSent: number };
    try {
      uploaded = await executeUpload(remote, plan, readNode, progress, pipeline, deltas);
    } catch (error) {
      // A delta the node could not rebuild (its base gone since it signed it, by gc): the same
      // plan once more without deltas. What the first try stored stays stored.
      if (!(deltas && error instanceof RemoteError && error.kind === "rejected")) throw error;
      await pipeline.drain().catch(() => undefined);
      uploaded = await executeUpload(remote, plan, readNode, progress, pipeline);
    }
    let sent = { objectsSent: uploaded.objectsSent + (streamer?.objectsSent ?? 0), bytesSent: uploaded.bytesSent + (streamer?.bytesSent ?? 0) };
    const commitStartMs = Date.now();
    const commitBody = {
      root: idToHex(scan.rootId),
      parent,
      message: options.message ?? "",
      chunking: scan.chunking,
      files: scan.files,
      bytes: scan.totalBytes,
    };
    let result: CommitInfo;
    try {
      result = await remote.commit(folder, commitBody);
    } catch (error) {
      // Garbage collection on the node may have removed objects it had told us it held (or that
      // the last synced version held): the node then names what is missing, and one more round,
      // which checks every object of the tree, sends it.
      if (!(error instanceof RemoteError && error.kind === "conflict" && Array.isArray(error.body?.missing))) throw error;
      const again = await planUpload(remote, scan.rootId, dir, readNode, undefined, true);
      const more = await executeUpload(remote, again, readNode, progress, pipeline);
      sent = { objectsSent: sent.objectsSent + more.objectsSent, bytesSent: sent.bytesSent + more.bytesSent };
      plan.chunks.push(...again.chunks);
      result = await remote.commit(folder, commitBody);
    }
    progress.done();
    // The directory now matches the pushed version (a merge's other changes arrive with the next
    // pull): recorded as soon as the node acknowledged it, so a failure of what follows cannot
    // leave DIR remembering an older version.
    // The held-back paths still hold the old entry: the next pull applies the node's there.
    writeSyncState(dir, {
      remote: remoteUrl,
      folder,
      lastVersion: result.pushed,
      lastRoot: commitBody.root,
      ...(scan.heldBack.length > 0 ? { heldBack: { root: state.heldBack!.root, paths: scan.heldBack } } : {}),
    });
    if (options.keepVersions !== undefined || options.keepDays !== undefined) {
      try {
        await remote.setRetention(folder, { keepVersions: options.keepVersions, keepDays: options.keepDays });
      } catch (error) {
        // The version is recorded: say so, so the failure is not taken for a lost push.
        throw new Error(
          `pushed ${folder} (version ${result.version.slice(0, 12)}), but setting its retention failed: ${(error as Error).message}; ` +
            "push again with the same --keep-versions/--keep-days to set it",
        );
      }
    }
    return {
      remote: remoteUrl,
      folder,
      version: result.version,
      parent,
      pushed: result.pushed,
      merged: result.mergedWith !== null,
      root: result.root,
      files: scan.files,
      directories: scan.directories,
      symlinks: scan.symlinks,
      bytes: scan.totalBytes,
      chunks: scan.chunks,
      chunks_sent: plan.chunks.length + (streamer?.chunksSent ?? 0),
      bytes_sent: sent.bytesSent,
      objects_sent: sent.objectsSent,
      batches_compressed: remote.uploadCompression.batches.compressed,
      batches_plain: remote.uploadCompression.batches.plain,
      chunks_as_delta: deltas?.counters.chunksAsDelta ?? 0,
      delta_bytes: deltas?.counters.deltaBytes ?? 0,
      signature_bytes: deltas?.counters.signatureBytes ?? 0,
      batches_by_level: Object.fromEntries([...remote.uploadCompression.batchesByLevel].sort(([a], [b]) => a - b)),
      batches_framed: remote.uploadCompression.batches.framed,
      batches_plain_because: Object.fromEntries(remote.uploadCompression.plainBecause),
      wire_bytes_sent: remote.counters.wireBytesSent,
      wire_bytes_received: remote.counters.wireBytesReceived,
      requests: remote.counters.requests,
      files_read: scan.filesRead,
      conflicts: result.conflicts,
      skipped: scan.skipped,
      ignored: scan.ignored,
      kept: scan.kept.length,
      unreadable: scan.skipped.filter((s) => s.cause === "unreadable").length,
      elapsed_ms: Date.now() - startMs,
      phases_ms: { scan: planStartMs - scanStartMs, plan: uploadStartMs - planStartMs, upload: commitStartMs - uploadStartMs, commit: Date.now() - commitStartMs },
    };
  } finally {
    await caches.close();
  }
}

