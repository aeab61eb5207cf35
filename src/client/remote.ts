// The HTTP client for a node's API. Each failure becomes a RemoteError with a kind the CLI can
// turn into its own message: the node is unreachable or stopped answering, the server is not a
// dsync node, the token is wrong, a thing is missing, the node is out of disk space, or the node
// refused the request (with its reason). Every request is bounded in time and in reply size
// (node-request.ts, reply-limits.ts) and the idempotent ones are tried again when that can help
// (request-retry.ts).
import { idToHex, type ObjectId } from "../core/id.ts";
import { decodeSignaturesReply, type SignaturesReply } from "../wire/signatures-reply.ts";
import { parseJsonBounded } from "../core/json-shape.ts";
import { LIMITS } from "../core/limits.ts";
import { validateFolderName, validateVersionRef } from "../core/names.ts";
import { terminalLines, truncateText } from "../core/terminal-text.ts";
import type { StoredObject } from "../store/object-store.ts";
import { commitReply, folderPageReply, folderReply, MalformedReplyError, statusReply, versionPageReply, versionReply, type ListPage } from "./reply-shapes.ts";
import { UsageError } from "./sync-target.ts";
import { createdTokenReply, tokenInfoReply, tokenListReply, TOKENS_REPLY_BYTES_MAX, type TokenInfo } from "./token-replies.ts";
import { BodyTooLargeError, decodeDownloadReply, decodeMissingReply, decompressBody, encodeIdList } from "../wire/formats.ts";
import { LACKING_BITS_REPLY } from "../wire/id-list.ts";
import { NODE_ID_HEADER } from "../wire/node-header.ts";
import { attemptRequest, CONNECT_TIMEOUT_MS_DEFAULT, replyTooLarge, routeOf, type NodeReply, type RequestTimeouts } from "./node-request.ts";
import { RemoteError } from "./remote-error.ts";
import { DEFAULT_RETRY_POLICY, parseRetryAfterMs, withRetries, type RetryDecision, type RetryPolicy } from "./request-retry.ts";
import { idleTimeoutMs } from "./request-settings.ts";
import {
  COMMIT_REPLY_BYTES_MAX,
  downloadReplyBytesMax,
  ERROR_REPLY_BYTES_MAX,
  FOLDER_PAGE_BYTES_MAX,
  JSON_REPLY_BYTES_MAX,
  missingReplyBytesMax,
  OBJECT_REPLY_BYTES_MAX,
  STATUS_REPLY_BYTES_MAX,
  VERIFY_REPLY_BYTES_MAX,
  VERSION_PAGE_BYTES_MAX,
} from "./reply-limits.ts";
import type { CommitJson, FolderJson, VersionJson } from "../wire/api-json.ts";
import type { TlsTrust } from "../wire/tls-trust.ts";
import { tlsTrustFor } from "./tls-settings.ts";
import { COMPRESS_AUTO, UploadCompression, type CompressSetting } from "./upload-compression.ts";
import { splitBatch } from "./batch-frames.ts";
import type { NodeStatus } from "../wire/node-status.ts";
import type { VerifyReport } from "../wire/verify-report.ts";

export type FolderInfo = FolderJson;
export type VersionInfo = VersionJson;
export type CommitInfo = CommitJson;

export type { NodeStatus, VerifyReport };

export { RemoteError, type RemoteErrorKind } from "./remote-error.ts";
export { ERROR_REPLY_BYTES_MAX } from "./reply-limits.ts";

/** How a RemoteNode sends: its timeouts, retries, where it says it retries, and TLS options for fetch. */
export interface RemoteOptions {
  /** Default: 10 s to connect, the idle timeout of request-settings.ts (--timeout, DSYNC_TIMEOUT, 60 s). */
  timeouts?: Partial<RequestTimeouts>;
  retry?: Partial<RetryPolicy>;
  /** Where a retry is said; default stderr (never stdout: --json output stays one document). */
  notice?: (line: string) => void;
  /** Passed to fetch as its `tls` option. */
  tls?: Record<string, unknown>;
  /** Whom an https:// node must prove to be (a pinned fingerprint, --ca, or the system roots), and how a failure is said: src/wire/tls-trust.ts. */
  trust?: TlsTrust;
  /** How much longer than the idle timeout an answer that comes only once the node's work is done is awaited; default NODE_WORK_HOLD_MS. */
  workHoldMs?: number;
  /**
   * Read strong folders without the linearizable barrier (`?stale=1`): the node answers from what
   * it has applied, which may be behind the leader, and answers on a minority side too.
   */
  stale?: boolean;
  /** Upload batches compressed as `--compress` says (upload-compression.ts); default auto. */
  compress?: CompressSetting;
}

