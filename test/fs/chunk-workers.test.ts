// Chunking and hashing on worker threads (src/fs/chunk-worker-pool.ts): every result compared
// with the one-thread one on the same input. Files of many sizes around and across the segment
// size, random, repetitive and mixed content (where a segment's chain of cuts meets the true
// one late, or only at a later segment), whole trees through scanDirectory, the order the sink
// sees, a worker that fails, a file that shrank, and the memory a large file takes.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, fstatSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from "../../src/core/fastcdc.ts";
import { idToHex } from "../../src/core/id.ts";
import { forEachChunk } from "../../src/fs/chunk-reader.ts";
import { ChunkWorkerFailure, ChunkWorkerPool, chunkThreadsFromEnvironment, SegmentReadFailure } from "../../src/fs/chunk-worker-pool.ts";
import { scanDirectory, WORKER_FILE_BYTES_MIN, type ScanOptions, type ScanResult } from "../../src/fs/scanner.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";
import { randomBytes, writeTree } from "../helpers/trees.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** The smallest segment the pool takes: several per chunk of the largest size, so stitching runs across many segments. */
const SEGMENT = 64 * KiB;
const LATE_NS = () => BigInt(Date.now() + 3_600_000) * 1_000_000n;

afterAll(cleanupTempDirs);

/** Random bytes with runs of zeros and of a short repeated pattern in them: chains of cuts out of phase for a while. */
function mixedBytes(length: number, seed: number): Uint8Array {
  const bytes = randomBytes(length, seed);
  const pattern = randomBytes(997, seed + 1);
  for (let at = Math.floor(length / 7); at < length; at += Math.floor(length / 3) + 1) {
    const zerosEnd = Math.min(length, at + 300 * KiB);
    bytes.fill(0, at, zerosEnd);
    for (let p = zerosEnd; p < Math.min(length, zerosEnd + 200 * KiB); p++) bytes[p] = pattern[p % pattern.length]!;
  }
  return bytes;
}

