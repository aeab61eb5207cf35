// The HTTP API, as a Hono app over a DsyncNode. It never listens by itself (serve.ts does), so
// tests can drive it through app.request() as well as over a real socket.
//
// Client routes live under /v1; routes for other nodes will live under /v1/peer with their own
// credential. Data moves as msgpack, what people read as JSON. Every body is size-limited
// (413) and every decoder turns malformed input into a 4xx.
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { blake3BackendName } from "../core/blake3.ts";
import { DecodeError, encodeCanonical } from "../core/encoding.ts";
import { idToHex, isIdHex, idFromHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { CorruptObjectError, ObjectHashMismatchError } from "../store/object-store.ts";
import { isOutOfSpaceError } from "../store/out-of-space.ts";
import { ObjectIndexDamagedError } from "../store/sqlite-damage.ts";
import { MetadataDamagedError } from "../node/metadata-damage.ts";
import { MetadataUnavailableError } from "../node/metadata-unavailable.ts";
import { IncompleteTreeError, InvalidTreeError } from "../node/closure.ts";
import { HeadMovedError, type FolderRecord, type VersionRecord } from "../node/metadata-records.ts";
import { FolderModeError, UserError, type CommitRequest, type CommitResult, type DsyncNode } from "../node/node.ts";
import { ConsensusUnavailableError, NotLeaderError, type StrongConsensus } from "../consensus/strong-consensus.ts";
import type { PeerTransport } from "../replication/transport.ts";
import { FORWARD_TIMEOUT_MS, FORWARD_TIMEOUT_MS_PER_FILE, registerStrongRoutes, StrongRouting, unavailableReply } from "./strong-routes.ts";
import type { NodeStatus } from "../wire/node-status.ts";
import type { MergeConflict } from "../core/merge.ts";
import type { TreeEntry } from "../core/objects.ts";
import { authorize, checkFolderScope, eventFilter, scopedFolders } from "./access.ts";
import { ObjectVisibility, openMembership } from "./object-visibility.ts";
import { registerTokenRoutes } from "./token-routes.ts";
import type { FolderMembership } from "../node/folder-membership.ts";
import type { TokenStore } from "../node/token-store.ts";
import { registerPeerRoutes } from "./peer-routes.ts";
import { deltaRebuilder, registerDeltaRoutes } from "./delta-routes.ts";
import { UPLOAD_ITEM_KINDS } from "./object-batch-stream.ts";
import { idleCollector } from "./idle-collect.ts";
import { msgpackResponse, readBody, readJson, readObjectBatch } from "./http-body.ts";
import type { PeerService } from "../replication/peer-service.ts";
import type { Replicator } from "../replication/replicator.ts";
import type { Repairer } from "../node/repair.ts";
import type { Scrubber } from "../node/scrub.ts";
import { vectorToRecord } from "../core/version-vector.ts";
import {
  BodyTooLargeError,
  compressIfWorthIt,
  decodeIdList,
  decodeIdQuestion,
  decompressBody,
  encodeDownloadReply,
  encodeLackingReply,
} from "../wire/formats.ts";
import { LACKING_BITS_REPLY } from "../wire/id-list.ts";
import { terminalLines } from "../core/terminal-text.ts";
import { checkRouteParams } from "./route-params.ts";
import { NODE_ID_HEADER } from "../wire/node-header.ts";
import type { CommitJson, ConflictJson, EntryJson, FolderJson, VersionJson } from "../wire/api-json.ts";
import { nameCursor, nameFromCursor, pageLimit, sequenceCursor, sequenceFromCursor } from "./paging.ts";
import { validateVersionRef } from "../core/names.ts";
import { countBodyBytes, registerMetricsRoute, type NodeMetrics } from "./metrics.ts";
import { registerEventRoutes, transferFolder } from "./events.ts";
import { registerDashboardRoutes } from "./dashboard/routes.ts";
import { conflictCopiesJson } from "../node/conflict-copies.ts";
import { checkNamed, optionalCount, optionalId, optionalNullableCount, optionalString, requireFolderName, requireId, requireNodeId, requireObject, requireVersionRef } from "./validate.ts";

export interface AppOptions {
  /** When set, every client route (all of /v1 but /v1/health and /v1/peer) needs `Authorization: Bearer <token>`. */
  token?: string;
  version?: string;
  /** The credential other nodes present on /v1/peer; without it the peer routes refuse everyone. */
  clusterToken?: string;
  /** Answers peer requests; absent on a node that takes none. */
  peerService?: PeerService;
  /** The node's replication, for /v1/status. */
  replicator?: Replicator;
  /** Repair of quarantined objects from peers and the background scrub, for /v1/status. */
  repairer?: Repairer;
  scrubber?: Scrubber;
  /** When set: GET /metrics, and every request timed and counted (metrics.ts). */
  metrics?: NodeMetrics;
  /** A second token accepted on /metrics only (besides `token`), for a scraper. */
  metricsToken?: string;
  /** Tokens with roles and folders, accepted besides `token` (which stays the admin token); only with `token`. */
  tokens?: TokenStore;
  /** Which objects each folder reaches, for folder-scoped tokens (object-visibility.ts); made in memory when absent. */
  membership?: FolderMembership;
  /** The fingerprint of the certificate the node serves TLS with, for /v1/health. */
  tlsFingerprint?: string;
  /** In front of the peer routes on a node with TLS peers: only the pinned nodes' requests pass (peer-identity.ts). */
  peerIdentity?: MiddlewareHandler;
  /** The cluster's Raft group, which orders strong folders' heads (strong-routes.ts); without it, strong folders are refused (503). */
  consensus?: StrongConsensus;
  /** How this node calls its peers: a strong write is handed to the leader through it. */
  transport?: PeerTransport;
}

export const API_VERSION = "v1";

/** The policy of every answer but the dashboard's files: nothing may load, run or frame it. */
export const API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox";

/** A folder as the API shows it; `root` is the head's root tree, so one request gives a diff its starting point. */
export function folderJson(folder: FolderRecord, headRoot: ObjectId | null = null): FolderJson {
  return {
    name: folder.name,
    head: folder.head ? idToHex(folder.head) : null,
    root: headRoot ? idToHex(headRoot) : null,
    mode: folder.mode,
    keepVersions: folder.keepVersions,
    keepDays: folder.keepDays,
    createdMs: folder.createdMs,
    updatedMs: folder.updatedMs,
  };
}

export function versionJson(version: VersionRecord): VersionJson {
  return {
    id: idToHex(version.id),
    folder: version.folder,
    sequence: version.sequence,
    root: idToHex(version.root),
    parents: version.parents.map(idToHex),
    author: version.author,
    time: new Date(version.hlcWallMs).toISOString(),
    hlcWallMs: version.hlcWallMs,
    hlcCounter: version.hlcCounter,
    message: version.message,
    origin: version.origin,
    files: version.files,
    bytes: version.totalBytes,
    createdMs: version.createdMs,
  };
}

export function commitJson(result: CommitResult): CommitJson {
  return {
    version: idToHex(result.version),
    pushed: idToHex(result.pushed),
    parent: result.parent ? idToHex(result.parent) : null,
    mergedWith: result.mergedWith ? idToHex(result.mergedWith) : null,
    root: idToHex(result.root),
    conflicts: result.conflicts.map((conflict) => conflictJson(conflict)),
  };
}

function entryJson(entry: TreeEntry | null): EntryJson | null {
  if (!entry) return null;
  return { kind: entry.kind, id: entry.id ? idToHex(entry.id) : null, mode: entry.mode, size: entry.sizeBytes, mtimeMs: entry.mtimeMs, target: entry.target };
}

/** A conflict as the API reports it: which side's entry stands at the path, and what lost. */
function conflictJson(conflict: MergeConflict): ConflictJson {
  return {
    path: conflict.path,
    kind: conflict.kind,
    winner: conflict.winner,
    kept: entryJson(conflict.kept),
    losers: conflict.losers.map(entryJson),
    copies: conflict.extraPaths,
  };
}

function pathId(c: Context, name: string): ObjectId {
  const text = c.req.param(name);
  if (!isIdHex(text)) throw new UserError(`${name} must be an object id (64 lowercase hex digits)`);
  return idFromHex(text);
}

/**
 * 503 for objects found corrupt here and quarantined, with no good copy yet: a reader is told
 * "corrupt, awaiting repair" (try again later), not "missing" (the node never had it).
 */
function corruptReply(c: Context, corrupt: readonly ObjectId[]): Response {
  const first = idToHex(corrupt[0]!);
  const more = corrupt.length > 1 ? ` (and ${corrupt.length - 1} more)` : "";
  return c.json(
    {
      error:
        `object ${first}${more} is corrupt on this node and was quarantined; it is fetched again from a peer that holds it, ` +
        "or stored again by the next push of a folder that holds it",
      corrupt: corrupt.slice(0, 1000).map(idToHex),
    },
    503,
  );
}

export const OUT_OF_SPACE_MESSAGE = "the node is out of disk space";

// When the log last said the metadata store was unavailable (it says so once a minute at most).
let lastUnavailableLogMs = 0;

/** The node's log: messages may quote a request (a path, a name), so they are escaped like all terminal text. */
function logLines(lines: string[]): void {
  process.stderr.write(terminalLines(lines));
}

export function createApp(node: DsyncNode, options: AppOptions = {}): Hono {
  const app = new Hono();
  const metrics = options.metrics;
  // First, so requests refused by auth or the parameter check are timed and counted too.
  if (metrics) app.use("*", metrics.middleware);
  // No answer of the API is a page: an object's bytes (GET /v1/objects/:id) are whatever a
  // client stored, an error may quote a name. Never sniffed, never run as this origin's script,
  // never framed. The dashboard's own files carry their own policy (dashboard/routes.ts).
  app.use("*", async (c, next) => {
    await next();
    // Every answer says it is a dsync node's (wire/node-header.ts): a client told a wrong address says so.
    c.res.headers.set(NODE_ID_HEADER, node.nodeId);
    c.res.headers.set("x-content-type-options", "nosniff");
    if (!c.res.headers.has("content-security-policy")) c.res.headers.set("content-security-policy", API_CONTENT_SECURITY_POLICY);
  });

  app.onError(async (caught, c) => {
    // SQLite damage met mid-request names the damaged database and what to do, not "internal error".
    const error = await node.explainDamage(caught);
    if (error instanceof MetadataDamagedError || error instanceof ObjectIndexDamagedError) {
      logLines([`dsync: ${error.message}`]);
      return c.json({ error: error.message, database: error.path }, 500);
    }
    if (error instanceof MetadataUnavailableError) {
      // The metadata's database server is away (down, restarting, out of connections): nothing
      // of the request was acknowledged, and the node answers again once the server is back.
      // Logged once per outage minute, not once per request.
      const nowMs = Date.now();
      if (nowMs - lastUnavailableLogMs > 60_000) {
        lastUnavailableLogMs = nowMs;
        logLines([`dsync: ${error.message}`]);
      }
      c.header("retry-after", "5");
      return c.json({ error: error.message }, 503);
    }
    // A strong folder's write or linearizable read with no leader able to serve it (a minority
    // side, an election), or handed to a node that is not the leader: 503 naming the leader known.
    if (error instanceof ConsensusUnavailableError || error instanceof NotLeaderError) return unavailableReply(c, error.message, error.leader);
    if (error instanceof FolderModeError) return c.json({ error: error.message, mode: error.mode }, 409);
    if (error instanceof UserError) return c.json({ error: error.message }, error.status);
    if (error instanceof ObjectHashMismatchError) return c.json({ error: error.message }, 422);
    if (error instanceof DecodeError) return c.json({ error: error.message }, 400);
    if (error instanceof BodyTooLargeError) return c.json({ error: error.message }, 413);
    if (error instanceof IncompleteTreeError) {
      return c.json({ error: error.message, missing: error.missing.slice(0, 1000).map(idToHex) }, 409);
    }
    if (error instanceof InvalidTreeError) {
      // The object, its place in the pushed tree and the rule, also apart, for tools.
      return c.json({ error: error.message, object: error.objectId ? idToHex(error.objectId) : undefined, path: error.path, rule: error.rule }, 422);
    }
    if (error instanceof HeadMovedError) return c.json({ error: error.message }, 409);
    if (isOutOfSpaceError(error)) {
      // Nothing of the request was acknowledged; the store gave back what it had written.
      logLines([`dsync: out of disk space: ${error.message}`]);
      return c.json({ error: OUT_OF_SPACE_MESSAGE }, 507);
    }
    if (error instanceof CorruptObjectError) {
      logLines([`dsync: ${error.message}`]);
      return c.json({ error: error.message }, 500);
    }
    logLines(`dsync: unexpected error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`.split("\n"));
    return c.json({ error: "internal error" }, 500);
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  if (metrics) registerMetricsRoute(app, metrics, { token: options.token, metricsToken: options.metricsToken, tokens: options.token ? options.tokens : undefined });

  // The web dashboard (no data in it; its script calls /v1 with the token).
  registerDashboardRoutes(app);

  // Still a dsync node's health when the metadata is away (the client tells a dsync node from
  // another server by it), but 503 with ok false, so a load balancer or monitor that only looks
  // at the status code takes the node out while it cannot serve (docs/api.md).
  app.get("/v1/health", async (c) => {
    const availability = await node.metadataAvailability();
    const health = { node: node.nodeId, version: options.version ?? "dev", blake3: blake3BackendName, uploadItems: UPLOAD_ITEM_KINDS, ...(options.tlsFingerprint ? { tlsFingerprint: options.tlsFingerprint } : {}) };
    if (availability.available) return c.json({ ok: true, ...health, metadata: "ok" });
    c.header("retry-after", "5");
    return c.json({ ok: false, ...health, metadata: "unavailable", metadataError: availability.reason }, 503);
  });

  // Token, role (access.ts: ROUTE_ACCESS); peer routes have their own credential (peer-routes.ts).
  app.use("/v1/*", authorize({ token: options.token, tokens: options.token ? options.tokens : undefined, clock: node.clock }));

  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: LIMITS.requestBodyBytesMax,
      onError: (c) => c.json({ error: `request body larger than ${LIMITS.requestBodyBytesMax} bytes` }, 413),
    }),
  );

  // Every path parameter (folder, version, id) of every route below, peer routes included, is
  // checked here before its handler runs: 400 with the reason, nothing looked up or created.
  app.use("/v1/*", checkRouteParams);
  // A folder outside a scoped token's folders is answered as one that does not exist.
  app.use("/v1/*", checkFolderScope);

  const visibility = new ObjectVisibility(options.membership ?? openMembership(node, ":memory:"), node.clock, (line) => logLines([line]));
  visibility.follow(node);
  // The folders of scoped tokens are recorded ahead of their first request (a big folder takes seconds).
  if (options.token && options.tokens) visibility.warmFor(options.tokens);
  registerTokenRoutes(app, { tokens: options.token ? options.tokens : undefined, clock: node.clock, onCreated: (record) => visibility.warm(record.folders) });

  if (options.peerIdentity) app.use("/v1/peer/*", options.peerIdentity);
  registerPeerRoutes(app, { clusterToken: options.clusterToken, service: options.peerService });
  // Strong folders: which node takes a write, linearizable reads, creation, membership (strong-routes.ts).
  const strong = new StrongRouting(node, {
    consensus: options.consensus,
    transport: options.transport,
    peerAddress: (id) => options.replicator?.peerStates().find((peer) => peer.node === id)?.address,
  });
  registerStrongRoutes(app, node, strong, folderJson);
  registerEventRoutes(app, node.events, eventFilter);

  // ----- objects -----

  app.post("/v1/objects/missing", async (c) => {
    // What a scoped token may not know of is lacking, whether stored or not (object-visibility.ts).
    const question = decodeIdQuestion(await readBody(c));
    const { shown, hidden } = await visibility.split(c, question.ids);
    const lackingShown = await node.missing(shown);
    // Asked for bits (wire/id-list.ts): one per id asked, in its place. Else the ids themselves,
    // as every client before the bits understood.
    if (question.reply === LACKING_BITS_REPLY) {
      // Both lists are filtered from the ids asked, so they hold the very same id objects; were
      // one ever a copy, the count would not match and the ids are matched by value instead.
      const lackingCount = lackingShown.length + hidden.length;
      const same = new Set<ObjectId>([...lackingShown, ...hidden]);
      let lacking = (i: number) => same.has(question.ids[i]!);
      if (question.ids.reduce((n, _, i) => n + (lacking(i) ? 1 : 0), 0) !== lackingCount) {
        const byValue = new Set([...lackingShown, ...hidden].map(idToHex));
        lacking = (i) => byValue.has(idToHex(question.ids[i]!));
      }
      return msgpackResponse(c, encodeLackingReply(question.ids.length, lacking));
    }
    return msgpackResponse(c, encodeCanonical({ missing: [...lackingShown, ...hidden] }));
  });

  app.post("/v1/objects/upload", async (c) => {
    // Stored group by group as the body arrives (object-batch-stream.ts), answered once all are
    // durable; what each group lets the node mark complete is marked as it lands (ingest-marks.ts).
    const stored = await readObjectBatch(c, async (objects) => {
      await node.putUploaded(objects);
      visibility.recordUploads(c, objects.map((o) => o.id));
      // Durable now: the peers may fetch these while the rest of the push arrives.
      options.replicator?.objectsStored(transferFolder(c), objects);
    }, undefined, deltaRebuilder(c, node, visibility));
    node.events.emit("push", transferFolder(c), { objects: stored.objects, bytes: stored.bytes });
    return c.json({ stored: stored.objects });
  });

  // Block signatures of old chunks, for a client's deltas (delta-routes.ts).
  registerDeltaRoutes(app, node, visibility);

  app.post("/v1/objects/download", async (c) => {
    const { shown, hidden } = await visibility.split(c, decodeIdList(await readBody(c)));
    const reply = await node.download(shown);
    reply.missing.push(...hidden);
    if (reply.corrupt.length > 0) return corruptReply(c, reply.corrupt);
    node.events.emit("pull", transferFolder(c), { objects: reply.objects.length, bytes: reply.objects.reduce((sum, o) => sum + o.bytes.length, 0), missing: reply.missing.length });
    return msgpackResponse(c, encodeDownloadReply(reply.objects, reply.missing), true);
  });

  app.put("/v1/objects/:id", async (c) => {
    const id = pathId(c, "id");
    // One object: refused past its bound as declared or as read, not after reading 64 MiB.
    const bytes = await readBody(c, LIMITS.objectBytesMax);
    await node.putUploaded([{ id, bytes }]);
    visibility.recordUploads(c, [id]);
    options.replicator?.objectsStored(transferFolder(c), [{ id, bytes }]);
    node.events.emit("push", transferFolder(c), { objects: 1, bytes: bytes.length });
    return c.json({ id: idToHex(id), stored: true }, 201);
  });

  app.get("/v1/objects/:id", async (c) => {
    const id = pathId(c, "id");
    if ((await visibility.split(c, [id])).hidden.length > 0) return c.json({ error: `no object ${idToHex(id)}` }, 404);
    const reply = await node.download([id]);
    // Found corrupt here and not repaired yet is not "never had it": the same 503 as a download.
    if (reply.corrupt.length > 0) return corruptReply(c, reply.corrupt);
    const bytes = reply.objects[0]?.bytes;
    if (!bytes) return c.json({ error: `no object ${idToHex(id)}` }, 404);
    node.events.emit("pull", transferFolder(c), { objects: 1, bytes: bytes.length, missing: 0 });
    countBodyBytes(c, "sent", bytes.length);
    return new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { "content-type": "application/octet-stream" } });
  });

  // ----- folders and versions -----

  const folderWithRoot = async (folder: FolderRecord) => folderJson(folder, await node.headRoot(folder));

  // A scoped token's folders that exist, by name: all at once (a token names at most 100), so no
  // cursor ever names a folder outside them.
  const foldersIn = async (names: readonly string[]): Promise<{ folders: FolderRecord[]; next: null }> => {
    const folders: FolderRecord[] = [];
    for (const name of [...names].sort()) {
      const folder = await node.findFolder(name);
      if (folder) folders.push(folder);
    }
    return { folders, next: null };
  };

  // One page of folders by name (paging.ts).
  app.get("/v1/folders", async (c) => {
    const limit = pageLimit(c, LIMITS.foldersPageMax);
    const scope = scopedFolders(c);
    const page = scope === null ? await node.listFoldersPage(limit, nameFromCursor(c)) : await foldersIn(scope);
    const folders = [];
    for (const folder of page.folders) folders.push(await folderWithRoot(folder));
    return c.json({ folders, limit, next: page.next === null ? null : nameCursor(page.next) });
  });

  app.get("/v1/folders/:folder", async (c) => {
    await strong.beforeRead(c, c.req.param("folder"));
    return c.json(await folderWithRoot(await node.getFolder(c.req.param("folder"))));
  });

  const retentionChange = (body: Record<string, unknown>) => ({
    keepVersions: optionalNullableCount(body.keepVersions, "keepVersions"),
    keepDays: optionalNullableCount(body.keepDays, "keepDays"),
  });
  const retentionHere = async (c: Context, folder: string, body: Record<string, unknown>): Promise<Response> =>
    c.json(await folderWithRoot(await node.setRetention(folder, retentionChange(body))));

  // A strong folder's retention is a command of the log (every member keeps the same versions):
  // on a member that is not the leader it is handed to the leader, as a commit is.
  app.put("/v1/folders/:folder/retention", async (c) => {
    const body = await readJson(c);
    const folder = c.req.param("folder");
    const change = retentionChange(body);
    const toLeader = () => strong.forward(c, "retention", { ...change, folder });
    if (await strong.writeGoesToLeader(folder)) return toLeader();
    return strong.orToLeader(() => retentionHere(c, folder, body), toLeader);
  });

  app.post("/v1/peer/strong/retention", async (c) => {
    const body = await readJson(c);
    requireNodeId(body.from, "from");
    const folder = requireFolderName(body.folder, "folder");
    strong.requireLeader();
    return retentionHere(c, folder, body);
  });

  // One page of the history, newest first (paging.ts): `cursor` is the `next` of the page
  // before, or `before` names a version (id or prefix) to start below.
  app.get("/v1/folders/:folder/versions", async (c) => {
    const folder = c.req.param("folder");
    const limit = pageLimit(c, LIMITS.versionsPageMax);
    const cursor = sequenceFromCursor(c);
    await strong.beforeRead(c, folder);
    const beforeText = c.req.query("before");
    if (cursor !== undefined && beforeText !== undefined) throw new UserError("give cursor or before, not both");
    let below = cursor;
    if (beforeText !== undefined) {
      checkNamed("before", beforeText, validateVersionRef);
      below = (await node.resolveVersion(folder, beforeText)).sequence;
    }
    const page = await node.listVersionsPage(folder, limit, below);
    return c.json({ versions: page.versions.map(versionJson), limit, next: page.next === null ? null : sequenceCursor(page.next) });
  });

  app.get("/v1/folders/:folder/versions/:version", async (c) => {
    await strong.beforeRead(c, c.req.param("folder"));
    return c.json(versionJson(await node.resolveVersion(c.req.param("folder"), c.req.param("version"))));
  });

  // The conflict copies a merge version made, read from its tree and its parents' (conflict-copies.ts).
  app.get("/v1/folders/:folder/versions/:version/conflicts", async (c) => {
    await strong.beforeRead(c, c.req.param("folder"));
    const version = await node.resolveVersion(c.req.param("folder"), c.req.param("version"));
    return c.json(conflictCopiesJson(version.folder, version.id, await node.conflictCopies(version.folder, version.id)));
  });

  const commitRequest = (folder: string, body: Record<string, unknown>): CommitRequest => ({
    folder,
    root: requireId(body.root, "root"),
    parent: optionalId(body.parent, "parent"),
    message: optionalString(body.message, "message", LIMITS.messageLengthBytesMax, ""),
    chunking: optionalString(body.chunking, "chunking", 256, "unknown"),
    files: optionalCount(body.files, "files", 0),
    totalBytes: optionalCount(body.bytes, "bytes", 0),
  });

  const commitHere = async (c: Context, request: CommitRequest): Promise<Response> => {
    const result = await node.commit(request);
    metrics?.observeCommit("push", result);
    // What the push and the commit's check left is given back: before the reply after a big
    // push, else once the node is quiet (idle-collect.ts).
    idleCollector.noteCommit();
    return c.json(commitJson(result));
  };

  const restoreHere = async (c: Context, folder: string, body: Record<string, unknown>): Promise<Response> => {
    const version = requireVersionRef(body.version, "version");
    const message = optionalString(body.message, "message", LIMITS.messageLengthBytesMax, "");
    const result = await node.restore(folder, version, message || undefined);
    metrics?.observeCommit("restore", result);
    return c.json(commitJson(result));
  };

  app.post("/v1/folders/:folder/commit", async (c) => {
    const body = await readJson(c);
    const folder = c.req.param("folder");
    const request = commitRequest(folder, body);
    // A scoped token commits only objects it may know of (object-visibility.ts); the others read as not stored.
    const invisible = await visibility.invisibleInTree(c, request.root);
    if (invisible.length > 0) throw new IncompleteTreeError(invisible);
    // A strong folder's commit is made on the leader, which fetches the pushed tree from here.
    const toLeader = () => strong.forward(c, "commit", { ...body, folder }, FORWARD_TIMEOUT_MS + request.files * FORWARD_TIMEOUT_MS_PER_FILE);
    if (await strong.writeGoesToLeader(folder)) return toLeader();
    // Leadership passed on while this node made the commit: the proposal was refused before it
    // reached the log (nothing was applied), so the new leader takes it instead.
    return strong.orToLeader(() => commitHere(c, request), toLeader);
  });

  app.post("/v1/folders/:folder/restore", async (c) => {
    const body = await readJson(c);
    const folder = c.req.param("folder");
    const toLeader = () => strong.forward(c, "restore", { version: requireVersionRef(body.version, "version"), message: body.message, folder });
    if (await strong.writeGoesToLeader(folder)) return toLeader();
    return strong.orToLeader(() => restoreHere(c, folder, body), toLeader);
  });

  // Handed over by a member that took them from a client (strong-routes.ts); behind the cluster token.
  app.post("/v1/peer/strong/commit", async (c) => {
    const body = await readJson(c);
    const from = requireNodeId(body.from, "from");
    const request = commitRequest(requireFolderName(body.folder, "folder"), body);
    strong.requireLeader();
    await strong.fetchFromForwarder(from, request.root);
    return commitHere(c, request);
  });

  app.post("/v1/peer/strong/restore", async (c) => {
    const body = await readJson(c);
    requireNodeId(body.from, "from");
    const folder = requireFolderName(body.folder, "folder");
    strong.requireLeader();
    return restoreHere(c, folder, body);
  });

  // ----- maintenance -----

  app.post("/v1/gc", async (c) => {
    const body = await readJson(c, true);
    const report = await node.gc({
      graceMs: body.graceMs === undefined ? undefined : optionalCount(body.graceMs, "graceMs", 0),
      dryRun: body.dryRun === true,
    });
    metrics?.observeGc(report);
    return c.json(report);
  });

  app.post("/v1/verify", async (c) => {
    const body = await readJson(c, true);
    if (body.repair !== undefined && typeof body.repair !== "boolean") throw new UserError("repair must be true or false");
    const report = await node.verify({ repair: body.repair === true });
    metrics?.observeVerify(report);
    return c.json(report);
  });

  // ----- replication status -----

  app.get("/v1/status", async (c) => {
    const replicator = options.replicator;
    const folders = [];
    // At most a page of folders (the first by name); `foldersTotal` says how many there are, and
    // GET /v1/folders pages through all of them.
    const scope = scopedFolders(c);
    const listed = scope === null ? await node.listFoldersPage(LIMITS.foldersPageMax) : await foldersIn(scope);
    for (const folder of listed.folders) {
      // The head's record says what the folder holds now and which node wrote it, and when.
      const head = folder.head ? await node.getVersion(folder.name, folder.head) : undefined;
      folders.push({
        name: folder.name,
        mode: folder.mode,
        head: folder.head ? idToHex(folder.head) : null,
        vector: vectorToRecord(await node.vectorOf(folder.head)),
        files: head?.files ?? 0,
        bytes: head?.totalBytes ?? 0,
        lastChangeMs: head?.hlcWallMs ?? null,
        changedBy: head?.author ?? null,
        changeOrigin: head?.origin ?? null,
        peers: replicator ? await replicator.folderStatus(folder.name) : [],
      });
    }
    const peers = (replicator?.peerStates() ?? []).map((peer) => ({
      address: peer.address,
      node: peer.node,
      reachable: peer.reachable,
      lastContactMs: peer.lastContactMs,
      // A failed pull's message names its folder (and the peer's words about it): not for a token that may not see that folder.
      lastError: scope === null || peer.lastErrorFolder === null || scope.includes(peer.lastErrorFolder) ? peer.lastError : "replicating failed (an admin token sees why)",
    }));
    const repair = options.repairer?.stats;
    const objects = { ...(await node.corruptionStatus()), repair: repair ? { ...repair } : null, scrub: options.scrubber?.stats ?? null };
    const foldersTotal = listed.next === null ? folders.length : await node.countFolders();
    const { backend, sizeBytes } = await node.metadataStat();
    const status: NodeStatus = {
      node: node.nodeId,
      version: options.version ?? "dev",
      nowMs: node.clock.nowMs(),
      peers,
      folders,
      foldersTotal,
      replication: replicator ? { ...replicator.stats } : null,
      objects,
      metadata: { backend, sizeBytes },
      consensus: options.consensus ? options.consensus.status() : null,
    };
    return c.json(status);
  });

  return app;
}
