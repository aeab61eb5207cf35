// Scans a synced directory into its local cache of file and tree nodes, with its stat cache,
// so unchanged files are not read again and the nodes are at hand for uploads and diffs.
//
// With `keepFrom` (the tree the directory last synced), every path the scan did not read
// (ignored, unreadable, unsupported) holds the entry that tree has there: to a push or a pull,
// such a path is unchanged, never deleted (graft.ts). With `keepFrom.heldBack` (a push), so does
// every path the last pull could not apply where the directory still holds the old entry
// (held-back.ts): the node's change there is kept, never reverted.
import { chunkingDescriptor, DEFAULT_CHUNKER_PARAMS } from "../core/fastcdc.ts";
import { countEntries, graftEntries } from "../core/graft.ts";
import { idFromHex, idToHex, type ObjectId } from "../core/id.ts";
import { decodeObject } from "../core/objects.ts";
import { readFileChunks, type ObjectLoader } from "../core/pages.ts";
import { scanDirectory, type NotReadPath, type ScanResult } from "../fs/scanner.ts";
import { estimateScan } from "../fs/scan-estimate.ts";
import { cachedRemoteLoader } from "./remote-objects.ts";
import type { StoredObject } from "../store/object-store.ts";
import { STATE_DIR_NAME, type LocalCaches } from "./local-state.ts";
import type { Progress } from "./progress.ts";
import { stillHeldBack, withEntriesOf, type HeldBack } from "./held-back.ts";
import { COLLECTABLE_GROWTH_BYTES, MemoryBudget } from "./memory-budget.ts";

export interface LocalScan extends ScanResult {
  /**
   * Some of the nodes this scan built, by hex id: the first NEW_OBJECTS_BYTES_MAX of them (copied), a
   * fast path for reading them back. Every node of the scanned tree is in the local cache.
   */
  newObjects: Map<string, Uint8Array>;
  chunking: string;
  /** Paths not read whose entry was taken from `keepFrom`, with why they were not read. */
  kept: NotReadPath[];
  /** How many paths .dsyncignore left out (an ignored directory counts once). */
  ignored: number;
  /** Held-back paths that hold `keepFrom`'s entry (the directory still holds the old one there). */
  heldBack: string[];
}

/** The tree whose entries stand in for the paths a scan did not read, and a loader reaching it. */
export interface KeepFrom {
  root: ObjectId;
  load: ObjectLoader;
  /** Paths the last pull could not apply: where the directory holds the old entry, `root`'s entry stands. */
  heldBack?: HeldBack;
}

/**
 * Nodes put into the local cache at once. Each put is a durable append (fsync), but larger puts
 * cost memory: at 16 384 a push of 100 000 files and a 1 GiB file peaked at 379 MiB, at 2 048
 * at 235 MiB (test/e2e/push-scale.test.ts).
 */
const FLUSH_OBJECTS = 2048;
/** Nodes noted between two looks at the process's memory (memory-budget.ts). */
const MEMORY_CHECK_OBJECTS = 2048;
/** Files scanned, and bytes read, between two looks at the process's memory. */
const MEMORY_CHECK_FILES = 1024;
const MEMORY_CHECK_BYTES = 64 * 1024 * 1024;
/** Ids of nodes already put remembered to skip a node built twice; forgotten at a flush beyond this. */
const RECENT_IDS_MAX = 32_768;
/**
 * Memory the in-memory copies in `newObjects` may take (bytes plus about 200 per entry for key
 * and map). Copies: a node's bytes are a view into the encoder's shared buffer, and 8 MiB of
 * such views held some 38 MB through a scan of 1 000 000 files. 2 MiB holds every node of a tree
 * of some 30 000 files; beyond that the cache serves them (and a 10 GiB file's 6 MB of file
 * nodes no longer grow the push with the file).
 */
const NEW_OBJECTS_BYTES_MAX = 2 * 1024 * 1024;
const NEW_OBJECT_OVERHEAD_BYTES = 200;

/** Where a push sends what the scan produces, as it produces it (streaming-upload.ts). */
export interface ScanUpload {
  chunk(id: ObjectId, bytes: Uint8Array): void | Promise<void>;
  object(id: ObjectId, bytes: Uint8Array): void | Promise<void>;
}