function repeated(length: number, period: number, seed: number): Uint8Array {
  const pattern = randomBytes(period, seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = pattern[i % period]!;
  return bytes;
}

/** offset:length:id of every chunk, in the order they came. */
async function oneThreadChunks(path: string, params: ChunkerParams): Promise<string[]> {
  const fd = openSync(path, "r");
  try {
    const chunks: string[] = [];
    await forEachChunk(fd, new Uint8Array(4 * MiB), params, (c) => void chunks.push(`${c.offsetBytes}:${c.bytes.length}:${idToHex(c.id)}`));
    return chunks;
  } finally {
    closeSync(fd);
  }
}

async function workerChunks(pool: ChunkWorkerPool, path: string, params: ChunkerParams): Promise<string[]> {
  const fd = openSync(path, "r");
  try {
    const chunks: string[] = [];
    let read = 0;
    const size = await pool.submitFile(fd, fstatSync(fd).size, params).forEachChunk(
      (c) => void chunks.push(`${c.offsetBytes}:${c.bytes.length}:${idToHex(c.id)}`),
      (n) => (read += n),
    );
    expect(size).toBe(fstatSync(fd).size);
    expect(read).toBe(size);
    return chunks;
  } finally {
    closeSync(fd);
  }
}

describe("one file on the workers gives the one-thread chunks", () => {
  // The workers alone: this thread never cuts a segment itself here (see "this thread's share" below).
  const pool = new ChunkWorkerPool({ threads: 2, segmentBytes: SEGMENT, cutWhileWaiting: false });
  afterAll(() => pool.close());
  const dir = tempDir();
  const max = DEFAULT_CHUNKER_PARAMS.maxSizeBytes;
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["1 byte", randomBytes(1, 1)],
    ["segment - 1", randomBytes(SEGMENT - 1, 2)],
    ["segment", randomBytes(SEGMENT, 3)],
    ["segment + 1", randomBytes(SEGMENT + 1, 4)],
    ["largest chunk + segment + 1", randomBytes(max + SEGMENT + 1, 5)],
    ["many segments, random", randomBytes(5 * MiB + 12_345, 6)],
    ["many segments, zeros", new Uint8Array(3 * MiB + 777)],
    ["many segments, a 4 KiB pattern", repeated(3 * MiB + 5, 4096, 7)],
    ["many segments, a 1 000-byte pattern", repeated(2 * MiB + 99, 1000, 8)],
    ["many segments, random with zero and pattern runs", mixedBytes(6 * MiB + 4321, 9)],
  ];
  for (const [name, bytes] of cases) {
    test(`${name} (${bytes.length} bytes)`, async () => {
      const path = join(dir, name.replace(/[^a-z0-9]+/gi, "-"));
      writeFileSync(path, bytes);
      const expected = await oneThreadChunks(path, DEFAULT_CHUNKER_PARAMS);
      expect(await workerChunks(pool, path, DEFAULT_CHUNKER_PARAMS)).toEqual(expected);
    });
  }

  test("other chunker parameters (small chunks, many per segment)", async () => {
    const params = { minSizeBytes: 2 * KiB, avgSizeBytes: 8 * KiB, maxSizeBytes: 32 * KiB };
    const small = new ChunkWorkerPool({ threads: 3, segmentBytes: SEGMENT });
    try {
      const path = join(dir, "small-chunks");
      writeFileSync(path, mixedBytes(3 * MiB + 1, 10));
      const expected = await oneThreadChunks(path, params);
      expect(expected.length).toBeGreaterThan(200);
      expect(await workerChunks(small, path, params)).toEqual(expected);
    } finally {
      await small.close();
    }
  });

  test("files handed over together come back each in order, and the pool's buffers stay bounded", async () => {
    const paths = [0, 1, 2, 3].map((i) => {
      const path = join(dir, `together-${i}`);
      writeFileSync(path, i % 2 === 0 ? randomBytes(2 * MiB + i, 20 + i) : mixedBytes(3 * MiB + i, 30 + i));
      return path;
    });
    const expected = await Promise.all(paths.map((p) => oneThreadChunks(p, DEFAULT_CHUNKER_PARAMS)));
    const fds = paths.map((p) => openSync(p, "r"));
    const files = fds.map((fd) => pool.submitFile(fd, fstatSync(fd).size, DEFAULT_CHUNKER_PARAMS));
    try {
      for (const [i, file] of files.entries()) {
        const chunks: string[] = [];
        await file.forEachChunk((c) => void chunks.push(`${c.offsetBytes}:${c.bytes.length}:${idToHex(c.id)}`));
        expect(chunks).toEqual(expected[i]!);
      }
      // Two per worker, and this thread's own (a transferred buffer is a new object each way,
      // the same memory).
      expect(pool.buffersAllocated).toBeLessThanOrEqual(5);
    } finally {
      // Files not taken (a failed expectation) give their buffers back before their files close.
      for (const file of files) await file.abandon();
      fds.forEach((fd) => closeSync(fd));
    }
  });

  test("a file shorter than its fstat said (it shrank while read) fails with a read failure, and the pool carries on", async () => {
    const path = join(dir, "shrank");
    writeFileSync(path, randomBytes(MiB, 40));
    const fd = openSync(path, "r");
    try {
      const file = pool.submitFile(fd, MiB + 100_000, DEFAULT_CHUNKER_PARAMS);
      const failure = await file.forEachChunk(() => undefined).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SegmentReadFailure);
      expect((failure as Error).message).toContain("shrank");
    } finally {
      closeSync(fd);
    }
    expect(pool.failed).toBe(false);
    const again = join(dir, "after-shrank");
    writeFileSync(again, randomBytes(MiB, 41));
    expect(await workerChunks(pool, again, DEFAULT_CHUNKER_PARAMS)).toEqual(await oneThreadChunks(again, DEFAULT_CHUNKER_PARAMS));
  });

  test("a visit that throws stops the file, and later files still come", async () => {
    const path = join(dir, "visit-throws");
    writeFileSync(path, randomBytes(2 * MiB, 42));
    const fd = openSync(path, "r");
    try {
      let seen = 0;
      const failure = await pool
        .submitFile(fd, fstatSync(fd).size, DEFAULT_CHUNKER_PARAMS)
        .forEachChunk(() => {
          if (++seen === 3) throw new Error("the sink is full");
        })
        .catch((error: unknown) => error);
      expect((failure as Error).message).toBe("the sink is full");
    } finally {
      closeSync(fd);
    }
    expect(await workerChunks(pool, path, DEFAULT_CHUNKER_PARAMS)).toEqual(await oneThreadChunks(path, DEFAULT_CHUNKER_PARAMS));
  });

  test("the workers cut every segment (this thread only stitched)", () => {
    expect(pool.segmentsHere).toBe(0);
  });
});

