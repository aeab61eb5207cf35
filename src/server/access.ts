// Who may call which route: the one table of route -> the least role that may call it, used by
// the middleware below and checked by test/server/route-access.test.ts to cover every route the
// app registers (docs/api.md holds the same table).
//
// A request's token is the node's own `--token` (admin, every folder), a token from the token
// store (its role and folders), or nothing: then only "public" routes answer. A node started
// without --token is open: every caller is admin, as before tokens had roles.
//
// Order of refusals: 401 (no valid token) before 403 (the role is too low) before 404 (a folder
// outside the token's folders), so a token learns nothing of folders it may not see from a
// refusal; a folder outside its list reads exactly as a folder that does not exist.
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Clock } from "../node/clock.ts";
import type { NodeEvent } from "../node/events.ts";
import type { TokenRole, TokenStore } from "../node/token-store.ts";
import { bearerToken, tokensEqual } from "./auth.ts";

/** "public": no token; "cluster": the cluster token only (peer-routes.ts); "metrics": the metrics token or an admin token, the node's own or a stored one (metrics.ts). */
export type RouteAccess = "public" | "cluster" | "metrics" | TokenRole;

export const ROUTE_ACCESS: Readonly<Record<string, RouteAccess>> = {
  // The dashboard's page and script hold no data; the script asks for a token.
  "GET /": "public",
  "GET /ui": "public",
  "GET /ui/app.js": "public",
  "GET /ui/style.css": "public",
  "GET /favicon.ico": "public",
  "GET /v1/health": "public",
  "GET /metrics": "metrics",
  "GET /v1/status": "read",
  "GET /v1/events": "read",
  "GET /v1/folders": "read",
  "GET /v1/folders/:folder": "read",
  "GET /v1/folders/:folder/versions": "read",
  "GET /v1/folders/:folder/versions/:version": "read",
  "GET /v1/folders/:folder/versions/:version/conflicts": "read",
  "POST /v1/objects/download": "read",
  "GET /v1/objects/:id": "read",
  "POST /v1/objects/missing": "write",
  "POST /v1/objects/upload": "write",
  "POST /v1/objects/signatures": "read",
  "PUT /v1/objects/:id": "write",
  "POST /v1/folders": "write",
  "POST /v1/folders/:folder/commit": "write",
  "POST /v1/folders/:folder/restore": "write",
  "PUT /v1/folders/:folder/retention": "admin",
  "POST /v1/gc": "admin",
  "POST /v1/verify": "admin",
  "POST /v1/tokens": "admin",
  "GET /v1/tokens": "admin",
  "DELETE /v1/tokens/:tokenId": "admin",
  "POST /v1/cluster/members": "admin",
  "DELETE /v1/cluster/members/:node": "admin",
  "GET /v1/peer/folders": "cluster",
  "POST /v1/peer/folders/:folder/history": "cluster",
  "POST /v1/peer/objects/download": "cluster",
  "POST /v1/peer/notify": "cluster",
  "POST /v1/peer/stored": "cluster",
  "POST /v1/peer/strong/commit": "cluster",
  "POST /v1/peer/strong/restore": "cluster",
  "POST /v1/peer/strong/folders": "cluster",
  "POST /v1/peer/strong/members": "cluster",
  "POST /v1/peer/strong/retention": "cluster",
  "POST /v1/peer/raft": "cluster",
};

const RANK: Record<TokenRole, number> = { read: 1, write: 2, admin: 3 };

/** What a request may do: its role, and the folders it may touch (null: every folder). */
export interface Grant {
  role: TokenRole;
  folders: readonly string[] | null;
  /** The stored token's id; null for the node's own token and on a node without one. */
  tokenId: string | null;
  /**
   * Whether the token is still valid now (not revoked or expired since the request began). A
   * request that outlives its check (an event stream, a long poll) asks again before it sends
   * anything more, so a revocation cuts it off rather than only the next request.
   */
  stillValid(): Promise<boolean>;
}

declare module "hono" {
  interface ContextVariableMap {
    grant: Grant;
  }
}

const FULL_GRANT: Grant = { role: "admin", folders: null, tokenId: null, stillValid: async () => true };

/**
 * The grant of a request that passed `authorize`. Kept on the context, not the request (the body
 * limit wraps the request in a new one). A route that asks without one is a programming error,
 * never a silent full grant.
 */
