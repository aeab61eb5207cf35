// Which objects each folder's versions reach, and which objects each token uploaded itself: so
// a token limited to some folders can be told about, and given, only objects it could read
// anyway or sent itself. Without it "which of these do you lack?" and the download routes
// would say whether any id is stored anywhere on the node, in any folder (an existence oracle).
//
// Its own SQLite file (folder-objects.sqlite), derived from the metadata and the store: each
// folder has a watermark, the highest version sequence whose closure is recorded. Catching up
// walks the versions above it, oldest first, from the version object down, and stops at ids
// already recorded for the folder: ids are Merkle hashes, so a recorded id's whole subtree is
// recorded too. That rule is kept by never recording an object before everything below it,
// all of one version in one transaction with the watermark, so a crash mid-walk leaves no
// member with an unrecorded child.
//
// Versions pruned by retention leave their objects recorded: a token for the folder could read
// them while they were kept. A structured object the walk cannot read (quarantined, awaiting
// repair) and everything above it stay unrecorded, and the watermark stays below that version,
// so the next catch-up tries again.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../core/id.ts";
import { childRefs, decodeObject, peekKind } from "../core/objects.ts";
import type { ObjectStore } from "../store/object-store.ts";
import type { VersionRecord } from "./metadata-records.ts";
import { Mutex } from "./mutex.ts";

export const MEMBERSHIP_FILE_NAME = "folder-objects.sqlite";
/** A token's record of its uploads is kept this long: long enough for any push to commit. */
export const UPLOAD_RECORD_MS = 7 * 24 * 3600 * 1000;
const PRUNE_INTERVAL_MS = 3600 * 1000;
const READ_BATCH = 256;
const VERSIONS_PAGE = 1000;

/** What the membership reads of the node: versions newest first, by page, and objects. */
export interface MembershipSource {
  store: Pick<ObjectStore, "get" | "getMany">;
  /** One page of a folder's versions newest first, below `beforeSequence`; null when the folder does not exist. */
  versionsPage(folder: string, limit: number, beforeSequence?: number): Promise<{ versions: VersionRecord[]; next: number | null } | null>;
}

export interface CatchUpReport {
  versions: number;
  added: number;
  /** Structured objects that could not be read: their ancestors stay unrecorded until a later catch-up. */
  unreadable: number;
}

export class FolderMembership {
  private readonly db: Database;
  private readonly locks = new Map<string, Mutex>();
  private lastPruneMs = -Infinity;

  private constructor(db: Database, private readonly source: MembershipSource) {
    this.db = db;
  }

  /** Opens (creating) the membership file in `dataDir`, or in memory for ":memory:". */
  static open(dataDir: string, source: MembershipSource): FolderMembership {
    const db = new Database(dataDir === ":memory:" ? ":memory:" : join(dataDir, MEMBERSHIP_FILE_NAME), { create: true, strict: true });
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
    db.exec(`
      CREATE TABLE IF NOT EXISTS folder_objects (folder TEXT NOT NULL, id BLOB NOT NULL, PRIMARY KEY (folder, id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS folder_watermarks (folder TEXT PRIMARY KEY, sequence INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS token_uploads (token TEXT NOT NULL, id BLOB NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (token, id)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS token_uploads_by_time ON token_uploads (at_ms);
    `);
    return new FolderMembership(db, source);
  }

  private lockOf(folder: string): Mutex {
    let lock = this.locks.get(folder);
    if (!lock) this.locks.set(folder, (lock = new Mutex()));
    return lock;
  }

  private watermark(folder: string): number {
    const row = this.db.query("SELECT sequence FROM folder_watermarks WHERE folder = ?").get(folder) as { sequence: number } | null;
    return row?.sequence ?? 0;
  }

  /** True once a catch-up recorded some version of the folder: a scoped token asked about it. */
  isTracked(folder: string): boolean {
    return this.db.query("SELECT 1 FROM folder_watermarks WHERE folder = ?").get(folder) !== null;
  }

  private isMember(folder: string, id: ObjectId): boolean {
    return this.db.query("SELECT 1 FROM folder_objects WHERE folder = ? AND id = ?").get(folder, id) !== null;
  }

