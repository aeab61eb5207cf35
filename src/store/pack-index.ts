// The pack store's index: where each object's record lives, in SQLite.
//
// A row in `objects` is what makes an object visible, so rows go in only after their record's
// bytes are flushed, in one transaction per batch. The `packs` table keeps per-pack counters in
// the same transactions, so stats() and repack never scan every row, and `committed_end` tells
// recovery where each pack's acknowledged bytes end.
//
// `quarantine` holds objects a read found corrupt: their row left `objects` (so they read as
// absent and get sent again) but where their damaged record lies is kept, and repack leaves
// that pack alone until a good copy was stored (`repaired_ms`), since the damaged bytes may be
// all there is of the object.
import { Database, type SQLQueryBindings, type Statement } from "bun:sqlite";
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

const SCHEMA_VERSION = "1";
/**
 * SQLite page cache of the index, in KiB: SQLite's own default (2 MiB), said here so it is a
 * bound of ours. A 1 000 000-object index is ~100 MiB on disk; its hot upper pages fit, and the
 * rest comes from the kernel's page cache, which costs the node nothing.
 */
const INDEX_CACHE_KIB = 2048;

export interface IndexEntry {
  id: ObjectId;
  packNumber: number;
  offsetBytes: number;
  storedLengthBytes: number;
  rawLengthBytes: number;
  flags: number;
}

export interface PackRow {
  packNumber: number;
  /** Everything in the pack before this offset was written and flushed before its rows committed. */
  committedEndBytes: number;
  liveObjects: number;
  liveStoredBytes: number;
  liveRawBytes: number;
}

export interface EntryMove {
  entry: IndexEntry;
  toPackNumber: number;
  toOffsetBytes: number;
}

interface EntryRow {
  id: Uint8Array;
  pack: number;
  offset: number;
  stored_length: number;
  raw_length: number;
  flags: number;
}

interface PackTableRow {
  pack: number;
  committed_end: number;
  live_objects: number;
  live_stored_bytes: number;
  live_raw_bytes: number;
}

export interface QuarantineRow {
  id: ObjectId;
  foundMs: number;
  foundBy: string;
  detail: string;
  repairedMs: number | null;
}

interface QuarantineTableRow {
  id: Uint8Array;
  found_ms: number;
  found_by: string;
  detail: string;
  repaired_ms: number | null;
}

interface RemovedRow {
  pack: number;
  stored_length: number;
  raw_length: number;
}

export class StoreInUseError extends Error {
  override name = "StoreInUseError";
  constructor(readonly path: string, detail: string) {
    super(`${path} is open in another process or store instance (${detail})`);
  }
}

export class PackIndex {
  private readonly selectEntry: Statement<EntryRow, [Uint8Array]>;
  private readonly selectPresent: Statement<{ present: number }, [Uint8Array]>;
  /** selectEntry and selectPresent for LIMITS.indexLookupBatchIds ids at once (a shorter batch repeats its last id). */
  private readonly selectEntries: Statement<EntryRow, Uint8Array[]>;
  private readonly selectPresentIds: Statement<{ id: Uint8Array }, Uint8Array[]>;
  private readonly insertEntry: Statement<unknown, [Uint8Array, number, number, number, number, number, number]>;
  private readonly touchEntry: Statement<unknown, [number, Uint8Array]>;
  private readonly deleteEntry: Statement<RemovedRow, [Uint8Array]>;
  private readonly deleteEntryIfUnused: Statement<RemovedRow, [Uint8Array, number]>;
  private readonly moveEntry: Statement<unknown, [number, number, Uint8Array, number, number]>;
  private readonly adjustPack: Statement<unknown, [number, number, number, number, number]>;
  private readonly selectIdsAfter: Statement<{ id: Uint8Array }, [Uint8Array, number]>;
  private readonly selectUnusedIdsAfter: Statement<{ id: Uint8Array }, [Uint8Array, number, number]>;
  private readonly selectEntriesInPack: Statement<EntryRow, [number, number, number]>;
  private readonly countEntriesInPack: Statement<{ n: number }, [number]>;
  private readonly deleteEntryAt: Statement<RemovedRow, [Uint8Array, number, number]>;
  private readonly upsertQuarantine: Statement<unknown, [Uint8Array, number, number, number, number, number, number, string, string]>;
  private readonly markRepaired: Statement<unknown, [number, Uint8Array]>;
  private readonly anyUnrepaired: Statement<unknown, []>;
  private readonly deleteQuarantined: Statement<unknown, [Uint8Array]>;

