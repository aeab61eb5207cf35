// The single append position of a pack store: writes records at the end of the active pack,
// starts a new pack at the size cap, and flushes before reporting where records landed.
//
// The writer never touches the index. Its caller commits the rows for the returned locations
// and then calls markCommitted(); on any failure before that it calls rewind(), which cuts the
// unacknowledged bytes off durably and removes packs created since the last commit. A failed
// batch (a full disk, a failed flush) therefore neither keeps its space nor leaves bytes whose
// flush may have failed for a later batch to count on: the next batch writes them afresh.
import { join } from "node:path";
import type { ObjectId } from "../core/id.ts";
import type { FileSystem } from "./file-system.ts";
import {
  encodePackHeader,
  isPackHeader,
  PACK_HEADER_LENGTH_BYTES,
  packFileName,
  RECORD_HEADER_LENGTH_BYTES,
  writeRecordHeader,
} from "./pack-format.ts";
import { isNotFound, readFully, truncateDurably, writeFully } from "./pack-io.ts";

/** A pack being created is written under this suffix and renamed into place once its header is durable. */
export const NEW_PACK_SUFFIX = ".new";

export interface PendingRecord {
  id: ObjectId;
  flags: number;
  rawLengthBytes: number;
  /** The bytes stored after the header: the object itself, or its zstd frame. */
  payload: Uint8Array;
}

/** A pack a failed append left bytes in that are not to be trusted, past `trustedEndBytes`. */
export interface AbandonedPack {
  packNumber: number;
  trustedEndBytes: number;
}

export interface RecordLocation {
  packNumber: number;
  offsetBytes: number;
}

export interface AppendResult {
  /** One per record, in order. */
  locations: RecordLocation[];
  /** For every pack written to, the end of the last record written there. */
  packEnds: Map<number, number>;
}

export interface PackWriterStart {
  /** The last pack, to keep appending to; undefined to start with a new one. */
  activePackNumber: number | undefined;
  /** Where the active pack's acknowledged records end. */
  committedEndBytes: number;
  /** Higher than any pack number ever used in this store. */
  nextPackNumber: number;
}

/** The one buffer records are written through (a larger record is written from its own bytes). */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

interface PlacedRecord {
  record: PendingRecord;
  offsetBytes: number;
}

export class PackWriter {
  private fd: number | undefined;
  private packNumber: number | undefined;
  private appendOffsetBytes: number;
  private nextPackNumber: number;
  private reusedBuffer = new Uint8Array(0);
  /** Where the last commit left the writer (pack and end); a failed batch goes back here. */
  private committedPackNumber: number | undefined;
  private committedPackEndBytes: number;
  /** Bytes were written (or packs created) since the last commit. */
  private uncommittedWrites = false;
  /** Packs created since the last commit: they hold nothing acknowledged. */
  private packsCreatedSinceCommit: number[] = [];

  constructor(
    private readonly files: FileSystem,
    private readonly packsDir: string,
    private readonly packSizeBytesMax: number,
    start: PackWriterStart,
  ) {
    this.packNumber = start.activePackNumber;
    this.committedPackNumber = start.activePackNumber;
    this.committedPackEndBytes = start.committedEndBytes;
    this.appendOffsetBytes = start.committedEndBytes;
    this.nextPackNumber = start.nextPackNumber;
  }

  /** The pack new records go to, if one is open or chosen. */
  get activePackNumber(): number | undefined {
    return this.packNumber;
  }

  /** Writes and flushes the records. On failure the caller must call rewind() before anything else. */
  async append(records: readonly PendingRecord[]): Promise<AppendResult> {
    const locations: RecordLocation[] = [];
    const packEnds = new Map<number, number>();
    if (records.length === 0) return { locations, packEnds };
    this.uncommittedWrites = true;
    if (this.fd === undefined) this.openActivePack();
    let segment: PlacedRecord[] = [];
    for (const record of records) {
      const lengthBytes = RECORD_HEADER_LENGTH_BYTES + record.payload.length;
      // A record larger than the cap still goes in, alone in a fresh pack.
      if (this.appendOffsetBytes > PACK_HEADER_LENGTH_BYTES && this.appendOffsetBytes + lengthBytes > this.packSizeBytesMax) {
        await this.flushSegment(segment, packEnds);
        segment = [];
        this.closeFd();
        this.createPack();
      }
      segment.push({ record, offsetBytes: this.appendOffsetBytes });
      locations.push({ packNumber: this.packNumber!, offsetBytes: this.appendOffsetBytes });
      this.appendOffsetBytes += lengthBytes;
    }
    await this.flushSegment(segment, packEnds);
    return { locations, packEnds };
  }

