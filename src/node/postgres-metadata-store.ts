// The node's metadata in PostgreSQL, through Bun's built-in client (Bun.SQL): the same
// contract as the SQLite store (metadata-store.ts), for a node whose metadata should live on a
// database server. Objects stay in the node's data folder either way.
//
// How it keeps the contract:
// - Durable when resolved: every session runs with synchronous_commit=on, so a COMMIT returns
//   once the server has flushed its WAL.
// - Atomic per call: every call that changes more than one row is one transaction (READ
//   COMMITTED). commitVersions locks the folder's row (SELECT ... FOR UPDATE) before it compares
//   the head, assigns sequences from the folder's row (sequence_high) in the same transaction,
//   and moves the head with `UPDATE ... WHERE head IS NOT DISTINCT FROM $expected`: however
//   many nodes' connections race, one wins per expected head and the others see the head moved.
// - A head names a recorded version: a foreign key from (name, head) to versions (folder, id),
//   checked at COMMIT (DEFERRABLE INITIALLY DEFERRED, since a commit records the version and
//   moves the head in one transaction).
// - Bounded: a pool of at most `maxConnections`; every statement has a server-side
//   statement_timeout and lock_timeout, and every call a client-side timer, so a server that
//   stops answering fails a call in bounded time instead of holding the node.
// - A server that is down, restarting or out of connections rejects with
//   MetadataUnavailableError; the pool reconnects by itself when the server is back.
//
// The schema is versioned in schema_migrations: each step in its own transaction under an
// advisory lock (several nodes' processes may open an empty database at once), and a database
// at a schema newer than this code knows is refused without changing anything.
import { SQL } from "bun";
import type { ObjectId } from "../core/id.ts";
import type { ClusterConfig, Entry, EntryKind, Snapshot } from "../core/raft/types.ts";
import type { CheckedNode, NodeSummary } from "../core/tree-structure.ts";
import {
  FolderModeChangedError,
  HeadMovedError,
  type CommitConditions,
  MetadataSchemaTooNewError,
  UnknownFolderError,
  type ConsistencyMode,
  type FolderDefaults,
  type FolderPage,
  type FolderRecord,
  type MetadataStoreStat,
  type NewVersionRecord,
  type RaftSave,
  type RetentionChange,
  type StoredRaft,
  type VersionOrigin,
  type VersionPage,
  type VersionRecord,
  type VersionTotals,
} from "./metadata-records.ts";
import type { MetadataStore } from "./metadata-store.ts";
import { MetadataUnavailableError } from "./metadata-unavailable.ts";
import { checkCompaction, planRaftSave, raftLogProblems, raftSaveLookups, validateCompaction, validateRaftSave, type RaftLogFacts } from "./raft-save-plan.ts";

export interface PostgresMetadataOptions {
  /** Connections the pool opens at most. */
  maxConnections?: number;
  /** The bound of every statement (server side) and of every call (client side, plus a margin). */
  queryTimeoutMs?: number;
  /** How long opening one connection may take. */
  connectTimeoutMs?: number;
}

/** How long close() waits for calls in flight to settle before it closes the pool. */
export const CLOSE_WAIT_MS = 5_000;

/** From this many rows (as the planner estimates) stat() reports a table's estimate, not an exact COUNT(*). */
export const STAT_ESTIMATE_ROWS_MIN = 100_000;

export const POSTGRES_DEFAULTS = { maxConnections: 8, queryTimeoutMs: 15_000, connectTimeoutMs: 5_000 } as const;

/** The steps of the schema, in order; the last one's number is the schema this code knows. */
const MIGRATIONS: { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: "folders, versions, meta, checked_nodes",
    sql: `
      CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
      CREATE TABLE folders (
        name text COLLATE "C" PRIMARY KEY,
        head bytea CHECK (head IS NULL OR length(head) = 32),
        mode text NOT NULL DEFAULT 'eventual' CHECK (mode IN ('eventual', 'strong')),
        keep_versions bigint,
        keep_days double precision,
        created_ms bigint NOT NULL,
        updated_ms bigint NOT NULL,
        -- The highest sequence ever given in the folder: a sequence is never given twice, even
        -- after the newest versions were deleted (a paging cursor names a sequence).
        sequence_high bigint NOT NULL DEFAULT 0);
      CREATE TABLE versions (
        folder text COLLATE "C" NOT NULL REFERENCES folders (name),
        id bytea NOT NULL CHECK (length(id) = 32),
        sequence bigint NOT NULL,
        root bytea NOT NULL CHECK (length(root) = 32),
        parents bytea NOT NULL CHECK (length(parents) % 32 = 0),
        author text NOT NULL,
        hlc_wall_ms bigint NOT NULL,
        hlc_counter bigint NOT NULL,
        -- bytea, not text: a message is any string, and text cannot hold NUL.
        message bytea NOT NULL,
        origin text NOT NULL,
        files bigint NOT NULL,
        total_bytes bigint NOT NULL,
        created_ms bigint NOT NULL,
        PRIMARY KEY (folder, id),
        UNIQUE (folder, sequence));
      CREATE INDEX versions_by_hlc ON versions (hlc_wall_ms DESC, hlc_counter DESC);
      ALTER TABLE folders ADD CONSTRAINT folders_head_recorded FOREIGN KEY (name, head)
        REFERENCES versions (folder, id) DEFERRABLE INITIALLY DEFERRED;
      CREATE TABLE checked_nodes (
        id bytea PRIMARY KEY CHECK (length(id) = 32),
        kind text NOT NULL CHECK (kind IN ('file', 'tree')),
        level integer NOT NULL,
        size_bytes bigint,
        first_name text,
        last_name text,
        height_dirs integer);
    `,
  },
  {
    version: 2,
    description: "the strong mode's Raft group: raft_state (hard state, bootstrap membership, applied), raft_entries, raft_snapshot",
    sql: `
      CREATE TABLE raft_state (
        id integer PRIMARY KEY CHECK (id = 1),
        term bigint NOT NULL,
        vote text,
        commit_index bigint NOT NULL,
        applied bigint NOT NULL,
        bootstrap_config text);
      CREATE TABLE raft_entries (
        log_index bigint PRIMARY KEY,
        term bigint NOT NULL,
        kind text NOT NULL CHECK (kind IN ('normal', 'config')),
        data bytea NOT NULL);
      CREATE TABLE raft_snapshot (
        id integer PRIMARY KEY CHECK (id = 1),
        log_index bigint NOT NULL,
        term bigint NOT NULL,
        config text NOT NULL,
        data bytea NOT NULL);
    `,
  },
];