  /**
   * Records the closure of every version of `folder` above its watermark. One at a time per
   * folder; a request that must be answered from a complete record awaits this first.
   */
  async catchUp(folder: string): Promise<CatchUpReport> {
    const lock = this.lockOf(folder);
    try {
      return await lock.run(() => this.catchUpNow(folder));
    } finally {
      if (lock.idle) this.locks.delete(folder);
    }
  }

  private async catchUpNow(folder: string): Promise<CatchUpReport> {
    const report: CatchUpReport = { versions: 0, added: 0, unreadable: 0 };
    const mark = this.watermark(folder);
    // Newer than the watermark, gathered newest first by page, then walked oldest first.
    const pending: VersionRecord[] = [];
    let below: number | undefined;
    for (;;) {
      const page = await this.source.versionsPage(folder, VERSIONS_PAGE, below);
      if (!page) return report;
      let done = false;
      for (const version of page.versions) {
        if (version.sequence <= mark) {
          done = true;
          break;
        }
        pending.push(version);
      }
      if (done || page.next === null) break;
      below = page.next;
    }
    pending.reverse();
    let advancing = true;
    for (const version of pending) {
      const walk = await this.walkNew(folder, version.id);
      report.versions++;
      report.unreadable += walk.unreadable;
      // Past a version that could not be walked whole, the watermark stays put, so it is walked again.
      if (walk.unreadable > 0) advancing = false;
      this.db
        .transaction(() => {
          const insert = this.db.query("INSERT OR IGNORE INTO folder_objects (folder, id) VALUES (?, ?)");
          for (const id of walk.recorded) report.added += insert.run(folder, id).changes;
          if (advancing) this.db.query("INSERT OR REPLACE INTO folder_watermarks (folder, sequence) VALUES (?, ?)").run(folder, version.sequence);
        })
        .immediate();
    }
    return report;
  }

  /**
   * The objects below (and including) `start` not yet recorded for the folder whose subtrees
   * could be read whole. Level by level down, then decided bottom up: an object is recordable
   * when none of its children failed.
   */
  private async walkNew(folder: string, start: ObjectId): Promise<{ recorded: ObjectId[]; unreadable: number }> {
    const children = new Map<string, string[]>();
    const ids = new Map<string, ObjectId>();
    const failed = new Set<string>();
    let frontier: { id: ObjectId; chunk: boolean }[] = [{ id: start, chunk: false }];
    while (frontier.length > 0) {
      const next: { id: ObjectId; chunk: boolean }[] = [];
      const toRead: ObjectId[] = [];
      for (const item of frontier) {
        const key = idToHex(item.id);
        if (ids.has(key) || this.isMember(folder, item.id)) continue;
        ids.set(key, item.id);
        if (item.chunk) children.set(key, []);
        else toRead.push(item.id);
      }
      for (let at = 0; at < toRead.length; at += READ_BATCH) {
        const batch = toRead.slice(at, at + READ_BATCH);
        let datas: (Uint8Array | undefined)[];
        try {
          datas = await this.source.store.getMany(batch);
        } catch {
          // A corrupt object in the batch: read them one by one to find which.
          datas = [];
          for (const id of batch) datas.push(await this.source.store.get(id).catch(() => undefined));
        }
        batch.forEach((id, i) => {
          const key = idToHex(id);
          const bytes = datas[i];
          if (!bytes) {
            failed.add(key);
            children.set(key, []);
            return;
          }
          const below: string[] = [];
          if (peekKind(bytes) !== undefined) {
            try {
              const refs = childRefs(decodeObject(bytes));
              for (const child of refs.objects) next.push({ id: child, chunk: false }), below.push(idToHex(child));
              for (const child of refs.chunks) next.push({ id: child, chunk: true }), below.push(idToHex(child));
            } catch {
              // Bytes that only look structured (a chunk): nothing below them.
            }
          }
          children.set(key, below);
        });
      }
      frontier = next;
    }
    const unreadable = failed.size;
    if (unreadable > 0) {
      // Failure climbs to every ancestor; a shared subtree may sit at several depths, so repeat until nothing changes.
      let changed = true;
      while (changed) {
        changed = false;
        for (const [key, below] of children) {
          if (!failed.has(key) && below.some((child) => failed.has(child))) {
            failed.add(key);
            changed = true;
          }
        }
      }
    }
    const recorded: ObjectId[] = [];
    for (const [key, id] of ids) if (!failed.has(key)) recorded.push(id);
    return { recorded, unreadable };
  }

