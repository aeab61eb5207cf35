// Cutting and hashing large files on every core: worker threads (chunk-worker.ts) take
// segments of a file, and the chunks come back in file order and chunk order, exactly the
// chunks one thread would cut.
//
// FastCDC is sequential: where a chunk ends depends on where it began. A file is split into
// segments of `segmentBytes`, and the worker of each segment cuts from the segment's start as if
// a chunk began there, on until its first cut at or past the segment's end. The first segment's
// cuts are the file's. For each next segment, the true chain of cuts arrives from the one before
// at some offset at or past the segment's start (the earlier worker went on past its end). Two
// chains of FastCDC cuts that share one cut share every later cut (a cut depends only on the
// bytes from the chunk's start), so from the first true cut that is also a cut of this
// segment's chain, this segment's chunks are the file's. Until then (usually a chunk or two, at
// most up to the segment's end) this thread cuts and hashes the true chunks itself, from the
// segment's bytes, which extend one largest chunk past its end: enough for any chunk that
// starts before it. The worker's chunks before the meeting point are dropped (hashed for
// nothing: a chunk or two per segment); every chunk delivered is hashed once.
//
// The pool holds a bounded number of segment buffers (`buffersMax`); a segment is given a worker
// only with a free buffer, and its buffer comes back once its chunks have been delivered, so
// memory stays bounded whatever the files' sizes and however far ahead files are submitted.
// Segments are handed out first come, first served, and delivered in the same order. When the
// segment to deliver next has not been taken by a worker (the workers are still starting, some
// 40 ms with their compilers cold, or all busy), this thread cuts it itself (in the scan's read
// buffer, idle meanwhile), rather than wait: the workers only ever add to what one thread does.
// It yields to its event loop first, so the workers' messages are heard. A worker that
// fails (throws, exits) fails every segment waiting and every later one with
// ChunkWorkerFailure: the scan fails, it never falls back to another result. Waits are tied to
// the workers' exit.
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { blake3 } from "../core/blake3.ts";
import { findCutPoint, type ChunkerParams } from "../core/fastcdc.ts";
import { ID_LENGTH_BYTES, type ObjectId } from "../core/id.ts";
import type { ChunkVisit } from "./chunk-reader.ts";
import type { SegmentReply, SegmentRequest } from "./chunk-worker.ts";
import { chunkSegment, SegmentReadFailure, type SegmentChunks } from "./segment-chunker.ts";

export { SegmentReadFailure };

/**
 * Bytes per segment. Small enough to share a file of a few tens of MiB between two cores and to
 * keep the buffers small (2 x threads of them, each a segment and a largest chunk), large enough
 * that handing one over and the chunk or two cut twice at its start cost a few percent (6.5% of
 * the bytes at 4 MiB on random data: 2.8% cut again here, 3.8% hashed by a worker and dropped).
 */
export const SEGMENT_BYTES_DEFAULT = 4 * 1024 * 1024;

/** The environment variable that sets the number of threads that cut and hash (1: all on the scanning thread). */
export const CHUNK_THREADS_ENV = "DSYNC_CHUNK_THREADS";

/**
 * Worker threads by default at most: past a few, the scanning thread, which takes every chunk
 * (store, upload), is the limit, and each thread holds two segment buffers.
 */
export const CHUNK_THREADS_DEFAULT_MAX = 4;

/**
 * The threads a scan cuts and hashes with: DSYNC_CHUNK_THREADS when set (a whole number from
 * 1, 1 meaning no worker threads), else the machine's cores (at most CHUNK_THREADS_DEFAULT_MAX).
 * Throws on anything else, so a typo is not taken for "one thread".
 */
