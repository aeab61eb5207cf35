// The peer transport over HTTP: the /v1/peer routes of other nodes, with the cluster token.
// Every call has a deadline, so a peer that hangs slows replication down but never stops it.
import { idFromHex, idToHex, isIdHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import { parseJsonBounded } from "../core/json-shape.ts";
import { validateFolderName } from "../core/names.ts";
import { truncateText } from "../core/terminal-text.ts";
import { vectorFromRecord, vectorToRecord } from "../core/version-vector.ts";
import type { ConsistencyMode } from "../node/metadata-records.ts";
import { nodeIdProblem } from "../node/node.ts";
import { decodeDownloadReply, decompressBody, encodeIdList, readAtMost } from "../wire/formats.ts";
import { decodeHistory } from "../wire/history.ts";
import type { PeerProofSigner } from "../wire/peer-proof.ts";
import type { Message } from "../core/raft/types.ts";
import { decodeRaftReply, encodeRaftMessages, type RaftReply } from "../wire/raft-message.ts";
import type { TlsTrust } from "../wire/tls-trust.ts";
import type { DownloadOptions, HeadNotice, HistoryPage, HistoryRequest, ListingRequest, PeerListing, PeerTransport, StoredNotice, StrongForward, StrongForwardReply } from "./transport.ts";

export interface HttpTransportOptions {
  clusterToken: string;
  /** Deadline for listing, history and notices. */
  requestTimeoutMs?: number;
  /** Deadline for one download batch (up to tens of MiB). */
  downloadTimeoutMs?: number;
  /** Deadline for one batch of Raft messages without a snapshot: short, a heartbeat is due every tick. */
  raftTimeoutMs?: number;
  /** How each https:// peer's certificate is verified (its pin, or --ca): src/wire/tls-trust.ts. */
  trustFor?: (peer: string) => TlsTrust | undefined;
  /** Signs every request to an https:// peer with this node's key, so the peer knows which node calls (src/wire/peer-proof.ts). */
  signer?: PeerProofSigner;
}

/** The largest peer reply read, compressed or not (as for a client: twice the largest request body). */
export const PEER_REPLY_BYTES_MAX = LIMITS.requestBodyBytesMax * 2;

/** The most of a peer's error reason kept (in an error message, the status, logs). */
export const PEER_ERROR_CHARS_MAX = 500;

/** Deadline of a stored-objects notice: a hint, so a peer that hangs is given up on sooner than for a head notice. */
export const STORED_NOTICE_TIMEOUT_MS = 5000;

export class PeerRequestError extends Error {
  override name = "PeerRequestError";
}

export class HttpPeerTransport implements PeerTransport {
  /** Requests made, per peer address (for benchmarks and status). */
  readonly requests = new Map<string, number>();

  constructor(private readonly options: HttpTransportOptions) {}

  private async call(peer: string, method: string, path: string, body: Uint8Array | string | undefined, contentType: string, timeoutMs: number, acceptCompressed = true): Promise<Uint8Array> {
    const { response, bytes } = await this.exchange(peer, method, path, body, contentType, timeoutMs, undefined, acceptCompressed);
    if (!response.ok) {
      let reason = response.statusText;
      try {
        const detail = parseJsonBounded(bytes) as { error?: string };
        if (typeof detail.error === "string") reason = detail.error;
      } catch {}
      // The peer's words end up in this node's status and on terminals: one sentence, not a document.
      reason = truncateText(reason, PEER_ERROR_CHARS_MAX);
      throw new PeerRequestError(`peer ${peer} answered ${response.status} to ${method} ${path}: ${reason}`);
    }
    return bytes;
  }

  /** One request and its whole reply (inflated, within PEER_REPLY_BYTES_MAX), whatever its status. */
  private async exchange(
    peer: string,
    method: string,
    path: string,
    body: Uint8Array | string | undefined,
    contentType: string,
    timeoutMs: number,
    /** Ends the request before its deadline (a forward whose leader was lost). */
    signal?: AbortSignal,
    /** Whether the reply may come zstd-compressed; without it the peer sends it plain. */
    acceptCompressed = true,
  ): Promise<{ response: Response; bytes: Uint8Array }> {
    this.requests.set(peer, (this.requests.get(peer) ?? 0) + 1);
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.clusterToken}`, "accept-encoding": acceptCompressed ? "zstd" : "identity" };
    if (body !== undefined) headers["content-type"] = contentType;
    const url = peer.replace(/\/+$/, "") + path;
    const trust = this.options.trustFor?.(peer);
    let response: Response;
    try {
      // The peer's certificate is checked on every connection; a redirect is never followed.
      const tlsOptions = trust ? await trust.fetchOptions() : { redirect: "manual" as const };
      if (this.options.signer && url.startsWith("https:")) {
        // The proof names the peer's certificate, so the peer cannot replay it to another node.
        if (!trust) throw new PeerRequestError(`peer ${peer}: no way to verify its certificate (pin it or give --ca), so no proof of identity is sent to it`);
        Object.assign(headers, this.options.signer.headers(method, url, await trust.receiverFingerprint()));
      }
      response = await fetch(url, {
        method,
        headers,
        body: body as BodyInit | undefined,
        signal: signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]) : AbortSignal.timeout(timeoutMs),
        decompress: false,
        ...tlsOptions,
      } as RequestInit);
    } catch (error) {
      const tlsReason = await trust?.explain(error);
      throw new PeerRequestError(tlsReason ? `peer ${peer}: ${tlsReason.message}` : `cannot reach peer ${peer}: ${(error as Error).message}`);
    }
    // A peer's reply is read within the bound it is inflated to, never whole whatever its size.
    let raw: Uint8Array | null;
    try {
      raw = await readAtMost(response, PEER_REPLY_BYTES_MAX);
    } catch (error) {
      // The deadline covers the body too: a peer that stalls mid-reply is named, like one that never answers.
      throw new PeerRequestError(`peer ${peer} did not finish its reply to ${method} ${path}: ${(error as Error).message}`);
    }
    if (raw === null) throw new PeerRequestError(`peer ${peer} sent a reply larger than ${PEER_REPLY_BYTES_MAX} bytes to ${method} ${path}; it was not read`);
    const bytes = decompressBody(raw, response.headers.get("content-encoding"), PEER_REPLY_BYTES_MAX);
    return { response, bytes };
  }

  async listFolders(peer: string, page: ListingRequest = {}): Promise<PeerListing> {
    const params = new URLSearchParams();
    if (page.limit !== undefined) params.set("limit", String(page.limit));
    if (page.from !== undefined) params.set("from", page.from);
    const query = params.size > 0 ? `?${params}` : "";
    const bytes = await this.call(peer, "GET", `/v1/peer/folders${query}`, undefined, "", this.options.requestTimeoutMs ?? 10_000);
    const value = parseJsonBounded(bytes) as { node?: unknown; folders?: unknown; next?: unknown };
    if (typeof value.node !== "string" || !Array.isArray(value.folders)) throw new PeerRequestError(`peer ${peer} sent a malformed folder list`);
    if (value.next !== undefined && value.next !== null && typeof value.next !== "string") throw new PeerRequestError(`peer ${peer} sent a malformed folder list: next is not a name`);
    const nodeProblem = nodeIdProblem(value.node);
    if (nodeProblem) throw new PeerRequestError(`peer ${peer} sent a malformed folder list: ${nodeProblem}`);
    return {
      node: value.node,
      // A folder whose name breaks the rule (one an older version let in) cannot be asked for by
      // name, so it is left out here rather than failing the whole listing, and so every folder.
      folders: value.folders.flatMap((raw) => {
        const f = raw as { name?: unknown; mode?: unknown; head?: unknown; vector?: unknown };
        if (typeof f.name !== "string" || (f.head !== null && (typeof f.head !== "string" || !isIdHex(f.head)))) {
          throw new PeerRequestError(`peer ${peer} sent a malformed folder entry`);
        }
        if (validateFolderName(f.name)) return [];
        return {
          name: f.name,
          mode: (f.mode === "strong" ? "strong" : "eventual") as ConsistencyMode,
          head: f.head === null ? null : idFromHex(f.head as string),
          vector: vectorFromRecord(f.vector ?? {}),
        };
      }),
      next: typeof value.next === "string" ? value.next : null,
    };
  }

  async history(peer: string, request: HistoryRequest): Promise<HistoryPage> {
    const resumeFrom = request.resumeFrom && request.resumeFrom.length > 0 ? request.resumeFrom.map(idToHex) : undefined;
    const body = JSON.stringify({ head: idToHex(request.head), known: vectorToRecord(request.known), resumeFrom });
    const path = `/v1/peer/folders/${encodeURIComponent(request.folder)}/history`;
    return decodeHistory(await this.call(peer, "POST", path, body, "application/json", this.options.downloadTimeoutMs ?? 120_000));
  }

  async download(peer: string, ids: readonly ObjectId[], options: DownloadOptions = {}) {
    const bytes = await this.call(peer, "POST", "/v1/peer/objects/download", encodeIdList(ids), "application/msgpack", this.options.downloadTimeoutMs ?? 120_000, options.compressed !== false);
    return decodeDownloadReply(bytes);
  }

  async forwardStrong(peer: string, request: StrongForward, timeoutMs: number, signal?: AbortSignal): Promise<StrongForwardReply> {
    const body = JSON.stringify({ ...request.body, from: request.from });
    const path = `/v1/peer/strong/${request.op}`;
    const { response, bytes } = await this.exchange(peer, "POST", path, body, "application/json", timeoutMs, signal);
    let reply: unknown;
    try {
      reply = parseJsonBounded(bytes, Math.max(LIMITS.jsonValuesMax, Math.ceil(bytes.length / 8)));
    } catch (error) {
      throw new PeerRequestError(`peer ${peer} answered ${response.status} to POST ${path} with a body that is not JSON: ${(error as Error).message}`);
    }
    if (typeof reply !== "object" || reply === null || Array.isArray(reply)) throw new PeerRequestError(`peer ${peer} answered ${response.status} to POST ${path} with a body that is not a JSON object`);
    return { status: response.status, body: reply, retryAfter: response.headers.get("retry-after") };
  }

  async raft(peer: string, messages: readonly Message[]): Promise<RaftReply> {
    // A snapshot may be tens of MiB: it gets a download's deadline.
    const timeoutMs = messages.some((m) => m.snapshot) ? (this.options.downloadTimeoutMs ?? 120_000) : (this.options.raftTimeoutMs ?? 2_000);
    const bytes = await this.call(peer, "POST", "/v1/peer/raft", encodeRaftMessages(messages), "application/msgpack", timeoutMs);
    try {
      return decodeRaftReply(parseJsonBounded(bytes));
    } catch (error) {
      throw new PeerRequestError(`peer ${peer} sent a malformed raft reply: ${(error as Error).message}`);
    }
  }

  async notify(peer: string, notice: HeadNotice): Promise<void> {
    const body = JSON.stringify({ from: notice.from, folder: notice.folder, head: idToHex(notice.head), vector: vectorToRecord(notice.vector) });
    await this.call(peer, "POST", "/v1/peer/notify", body, "application/json", this.options.requestTimeoutMs ?? 10_000);
  }

  async notifyStored(peer: string, notice: StoredNotice): Promise<void> {
    const body = JSON.stringify({ from: notice.from, folder: notice.folder, objects: notice.objects.map((o) => [idToHex(o.id), o.lengthBytes]) });
    await this.call(peer, "POST", "/v1/peer/stored", body, "application/json", Math.min(this.options.requestTimeoutMs ?? STORED_NOTICE_TIMEOUT_MS, STORED_NOTICE_TIMEOUT_MS));
  }
}