  /** For each id: is it recorded for one of `folders`? (Catch those folders up first.) */
  membersOf(folders: readonly string[], ids: readonly ObjectId[]): boolean[] {
    return ids.map((id) => folders.some((folder) => this.isMember(folder, id)));
  }

  /** Records that `token` uploaded these objects (it holds their bytes, so it may ask about and read them). */
  recordUploads(token: string, ids: readonly ObjectId[], nowMs: number): void {
    if (ids.length === 0) return;
    if (nowMs - this.lastPruneMs >= PRUNE_INTERVAL_MS) {
      this.lastPruneMs = nowMs;
      this.pruneUploads(nowMs);
    }
    this.db
      .transaction(() => {
        const insert = this.db.query("INSERT OR REPLACE INTO token_uploads (token, id, at_ms) VALUES (?, ?, ?)");
        for (const id of ids) insert.run(token, id, nowMs);
      })
      .immediate();
  }

  uploadedBy(token: string, ids: readonly ObjectId[], nowMs: number): boolean[] {
    const query = this.db.query("SELECT 1 FROM token_uploads WHERE token = ? AND id = ? AND at_ms > ?");
    return ids.map((id) => query.get(token, id, nowMs - UPLOAD_RECORD_MS) !== null);
  }

  /** Forgets uploads older than UPLOAD_RECORD_MS; returns how many. */
  pruneUploads(nowMs: number): number {
    return this.db.query("DELETE FROM token_uploads WHERE at_ms <= ?").run(nowMs - UPLOAD_RECORD_MS).changes;
  }

  /**
   * The objects of the tree at `root` a token may not commit: neither recorded for one of
   * `folders` nor uploaded by it (an object it uploaded is looked below, since its children
   * may be anyone's). At most `limit`. A commit naming one of them fails as if it were not
   * stored, so a commit cannot be used to learn, or take, what another folder holds.
   */
  async invisibleBelow(root: ObjectId, folders: readonly string[], token: string, nowMs: number, limit = 1000): Promise<ObjectId[]> {
    const invisible: ObjectId[] = [];
    const seen = new Set<string>();
    let frontier: { id: ObjectId; chunk: boolean }[] = [{ id: root, chunk: false }];
    while (frontier.length > 0 && invisible.length < limit) {
      const next: { id: ObjectId; chunk: boolean }[] = [];
      const toRead: ObjectId[] = [];
      for (const item of frontier) {
        const key = idToHex(item.id);
        if (seen.has(key)) continue;
        seen.add(key);
        if (this.membersOf(folders, [item.id])[0]) continue;
        if (!this.uploadedBy(token, [item.id], nowMs)[0]) {
          if (invisible.length < limit) invisible.push(item.id);
          continue;
        }
        if (!item.chunk) toRead.push(item.id);
      }
      for (let at = 0; at < toRead.length; at += READ_BATCH) {
        const batch = toRead.slice(at, at + READ_BATCH);
        const datas = await this.source.store.getMany(batch);
        for (const bytes of datas) {
          // Not stored: the commit's own closure check names it.
          if (!bytes || peekKind(bytes) === undefined) continue;
          try {
            const refs = childRefs(decodeObject(bytes));
            for (const child of refs.objects) next.push({ id: child, chunk: false });
            for (const child of refs.chunks) next.push({ id: child, chunk: true });
          } catch {
            // Not a structured object after all: nothing below it.
          }
        }
      }
      frontier = next;
    }
    return invisible;
  }

  /** Rows recorded for a folder, for measurements. */
  countMembers(folder: string): number {
    return (this.db.query("SELECT COUNT(*) AS n FROM folder_objects WHERE folder = ?").get(folder) as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}