export function chunkThreadsFromEnvironment(env: Record<string, string | undefined> = process.env): number {
  const text = env[CHUNK_THREADS_ENV];
  if (text === undefined || text === "") return Math.min(availableParallelism(), CHUNK_THREADS_DEFAULT_MAX);
  const threads = Number(text);
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 256 || String(threads) !== text.trim()) {
    throw new Error(`${CHUNK_THREADS_ENV} must be a whole number from 1 to 256 (1: no worker threads), got ${JSON.stringify(text)}`);
  }
  return threads;
}

/** A worker thread failed (threw or exited): the scan fails with it. */
export class ChunkWorkerFailure extends Error {}

export interface ChunkWorkerPoolOptions {
  /** Worker threads to start (at least 1). */
  threads: number;
  segmentBytes?: number;
  /** The worker's module; tests pass one that fails. Default: chunk-worker.ts, also inside the compiled binary. */
  workerSpecifier?: string;
  /** Whether this thread cuts a segment no worker has taken rather than wait (default true; tests turn it off to see the workers alone). */
  cutWhileWaiting?: boolean;
}

const EMBEDDED_ROOT = "/$bunfs/root";
const EMBEDDED_WORKER = "src/fs/chunk-worker.js";

/**
 * Where the worker's module is. Inside a binary built by `bun build --compile` with
 * src/fs/chunk-worker.ts as an extra entry point (package.json "build"), it sits under
 * /$bunfs/root by its path from where the build ran: src/fs/chunk-worker.js from a checkout,
 * a path climbing out of the checkout and ending in src/fs/chunk-worker.js when the build went
 * through a symlinked src/ (the path is the file's real one). So it is looked up among the
 * embedded files, once.
 */
function defaultWorkerSpecifier(): string {
  if (!(import.meta.url.startsWith("file:///$bunfs/") || import.meta.path.startsWith("/$bunfs/"))) return new URL("./chunk-worker.ts", import.meta.url).href;
  embeddedWorker ??= findEmbeddedWorker();
  return embeddedWorker;
}

let embeddedWorker: string | undefined;

function findEmbeddedWorker(): string {
  let names: string[];
  try {
    names = readdirSync(EMBEDDED_ROOT, { recursive: true, encoding: "utf8" });
  } catch (error) {
    throw new ChunkWorkerFailure(`cannot list the files inside this binary to find its chunk worker: ${(error as Error).message}`);
  }
  const found = names.find((name) => name === EMBEDDED_WORKER) ?? names.find((name) => name.endsWith(`/${EMBEDDED_WORKER}`));
  if (!found) throw new ChunkWorkerFailure(`this binary was built without its chunk worker (src/fs/chunk-worker.ts as an extra entry point of bun build --compile); DSYNC_CHUNK_THREADS=1 scans without it`);
  return `${EMBEDDED_ROOT}/${found}`;
}

interface Segment {
  job: number;
  file: FileChunking;
  startBytes: number;
  endBytes: number;
  /** Settles when the worker answers (or the pool fails); a ChunkWorkerFailure or SegmentReadFailure on failure. */
  reply: Promise<SegmentChunks>;
  resolve(reply: SegmentChunks): void;
  reject(error: Error): void;
  state: "queued" | "running" | "done" | "dropped";
  worker?: WorkerSlot;
  buffer?: ArrayBuffer;
  /** Cut on this thread, in its own buffer. */
  here?: boolean;
}

interface WorkerSlot {
  worker: Worker;
  /** Loaded and listening: only then is it sent work. */
  ready: boolean;
  running: number;
  /** The thread's CPU time as of its last answer. */
  cpuMicros: number;
  /** Settles when the thread has exited. */
  exited: Promise<void>;
}

/** Segments sent to one worker before it answers: up to two, so it need not wait for this thread to take its answer and send the next. */
const RUNNING_PER_WORKER = 2;

