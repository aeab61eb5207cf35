// Loading tree and file nodes from a remote node, verified and cached.
//
// fetchNodeClosure brings every node below a root that the local cache lacks, one batched
// request per tree level, so pulling a tree of 10 000 files costs a handful of round trips
// rather than one per file. The loader checks the cache first and falls back to single
// fetches, so a cache that lost something still works.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { childRefs, decodeObject, type StructuredObject } from "../core/objects.ts";
import type { ObjectLoader } from "../core/pages.ts";
import type { ObjectStore, StoredObject } from "../store/object-store.ts";
import { RemoteError, type RemoteNode } from "./remote.ts";

const NODES_PER_REQUEST = 4096;

function verify(id: ObjectId, bytes: Uint8Array): void {
  if (!idEquals(blake3(bytes), id)) throw new RemoteError("rejected", `the node sent object ${idToHex(id)} with bytes that do not match its id`);
}

/** Downloads every structured object below root that `cache` lacks; returns how many it fetched. */
export async function fetchNodeClosure(remote: RemoteNode, root: ObjectId, cache: ObjectStore): Promise<number> {
  const seen = new Set<string>();
  let level: ObjectId[] = [root];
  let fetched = 0;
  const collected: StoredObject[] = [];
  while (level.length > 0) {
    const unique = level.filter((id) => {
      const key = idToHex(id);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const present = await cache.hasMany(unique);
    const wanted = unique.filter((_, i) => !present[i]);
    const next: ObjectId[] = [];
    for (let i = 0; i < wanted.length; i += NODES_PER_REQUEST) {
      const batch = wanted.slice(i, i + NODES_PER_REQUEST);
      const reply = await remote.download(batch);
      if (reply.missing.length > 0) throw new RemoteError("rejected", `the node is missing ${reply.missing.length} object(s) of its own tree, e.g. ${idToHex(reply.missing[0]!)}`);
      for (const object of reply.objects) {
        verify(object.id, object.bytes);
        const decoded = decodeObject(object.bytes);
        collected.push(object);
        fetched++;
        next.push(...childRefs(decoded).objects);
      }
    }
    level = next;
  }
  // Children before parents never matters for a cache, but one batch keeps it simple and fast.
  if (collected.length > 0) await cache.putMany(collected.reverse());
  return fetched;
}

/** A loader over the local cache that falls back to the remote (verifying and caching). */
export function cachedRemoteLoader(remote: RemoteNode | undefined, cache: ObjectStore): ObjectLoader {
  return async (id: ObjectId): Promise<StructuredObject> => {
    let bytes = await cache.get(id);
    if (!bytes && remote) {
      bytes = await remote.getObject(id);
      if (bytes) {
        verify(id, bytes);
        await cache.put(id, bytes);
      }
    }
    if (!bytes) throw new Error(`object ${idToHex(id)} is neither cached locally nor on the node`);
    return decodeObject(bytes);
  };
}