  /** Every prepared statement, finalized on close: SQLite keeps the file (and its lock) open until they are. */
  private readonly statements: { finalize(): void }[] = [];

  private constructor(private readonly db: Database) {
    db.run(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`);
    db.run(`CREATE TABLE IF NOT EXISTS objects (
      id BLOB PRIMARY KEY,
      pack INTEGER NOT NULL,
      "offset" INTEGER NOT NULL,
      stored_length INTEGER NOT NULL,
      raw_length INTEGER NOT NULL,
      flags INTEGER NOT NULL,
      used_ms INTEGER NOT NULL
    ) WITHOUT ROWID`);
    // Repack and verifyAll walk one pack in file order; 64 KiB chunks make this index cheap to keep.
    db.run(`CREATE INDEX IF NOT EXISTS objects_by_pack ON objects (pack, "offset")`);
    db.run(`CREATE TABLE IF NOT EXISTS packs (
      pack INTEGER PRIMARY KEY,
      committed_end INTEGER NOT NULL,
      live_objects INTEGER NOT NULL,
      live_stored_bytes INTEGER NOT NULL,
      live_raw_bytes INTEGER NOT NULL
    )`);
    db.run(`CREATE TABLE IF NOT EXISTS quarantine (
      id BLOB PRIMARY KEY,
      pack INTEGER NOT NULL,
      "offset" INTEGER NOT NULL,
      stored_length INTEGER NOT NULL,
      raw_length INTEGER NOT NULL,
      flags INTEGER NOT NULL,
      found_ms INTEGER NOT NULL,
      found_by TEXT NOT NULL,
      detail TEXT NOT NULL,
      repaired_ms INTEGER
    ) WITHOUT ROWID`);
    const version = db.query<{ value: string }, [string]>(`SELECT value FROM meta WHERE key = ?`).get("schema_version");
    if (version === null) {
      db.query(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)`).run(SCHEMA_VERSION);
    } else if (version.value !== SCHEMA_VERSION) {
      throw new Error(`index schema version ${version.value} is not the supported ${SCHEMA_VERSION}`);
    }