describe("this thread's share: segments no worker took are cut here, with the same chunks", () => {
  test("workers that never get ready: every segment cut here, the one-thread chunks", async () => {
    const pool = new ChunkWorkerPool({ threads: 2, segmentBytes: SEGMENT, workerSpecifier: join(import.meta.dir, "fixtures", "silent-chunk-worker.ts") });
    try {
      const dir = tempDir();
      for (const [name, bytes] of [["random", randomBytes(3 * MiB + 7, 80)], ["mixed", mixedBytes(4 * MiB + 1, 81)]] as const) {
        const path = join(dir, name);
        writeFileSync(path, bytes);
        expect(await workerChunks(pool, path, DEFAULT_CHUNKER_PARAMS)).toEqual(await oneThreadChunks(path, DEFAULT_CHUNKER_PARAMS));
      }
      expect(pool.segmentsHere).toBe(Math.ceil((3 * MiB + 7) / SEGMENT) + Math.ceil((4 * MiB + 1) / SEGMENT));
    } finally {
      await pool.close();
    }
  });

  test("a sink that never waits on I/O still lets the workers in once they are up", async () => {
    // Fresh workers: this thread cuts the first segments itself, and must hear the workers when
    // they are ready even though its sink never yields (a synchronous sink, busy for a while).
    const pool = new ChunkWorkerPool({ threads: 2, segmentBytes: SEGMENT });
    try {
      const path = join(tempDir(), "sync-sink");
      writeFileSync(path, randomBytes(16 * MiB, 83));
      const expected = await oneThreadChunks(path, DEFAULT_CHUNKER_PARAMS);
      const fd = openSync(path, "r");
      try {
        const chunks: string[] = [];
        await pool.submitFile(fd, fstatSync(fd).size, DEFAULT_CHUNKER_PARAMS).forEachChunk((c) => {
          const until = performance.now() + 0.3;
          while (performance.now() < until);
          chunks.push(`${c.offsetBytes}:${c.bytes.length}:${idToHex(c.id)}`);
        });
        expect(chunks).toEqual(expected);
      } finally {
        closeSync(fd);
      }
      expect(pool.segmentsHere).toBeLessThan((16 * MiB) / SEGMENT / 2);
    } finally {
      await pool.close();
    }
  });

  test("a sink slower than the workers keeps one segment buffer per worker; one that waits for them gets two", async () => {
    // Segments of 1 MiB, some 16 chunks each: delivering one takes the slow sink ~32 ms, cutting one a worker ~1 ms.
    const pool = new ChunkWorkerPool({ threads: 2, segmentBytes: MiB, cutWhileWaiting: false });
    try {
      await pool.whenReady();
      const dir = tempDir();
      const path = join(dir, "slow-sink");
      writeFileSync(path, randomBytes(8 * MiB, 84));
      const expected = await oneThreadChunks(path, DEFAULT_CHUNKER_PARAMS);
      const fd = openSync(path, "r");
      try {
        const chunks: string[] = [];
        await pool.submitFile(fd, fstatSync(fd).size, DEFAULT_CHUNKER_PARAMS).forEachChunk(async (c) => {
          await Bun.sleep(2);
          chunks.push(`${c.offsetBytes}:${c.bytes.length}:${idToHex(c.id)}`);
        });
        expect(chunks).toEqual(expected);
      } finally {
        closeSync(fd);
      }
      expect(pool.buffersAllocated).toBe(2);
      // A sink that takes chunks at once waits for the workers: each gets a second buffer.
      const fast = join(dir, "fast-sink");
      writeFileSync(fast, randomBytes(24 * MiB, 85));
      expect(await workerChunks(pool, fast, DEFAULT_CHUNKER_PARAMS)).toEqual(await oneThreadChunks(fast, DEFAULT_CHUNKER_PARAMS));
      expect(pool.buffersAllocated).toBe(4);
    } finally {
      await pool.close();
    }
  });

  test("ready workers and this thread together (as a scan runs): the one-thread chunks", async () => {
    const pool = new ChunkWorkerPool({ threads: 2, segmentBytes: SEGMENT });
    try {
      await pool.whenReady();
      const dir = tempDir();
      const path = join(dir, "together");
      writeFileSync(path, mixedBytes(8 * MiB + 3, 82));
      // A sink that takes chunks at once: this thread reaches segments still waiting for a worker and cuts them.
      const expected = await oneThreadChunks(path, DEFAULT_CHUNKER_PARAMS);
      const fd = openSync(path, "r");
      try {
        const chunks: string[] = [];
        await pool.submitFile(fd, fstatSync(fd).size, DEFAULT_CHUNKER_PARAMS).forEachChunk((c) => void chunks.push(`${c.offsetBytes}:${c.bytes.length}:${idToHex(c.id)}`));
        expect(chunks).toEqual(expected);
      } finally {
        closeSync(fd);
      }
    } finally {
      await pool.close();
    }
  });
});

