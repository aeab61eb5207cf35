// The single append position of a pack store: writes records at the end of the active pack,
// starts a new pack at the size cap, and flushes before reporting where records landed.
//
// The writer never touches the index. Its caller commits the rows for the returned locations
// and then calls markCommitted(); on any failure before that it calls rewind(), and the next
// batch overwrites the unacknowledged bytes (recovery on open truncates them after a crash).
import * as fs from "node:fs";
import { join } from "node:path";
import type { ObjectId } from "../core/id.ts";
import {
  encodePackHeader,
  isPackHeader,
  PACK_HEADER_LENGTH_BYTES,
  packFileName,
  RECORD_HEADER_LENGTH_BYTES,
  writeRecordHeader,
} from "./pack-format.ts";
import { fdatasyncAsync, fsyncDirectory, readFully, writeFully } from "./pack-io.ts";

export interface PendingRecord {
  id: ObjectId;
  flags: number;
  rawLengthBytes: number;
  /** The bytes stored after the header: the object itself, or its zstd frame. */
  payload: Uint8Array;
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

const SEGMENT_BUFFER_BYTES_KEPT = 48 * 1024 * 1024;

interface PlacedRecord {
  record: PendingRecord;
  offsetBytes: number;
}

export class PackWriter {
  private fd: number | undefined;
  private packNumber: number | undefined;
  private appendOffsetBytes: number;
  private committedEndBytes: number;
  private nextPackNumber: number;
  private reusedBuffer = new Uint8Array(0);

  constructor(private readonly packsDir: string, private readonly packSizeBytesMax: number, start: PackWriterStart) {
    this.packNumber = start.activePackNumber;
    this.committedEndBytes = start.committedEndBytes;
    this.appendOffsetBytes = start.committedEndBytes;
    this.nextPackNumber = start.nextPackNumber;
  }

  /** The pack new records go to, if one is open or chosen. */
  get activePackNumber(): number | undefined {
    return this.packNumber;
  }

  async append(records: readonly PendingRecord[]): Promise<AppendResult> {
    const locations: RecordLocation[] = [];
    const packEnds = new Map<number, number>();
    if (records.length === 0) return { locations, packEnds };
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
    this.committedEndBytes = this.appendOffsetBytes;
  }

  /** The last append was not committed: reuse its space. */
  rewind(): void {
    this.appendOffsetBytes = this.committedEndBytes;
  }

  /** Closes the active pack; the next append starts a new one. Repack uses this to empty the active pack. */
  retireActivePack(): number | undefined {
    const retired = this.packNumber;
    this.closeFd();
    this.packNumber = undefined;
    return retired;
  }

  close(): void {
    this.closeFd();
  }

  private async flushSegment(segment: readonly PlacedRecord[], packEnds: Map<number, number>): Promise<void> {
    if (segment.length === 0) return;
    const startBytes = segment[0]!.offsetBytes;
    // One contiguous write per pack: copying a few MiB costs far less than a syscall per record.
    const buffer = this.segmentBuffer(this.appendOffsetBytes - startBytes);
    for (const { record, offsetBytes } of segment) {
      const at = offsetBytes - startBytes;
      writeRecordHeader(buffer, at, {
        id: record.id,
        flags: record.flags,
        rawLengthBytes: record.rawLengthBytes,
        storedLengthBytes: record.payload.length,
      });
      buffer.set(record.payload, at + RECORD_HEADER_LENGTH_BYTES);
    }
    writeFully(this.fd!, buffer, startBytes);
    await fdatasyncAsync(this.fd!);
    packEnds.set(this.packNumber!, this.appendOffsetBytes);
  }

  /**
   * A reused buffer: allocating a fresh zeroed one per batch costs page faults on every write.
   * Only buffers up to a commit step's size are kept; rare larger ones are dropped after use.
   */
  private segmentBuffer(lengthBytes: number): Uint8Array {
    if (lengthBytes > SEGMENT_BUFFER_BYTES_KEPT) return new Uint8Array(lengthBytes);
    if (this.reusedBuffer.length < lengthBytes) {
      this.reusedBuffer = new Uint8Array(Math.min(SEGMENT_BUFFER_BYTES_KEPT, Math.max(lengthBytes, this.reusedBuffer.length * 2)));
    }
    return this.reusedBuffer.subarray(0, lengthBytes);
  }

  private openActivePack(): void {
    if (this.packNumber === undefined || this.committedEndBytes >= this.packSizeBytesMax) {
      this.createPack();
      return;
    }
    const fd = fs.openSync(join(this.packsDir, packFileName(this.packNumber)), "r+");
    const header = new Uint8Array(PACK_HEADER_LENGTH_BYTES);
    if (readFully(fd, header, 0) === PACK_HEADER_LENGTH_BYTES && isPackHeader(header)) {
      this.fd = fd;
      return;
    }
    // A damaged header: leave that pack as it is for verify to report, and append elsewhere.
    fs.closeSync(fd);
    this.createPack();
  }

  private createPack(): void {
    const packNumber = this.nextPackNumber;
    const fd = fs.openSync(join(this.packsDir, packFileName(packNumber)), "wx+");
    try {
      writeFully(fd, encodePackHeader(), 0);
      // The header itself is flushed with the first records; the directory entry must be durable
      // before any index row can point into the file.
      fsyncDirectory(this.packsDir);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    this.nextPackNumber = packNumber + 1;
    this.fd = fd;
    this.packNumber = packNumber;
    this.appendOffsetBytes = PACK_HEADER_LENGTH_BYTES;
    this.committedEndBytes = PACK_HEADER_LENGTH_BYTES;
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