export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

// Any 64-bit number, the same in every process: the advisory lock that orders schema steps.
const MIGRATION_LOCK_KEY = 7_291_604_118_337;

// SQLSTATE classes and codes that mean "the server is not there or not serving now", not "this
// call was wrong": connection exceptions (08), operator intervention (57: shutdown, crash,
// cannot connect now, and 57014: a statement cancelled by statement_timeout), insufficient
// resources (53: too many connections, disk full), system errors (58), and 55P03: a lock not
// granted within lock_timeout.
function isUnavailableState(state: string): boolean {
  return /^(08|57|53|58)/.test(state) || state === "55P03";
}

// Serialization failures and deadlocks: the transaction changed nothing and may simply run again.
function isRetryableState(state: string): boolean {
  return state === "40001" || state === "40P01";
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

interface FolderRow {
  name: string;
  head: Uint8Array | null;
  mode: string;
  keep_versions: string | number | null;
  keep_days: number | null;
  created_ms: string | number;
  updated_ms: string | number;
}

interface VersionRow {
  folder: string;
  id: Uint8Array;
  sequence: string | number;
  root: Uint8Array;
  parents: Uint8Array;
  author: string;
  hlc_wall_ms: string | number;
  hlc_counter: string | number;
  message: Uint8Array;
  origin: string;
  files: string | number;
  total_bytes: string | number;
  created_ms: string | number;
}

interface CheckedRow {
  id?: Uint8Array;
  kind: string;
  level: number;
  size_bytes: string | number | null;
  first_name: string | null;
  last_name: string | null;
  height_dirs: number | null;
}

// The highest sequence a folder has given, read with its row locked: sequence_high, or a version
// above it should a row have been written by something that did not keep sequence_high. One
// statement with the lock, so a commit costs no round trip for it.
const HIGH_SEQUENCE = "GREATEST(f.sequence_high, (SELECT COALESCE(MAX(v.sequence), 0) FROM versions v WHERE v.folder = f.name))";

const VERSION_COLUMNS = "folder, id, sequence, root, parents, author, hlc_wall_ms, hlc_counter, message, origin, files, total_bytes, created_ms";
const FOLDER_COLUMNS = "name, head, mode, keep_versions, keep_days, created_ms, updated_ms";

function asId(bytes: Uint8Array): ObjectId {
  return new Uint8Array(bytes) as ObjectId;
}

function joinIds(ids: readonly ObjectId[]): Uint8Array {
  const out = new Uint8Array(ids.length * 32);
  ids.forEach((id, i) => out.set(id, i * 32));
  return out;
}

function splitIds(bytes: Uint8Array): ObjectId[] {
  const out: ObjectId[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(asId(bytes.subarray(i, i + 32)));
  return out;
}

function nullableNumber(value: string | number | null): number | null {
  return value === null ? null : Number(value);
}

function folderFromRow(row: FolderRow): FolderRecord {
  return {
    name: row.name,
    head: row.head ? asId(row.head) : null,
    mode: row.mode as ConsistencyMode,
    keepVersions: nullableNumber(row.keep_versions),
    keepDays: nullableNumber(row.keep_days),
    createdMs: Number(row.created_ms),
    updatedMs: Number(row.updated_ms),
  };
}

function versionFromRow(row: VersionRow): VersionRecord {
  return {
    folder: row.folder,
    id: asId(row.id),
    sequence: Number(row.sequence),
    root: asId(row.root),
    parents: splitIds(row.parents),
    author: row.author,
    hlcWallMs: Number(row.hlc_wall_ms),
    hlcCounter: Number(row.hlc_counter),
    message: fromUtf8.decode(row.message),
    origin: row.origin as VersionOrigin,
    files: Number(row.files),
    totalBytes: Number(row.total_bytes),
    createdMs: Number(row.created_ms),
  };
}

interface RaftStateRow {
  term: string | number;
  vote: string | null;
  commit_index: string | number;
  applied: string | number;
  bootstrap_config: string | null;
}

interface RaftEntryRow {
  log_index: string | number;
  term: string | number;
  kind: string;
  data: Uint8Array;
}

interface RaftSnapshotRow {
  log_index: string | number;
  term: string | number;
  config: string;
  data: Uint8Array;
}

/** Entries per INSERT statement (4 parameters each, far below the protocol's 65 535). */
const RAFT_INSERT_BATCH = 500;

function entryFromRow(row: RaftEntryRow): Entry {
  return { term: Number(row.term), index: Number(row.log_index), kind: row.kind as EntryKind, data: new Uint8Array(row.data) };
}

function snapshotFromRow(row: RaftSnapshotRow): Snapshot {
  return {
    meta: { index: Number(row.log_index), term: Number(row.term), config: JSON.parse(row.config) as ClusterConfig },
    data: new Uint8Array(row.data),
  };
}

function summaryFromRow(row: CheckedRow): NodeSummary {
  if (row.kind === "file") return { kind: "file", level: row.level, sizeBytes: Number(row.size_bytes) };
  return { kind: "tree", level: row.level, firstName: row.first_name, lastName: row.last_name, heightDirs: row.height_dirs! };
}

function hexKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("hex");
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** The URL as people may see it: without its password. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(a URL that does not parse)";
  }
}