/** What one request needs besides its method, path and body. */
interface SendOptions {
  /** The most bytes of a successful reply (reply-limits.ts). */
  replyBytesMax: number;
  /** Sending it twice does what sending it once does: it is tried again on a broken connection or a 502/503/504. */
  idempotent: boolean;
  headers?: Record<string, string>;
  /** A long poll: the node holds its answer up to this long on purpose. */
  holdMs?: number;
  signal?: AbortSignal;
  /** False: one attempt only (a caller that polls again anyway). */
  retry?: boolean;
}

/**
 * A commit, a restore, a gc and a verify are answered only once their work is done (a commit
 * checks the whole tree; gc and verify go over the store): the headers are awaited this much
 * longer than the idle timeout, as long as the node keeps a quiet connection (its Bun.serve
 * idleTimeout), so no client gives up on work the node would finish.
 */
export const NODE_WORK_HOLD_MS = 120_000;

/**
 * A commit's answer is awaited this much longer again per file it names. Its check reads every
 * object the node has not checked before: a first commit of 1 000 000 files, some 2 000 000
 * objects, took 37-66 s on a 2-core machine as its load went from 2.5 to 6 (docs/benchmarks.md,
 * Commit check), and a node under heavier load took several minutes. 1 ms per
 * file (17 minutes more for 1 000 000 files) leaves that margin many times over, whatever size
 * of tree the node takes (it sets no bound on files), so a commit that lands is not reported
 * failed (and is never sent again: it is not idempotent). A small push keeps the short wait.
 */
export const COMMIT_HOLD_MS_PER_FILE = 1;

/** How long past the idle timeout the answer to a commit of `files` files is awaited. */
export function commitHoldMs(files: number, workHoldMs: number = NODE_WORK_HOLD_MS): number {
  return workHoldMs + Math.max(0, files) * COMMIT_HOLD_MS_PER_FILE;
}

/** The longest reason of a node's error reply kept in a message. */
const REASON_CHARS_MAX = 500;

/** Counts what crosses the wire, for push/pull reports and benchmarks. */
export interface TransferCounters {
  requests: number;
  wireBytesSent: number;
  wireBytesReceived: number;
}

/** The upload item kind of an object sent as a zstd frame of its own, as a node lists it in GET /v1/health "uploadItems". */
const FRAME_ITEM_KIND = 1;

export class RemoteNode {
  readonly counters: TransferCounters = { requests: 0, wireBytesSent: 0, wireBytesReceived: 0 };
  readonly baseUrl: string;
  /** Whether each upload batch goes compressed, from what this remote's uploads measured. */
  readonly uploadCompression: UploadCompression;
  /**
   * The folder this remote's object transfers serve: the last one a request named (a pull reads
   * its folder first). Sent as X-Dsync-Folder with object requests, only so the node can say in
   * its events which folder a pull moved bytes for; objects themselves belong to no folder.
   */
  private folderInUse: string | null = null;

  /**
   * Names the folder this remote's object transfers serve from now on, before any request names
   * it (a push uploads before its commit): the node tells its peers per folder what each upload
   * stored, so they fetch it while the push goes on.
   */
  useFolder(name: string): void {
    if (validateFolderName(name) === undefined) this.folderInUse = name;
  }
  readonly timeouts: RequestTimeouts;
  private readonly retryPolicy: RetryPolicy;
  private readonly notice: (line: string) => void;
  private readonly tls?: Record<string, unknown>;
  private readonly trust?: TlsTrust;
  private readonly workHoldMs: number;
  /** Folder reads say `stale=1` (RemoteOptions.stale). */
  private readonly stale: boolean;
  /** A reply came since the last failure to connect: requests skip the connect check (connect-check.ts). */
  private reached = false;
  /** A reply ever came: a refused connection later means the node went away (restarting?), worth another try. */
  private answeredOnce = false;
  /** Whether this is a dsync node at all, asked once (GET /v1/health), on the first reply that does not look like one. */
  private nodeCheck: Promise<void> | undefined;

