// Uploading chunks while the scan is still reading them, for pushes where the node probably
// lacks most of them (a directory's first push). Scanning (reading, chunking, hashing) and the
// node's ingest (verifying, writing, fsync) then overlap instead of running one after the other,
// and each chunk is sent from the bytes the scan just read rather than read again.
//
// Each full batch is checked with one "which of these do you lack?" request, and only what is
// missing is sent. When a batch turns out to be mostly present already, streaming stops and the
// rest is left to the top-down plan after the scan, which skips whatever was streamed.
import { idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { ObjectBatchWriter } from "./batch-writer.ts";
import type { RemoteNode } from "./remote.ts";
import type { UploadPipeline } from "./upload-pipeline.ts";

/** Below this share of missing chunks in a batch, streaming is not worth its extra requests. */
const MISSING_SHARE_MIN = 0.5;

export class StreamingChunkUploader {
  active = true;
  chunksSent = 0;
  bytesSent = 0;
  private writer: ObjectBatchWriter | undefined;
  private ids: ObjectId[] = [];
  private readonly seen = new Set<string>();
  /** Batches are checked and sent in order, off the scan's path; a failure surfaces in finish(). */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(private readonly remote: RemoteNode, private readonly pipeline: UploadPipeline) {}

  /** A scan sink for chunks; copies the bytes (the scan reuses its buffer). */
  async chunk(id: ObjectId, bytes: Uint8Array): Promise<void> {
    if (!this.active) return;
    if (this.failure) throw this.failure;
    const key = idToHex(id);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.writer ??= await this.pipeline.writer();
    if (!this.writer.fits(bytes.length) || this.writer.objectBytes >= LIMITS.batchBytesTarget) {
      await this.handOff();
      this.writer = await this.pipeline.writer();
    }
    this.writer.append(id, bytes);
    this.ids.push(id);
  }

  private async handOff(): Promise<void> {
    const writer = this.writer!;
    const ids = this.ids;
    this.writer = undefined;
    this.ids = [];
    this.tail = this.tail.then(() => this.checkAndSend(writer, ids)).catch((error) => {
      this.failure ??= error;
      this.active = false;
    });
  }

  private async checkAndSend(writer: ObjectBatchWriter, ids: ObjectId[]): Promise<void> {
    if (this.failure) {
      this.pipeline.release(writer);
      return;
    }
    const missing = await this.remote.missing(ids);
    if (missing.length < ids.length * MISSING_SHARE_MIN) this.active = false;
    if (missing.length === 0) {
      this.pipeline.release(writer);
      return;
    }
    if (missing.length === ids.length) {
      this.chunksSent += writer.count;
      this.bytesSent += writer.objectBytes;
      await this.pipeline.send(writer);
      return;
    }
    // Some are present: send only the rest (compacted in place, so no second buffer is needed).
    const wanted = new Set(missing.map(idToHex));
    writer.retain((id) => wanted.has(idToHex(id)));
    this.chunksSent += writer.count;
    this.bytesSent += writer.objectBytes;
    await this.pipeline.send(writer);
  }

  /** Sends what is left and waits for every request; throws the first failure. */
  async finish(): Promise<void> {
    if (this.writer && this.ids.length > 0 && this.active) await this.handOff();
    else if (this.writer) this.pipeline.release(this.writer);
    this.writer = undefined;
    await this.tail;
    await this.pipeline.drain();
    if (this.failure) throw this.failure;
  }
}