export class ChunkWorkerPool {
  readonly threads: number;
  readonly segmentBytes: number;
  private readonly slots: WorkerSlot[] = [];
  private readonly queue: Segment[] = [];
  private readonly running = new Map<number, Segment>();
  private readonly freeBuffers: ArrayBuffer[] = [];
  private buffersMade = 0;
  /** Buffers that may be made now: one per worker, up to `buffersLimit` once this thread has had to wait. */
  private buffersMax: number;
  private readonly buffersLimit: number;
  /** This thread's own buffer, for the segments it cuts itself. */
  private hereBuffer: ArrayBuffer | undefined;
  /** Whether a segment cut here is being delivered from it. */
  private hereBusy = false;
  /** Segments this thread cut itself. */
  segmentsHere = 0;
  /** Bytes of true chunks this thread cut where a segment's chain had not yet met the file's (the price of segments). */
  bytesStitched = 0;
  /** Bytes of the workers' chunks dropped before the meeting points (hashed for nothing). */
  bytesDropped = 0;
  /** Checks waiting for the workers to be ready, run at each change. */
  private readyWaiters: (() => void)[] = [];
  private readonly cutWhileWaiting: boolean;
  private nextJob = 1;
  private failure: ChunkWorkerFailure | undefined;
  private closed = false;
  /** The bytes a segment buffer holds (set by the first file: one chunker's parameters per pool). */
  private bufferBytes = 0;
  private params: ChunkerParams | undefined;

  constructor(options: ChunkWorkerPoolOptions) {
    if (!Number.isSafeInteger(options.threads) || options.threads < 1) throw new Error(`a chunk worker pool needs at least one thread, got ${options.threads}`);
    this.threads = options.threads;
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES_DEFAULT;
    this.cutWhileWaiting = options.cutWhileWaiting ?? true;
    if (!Number.isSafeInteger(this.segmentBytes) || this.segmentBytes < 64 * 1024) throw new Error(`segments must be at least 64 KiB, got ${this.segmentBytes}`);
    // One per worker to begin with, two once this thread has waited for a worker within a file
    // (it takes chunks faster than they come): then each worker has the next queued behind the
    // one it cuts. With one more than the workers instead, one worker waited on the other's
    // segment ahead of its own and cut 40% less (109 + 67 ms of CPU against 91 + 88 ms for 192
    // MiB). A scan whose sink is the slower side (a push, a store) never waits, and keeps one
    // per worker: 8.5 MiB less for two.
    this.buffersLimit = RUNNING_PER_WORKER * this.threads;
    this.buffersMax = this.threads;
    const specifier = options.workerSpecifier ?? defaultWorkerSpecifier();
    for (let i = 0; i < this.threads; i++) {
      // The small heap: a worker holds a segment's lengths and ids at a time, and it took ~7 MB off a push's peak.
      const worker = new Worker(specifier, { smol: true });
      let exited!: () => void;
      const slot: WorkerSlot = { worker, ready: false, running: 0, cpuMicros: 0, exited: new Promise<void>((resolve) => (exited = resolve)) };
      worker.addEventListener("message", (event: MessageEvent) => this.answered(slot, event.data as SegmentReply));
      worker.addEventListener("error", (event: ErrorEvent) => {
        event.preventDefault();
        this.fail(`a chunk worker failed: ${event.message || String(event.error ?? "unknown error")}`);
      });
      worker.addEventListener("messageerror", () => this.fail("a chunk worker sent a message that could not be read"));
      worker.addEventListener("close", (event: Event) => {
        exited();
        if (!this.closed) this.fail(`a chunk worker exited${"code" in event ? ` with code ${String((event as CloseEvent).code)}` : ""}`);
      });
      this.slots.push(slot);
    }
  }

  /** Segment buffers made so far, this thread's own included (a buffer goes back and forth between the threads, transferred, so this is their memory). */
  get buffersAllocated(): number {
    return this.buffersMade + (this.hereBuffer ? 1 : 0);
  }

