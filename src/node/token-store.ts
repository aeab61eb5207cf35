// The client tokens a node accepts besides the one it was started with: each has a role (read,
// write or admin), the folders it may touch (none named: all), an expiry, and can be revoked.
//
// A token is 32 random bytes, shown once as `dsync_<52 base32 letters>`; the store keeps only
// its SHA-256, so a copy of the data folder opens nothing. A lookup finds the row by the hash
// and compares the hashes again in constant time. Its own SQLite file in the data folder
// (tokens.sqlite, WAL, synchronous=FULL: a revocation is on disk before it is acknowledged),
// apart from the metadata, so a running node and `dsync token --data` on the same folder
// coordinate through SQLite's locking: a token made or revoked by either counts at once for
// the other, since every request reads the row (there is no cache to go stale).
import { Database } from "bun:sqlite";
import { createHash, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { validateFolderName } from "../core/names.ts";
import type { RandomSource } from "./clock.ts";

export const TOKENS_FILE_NAME = "tokens.sqlite";
export const TOKEN_PREFIX = "dsync_";
export const TOKEN_ROLES = ["read", "write", "admin"] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** At most this many tokens (revoked ones included) per node, so `token list` stays one answer. */
export const TOKENS_MAX = 10_000;
/** At most this many folders per token. */
export const TOKEN_FOLDERS_MAX = 100;
export const TOKEN_NAME_LENGTH_MAX = 128;
/** The last use is written at most this often per token, not on every request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export interface TokenRecord {
  /** 16 hex digits; names the token in list and revoke, reveals nothing of it. */
  id: string;
  name: string;
  role: TokenRole;
  /** The folders it may touch; empty: every folder. */
  folders: string[];
  createdMs: number;
  expiresMs: number | null;
  revokedMs: number | null;
  lastUsedMs: number | null;
}

export interface TokenSpec {
  name: string;
  role: TokenRole;
  folders: readonly string[];
  expiresMs: number | null;
}

export interface CreatedToken {
  /** The token itself: shown once, never stored. */
  token: string;
  record: TokenRecord;
}

export class TokenSpecError extends Error {
  override name = "TokenSpecError";
}

export interface TokenStore {
  create(spec: TokenSpec, nowMs: number): Promise<CreatedToken>;
  /** Every token, oldest first (at most TOKENS_MAX). */
  list(): Promise<TokenRecord[]>;
  /** Revokes the token with this id (kept, marked revoked); undefined when there is none. */
  revoke(id: string, nowMs: number): Promise<TokenRecord | undefined>;
  /** The record of a token that is valid now (known, not expired, not revoked), recording its use; else undefined. */
  authenticate(token: string, nowMs: number): Promise<TokenRecord | undefined>;
  close(): Promise<void>;
}

