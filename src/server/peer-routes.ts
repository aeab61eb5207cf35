// The routes other nodes call, under /v1/peer, behind the cluster token.
//
// A client token opens none of them, and without a configured cluster token they refuse every
// caller: a node that was not started as part of a cluster serves nothing to peers.
//
//   GET  /v1/peer/folders?limit&from        JSON {node, folders: [{name, mode, head, vector}], next} (one page by name)
//   POST /v1/peer/folders/:folder/history   JSON {head, known, resumeFrom?} -> msgpack {versions: [[bytes, files, bytes]], more: [id]}
//                                           (one page; `more` is where to resume, empty on the last)
//   POST /v1/peer/objects/download          msgpack id list -> msgpack {objects, missing} (as /v1/objects/download)
//   POST /v1/peer/notify                    JSON {from, folder, head, vector} -> 202
//   POST /v1/peer/stored                    JSON {from, folder, objects: [[id, lengthBytes]]} -> 202 (objects of a push
//                                           still arriving, to fetch ahead; at most 4096, else 400)
//   POST /v1/peer/raft                      msgpack Raft messages (wire/raft-message.ts) -> JSON {node, voters}
//                                           (403 when their sender is no member or not the calling node, 503 without a group)
import type { Hono } from "hono";
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { vectorFromRecord, vectorToRecord, type VersionVector } from "../core/version-vector.ts";
import { UserError } from "../node/node.ts";
import type { PeerService } from "../replication/peer-service.ts";
import type { PeerListing } from "../replication/transport.ts";
import { bearerToken, tokensEqual } from "./auth.ts";
import { msgpackResponse, readBody, readJson } from "./http-body.ts";
import { pageLimit } from "./paging.ts";
import { requireFolderName, requireId, requireNodeId } from "./validate.ts";
import { decodeIdList, encodeDownloadReply } from "../wire/formats.ts";
import { encodeHistory } from "../wire/history.ts";
import { PEER_CERTIFICATE_HEADER } from "../wire/peer-proof.ts";
import { decodeRaftMessages, RaftRefusedError, RaftUnavailableError } from "../wire/raft-message.ts";
import { fingerprintOfDer } from "../wire/tls-fingerprint.ts";

export function registerPeerRoutes(app: Hono, options: { clusterToken?: string; service?: PeerService }): void {
  app.use("/v1/peer/*", async (c, next) => {
    if (!options.clusterToken || !options.service) {
      return c.json({ error: "this node takes no peer requests (start it with --cluster-token to join a cluster)" }, 403);
    }
    const given = bearerToken(c.req.header("authorization"));
    if (given === undefined || !tokensEqual(given, options.clusterToken)) {
      return c.json({ error: "missing or wrong cluster token" }, 401);
    }
    await next();
  });
  const service = () => options.service!;

  // One page of folders by name: `limit` (at most 1000, the default) and `from`, the name a page starts at (a `next`).
  app.get("/v1/peer/folders", async (c) => {
    const limit = pageLimit(c, LIMITS.foldersPageMax);
    const from = c.req.query("from");
    if (from !== undefined && (from.length === 0 || from.length > 1024)) throw new UserError("from must be a folder name");
    return c.json(listingToJson(await service().listFolders({ limit, from })));
  });

  app.post("/v1/peer/folders/:folder/history", async (c) => {
    const folder = c.req.param("folder"); // checked with every route parameter (route-params.ts)
    const body = await readJson(c);
    const head = requireId(body.head, "head");
    const known = parseVector(body.known);
    const resumeFrom = parseResumeFrom(body.resumeFrom);
    const page = await service().history({ folder, head, known, resumeFrom });
    return msgpackResponse(c, encodeHistory(page), true);
  });

  app.post("/v1/peer/objects/download", async (c) => {
    const reply = await service().download(decodeIdList(await readBody(c)));
    return msgpackResponse(c, encodeDownloadReply(reply.objects, reply.missing), true);
  });

  app.post("/v1/peer/notify", async (c) => {
    const body = await readJson(c);
    const from = requireNodeId(body.from, "from");
    const folder = requireFolderName(body.folder, "folder");
    service().notify({ from, folder, head: requireId(body.head, "head"), vector: parseVector(body.vector) });
    return c.json({ ok: true }, 202);
  });

  // What the calling node stored of a push still arriving: a hint to fetch ahead, bounded.
  app.post("/v1/peer/stored", async (c) => {
    const body = await readJson(c);
    const from = requireNodeId(body.from, "from");
    const folder = requireFolderName(body.folder, "folder");
    service().notifyStored({ from, folder, objects: parseStoredObjects(body.objects) });
    return c.json({ ok: true }, 202);
  });

  // The strong mode's Raft group. The messages' sender is checked by the driver against its
  // config and, over TLS, against the certificate this request proved it holds (peer-identity.ts
  // checked the proof before this runs).
  app.post("/v1/peer/raft", async (c) => {
    const messages = decodeRaftMessages(await readBody(c));
    const certificate = c.req.header(PEER_CERTIFICATE_HEADER);
    const fingerprint = certificate ? fingerprintOfDer(Buffer.from(certificate, "base64")) : undefined;
    try {
      return c.json(await service().raft(messages, fingerprint));
    } catch (error) {
      if (error instanceof RaftRefusedError) return c.json({ error: error.message }, 403);
      if (error instanceof RaftUnavailableError) {
        c.header("retry-after", "1");
        return c.json({ error: error.message }, 503);
      }
      throw error;
    }
  });
}

function parseVector(value: unknown): VersionVector {
  try {
    return vectorFromRecord(value ?? {});
  } catch (error) {
    throw new UserError((error as Error).message);
  }
}

export function listingToJson(listing: PeerListing) {
  return {
    node: listing.node,
    folders: listing.folders.map((f) => ({ name: f.name, mode: f.mode, head: f.head ? idToHex(f.head) : null, vector: vectorToRecord(f.vector) })),
    next: listing.next ?? null,
  };
}

/** A stored-objects notice's list: at most LIMITS.storedNoticeObjectsMax pairs of an id and a length within LIMITS.objectBytesMax. */
function parseStoredObjects(value: unknown): { id: ObjectId; lengthBytes: number }[] {
  if (!Array.isArray(value)) throw new UserError("objects must be a list of [id, lengthBytes]");
  if (value.length > LIMITS.storedNoticeObjectsMax) throw new UserError(`objects names more than ${LIMITS.storedNoticeObjectsMax} objects`);
  return value.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new UserError(`objects[${i}] must be [id, lengthBytes]`);
    const lengthBytes = pair[1];
    if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0 || lengthBytes > LIMITS.objectBytesMax) throw new UserError(`objects[${i}]: lengthBytes must be a whole number of at most ${LIMITS.objectBytesMax}`);
    return { id: requireId(pair[0], `objects[${i}]`), lengthBytes };
  });
}

/** Where a history page resumes: absent, or a list of at most LIMITS.historyResumeIdsMax version ids. */
function parseResumeFrom(value: unknown): ObjectId[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new UserError("resumeFrom must be a list of version ids");
  if (value.length > LIMITS.historyResumeIdsMax) throw new UserError(`resumeFrom names more than ${LIMITS.historyResumeIdsMax} ids`);
  return value.map((id, i) => requireId(id, `resumeFrom[${i}]`));
}