export function grantOf(c: Context): Grant {
  const grant = c.get("grant");
  if (!grant) throw new Error(`no grant for ${c.req.method} ${c.req.path}: the route is public in ROUTE_ACCESS but asks what the caller may do`);
  return grant;
}

/** The folders a request is limited to, or null when it may see them all (admin tokens and unscoped tokens alike). */
export function scopedFolders(c: Context): readonly string[] | null {
  const grant = grantOf(c);
  return grant.role === "admin" ? null : grant.folders;
}

/** "METHOD /pattern" of the route that answers the request, or undefined when none matches. */
export function routeKey(c: Context): string | undefined {
  const route = matchedRoutes(c)
    .filter((r) => r.method !== "ALL")
    .at(-1);
  return route ? `${route.method} ${route.path}` : undefined;
}

export interface AuthorizeOptions {
  /** The node's own token: admin on every folder. Without it, the node is open. */
  token?: string;
  tokens?: TokenStore;
  clock: Clock;
}

/**
 * The client side of /v1: authenticates the token and checks its role against ROUTE_ACCESS.
 * Peer routes pass through to their own check (a client token opens none of them).
 */
export function authorize(options: AuthorizeOptions): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.path.startsWith("/v1/peer/")) return next();
    const key = routeKey(c);
    const access = key === undefined ? undefined : ROUTE_ACCESS[key];
    if (access === "public") return next();
    if (access === undefined && key !== undefined) throw new Error(`the route ${key} has no entry in ROUTE_ACCESS (src/server/access.ts)`);
    if (!options.token) {
      c.set("grant", FULL_GRANT);
      return next();
    }
    const given = bearerToken(c.req.header("authorization"));
    let grant: Grant | undefined;
    if (given !== undefined) {
      if (tokensEqual(given, options.token)) grant = FULL_GRANT;
      else {
        const tokens = options.tokens;
        const record = await tokens?.authenticate(given, options.clock.nowMs());
        if (record) {
          const stillValid = async () => (await tokens!.authenticate(given, options.clock.nowMs())) !== undefined;
          grant = { role: record.role, folders: record.folders.length > 0 ? record.folders : null, tokenId: record.id, stillValid };
        }
      }
    }
    if (!grant) return c.json({ error: "missing, wrong, expired or revoked token (send Authorization: Bearer <token>)" }, 401);
    // An unknown route under /v1 answers 404 to any valid token.
    if (access !== undefined && access !== "metrics" && access !== "cluster" && RANK[grant.role] < RANK[access]) {
      const article = (role: string) => (role === "admin" ? "an" : "a");
      return c.json({ error: `${article(grant.role)} ${grant.role} token may not call ${key}: it needs ${article(access)} ${access} token` }, 403);
    }
    c.set("grant", grant);
    await next();
  };
}

/** The :folder parameter of the route that answers, or undefined. */
function folderParam(c: Context): string | undefined {
  const own = c.req.routeIndex;
  try {
    const routes = matchedRoutes(c);
    for (let index = routes.length - 1; index >= 0; index--) {
      if (routes[index]!.method === "ALL") continue;
      c.req.routeIndex = index;
      return c.req.param("folder");
    }
    return undefined;
  } finally {
    c.req.routeIndex = own;
  }
}

/** The answer the node gives for a folder it does not have (node.ts getFolder), word for word. */
export function noFolderReply(c: Context, folder: string): Response {
  return c.json({ error: `no folder named ${JSON.stringify(folder)}` }, 404);
}

/**
 * A folder route for a folder outside the token's folders answers as for a folder that does
 * not exist (404), whatever the route would do. After the parameter check, so a bad name is
 * still a 400 naming the parameter, for every caller alike.
 */
export const checkFolderScope: MiddlewareHandler = async (c, next) => {
  if (c.req.path.startsWith("/v1/peer/")) return next();
  const folders = scopedFolders(c);
  if (folders !== null) {
    const folder = folderParam(c);
    if (folder !== undefined && !folders.includes(folder)) return noFolderReply(c, folder);
  }
  await next();
};

/** Which events a request may see: all, or those of its folders (events of no folder describe the whole node). */
export function eventFilter(c: Context): ((event: NodeEvent) => boolean) | undefined {
  const folders = scopedFolders(c);
  if (folders === null) return undefined;
  return (event) => event.folder !== null && folders.includes(event.folder);
}
