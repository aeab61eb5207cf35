// One HTTP request to a node, bounded in time and in memory whatever answers (or does not):
//
// - connect: until a node has answered once, the connection is checked on its own
//   (connect-check.ts) within the connect timeout;
// - headers: awaited for at most the idle timeout, plus the time a long poll asks the node to
//   hold its answer, plus the upload of the body at a floor rate;
// - body: read under an idle timer that only progress resets: at least
//   REPLY_BYTES_PER_SECOND_MIN per idle period (one byte every few seconds, forever, is stalled),
//   and at most `replyBytesMax` bytes (a declared length beyond it is refused before a byte is
//   read; an endless one is cut off as it passes), so an endless body costs no more memory than
//   the largest real reply of the route.
//
// Each failure is one RemoteError whose message names the node's URL and the request. When a wait
// ends, the request is aborted (AbortController), which closes its socket. Retries are not made
// here (request-retry.ts), nor the reading of a node's error reply (remote.ts).
import { checkConnection, ConnectCheckError, proxyFor } from "./connect-check.ts";
import { RemoteError } from "./remote-error.ts";

export interface RequestTimeouts {
  /** Until a TCP connection is made (only checked until the node first answers). */
  connectTimeoutMs: number;
  /** No headers for that long, or less than REPLY_BYTES_PER_SECOND_MIN for that long while reading a body. */
  idleTimeoutMs: number;
}

export const CONNECT_TIMEOUT_MS_DEFAULT = 10_000;
export const IDLE_TIMEOUT_MS_DEFAULT = 60_000;

/** A body arriving slower than this (1 KiB/s, 8 kbit/s) is stalled: no sync is usable below it. */
export const REPLY_BYTES_PER_SECOND_MIN = 1024;
/** A request body is given this rate (64 KiB/s) on top of the idle timeout before the headers are due. */
export const UPLOAD_BYTES_PER_SECOND_MIN = 64 * 1024;

export interface NodeRequest {
  method: string;
  /** The path with its query, e.g. /v1/folders?limit=1000. */
  path: string;
  body?: Uint8Array | string;
  headers: Record<string, string>;
  /** The most bytes a successful reply of this route may have (reply-limits.ts). */
  replyBytesMax: number;
  /** The most bytes of an error reply read; past it the reply is dropped (bytes null), not an error. */
  errorBytesMax: number;
  /** A long poll: the node may hold its answer this long on purpose, on top of the idle timeout. */
  holdMs?: number;
  /** Ends the request early (the wait it belongs to is over): its socket is closed. */
  signal?: AbortSignal;
}

export interface NodeReply {
  status: number;
  statusText: string;
  headers: Headers;
  /** The body as sent (still compressed when it was); null for an error body past `errorBytesMax`. */
  bytes: Uint8Array | null;
}

export interface AttemptOptions {
  timeouts: RequestTimeouts;
  /** Check the connection on its own first (the node has not answered yet, or stopped answering). */
  checkConnect: boolean;
  /** TLS options passed to fetch as they are (Bun's `tls`: ca, cert, key, rejectUnauthorized, ...). */
  tls?: Record<string, unknown>;
}