  constructor(baseUrl: string, private readonly token?: string, options: RemoteOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.timeouts = {
      connectTimeoutMs: options.timeouts?.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT,
      idleTimeoutMs: options.timeouts?.idleTimeoutMs ?? idleTimeoutMs(),
    };
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.notice = options.notice ?? ((line) => process.stderr.write(terminalLines([`dsync: ${line}`])));
    this.tls = options.tls;
    this.workHoldMs = options.workHoldMs ?? NODE_WORK_HOLD_MS;
    this.stale = options.stale === true;
    this.uploadCompression = new UploadCompression(options.compress ?? COMPRESS_AUTO);
    // Unless told otherwise, what this process chose (--tls-fingerprint, DSYNC_TLS_FINGERPRINT, a remembered pin, --ca).
    this.trust = options.trust ?? (options.tls ? undefined : tlsTrustFor(this.baseUrl));
  }

  /** The `tls` option of the next request: the trust's (a pin is anchored once, by a probe), else the one given. */
  private async tlsOptions(): Promise<Record<string, unknown> | undefined> {
    if (!this.trust) return this.tls;
    try {
      return (await this.trust.fetchOptions()).tls;
    } catch (error) {
      throw new RemoteError("unreachable", (error as Error).message);
    }
  }

  /** A failure to reach the node, said as the TLS reason when that was it (wrong certificate, wrong scheme). */
  private async explainUnreachable(error: RemoteError): Promise<RemoteError> {
    const reason = await this.trust?.explain(error);
    return reason ? new RemoteError("unreachable", reason.message) : error;
  }