export async function scanIntoCache(
  dir: string,
  caches: LocalCaches,
  progress: Progress,
  upload?: ScanUpload,
  keepFrom?: KeepFrom,
): Promise<LocalScan> {
  const newObjects = new Map<string, Uint8Array>();
  let newObjectsBytes = 0;
  let pending: StoredObject[] = [];
  // Keys of `pending` and of the last batches written: a node the scan builds twice (identical
  // files or directories) is put once. Bounded, like everything held per object.
  let recent = new Set<string>();
  const memory = new MemoryBudget(COLLECTABLE_GROWTH_BYTES, "collectable");
  let noted = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    if (recent.size > RECENT_IDS_MAX) recent = new Set();
    await caches.objects.putMany(batch);
  };
  /** Notes a node of the scanned tree: kept in the cache (and in memory while there is room); false when already noted. */
  const note = (id: ObjectId, key: string, bytes: Uint8Array): boolean => {
    if (newObjects.has(key) || recent.has(key)) return false;
    recent.add(key);
    if (++noted % MEMORY_CHECK_OBJECTS === 0) memory.check();
    if (newObjectsBytes + bytes.length + NEW_OBJECT_OVERHEAD_BYTES <= NEW_OBJECTS_BYTES_MAX) {
      newObjects.set(key, bytes.slice());
      newObjectsBytes += bytes.length + NEW_OBJECT_OVERHEAD_BYTES;
    }
    return true;
  };
  let lastBytes = 0;
  let lastFilesDone = 0;
  // Totals for the bar, counted only when it is drawn. A directory scanned before: the files the
  // stat cache remembers (about the last scan's count) and no bytes (most are not read again).
  // A first scan: a pre-walk, one lstat per entry, counts the files and bytes. The pre-walk costs
  // about a quarter of a first scan of 100 000 small files, and two thirds of a no-change one,
  // which it is therefore spared (scripts/bench/scan-progress.ts; docs/benchmarks.md).
  const remembered = progress.shown ? caches.statCache.size() : 0;
  if (progress.shown && remembered === 0) progress.phase("counting files", 0);
  const estimate = progress.shown && remembered === 0 ? estimateScan(dir, { excludeTopLevel: [STATE_DIR_NAME], statCache: caches.statCache }) : undefined;
  progress.phase("scanning", estimate?.bytesToRead ?? 0, estimate?.files ?? (remembered > 0 ? remembered : undefined));
  const result = await scanDirectory(dir, {
    chunker: DEFAULT_CHUNKER_PARAMS,
    statCache: caches.statCache,
    excludeTopLevel: [STATE_DIR_NAME],
    sink: {
      chunk: upload && ((id, bytes) => upload.chunk(id, bytes)),
      object: async (sealed) => {
        const key = idToHex(sealed.id);
        if (!note(sealed.id, key, sealed.bytes)) return;
        await upload?.object(sealed.id, sealed.bytes);
        // Unchanged directories rebuild nodes the cache already holds; asking is cheaper than re-putting.
        if (await caches.objects.has(sealed.id)) return;
        pending.push({ id: sealed.id, bytes: sealed.bytes });
        if (pending.length >= FLUSH_OBJECTS) await flush();
      },
      // A stat cache hit (a file node) or a directory's record (a tree) counts only with its node
      // in the cache, from an earlier scan: one this scan built itself is still being noted.
      hasObject: (id) => caches.objects.has(id),
    },
    previousChunks: (fileId) => readFileChunks(fileId, cachedRemoteLoader(undefined, caches.objects)),
    onProgress: ({ bytesRead, filesDone }) => {
      // Tiny files make no nodes (each is named by its chunk), only garbage: look per file too.
      // (A directory taken whole from its record advances the count by all its files at once.)
      // A large file: per 64 MiB read (its chunks' ids and keys are garbage too).
      if (
        Math.floor(filesDone / MEMORY_CHECK_FILES) !== Math.floor(lastFilesDone / MEMORY_CHECK_FILES) ||
        Math.floor(bytesRead / MEMORY_CHECK_BYTES) !== Math.floor(lastBytes / MEMORY_CHECK_BYTES)
      ) {
        memory.check();
      }
      lastFilesDone = filesDone;
      progress.advance(bytesRead - lastBytes, filesDone);
      lastBytes = bytesRead;
    },
  });
  const ignored = result.notRead.filter((p) => p.cause === "ignored").length;
  if (!keepFrom || (result.notRead.length === 0 && !keepFrom.heldBack)) {
    await flush();
    return { ...result, newObjects, chunking: chunkingDescriptor(DEFAULT_CHUNKER_PARAMS), kept: [], ignored, heldBack: [] };
  }
  // The scanned tree's nodes are in the cache (some in newObjects too); the kept tree's come through its loader.
  await flush();
  const load: ObjectLoader = async (id) => {
    const fresh = newObjects.get(idToHex(id));
    if (fresh) return decodeObject(fresh);
    const cached = await caches.objects.get(id);
    return cached ? decodeObject(cached) : keepFrom.load(id);
  };
  const graft = await graftEntries(result.rootId, keepFrom.root, result.notRead.map((p) => p.path), load);
  for (const sealed of graft.objects) {
    if (note(sealed.id, idToHex(sealed.id), sealed.bytes)) pending.push({ id: sealed.id, bytes: sealed.bytes });
  }
  // The loader reads from the cache what does not fit in memory.
  await flush();
  const heldBack = await stillHeldBack(graft.root, keepFrom.heldBack, load);
  const rootId = await withEntriesOf(graft.root, keepFrom.root, heldBack, load, {
    putMany: async (objects) => {
      for (const { id, bytes } of objects) {
        if (note(id, idToHex(id), bytes)) pending.push({ id, bytes });
      }
      await flush();
    },
  });
  await flush();
  // The grafted tree is what stands for the directory: count what it holds.
  const counts = await countEntries(graft.grafted.map((g) => g.entry), load);
  const causes = new Map(result.notRead.map((p) => [p.path, p.cause]));
  return {
    ...result,
    rootId,
    files: result.files + counts.files,
    directories: result.directories + counts.directories,
    symlinks: result.symlinks + counts.symlinks,
    totalBytes: result.totalBytes + counts.bytes,
    newObjects,
    chunking: chunkingDescriptor(DEFAULT_CHUNKER_PARAMS),
    kept: graft.grafted.map((g) => ({ path: g.path, cause: causes.get(g.path)! })),
    ignored,
    heldBack,
  };
}

/** The tree a directory last synced with this target, as `keepFrom` (undefined before the first sync). */
export function lastSyncedTree(lastRoot: string | undefined, load: ObjectLoader, heldBack?: HeldBack): KeepFrom | undefined {
  return lastRoot ? { root: idFromHex(lastRoot), load, heldBack } : undefined;
}