/** "GET /v1/folders", without the query: what messages name. */
export function routeOf(method: string, path: string): string {
  return `${method} ${path.split("?")[0]}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

const TIMEOUT_HINT = "--timeout SECONDS or DSYNC_TIMEOUT waits longer";

/**
 * A part of a reply already copied into the reply's buffer is let go at once (its buffer
 * detached, which frees it in Bun) instead of at the next collection: a pull of a 1 GiB file
 * reads 1 GiB of such parts, ~260 KiB each, and they were a good part of its peak. Bun gives
 * each part a buffer of its own, which nothing else reads once the part is copied; a part that
 * does not span its whole buffer (a view into something larger) is left to the collector.
 */
function releaseCopiedPart(part: Uint8Array): void {
  const buffer = part.buffer;
  if (part.byteLength < COPIED_PART_FREED_BYTES_MIN || part.byteOffset !== 0 || buffer.byteLength !== part.byteLength) return;
  if (!(buffer instanceof ArrayBuffer) || typeof buffer.transfer !== "function") return;
  buffer.transfer(0);
}

/** Smaller parts are the collector's (cheap to leave; Buffer's pool slabs are 8 KiB). */
const COPIED_PART_FREED_BYTES_MIN = 16 * 1024;

/** A failure to connect (from the check or from fetch) as one sentence naming the node. */
function connectFailure(baseUrl: string, code: string, detail: string, timeoutMs: number): RemoteError {
  const host = new URL(baseUrl).hostname;
  const reasons: Record<string, string> = {
    ECONNREFUSED: "connection refused (is it running? check --remote or DSYNC_REMOTE)",
    ENOTFOUND: `the name ${host} does not resolve (check --remote or DSYNC_REMOTE)`,
    EAI_AGAIN: `the name ${host} could not be resolved now (DNS did not answer)`,
    ETIMEDOUT: `no connection within ${seconds(timeoutMs)} (is the address right? a firewall?)`,
    EHOSTUNREACH: "no route to the host",
    ENETUNREACH: "the network is unreachable",
  };
  const error = new RemoteError("unreachable", `cannot reach the dsync node at ${baseUrl}: ${reasons[code] ?? `${detail} (${code})`}`);
  if (code === "ECONNREFUSED") error.transient = "not-sent";
  return error;
}

const TLS_CODES = /^(EPROTO|ERR_TLS|ERR_SSL|UNABLE_TO|CERT_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_TLS_CERT)/;

/** A failure of fetch itself (not one of our timers), as one sentence naming the node and the request. */
function fetchFailure(baseUrl: string, route: string, error: unknown, phase: "headers" | "body", timeouts: RequestTimeouts): RemoteError {
  const code = String((error as { code?: unknown }).code ?? "");
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === "TimeoutError") {
    // Bun's own socket idle timer (the backstop set below): no byte either way for that long.
    return new RemoteError(
      "unreachable",
      `nothing moved between this client and the node at ${baseUrl} for ${seconds(timeouts.idleTimeoutMs)} during ${route}: it stopped reading or answering (${TIMEOUT_HINT})`,
    );
  }
  if (["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"].includes(code)) return connectFailure(baseUrl, code, message, timeouts.connectTimeoutMs);
  if (TLS_CODES.test(code)) {
    return new RemoteError("unreachable", `cannot reach the dsync node at ${baseUrl}: the TLS connection failed (${code}: ${message.split(". ")[0]})`);
  }
  const broken = new RemoteError(
    "unreachable",
    phase === "headers"
      ? `the connection to ${baseUrl} closed before the node answered ${route} (${code || message})`
      : `the connection to ${baseUrl} closed in the middle of the reply to ${route} (${code || message})`,
  );
  broken.transient = "interrupted";
  return broken;
}

export function replyTooLarge(route: string, baseUrl: string, maxBytes: number): RemoteError {
  return new RemoteError("server", `the node's reply to ${route} exceeded ${maxBytes} bytes; it was not read (${baseUrl})`);
}