    this.selectEntry = this.prepare(`SELECT id, pack, "offset", stored_length, raw_length, flags FROM objects WHERE id = ?`);
    this.selectPresent = this.prepare(`SELECT 1 AS present FROM objects WHERE id = ?`);
    const batchIn = `(${Array(LIMITS.indexLookupBatchIds).fill("?").join(", ")})`;
    this.selectEntries = this.prepare(`SELECT id, pack, "offset", stored_length, raw_length, flags FROM objects WHERE id IN ${batchIn}`);
    this.selectPresentIds = this.prepare(`SELECT id FROM objects WHERE id IN ${batchIn}`);
    this.insertEntry = this.prepare(
      `INSERT INTO objects (id, pack, "offset", stored_length, raw_length, flags, used_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    );
    this.touchEntry = this.prepare(`UPDATE objects SET used_ms = max(used_ms, ?) WHERE id = ?`);
    this.deleteEntry = this.prepare(`DELETE FROM objects WHERE id = ? RETURNING pack, stored_length, raw_length`);
    this.deleteEntryIfUnused = this.prepare(
      `DELETE FROM objects WHERE id = ? AND used_ms < ? RETURNING pack, stored_length, raw_length`,
    );
    this.moveEntry = this.prepare(`UPDATE objects SET pack = ?, "offset" = ? WHERE id = ? AND pack = ? AND "offset" = ?`);
    this.adjustPack = this.prepare(
      `INSERT INTO packs (pack, committed_end, live_objects, live_stored_bytes, live_raw_bytes) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (pack) DO UPDATE SET
         committed_end = max(committed_end, excluded.committed_end),
         live_objects = live_objects + excluded.live_objects,
         live_stored_bytes = live_stored_bytes + excluded.live_stored_bytes,
         live_raw_bytes = live_raw_bytes + excluded.live_raw_bytes`,
    );
    this.selectIdsAfter = this.prepare(`SELECT id FROM objects WHERE id > ? ORDER BY id LIMIT ?`);
    this.selectUnusedIdsAfter = this.prepare(`SELECT id FROM objects WHERE id > ? AND used_ms < ? ORDER BY id LIMIT ?`);
    this.selectEntriesInPack = this.prepare(
      `SELECT id, pack, "offset", stored_length, raw_length, flags FROM objects
       WHERE pack = ? AND "offset" > ? ORDER BY "offset" LIMIT ?`,
    );
    this.countEntriesInPack = this.prepare(`SELECT count(*) AS n FROM objects WHERE pack = ?`);
    this.deleteEntryAt = this.prepare(
      `DELETE FROM objects WHERE id = ? AND pack = ? AND "offset" = ? RETURNING pack, stored_length, raw_length`,
    );
    this.upsertQuarantine = this.prepare(
      `INSERT INTO quarantine (id, pack, "offset", stored_length, raw_length, flags, found_ms, found_by, detail, repaired_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
       ON CONFLICT (id) DO UPDATE SET pack = excluded.pack, "offset" = excluded."offset",
         stored_length = excluded.stored_length, raw_length = excluded.raw_length, flags = excluded.flags,
         found_ms = excluded.found_ms, found_by = excluded.found_by, detail = excluded.detail, repaired_ms = NULL`,
    );
    this.markRepaired = this.prepare(`UPDATE quarantine SET repaired_ms = ? WHERE id = ? AND repaired_ms IS NULL`);
    this.anyUnrepaired = this.prepare(`SELECT 1 FROM quarantine WHERE repaired_ms IS NULL LIMIT 1`);
    this.deleteQuarantined = this.prepare(`DELETE FROM quarantine WHERE id = ? AND repaired_ms IS NULL`);
  }

  /**
   * Opens (creating if needed) and takes SQLite's exclusive lock for as long as the index is open,
   * so a second process or store instance on the same directory fails instead of interleaving appends.
   */
  static open(path: string): PackIndex {
    const db = new Database(path, { create: true });
    try {
      db.run("PRAGMA locking_mode = EXCLUSIVE");
      db.run("PRAGMA journal_mode = WAL");
      // FULL: a committed batch survives power loss, which is what put's promise says.
      db.run("PRAGMA synchronous = FULL");
      // The page cache is bounded in bytes (negative: KiB), and the file is read, never mapped,
      // so the index costs the node at most this much memory however many objects it names.
      db.run(`PRAGMA cache_size = -${INDEX_CACHE_KIB}`);
      db.run("PRAGMA mmap_size = 0");
      db.run("BEGIN IMMEDIATE");
      db.run("COMMIT");
      return new PackIndex(db);
    } catch (error) {
      db.close();
      const message = error instanceof Error ? error.message : String(error);
      if (/locked|busy/i.test(message)) throw new StoreInUseError(path, message);
      throw error;
    }
  }

  /** False for a new index and for one whose rebuild was interrupted. */
  isComplete(): boolean {
    return this.db.query(`SELECT 1 FROM meta WHERE key = 'index_complete'`).get() !== null;
  }

  markComplete(): void {
    this.db.run(`INSERT OR REPLACE INTO meta (key, value) VALUES ('index_complete', '1')`);
  }

  /** Empties the index before a rebuild; it counts as incomplete until markComplete(). */
  clear(): void {
    this.db.transaction(() => {
      this.db.run(`DELETE FROM meta WHERE key = 'index_complete'`);
      this.db.run(`DELETE FROM objects`);
      this.db.run(`DELETE FROM packs`);
    })();
  }

  lookup(id: ObjectId): IndexEntry | undefined {
    const row = this.selectEntry.get(id);
    return row === null ? undefined : toEntry(row);
  }

  has(id: ObjectId): boolean {
    return this.selectPresent.get(id) !== null;
  }

  /** lookup for many ids, one statement per LIMITS.indexLookupBatchIds of them; one answer per id, in order. */
  lookupMany(ids: readonly ObjectId[]): (IndexEntry | undefined)[] {
    const found = new Map<string, IndexEntry>();
    for (const batch of lookupBatches(ids)) for (const row of this.selectEntries.all(...batch)) found.set(idToHex(row.id), toEntry(row));
    return ids.map((id) => found.get(idToHex(id)));
  }

  /** has for many ids, one statement per LIMITS.indexLookupBatchIds of them; one answer per id, in order. */
  hasMany(ids: readonly ObjectId[]): boolean[] {
    const present = new Set<string>();
    for (const batch of lookupBatches(ids)) for (const row of this.selectPresentIds.all(...batch)) present.add(idToHex(row.id));
    return ids.map((id) => present.has(idToHex(id)));
  }

  /**
   * Makes flushed records visible: inserts their rows, advances each pack's committed end, and
   * refreshes used_ms of ids the batch found already present. One transaction.
   */
  commitAppends(
    entries: readonly IndexEntry[],
    packEnds: ReadonlyMap<number, number>,
    presentIds: readonly ObjectId[],
    nowMs: number,
    /**
     * False: the commit does not wait for the disk (SQLite's synchronous=NORMAL: the WAL is
     * flushed by a later commit that waits, or a checkpoint). Only for rows whose records are
     * already flushed: a crash may lose the rows, never the records, and the store's recovery
     * indexes the flushed records past each pack's committed end again.
     */
    waitForDisk = true,
  ): void {
    // In id order: inserts into the id-keyed table then land near each other instead of all over it.
    const sorted = entries.length > 1 ? [...entries].sort((a, b) => Buffer.compare(a.id, b.id)) : entries;
    if (!waitForDisk) this.db.run("PRAGMA synchronous = NORMAL");
    try {
      this.commitAppendsNow(sorted, packEnds, presentIds, nowMs);
    } finally {
      if (!waitForDisk) this.db.run("PRAGMA synchronous = FULL");
    }
  }

  /**
   * Pack ends past which recovery must not index records (their batch failed and its bytes
   * could not be cut off: they were written, maybe never flushed, and are not to be trusted).
   */
  sealedPackEnds(): Map<number, number> {
    const rows = this.db.query<{ key: string; value: string }, []>(`SELECT key, value FROM meta WHERE key LIKE 'sealed:%'`).all();
    return new Map(rows.map((row) => [Number(row.key.slice("sealed:".length)), Number(row.value)]));
  }

  /** Records that nothing past `endBytes` of a pack may be indexed by recovery (a durable commit). */
  sealPack(packNumber: number, endBytes: number): void {
    this.db.query(`INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)`).run(`sealed:${packNumber}`, String(endBytes));
  }

  /** Forgets a pack's seal once the bytes past it are gone. */
  unsealPack(packNumber: number): void {
    this.db.query(`DELETE FROM meta WHERE key = ?`).run(`sealed:${packNumber}`);
  }

  private commitAppendsNow(sorted: readonly IndexEntry[], packEnds: ReadonlyMap<number, number>, presentIds: readonly ObjectId[], nowMs: number): void {
    this.db.transaction(() => {
      const deltas = new PackDeltas();
      // Asked once per transaction: with nothing awaiting repair, no object needs the quarantine looked up.
      const repairing = this.anyUnrepaired.get() !== null;
      for (const e of sorted) {
        const { changes } = this.insertEntry.run(e.id, e.packNumber, e.offsetBytes, e.storedLengthBytes, e.rawLengthBytes, e.flags, nowMs);
        if (changes === 1) {
          deltas.add(e.packNumber, 1, e.storedLengthBytes, e.rawLengthBytes);
          // A good copy of a quarantined object: its damaged record is garbage from now on.
          if (repairing) this.markRepaired.run(nowMs, e.id);
        }
      }
      for (const [packNumber, endBytes] of packEnds) deltas.end(packNumber, endBytes);
      for (const id of presentIds) this.touchEntry.run(nowMs, id);
      this.applyDeltas(deltas);
    })();
  }

  /** Sets used_ms to at least nowMs; one answer per id, true when it was present. */
  touch(ids: readonly ObjectId[], nowMs: number): boolean[] {
    return this.db.transaction(() => ids.map((id) => this.touchEntry.run(nowMs, id).changes === 1))();
  }

  /** Deletes rows (only those with used_ms below the cutoff, when one is given); returns how many went. */
  deleteIds(ids: readonly ObjectId[], unusedBeforeMs?: number): number {
    return this.db.transaction(() => {
      const deltas = new PackDeltas();
      let removed = 0;
      for (const id of ids) {
        const row = unusedBeforeMs === undefined ? this.deleteEntry.get(id) : this.deleteEntryIfUnused.get(id, unusedBeforeMs);
        if (row === null) continue;
        removed++;
        deltas.add(row.pack, -1, -row.stored_length, -row.raw_length);
      }
      this.applyDeltas(deltas);
      return removed;
    })();
  }

  /** Points rows at their copies, in one transaction (records found corrupt are quarantined instead: quarantine()). */
  commitMoves(moves: readonly EntryMove[], packEnds: ReadonlyMap<number, number>): void {
    this.db.transaction(() => {
      const deltas = new PackDeltas();
      for (const { entry: e, toPackNumber, toOffsetBytes } of moves) {
        const { changes } = this.moveEntry.run(toPackNumber, toOffsetBytes, e.id, e.packNumber, e.offsetBytes);
        if (changes !== 1) continue;
        deltas.add(e.packNumber, -1, -e.storedLengthBytes, -e.rawLengthBytes);
        deltas.add(toPackNumber, 1, e.storedLengthBytes, e.rawLengthBytes);
      }
      for (const [packNumber, endBytes] of packEnds) deltas.end(packNumber, endBytes);
      this.applyDeltas(deltas);
    })();
  }

  /**
   * Takes the rows of records found corrupt out of `objects` and records them in `quarantine`,
   * in one transaction. A row that moved or went since the caller read it (a concurrent repack,
   * delete or put) is left alone. Returns the ids quarantined.
   */
  quarantine(found: readonly { entry: IndexEntry; detail: string }[], foundBy: string, nowMs: number): ObjectId[] {
    return this.db.transaction(() => {
      const deltas = new PackDeltas();
      const quarantined: ObjectId[] = [];
      for (const { entry: e, detail } of found) {
        const row = this.deleteEntryAt.get(e.id, e.packNumber, e.offsetBytes);
        if (row === null) continue;
        deltas.add(row.pack, -1, -row.stored_length, -row.raw_length);
        this.upsertQuarantine.run(e.id, e.packNumber, e.offsetBytes, e.storedLengthBytes, e.rawLengthBytes, e.flags, nowMs, foundBy, detail);
        quarantined.push(e.id);
      }
      this.applyDeltas(deltas);
      return quarantined;
    })();
  }

  quarantineRows(unrepairedOnly: boolean): QuarantineRow[] {
    const where = unrepairedOnly ? "WHERE repaired_ms IS NULL" : "";
    return this.db
      .query<QuarantineTableRow, []>(`SELECT id, found_ms, found_by, detail, repaired_ms FROM quarantine ${where} ORDER BY found_ms, id`)
      .all()
      .map((row) => ({ id: row.id as ObjectId, foundMs: row.found_ms, foundBy: row.found_by, detail: row.detail, repairedMs: row.repaired_ms }));
  }

  quarantineCounts(): { quarantined: number; repaired: number } {
    const row = this.db
      .query<{ quarantined: number | null; repaired: number | null }, []>(
        `SELECT sum(repaired_ms IS NULL) AS quarantined, sum(repaired_ms IS NOT NULL) AS repaired FROM quarantine`,
      )
      .get();
    return { quarantined: row?.quarantined ?? 0, repaired: row?.repaired ?? 0 };
  }

  /** Removes unrepaired quarantine rows (gc: nothing kept needs them); returns how many went. */
  dropQuarantined(ids: readonly ObjectId[]): number {
    return this.db.transaction(() => {
      let dropped = 0;
      for (const id of ids) dropped += this.deleteQuarantined.run(id).changes;
      return dropped;
    })();
  }

  /** Packs that hold the damaged record of an object not yet stored again: repack must keep them. */
  packsHoldingQuarantined(): Set<number> {
    const rows = this.db.query<{ pack: number }, []>(`SELECT DISTINCT pack FROM quarantine WHERE repaired_ms IS NULL`).all();
    return new Set(rows.map((row) => row.pack));
  }

  /**
   * SQLite's cheaper check (every page read, no index-to-table cross-check): "ok", or what is
   * wrong. Run at every open: open and check took 18-75 ms on an index of 100 000 objects
   * (scripts/bench/quick-check.ts, on a loaded 2-core machine).
   */
  quickCheck(): string {
    const rows = this.db.query<{ quick_check: string }, []>("PRAGMA quick_check").all();
    return rows.map((row) => row.quick_check).join("; ");
  }

  /**
   * Quarantines a damaged record a rebuild scan found (its header names an id, its bytes do not
   * hash to it), unless the id is already indexed from a good copy: repack then keeps its pack
   * until a good copy is stored, since the damaged bytes may be all there is of the object.
   */
  quarantineScanned(entry: IndexEntry, detail: string, foundBy: string, nowMs: number): boolean {
    if (this.has(entry.id)) return false;
    this.upsertQuarantine.run(entry.id, entry.packNumber, entry.offsetBytes, entry.storedLengthBytes, entry.rawLengthBytes, entry.flags, nowMs, foundBy, detail);
    return true;
  }

  /** SQLite's own structural check of the index file: "ok", or what is wrong. */
  integrityCheck(): string {
    const rows = this.db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").all();
    return rows.map((row) => row.integrity_check).join("; ");
  }

  /** Records a pack found by a rebuild scan, even one with no valid records. */
  ensurePack(packNumber: number, committedEndBytes: number): void {
    this.adjustPack.run(packNumber, committedEndBytes, 0, 0, 0);
  }

  /** Forgets a pack whose rows have all moved away; refuses while any row still points into it. */
  removePack(packNumber: number): void {
    this.db.transaction(() => {
      const { n } = this.countEntriesInPack.get(packNumber)!;
      if (n !== 0) throw new Error(`pack ${packNumber} still holds ${n} indexed objects`);
      this.db.query(`DELETE FROM packs WHERE pack = ?`).run(packNumber);
    })();
  }

  packRows(): PackRow[] {
    return this.db
      .query<PackTableRow, []>(`SELECT pack, committed_end, live_objects, live_stored_bytes, live_raw_bytes FROM packs ORDER BY pack`)
      .all()
      .map((row) => ({
        packNumber: row.pack,
        committedEndBytes: row.committed_end,
        liveObjects: row.live_objects,
        liveStoredBytes: row.live_stored_bytes,
        liveRawBytes: row.live_raw_bytes,
      }));
  }

  /** Ids in byte order after `afterId` (exclusive); keyset paging stays correct while rows change. */
  idsAfter(afterId: Uint8Array, limit: number, unusedBeforeMs?: number): ObjectId[] {
    const rows = unusedBeforeMs === undefined ? this.selectIdsAfter.all(afterId, limit) : this.selectUnusedIdsAfter.all(afterId, unusedBeforeMs, limit);
    return rows.map((row) => row.id as ObjectId);
  }

  /** Rows of one pack in file order, after `afterOffsetBytes` (exclusive). */
  entriesInPack(packNumber: number, afterOffsetBytes: number, limit: number): IndexEntry[] {
    return this.selectEntriesInPack.all(packNumber, afterOffsetBytes, limit).map(toEntry);
  }

  close(): void {
    for (const statement of this.statements) statement.finalize();
    this.db.close();
  }

  private prepare<Row, Params extends SQLQueryBindings[]>(sql: string): Statement<Row, Params> {
    const statement = this.db.prepare<Row, Params>(sql) as Statement<Row, Params>;
    this.statements.push(statement);
    return statement;
  }

  private applyDeltas(deltas: PackDeltas): void {
    for (const [packNumber, d] of deltas.byPack) {
      this.adjustPack.run(packNumber, d.endBytes, d.objects, d.storedBytes, d.rawBytes);
    }
  }
}

/** Counter changes per pack, summed in memory so a batch writes each pack row once. */
class PackDeltas {
  readonly byPack = new Map<number, { endBytes: number; objects: number; storedBytes: number; rawBytes: number }>();

  add(packNumber: number, objects: number, storedBytes: number, rawBytes: number): void {
    const d = this.get(packNumber);
    d.objects += objects;
    d.storedBytes += storedBytes;
    d.rawBytes += rawBytes;
  }

  end(packNumber: number, endBytes: number): void {
    const d = this.get(packNumber);
    d.endBytes = Math.max(d.endBytes, endBytes);
  }

  private get(packNumber: number) {
    let d = this.byPack.get(packNumber);
    if (d === undefined) {
      d = { endBytes: 0, objects: 0, storedBytes: 0, rawBytes: 0 };
      this.byPack.set(packNumber, d);
    }
    return d;
  }
}

/** Ids in batches of exactly LIMITS.indexLookupBatchIds (the last padded with its own last id, which IN ignores), for the one prepared statement. */
function* lookupBatches(ids: readonly ObjectId[]): Generator<Uint8Array[]> {
  const size = LIMITS.indexLookupBatchIds;
  for (let start = 0; start < ids.length; start += size) {
    const batch: Uint8Array[] = ids.slice(start, start + size);
    while (batch.length < size) batch.push(batch[batch.length - 1]!);
    yield batch;
  }
}

function toEntry(row: EntryRow): IndexEntry {
  return {
    id: row.id as ObjectId,
    packNumber: row.pack,
    offsetBytes: row.offset,
    storedLengthBytes: row.stored_length,
    rawLengthBytes: row.raw_length,
    flags: row.flags,
  };
}
