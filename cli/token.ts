// dsync token create|list|revoke: the tokens a node accepts besides its own --token, on a running
// node (--remote, with its admin token in DSYNC_TOKEN) or in a data folder directly (--data).
//
// --data works whether or not a node runs on the folder: tokens.sqlite is a SQLite database in
// WAL mode that both open, every request of the node reads the token's row (no cache), so a
// token made or revoked here counts on the running node from its next request.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../src/client/sync-target.ts";
import { escapeTerminalText, terminalLines } from "../src/core/terminal-text.ts";
import { systemRandom } from "../src/node/clock.ts";
import { SqliteTokenStore, TokenSpecError, TOKEN_ROLES, type TokenRole, type TokenSpec } from "../src/node/token-store.ts";
import type { TokenInfo } from "../src/client/token-replies.ts";
import { printJson } from "./errors.ts";
import { rawOptionValues } from "./raw-options.ts";
import { remoteFor } from "./remote-target.ts";

export interface TokenFlags {
  remote?: string;
  data?: string;
  role?: string;
  expires?: string;
  name?: string;
  json?: boolean;
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };
/** The longest --expires: ten years, as the node allows. */
const EXPIRES_MS_MAX = 10 * 366 * 86_400_000;

/** "30d", "12h", "90m" -> milliseconds. */
export function parseExpires(text: string): number {
  const match = /^([1-9]\d{0,6})([dhm])$/.exec(text);
  if (!match) throw new UsageError(`--expires takes a number and a unit, d, h or m (30d, 12h, 90m), got ${JSON.stringify(text)}`);
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  if (ms > EXPIRES_MS_MAX) throw new UsageError("--expires is at most ten years");
  return ms;
}

function time(ms: number | null, none: string): string {
  return ms === null ? none : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function foldersText(folders: readonly string[]): string {
  return folders.length === 0 ? "every folder" : folders.map(escapeTerminalText).join(",");
}

/** The tokens in a data folder, opened for one command. */
async function withDataFolder<T>(dataDir: string, run: (store: SqliteTokenStore) => Promise<T>): Promise<T> {
  // A data folder has its object store; tokens.sqlite is made beside it on first use.
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory() || !existsSync(join(dataDir, "objects"))) {
    throw new Error(`${dataDir} is not a dsync data folder (it has no objects/): name the --data folder of a node`);
  }
  const store = SqliteTokenStore.open(dataDir, systemRandom);
  try {
    return await run(store);
  } catch (error) {
    if (error instanceof TokenSpecError) throw new UsageError(error.message);
    throw error;
  } finally {
    await store.close();
  }
}

export async function tokenCommand(action: string, id: string | undefined, flags: TokenFlags): Promise<number> {
  if (flags.remote !== undefined && flags.data !== undefined) throw new UsageError("give --remote or --data, not both");
  if (action === "create") return createToken(id, flags);
  if (id !== undefined) {
    if (action !== "revoke") throw new UsageError(`dsync token ${action} takes no argument`);
  }
  if (action === "list") return listTokens(flags);
  if (action === "revoke") {
    if (id === undefined) throw new UsageError("dsync token revoke takes the token's id (see dsync token list)");
    return revokeToken(String(id), flags);
  }
  throw new UsageError(`unknown token action ${JSON.stringify(action)}: create, list or revoke`);
}

async function createToken(extra: string | undefined, flags: TokenFlags): Promise<number> {
  if (extra !== undefined) throw new UsageError("dsync token create takes no argument (options only)");
  const role = flags.role;
  if (role === undefined || !(TOKEN_ROLES as readonly string[]).includes(String(role))) throw new UsageError(`--role must be one of ${TOKEN_ROLES.join(", ")}`);
  // Every --folder given (the parser keeps one), exactly as typed.
  const folders = rawOptionValues(process.argv, "folder");
  const expiresInMs = flags.expires === undefined ? null : parseExpires(String(flags.expires));
  const name = flags.name === undefined ? "" : String(flags.name);
  let created: { token: string } & TokenInfo;
  if (flags.data !== undefined) {
    created = await withDataFolder(flags.data, async (store) => {
      const nowMs = Date.now();
      const spec: TokenSpec = { role: role as TokenRole, folders, name, expiresMs: expiresInMs === null ? null : nowMs + expiresInMs };
      const made = await store.create(spec, nowMs);
      return { token: made.token, ...made.record };
    });
  } else {
    created = await remoteFor(flags).createToken({ role, folders, name, expiresInMs });
  }
  if (flags.json) {
    printJson(created);
    return 0;
  }
  process.stdout.write(
    terminalLines([
      created.token,
      `id ${created.id}, role ${created.role}, ${foldersText(created.folders)}, expires ${time(created.expiresMs, "never")}${created.name ? `, name ${escapeTerminalText(created.name)}` : ""}`,
    ]),
  );
  process.stderr.write(terminalLines(["dsync: the token is shown this once (the node keeps only its hash): store it now"]));
  return 0;
}

async function listTokens(flags: TokenFlags): Promise<number> {
  const tokens = flags.data !== undefined ? await withDataFolder(flags.data, (store) => store.list()) : await remoteFor(flags).listTokens();
  if (flags.json) {
    printJson({ tokens });
    return 0;
  }
  if (tokens.length === 0) {
    process.stdout.write(terminalLines(["no tokens (the node's own --token is not listed)"]));
    return 0;
  }
  const lines = ["id\tname\trole\tfolders\tcreated\texpires\tlast used\trevoked"];
  for (const t of tokens) {
    lines.push(
      [t.id, escapeTerminalText(t.name) || "-", t.role, foldersText(t.folders), time(t.createdMs, "-"), time(t.expiresMs, "never"), time(t.lastUsedMs, "never"), time(t.revokedMs, "no")].join(
        "\t",
      ),
    );
  }
  process.stdout.write(terminalLines(lines));
  return 0;
}

async function revokeToken(id: string, flags: TokenFlags): Promise<number> {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new UsageError(`a token id is 16 lowercase hex digits (see dsync token list), got ${JSON.stringify(id)}`);
  const record = flags.data !== undefined ? await withDataFolder(flags.data, (store) => store.revoke(id, Date.now())) : await remoteFor(flags).revokeToken(id);
  if (!record) throw new Error(`no token with id ${id}`);
  if (flags.json) printJson(record);
  else process.stdout.write(terminalLines([`revoked ${record.id} (${record.role}, ${foldersText(record.folders)}) at ${time(record.revokedMs, "-")}`]));
  return 0;
}
