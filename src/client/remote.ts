// The HTTP client for a node's API. Each failure becomes a RemoteError with a kind the CLI can
// turn into its own message: the node is unreachable, the token is wrong, a thing is missing,
// the node is out of disk space, or the node refused the request (with its reason).
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { validateFolderName, validateVersionRef } from "../core/names.ts";
import type { StoredObject } from "../store/object-store.ts";
import { commitReply, folderPageReply, folderReply, MalformedReplyError, statusReply, versionPageReply, versionReply, type ListPage } from "./reply-shapes.ts";
import { UsageError } from "./sync-target.ts";
import { createdTokenReply, tokenInfoReply, tokenListReply, type TokenInfo } from "./token-replies.ts";
import {
  compressIfWorthIt,
  ZSTD_LEVEL_UPLOAD,
  decodeDownloadReply,
  decodeIdList,
  decompressBody,
  encodeIdList,
  readAtMost,
} from "../wire/formats.ts";
import type { CommitJson, FolderJson, VersionJson } from "../wire/api-json.ts";
import type { VerifyReport } from "../node/node.ts";

export type FolderInfo = FolderJson;
export type VersionInfo = VersionJson;
export type CommitInfo = CommitJson;

export interface NodeStatus {
  node: string;
  /** The node's program version, and its clock when it answered (for "how long ago"). */
  version?: string;
  nowMs?: number;
  peers: { address: string; node: string | null; reachable: boolean | null; lastContactMs: number | null; lastError: string | null }[];
  folders: {
    name: string;
    mode: string;
    head: string | null;
    vector: Record<string, number>;
    /** What the head holds, when it was written (its wall clock) and by which node; absent from older nodes. */
    files?: number;
    bytes?: number;
    lastChangeMs?: number | null;
    changedBy?: string | null;
    changeOrigin?: string | null;
    /** `lagMs`: how long this node has lacked writes the peer has (0 when it lacks none). */
    peers: { peer: string; node: string | null; head: string | null; state: string; behindWrites: number; aheadWrites: number; lagMs?: number }[];
  }[];
  /** How many folders the node has: `folders` holds at most a page of them (the first by name); absent from older nodes. */
  foldersTotal?: number;
  replication: Record<string, number> | null;
  /** Objects found corrupt: quarantined now, repaired since, and with no copy on any peer. */
  objects?: {
    quarantined: number;
    repaired: number;
    unrepairable: number;
    repair: Record<string, number> | null;
    scrub: { bytesPerSecond: number; passes: number; checkedObjects: number; checkedBytes: number; corruptFound: number; position: string | null } | null;
  };
}

export type RemoteErrorKind = "unreachable" | "unauthorized" | "not-found" | "conflict" | "out-of-space" | "rejected" | "server";

export class RemoteError extends Error {
  override name = "RemoteError";
  constructor(readonly kind: RemoteErrorKind, message: string, readonly status?: number, readonly body?: Record<string, unknown>) {
    super(message);
  }
}

/** An error reply is a sentence: more than this is not read (the reason is then the HTTP status text). */
export const ERROR_REPLY_BYTES_MAX = 64 * 1024;
/** The largest reply read at all, compressed or not (the same bound as inflating one). */
export const REPLY_BYTES_MAX = LIMITS.requestBodyBytesMax * 2;

/** Counts what crosses the wire, for push/pull reports and benchmarks. */
export interface TransferCounters {
  requests: number;
  wireBytesSent: number;
  wireBytesReceived: number;
}

export class RemoteNode {
  readonly counters: TransferCounters = { requests: 0, wireBytesSent: 0, wireBytesReceived: 0 };
  readonly baseUrl: string;
  /**
   * The folder this remote's object transfers serve: the last one a request named (a pull reads
   * its folder first). Sent as X-Dsync-Folder with object requests, only so the node can say in
   * its events which folder a pull moved bytes for; objects themselves belong to no folder.
   */
  private folderInUse: string | null = null;

