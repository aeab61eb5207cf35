// Upload batches with a bounded number of requests in flight and a bounded pool of buffers,
// so a push's memory stays fixed whatever the size of what it sends.
import { LIMITS } from "../core/limits.ts";
import { ObjectBatchWriter } from "./batch-writer.ts";
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

  /** Buffers made so far; at most one per request in flight plus the one being filled. */
  private buffersMade = 0;
  private static readonly BUFFER_BYTES = LIMITS.batchBytesTarget + LIMITS.objectBytesMax + 64 * 1024;
  private static readonly BUFFERS_MAX = LIMITS.transferConcurrency + 1;

  constructor(private readonly remote: RemoteNode) {}

  /** A writer over a free buffer, waiting until one is given back if none is free. */
  async writer(): Promise<ObjectBatchWriter> {
    if (this.free.length === 0 && this.buffersMade < UploadPipeline.BUFFERS_MAX) {
      this.buffersMade++;
      this.free.push(new Uint8Array(UploadPipeline.BUFFER_BYTES));
    }
    while (this.free.length === 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return new ObjectBatchWriter(this.free.pop()!);
  }

  private giveBack(buffer: Uint8Array): void {
    this.free.push(buffer);
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
