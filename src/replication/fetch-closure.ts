// Bringing the trees of versions from a peer by Merkle descent.
//
// Level by level from the roots: an object this node knows complete (its whole subtree checked
// by an earlier commit) is skipped with everything under it; an object it holds but has not
// seen complete is read locally and descended into; only objects it lacks are downloaded, in
// batches, each verified against its id before it is stored. So the cost grows with what
// changed, and a node that was away re-fetches nothing it already has.
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { childRefs, decodeObject, isFileLeaf } from "../core/objects.ts";
import type { DsyncNode } from "../node/node.ts";
import type { PeerTransport } from "./transport.ts";

/** Structured objects per download request (small: tree and file nodes are a few KiB). */
const NODES_PER_REQUEST = 4096;
/** Chunk bytes per download request. */
const CHUNK_BYTES_PER_REQUEST = 16 * 1024 * 1024;

export interface FetchReport {
  objectsFetched: number;
  bytesFetched: number;
  requests: number;
}

export class PeerMissingObjectsError extends Error {
  override name = "PeerMissingObjectsError";
}

export async function fetchClosure(node: DsyncNode, transport: PeerTransport, peer: string, roots: readonly ObjectId[]): Promise<FetchReport> {
  const report: FetchReport = { objectsFetched: 0, bytesFetched: 0, requests: 0 };
  const seen = new Set<string>();
  const chunks = new Map<string, { id: ObjectId; lengthBytes: number }>();
  let level = [...roots];
  while (level.length > 0) {
    const unseen = level.filter((id) => {
      const key = idToHex(id);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const complete = await node.areComplete(unseen);
    const fresh = unseen.filter((_, i) => !complete[i]);
    const held = await node.getObjects(fresh);
    const wanted = fresh.filter((_, i) => !held[i]);
    const next: ObjectId[] = [];
    const descend = (bytes: Uint8Array) => {
      const object = decodeObject(bytes);
      const refs = childRefs(object);
      next.push(...refs.objects);
      if (object.kind === "file" && isFileLeaf(object)) {
        for (const chunk of object.chunks) chunks.set(idToHex(chunk.id), { id: chunk.id, lengthBytes: chunk.lengthBytes });
      }
    };
    held.forEach((bytes) => bytes && descend(bytes));
    for (let i = 0; i < wanted.length; i += NODES_PER_REQUEST) {
      const objects = await download(node, transport, peer, wanted.slice(i, i + NODES_PER_REQUEST), report);
      for (const object of objects) descend(object.bytes);
    }
    level = next;
  }
  // Chunks: one question to the local store, then downloads of what it lacks, by size.
  const chunkList = [...chunks.values()];
  const present = await node.hasObjects(chunkList.map((c) => c.id));
  const lacking = chunkList.filter((_, i) => !present[i]);
  let batch: ObjectId[] = [];
  let batchBytes = 0;
  for (const chunk of lacking) {
    if (batch.length > 0 && (batchBytes + chunk.lengthBytes > CHUNK_BYTES_PER_REQUEST || batch.length >= LIMITS.batchIdsMax)) {
      await download(node, transport, peer, batch, report);
      batch = [];
      batchBytes = 0;
    }
    batch.push(chunk.id);
    batchBytes += chunk.lengthBytes;
  }
  if (batch.length > 0) await download(node, transport, peer, batch, report);
  return report;
}

async function download(node: DsyncNode, transport: PeerTransport, peer: string, ids: readonly ObjectId[], report: FetchReport) {
  report.requests++;
  const reply = await transport.download(peer, ids);
  if (reply.missing.length > 0) {
    throw new PeerMissingObjectsError(`${peer} lacks ${reply.missing.length} object(s) of its own versions, e.g. ${idToHex(reply.missing[0]!)}`);
  }
  const asked = new Set(ids.map(idToHex));
  for (const object of reply.objects) {
    if (!asked.has(idToHex(object.id))) throw new PeerMissingObjectsError(`${peer} sent object ${idToHex(object.id)} that was not asked for`);
  }
  // putObjects hashes every object and refuses one whose bytes do not match its id.
  await node.putObjects(reply.objects);
  for (const object of reply.objects) {
    report.objectsFetched++;
    report.bytesFetched += object.bytes.length;
  }
  return reply.objects;
}