  /** The last append's rows are committed: its bytes are now part of the store. */
  markCommitted(): void {
    this.committedPackNumber = this.packNumber;
    this.committedPackEndBytes = this.appendOffsetBytes;
    this.packsCreatedSinceCommit = [];
    this.uncommittedWrites = false;
  }

  /**
   * The last append was not committed: its bytes are cut off the committed pack (durably, so the
   * space comes back now, not at the next start) and packs it created are removed. Never throws:
   * when the cut itself fails, the pack is left as it is (its committed end in the index still
   * bounds what is read; open() cuts the rest) and the next append starts a new pack. Returns the
   * packs left holding bytes of the failed append, each with where its trusted bytes end, which
   * the store seals so that recovery never indexes those bytes; none is appended to again.
   */
  rewind(): AbandonedPack[] {
    this.closeFd();
    if (!this.uncommittedWrites) return [];
    this.uncommittedWrites = false;
    const abandoned: AbandonedPack[] = [];
    for (const packNumber of this.packsCreatedSinceCommit) {
      if (!this.removeQuietly(join(this.packsDir, packFileName(packNumber)))) abandoned.push({ packNumber, trustedEndBytes: PACK_HEADER_LENGTH_BYTES });
    }
    // A removal that did not become durable may come back after a crash.
    if (this.packsCreatedSinceCommit.length > 0 && !this.fsyncDirectoryQuietly()) {
      for (const packNumber of this.packsCreatedSinceCommit) if (!abandoned.some((a) => a.packNumber === packNumber)) abandoned.push({ packNumber, trustedEndBytes: PACK_HEADER_LENGTH_BYTES });
    }
    this.packsCreatedSinceCommit = [];
    this.packNumber = this.committedPackNumber;
    this.appendOffsetBytes = this.committedPackEndBytes;
    if (this.packNumber === undefined) return abandoned;
    try {
      truncateDurably(this.files, join(this.packsDir, packFileName(this.packNumber)), this.committedPackEndBytes);
    } catch {
      abandoned.push({ packNumber: this.packNumber, trustedEndBytes: this.committedPackEndBytes });
      this.packNumber = undefined;
      this.committedPackNumber = undefined;
    }
    return abandoned;
  }

  /** Closes the active pack; the next append starts a new one. Repack uses this to empty the active pack. */
  retireActivePack(): number | undefined {
    const retired = this.packNumber;
    this.closeFd();
    this.packNumber = undefined;
    this.committedPackNumber = undefined;
    return retired;
  }

  close(): void {
    this.closeFd();
  }