/** Everything a scan tells its sink, in order, and its result. */
async function scanRecorded(root: string, options: Partial<ScanOptions>): Promise<{ calls: string[]; result: ScanResult }> {
  const calls: string[] = [];
  const result = await scanDirectory(root, {
    nowNs: LATE_NS,
    ...options,
    sink: {
      chunk: (id, bytes) => void calls.push(`chunk ${idToHex(id)} ${bytes.length}`),
      object: (sealed) => void calls.push(`object ${idToHex(sealed.id)}`),
    },
  });
  return { calls, result };
}

/** The result but for who cut the files. */
function comparable(result: ScanResult): Omit<ScanResult, "ignoredAt" | "filesOnWorkers"> {
  const { ignoredAt: _, filesOnWorkers: __, ...rest } = result;
  return rest;
}

describe("a scan on the workers gives the one-thread scan", () => {
  test("a tree of files of many sizes and contents: the same root, the same sink calls in the same order, the same counts", async () => {
    const root = tempDir();
    const min = WORKER_FILE_BYTES_MIN;
    writeTree(root, {
      "empty.bin": new Uint8Array(0),
      "one.bin": randomBytes(1, 50),
      "just-below.bin": randomBytes(min - 1, 51),
      "at.bin": randomBytes(min, 52),
      "just-above.bin": randomBytes(min + 1, 53),
      "zeros.bin": new Uint8Array(2 * MiB + 3),
      "mixed.bin": mixedBytes(5 * MiB + 17, 54),
      "small.txt": "hello\n",
      sub: {
        "random.bin": randomBytes(3 * MiB + 1, 55),
        "copy-of-random.bin": randomBytes(3 * MiB + 1, 55),
        "pattern.bin": repeated(2 * MiB, 8191, 56),
        deeper: { "a.txt": "a", "b.bin": randomBytes(min + SEGMENT + 9, 57) },
      },
    });
    const one = await scanRecorded(root, { chunkThreads: 1 });
    const pool = new ChunkWorkerPool({ threads: 2, segmentBytes: SEGMENT, cutWhileWaiting: false });
    try {
      const workers = await scanRecorded(root, { chunkThreads: pool });
      expect(workers.calls).toEqual(one.calls);
      expect(comparable(workers.result)).toEqual(comparable(one.result));
      expect(one.result.filesRead).toBe(13);
      expect(one.result.filesOnWorkers).toBe(0);
      // Every file from WORKER_FILE_BYTES_MIN on: at, just-above, zeros, mixed, random, its copy, pattern, b.
      expect(workers.result.filesOnWorkers).toBe(8);
    } finally {
      await pool.close();
    }
  });

  test("workers started by the scan itself (files past the start threshold), and stopped at its end", async () => {
    const root = tempDir();
    writeTree(root, { "a.bin": randomBytes(20 * MiB, 60), "b.bin": mixedBytes(14 * MiB, 61), "c.txt": "c" });
    const one = await scanRecorded(root, { chunkThreads: 1 });
    const workers = await scanRecorded(root, { chunkThreads: 2 });
    expect(workers.calls).toEqual(one.calls);
    expect(comparable(workers.result)).toEqual(comparable(one.result));
    expect(workers.result.filesOnWorkers).toBe(2);
    expect(one.result.filesOnWorkers).toBe(0);
  });

  test("a worker that throws fails the scan with its message; the file is not reported unreadable", async () => {
    const root = tempDir();
    writeTree(root, { "big.bin": randomBytes(2 * MiB, 70), "small.txt": "s" });
    const pool = new ChunkWorkerPool({ threads: 2, workerSpecifier: join(import.meta.dir, "fixtures", "failing-chunk-worker.ts") });
    try {
      // Ready first: a scan that meets its first file before the workers are up cuts it on its own thread.
      await pool.whenReady();
      const failure = await scanDirectory(root, { sink: { object: () => undefined }, chunkThreads: pool }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ChunkWorkerFailure);
      expect((failure as Error).message).toContain("this chunk worker fails on purpose");
      expect(pool.failed).toBe(true);
    } finally {
      await pool.close();
    }
  });

  test("a 64 MiB file on the workers: RSS growth well under the file size, at most 4 segment buffers besides the read buffer", async () => {
    const root = tempDir();
    const fd = openSync(join(root, "big.bin"), "w");
    try {
      for (let i = 0; i < 64; i++) writeSync(fd, randomBytes(MiB, 2000 + i));
    } finally {
      closeSync(fd);
    }
    const pool = new ChunkWorkerPool({ threads: 2 });
    try {
      Bun.gc(true);
      const before = process.memoryUsage().rss;
      let peak = before;
      let chunkBytes = 0;
      const result = await scanDirectory(root, {
        nowNs: LATE_NS,
        chunkThreads: pool,
        sink: {
          object() {},
          chunk(_id, bytes) {
            chunkBytes += bytes.length;
          },
        },
        onProgress: () => {
          peak = Math.max(peak, process.memoryUsage().rss);
        },
      });
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(result.bytesRead).toBe(64 * MiB);
      expect(chunkBytes).toBe(64 * MiB);
      // Two per worker; the segments this thread cuts go into the scan's read buffer.
      expect(pool.buffersAllocated).toBeLessThanOrEqual(4);
      expect(peak - before).toBeLessThan(48 * MiB);
    } finally {
      await pool.close();
    }
  }, 30_000);
});

describe("DSYNC_CHUNK_THREADS", () => {
  test("a whole number from 1 sets the threads; unset or empty means the machine's cores; anything else is refused", () => {
    expect(chunkThreadsFromEnvironment({ DSYNC_CHUNK_THREADS: "1" })).toBe(1);
    expect(chunkThreadsFromEnvironment({ DSYNC_CHUNK_THREADS: "3" })).toBe(3);
    expect(chunkThreadsFromEnvironment({})).toBeGreaterThanOrEqual(1);
    expect(chunkThreadsFromEnvironment({ DSYNC_CHUNK_THREADS: "" })).toBe(chunkThreadsFromEnvironment({}));
    for (const bad of ["0", "-1", "1.5", "two", "1e3", "999"]) {
      expect(() => chunkThreadsFromEnvironment({ DSYNC_CHUNK_THREADS: bad })).toThrow(/DSYNC_CHUNK_THREADS must be a whole number/);
    }
  });
});