  /**
   * Sends a request and reads its reply within the route's bound; a reply that is not a success
   * becomes a RemoteError (replyError). Idempotent requests are tried again on a broken
   * connection or a busy node; any request is tried again when its connection was refused after
   * the node had answered (nothing reached it). A commit or a restore is therefore never sent
   * twice when its first answer was lost: whether it landed is then unknown, and the error says
   * how to find out.
   */
  private async send(method: string, path: string, body: Uint8Array | string | undefined, options: SendOptions): Promise<NodeReply> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const named = /^\/v1\/folders\/([A-Za-z0-9._-]+)(?:[/?]|$)/.exec(path);
    if (named) this.folderInUse = named[1]!;
    if (this.folderInUse !== null && path.startsWith("/v1/objects/")) headers["x-dsync-folder"] = this.folderInUse;
    const route = routeOf(method, path);
    const attempt = async (): Promise<NodeReply> => {
      this.counters.requests++;
      if (body !== undefined) this.counters.wireBytesSent += typeof body === "string" ? Buffer.byteLength(body) : body.length;
      let reply: NodeReply;
      const tls = await this.tlsOptions();
      try {
        reply = await attemptRequest(
          this.baseUrl,
          { method, path, body, headers, replyBytesMax: options.replyBytesMax, errorBytesMax: ERROR_REPLY_BYTES_MAX, holdMs: options.holdMs, signal: options.signal },
          { timeouts: this.timeouts, checkConnect: !this.reached, tls },
        );
      } catch (error) {
        if (error instanceof RemoteError && error.kind === "unreachable") {
          this.reached = false;
          // A connection that carried the node's headers was no TLS mismatch: nothing to probe.
          if (this.trust && error.transient !== "not-sent" && !error.answered) {
            const explained = await this.explainUnreachable(error);
            if (explained !== error) throw explained;
          }
        }
        if (error instanceof RemoteError && error.transient === "interrupted" && !options.idempotent) {
          throw new RemoteError(
            "unreachable",
            `${error.message}; the node may have done ${route} before the connection broke (it is not sent again: dsync log or dsync status shows whether it did)`,
          );
        }
        throw error;
      }
      this.reached = true;
      this.answeredOnce = true;
      if (reply.status >= 200 && reply.status < 300) {
        this.counters.wireBytesReceived += reply.bytes!.length;
        return reply;
      }
      throw await this.replyError(reply, route);
    };
    if (options.retry === false) return attempt();
    return withRetries(route, attempt, (error) => this.retryDecision(error, options.idempotent), this.retryPolicy, this.notice);
  }

  private retryDecision(error: unknown, idempotent: boolean): RetryDecision | undefined {
    if (!(error instanceof RemoteError) || error.transient === undefined) return undefined;
    // Refused: nothing reached the node. On the first contact it is simply not running (said at
    // once); after it answered, it may be restarting.
    if (error.transient === "not-sent") return this.answeredOnce ? { reason: "connection refused" } : undefined;
    if (!idempotent) return undefined;
    if (error.transient === "interrupted") return { reason: "the connection closed before the whole answer came" };
    const reason = typeof error.body?.error === "string" ? truncateText(error.body.error, 200) : "";
    return { reason: `${error.status}${reason ? ` ${reason}` : ""}`, retryAfterMs: error.retryAfterMs };
  }

  /**
   * Asks GET /v1/health once (the first time a reply does not look like a dsync node's: no
   * X-Dsync-Node header and no JSON error): when that is not a dsync node's health either, the
   * server at the URL is something else (a web server, another service, a wrong port), said in
   * one line. When the check itself cannot be made, the original failure is reported.
   */
  private confirmDsyncNode(): Promise<void> {
    this.nodeCheck ??= (async () => {
      let reply: NodeReply;
      try {
        reply = await attemptRequest(
          this.baseUrl,
          { method: "GET", path: "/v1/health", headers: {}, replyBytesMax: JSON_REPLY_BYTES_MAX, errorBytesMax: ERROR_REPLY_BYTES_MAX },
          { timeouts: this.timeouts, checkConnect: false, tls: await this.tlsOptions() },
        );
      } catch {
        return;
      }
      let health: unknown;
      try {
        health = parseJsonBounded(reply.bytes ?? new Uint8Array(0));
      } catch {}
      const h = health as { ok?: unknown; node?: unknown; metadata?: unknown } | undefined;
      if (reply.status === 200 && typeof h === "object" && h !== null && h.ok === true && typeof h.node === "string") return;
      // A dsync node whose metadata store is away answers its health with 503 (docs/api.md): still a dsync node.
      if (reply.status === 503 && typeof h === "object" && h !== null && h.ok === false && typeof h.node === "string" && h.metadata === "unavailable") return;
      const what = reply.status === 200 ? " with something other than a dsync node's health" : "";
      throw new RemoteError("not-a-node", `${this.baseUrl} is not a dsync node: GET /v1/health answered ${reply.status}${what} (check --remote or DSYNC_REMOTE)`, reply.status);
    })();
    return this.nodeCheck;
  }

  /** A reply that is not a success, as the RemoteError the CLI shows: the node's own words, or what the server is. */
  private async replyError(reply: NodeReply, route: string): Promise<RemoteError> {
    let detail: Record<string, unknown> = {};
    if (reply.bytes !== null && reply.bytes.length > 0) {
      try {
        const value = parseJsonBounded(decompressBody(reply.bytes, reply.headers.get("content-encoding"), ERROR_REPLY_BYTES_MAX));
        if (typeof value === "object" && value !== null && !Array.isArray(value)) detail = value as Record<string, unknown>;
      } catch {}
    }
    const hasReason = typeof detail.error === "string";
    // A dsync node marks every answer; an older one is known by its JSON error.
    if (!reply.headers.has(NODE_ID_HEADER) && !hasReason) await this.confirmDsyncNode();
    const reason = hasReason ? truncateText(detail.error as string, REASON_CHARS_MAX) : reply.statusText || `HTTP ${reply.status}`;
    const status = reply.status;
    if (status === 401 || status === 403) {
      return new RemoteError("unauthorized", `the node at ${this.baseUrl} refused the token: ${reason} (set DSYNC_TOKEN or --token-file)`, status, detail);
    }
    if (status === 404) return new RemoteError("not-found", reason, 404, detail);
    if (status === 409) return new RemoteError("conflict", reason, 409, detail);
    if (status === 503 && "leader" in detail) {
      // The strong mode's 503 (docs/api.md): no leader able to serve now, or this node is on a minority side.
      const leader = detail.leader as { id?: unknown; address?: unknown } | null;
      const known = leader && typeof leader.address === "string" ? ` (the leader it knows is ${truncateText(leader.address, 200)})` : " (it knows no leader now)";
      const error = new RemoteError("server", `the node at ${this.baseUrl} cannot serve a strong folder now (503): ${reason}${known}; try again in a moment`, 503, detail);
      error.transient = "busy";
      error.retryAfterMs = parseRetryAfterMs(reply.headers.get("retry-after"), this.retryPolicy.nowMs());
      return error;
    }
    if (status === 507) {
      return new RemoteError("out-of-space", `the node at ${this.baseUrl} is out of disk space (507); free space on the node and push again`, 507, detail);
    }
    if (status === 503 && Array.isArray(detail.corrupt)) {
      // Not "missing": the node had the object, found its copy damaged, and waits for a good one.
      return new RemoteError(
        "server",
        `the node at ${this.baseUrl} holds only a damaged copy (503): ${reason}; try again once it is repaired (dsync status counts what awaits repair)`,
        503,
        detail,
      );
    }
    if (status === 502 || status === 503 || status === 504) {
      const error = new RemoteError("server", `the node at ${this.baseUrl} is not available (${status}) for ${route}: ${reason}; try again later`, status, detail);
      error.transient = "busy";
      error.retryAfterMs = parseRetryAfterMs(reply.headers.get("retry-after"), this.retryPolicy.nowMs());
      return error;
    }
    if (status >= 500) return new RemoteError("server", `the node at ${this.baseUrl} failed (${status}): ${reason}; its log says why`, status, detail);
    return new RemoteError("rejected", `the node at ${this.baseUrl} rejected the request (${status}): ${reason}`, status, detail);
  }

  /**
   * A successful reply's body, inflated within `maxBytes`, decoded by `decode`. A reply that
   * cannot be decoded is the node's failure, or (with no X-Dsync-Node header) a sign that this
   * is not a dsync node at all, which is asked before saying so.
   */
  private async decoded<T>(reply: NodeReply, route: string, maxBytes: number, decode: (bytes: Uint8Array) => T): Promise<T> {
    try {
      return decode(decompressBody(reply.bytes!, reply.headers.get("content-encoding"), maxBytes));
    } catch (error) {
      if (error instanceof BodyTooLargeError) throw replyTooLarge(route, this.baseUrl, maxBytes);
      if (!reply.headers.has(NODE_ID_HEADER)) await this.confirmDsyncNode();
      throw new RemoteError("server", `the node at ${this.baseUrl} sent a reply to ${route} that cannot be read: ${(error as Error).message}`);
    }
  }

  /** A folder's part of a route, checked by the rule the node applies, before anything is sent. */
  private folderPath(name: string): string {
    const problem = validateFolderName(name);
    if (problem) throw new UsageError(`folder name ${JSON.stringify(name)}: ${problem}`);
    return `/v1/folders/${name}`;
  }

  /** `stale=1` after `lead` when this remote reads strong folders without the barrier, else nothing. */
  private staleQuery(lead: "?" | "&"): string {
    return this.stale ? `${lead}stale=1` : "";
  }

  /** A version id or prefix, checked by the node's rule before it is sent. */
  private versionRef(text: string): string {
    const problem = validateVersionRef(text);
    if (problem) throw new UsageError(`version ${JSON.stringify(text)}: ${problem}`);
    return text;
  }

  /** A JSON reply passed through its shape check (reply-shapes.ts); a malformed one is the node's failure. */
  private async checkedJson<T>(parse: (value: unknown) => T, method: string, path: string, body: unknown, options: SendOptions): Promise<T> {
    const { value, marked } = await this.jsonReply(method, path, body, options);
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof MalformedReplyError)) throw error;
      // JSON, but not the API's: another service answering on this address?
      if (!marked) await this.confirmDsyncNode();
      throw new RemoteError("server", `the node at ${this.baseUrl} sent a malformed reply to ${method} ${path}: ${error.message}`);
    }
  }

  /** A JSON reply, and whether it carried the node's mark (X-Dsync-Node). */
  private async jsonReply(method: string, path: string, body: unknown, options: SendOptions): Promise<{ value: unknown; marked: boolean }> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = text === undefined ? {} : { "content-type": "application/json" };
    const reply = await this.send(method, path, text, { ...options, headers });
    // Past the JSON body bound a reply may hold more values than LIMITS.jsonValuesMax (a merge's
    // conflicts): then at most one per 8 bytes, so its memory still follows its size.
    const valuesMax = (bytes: Uint8Array) => Math.max(LIMITS.jsonValuesMax, Math.ceil(bytes.length / 8));
    const value = await this.decoded(reply, routeOf(method, path), options.replyBytesMax, (bytes) => parseJsonBounded(bytes, valuesMax(bytes)));
    return { value, marked: reply.headers.has(NODE_ID_HEADER) };
  }

  private async json<T>(method: string, path: string, body: unknown, options: SendOptions): Promise<T> {
    const { value, marked } = await this.jsonReply(method, path, body, options);
    if (typeof value !== "object" || value === null) {
      if (!marked) await this.confirmDsyncNode();
      throw new RemoteError("server", `the node at ${this.baseUrl} sent a reply to ${routeOf(method, path)} that is not a JSON object`);
    }
    return value as T;
  }

  health(): Promise<{ ok: boolean; node: string; version: string }> {
    return this.json("GET", "/v1/health", undefined, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true });
  }

  private itemKinds: Promise<ReadonlySet<number>> | undefined;

  /**
   * The upload item kinds beyond plain pairs the node takes (GET /v1/health "uploadItems"),
   * asked once: none from a node that predates the field or whose health cannot be read, so it
   * gets only [id, bytes] pairs.
   */
  uploadItemKinds(): Promise<ReadonlySet<number>> {
    this.itemKinds ??= this.health().then(
      (health) => {
        const list = (health as { uploadItems?: unknown }).uploadItems;
        return new Set(Array.isArray(list) ? list.filter((kind): kind is number => Number.isInteger(kind)).slice(0, 16) : []);
      },
      () => new Set<number>(),
    );
    return this.itemKinds;
  }

  /** The block signatures of old chunks the node holds (POST /v1/objects/signatures), at most LIMITS.signatureIdsMax ids. */
  async signatures(ids: readonly ObjectId[]): Promise<SignaturesReply> {
    const replyBytesMax = LIMITS.signatureReplyBytesMax + 64 * 1024 + ids.length * 8;
    const reply = await this.send("POST", "/v1/objects/signatures", encodeIdList(ids), { replyBytesMax, idempotent: true, headers: { "content-type": "application/msgpack" } });
    return this.decoded(reply, "POST /v1/objects/signatures", replyBytesMax, (bytes) => decodeSignaturesReply(bytes, ids.length));
  }

  /** The ids the node lacks, in the order given. */
  async missing(ids: readonly ObjectId[]): Promise<ObjectId[]> {
    const out: ObjectId[] = [];
    const step = LIMITS.missingQueryIds;
    for (let i = 0; i < ids.length; i += step) {
      const asked = ids.slice(i, i + step);
      const replyBytesMax = missingReplyBytesMax(asked.length);
      // Asked for bits, one per id (wire/id-list.ts); a node that answers with the ids is read too.
      const reply = await this.send("POST", "/v1/objects/missing", encodeIdList(asked, LACKING_BITS_REPLY), {
        replyBytesMax,
        idempotent: true,
        headers: { "content-type": "application/msgpack" },
      });
      out.push(...(await this.decoded(reply, "POST /v1/objects/missing", replyBytesMax, (bytes) => decodeMissingReply(bytes, asked))));
    }
    return out;
  }

  /** Uploads a batch encoded as a msgpack array of [id, bytes] pairs (compressed when that pays: upload-compression.ts); returns the bytes put on the wire. */
  async uploadEncoded(batch: Uint8Array): Promise<number> {
    // Objects go as zstd frames of their own only to a node that says it takes them (asked once).
    this.uploadCompression.framesAccepted = (await this.uploadItemKinds()).has(FRAME_ITEM_KIND);
    // A measurement of the plain rate due on a slow link: a part of the batch goes plain, the
    // rest beside it as the choice says (encoded after the part is on its way, so it is not
    // taken for a second measurement).
    const part = this.uploadCompression.plainMeasurePart(batch.length);
    const split = part === undefined ? null : splitBatch(batch, part);
    if (split) {
      const sent = await Promise.all([this.uploadOneBatch(split.head), this.uploadOneBatch(split.tail)]);
      return sent[0] + sent[1];
    }
    return this.uploadOneBatch(batch);
  }

  private async uploadOneBatch(batch: Uint8Array): Promise<number> {
    const { body, encoding, compressed } = this.uploadCompression.encode(batch);
    const headers: Record<string, string> = { "content-type": "application/msgpack" };
    if (encoding) headers["content-encoding"] = encoding;
    // Idempotent: an object is named by its content, so storing it twice stores it once.
    const upload = this.uploadCompression.startUpload(batch.length, compressed, body.length);
    try {
      await this.send("POST", "/v1/objects/upload", body, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true, headers });
    } catch (error) {
      upload.failed();
      throw error;
    }
    upload.succeeded();
    return body.length;
  }

  /**
   * A batch of objects by id. `objectBytesMax`: the most object bytes the reply can rightly hold
   * (the sum of the chunk lengths the tree names; a structured object's bound per id), so a node
   * that sends more is cut off there, not at the 64 MiB any batch may hold.
   */
  async download(ids: readonly ObjectId[], options: { objectBytesMax?: number } = {}): Promise<{ objects: StoredObject[]; missing: ObjectId[] }> {
    const replyBytesMax = downloadReplyBytesMax(ids.length, options.objectBytesMax);
    const reply = await this.send("POST", "/v1/objects/download", encodeIdList(ids), {
      replyBytesMax,
      idempotent: true,
      headers: { "content-type": "application/msgpack", "accept-encoding": "zstd" },
    });
    return this.decoded(reply, "POST /v1/objects/download", replyBytesMax, decodeDownloadReply);
  }

  async getObject(id: ObjectId): Promise<Uint8Array | undefined> {
    try {
      const reply = await this.send("GET", `/v1/objects/${idToHex(id)}`, undefined, { replyBytesMax: OBJECT_REPLY_BYTES_MAX, idempotent: true });
      return await this.decoded(reply, "GET /v1/objects/:id", OBJECT_REPLY_BYTES_MAX, (bytes) => bytes);
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
    return this.pages(folderPageReply, "/v1/folders", LIMITS.foldersPageMax, Number.POSITIVE_INFINITY, FOLDER_PAGE_BYTES_MAX);
  }

  /** The folder, or undefined when the node has no folder of that name. */
  async getFolder(name: string): Promise<FolderInfo | undefined> {
    try {
      const folder = await this.checkedJson(folderReply, "GET", this.folderPath(name) + this.staleQuery("?"), undefined, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true });
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
    return this.pages(versionPageReply, `${this.folderPath(folder)}/versions`, LIMITS.versionsPageMax, totalMax, VERSION_PAGE_BYTES_MAX);
  }

  /**
   * Follows a list route's `next` cursors (docs/api.md, Paging) until the last page or `totalMax`
   * items. A node that hands back the cursor it was given, or an empty page with a cursor, would
   * have the client page forever: that is an error naming the node.
   */
  private async *pages<T>(parse: (value: unknown) => ListPage<T>, path: string, pageMax: number, totalMax: number, pageBytesMax: number): AsyncGenerator<T[]> {
    let cursor: string | null = null;
    let remaining = totalMax;
    while (remaining > 0) {
      const params = new URLSearchParams({ limit: String(Math.min(pageMax, remaining)) });
      if (cursor !== null) params.set("cursor", cursor);
      if (this.stale) params.set("stale", "1");
      const page: ListPage<T> = await this.checkedJson(parse, "GET", `${path}?${params}`, undefined, { replyBytesMax: pageBytesMax, idempotent: true });
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
    return this.checkedJson(versionReply, "GET", `${this.folderPath(folder)}/versions/${this.versionRef(idOrPrefix)}${this.staleQuery("?")}`, undefined, {
      replyBytesMax: JSON_REPLY_BYTES_MAX,
      idempotent: true,
    });
  }

  commit(folder: string, body: { root: string; parent: string | null; message: string; chunking: string; files: number; bytes: number }): Promise<CommitInfo> {
    // Not idempotent: sent again after a lost answer, it could record a second version.
    return this.checkedJson(commitReply, "POST", `${this.folderPath(folder)}/commit`, body, {
      replyBytesMax: COMMIT_REPLY_BYTES_MAX,
      idempotent: false,
      holdMs: commitHoldMs(body.files, this.workHoldMs),
    });
  }

  restore(folder: string, version: string, message?: string): Promise<CommitInfo> {
    return this.checkedJson(commitReply, "POST", `${this.folderPath(folder)}/restore`, { version: this.versionRef(version), message }, {
      replyBytesMax: COMMIT_REPLY_BYTES_MAX,
      idempotent: false,
      holdMs: this.workHoldMs,
    });
  }

  /**
   * Makes a folder in a consistency mode (POST /v1/folders): `created` false when it existed in
   * that mode already. One that exists in the other mode is a RemoteError "conflict" whose body
   * names the mode it has.
   */
  createFolder(name: string, spec: { consistency: "strong" | "eventual"; keepVersions?: number | null; keepDays?: number | null }): Promise<FolderInfo & { created: boolean }> {
    const problem = validateFolderName(name);
    if (problem) throw new UsageError(`folder name ${JSON.stringify(name)}: ${problem}`);
    const parse = (value: unknown) => {
      const folder = folderReply(value);
      const created = (value as { created?: unknown }).created;
      if (typeof created !== "boolean") throw new MalformedReplyError("the folder.created is missing or of the wrong type");
      return { ...folder, created };
    };
    // Idempotent: making a folder that exists in that mode changes nothing (200).
    return this.checkedJson(parse, "POST", "/v1/folders", { name, ...spec }, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true, holdMs: this.workHoldMs });
  }

  /** Adds the node at `address` to the cluster's Raft group (POST /v1/cluster/members, admin; through the leader). */
  addMember(address: string): Promise<{ node: string; address: string; added: boolean }> {
    return this.json("POST", "/v1/cluster/members", { address }, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true, holdMs: this.workHoldMs });
  }

  /** Removes node `nodeId` from the cluster's Raft group (DELETE /v1/cluster/members/:node, admin; through the leader). */
  removeMember(nodeId: string): Promise<{ node: string; removed: boolean }> {
    return this.json("DELETE", `/v1/cluster/members/${encodeURIComponent(nodeId)}`, undefined, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true, holdMs: this.workHoldMs });
  }

  setRetention(folder: string, retention: { keepVersions?: number | null; keepDays?: number | null }): Promise<FolderInfo> {
    return this.json("PUT", `${this.folderPath(folder)}/retention`, retention, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true });
  }

  gc(options: { graceMs?: number; dryRun?: boolean }): Promise<Record<string, unknown>> {
    return this.json("POST", "/v1/gc", options, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: false, holdMs: this.workHoldMs });
  }

  /** Replication status: per folder and per peer (GET /v1/status). */
  status(options: { signal?: AbortSignal; retry?: boolean } = {}): Promise<NodeStatus> {
    return this.checkedJson(statusReply, "GET", "/v1/status", undefined, { replyBytesMax: STATUS_REPLY_BYTES_MAX, idempotent: true, ...options });
  }

  /** Re-hash and check everything; with `repair`, fetch what is corrupt or missing from the node's peers (POST /v1/verify). */
  verify(options: { repair?: boolean } = {}): Promise<VerifyReport> {
    return this.json("POST", "/v1/verify", { repair: options.repair === true }, { replyBytesMax: VERIFY_REPLY_BYTES_MAX, idempotent: false, holdMs: this.workHoldMs });
  }

  /** Makes a token (POST /v1/tokens, admin); the answer is the only place the token appears. */
  createToken(spec: { role: string; folders: readonly string[]; name: string; expiresInMs: number | null }): Promise<TokenInfo & { token: string }> {
    return this.checkedJson(createdTokenReply, "POST", "/v1/tokens", spec, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: false });
  }

  /** Every token's record, never a token (GET /v1/tokens, admin). */
  listTokens(): Promise<TokenInfo[]> {
    return this.checkedJson(tokenListReply, "GET", "/v1/tokens", undefined, { replyBytesMax: TOKENS_REPLY_BYTES_MAX, idempotent: true });
  }

  /** Revokes a token by id (DELETE /v1/tokens/:tokenId, admin); revoking twice keeps the first time. */
  revokeToken(id: string): Promise<TokenInfo> {
    return this.checkedJson(tokenInfoReply, "DELETE", `/v1/tokens/${encodeURIComponent(id)}`, undefined, { replyBytesMax: JSON_REPLY_BYTES_MAX, idempotent: true });
  }
}
