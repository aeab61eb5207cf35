// What a request to a node can end in, sorted into kinds the CLI turns into its own message: the
// node is unreachable (or stopped answering), is not a dsync node at all, refused the token, lacks
// a thing, is out of disk space, refused the request, or failed. `transient` says whether the same
// request may be tried again (request-retry.ts decides whether it is).
export type RemoteErrorKind = "unreachable" | "not-a-node" | "unauthorized" | "not-found" | "conflict" | "out-of-space" | "rejected" | "server";

/**
 * Why a failure may pass if the request is sent again:
 * - `not-sent`: the connection was refused, so nothing reached the node (any request may be sent again);
 * - `interrupted`: the connection broke before the whole answer came (the node may have acted on it);
 * - `busy`: the node (or a proxy before it) answered 502, 503 or 504 and did nothing.
 * Timeouts are none of these: the timeout is the user's bound on waiting, not a reason to wait again.
 */
export type TransientFailure = "not-sent" | "interrupted" | "busy";

export class RemoteError extends Error {
  override name = "RemoteError";
  transient?: TransientFailure;
  /** From a busy answer's Retry-After, in milliseconds. */
  retryAfterMs?: number;
  /** The node's headers had come when it failed: the connection itself (TCP, TLS) worked. */
  answered?: boolean;
  constructor(readonly kind: RemoteErrorKind, message: string, readonly status?: number, readonly body?: Record<string, unknown>) {
    super(message);
  }
}