  constructor(baseUrl: string, private readonly token?: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  private async request(method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<Response> {
    const allHeaders: Record<string, string> = { ...headers };
    if (this.token) allHeaders.authorization = `Bearer ${this.token}`;
    const named = /^\/v1\/folders\/([A-Za-z0-9._-]+)(?:[/?]|$)/.exec(path);
    if (named) this.folderInUse = named[1]!;
    if (this.folderInUse !== null && path.startsWith("/v1/objects/")) allHeaders["x-dsync-folder"] = this.folderInUse;
    let response: Response;
    this.counters.requests++;
    if (body !== undefined) this.counters.wireBytesSent += typeof body === "string" ? Buffer.byteLength(body) : body.length;
    try {
      response = await fetch(this.baseUrl + path, { method, body: body as BodyInit | undefined, headers: allHeaders, decompress: false } as RequestInit);
    } catch (error) {
      throw new RemoteError("unreachable", `cannot reach the dsync node at ${this.baseUrl}: ${(error as Error).message} (is it running? check --remote or DSYNC_REMOTE)`);
    }
    if (response.ok) return response;
    let detail: Record<string, unknown> = {};
    try {
      const bytes = await readAtMost(response, ERROR_REPLY_BYTES_MAX);
      if (bytes) detail = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    } catch {}
    if (typeof detail !== "object" || detail === null) detail = {};
    const reason = typeof detail.error === "string" ? detail.error : response.statusText;
    if (response.status === 401 || response.status === 403) {
      throw new RemoteError("unauthorized", `the node at ${this.baseUrl} refused the token: ${reason} (set DSYNC_TOKEN)`, response.status, detail);
    }
    if (response.status === 404) throw new RemoteError("not-found", reason, 404, detail);
    if (response.status === 409) throw new RemoteError("conflict", reason, 409, detail);
    if (response.status === 507) {
      throw new RemoteError("out-of-space", `the node at ${this.baseUrl} is out of disk space (507); free space on the node and push again`, 507, detail);
    }
    if (response.status === 503 && Array.isArray(detail.corrupt)) {
      // Not "missing": the node had the object, found its copy damaged, and waits for a good one.
      throw new RemoteError(
        "server",
        `the node at ${this.baseUrl} holds only a damaged copy (503): ${reason}; try again once it is repaired (dsync status counts what awaits repair)`,
        503,
        detail,
      );
    }
    if (response.status >= 500) throw new RemoteError("server", `the node at ${this.baseUrl} failed (${response.status}): ${reason}; its log says why`, response.status, detail);
    throw new RemoteError("rejected", `the node at ${this.baseUrl} rejected the request (${response.status}): ${reason}`, response.status, detail);
  }

  private async bytesOf(response: Response): Promise<Uint8Array> {
    const raw = await readAtMost(response, REPLY_BYTES_MAX);
    if (!raw) {
      const mib = REPLY_BYTES_MAX / (1024 * 1024);
      throw new RemoteError("server", `the node at ${this.baseUrl} sent a reply larger than ${mib} MiB, which is not read (for a long history, dsync log --limit N)`, response.status);
    }
    this.counters.wireBytesReceived += raw.length;
    return decompressBody(raw, response.headers.get("content-encoding"), LIMITS.requestBodyBytesMax * 2);
  }

  /** A folder's part of a route, checked by the rule the node applies, before anything is sent. */
  private folderPath(name: string): string {
    const problem = validateFolderName(name);
    if (problem) throw new UsageError(`folder name ${JSON.stringify(name)}: ${problem}`);
    return `/v1/folders/${name}`;
  }

  /** A version id or prefix, checked by the node's rule before it is sent. */
  private versionRef(text: string): string {
    const problem = validateVersionRef(text);
    if (problem) throw new UsageError(`version ${JSON.stringify(text)}: ${problem}`);
    return text;
  }

  /** A JSON reply passed through its shape check (reply-shapes.ts); a malformed one is the node's failure. */
  private async checkedJson<T>(parse: (value: unknown) => T, method: string, path: string, body?: unknown): Promise<T> {
    const value = await this.json<unknown>(method, path, body);
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof MalformedReplyError)) throw error;
      throw new RemoteError("server", `the node at ${this.baseUrl} sent a malformed reply to ${method} ${path}: ${error.message}`);
    }
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const response = await this.request(method, path, text, text === undefined ? {} : { "content-type": "application/json" });
    const bytes = await this.bytesOf(response);
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  }

  health(): Promise<{ ok: boolean; node: string; version: string }> {
    return this.json("GET", "/v1/health");
  }

  /** The ids the node lacks, in the order given. */
  async missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    const out: ObjectId[] = [];
    const step = 16_384;
    for (let i = 0; i < ids.length; i += step) {
      const response = await this.request("POST", "/v1/objects/missing", encodeIdList(ids.slice(i, i + step)), { "content-type": "application/msgpack" });
      out.push(...decodeIdList(await this.bytesOf(response), "missing"));
    }
    return out;
  }

  /** Uploads a batch encoded as a msgpack array of [id, bytes] pairs (compressed when that pays); returns the bytes put on the wire. */
  async uploadEncoded(batch: Uint8Array): Promise<number> {
    const { body, encoding } = compressIfWorthIt(batch, ZSTD_LEVEL_UPLOAD);
    const headers: Record<string, string> = { "content-type": "application/msgpack" };
    if (encoding) headers["content-encoding"] = encoding;
    await this.request("POST", "/v1/objects/upload", body, headers);
    return body.length;
  }

  async download(ids: readonly ObjectId[]): Promise<{ objects: StoredObject[]; missing: ObjectId[] }> {
    const response = await this.request("POST", "/v1/objects/download", encodeIdList(ids), {
      "content-type": "application/msgpack",
      "accept-encoding": "zstd",
    });
    return decodeDownloadReply(await this.bytesOf(response));
  }

  async getObject(id: ObjectId): Promise<Uint8Array | undefined> {
    try {
      return await this.bytesOf(await this.request("GET", `/v1/objects/${idToHex(id)}`));
    } catch (error) {
      if (error instanceof RemoteError && error.kind === "not-found") return undefined;
      throw error;
    }
  }

  /** Every folder on the node, asked for one page at a time. */
  async listFolders(): Promise<FolderInfo[]> {
    const folders: FolderInfo[] = [];
    for await (const page of this.folderPages()) folders.push(...page);
    return folders;
  }

  /** The node's folders by name, one page at a time. */
  folderPages(): AsyncGenerator<FolderInfo[]> {
    return this.pages(folderPageReply, "/v1/folders", LIMITS.foldersPageMax, Number.POSITIVE_INFINITY);
  }

  /** The folder, or undefined when the node has no folder of that name. */
  async getFolder(name: string): Promise<FolderInfo | undefined> {
    try {
      const folder = await this.checkedJson(folderReply, "GET", this.folderPath(name));
      if (folder.name !== name) throw new RemoteError("server", `the node at ${this.baseUrl} answered for folder ${JSON.stringify(folder.name)} when asked for ${JSON.stringify(name)}`);
      return folder;
    } catch (error) {
      if (error instanceof RemoteError && error.kind === "not-found") return undefined;
      throw error;
    }
  }

  /**
   * A folder's versions, newest first, at most `totalMax`, one page at a time: only the page
   * being read is held, however long the history.
   */
  versionPages(folder: string, totalMax = Number.POSITIVE_INFINITY): AsyncGenerator<VersionInfo[]> {
    return this.pages(versionPageReply, `${this.folderPath(folder)}/versions`, LIMITS.versionsPageMax, totalMax);
  }

  /**
   * Follows a list route's `next` cursors (docs/api.md, Paging) until the last page or `totalMax`
   * items. A node that hands back the cursor it was given, or an empty page with a cursor, would
   * have the client page forever: that is an error naming the node.
   */
  private async *pages<T>(parse: (value: unknown) => ListPage<T>, path: string, pageMax: number, totalMax: number): AsyncGenerator<T[]> {
    let cursor: string | null = null;
    let remaining = totalMax;
    while (remaining > 0) {
      const params = new URLSearchParams({ limit: String(Math.min(pageMax, remaining)) });
      if (cursor !== null) params.set("cursor", cursor);
      const page: ListPage<T> = await this.checkedJson(parse, "GET", `${path}?${params}`);
      const items = page.items.slice(0, remaining);
      remaining -= items.length;
      if (items.length > 0) yield items;
      if (page.next === null) return;
      if (page.next === cursor || page.items.length === 0) {
        throw new RemoteError("server", `the node at ${this.baseUrl} sent a page of ${path} that does not advance (cursor ${JSON.stringify(page.next.slice(0, 64))})`);
      }
      cursor = page.next;
    }
  }

  getVersion(folder: string, idOrPrefix: string): Promise<VersionInfo> {
    return this.checkedJson(versionReply, "GET", `${this.folderPath(folder)}/versions/${this.versionRef(idOrPrefix)}`);
  }

  commit(folder: string, body: { root: string; parent: string | null; message: string; chunking: string; files: number; bytes: number }): Promise<CommitInfo> {
    return this.checkedJson(commitReply, "POST", `${this.folderPath(folder)}/commit`, body);
  }

  restore(folder: string, version: string, message?: string): Promise<CommitInfo> {
    return this.checkedJson(commitReply, "POST", `${this.folderPath(folder)}/restore`, { version: this.versionRef(version), message });
  }

  setRetention(folder: string, retention: { keepVersions?: number | null; keepDays?: number | null }): Promise<FolderInfo> {
    return this.json("PUT", `${this.folderPath(folder)}/retention`, retention);
  }

  gc(options: { graceMs?: number; dryRun?: boolean }): Promise<Record<string, unknown>> {
    return this.json("POST", "/v1/gc", options);
  }

  /** Replication status: per folder and per peer (GET /v1/status). */
  status(): Promise<NodeStatus> {
    return this.checkedJson(statusReply, "GET", "/v1/status");
  }

  /** Re-hash and check everything; with `repair`, fetch what is corrupt or missing from the node's peers (POST /v1/verify). */
  verify(options: { repair?: boolean } = {}): Promise<VerifyReport> {
    return this.json("POST", "/v1/verify", { repair: options.repair === true });
  }

  /** Makes a token (POST /v1/tokens, admin); the answer is the only place the token appears. */
  createToken(spec: { role: string; folders: readonly string[]; name: string; expiresInMs: number | null }): Promise<TokenInfo & { token: string }> {
    return this.checkedJson(createdTokenReply, "POST", "/v1/tokens", spec);
  }

  /** Every token's record, never a token (GET /v1/tokens, admin). */
  listTokens(): Promise<TokenInfo[]> {
    return this.checkedJson(tokenListReply, "GET", "/v1/tokens");
  }

  /** Revokes a token by id (DELETE /v1/tokens/:tokenId, admin); revoking twice keeps the first time. */
  revokeToken(id: string): Promise<TokenInfo> {
    return this.checkedJson(tokenInfoReply, "DELETE", `/v1/tokens/${encodeURIComponent(id)}`);
  }
}