  /** Settles once every worker is loaded and listening, or rejects when one fails first (for benchmarks and tests that time or test the workers alone). */
  whenReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) reject(this.failure);
        else if (this.closed) reject(new ChunkWorkerFailure("the chunk worker pool was closed"));
        else if (this.slots.every((slot) => slot.ready)) resolve();
        else this.readyWaiters.push(check);
      };
      check();
    });
  }

  /** Each worker thread's CPU time (user + system, µs) as of its last answer: with this thread's, what a benchmark needs to tell the work's split from the machine's load. */
  workerCpuMicros(): number[] {
    return this.slots.map((slot) => slot.cpuMicros);
  }

  /** Settles once every worker thread has exited (after a failure or close, which stop them all). */
  async workersExited(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.exited));
  }

  /** Whether a worker has failed: every segment from now on fails too. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * Starts cutting and hashing the open file `fd` (of `sizeBytes` bytes, as its fstat said).
   * The caller keeps fd open until the result's `forEachChunk` or `abandon` has settled: the
   * workers read it until then.
   */
  submitFile(fd: number, sizeBytes: number, params: ChunkerParams): FileChunking {
    if (this.closed) throw new Error("the chunk worker pool is closed");
    if (this.params === undefined) {
      this.params = { ...params };
      this.bufferBytes = this.segmentBytes + params.maxSizeBytes;
    } else if (this.params.minSizeBytes !== params.minSizeBytes || this.params.avgSizeBytes !== params.avgSizeBytes || this.params.maxSizeBytes !== params.maxSizeBytes) {
      throw new Error("a chunk worker pool serves one set of chunker parameters");
    }
    const file = new FileChunking(this, fd, sizeBytes, params);
    // An empty file has no segment (and no chunk).
    const count = Math.ceil(sizeBytes / this.segmentBytes);
    for (let k = 0; k < count; k++) {
      const startBytes = k * this.segmentBytes;
      const endBytes = k === count - 1 ? sizeBytes : startBytes + this.segmentBytes;
      let resolve!: (reply: SegmentChunks) => void;
      let reject!: (error: Error) => void;
      const reply = new Promise<SegmentChunks>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Nobody may be waiting on a segment when it fails (an abandoned file): never an unhandled rejection.
      reply.catch(() => undefined);
      const segment: Segment = { job: this.nextJob++, file, startBytes, endBytes, reply, resolve, reject, state: "queued" };
      file.segments.push(segment);
      if (this.failure) {
        segment.state = "done";
        reject(this.failure);
      } else this.queue.push(segment);
    }
    this.dispatch();
    return file;
  }

  /** Stops the workers. Segments still waiting fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new ChunkWorkerFailure("the chunk worker pool was closed"));
    for (const slot of this.slots) slot.worker.terminate();
  }

  /** This thread is about to wait for a worker's segment: the workers are the slower side, so each may have one more queued. */
  waitingForWorkers(): void {
    if (this.buffersMax >= this.buffersLimit) return;
    this.buffersMax++;
    this.dispatch();
  }

  /** Gives a delivered segment's buffer back for the next one. */
  release(segment: Segment): void {
    const buffer = segment.buffer;
    segment.buffer = undefined;
    if (buffer && segment.here) this.hereBusy = false;
    else if (buffer) {
      if (buffer.byteLength === this.bufferBytes) this.freeBuffers.push(buffer);
      else this.buffersMade--;
    }
    this.dispatch();
  }

  /**
   * Cuts a segment no worker has taken on this thread, now, instead of waiting for one; a
   * segment already taken is left to its worker.
   */
  cutHereIfWaiting(segment: Segment, lent?: ArrayBuffer): void {
    if (!this.cutWhileWaiting || segment.state !== "queued" || this.hereBusy || this.failure || this.closed) return;
    const at = this.queue.indexOf(segment);
    if (at < 0) return;
    this.queue.splice(at, 1);
    const buffer = lent && lent.byteLength >= this.bufferBytes ? lent : (this.hereBuffer ??= new ArrayBuffer(this.bufferBytes));
    segment.here = true;
    this.hereBusy = true;
    segment.buffer = buffer;
    segment.state = "done";
    this.segmentsHere++;
    try {
      segment.resolve(chunkSegment({ fd: segment.file.fd, startBytes: segment.startBytes, endBytes: segment.endBytes, fileSizeBytes: segment.file.sizeBytes, params: segment.file.params, buffer }));
    } catch (error) {
      // A read that failed makes the file unreadable; anything else is a fault of the pool's, and fails the scan.
      segment.reject(error instanceof SegmentReadFailure ? error : new ChunkWorkerFailure(`cutting a segment on the scanning thread failed: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  /** Takes the file's segments not yet running out of the queue. */
  drop(file: FileChunking): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const segment = this.queue[i]!;
      if (segment.file !== file) continue;
      this.queue.splice(i, 1);
      segment.state = "dropped";
      segment.reject(new Error("abandoned"));
    }
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.failure && !this.closed) {
      let slot: WorkerSlot | undefined;
      for (const s of this.slots) if (s.ready && s.running < RUNNING_PER_WORKER && (!slot || s.running < slot.running)) slot = s;
      if (!slot) return;
      let buffer = this.freeBuffers.pop();
      if (!buffer) {
        if (this.buffersMade >= this.buffersMax) return;
        buffer = new ArrayBuffer(this.bufferBytes);
        this.buffersMade++;
      }
      const segment = this.queue.shift()!;
      segment.state = "running";
      segment.worker = slot;
      slot.running++;
      this.running.set(segment.job, segment);
      const request: SegmentRequest = {
        job: segment.job,
        fd: segment.file.fd,
        startBytes: segment.startBytes,
        endBytes: segment.endBytes,
        fileSizeBytes: segment.file.sizeBytes,
        params: segment.file.params,
        buffer,
      };
      slot.worker.postMessage(request, [buffer]);
    }
  }

  private answered(slot: WorkerSlot, reply: SegmentReply): void {
    if (reply.ready) {
      slot.ready = true;
      this.wakeReadyWaiters();
      this.dispatch();
      return;
    }
    const segment = this.running.get(reply.job);
    if (!segment || segment.worker !== slot) {
      this.fail(`a chunk worker answered for a segment it was not given (${reply.job})`);
      return;
    }
    this.running.delete(reply.job);
    slot.running--;
    slot.cpuMicros = reply.threadCpuMicros;
    segment.state = "done";
    segment.buffer = reply.buffer;
    if (reply.ok) segment.resolve(reply);
    else segment.reject(new SegmentReadFailure(reply.message, reply.code));
    this.dispatch();
  }

  private fail(message: string): void {
    if (this.failure || this.closed) return;
    this.failAll(new ChunkWorkerFailure(message));
    for (const slot of this.slots) slot.worker.terminate();
  }

  private wakeReadyWaiters(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const check of waiters) check();
  }

  private failAll(failure: ChunkWorkerFailure): void {
    this.failure ??= failure;
    this.wakeReadyWaiters();
    for (const segment of [...this.queue, ...this.running.values()]) {
      segment.state = "done";
      segment.reject(failure);
    }
    this.queue.length = 0;
    this.running.clear();
  }
}

/** One file being cut by the pool's workers. */
export class FileChunking {
  readonly segments: Segment[] = [];
  private finished = false;

  constructor(private readonly pool: ChunkWorkerPool, readonly fd: number, readonly sizeBytes: number, readonly params: ChunkerParams) {}

  /**
   * Hands every chunk of the file to `visit`, in order, as forEachChunk (chunk-reader.ts) does:
   * `bytes` is a view valid until the callback returns or its promise settles. `onRead` hears
   * the bytes delivered, per segment. Returns the file's size. Rejects with SegmentReadFailure
   * when a segment could not be read, ChunkWorkerFailure when a worker failed, or what `visit`
   * threw; either way, once it settles no worker reads the file any more. `lent`, when at least
   * a segment buffer's size, is where this thread cuts the segments it cuts itself (the
   * scanner's read buffer, idle meanwhile), instead of a buffer of the pool's.
   */
  async forEachChunk(visit: (chunk: ChunkVisit) => void | Promise<void>, onRead?: (bytes: number) => void, lent?: ArrayBuffer): Promise<number> {
    if (this.finished) throw new Error("a file's chunks are delivered once");
    this.finished = true;
    const params = this.params;
    let position = 0;
    try {
      for (const segment of this.segments) {
        if (segment.state === "queued") {
          // The workers' messages (ready, done) wait for this thread to yield to its event
          // loop: without this, a thread whose sink never waits on I/O would cut every segment
          // itself, the workers never heard.
          await new Promise<void>((resolve) => setImmediate(resolve));
          this.pool.cutHereIfWaiting(segment, lent);
        }
        // Waiting within a file (not for its first segment, which every file waits for): the
        // workers are behind.
        if (segment.state === "running" && segment !== this.segments[0]) this.pool.waitingForWorkers();
        const reply = await segment.reply;
        const delivered = position;
        try {
          const bytes = new Uint8Array(segment.buffer!, 0, reply.filledBytes);
          const base = segment.startBytes;
          const eof = base + reply.filledBytes === this.sizeBytes;
          const { lengths, ids } = reply;
          // The worker's chunk `next`, which starts at `at`: the first of its chunks not before `position`.
          let next = 0;
          let at = base;
          while (next < lengths.length && at < position) at += lengths[next++]!;
          // Cut the true chunks here until they meet the worker's cuts (or pass this segment).
          while (position < segment.endBytes && !(next < lengths.length && at === position)) {
            const from = position - base;
            const length = findCutPoint(bytes, from, bytes.length, params, eof);
            if (length <= 0) throw new ChunkWorkerFailure(`no cut at ${position} within the segment ${base}..${segment.endBytes}`);
            await visit({ id: blake3(bytes.subarray(from, from + length)), offsetBytes: position, bytes: bytes.subarray(from, from + length) });
            position += length;
            this.pool.bytesStitched += length;
            while (next < lengths.length && at < position) at += lengths[next++]!;
          }
          // From the meeting point on, the worker's chunks are the file's; those before it are dropped.
          const met = next < lengths.length && at === position;
          let workerBytes = 0;
          for (const length of lengths) workerBytes += length;
          this.pool.bytesDropped += met ? at - base : workerBytes;
          if (met) {
            for (; next < lengths.length; next++) {
              const length = lengths[next]!;
              const from = position - base;
              const id = ids.slice(next * ID_LENGTH_BYTES, (next + 1) * ID_LENGTH_BYTES) as ObjectId;
              await visit({ id, offsetBytes: position, bytes: bytes.subarray(from, from + length) });
              position += length;
            }
          }
        } finally {
          this.pool.release(segment);
        }
        if (position > delivered) onRead?.(position - delivered);
      }
      if (position !== this.sizeBytes) throw new ChunkWorkerFailure(`the segments of a ${this.sizeBytes}-byte file gave chunks up to ${position}`);
      return position;
    } finally {
      await this.abandon();
    }
  }

  /** Stops the file's segments: the queued ones are dropped, the running ones awaited. Afterwards no worker reads fd. */
  async abandon(): Promise<void> {
    this.finished = true;
    // A failed pool stops its threads: a segment it was cutting is read no more once they have exited.
    if (this.pool.failed) await this.pool.workersExited();
    this.pool.drop(this);
    for (const segment of this.segments) {
      if (segment.state !== "running") {
        if (segment.state === "done" && segment.buffer) this.pool.release(segment);
        continue;
      }
      await segment.reply.catch(() => undefined);
      this.pool.release(segment);
    }
  }
}