function errorState(error: unknown): string | undefined {
  const state = (error as { errno?: unknown } | null)?.errno;
  return typeof state === "string" ? state : undefined;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export class PostgresMetadataStore implements MetadataStore {
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly callTimeoutMs: number;

  private constructor(
    private readonly sql: SQL,
    private readonly location: string,
    private readonly queryTimeoutMs: number,
  ) {
    // The server's statement_timeout fires first; this only catches a server that stopped
    // answering altogether (or a connection that never comes).
    this.callTimeoutMs = queryTimeoutMs + 5_000;
  }

  /**
   * Connects, checks the database, and brings its schema to the one this code knows (refusing a
   * newer one). Rejects with MetadataUnavailableError when the server cannot be reached.
   */
  static async open(url: string, options: PostgresMetadataOptions = {}): Promise<PostgresMetadataStore> {
    const maxConnections = options.maxConnections ?? POSTGRES_DEFAULTS.maxConnections;
    const queryTimeoutMs = options.queryTimeoutMs ?? POSTGRES_DEFAULTS.queryTimeoutMs;
    const connectTimeoutMs = options.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs;
    const parsed = new URL(url);
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") throw new Error(`not a postgres:// URL: ${redactedUrl(url)}`);
    const sql = new SQL(url, {
      adapter: "postgres",
      max: maxConnections,
      connectionTimeout: Math.max(1, Math.ceil(connectTimeoutMs / 1000)),
      idleTimeout: 60,
      maxLifetime: 3600,
      connection: {
        application_name: "dsync",
        statement_timeout: queryTimeoutMs,
        lock_timeout: queryTimeoutMs,
        idle_in_transaction_session_timeout: queryTimeoutMs * 2,
        // A change is acknowledged only once it is durable, whatever the server's default.
        synchronous_commit: "on",
        default_transaction_isolation: "read committed",
        client_min_messages: "warning",
      },
    });
    const store = new PostgresMetadataStore(sql, redactedUrl(url), queryTimeoutMs);
    try {
      await store.call("open", async () => {
        const [encoding] = await sql`SHOW server_encoding`;
        if (encoding.server_encoding !== "UTF8") {
          throw new Error(`the database at ${store.location} uses the encoding ${encoding.server_encoding}; dsync needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')`);
        }
      });
      await store.migrate();
    } catch (error) {
      await sql.close({ timeout: 0 }).catch(() => {});
      throw error;
    }
    return store;
  }

  private async migrate(): Promise<void> {
    for (const step of MIGRATIONS) {
      await this.call("migrate", () =>
        this.sql.begin(async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
          await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_ms bigint NOT NULL)`;
          const [row] = await tx`SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations`;
          const current = Number(row.version);
          if (current > POSTGRES_SCHEMA_VERSION) throw new MetadataSchemaTooNewError(this.location, current, POSTGRES_SCHEMA_VERSION);
          if (current >= step.version) return;
          await tx.unsafe(step.sql).simple();
          await tx`INSERT INTO schema_migrations (version, description, applied_ms) VALUES (${step.version}, ${step.description}, ${Date.now()})`;
        }),
      );
    }
    // A database with no steps to apply is still checked: a newer dsync's schema is refused.
    const [row] = await this.call("migrate", () => this.sql`SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations`);
    if (Number(row.version) > POSTGRES_SCHEMA_VERSION) throw new MetadataSchemaTooNewError(this.location, Number(row.version), POSTGRES_SCHEMA_VERSION);
  }

  /**
   * Runs one call of the interface: bounded by a timer, errors that mean "the server is not
   * serving" turned into MetadataUnavailableError, and transactions that lost a deadlock or a
   * serialization check run again (they changed nothing).
   */
  private call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`the metadata store at ${this.location} is closed`));
    // Kept until it settles, so close() lets a write in flight land rather than cut it off.
    const calling = this.callOnce(what, run);
    this.inFlight.add(calling);
    const forget = () => void this.inFlight.delete(calling);
    calling.then(forget, forget);
    return calling;
  }

  private async callOnce<T>(what: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new MetadataUnavailableError(this.location, `${what} got no answer within ${this.callTimeoutMs} ms`)),
          this.callTimeoutMs,
        );
      });
      try {
        return await Promise.race([run(), timeout]);
      } catch (error) {
        const state = errorState(error);
        if (state && isRetryableState(state) && attempt < 5) continue;
        throw this.translate(error);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  private translate(error: unknown): unknown {
    if (error instanceof MetadataUnavailableError || error instanceof HeadMovedError || error instanceof UnknownFolderError) return error;
    if (error instanceof MetadataSchemaTooNewError) return error;
    const state = errorState(error);
    const code = errorCode(error);
    const message = error instanceof Error ? error.message : String(error);
    if (state && isUnavailableState(state)) {
      const reason = state === "57014" ? `a statement ran past ${this.queryTimeoutMs} ms (${message})` : `${message} (SQLSTATE ${state})`;
      return new MetadataUnavailableError(this.location, reason);
    }
    // Bun's own errors (no SQLSTATE): refused, reset or closed connections, failed
    // connection attempts, timeouts; all mean the server is not reachable now.
    if (!state && code && /^ERR_POSTGRES_(CONNECTION|.*TIMEOUT|.*CLOSED|SOCKET|TLS|UNEXPECTED_EOF|SERVER_NOT)/.test(code)) {
      return new MetadataUnavailableError(this.location, `${message} (${code})`);
    }
    if (!state && code && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|ENOTFOUND|EAI_AGAIN)$/.test(code)) {
      return new MetadataUnavailableError(this.location, `${message} (${code})`);
    }
    return error;
  }

  // ---------- identity and keyed values ----------

  async getMeta(key: string): Promise<string | undefined> {
    const rows = await this.call("getMeta", () => this.sql`SELECT value FROM meta WHERE key = ${key}`);
    return rows.length > 0 ? (rows[0].value as string) : undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.call("setMeta", () => this.sql`INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`);
  }

  /**
   * Stores `value` under `key` unless a value is there already, atomically (two processes racing
   * store one); resolves to the value stored either way. How a node claims its database.
   */
  async claimMeta(key: string, value: string): Promise<string> {
    return this.call("claimMeta", async () => {
      const inserted = await this.sql`INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO NOTHING RETURNING value`;
      if (inserted.length > 0) return inserted[0].value as string;
      const [row] = await this.sql`SELECT value FROM meta WHERE key = ${key}`;
      return row.value as string;
    });
  }

  // ---------- folders ----------

  async listFolders(): Promise<FolderRecord[]> {
    const rows = await this.call("listFolders", () => this.sql.unsafe(`SELECT ${FOLDER_COLUMNS} FROM folders ORDER BY name`));
    return (rows as FolderRow[]).map(folderFromRow);
  }

  async listFoldersPage(limit: number, fromName?: string): Promise<FolderPage> {
    const rows = (await this.call("listFoldersPage", () =>
      fromName === undefined
        ? this.sql.unsafe(`SELECT ${FOLDER_COLUMNS} FROM folders ORDER BY name LIMIT $1`, [limit + 1])
        : this.sql.unsafe(`SELECT ${FOLDER_COLUMNS} FROM folders WHERE name >= $1 ORDER BY name LIMIT $2`, [fromName, limit + 1]),
    )) as FolderRow[];
    return { folders: rows.slice(0, limit).map(folderFromRow), next: rows.length > limit ? rows[limit]!.name : null };
  }

  async getFolder(name: string): Promise<FolderRecord | undefined> {
    const rows = (await this.call("getFolder", () => this.sql.unsafe(`SELECT ${FOLDER_COLUMNS} FROM folders WHERE name = $1`, [name]))) as FolderRow[];
    return rows.length > 0 ? folderFromRow(rows[0]!) : undefined;
  }

  async countFolders(): Promise<number> {
    const [row] = await this.call("countFolders", () => this.sql`SELECT COUNT(*) AS n FROM folders`);
    return Number(row.n);
  }

  async ensureFolder(name: string, nowMs: number, defaults: FolderDefaults = {}): Promise<FolderRecord> {
    return this.call("ensureFolder", async () => {
      await this.sql`
        INSERT INTO folders (name, head, mode, keep_versions, keep_days, created_ms, updated_ms)
        VALUES (${name}, NULL, ${defaults.mode ?? "eventual"}, ${defaults.keepVersions ?? null}, ${defaults.keepDays ?? null}, ${nowMs}, ${nowMs})
        ON CONFLICT (name) DO NOTHING`;
      const rows = (await this.sql.unsafe(`SELECT ${FOLDER_COLUMNS} FROM folders WHERE name = $1`, [name])) as FolderRow[];
      return folderFromRow(rows[0]!);
    });
  }

  async setRetention(name: string, retention: RetentionChange, nowMs: number): Promise<void> {
    // One statement: an absent field keeps the stored value (CASE on a flag), null removes it.
    const keepVersionsGiven = retention.keepVersions !== undefined;
    const keepDaysGiven = retention.keepDays !== undefined;
    const result = await this.call("setRetention", () => this.sql`
      UPDATE folders SET
        keep_versions = CASE WHEN ${keepVersionsGiven}::boolean THEN ${retention.keepVersions ?? null}::bigint ELSE keep_versions END,
        keep_days = CASE WHEN ${keepDaysGiven}::boolean THEN ${retention.keepDays ?? null}::double precision ELSE keep_days END,
        updated_ms = ${nowMs}
      WHERE name = ${name}`);
    if (result.count === 0) throw new UnknownFolderError(name);
  }

  async setFolderMode(name: string, mode: ConsistencyMode, nowMs: number): Promise<void> {
    const result = await this.call("setFolderMode", () => this.sql`UPDATE folders SET mode = ${mode}, updated_ms = ${nowMs} WHERE name = ${name}`);
    if (result.count === 0) throw new UnknownFolderError(name);
  }

  // ---------- heads and versions ----------

  async commitVersions(folder: string, expectedHead: ObjectId | null, newHead: ObjectId, versions: readonly NewVersionRecord[], nowMs: number, conditions: CommitConditions = {}): Promise<void> {
    await this.call("commitVersions", () =>
      this.sql.begin(async (tx) => {
        // The folder's row is locked until COMMIT: every other writer of this folder (a commit,
        // a record of versions, a change of its mode) waits here, so the head and mode read are
        // the ones replaced.
        const rows = await tx.unsafe(`SELECT f.head, f.mode, ${HIGH_SEQUENCE} AS high FROM folders f WHERE f.name = $1 FOR UPDATE`, [folder]);
        if (rows.length === 0) throw new UnknownFolderError(folder);
        const current = rows[0].head ? asId(rows[0].head) : null;
        if (conditions.onlyIfMode !== undefined && rows[0].mode !== conditions.onlyIfMode) throw new FolderModeChangedError(folder, expectedHead, current, rows[0].mode);
        const same = current === null ? expectedHead === null : expectedHead !== null && compareBytes(current, expectedHead) === 0;
        if (!same) throw new HeadMovedError(folder, expectedHead, current);
        const high = await this.insertVersions(tx, folder, Number(rows[0].high), versions);
        // The row is locked, so this matches; the condition says what the update means, and
        // would refuse a head that moved if the lock above were ever taken away.
        const moved = await tx`
          UPDATE folders SET head = ${newHead}, updated_ms = ${nowMs}, sequence_high = ${high}
          WHERE name = ${folder} AND head IS NOT DISTINCT FROM ${expectedHead}::bytea`;
        if (moved.count !== 1) throw new HeadMovedError(folder, expectedHead, current);
      }),
    );
  }

  async recordVersions(folder: string, versions: readonly NewVersionRecord[]): Promise<void> {
    await this.call("recordVersions", () =>
      this.sql.begin(async (tx) => {
        const rows = await tx.unsafe(`SELECT ${HIGH_SEQUENCE} AS high FROM folders f WHERE f.name = $1 FOR UPDATE`, [folder]);
        if (rows.length === 0) throw new UnknownFolderError(folder);
        const high = await this.insertVersions(tx, folder, Number(rows[0].high), versions);
        await tx`UPDATE folders SET sequence_high = ${high} WHERE name = ${folder}`;
      }),
    );
  }

  /** Inserts the versions not yet recorded, numbered from above `high`; returns the new high. Runs under the folder's row lock. */
  private async insertVersions(tx: SQL, folder: string, high: number, versions: readonly NewVersionRecord[]): Promise<number> {
    let sequence = high + 1;
    for (const v of versions) {
      const inserted = await tx`
        INSERT INTO versions (folder, id, sequence, root, parents, author, hlc_wall_ms, hlc_counter, message, origin, files, total_bytes, created_ms)
        VALUES (${folder}, ${v.id}, ${sequence}, ${v.root}, ${joinIds(v.parents)}, ${v.author}, ${v.hlcWallMs}, ${v.hlcCounter},
                ${utf8.encode(v.message)}, ${v.origin}, ${v.files}, ${v.totalBytes}, ${v.createdMs})
        ON CONFLICT (folder, id) DO NOTHING
        RETURNING sequence`;
      if (inserted.length > 0) sequence++;
    }
    return sequence - 1;
  }

  async getVersion(folder: string, id: ObjectId): Promise<VersionRecord | undefined> {
    const rows = (await this.call("getVersion", () =>
      this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 AND id = $2`, [folder, id]),
    )) as VersionRow[];
    return rows.length > 0 ? versionFromRow(rows[0]!) : undefined;
  }

  async getVersions(folder: string, ids: readonly ObjectId[]): Promise<(VersionRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const found = new Map<string, VersionRecord>();
    // Batches bound one statement's parameters and reply.
    for (let i = 0; i < ids.length; i += 1000) {
      const batch = ids.slice(i, i + 1000);
      const rows = (await this.call("getVersions", () =>
        this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 AND id = ANY($2::bytea[])`, [folder, this.sql.array([...batch], "BYTEA")]),
      )) as VersionRow[];
      for (const row of rows) found.set(hexKey(row.id), versionFromRow(row));
    }
    return ids.map((id) => found.get(hexKey(id)));
  }

  async findVersionsByPrefix(folder: string, hexPrefix: string, limit = 1000): Promise<VersionRecord[]> {
    // The ids with this prefix are exactly those from the prefix padded with 0s to the prefix
    // padded with fs: a range of the primary key (folder, id), read in O(log n), not a scan.
    const prefix = hexPrefix.toLowerCase();
    if (!/^[0-9a-f]{0,64}$/.test(prefix)) return [];
    const low = Buffer.from(prefix.padEnd(64, "0"), "hex");
    const high = Buffer.from(prefix.padEnd(64, "f"), "hex");
    const rows = (await this.call("findVersionsByPrefix", () =>
      this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 AND id BETWEEN $2 AND $3 ORDER BY id LIMIT $4`, [folder, low, high, limit]),
    )) as VersionRow[];
    return rows.map(versionFromRow);
  }

  async listVersions(folder: string, limit?: number): Promise<VersionRecord[]> {
    const rows = (await this.call("listVersions", () =>
      limit === undefined
        ? this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 ORDER BY sequence DESC`, [folder])
        : this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 ORDER BY sequence DESC LIMIT $2`, [folder, limit]),
    )) as VersionRow[];
    return rows.map(versionFromRow);
  }

  async listVersionsPage(folder: string, limit: number, beforeSequence?: number): Promise<VersionPage> {
    // One more than asked says whether anything older remains, without a count over the history.
    const rows = (await this.call("listVersionsPage", () =>
      beforeSequence === undefined
        ? this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 ORDER BY sequence DESC LIMIT $2`, [folder, limit + 1])
        : this.sql.unsafe(`SELECT ${VERSION_COLUMNS} FROM versions WHERE folder = $1 AND sequence < $2 ORDER BY sequence DESC LIMIT $3`, [
            folder,
            beforeSequence,
            limit + 1,
          ]),
    )) as VersionRow[];
    const versions = rows.slice(0, limit).map(versionFromRow);
    return { versions, next: rows.length > limit ? versions.at(-1)!.sequence : null };
  }

  async versionTotals(): Promise<VersionTotals[]> {
    const rows = await this.call("versionTotals", () => this.sql`SELECT folder, COUNT(*) AS versions, COALESCE(SUM(total_bytes), 0) AS total_bytes FROM versions GROUP BY folder`);
    return (rows as { folder: string; versions: string; total_bytes: string }[]).map((r) => ({
      folder: r.folder,
      versions: Number(r.versions),
      totalBytes: Number(r.total_bytes),
    }));
  }

  async latestHlc(): Promise<{ wallMs: number; counter: number }> {
    const rows = await this.call("latestHlc", () => this.sql`SELECT hlc_wall_ms, hlc_counter FROM versions ORDER BY hlc_wall_ms DESC, hlc_counter DESC LIMIT 1`);
    return rows.length > 0 ? { wallMs: Number(rows[0].hlc_wall_ms), counter: Number(rows[0].hlc_counter) } : { wallMs: 0, counter: 0 };
  }

  async deleteVersions(folder: string, ids: readonly ObjectId[]): Promise<void> {
    if (ids.length === 0) return;
    // One statement (so one transaction however many batches there would be): all or none.
    await this.call("deleteVersions", () =>
      this.sql.begin(async (tx) => {
        for (let i = 0; i < ids.length; i += 1000) {
          await tx.unsafe(`DELETE FROM versions WHERE folder = $1 AND id = ANY($2::bytea[])`, [folder, tx.array(ids.slice(i, i + 1000), "BYTEA")]);
        }
      }),
    );
  }

  // ---------- completeness marks ----------

  async isComplete(id: ObjectId): Promise<boolean> {
    const rows = await this.call("isComplete", () => this.sql`SELECT 1 FROM checked_nodes WHERE id = ${id}`);
    return rows.length > 0;
  }

  async completeSummary(id: ObjectId): Promise<NodeSummary | undefined> {
    const rows = (await this.call("completeSummary", () =>
      this.sql`SELECT kind, level, size_bytes, first_name, last_name, height_dirs FROM checked_nodes WHERE id = ${id}`,
    )) as CheckedRow[];
    return rows.length > 0 ? summaryFromRow(rows[0]!) : undefined;
  }

  async completeSummaries(ids: readonly ObjectId[]): Promise<(NodeSummary | undefined)[]> {
    if (ids.length === 0) return [];
    const found = new Map<string, CheckedRow>();
    for (let i = 0; i < ids.length; i += 1000) {
      const batch = ids.slice(i, i + 1000);
      const rows = (await this.call("completeSummaries", () =>
        this.sql.unsafe(`SELECT id, kind, level, size_bytes, first_name, last_name, height_dirs FROM checked_nodes WHERE id = ANY($1::bytea[])`, [
          this.sql.array([...batch], "BYTEA"),
        ]),
      )) as CheckedRow[];
      for (const row of rows) found.set(hexKey(row.id!), row);
    }
    return ids.map((id) => {
      const row = found.get(hexKey(id));
      return row ? summaryFromRow(row) : undefined;
    });
  }

  async markComplete(nodes: readonly CheckedNode[]): Promise<void> {
    if (nodes.length === 0) return;
    // In id order, so two transactions marking overlapping sets take the rows' locks in the
    // same order and never deadlock each other.
    const sorted = [...nodes].sort((a, b) => compareBytes(a.id, b.id));
    await this.call("markComplete", () =>
      this.sql.begin(async (tx) => {
        for (let i = 0; i < sorted.length; i += 500) {
          const batch = sorted.slice(i, i + 500);
          const values: unknown[] = [];
          const tuples = batch.map(({ id, summary: s }, j) => {
            const base = j * 7;
            if (s.kind === "file") values.push(id, "file", s.level, s.sizeBytes, null, null, null);
            else values.push(id, "tree", s.level, null, s.firstName, s.lastName, s.heightDirs);
            return `($${base + 1}::bytea, $${base + 2}::text, $${base + 3}::integer, $${base + 4}::bigint, $${base + 5}::text, $${base + 6}::text, $${base + 7}::integer)`;
          });
          await tx.unsafe(
            `INSERT INTO checked_nodes (id, kind, level, size_bytes, first_name, last_name, height_dirs) VALUES ${tuples.join(", ")} ON CONFLICT (id) DO NOTHING`,
            values,
          );
        }
      }),
    );
  }

  async unmarkComplete(ids: readonly ObjectId[]): Promise<void> {
    if (ids.length === 0) return;
    const sorted = [...ids].sort(compareBytes);
    await this.call("unmarkComplete", () =>
      this.sql.begin(async (tx) => {
        for (let i = 0; i < sorted.length; i += 1000) {
          await tx.unsafe(`DELETE FROM checked_nodes WHERE id = ANY($1::bytea[])`, [tx.array(sorted.slice(i, i + 1000), "BYTEA")]);
        }
      }),
    );
  }

  async unmarkAllComplete(): Promise<void> {
    await this.call("unmarkAllComplete", () => this.sql`DELETE FROM checked_nodes`);
  }

  async listCompleteIds(): Promise<ObjectId[]> {
    const rows = await this.call("listCompleteIds", () => this.sql`SELECT id FROM checked_nodes`);
    return (rows as { id: Uint8Array }[]).map((r) => asId(r.id));
  }

  // ---------- the Raft log and hard state ----------

  async loadRaft(): Promise<StoredRaft | undefined> {
    return this.call("loadRaft", () =>
      // REPEATABLE READ: the three reads see one state, whatever saves land meanwhile.
      this.sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
        const [state] = (await tx`SELECT term, vote, commit_index, applied, bootstrap_config FROM raft_state WHERE id = 1`) as RaftStateRow[];
        if (state === undefined) return undefined;
        const [snapshotRow] = (await tx`SELECT log_index, term, config, data FROM raft_snapshot WHERE id = 1`) as RaftSnapshotRow[];
        const entries = ((await tx`SELECT log_index, term, kind, data FROM raft_entries ORDER BY log_index`) as RaftEntryRow[]).map(entryFromRow);
        const stored: StoredRaft = {
          hardState: { term: Number(state.term), vote: state.vote, commit: Number(state.commit_index) },
          entries,
          bootstrapConfig: state.bootstrap_config === null ? null : (JSON.parse(state.bootstrap_config) as ClusterConfig),
          applied: Number(state.applied),
        };
        if (snapshotRow) stored.snapshot = snapshotFromRow(snapshotRow);
        return stored;
      }),
    );
  }

  async saveRaft(save: RaftSave): Promise<void> {
    validateRaftSave(save);
    await this.call("saveRaft", () =>
      this.sql.begin(async (tx) => {
        const plan = planRaftSave(save, await this.lockedRaftFacts(tx, raftSaveLookups(save)));
        if (plan.snapshot) await this.putSnapshot(tx, plan.snapshot);
        if (plan.dropAllEntries) await tx`DELETE FROM raft_entries`;
        else if (plan.dropEntriesThrough > 0) await tx`DELETE FROM raft_entries WHERE log_index <= ${plan.dropEntriesThrough}`;
        if (plan.replaceFrom > 0) {
          await tx`DELETE FROM raft_entries WHERE log_index >= ${plan.replaceFrom}`;
          for (let i = 0; i < plan.entries.length; i += RAFT_INSERT_BATCH) {
            const batch = plan.entries.slice(i, i + RAFT_INSERT_BATCH);
            const values: unknown[] = [];
            const tuples = batch.map((e, j) => {
              values.push(e.index, e.term, e.kind, e.data);
              return `($${j * 4 + 1}::bigint, $${j * 4 + 2}::bigint, $${j * 4 + 3}::text, $${j * 4 + 4}::bytea)`;
            });
            await tx.unsafe(`INSERT INTO raft_entries (log_index, term, kind, data) VALUES ${tuples.join(", ")}`, values);
          }
        }
        if (plan.hardState) {
          const { term, vote, commit } = plan.hardState;
          await tx`UPDATE raft_state SET term = ${term}, vote = ${vote}, commit_index = ${commit} WHERE id = 1`;
        }
        if (plan.bootstrapConfig !== undefined) {
          const config = plan.bootstrapConfig === null ? null : JSON.stringify({ voters: plan.bootstrapConfig.voters });
          await tx`UPDATE raft_state SET bootstrap_config = ${config} WHERE id = 1`;
        }
      }),
    );
  }

  async compactRaft(snapshot: Snapshot): Promise<void> {
    validateCompaction(snapshot);
    await this.call("compactRaft", () =>
      this.sql.begin(async (tx) => {
        checkCompaction(snapshot, await this.lockedRaftFacts(tx, [snapshot.meta.index]));
        await this.putSnapshot(tx, snapshot);
        await tx`DELETE FROM raft_entries WHERE log_index <= ${snapshot.meta.index}`;
        await tx`UPDATE raft_state SET applied = GREATEST(applied, ${snapshot.meta.index}) WHERE id = 1`;
      }),
    );
  }

  async setRaftApplied(index: number): Promise<void> {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`an applied index must be a non-negative safe integer, not ${index}`);
    await this.call("setRaftApplied", () =>
      this.sql`
        INSERT INTO raft_state (id, term, vote, commit_index, applied, bootstrap_config) VALUES (1, 0, NULL, 0, ${index}, NULL)
        ON CONFLICT (id) DO UPDATE SET applied = GREATEST(raft_state.applied, EXCLUDED.applied)`,
    );
  }

  /**
   * Makes the raft_state row if there is none and locks it until COMMIT (every Raft write takes
   * this lock first, so two never interleave), then reads what planRaftSave needs in a statement
   * of its own: under READ COMMITTED it sees whatever the writer it waited for committed.
   */
  private async lockedRaftFacts(tx: SQL, lookups: number[]): Promise<RaftLogFacts> {
    const [locked] = await tx`
      INSERT INTO raft_state (id, term, vote, commit_index, applied, bootstrap_config) VALUES (1, 0, NULL, 0, 0, NULL)
      ON CONFLICT (id) DO UPDATE SET id = raft_state.id
      RETURNING term`;
    const [facts] = await tx.unsafe(
      `SELECT (SELECT MAX(log_index) FROM raft_entries) AS last,
              (SELECT log_index FROM raft_snapshot WHERE id = 1) AS snap_index,
              (SELECT term FROM raft_snapshot WHERE id = 1) AS snap_term,
              (SELECT COALESCE(string_agg(log_index || ':' || term, ','), '') FROM raft_entries WHERE log_index = ANY($1::bigint[])) AS terms`,
      [`{${lookups.join(",")}}`],
    );
    const terms = new Map<number, number>();
    for (const pair of (facts.terms as string).split(",").filter(Boolean)) {
      const [index, term] = pair.split(":").map(Number) as [number, number];
      terms.set(index, term);
    }
    const snapshot = facts.snap_index === null ? undefined : { index: Number(facts.snap_index), term: Number(facts.snap_term) };
    return {
      snapshot,
      lastIndex: facts.last === null ? (snapshot?.index ?? 0) : Number(facts.last),
      hardTerm: Number(locked.term),
      termAt: (index) => terms.get(index),
    };
  }

  private async putSnapshot(tx: SQL, snapshot: Snapshot): Promise<void> {
    const config = JSON.stringify({ voters: snapshot.meta.config.voters });
    await tx`
      INSERT INTO raft_snapshot (id, log_index, term, config, data) VALUES (1, ${snapshot.meta.index}, ${snapshot.meta.term}, ${config}, ${snapshot.data})
      ON CONFLICT (id) DO UPDATE SET log_index = EXCLUDED.log_index, term = EXCLUDED.term, config = EXCLUDED.config, data = EXCLUDED.data`;
  }

  // ---------- health ----------

  async integrityCheck(): Promise<string> {
    // Postgres keeps its own pages consistent (WAL, checksums where enabled); what can still be
    // wrong is what the rows say of each other. Constraints keep most of it; these are the rest.
    const problems: string[] = [];
    await this.call("integrityCheck", async () => {
      const [heads] = await this.sql`
        SELECT COUNT(*) AS n FROM folders f
        WHERE f.head IS NOT NULL AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.folder = f.name AND v.id = f.head)`;
      if (Number(heads.n) > 0) problems.push(`${heads.n} folder head(s) name a version that is not recorded`);
      const [above] = await this.sql`
        SELECT COUNT(*) AS n FROM versions v JOIN folders f ON f.name = v.folder WHERE v.sequence > f.sequence_high`;
      if (Number(above.n) > 0) problems.push(`${above.n} version(s) have a sequence above their folder's highest`);
      const [origins] = await this.sql`SELECT COUNT(*) AS n FROM versions WHERE origin NOT IN ('push', 'merge', 'restore', 'replica')`;
      if (Number(origins.n) > 0) problems.push(`${origins.n} version(s) have an unknown origin`);
      const [summaries] = await this.sql`
        SELECT COUNT(*) AS n FROM checked_nodes
        WHERE (kind = 'file' AND size_bytes IS NULL) OR (kind = 'tree' AND height_dirs IS NULL)`;
      if (Number(summaries.n) > 0) problems.push(`${summaries.n} completeness mark(s) lack their summary`);
      const [raft] = await this.sql`
        SELECT (SELECT COUNT(*) FROM raft_entries) AS n, (SELECT MIN(log_index) FROM raft_entries) AS lo, (SELECT MAX(log_index) FROM raft_entries) AS hi,
               (SELECT COUNT(*) FROM raft_entries a JOIN raft_entries b ON b.log_index = a.log_index + 1 WHERE b.term < a.term) AS drops,
               (SELECT log_index FROM raft_snapshot WHERE id = 1) AS snap,
               (SELECT commit_index FROM raft_state WHERE id = 1) AS commit_index,
               EXISTS (SELECT 1 FROM raft_state WHERE id = 1) AS has_state`;
      const nullable = (v: unknown) => (v === null ? null : Number(v));
      problems.push(
        ...raftLogProblems({
          entries: Number(raft.n),
          minIndex: nullable(raft.lo),
          maxIndex: nullable(raft.hi),
          snapshotIndex: nullable(raft.snap),
          termDrops: Number(raft.drops),
          hasState: raft.has_state === true,
          commit: Number(raft.commit_index ?? 0),
        }),
      );
      // B-tree structure, where the amcheck extension is installed in this database.
      const amcheck = await this.sql`SELECT 1 FROM pg_extension WHERE extname = 'amcheck'`;
      if (amcheck.length > 0) {
        const indexes = await this.sql`
          SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
          WHERE t.relname IN ('meta', 'folders', 'versions', 'checked_nodes', 'raft_state', 'raft_entries', 'raft_snapshot') AND t.relnamespace = current_schema()::regnamespace`;
        for (const { relname } of indexes as { relname: string }[]) {
          try {
            await this.sql`SELECT bt_index_check(${relname}::regclass)`;
          } catch (error) {
            problems.push(`index ${relname}: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      }
    });
    return problems.length === 0 ? "ok" : problems.join("; ");
  }

  isDamage(error: unknown): boolean {
    // XX001 data_corrupted, XX002 index_corrupted: the server found its own files damaged.
    const state = errorState(error);
    return state === "XX001" || state === "XX002";
  }

  async stat(): Promise<MetadataStoreStat> {
    return this.call("stat", async () => {
      // Metrics read this on every scrape, and COUNT(*) reads the whole table on Postgres (a few
      // seconds for tens of millions of versions). A table the planner believes holds at least
      // STAT_ESTIMATE_ROWS_MIN rows is counted by its estimate (pg_class.reltuples, refreshed by
      // autovacuum's ANALYZE); a smaller one, or one never analyzed (-1), is counted exactly,
      // which costs little below that size.
      const [row] = await this.sql`
        SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_migrations) AS schema,
               (SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c
                 WHERE c.relname IN ('meta', 'folders', 'versions', 'checked_nodes', 'schema_migrations')
                   AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace) AS size_bytes`;
      const estimates = (await this.sql`
        SELECT c.relname, c.reltuples FROM pg_class c
        WHERE c.relname IN ('folders', 'versions', 'checked_nodes') AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace`) as { relname: string; reltuples: number }[];
      const estimateOf = new Map(estimates.map((e) => [e.relname, Number(e.reltuples)]));
      const rows = async (table: "folders" | "versions" | "checked_nodes"): Promise<number> => {
        const estimate = estimateOf.get(table) ?? -1;
        if (estimate >= STAT_ESTIMATE_ROWS_MIN) return Math.round(estimate);
        const [counted] = await this.sql.unsafe(`SELECT COUNT(*) AS n FROM ${table}`);
        return Number(counted.n);
      };
      return {
        backend: "postgres",
        location: this.location,
        sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
        folders: await rows("folders"),
        versions: await rows("versions"),
        checkedNodes: await rows("checked_nodes"),
        schemaVersion: Number(row.schema),
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Calls already made (a scrub position save, a write a shutdown caught midway) finish first,
    // for at most CLOSE_WAIT_MS: each is bounded by its own timer anyway, and a stop must end.
    if (this.inFlight.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
      await Promise.race([Promise.allSettled([...this.inFlight]), waited]);
      clearTimeout(timer);
    }
    await this.sql.close({ timeout: 5 });
  }
}
