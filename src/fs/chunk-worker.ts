// The thread side of chunk-worker-pool.ts: cuts and hashes segments of open files
// (segment-chunker.ts) as the pool sends them, one at a time, in the order sent.
//
// A request names a file descriptor of this process (threads share the descriptor table, so the
// file the scanner opened and checked is the one read here: nothing is opened by path). The
// buffer, the chunk lengths and the ids go back transferred, not copied. A failed read is
// answered as such, which makes the file unreadable for this scan, as a failed read on the
// scanning thread does; anything else this thread throws ends it, and the pool fails the scan.
// It says it is ready once loaded, so the pool sends work only to a thread that can start on it.
import { chunkSegment, SegmentReadFailure, type SegmentChunks, type SegmentWork } from "./segment-chunker.ts";

export interface SegmentRequest extends SegmentWork {
  job: number;
}

export type SegmentReply =
  | { ready: true }
  | ({ ready?: undefined; job: number; ok: true; buffer: ArrayBuffer; threadCpuMicros: number } & SegmentChunks)
  | { ready?: undefined; job: number; ok: false; buffer: ArrayBuffer; message: string; code?: string; threadCpuMicros: number };

/** This thread's CPU time so far (user + system), for the benchmarks' load-independent figures. */
function threadCpuMicros(): number {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
}

declare const self: Worker;

self.onmessage = (event: MessageEvent) => {
  const request = event.data as SegmentRequest;
  let reply: SegmentReply;
  try {
    reply = { job: request.job, ok: true, buffer: request.buffer, ...chunkSegment(request), threadCpuMicros: threadCpuMicros() };
  } catch (error) {
    if (!(error instanceof SegmentReadFailure)) throw error;
    reply = { job: request.job, ok: false, buffer: request.buffer, message: error.message, code: error.code, threadCpuMicros: threadCpuMicros() };
  }
  postMessage(reply, reply.ok ? [reply.buffer, reply.lengths.buffer, reply.ids.buffer] : [reply.buffer]);
};

postMessage({ ready: true } satisfies SegmentReply);
