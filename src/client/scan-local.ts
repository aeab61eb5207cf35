// Scans a synced directory into its local cache of file and tree nodes, with its stat cache,
// so unchanged files are not read again and the nodes are at hand for uploads and diffs.
import { chunkingDescriptor, DEFAULT_CHUNKER_PARAMS } from "../core/fastcdc.ts";
import { idToHex, type ObjectId } from "../core/id.ts";
import { readFileChunks } from "../core/pages.ts";
import { scanDirectory, type ScanResult } from "../fs/scanner.ts";
import { cachedRemoteLoader } from "./remote-objects.ts";
import type { StoredObject } from "../store/object-store.ts";
import { STATE_DIR_NAME, type LocalCaches } from "./local-state.ts";
import type { Progress } from "./progress.ts";

export interface LocalScan extends ScanResult {
  /** The nodes this scan built, by hex id (nodes of cached files are in the local cache). */
  newObjects: Map<string, Uint8Array>;
  chunking: string;
}

const FLUSH_OBJECTS = 2048;

export async function scanIntoCache(
  dir: string,
  caches: LocalCaches,
  progress: Progress,
  onChunk?: (id: ObjectId, bytes: Uint8Array) => void | Promise<void>,
): Promise<LocalScan> {
  const newObjects = new Map<string, Uint8Array>();
  let pending: StoredObject[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    await caches.objects.putMany(batch);
  };
  let lastBytes = 0;
  progress.phase("scanning", 0);
  const result = await scanDirectory(dir, {
    chunker: DEFAULT_CHUNKER_PARAMS,
    statCache: caches.statCache,
    excludeTopLevel: [STATE_DIR_NAME],
    sink: {
      chunk: onChunk,
      object: async (sealed) => {
        const key = idToHex(sealed.id);
        if (newObjects.has(key)) return;
        newObjects.set(key, sealed.bytes);
        // Unchanged directories rebuild nodes the cache already holds; asking is cheaper than re-putting.
        if (await caches.objects.has(sealed.id)) return;
        pending.push({ id: sealed.id, bytes: sealed.bytes });
        if (pending.length >= FLUSH_OBJECTS) await flush();
      },
    },
    previousChunks: (fileId) => readFileChunks(fileId, cachedRemoteLoader(undefined, caches.objects)),
    onProgress: ({ bytesRead }) => {
      progress.advance(bytesRead - lastBytes);
      lastBytes = bytesRead;
    },
  });
  await flush();
  return { ...result, newObjects, chunking: chunkingDescriptor(DEFAULT_CHUNKER_PARAMS) };
}
