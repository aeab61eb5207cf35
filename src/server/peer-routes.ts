// The routes other nodes call, under /v1/peer, behind the cluster token.
//
// A client token opens none of them, and without a configured cluster token they refuse every
// caller: a node that was not started as part of a cluster serves nothing to peers.
//
//   GET  /v1/peer/folders                   JSON {node, folders: [{name, mode, head, vector}]}
//   POST /v1/peer/folders/:folder/history   JSON {head, known} -> msgpack {versions: [[bytes, files, bytes]]}
//   POST /v1/peer/objects/download          msgpack id list -> msgpack {objects, missing} (as /v1/objects/download)
//   POST /v1/peer/notify                    JSON {from, folder, head, vector} -> 202
import type { Hono } from "hono";
import { encodeCanonical, DecodeError, decodeMsgpack } from "../core/encoding.ts";
import { idToHex } from "../core/id.ts";
import { vectorFromRecord, vectorToRecord, type VersionVector } from "../core/version-vector.ts";
import { UserError } from "../node/node.ts";
import type { PeerService } from "../replication/peer-service.ts";
import type { HistoryItem, PeerListing } from "../replication/transport.ts";
import { bearerToken, tokensEqual } from "./auth.ts";
import { msgpackResponse, readBody, readJson } from "./http-body.ts";
import { requireFolderName, requireId, requireNodeId } from "./validate.ts";
import { decodeIdList, encodeDownloadReply } from "./wire.ts";

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

  app.get("/v1/peer/folders", async (c) => c.json(listingToJson(await service().listFolders())));

  app.post("/v1/peer/folders/:folder/history", async (c) => {
    const folder = c.req.param("folder"); // checked with every route parameter (route-params.ts)
    const body = await readJson(c);
    const head = requireId(body.head, "head");
    const known = parseVector(body.known);
    const items = await service().history({ folder, head, known });
    return msgpackResponse(c, encodeHistory(items), true);
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
  };
}

export function encodeHistory(items: readonly HistoryItem[]): Uint8Array {
  return encodeCanonical({ versions: items.map((item) => [item.bytes, item.files, item.totalBytes]) });
}

export function decodeHistory(bytes: Uint8Array): HistoryItem[] {
  const value = decodeMsgpack(bytes);
  if (!(value instanceof Map) || !Array.isArray(value.get("versions"))) throw new DecodeError("a history reply is a map with a versions list");
  return (value.get("versions") as unknown[]).map((item, i) => {
    if (!Array.isArray(item) || item.length !== 3 || !(item[0] instanceof Uint8Array)) throw new DecodeError(`history item ${i} is not [bytes, files, bytes]`);
    const [bytes, files, totalBytes] = item as [Uint8Array, unknown, unknown];
    const count = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0);
    return { bytes, files: count(files), totalBytes: count(totalBytes) };
  });
}

