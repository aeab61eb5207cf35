// Bringing the trees of versions from a peer by Merkle descent.
//
// From the roots down, in batches: an object this node knows complete (its whole subtree checked
// by an earlier commit) is skipped with everything under it; an object it holds but has not
// seen complete is read locally and descended into; only objects it lacks are downloaded, in
// batches, each verified against its id before it is stored. So the cost grows with what
// changed, and a node that was away re-fetches nothing it already has. The descent is
// core/descend.ts; chunks are downloaded as the walk finds them, by size.
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { descend } from "../core/descend.ts";
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
  // Chunks this node lacks, downloaded by size as they add up (the walk finds them in batches).
  let lacking: ObjectId[] = [];
  let lackingBytes = 0;
  const flushLacking = async () => {
    if (lacking.length === 0) return;
    const batch = lacking;
    lacking = [];
    lackingBytes = 0;
    await download(node, transport, peer, batch, report);
  };
  await descend(roots, {
    known: (ids) => node.areComplete(ids),
    // Held here: read locally and descended into. Lacking: downloaded (each verified and stored).
    load: async (ids) => {
      const held = await node.getObjects(ids);
      const wanted = ids.filter((_, i) => !held[i]);
      const fetched = new Map<string, Uint8Array>();
      for (let i = 0; i < wanted.length; i += NODES_PER_REQUEST) {
        for (const object of await download(node, transport, peer, wanted.slice(i, i + NODES_PER_REQUEST), report)) fetched.set(idToHex(object.id), object.bytes);
      }
      return ids.map((id, i) => held[i] ?? fetched.get(idToHex(id)));
    },
    chunks: async (chunks) => {
      const present = await node.hasObjects(chunks.map((c) => c.id));
      for (let i = 0; i < chunks.length; i++) {
        if (present[i]) continue;
        const chunk = chunks[i]!;
        if (lacking.length > 0 && (lackingBytes + chunk.lengthBytes > CHUNK_BYTES_PER_REQUEST || lacking.length >= LIMITS.batchIdsMax)) await flushLacking();
        lacking.push(chunk.id);
        lackingBytes += chunk.lengthBytes;
      }
    },
  });
  await flushLacking();
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
