// The on-disk object store: append-only pack files plus a SQLite index.
//
// A file per 64 KiB chunk costs a create and an fsync per chunk (44 MB/s measured); appending
// records to a pack costs one flush per batch. An object is visible exactly when its index row
// exists, and rows are committed only after their bytes are flushed, so a crash can leave
// unacknowledged bytes at a pack's end but never a visible half object; rows lost with a commit
// that did not wait for the disk are found again from the flushed records past the committed
// end. Layout and recovery rules: docs/format.md ("Object store on disk", "Opening and crash recovery").
import { join } from "node:path";
import { idToHex, type ObjectId } from "../core/id.ts";
import {
  CorruptObjectError,
  checkObjectSizes,
  QuarantineListeners,
  verifyObjects,
  type ObjectStore,
  type QuarantineFinder,
  type QuarantineListener,
  type QuarantineRecord,
  type QuarantineStats,
  type ScrubStep,
  type StoredObject,
} from "./object-store.ts";
import { nodeFileSystem, type FileSystem } from "./file-system.ts";
import { encodePayload } from "./pack-compression.ts";
import { isPackHeader, packFileName, parsePackFileName, PACK_HEADER_LENGTH_BYTES, RECORD_HEADER_LENGTH_BYTES } from "./pack-format.ts";
import { PackIndex, StoreInUseError, type EntryMove, type IndexEntry, type PackRow } from "./pack-index.ts";
import { fileSizeBytes, isNotFound, readFully, truncateDurably } from "./pack-io.ts";
import { PackReadCache } from "./pack-read-cache.ts";
import { verifyRecord, type VerifiedRecord } from "./pack-record.ts";
import { scanPack, scanTail, type ScannedRecord } from "./pack-scan.ts";
import { PackWriteQueue } from "./pack-write-queue.ts";
import { hasOrphanedCompanions, isSqliteDamage, moveAsideDamaged } from "./sqlite-damage.ts";
import { NEW_PACK_SUFFIX, PackWriter, type AbandonedPack, type PendingRecord } from "./pack-writer.ts";

export const PACKS_DIR_NAME = "packs";
export const INDEX_FILE_NAME = "index.sqlite";

const PACK_SIZE_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;
const COMPRESSION_LEVEL_DEFAULT = 1;
/** A put batch is flushed and committed in steps of about this many stored bytes, bounding memory. */
const COMMIT_STEP_BYTES = 32 * 1024 * 1024;
/**
 * An upload group's index commit does not wait for the disk (its records were flushed first,
 * and recovery finds them again past the pack's committed end), except one at least this long
 * after the last that did: a crash then costs recovery at most about this much of the last
 * writes to read again, and each upload group one fsync (its pack's) instead of two.
 */
const INDEX_SYNC_INTERVAL_MS = 1000;
/** Rows committed per transaction while rebuilding the index. */
const REBUILD_COMMIT_ROWS = 4096;
const LIST_PAGE_IDS = 1024;
const VERIFY_PAGE_IDS = 1024;
const SCRUB_PAGE_IDS = 256;
const REPACK_PAGE_ROWS = 256;
const REPACK_LIVE_RATIO_MIN_DEFAULT = 0.5;

export interface PackObjectStoreOptions {
  /** A new pack is started when the next record would grow the active one past this. Default 256 MiB. */
  packSizeBytesMax?: number;
  /** Store objects zstd-compressed where that saves at least 5%. Default true. */
  compression?: boolean;
  /** zstd level, 1 (fastest) to 19. Default 1: the store must keep up with scanning. */
  compressionLevel?: number;
  /** The clock for used_ms; tests pass their own. Default Date.now. */
  nowMs?: () => number;
  /** Where pack files are read and written; tests pass one that injects faults. Default node:fs. */
  fileSystem?: FileSystem;
}

/** What open() found and fixed; all zero after a clean shutdown. */
export interface RecoveryReport {
  /** The index was missing or its last rebuild was interrupted, so it was rebuilt from the packs. */
  rebuiltIndex: boolean;
  /** Valid records found by that rebuild. */
  recordsIndexed: number;
  /**
   * Whole records that rebuild found damaged (their bytes do not hash to the id in their
   * header) and quarantined, so their packs are kept until good copies are stored.
   */
  recordsQuarantined: number;
  /**
   * The index could not be used (SQLite reported it damaged, or its quick check failed): what
   * was wrong, and where the damaged file was moved to. The index was then rebuilt from the packs.
   */
  damagedIndex: { problem: string; movedTo: string } | null;
  /**
   * Records past a pack's committed end (or in a pack the index had no row for) indexed again:
   * flushed before an index commit that did not wait for the disk, whose rows the crash lost.
   */
  recordsRecovered: number;
  /** Bytes after the last acknowledged record of a pack (an interrupted batch), cut off. */
  truncatedBytes: number;
  /** Pack files without any acknowledged record (created by an interrupted batch or repack), removed. */
  packFilesRemoved: number;
}

