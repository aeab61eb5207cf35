// Uploading chunks while the scan is still reading them, for pushes where the node probably
// lacks most of them (a directory's first push). Scanning (reading, chunking, hashing) and the
// node's ingest (verifying, writing, fsync) then overlap instead of running one after the other,
// and each chunk is sent from the bytes the scan just read rather than read again.
//
// The scan's file and tree nodes go the same way, after the chunks they name (the scan builds
// bottom-up), so when streaming runs to the end the node holds the whole tree and no plan is
// needed after the scan: scan, upload and the node's ingest overlap, and nothing is held per
// file once its batch is sent.
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
/**
 * Ids remembered to skip an object given twice (identical files). Beyond this the memory is
 * started afresh: an object given again is then only asked about again, never sent twice
 * unless the node still lacks it. 16 384 hex keys take some 2.5 MB; 65 536 took 10 MB, held
 * through the push of any file of more than 65 536 chunks.
 */
const SEEN_IDS_MAX = 16_384;

export class StreamingChunkUploader {
  active = true;
  /** Objects sent (chunks and nodes), and of them chunks. */
  objectsSent = 0;
  chunksSent = 0;
  bytesSent = 0;
  private writer: ObjectBatchWriter | undefined;
  private ids: ObjectId[] = [];
  /** Whether each of `ids` is a chunk (for the report's count of chunks sent). */
  private chunkFlags: boolean[] = [];
  private readonly seen = new Set<string>();
  /** Batches are checked and sent in order, off the scan's path; a failure surfaces in finish(). */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Whether a batch's "which do you lack?" asked ahead of its turn is still unanswered. */
  private questionAhead = false;

  constructor(private readonly remote: RemoteNode, private readonly pipeline: UploadPipeline) {}

  /** Whether every object given was sent or found present: streaming never stopped. */
  get complete(): boolean {
    return this.active && this.failure === undefined;
  }

  /** A scan sink for chunks; copies the bytes (the scan reuses its buffer). */
  chunk(id: ObjectId, bytes: Uint8Array): Promise<void> {
    return this.add(id, bytes, true);
  }

  /** A scan sink for file and tree nodes, given after everything they name. */
  object(id: ObjectId, bytes: Uint8Array): Promise<void> {
    return this.add(id, bytes, false);
  }

  private async add(id: ObjectId, bytes: Uint8Array, isChunk: boolean): Promise<void> {
    if (!this.active) return;
    if (this.failure) throw this.failure;
    const key = idToHex(id);
    if (this.seen.has(key)) return;
    if (this.seen.size >= SEEN_IDS_MAX) this.seen.clear();
    this.seen.add(key);
    if (this.writer && (!this.writer.fits(bytes.length) || this.writer.encodedBytes >= LIMITS.batchBytesTarget)) await this.handOff();
    this.writer ??= await this.pipeline.writer(bytes.length);
    this.writer.append(id, bytes);
    this.ids.push(id);
    this.chunkFlags.push(isChunk);
  }

  private async handOff(): Promise<void> {
    const writer = this.writer!;
    const ids = this.ids;
    const chunkFlags = this.chunkFlags;
    this.writer = undefined;
    this.ids = [];
    this.chunkFlags = [];
    // The question goes now, while earlier batches are still waiting for a slot or on the wire:
    // asked only once the batch before had its slot, its answer (behind the uploads on a slow
    // link) came after the next slot was free, and the wire waited for it. The batches are
    // still sent in order. Only one question is asked ahead at a time, the others when their
    // batch's turn comes: a question of tiny files names up to LIMITS.batchIdsMax ids, and the
    // node holds each one asked while it answers (three at once took a node receiving 100 000
    // tiny files from ~250 to ~320 MB at its peak).
    let missing: Promise<ObjectId[]> | undefined | null = undefined;
    if (!this.failure) {
      if (this.questionAhead) missing = null;
      else {
        this.questionAhead = true;
        missing = this.remote.missing(ids);
        missing.then(
          () => (this.questionAhead = false),
          () => (this.questionAhead = false),
        );
      }
    }
    this.tail = this.tail.then(() => this.checkAndSend(writer, ids, chunkFlags, missing)).catch((error) => {
      this.failure ??= error;
      this.active = false;
    });
  }

  /** `asked`: the question asked ahead (null: ask now; undefined: a failure came first). */
  private async checkAndSend(writer: ObjectBatchWriter, ids: ObjectId[], chunkFlags: boolean[], asked: Promise<ObjectId[]> | undefined | null): Promise<void> {
    if (this.failure || asked === undefined) {
      this.pipeline.release(writer);
      return;
    }
    const missing = await (asked ?? this.remote.missing(ids));
    if (missing.length < ids.length * MISSING_SHARE_MIN) this.active = false;
    if (missing.length === 0) {
      this.pipeline.release(writer);
      return;
    }
    if (missing.length === ids.length) {
      this.objectsSent += writer.count;
      this.chunksSent += chunkFlags.filter(Boolean).length;
      this.bytesSent += writer.objectBytes;
      await this.pipeline.send(writer);
      return;
    }
    // Some are present: send only the rest (compacted in place, so no second buffer is needed).
    const wanted = new Set(missing.map(idToHex));
    writer.retain((id) => wanted.has(idToHex(id)));
    this.objectsSent += writer.count;
    this.chunksSent += ids.filter((id, i) => chunkFlags[i] && wanted.has(idToHex(id))).length;
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
