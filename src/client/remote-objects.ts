// Loading tree and file nodes from a remote node, verified and cached.
//
// fetchNodeClosure brings every node below a root that the local cache lacks, one batched
// request per batch of the descent (core/descend.ts), so pulling a tree of 10 000 files costs a handful of round trips
// rather than one per file. The loader checks the cache first and falls back to single
// fetches, so a cache that lost something still works.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { descend } from "../core/descend.ts";
import { decodeObject, type StructuredObject } from "../core/objects.ts";
import type { ObjectLoader } from "../core/pages.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { RemoteError, type RemoteNode } from "./remote.ts";

function verify(id: ObjectId, bytes: Uint8Array): void {
  if (!idEquals(blake3(bytes), id)) throw new RemoteError("rejected", `the node sent object ${idToHex(id)} with bytes that do not match its id`);
}

/**
 * Downloads every structured object below root that `cache` lacks; returns how many it fetched.
 * An object the cache holds is taken with its subtree (that is how the cache fills), so memory
 * holds one batch per level on the way down, not the closure.
 */
export async function fetchNodeClosure(remote: RemoteNode, root: ObjectId, cache: ObjectStore): Promise<number> {
  let fetched = 0;
  await descend([root], {
    // What the cache holds, and so what this walk stored, is not gone below again.
    have: (ids) => cache.hasMany(ids),
    prunesPassed: true,
    load: async (ids, held) => {
      const wanted = ids.filter((_, i) => !held[i]);
      if (wanted.length === 0) return ids.map(() => undefined);
      // Tree and file nodes only: each at most a structured object's bound.
      const reply = await remote.download(wanted, { objectBytesMax: wanted.length * LIMITS.structuredObjectBytesMax });
      if (reply.missing.length > 0) throw new RemoteError("rejected", `the node is missing ${reply.missing.length} object(s) of its own tree, e.g. ${idToHex(reply.missing[0]!)}`);
      const byId = new Map<string, Uint8Array>();
      for (const object of reply.objects) {
        verify(object.id, object.bytes);
        byId.set(idToHex(object.id), object.bytes);
      }
      fetched += reply.objects.length;
      return ids.map((id, i) => (held[i] ? undefined : byId.get(idToHex(id))));
    },
    // Stored once everything below is: the cache never holds a node without its subtree, so a
    // pull cut short prunes at what the cache holds next time and still gets all of it.
    settled: async (ids, loaded) => {
      const objects = ids.flatMap((id, i) => (loaded[i] ? [{ id, bytes: loaded[i]! }] : []));
      if (objects.length > 0) await cache.putMany(objects);
    },
  });
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