/** Why a spec is unacceptable, or undefined. */
export function tokenSpecProblem(spec: TokenSpec, nowMs: number): string | undefined {
  if (!(TOKEN_ROLES as readonly string[]).includes(spec.role)) return `role must be one of ${TOKEN_ROLES.join(", ")}`;
  if (typeof spec.name !== "string" || spec.name.length > TOKEN_NAME_LENGTH_MAX) return `a token's name is at most ${TOKEN_NAME_LENGTH_MAX} characters`;
  if (/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(spec.name)) return "a token's name cannot hold control or direction characters";
  if (!Array.isArray(spec.folders) || spec.folders.length > TOKEN_FOLDERS_MAX) return `a token names at most ${TOKEN_FOLDERS_MAX} folders`;
  // Admin work (gc, verify, tokens) is node-wide: a folder list would promise a limit it cannot keep.
  if (spec.role === "admin" && spec.folders.length > 0) return "an admin token covers every folder: name folders only for read or write tokens";
  for (const folder of spec.folders) {
    const problem = typeof folder === "string" ? validateFolderName(folder) : "a folder name is text";
    if (problem) return `folder ${JSON.stringify(folder)}: ${problem}`;
  }
  if (spec.expiresMs !== null && (!Number.isSafeInteger(spec.expiresMs) || spec.expiresMs <= nowMs)) return "expires must be a time in the future";
  return undefined;
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32, lowercase, unpadded. */
function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function tokenHash(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/** What a token made here looks like; anything else is not looked up at all. */
export function looksLikeStoredToken(text: string): boolean {
  return /^dsync_[a-z2-7]{52}$/.test(text);
}

interface TokenRow {
  id: string;
  hash: Uint8Array;
  name: string;
  role: string;
  folders: string;
  created_ms: number;
  expires_ms: number | null;
  revoked_ms: number | null;
  last_used_ms: number | null;
}

function recordOf(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role as TokenRole,
    folders: JSON.parse(row.folders) as string[],
    createdMs: row.created_ms,
    expiresMs: row.expires_ms,
    revokedMs: row.revoked_ms,
    lastUsedMs: row.last_used_ms,
  };
}

export function isTokenValid(record: TokenRecord, nowMs: number): boolean {
  return record.revokedMs === null && (record.expiresMs === null || nowMs < record.expiresMs);
}

export class SqliteTokenStore implements TokenStore {
  private readonly db: Database;
  /** When this process last wrote each token's last use, so concurrent requests do not all write it. */
  private readonly lastWrittenMs = new Map<string, number>();

  private constructor(db: Database, private readonly random: RandomSource) {
    this.db = db;
  }

  /** Opens (creating) `tokens.sqlite` in `dataDir`; the file is readable by its owner only. */
  static open(dataDir: string, random: RandomSource): SqliteTokenStore {
    const path = join(dataDir, TOKENS_FILE_NAME);
    const fresh = !existsSync(path);
    const db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
    db.exec(`
      CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL,
        folders TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER, revoked_ms INTEGER,
        last_used_ms INTEGER
      );
    `);
    if (fresh) chmodSync(path, 0o600);
    return new SqliteTokenStore(db, random);
  }

  static exists(dataDir: string): boolean {
    return existsSync(join(dataDir, TOKENS_FILE_NAME));
  }

  async create(spec: TokenSpec, nowMs: number): Promise<CreatedToken> {
    const problem = tokenSpecProblem(spec, nowMs);
    if (problem) throw new TokenSpecError(problem);
    const token = TOKEN_PREFIX + base32(this.random.bytes(32));
    const id = Buffer.from(this.random.bytes(8)).toString("hex");
    const folders = [...new Set(spec.folders)].sort();
    const insert = this.db.transaction(() => {
      const count = (this.db.query("SELECT COUNT(*) AS n FROM tokens").get() as { n: number }).n;
      if (count >= TOKENS_MAX) throw new TokenSpecError(`this node holds ${TOKENS_MAX} tokens already; revoked ones count too`);
      this.db
        .query("INSERT INTO tokens (id, hash, name, role, folders, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .run(id, tokenHash(token), spec.name, spec.role, JSON.stringify(folders), nowMs, spec.expiresMs);
    });
    insert.immediate();
    return { token, record: { id, name: spec.name, role: spec.role, folders, createdMs: nowMs, expiresMs: spec.expiresMs, revokedMs: null, lastUsedMs: null } };
  }

  async list(): Promise<TokenRecord[]> {
    const rows = this.db.query("SELECT * FROM tokens ORDER BY created_ms, id LIMIT ?").all(TOKENS_MAX) as TokenRow[];
    return rows.map(recordOf);
  }

  async revoke(id: string, nowMs: number): Promise<TokenRecord | undefined> {
    if (!/^[0-9a-f]{16}$/.test(id)) return undefined;
    this.db.query("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL").run(nowMs, id);
    const row = this.db.query("SELECT * FROM tokens WHERE id = ?").get(id) as TokenRow | null;
    return row ? recordOf(row) : undefined;
  }

  async authenticate(token: string, nowMs: number): Promise<TokenRecord | undefined> {
    if (!looksLikeStoredToken(token)) return undefined;
    const hash = tokenHash(token);
    const row = this.db.query("SELECT * FROM tokens WHERE hash = ?").get(hash) as TokenRow | null;
    if (!row || !timingSafeEqual(Buffer.from(row.hash), hash)) return undefined;
    const record = recordOf(row);
    if (!isTokenValid(record, nowMs)) return undefined;
    this.recordUse(record, nowMs);
    return record;
  }

  private recordUse(record: TokenRecord, nowMs: number): void {
    const written = Math.max(record.lastUsedMs ?? -Infinity, this.lastWrittenMs.get(record.id) ?? -Infinity);
    if (nowMs - written < LAST_USED_RESOLUTION_MS) return;
    this.lastWrittenMs.set(record.id, nowMs);
    if (this.lastWrittenMs.size > TOKENS_MAX) this.lastWrittenMs.delete(this.lastWrittenMs.keys().next().value!);
    this.db.query("UPDATE tokens SET last_used_ms = ? WHERE id = ?").run(nowMs, record.id);
    record.lastUsedMs = nowMs;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
