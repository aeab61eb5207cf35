// Upload batches with a bounded number of requests in flight and a bounded pool of buffers,
// so a push's memory stays fixed whatever the size of what it sends.
import { LIMITS } from "../core/limits.ts";
import { DEFAULT_CHUNKER_PARAMS } from "../core/fastcdc.ts";
import { BATCH_HEADER_BYTES, BATCH_ITEM_OVERHEAD_BYTES, ObjectBatchWriter } from "./batch-writer.ts";
import type { RemoteNode } from "./remote.ts";

/**
 * Sends batches with a bounded number in flight. Each batch is built in one of a small pool of
 * reusable buffers, which returns to the pool when its request completes.
 */
export class UploadPipeline {
  private readonly inFlight: Promise<void>[] = [];
  private readonly free: Uint8Array[] = [];
  private readonly waiting: (() => void)[] = [];
  wireBytes = 0;

  /** Buffers in use or pooled, of either size: at most one per request in flight plus the one being filled. */
  private buffersMade = 0;
  /**
   * A batch closes once it passes batchBytesTarget, so a pooled buffer needs room for that and
   * one more object of the sizes a push makes: a node (structuredObjectBytesMax) or a chunk of
   * the default chunker. Sized for the largest object any chunker may cut (objectBytesMax), the
   * five buffers took 60 MiB instead of 25 MiB. An object too large for a pooled buffer gets a
   * batch of its own, in a buffer made for it that counts against the same bound and is dropped
   * after its request.
   */
  static readonly BUFFER_BYTES = LIMITS.batchBytesTarget + Math.max(LIMITS.structuredObjectBytesMax, DEFAULT_CHUNKER_PARAMS.maxSizeBytes) + 64 * 1024;
  private static readonly BUFFERS_MAX = LIMITS.transferConcurrency + 1;

  constructor(private readonly remote: RemoteNode) {}

  /**
   * A writer over a free buffer with room for an object of `lengthBytes`, waiting until a
   * buffer is given back when all are in use.
   */
  async writer(lengthBytes = 0): Promise<ObjectBatchWriter> {
    const bufferBytes = Math.max(UploadPipeline.BUFFER_BYTES, BATCH_HEADER_BYTES + BATCH_ITEM_OVERHEAD_BYTES + lengthBytes);
    const pooled = bufferBytes === UploadPipeline.BUFFER_BYTES;
    for (;;) {
      if (pooled && this.free.length > 0) return new ObjectBatchWriter(this.free.pop()!);
      if (this.buffersMade < UploadPipeline.BUFFERS_MAX) {
        this.buffersMade++;
        return new ObjectBatchWriter(new Uint8Array(bufferBytes));
      }
      // A large object: a pooled buffer is dropped to make room for one of its size.
      if (!pooled && this.free.length > 0) {
        this.free.pop();
        return new ObjectBatchWriter(new Uint8Array(bufferBytes));
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private giveBack(buffer: Uint8Array): void {
    if (buffer.length === UploadPipeline.BUFFER_BYTES) this.free.push(buffer);
    else this.buffersMade--;
    this.waiting.shift()?.();
  }

  /** Sends the writer's batch; its buffer returns to the pool when the request completes. */
  async send(writer: ObjectBatchWriter): Promise<void> {
    if (this.inFlight.length >= LIMITS.transferConcurrency) await this.inFlight.shift();
    const body = writer.finish();
    const request = this.remote
      .uploadEncoded(body)
      .then((wireBytes) => {
        this.wireBytes += wireBytes;
      })
      .finally(() => this.giveBack(writer.buffer));
    // Failures surface from drain() or a later send; keep the rejection from going unhandled meanwhile.
    request.catch(() => {});
    this.inFlight.push(request);
  }

  /** Returns a writer's buffer to the pool without sending it. */
  release(writer: ObjectBatchWriter): void {
    writer.reset();
    this.giveBack(writer.buffer);
  }

  async drain(): Promise<void> {
    while (this.inFlight.length > 0) await this.inFlight.shift();
  }
}