/** Sends one request and reads its whole reply within the bounds above. */
export async function attemptRequest(baseUrl: string, request: NodeRequest, options: AttemptOptions): Promise<NodeReply> {
  const { timeouts } = options;
  const route = routeOf(request.method, request.path);
  const url = new URL(baseUrl + request.path);
  const controller = new AbortController();
  const checkController = new AbortController();
  // The first reason the request was ended with wins; fetch and the reader then reject with it.
  let failure: unknown;
  const fail = (reason: unknown) => {
    if (failure !== undefined) return;
    failure = reason;
    controller.abort(reason);
  };
  const outer = request.signal;
  const onOuterAbort = () => fail(outer!.reason);
  if (outer) {
    if (outer.aborted) throw outer.reason;
    outer.addEventListener("abort", onOuterAbort);
  }
  const bodyBytes = request.body === undefined ? 0 : typeof request.body === "string" ? Buffer.byteLength(request.body) : request.body.length;
  // Whole seconds of sending at the floor rate, for a body of 64 KiB or more.
  const uploadMs = bodyBytes < UPLOAD_BYTES_PER_SECOND_MIN ? 0 : Math.ceil(bodyBytes / UPLOAD_BYTES_PER_SECOND_MIN) * 1000;
  const headerWaitMs = timeouts.idleTimeoutMs + (request.holdMs ?? 0) + uploadMs;
  let headersDue: ReturnType<typeof setTimeout> | undefined;
  let bodyIdle: ReturnType<typeof setTimeout> | undefined;
  let phase: "connect" | "headers" | "body" = "connect";
  const awaitHeaders = () => {
    if (phase !== "connect") return;
    phase = "headers";
    headersDue = setTimeout(() => {
      const more = [request.holdMs ? `the ${seconds(request.holdMs)} it may hold a wait` : "", uploadMs ? `${seconds(uploadMs)} to send ${bodyBytes} bytes` : ""].filter(Boolean);
      const extra = more.length > 0 ? ` (and ${more.join(" and ")})` : "";
      fail(new RemoteError("unreachable", `the node at ${baseUrl} did not answer ${route} within ${seconds(timeouts.idleTimeoutMs)}${extra} (${TIMEOUT_HINT})`));
    }, headerWaitMs);
  };
  if (options.checkConnect && !proxyFor(url)) {
    const connectMs = Math.min(timeouts.connectTimeoutMs, timeouts.idleTimeoutMs);
    checkConnection(url, connectMs, checkController.signal).then(awaitHeaders, (error: ConnectCheckError) => {
      if (phase === "connect") fail(connectFailure(baseUrl, error.code, error.message, connectMs));
    });
  } else awaitHeaders();
  try {
    let response: Response;
    try {
      response = await fetch(url, {
        method: request.method,
        body: request.body as BodyInit | undefined,
        headers: request.headers,
        signal: controller.signal,
        decompress: false,
        // A node answers no redirect; a followed one would carry the token to whatever address it names.
        redirect: "manual",
        // Bun's socket idle timer, reset by every byte either way (it ticks in whole seconds): what
        // sees an upload stall, which the timers here cannot (they see no byte go out). So it is
        // the idle timeout (and a long poll's hold), not the header wait with its upload allowance.
        timeout: timeouts.idleTimeoutMs + (request.holdMs ?? 0) + 1000,
        ...(options.tls ? { tls: options.tls } : {}),
      } as RequestInit);
    } catch (error) {
      throw failure ?? fetchFailure(baseUrl, route, error, "headers", timeouts);
    }
    phase = "body";
    clearTimeout(headersDue);
    checkController.abort();
    const bytesMax = response.ok ? request.replyBytesMax : request.errorBytesMax;
    const declared = Number(response.headers.get("content-length") ?? NaN);
    const reply = (bytes: Uint8Array | null): NodeReply => ({ status: response.status, statusText: response.statusText, headers: response.headers, bytes });
    if (declared > bytesMax) {
      controller.abort();
      if (response.ok) throw replyTooLarge(route, baseUrl, bytesMax);
      return reply(null);
    }
    if (!response.body) return reply(new Uint8Array(0));
    // A declared length is read into one buffer of that size; an undeclared one in parts.
    const whole = Number.isSafeInteger(declared) && declared >= 0 ? new Uint8Array(declared) : null;
    const parts: Uint8Array[] = [];
    let total = 0;
    const progressBytesMin = Math.max(1, Math.ceil((timeouts.idleTimeoutMs / 1000) * REPLY_BYTES_PER_SECOND_MIN));
    let sinceProgress = 0;
    const armIdle = () => {
      clearTimeout(bodyIdle);
      sinceProgress = 0;
      bodyIdle = setTimeout(() => {
        fail(
          new RemoteError(
            "unreachable",
            `the node at ${baseUrl} stopped sending its reply to ${route} (${sinceProgress} bytes in the last ${seconds(timeouts.idleTimeoutMs)}, after ${total}; ${TIMEOUT_HINT})`,
          ),
        );
      }, timeouts.idleTimeoutMs);
    };
    armIdle();
    const reader = response.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        const failed = failure ?? fetchFailure(baseUrl, route, error, "body", timeouts);
        if (failed instanceof RemoteError) failed.answered = true;
        throw failed;
      }
      if (chunk.done) break;
      const value = chunk.value;
      if (total + value.length > bytesMax || (whole !== null && total + value.length > whole.length)) {
        controller.abort();
        if (response.ok) throw replyTooLarge(route, baseUrl, bytesMax);
        return reply(null);
      }
      const valueBytes = value.length;
      if (whole) {
        whole.set(value, total);
        releaseCopiedPart(value);
      } else parts.push(value);
      total += valueBytes;
      sinceProgress += valueBytes;
      if (sinceProgress >= progressBytesMin) armIdle();
    }
    if (whole !== null && total !== whole.length) {
      const short = new RemoteError("unreachable", `the connection to ${baseUrl} closed in the middle of the reply to ${route} (${total} of ${whole.length} bytes)`);
      short.transient = "interrupted";
      short.answered = true;
      throw short;
    }
    return reply(whole ?? (parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
  } finally {
    clearTimeout(headersDue);
    clearTimeout(bodyIdle);
    checkController.abort();
    outer?.removeEventListener("abort", onOuterAbort);
  }
}
