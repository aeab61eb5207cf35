// What a client needs from the node to send deltas (docs/api.md, "Block signatures"), and the
// node's side of an upload item of kind 2 (wire/delta-frame.ts).
//
// POST /v1/objects/signatures: the block signatures of old chunks, so a client that no longer
// holds them can find which of their blocks its new chunks still contain. At most
// LIMITS.signatureIdsMax ids, at most LIMITS.signatureReplyBytesMax of signatures; an object the
// token may not read (object-visibility.ts) is answered like one the node lacks: no signatures.
//
// A delta is rebuilt from bases the token may read and the node holds, each read verified; a
// base that is neither is a clear refusal of the batch (400), and the rebuilt bytes must hash to
// the item's id (422 otherwise) before anything is stored. What one request's deltas may cost is
// bounded (LIMITS.deltaRebuiltBytesMaxPerRequest, deltaBaseBytesMaxPerRequest), since a delta of
// a few bytes can name megabytes of work.
import type { Context, Hono } from "hono";
import { blake3 } from "../core/blake3.ts";
import { blockSignatures, DEFAULT_BLOCK_BYTES } from "../core/block-signatures.ts";
import { DecodeError } from "../core/encoding.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { DsyncNode } from "../node/node.ts";
import { ObjectHashMismatchError } from "../store/object-store.ts";
import { decodeDeltaFrame, deltaBases, rebuildFromDelta } from "../wire/delta-frame.ts";
import { decodeIdList } from "../wire/formats.ts";
import { encodeSignaturesReply } from "../wire/signatures-reply.ts";
import { msgpackResponse, readBody } from "./http-body.ts";
import type { DeltaRebuilder } from "./object-batch-stream.ts";
import type { ObjectVisibility } from "./object-visibility.ts";

/** Objects read together for signing: 8 of the largest objects are 64 MiB, a request body's bound. */
const SIGNED_PER_READ = 8;
/** An id list of signatureIdsMax ids is about 9 KiB; a little room for other spellings. */
const SIGNATURE_REQUEST_BYTES_MAX = 64 * 1024;

export function registerDeltaRoutes(app: Hono, node: DsyncNode, visibility: ObjectVisibility): void {
  app.post("/v1/objects/signatures", async (c) => {
    const ids = decodeIdList(await readBody(c, SIGNATURE_REQUEST_BYTES_MAX));
    if (ids.length > LIMITS.signatureIdsMax) throw new DecodeError(`at most ${LIMITS.signatureIdsMax} ids per signatures request`);
    const { shown } = await visibility.split(c, ids);
    const shownKeys = new Set(shown.map(idToHex));
    const signatures: Uint8Array[] = [];
    let total = 0;
    // Objects read to sign, bounded like a download's (64 MiB): ids past it get no signatures.
    let readBytes = 0;
    // A few objects per read (one index lookup for them), let go as soon as they are signed.
    for (let at = 0; at < ids.length; at += SIGNED_PER_READ) {
      const group = ids.slice(at, at + SIGNED_PER_READ);
      const readable = group.filter((id) => shownKeys.has(idToHex(id)));
      const read = total < LIMITS.signatureReplyBytesMax && readBytes < LIMITS.requestBodyBytesMax && readable.length > 0 ? await node.getObjects(readable) : [];
      for (const bytes of read) readBytes += bytes?.length ?? 0;
      let next = 0;
      for (const id of group) {
        let signed: Uint8Array = new Uint8Array(0);
        const bytes = shownKeys.has(idToHex(id)) ? read[next++] : undefined;
        if (bytes) {
          const candidate = blockSignatures(bytes, DEFAULT_BLOCK_BYTES);
          if (total + candidate.length <= LIMITS.signatureReplyBytesMax) signed = candidate;
        }
        total += signed.length;
        signatures.push(signed);
      }
    }
    return msgpackResponse(c, encodeSignaturesReply({ blockBytes: DEFAULT_BLOCK_BYTES, signatures }));
  });
}

/** The rebuilder of the upload route for one request: bases read within what its token may see. */
export function deltaRebuilder(c: Context, node: DsyncNode, visibility: ObjectVisibility): DeltaRebuilder {
  let rebuiltBytes = 0;
  let baseBytes = 0;
  return async (id: ObjectId, deltaBytes: Uint8Array, baseId: ObjectId) => {
    const delta = decodeDeltaFrame(deltaBytes);
    rebuiltBytes += delta.rebuiltBytes;
    if (rebuiltBytes > LIMITS.deltaRebuiltBytesMaxPerRequest) throw new DecodeError(`the deltas of one upload rebuild at most ${LIMITS.deltaRebuiltBytesMaxPerRequest} bytes; send fewer per batch`);
    const ids = deltaBases(baseId, delta);
    const { hidden } = await visibility.split(c, ids);
    // A base the token may not read is refused in the same words as one the node lacks.
    const hiddenKeys = new Set(hidden.map(idToHex));
    const bytes = await node.getObjects(ids.filter((base) => !hiddenKeys.has(idToHex(base))));
    const bases: Uint8Array[] = [];
    let read = 0;
    for (const base of ids) {
      const found = hiddenKeys.has(idToHex(base)) ? undefined : bytes[read++];
      if (!found) throw new DecodeError(`delta base ${idToHex(base)} of object ${idToHex(id)} is not held here; send the object whole`);
      baseBytes += found.length;
      bases.push(found);
    }
    if (baseBytes > LIMITS.deltaBaseBytesMaxPerRequest) throw new DecodeError(`the deltas of one upload read at most ${LIMITS.deltaBaseBytesMaxPerRequest} bytes of bases; send fewer per batch`);
    const rebuilt = rebuildFromDelta(delta, bases);
    const actual = blake3(rebuilt);
    if (!idEquals(actual, id)) throw new ObjectHashMismatchError(idToHex(id), idToHex(actual));
    return rebuilt;
  };
}