export interface RepackOptions {
  /** Rewrite packs whose live records fill less than this share of them. Default 0.5. */
  liveRatioMin?: number;
}

export interface RepackReport {
  packFilesRemoved: number;
  objectsMoved: number;
  /** Pack bytes freed, net of the bytes the moved records took up again. */
  bytesReclaimed: number;
  /**
   * Objects that failed verification while being moved: quarantined (they read as absent), and
   * their pack kept, since the damaged record may be all there is of them.
   */
  corruptIds: ObjectId[];
}

export interface VerifyProblem {
  id: ObjectId;
  detail: string;
}

export interface VerifyProgress {
  checkedObjects: number;
  totalObjects: number;
}

interface WaitingPut {
  objects: readonly StoredObject[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class PackObjectStore implements ObjectStore {
  private readonly index: PackIndex;
  private readonly readers: PackReadCache;
  private readonly queue = new PackWriteQueue();
  private readonly packSizeBytesMax: number;
  private readonly compressionLevel: number | undefined;
  private readonly nowMs: () => number;
  private readonly files: FileSystem;
  private writer!: PackWriter;
  private closing: Promise<void> | undefined;
  /** Verified putMany calls waiting for the writer. */
  private waitingPuts: WaitingPut[] = [];
  private lastRecovery!: RecoveryReport;
  /** When an index commit last waited for the disk (performance.now()). */
  private lastIndexSyncMs = Number.NEGATIVE_INFINITY;
  private readonly quarantineListeners = new QuarantineListeners();

  private constructor(readonly dir: string, private readonly packsDir: string, index: PackIndex, options: PackObjectStoreOptions) {
    this.index = index;
    this.files = options.fileSystem ?? nodeFileSystem;
    this.readers = new PackReadCache(this.files, packsDir);
    this.packSizeBytesMax = options.packSizeBytesMax ?? PACK_SIZE_BYTES_MAX_DEFAULT;
    if (!(this.packSizeBytesMax > PACK_HEADER_LENGTH_BYTES)) throw new RangeError(`packSizeBytesMax ${this.packSizeBytesMax} is too small`);
    this.compressionLevel = options.compression === false ? undefined : (options.compressionLevel ?? COMPRESSION_LEVEL_DEFAULT);
    this.nowMs = options.nowMs ?? Date.now;
  }

  /**
   * Opens or creates the store in `dir`. Recovers from an interrupted run first: rebuilds a
   * missing index from the packs, cuts unacknowledged bytes off pack ends, removes packs that
   * hold nothing acknowledged. Throws StoreInUseError when the directory is already open.
   */
  static async open(dir: string, options: PackObjectStoreOptions = {}): Promise<PackObjectStore> {
    const packsDir = join(dir, PACKS_DIR_NAME);
    const files = options.fileSystem ?? nodeFileSystem;
    files.mkdirs(packsDir);
    const { index, damagedIndex } = PackObjectStore.openIndex(files, join(dir, INDEX_FILE_NAME), options.nowMs ?? Date.now);
    try {
      const store = new PackObjectStore(dir, packsDir, index, options);
      store.recover();
      store.lastRecovery.damagedIndex = damagedIndex;
      return store;
    } catch (error) {
      index.close();
      throw error;
    }
  }

  /**
   * Opens the index, or, when it is damaged, moves it aside and starts a new one, which
   * recover() then rebuilds from the packs: the index is derived data (every record in a pack
   * carries its id), so a damaged one must not keep the node from starting, and the damaged
   * file is kept, never deleted. Only damage counts: a lock, a permission or an I/O error is
   * thrown as it is, since the file may be perfectly good.
   */
  private static openIndex(files: FileSystem, path: string, nowMs: () => number): { index: PackIndex; damagedIndex: RecoveryReport["damagedIndex"] } {
    // A log without its database (a move aside cut short) must not be replayed into a new one.
    if (hasOrphanedCompanions(files, path)) moveAsideDamaged(files, path, nowMs());
    let problem: string;
    try {
      const index = PackIndex.open(path);
      try {
        problem = index.quickCheck();
      } catch (error) {
        index.close();
        throw error;
      }
      if (problem === "ok") return { index, damagedIndex: null };
      index.close();
    } catch (error) {
      if (error instanceof StoreInUseError || !isSqliteDamage(error)) throw error;
      problem = (error as Error).message;
    }
    const movedTo = moveAsideDamaged(files, path, nowMs());
    return { index: PackIndex.open(path), damagedIndex: { problem, movedTo } };
  }

  /** What the last recovery (on open, or by rebuildIndex) found and fixed. */
  get recovery(): RecoveryReport {
    return this.lastRecovery;
  }

  async has(id: ObjectId): Promise<boolean> {
    this.assertOpen();
    return this.index.has(id);
  }

  async hasMany(ids: readonly ObjectId[]): Promise<boolean[]> {
    this.assertOpen();
    return this.index.hasMany(ids);
  }

  async get(id: ObjectId): Promise<Uint8Array | undefined> {
    this.assertOpen();
    return (await this.readObjects([id]))[0];
  }

  async getMany(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen();
    return this.readObjects(ids);
  }

  async put(id: ObjectId, bytes: Uint8Array): Promise<void> {
    await this.putMany([{ id, bytes }]);
  }

  /**
   * Verifies every id before storing anything, then appends the new objects, flushes, and
   * commits their index rows. Ids already present are skipped but get their used_ms refreshed.
   * Callers must not modify the byte arrays until the returned promise settles.
   */
  async putMany(objects: readonly StoredObject[]): Promise<void> {
    this.assertOpen();
    verifyObjects(objects);
    return this.enqueuePut(objects);
  }

  /**
   * putMany for objects whose ids the caller computed from these very bytes, in this process, a
   * moment ago (a scan that hashed what it read): the store does not hash them a second time, so
   * each chunk is hashed once. Anything from outside the process (uploads, peers, a cache read
   * back) goes through putMany, which verifies. Every read still re-hashes what it returns.
   */
  async putHashed(objects: readonly StoredObject[]): Promise<void> {
    this.assertOpen();
    checkObjectSizes(objects);
    return this.enqueuePut(objects);
  }

  private enqueuePut(objects: readonly StoredObject[]): Promise<void> {
    if (objects.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waitingPuts.push({ objects, resolve, reject });
      if (this.waitingPuts.length === 1) void this.queue.run(() => this.storeWaitingPuts());
    });
  }

  async delete(id: ObjectId): Promise<void> {
    await this.deleteMany([id]);
  }

  /** Removes index rows; the bytes stay in their pack until repack() rewrites it. */
  async deleteMany(ids: readonly ObjectId[]): Promise<void> {
    this.assertOpen();
    await this.queue.run(() => void this.index.deleteIds(ids));
  }

  /**
   * Deletes those of `ids` whose used_ms is below `cutoffMs`, in one step with the check, so an
   * object a push touched after the collector chose it survives. Returns how many were deleted.
   */
  async deleteUnusedSince(ids: readonly ObjectId[], cutoffMs: number): Promise<number> {
    this.assertOpen();
    return this.queue.run(() => this.index.deleteIds(ids, cutoffMs));
  }

  /**
   * Raises used_ms to at least `nowMs` for the ids that are present, so a collection that started
   * earlier keeps them. One answer per id: true when present (and now touched).
   */
  async touch(ids: readonly ObjectId[], nowMs: number = this.nowMs()): Promise<boolean[]> {
    this.assertOpen();
    return this.index.touch(ids, nowMs);
  }

  async *list(): AsyncIterable<ObjectId> {
    yield* this.pagedIds(undefined);
  }

  /** Ids whose used_ms is below `cutoffMs` (not put or touched since), in no particular order. */
  async *listUnusedSince(cutoffMs: number): AsyncIterable<ObjectId> {
    yield* this.pagedIds(cutoffMs);
  }

  /** storedBytes counts record payloads of live objects, not record headers or deleted records. */
  async stats(): Promise<{ objects: number; storedBytes: number; rawBytes: number }> {
    this.assertOpen();
    let objects = 0;
    let storedBytes = 0;
    let rawBytes = 0;
    for (const row of this.index.packRows()) {
      objects += row.liveObjects;
      storedBytes += row.liveStoredBytes;
      rawBytes += row.liveRawBytes;
    }
    return { objects, storedBytes, rawBytes };
  }

  /**
   * Re-reads and re-hashes every indexed object. Returns the ones that are corrupt or whose pack
   * is missing; an empty list means every object is intact. Writes may continue meanwhile.
   */
  async verifyAll(onProgress?: (progress: VerifyProgress) => void): Promise<VerifyProblem[]> {
    this.assertOpen();
    const problems: VerifyProblem[] = [];
    const totalObjects = (await this.stats()).objects;
    let checkedObjects = 0;
    let afterId: Uint8Array = new Uint8Array(0);
    for (;;) {
      this.assertOpen();
      // Look-ups and reads of one page run without a pause, so no write can move an entry between them.
      const ids = this.index.idsAfter(afterId, VERIFY_PAGE_IDS);
      const entries = ids.map((id) => this.index.lookup(id)).filter((entry) => entry !== undefined);
      entries.sort((a, b) => a.packNumber - b.packNumber || a.offsetBytes - b.offsetBytes);
      const found: { entry: IndexEntry; detail: string }[] = [];
      for (const entry of entries) {
        const result = this.readEntry(entry);
        if (typeof result === "string") {
          problems.push({ id: entry.id, detail: result });
          found.push({ entry, detail: result });
        }
      }
      if (found.length > 0) await this.quarantineFound(found, "verify");
      checkedObjects += entries.length;
      onProgress?.({ checkedObjects, totalObjects: Math.max(totalObjects, checkedObjects) });
      if (ids.length < VERIFY_PAGE_IDS) return problems;
      afterId = ids[ids.length - 1]!;
      await yieldToEventLoop();
    }
  }

  /**
   * Re-reads and verifies objects in id order after `afterId` until about `bytesMax` bytes of
   * records were read (at least one object), quarantining what is corrupt. For a background
   * scrub: each step is short, and the position is the caller's to keep.
   */
  async scrub(afterId: ObjectId | null, bytesMax: number): Promise<ScrubStep> {
    this.assertOpen();
    const step: ScrubStep = { checkedObjects: 0, checkedBytes: 0, corrupt: [], nextAfterId: null };
    let after: Uint8Array = afterId ?? new Uint8Array(0);
    const found: { entry: IndexEntry; detail: string }[] = [];
    scan: for (;;) {
      const ids = this.index.idsAfter(after, SCRUB_PAGE_IDS);
      for (const id of ids) {
        if (step.checkedObjects > 0 && step.checkedBytes >= bytesMax) {
          step.nextAfterId = after as ObjectId;
          break scan;
        }
        after = id;
        const entry = this.index.lookup(id);
        if (entry === undefined) continue;
        const result = this.readEntry(entry);
        step.checkedObjects++;
        step.checkedBytes += RECORD_HEADER_LENGTH_BYTES + entry.storedLengthBytes;
        if (typeof result === "string") found.push({ entry, detail: result });
      }
      if (ids.length < SCRUB_PAGE_IDS) break;
    }
    if (found.length > 0) step.corrupt = await this.quarantineFound(found, "scrub");
    return step;
  }

  async listQuarantine(options: { unrepairedOnly?: boolean } = {}): Promise<QuarantineRecord[]> {
    this.assertOpen();
    return this.index.quarantineRows(options.unrepairedOnly === true).map((row) => ({ ...row, foundBy: row.foundBy as QuarantineFinder }));
  }

  async quarantineStats(): Promise<QuarantineStats> {
    this.assertOpen();
    return this.index.quarantineCounts();
  }

  onQuarantine(listener: QuarantineListener): () => void {
    return this.quarantineListeners.add(listener);
  }

  /** Between writes, so no repack is choosing its packs meanwhile. */
  async dropQuarantined(ids: readonly ObjectId[]): Promise<number> {
    this.assertOpen();
    return this.queue.run(() => this.index.dropQuarantined(ids));
  }

  /** Lets the pack writer's buffer go until the next write (a node gone quiet gives its 4 MiB back). */
  releaseBuffers(): void {
    if (this.closing === undefined) this.writer.releaseBuffer();
  }

  /** SQLite's structural check of the index file: "ok", or what is wrong. */
  async integrityCheck(): Promise<string> {
    this.assertOpen();
    return this.index.integrityCheck();
  }

  /**
   * Reclaims the space of deleted objects: every pack whose live records fill less than
   * `liveRatioMin` of it has its live records copied to the active pack (flushed, then the index
   * rows repointed in one transaction), and is then unlinked. The active pack qualifies too: a
   * new one is started first.
   */
  async repack(options: RepackOptions = {}): Promise<RepackReport> {
    this.assertOpen();
    const liveRatioMin = options.liveRatioMin ?? REPACK_LIVE_RATIO_MIN_DEFAULT;
    return this.queue.run(async () => {
      const report: RepackReport = { packFilesRemoved: 0, objectsMoved: 0, bytesReclaimed: 0, corruptIds: [] };
      const packBytesBefore = this.packBytesTotal();
      // A pack holding the damaged record of an object not stored again since keeps its bytes.
      const keep = this.index.packsHoldingQuarantined();
      const candidates = this.index.packRows().filter((row) => liveRatio(row) < liveRatioMin && !keep.has(row.packNumber));
      if (candidates.some((row) => row.packNumber === this.writer.activePackNumber)) this.writer.retireActivePack();
      // Emptiest first: a dead pack is only unlinked, which needs no space, so on a nearly full
      // disk the space comes back before any live record must be copied.
      candidates.sort((a, b) => a.liveStoredBytes - b.liveStoredBytes || a.packNumber - b.packNumber);
      for (const row of candidates) await this.repackOne(row.packNumber, report);
      report.bytesReclaimed = packBytesBefore - this.packBytesTotal();
      return report;
    });
  }

  /** Discards the index and rebuilds it by scanning every pack. Deleted objects whose records were not yet repacked come back. */
  async rebuildIndex(): Promise<RecoveryReport> {
    this.assertOpen();
    return this.queue.run(() => {
      this.writer.close();
      this.readers.closeAll();
      this.index.clear();
      this.recover();
      return this.lastRecovery;
    });
  }

  async close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = this.queue.drain().finally(() => {
        this.writer.close();
        this.readers.closeAll();
        this.index.close();
      });
    }
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new Error(`object store ${this.dir} is closed`);
  }

  /**
   * Group commit: every putMany that arrived while the previous write was flushing shares one
   * write, one flush and one index transaction. Flush latency, not bandwidth, bounds small
   * batches, so concurrent callers (an upload server, a pipelined scan) gain the most.
   */
  private async storeWaitingPuts(): Promise<void> {
    const group = this.waitingPuts;
    this.waitingPuts = [];
    try {
      await this.storeVerified(group.length === 1 ? group[0]!.objects : group.flatMap((put) => put.objects));
      for (const put of group) put.resolve();
    } catch (error) {
      for (const put of group) put.reject(error);
    }
  }

  private async storeVerified(objects: readonly StoredObject[]): Promise<void> {
    const nowMs = this.nowMs();
    const seen = new Set<string>();
    let records: PendingRecord[] = [];
    let presentIds: ObjectId[] = [];
    let stepBytes = 0;
    // Asked once for the whole batch (one statement per 512 ids, not one per object): inside the
    // write queue nothing else changes what is present, and a repeat within the batch is `seen`.
    const present = this.index.hasMany(objects.map((o) => o.id));
    for (const [at, { id, bytes, frame }] of objects.entries()) {
      const hex = idToHex(id);
      if (seen.has(hex)) continue;
      seen.add(hex);
      if (present[at]) {
        presentIds.push(id);
        continue;
      }
      const { flags, payload } = encodePayload(bytes, this.compressionLevel, frame);
      records.push({ id, flags, rawLengthBytes: bytes.length, payload });
      stepBytes += payload.length;
      if (stepBytes >= COMMIT_STEP_BYTES) {
        await this.appendAndCommit(records, presentIds, nowMs);
        records = [];
        presentIds = [];
        stepBytes = 0;
      }
    }
    await this.appendAndCommit(records, presentIds, nowMs);
  }

  private async appendAndCommit(records: readonly PendingRecord[], presentIds: readonly ObjectId[], nowMs: number): Promise<void> {
    if (records.length === 0 && presentIds.length === 0) return;
    try {
      const { locations, packEnds } = await this.writer.append(records);
      const entries = records.map((record, i): IndexEntry => ({
        id: record.id,
        packNumber: locations[i]!.packNumber,
        offsetBytes: locations[i]!.offsetBytes,
        storedLengthBytes: record.payload.length,
        rawLengthBytes: record.rawLengthBytes,
        flags: record.flags,
      }));
      // Touches of present objects wait for the disk: gc goes by them, and no record brings them back.
      const waitForDisk = presentIds.length > 0 || performance.now() - this.lastIndexSyncMs >= INDEX_SYNC_INTERVAL_MS;
      this.index.commitAppends(entries, packEnds, presentIds, nowMs, waitForDisk);
      if (waitForDisk) this.lastIndexSyncMs = performance.now();
      this.writer.markCommitted();
    } catch (error) {
      this.sealAbandoned(this.writer.rewind());
      throw error;
    }
  }

  /**
   * Packs a failed batch left untrusted bytes in (the cut or the removal failed): recovery must
   * not index those bytes as records flushed before a lost index commit, since their flush may
   * have failed. Best effort: the batch has failed already, and this is one more write.
   */
  private sealAbandoned(abandoned: readonly AbandonedPack[]): void {
    for (const { packNumber, trustedEndBytes } of abandoned) {
      try {
        this.index.sealPack(packNumber, trustedEndBytes);
      } catch (error) {
        console.error(`dsync: could not record where pack ${packFileName(packNumber)}'s trusted bytes end:`, error);
      }
    }
  }

  /**
   * Reads and verifies each id; every corrupt one is quarantined before CorruptObjectError is
   * thrown for the first, so a retry reads them as absent instead of failing the same way.
   */
  private async readObjects(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = [];
    const found: { entry: IndexEntry; detail: string }[] = [];
    for (const entry of this.index.lookupMany(ids)) {
      const result = entry === undefined ? undefined : this.readEntry(entry);
      if (typeof result === "string") found.push({ entry: entry!, detail: result });
      out.push(result === undefined || typeof result === "string" ? undefined : result.bytes);
    }
    if (found.length > 0) {
      await this.quarantineFound(found, "read");
      throw new CorruptObjectError(idToHex(found[0]!.entry.id), found[0]!.detail);
    }
    return out;
  }

  /** Quarantines records found corrupt (between writes, so no put sees half of it) and tells the listeners. */
  private async quarantineFound(found: readonly { entry: IndexEntry; detail: string }[], foundBy: QuarantineFinder): Promise<ObjectId[]> {
    const ids = await this.queue.run(() => this.index.quarantine(found, foundBy, this.nowMs()));
    this.quarantineListeners.emit(ids);
    return ids;
  }

  /** Reads and verifies the record an index entry points to; a string describes what is wrong. */
  private readEntry(entry: IndexEntry): VerifiedRecord | string {
    const fd = this.readers.fdFor(entry.packNumber);
    if (fd === undefined) return `pack file ${packFileName(entry.packNumber)} is missing`;
    const record = new Uint8Array(RECORD_HEADER_LENGTH_BYTES + entry.storedLengthBytes);
    const readBytes = readFully(this.files, fd, record, entry.offsetBytes);
    if (readBytes < record.length) return `pack ${packFileName(entry.packNumber)} ends ${record.length - readBytes} bytes before the record does`;
    return verifyRecord(record, entry);
  }

  private async *pagedIds(unusedBeforeMs: number | undefined): AsyncIterable<ObjectId> {
    let afterId: Uint8Array = new Uint8Array(0);
    for (;;) {
      this.assertOpen();
      const ids = this.index.idsAfter(afterId, LIST_PAGE_IDS, unusedBeforeMs);
      yield* ids;
      if (ids.length < LIST_PAGE_IDS) return;
      afterId = ids[ids.length - 1]!;
    }
  }

  private async repackOne(packNumber: number, report: RepackReport): Promise<void> {
    const path = join(this.packsDir, packFileName(packNumber));
    let afterOffsetBytes = -1;
    for (;;) {
      const entries = this.index.entriesInPack(packNumber, afterOffsetBytes, REPACK_PAGE_ROWS);
      if (entries.length === 0) break;
      afterOffsetBytes = entries[entries.length - 1]!.offsetBytes;
      let kept: { entry: IndexEntry; record: PendingRecord }[] = [];
      let stepBytes = 0;
      for (const entry of entries) {
        const result = this.readEntry(entry);
        if (typeof result === "string") {
          // Already inside the write queue, so the index is changed directly.
          const ids = this.index.quarantine([{ entry, detail: result }], "repack", this.nowMs());
          this.quarantineListeners.emit(ids);
          report.corruptIds.push(entry.id);
          continue;
        }
        // The stored payload is copied as it is: it was verified just now, and recompressing gains nothing.
        kept.push({ entry, record: { id: entry.id, flags: entry.flags, rawLengthBytes: entry.rawLengthBytes, payload: result.payload } });
        stepBytes += entry.storedLengthBytes;
        if (stepBytes >= COMMIT_STEP_BYTES) {
          await this.commitRepackStep(kept, report);
          kept = [];
          stepBytes = 0;
        }
      }
      await this.commitRepackStep(kept, report);
    }
    // The damaged records found stay where they are until good copies are stored.
    if (this.index.packsHoldingQuarantined().has(packNumber)) return;
    this.index.removePack(packNumber);
    this.readers.forget(packNumber);
    try {
      this.files.unlink(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    this.files.fsyncDirectory(this.packsDir);
    report.packFilesRemoved++;
  }

  private async commitRepackStep(
    kept: readonly { entry: IndexEntry; record: PendingRecord }[],
    report: RepackReport,
  ): Promise<void> {
    if (kept.length === 0) return;
    try {
      const { locations, packEnds } = await this.writer.append(kept.map((k) => k.record));
      const moves = kept.map(({ entry }, i): EntryMove => ({
        entry,
        toPackNumber: locations[i]!.packNumber,
        toOffsetBytes: locations[i]!.offsetBytes,
      }));
      this.index.commitMoves(moves, packEnds);
      this.writer.markCommitted();
    } catch (error) {
      this.sealAbandoned(this.writer.rewind());
      throw error;
    }
    report.objectsMoved += kept.length;
  }

  /** Brings the directory back to a state where every pack byte after each committed end is gone. */
  private recover(): void {
    const report: RecoveryReport = { rebuiltIndex: false, recordsIndexed: 0, recordsQuarantined: 0, damagedIndex: null, recordsRecovered: 0, truncatedBytes: 0, packFilesRemoved: 0 };
    if (!this.index.isComplete()) {
      report.rebuiltIndex = true;
      Object.assign(report, this.rebuildFromPacks());
    }
    const sealed = this.index.sealedPackEnds();
    const kept: number[] = [];
    for (const packNumber of this.packFileNumbers()) {
      const path = join(this.packsDir, packFileName(packNumber));
      // Rows lost with an index commit that did not wait for the disk: the records they named were
      // flushed before it, and follow the committed end (or a new pack's header) without a gap.
      report.recordsRecovered += this.recoverTail(packNumber, path, sealed.get(packNumber));
      const row = this.index.packRows().find((r) => r.packNumber === packNumber);
      if (row === undefined) {
        this.files.unlink(path);
        report.packFilesRemoved++;
        continue;
      }
      kept.push(packNumber);
      const sizeBytes = fileSizeBytes(this.files, path) ?? 0;
      if (sizeBytes > row.committedEndBytes) {
        truncateDurably(this.files, path, row.committedEndBytes);
        report.truncatedBytes += sizeBytes - row.committedEndBytes;
      }
    }
    // The untrusted bytes of sealed packs are gone now (cut, or the pack removed).
    for (const packNumber of sealed.keys()) this.index.unsealPack(packNumber);
    const rows = new Map(this.index.packRows().map((row) => [row.packNumber, row]));
    // A pack whose creation was interrupted before its rename never held anything.
    for (const name of this.files.readdir(this.packsDir)) {
      if (!name.endsWith(NEW_PACK_SUFFIX) || parsePackFileName(name.slice(0, -NEW_PACK_SUFFIX.length)) === undefined) continue;
      this.files.unlink(join(this.packsDir, name));
      report.packFilesRemoved++;
    }
    if (report.packFilesRemoved > 0) this.files.fsyncDirectory(this.packsDir);
    const activePackNumber = kept.length > 0 ? kept[kept.length - 1] : undefined;
    // Numbers of packs whose files are gone are not reused either, so no stale row can point into a new file.
    const highestPackNumber = Math.max(0, ...kept, ...rows.keys());
    this.writer = new PackWriter(this.files, this.packsDir, this.packSizeBytesMax, {
      activePackNumber,
      committedEndBytes: activePackNumber === undefined ? 0 : rows.get(activePackNumber)!.committedEndBytes,
      nextPackNumber: highestPackNumber + 1,
    });
    this.lastRecovery = report;
  }

  /**
   * Indexes the whole, valid records that follow a pack's committed end (from its header for a
   * pack the index has no row for), up to its seal if a failed batch left one: the rows a crash
   * took with an index commit that did not wait for the disk. The records are flushed again
   * before their rows commit (waiting for the disk), so what was read from the page cache of a
   * process that died before its flush is on the disk before the index counts on it. Returns how
   * many records were indexed.
   */
  private recoverTail(packNumber: number, path: string, sealedEndBytes: number | undefined): number {
    const row = this.index.packRows().find((r) => r.packNumber === packNumber);
    const fromBytes = row?.committedEndBytes ?? PACK_HEADER_LENGTH_BYTES;
    const limitBytes = sealedEndBytes ?? Number.POSITIVE_INFINITY;
    if (fromBytes >= limitBytes) return 0;
    const fd = this.files.open(path, "read-write");
    try {
      if ((fileSizeBytes(this.files, path) ?? 0) <= fromBytes) return 0;
      if (row === undefined) {
        const header = new Uint8Array(PACK_HEADER_LENGTH_BYTES);
        if (readFully(this.files, fd, header, 0) !== PACK_HEADER_LENGTH_BYTES || !isPackHeader(header)) return 0;
      }
      const entries: IndexEntry[] = [];
      const tail = scanTail(this.files, fd, fromBytes, limitBytes, (record) => {
        entries.push({ id: record.id, packNumber, offsetBytes: record.offsetBytes, storedLengthBytes: record.storedLengthBytes, rawLengthBytes: record.rawLengthBytes, flags: record.flags });
      });
      if (tail.records === 0) return 0;
      this.files.fsync(fd);
      const nowMs = this.nowMs();
      for (let at = 0; at < entries.length; at += REBUILD_COMMIT_ROWS) {
        const step = entries.slice(at, at + REBUILD_COMMIT_ROWS);
        const last = step[step.length - 1]!;
        this.index.commitAppends(step, new Map([[packNumber, last.offsetBytes + RECORD_HEADER_LENGTH_BYTES + last.storedLengthBytes]]), [], nowMs);
      }
      return tail.records;
    } finally {
      this.files.close(fd);
    }
  }

  /**
   * Indexes every valid record of every pack (each re-verified by its hash); the first copy of
   * an id wins. A whole record that fails its hash is not indexed (the object reads as missing
   * and is fetched again by repair) but quarantined, unless a good copy was indexed before it:
   * its pack is then kept by repack until a good copy is stored, and its bytes count as
   * committed, so recovery does not cut them off the pack's end.
   */
  private rebuildFromPacks(): { recordsIndexed: number; recordsQuarantined: number } {
    this.index.clear();
    const nowMs = this.nowMs();
    let recordsIndexed = 0;
    let recordsQuarantined = 0;
    for (const packNumber of this.packFileNumbers()) {
      let entries: IndexEntry[] = [];
      const entryOf = (record: ScannedRecord): IndexEntry => ({
        id: record.id,
        packNumber,
        offsetBytes: record.offsetBytes,
        storedLengthBytes: record.storedLengthBytes,
        rawLengthBytes: record.rawLengthBytes,
        flags: record.flags,
      });
      const commitEntries = () => {
        this.index.commitAppends(entries, new Map(), [], nowMs);
        entries = [];
      };
      const result = scanPack(
        this.files,
        join(this.packsDir, packFileName(packNumber)),
        (record) => {
          entries.push(entryOf(record));
          if (entries.length >= REBUILD_COMMIT_ROWS) commitEntries();
        },
        (damaged) => {
          // Rows found so far go in first, so a good copy earlier in this pack is seen.
          commitEntries();
          if (this.index.quarantineScanned(entryOf(damaged), damaged.detail, "rebuild", nowMs)) recordsQuarantined++;
        },
      );
      this.index.commitAppends(entries, new Map([[packNumber, result.recordEndBytes]]), [], nowMs);
      this.index.ensurePack(packNumber, result.recordEndBytes);
      recordsIndexed += result.records;
    }
    this.index.markComplete();
    return { recordsIndexed, recordsQuarantined };
  }

  private packBytesTotal(): number {
    let total = 0;
    for (const packNumber of this.packFileNumbers()) total += fileSizeBytes(this.files, join(this.packsDir, packFileName(packNumber))) ?? 0;
    return total;
  }

  private packFileNumbers(): number[] {
    return this.files
      .readdir(this.packsDir)
      .map(parsePackFileName)
      .filter((packNumber) => packNumber !== undefined)
      .sort((a, b) => a - b);
  }
}

/** The share of a pack's record bytes that belong to live objects. */
function liveRatio(row: PackRow): number {
  const liveBytes = row.liveStoredBytes + row.liveObjects * RECORD_HEADER_LENGTH_BYTES;
  return liveBytes / Math.max(1, row.committedEndBytes - PACK_HEADER_LENGTH_BYTES);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