  private async flushSegment(segment: readonly PlacedRecord[], packEnds: Map<number, number>): Promise<void> {
    if (segment.length === 0) return;
    // Contiguous writes of up to WRITE_BUFFER_BYTES through one reused buffer: copying a few MiB
    // costs far less than a syscall per record, and a buffer as large as a whole commit step
    // (32 MiB) would stay in the node's memory for good after its first big batch.
    const buffer = this.writeBuffer();
    let startBytes = segment[0]!.offsetBytes;
    let filled = 0;
    const writeOut = () => {
      if (filled > 0) writeFully(this.files, this.fd!, buffer.subarray(0, filled), startBytes);
      filled = 0;
    };
    for (const { record, offsetBytes } of segment) {
      const lengthBytes = RECORD_HEADER_LENGTH_BYTES + record.payload.length;
      if (filled > 0 && filled + lengthBytes > buffer.length) writeOut();
      if (filled === 0) startBytes = offsetBytes;
      const header = {
        id: record.id,
        flags: record.flags,
        rawLengthBytes: record.rawLengthBytes,
        storedLengthBytes: record.payload.length,
      };
      if (lengthBytes > buffer.length) {
        // A record larger than the buffer: its header through the buffer, its payload as it is.
        writeRecordHeader(buffer, 0, header);
        writeFully(this.files, this.fd!, buffer.subarray(0, RECORD_HEADER_LENGTH_BYTES), offsetBytes);
        writeFully(this.files, this.fd!, record.payload, offsetBytes + RECORD_HEADER_LENGTH_BYTES);
        continue;
      }
      writeRecordHeader(buffer, filled, header);
      buffer.set(record.payload, filled + RECORD_HEADER_LENGTH_BYTES);
      filled += lengthBytes;
    }
    writeOut();
    // A failed flush fails the batch; the bytes are never flushed "again" (after a failed fsync
    // the kernel may have dropped them while still reporting the next fsync clean).
    await this.files.fdatasync(this.fd!);
    packEnds.set(this.packNumber!, this.appendOffsetBytes);
  }

  /**
   * Lets the write buffer go (the next append makes a new one): for a node gone quiet, whose
   * 4 MiB would otherwise stay resident until the next push. Safe at any time: an append in
   * progress holds its own reference.
   */
  releaseBuffer(): void {
    this.reusedBuffer = new Uint8Array(0);
  }

  /** The reused write buffer (allocating a fresh zeroed one per batch costs page faults on every write). */
  private writeBuffer(): Uint8Array {
    if (this.reusedBuffer.length === 0) this.reusedBuffer = new Uint8Array(WRITE_BUFFER_BYTES);
    return this.reusedBuffer;
  }

  private openActivePack(): void {
    if (this.packNumber === undefined || this.committedPackEndBytes >= this.packSizeBytesMax) {
      this.createPack();
      return;
    }
    const fd = this.files.open(join(this.packsDir, packFileName(this.packNumber)), "read-write");
    const header = new Uint8Array(PACK_HEADER_LENGTH_BYTES);
    if (readFully(this.files, fd, header, 0) === PACK_HEADER_LENGTH_BYTES && isPackHeader(header)) {
      this.fd = fd;
      return;
    }
    // A damaged header: leave that pack as it is for verify to report, and append elsewhere.
    this.files.close(fd);
    this.createPack();
  }

  /**
   * A new pack appears whole or not at all: its header is written and flushed under a temporary
   * name, renamed into place, and the directory flushed, before any index row can point into it.
   */
  private createPack(): void {
    const packNumber = this.nextPackNumber;
    // Never reused, even when this attempt fails: no stale row or leftover file may meet a new pack.
    this.nextPackNumber = packNumber + 1;
    const path = join(this.packsDir, packFileName(packNumber));
    const temporaryPath = path + NEW_PACK_SUFFIX;
    const fd = this.files.open(temporaryPath, "create-exclusive");
    let renamed = false;
    try {
      writeFully(this.files, fd, encodePackHeader(), 0);
      this.files.fsync(fd);
      this.files.rename(temporaryPath, path);
      renamed = true;
      this.files.fsyncDirectory(this.packsDir);
    } catch (error) {
      this.files.close(fd);
      this.removeQuietly(renamed ? path : temporaryPath);
      throw error;
    }
    this.packsCreatedSinceCommit.push(packNumber);
    this.fd = fd;
    this.packNumber = packNumber;
    this.appendOffsetBytes = PACK_HEADER_LENGTH_BYTES;
  }

  /** Removal of a file that holds nothing acknowledged; if it fails, open() removes it later. False when it failed. */
  private removeQuietly(path: string): boolean {
    try {
      this.files.unlink(path);
      return true;
    } catch (error) {
      // Already gone, or left for open() to remove.
      return isNotFound(error);
    }
  }

  private fsyncDirectoryQuietly(): boolean {
    try {
      this.files.fsyncDirectory(this.packsDir);
      return true;
    } catch {
      // A removal that did not become durable comes back after a crash as a pack without rows, which open() removes.
      return false;
    }
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    this.files.close(fd);
  }
}
