// The token admin routes' replies (POST/GET/DELETE /v1/tokens), checked before the CLI prints
// them: a token record's every field has the type the API documents, or the reply is refused
// naming the field (as reply-shapes.ts does for the other routes).
import { MalformedReplyError } from "./reply-shapes.ts";

export interface TokenInfo {
  id: string;
  name: string;
  role: string;
  folders: string[];
  createdMs: number;
  expiresMs: number | null;
  revokedMs: number | null;
  lastUsedMs: number | null;
}

/** A list of at most 10 000 tokens, each naming at most 100 folders of at most 128 characters. */
export const TOKENS_REPLY_BYTES_MAX = 64 * 1024 * 1024;

const isTime = (value: unknown) => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isTimeOrNull = (value: unknown) => value === null || isTime(value);

export function tokenInfoReply(value: unknown, where = "token"): TokenInfo {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new MalformedReplyError(`${where} is not an object`);
  const t = value as Record<string, unknown>;
  const checks: [string, boolean][] = [
    ["id", typeof t.id === "string" && /^[0-9a-f]{16}$/.test(t.id)],
    ["name", typeof t.name === "string"],
    ["role", typeof t.role === "string"],
    ["folders", Array.isArray(t.folders) && t.folders.every((f) => typeof f === "string")],
    ["createdMs", isTime(t.createdMs)],
    ["expiresMs", isTimeOrNull(t.expiresMs)],
    ["revokedMs", isTimeOrNull(t.revokedMs)],
    ["lastUsedMs", isTimeOrNull(t.lastUsedMs)],
  ];
  for (const [field, ok] of checks) if (!ok) throw new MalformedReplyError(`${where}.${field} is missing or of the wrong type`);
  return t as unknown as TokenInfo;
}

export function createdTokenReply(value: unknown): TokenInfo & { token: string } {
  const info = tokenInfoReply(value);
  const token = (value as Record<string, unknown>).token;
  if (typeof token !== "string" || !/^dsync_[a-z2-7]{52}$/.test(token)) throw new MalformedReplyError("token.token is missing or not a token");
  return { ...info, token };
}

export function tokenListReply(value: unknown): TokenInfo[] {
  const tokens = typeof value === "object" && value !== null ? (value as Record<string, unknown>).tokens : undefined;
  if (!Array.isArray(tokens)) throw new MalformedReplyError("tokens is not a list");
  return tokens.map((t, i) => tokenInfoReply(t, `tokens[${i}]`));
}
