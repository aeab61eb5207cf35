// The token routes, admin only (access.ts):
//
//   POST   /v1/tokens            JSON {role, folders?, name?, expiresInMs?} -> 201 {token, ...record}
//                               (the token appears in this answer only)
//   GET    /v1/tokens            JSON {tokens: [record]} (never a token, nor its hash)
//   DELETE /v1/tokens/:tokenId   JSON record, revoked; 404 for an unknown id
//
// The node computes the expiry from `expiresInMs` on its own clock, so a client's clock does not
// shorten or stretch it.
import type { Hono } from "hono";
import type { Clock } from "../node/clock.ts";
import { UserError } from "../node/node.ts";
import { TOKEN_FOLDERS_MAX, TokenSpecError, type TokenRecord, type TokenRole, type TokenStore } from "../node/token-store.ts";
import { readJson } from "./http-body.ts";
import { optionalCount, optionalString } from "./validate.ts";

/** The longest expiry a token may be given: ten years. */
export const TOKEN_EXPIRY_MS_MAX = 10 * 366 * 24 * 3600 * 1000;

export function tokenRecordJson(record: TokenRecord) {
  return {
    id: record.id,
    name: record.name,
    role: record.role,
    folders: record.folders,
    createdMs: record.createdMs,
    expiresMs: record.expiresMs,
    revokedMs: record.revokedMs,
    lastUsedMs: record.lastUsedMs,
  };
}

export function registerTokenRoutes(app: Hono, options: { tokens?: TokenStore; clock: Clock; onCreated?: (record: TokenRecord) => void }): void {
  const store = (): TokenStore => {
    // Without --token the node is open to everyone: a token made there would protect nothing.
    if (!options.tokens) throw new UserError("this node takes no tokens: start it with --token, then make tokens with its admin token", 409);
    return options.tokens;
  };

  app.post("/v1/tokens", async (c) => {
    const tokens = store();
    const body = await readJson(c);
    if (typeof body.role !== "string") throw new UserError("role must be read, write or admin");
    const folders = body.folders ?? [];
    if (!Array.isArray(folders) || folders.length > TOKEN_FOLDERS_MAX || folders.some((f) => typeof f !== "string")) {
      throw new UserError(`folders must be a list of at most ${TOKEN_FOLDERS_MAX} folder names`);
    }
    const expiresInMs = body.expiresInMs === undefined || body.expiresInMs === null ? null : optionalCount(body.expiresInMs, "expiresInMs", 0, TOKEN_EXPIRY_MS_MAX);
    if (expiresInMs === 0) throw new UserError("expiresInMs must be more than 0");
    const nowMs = options.clock.nowMs();
    try {
      const created = await tokens.create(
        { role: body.role as TokenRole, folders: folders as string[], name: optionalString(body.name, "name", 512, ""), expiresMs: expiresInMs === null ? null : nowMs + expiresInMs },
        nowMs,
      );
      options.onCreated?.(created.record);
      return c.json({ token: created.token, ...tokenRecordJson(created.record) }, 201);
    } catch (error) {
      if (error instanceof TokenSpecError) throw new UserError(error.message);
      throw error;
    }
  });

  app.get("/v1/tokens", async (c) => c.json({ tokens: (await store().list()).map(tokenRecordJson) }));

  app.delete("/v1/tokens/:tokenId", async (c) => {
    const record = await store().revoke(c.req.param("tokenId"), options.clock.nowMs());
    if (!record) throw new UserError(`no token with id ${c.req.param("tokenId")}`, 404);
    return c.json(tokenRecordJson(record));
  });
}
