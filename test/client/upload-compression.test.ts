// The choice `dsync push --compress auto` makes per upload batch, driven by measurements this
// test injects (a clock it moves, a compressor that takes the time it is told to), never by the
// speed of the machine running it.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import zlib from "node:zlib";
import { blake3 } from "../../src/core/blake3.ts";
import { ObjectBatchWriter } from "../../src/client/batch-writer.ts";
import { splitBatch } from "../../src/client/batch-frames.ts";
import {
  AUTO_LEVELS,
  chooseLevel,
  compressionPays,
  EXPLORE_EVERY,
  EXPLORE_SPREAD,
  parseCompressSetting,
  PLAIN_MEASURE_BYTES_MIN,
  PROBE_LEVEL,
  UploadCompression,
  type CompressSetting,
  type LevelMeasurement,
} from "../../src/client/upload-compression.ts";

const MIB = 1024 * 1024;

/** 4 MiB of words: zstd shrinks it well. */
function compressibleBatch(): Uint8Array {
  const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
  const parts: string[] = [];
  let seed = 7;
  let length = 0;
  while (length < 4 * MIB) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const word = words[seed % words.length]! + (seed % 97 === 0 ? "\n" : " ");
    parts.push(word);
    length += word.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, 4 * MIB);
}

const incompressibleBatch = () => new Uint8Array(randomBytes(4 * MIB));

/** zstd's speed at each level as measured on the Bun binary and typescript (MB/s, one thread). */
const MEASURED_MBPS: Record<number, number> = { 1: 411, 3: 240, 5: 132, 7: 85, 9: 65 };

/**
 * A push's compression on a simulated clock: zstd "takes" `compressMBps` (one speed, or one per
 * level), and `upload` makes an upload of a batch take as long as a link of `linkMBps` needs for it.
 */
function simulated(setting: CompressSetting, compressMBps: number | Record<number, number>) {
  let nowMs = 0;
  const levels: number[] = [];
  const compression = new UploadCompression(setting, {
    nowMs: () => nowMs,
    compress: (bytes, level) => {
      levels.push(level);
      const speed = typeof compressMBps === "number" ? compressMBps : compressMBps[level]!;
      nowMs += (bytes.length / (speed * 1e6)) * 1000;
      return Bun.zstdCompressSync(bytes, { level });
    },
  });
  return {
    compression,
    levels,
    advance: (ms: number) => (nowMs += ms),
    /** One upload of `plainBytes` (sent as `wireBytes`) taking what a rate of `MBps` wire bytes needs, nothing else in flight. */
    upload(plainBytes: number, MBps: number, wireBytes = plainBytes) {
      const upload = compression.startUpload(plainBytes, wireBytes !== plainBytes, wireBytes);
      nowMs += (wireBytes / (MBps * 1e6)) * 1000;
      upload.succeeded();
    },
  };
}

describe("compressionPays (pure)", () => {
  test("a fast link and incompressible data: plain", () => {
    expect(compressionPays({ sampleRatio: 1.0, compressBytesPerSecond: 100e6, plainBytesPerSecond: 1e9 })).toBe(false);
  });
  test("a slow link and compressible data: zstd", () => {
    expect(compressionPays({ sampleRatio: 0.35, compressBytesPerSecond: 100e6, plainBytesPerSecond: 1e6 })).toBe(true);
  });
  test("a fast link and compressible data: plain (compressing takes longer than sending what it saves)", () => {
    expect(compressionPays({ sampleRatio: 0.35, compressBytesPerSecond: 100e6, plainBytesPerSecond: 200e6 })).toBe(false);
  });
  test("a slow link and incompressible data: plain", () => {
    expect(compressionPays({ sampleRatio: 0.99, compressBytesPerSecond: 100e6, plainBytesPerSecond: 1e6 })).toBe(false);
  });
  test("the break-even point: compress while the compressor's share of the thread outruns the link", () => {
    // zstd at 100 MB/s gets 70 MB/s of the thread; the link at ratio 0.5 takes twice its plain rate;
    // compressing must promise GAIN_MIN (1.2) times plain's rate.
    expect(compressionPays({ sampleRatio: 0.5, compressBytesPerSecond: 100e6, plainBytesPerSecond: 58e6 })).toBe(true);
    expect(compressionPays({ sampleRatio: 0.5, compressBytesPerSecond: 100e6, plainBytesPerSecond: 59e6 })).toBe(false);
    // A ratio that shrinks little: the link sets the limit, at 1/ratio of its plain rate.
    expect(compressionPays({ sampleRatio: 0.8, compressBytesPerSecond: 1e9, plainBytesPerSecond: 100e6 })).toBe(true);
    expect(compressionPays({ sampleRatio: 0.85, compressBytesPerSecond: 1e9, plainBytesPerSecond: 100e6 })).toBe(false);
  });

  test("a slow level on a slow link: the compressor's speed, not its time added to the wire's, is what counts", () => {
    // 20 MB/s of zstd (a loaded machine at level 9) against 10 MB/s of plain and 30 MB/s of compressed
    // intake: overlapped, 14 MB/s against 10; one after the other it would be 1/20 + 1/30 > 1/10.
    expect(compressionPays({ sampleRatio: 0.4, compressBytesPerSecond: 20e6, plainBytesPerSecond: 10e6, compressedBytesPerSecond: 30e6 })).toBe(true);
  });
  test("both rates measured: compressed uploads no faster than plain ones (the node sets the pace) means plain", () => {
    // A link of 60 MB/s would take 4 MiB at ratio 0.35 in a third of the time: compress.
    expect(compressionPays({ sampleRatio: 0.35, compressBytesPerSecond: 400e6, plainBytesPerSecond: 60e6, compressedBytesPerSecond: 171e6 })).toBe(true);
    // The node took both at 60 MB/s of object bytes: compressing gains nothing.
    expect(compressionPays({ sampleRatio: 0.35, compressBytesPerSecond: 400e6, plainBytesPerSecond: 60e6, compressedBytesPerSecond: 60e6 })).toBe(false);
  });
  test("only the compressed rate measured: the plain one is predicted as a link would make it", () => {
    expect(compressionPays({ sampleRatio: 0.35, compressBytesPerSecond: 100e6, plainBytesPerSecond: undefined, compressedBytesPerSecond: 3e6 })).toBe(true);
  });
  test("a link not measured yet and compressible data: zstd (the cheap level, chosen by the caller)", () => {
    expect(compressionPays({ sampleRatio: 0.35, compressBytesPerSecond: 100e6, plainBytesPerSecond: undefined })).toBe(true);
  });
});

describe("chooseLevel (pure): the level that shrinks most while the compressor keeps ahead of the link", () => {
  // Each level's ratio and speed as measured on a first push of the Bun binary and typescript.
  const measured: LevelMeasurement[] = [
    { level: 1, sampleRatio: 0.466, compressBytesPerSecond: 411e6 },
    { level: 3, sampleRatio: 0.417, compressBytesPerSecond: 240e6 },
    { level: 5, sampleRatio: 0.397, compressBytesPerSecond: 132e6 },
    { level: 7, sampleRatio: 0.385, compressBytesPerSecond: 85e6 },
    { level: 9, sampleRatio: 0.379, compressBytesPerSecond: 65e6 },
  ];
  const table: [string, number | undefined, number][] = [
    ["no link measured yet: the fastest", undefined, 1],
    ["10 Mbit/s: every level keeps ahead, the smallest output", 1.25e6, 9],
    ["100 Mbit/s: level 9 keeps ahead (zstd busy 72% of the time its share allows)", 12.5e6, 9],
    ["160 Mbit/s: level 9 would need more than its share of the time the wire takes", 20e6, 7],
    ["320 Mbit/s", 40e6, 3],
    ["1 Gbit/s: level 1 keeps ahead", 125e6, 1],
    ["1.6 Gbit/s: none keeps ahead, the least compress-then-send time", 200e6, 1],
  ];
  for (const [what, wire, level] of table) test(what, () => expect(chooseLevel(measured, wire)).toBe(level));

  test("a level that shrinks no more than a faster one is not taken", () => {
    const flat = measured.map((m) => ({ ...m, sampleRatio: 0.5 }));
    expect(chooseLevel(flat, 1e6)).toBe(1);
  });

  test("a loaded machine (every level at a third of its speed) chooses lower on the same link", () => {
    const slow = measured.map((m) => ({ ...m, compressBytesPerSecond: m.compressBytesPerSecond / 3 }));
    expect(chooseLevel(slow, 12.5e6)).toBe(3);
  });

  test("only the levels given are chosen from", () => {
    expect(chooseLevel(measured.slice(0, 2), 1e6)).toBe(3);
    expect(() => chooseLevel([], 1e6)).toThrow(RangeError);
  });
});

describe("UploadCompression auto, on injected measurements", () => {
  test("a fast link (1 GB/s) and compressible data: plain", () => {
    const sim = simulated({ kind: "auto" }, 80);
    sim.upload(4 * MIB, 1000);
    const encoded = sim.compression.encode(compressibleBatch());
    expect(encoded.encoding).toBeNull();
    expect(sim.compression.batches).toEqual({ compressed: 0, plain: 1, framed: 0 });
  });

  test("a fast link and incompressible data: plain", () => {
    const sim = simulated({ kind: "auto" }, 80);
    sim.upload(4 * MIB, 1000);
    expect(sim.compression.encode(incompressibleBatch()).encoding).toBeNull();
  });

  test("a slow link (2 MB/s) and compressible data: zstd at a level above the probe's, and the body inflates to the batch", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    sim.upload(4 * MIB, 2);
    const batch = compressibleBatch();
    const encoded = sim.compression.encode(batch);
    expect(encoded.encoding).toBe("zstd");
    // The levels were sampled fastest first, up to one that cannot keep ahead of the link (this
    // text shrinks so much that 2 MB/s of it is a lot of plain bytes), and the batch went at one of them.
    const sampled = sim.levels.slice(0, -1);
    expect(sampled).toEqual(AUTO_LEVELS.slice(0, sampled.length));
    expect(sampled.length).toBeGreaterThanOrEqual(3);
    expect(sampled).toContain(sim.levels.at(-1)!);
    expect(sim.levels.at(-1)).toBeGreaterThan(PROBE_LEVEL);
    expect(sim.compression.batchesByLevel.get(sim.levels.at(-1)!)).toBe(1);
    expect(encoded.body.length).toBeLessThan(batch.length / 2);
    expect(Buffer.from(zlib.zstdDecompressSync(encoded.body)).equals(Buffer.from(batch))).toBe(true);
  });

  test("a small batch is its own sample: compressed once per level sampled, and the body inflates to it", () => {
    const sim = simulated({ kind: "auto" }, 80);
    sim.upload(4 * MIB, 2);
    const batch = compressibleBatch().subarray(0, 100 * 1024);
    const encoded = sim.compression.encode(batch);
    expect(encoded.encoding).toBe("zstd");
    expect(sim.levels).toEqual([...AUTO_LEVELS]);
    expect(Buffer.from(zlib.zstdDecompressSync(encoded.body)).equals(Buffer.from(batch))).toBe(true);
  });

  test("a slow link and incompressible data: plain", () => {
    const sim = simulated({ kind: "auto" }, 80);
    sim.upload(4 * MIB, 2);
    expect(sim.compression.encode(incompressibleBatch()).encoding).toBeNull();
  });

  test("the same data goes plain or compressed as the link's measured rate changes", () => {
    const sim = simulated({ kind: "auto" }, 80);
    const batch = compressibleBatch();
    sim.upload(4 * MIB, 1000);
    expect(sim.compression.encode(batch).encoding).toBeNull();
    // The link slows down (recent uploads weigh most).
    for (let i = 0; i < 6; i++) sim.upload(4 * MIB, 2);
    expect(sim.compression.encode(batch).encoding).toBe("zstd");
    for (let i = 0; i < 12; i++) sim.upload(4 * MIB, 1000);
    expect(sim.compression.encode(batch).encoding).toBeNull();
  });

  test("before any upload is measured, a compressible batch goes at the cheap level", () => {
    const sim = simulated({ kind: "auto" }, 80);
    expect(sim.compression.linkBytesPerSecond()).toBeUndefined();
    expect(sim.compression.encode(compressibleBatch()).encoding).toBe("zstd");
    expect(new Set(sim.levels)).toEqual(new Set([PROBE_LEVEL]));
  });

  test("an upload still in flight bounds the link: 4 MiB unanswered after 10 s means a slow link", () => {
    const sim = simulated({ kind: "auto" }, 80);
    sim.compression.startUpload(4 * MIB, false);
    sim.advance(10_000);
    expect(sim.compression.linkBytesPerSecond()!).toBeLessThan(0.5e6);
    expect(sim.compression.encode(compressibleBatch()).encoding).toBe("zstd");
    expect(sim.levels.at(-1)).toBeGreaterThan(PROBE_LEVEL);
  });

  test("uploads in flight together share the link: four 4 MiB uploads in 16 ms measure 1 GB/s, not a quarter of it", () => {
    const sim = simulated({ kind: "auto" }, 80);
    const uploads = [0, 1, 2, 3].map(() => sim.compression.startUpload(4 * MIB, false));
    sim.advance((4 * 4 * MIB) / 1e6);
    for (const upload of uploads) upload.succeeded();
    const rate = sim.compression.linkBytesPerSecond()!;
    expect(rate).toBeGreaterThan(0.95e9);
    expect(rate).toBeLessThan(1.05e9);
  });

  test("a failed upload measures nothing", () => {
    const sim = simulated({ kind: "auto" }, 80);
    const upload = sim.compression.startUpload(4 * MIB, false);
    sim.advance(60_000);
    upload.failed();
    expect(sim.compression.linkBytesPerSecond()).toBeUndefined();
  });

  test("once the link outruns the compressor itself, no sample is compressed at all", () => {
    const sim = simulated({ kind: "auto" }, 80);
    sim.upload(4 * MIB, 2);
    sim.compression.encode(compressibleBatch()); // measures the compressor at the upload level
    for (let i = 0; i < 12; i++) sim.upload(4 * MIB, 1000);
    const compressions = sim.levels.length;
    expect(sim.compression.encode(compressibleBatch()).encoding).toBeNull();
    expect(sim.levels.length).toBe(compressions);
  });
});

describe("UploadCompression auto, when the node and not the link sets the pace", () => {
  test("compressed batches the node takes no faster than plain ones: back to plain", () => {
    const sim = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    // Plain at 60 MB/s: a link that slow makes compressing at 400 MB/s worth it.
    sim.upload(4 * MIB, 60);
    const first = sim.compression.encode(batch);
    expect(first.encoding).toBe("zstd");
    // But the compressed upload took as long as a plain one (the node's work, not the wire).
    sim.upload(4 * MIB, (60 * first.body.length) / (4 * MIB), first.body.length);
    expect(sim.compression.encode(batch).encoding).toBeNull();
  });

  test("compressed batches that do come faster (a real link): kept compressed", () => {
    const sim = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    sim.upload(4 * MIB, 60);
    const first = sim.compression.encode(batch);
    sim.upload(4 * MIB, 60, first.body.length);
    expect(sim.compression.encode(batch).encoding).toBe("zstd");
  });

  test("on a link, compressed batches that shrank little do not hold back one that shrinks much", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    // 100 Mbit/s for plain bytes and for compressed ones (the wire sets the pace), the compressed
    // batches so far at ratio 0.9: their intake, 13.9 MB/s of object bytes, is barely above plain's.
    sim.upload(4 * MIB, 12.5);
    for (let i = 0; i < 3; i++) sim.upload(4 * MIB, 12.5, Math.round(0.9 * 4 * MIB));
    expect(sim.compression.linkBytesPerSecond("compressed")! / 12.5e6).toBeLessThan(1.2);
    // This batch shrinks far more: at the wire's rate it goes many times faster compressed.
    expect(sim.compression.encode(compressibleBatch()).encoding).toBe("zstd");
  });

  test("only compressed uploads measured: the next batch goes plain to measure the plain rate", () => {
    const sim = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    const first = sim.compression.encode(batch);
    expect(first.encoding).toBe("zstd");
    sim.upload(4 * MIB, 2, first.body.length);
    expect(sim.compression.encode(batch).encoding).toBeNull();
    sim.upload(4 * MIB, 2);
    expect(sim.compression.encode(batch).encoding).toBe("zstd");
  });

  test("on a slow link the plain rate is measured on a part of a batch, the rest compressed beside it; on a fast link on a whole batch", () => {
    const slow = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    expect(slow.compression.plainMeasurePart(batch.length)).toBeUndefined(); // nothing measured: nothing to measure against
    const first = slow.compression.encode(batch);
    slow.upload(4 * MIB, 2, first.body.length); // 2 MB/s of wire bytes
    // A part that takes 100 ms at 2 MB/s is 200 KB: the least part, 256 KiB, is taken.
    const part = slow.compression.plainMeasurePart(batch.length);
    expect(part).toBe(PLAIN_MEASURE_BYTES_MIN);
    // The part goes plain (the measurement) and, once it is on its way, the rest compressed.
    const head = slow.compression.encode(batch.subarray(0, part!));
    expect(head.encoding).toBeNull();
    slow.compression.startUpload(part!, false);
    expect(slow.compression.plainMeasurePart(batch.length)).toBeUndefined();
    expect(slow.compression.encode(batch.subarray(part!)).encoding).toBe("zstd");

    // 1 GB/s of wire bytes: 100 ms of it is more than the batch, so the batch goes plain whole.
    const fast = simulated({ kind: "auto" }, 400);
    const compressed = fast.compression.encode(batch);
    fast.upload(4 * MIB, 1000, compressed.body.length);
    expect(fast.compression.plainMeasurePart(batch.length)).toBeUndefined();
    // never and LEVEL measure nothing.
    for (const setting of [{ kind: "never" }, { kind: "level", level: 3 }] as const) {
      const other = simulated(setting, 400);
      other.upload(4 * MIB, 2, MIB);
      expect(other.compression.plainMeasurePart(batch.length)).toBeUndefined();
    }
  });

  test("splitBatch cuts a batch between items into two batches holding every item once, in order", () => {
    const writer = new ObjectBatchWriter(new Uint8Array(2 * MIB));
    const objects: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      const bytes = new Uint8Array(randomBytes(10_000 + i * 1000));
      objects.push(bytes);
      writer.append(blake3(bytes), bytes);
    }
    const batch = writer.finish().slice();
    const items = (body: Uint8Array): Uint8Array[] => {
      const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
      expect(body[0]).toBe(0xdd);
      const out: Uint8Array[] = [];
      let at = 5;
      for (let i = 0; i < view.getUint32(1); i++) {
        expect(body[at]).toBe(0x92);
        const length = view.getUint32(at + 36);
        out.push(body.subarray(at + 40, at + 40 + length));
        at += 40 + length;
      }
      expect(at).toBe(body.length);
      return out;
    };
    const split = splitBatch(batch, 50_000)!;
    const head = items(split.head);
    const tail = items(split.tail);
    expect(head.length).toBe(4); // 10 000 + 11 000 + 12 000 + 13 000 bytes and their framing start within 50 000
    expect(split.head.length).toBeLessThanOrEqual(50_000);
    expect([...head, ...tail].map((bytes) => Buffer.from(bytes).toString("hex"))).toEqual(objects.map((bytes) => Buffer.from(bytes).toString("hex")));
    // A first item past the bound still goes whole in the head; one item, or all within the bound: no split.
    expect(items(splitBatch(batch, 10)!.head).length).toBe(1);
    expect(splitBatch(batch, batch.length)).toBeNull();
  });

  test("a plain batch on its way to measure the plain rate: the next one is not sent plain as well", () => {
    const sim = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    const first = sim.compression.encode(batch);
    sim.upload(4 * MIB, 2, first.body.length);
    expect(sim.compression.encode(batch).encoding).toBeNull();
    sim.compression.startUpload(4 * MIB, false);
    expect(sim.compression.encode(batch).encoding).toBe("zstd");
  });

  test("a plain upload only just started bounds nothing yet: the compressed uploads' wire rate stands for the link", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    const batch = compressibleBatch();
    const first = sim.compression.encode(batch);
    sim.upload(4 * MIB, 2, first.body.length);
    expect(sim.compression.encode(batch).encoding).toBeNull();
    // The plain batch has been on its way 5 ms: "at most 800 MB/s" says nothing of a 2 MB/s link.
    sim.compression.startUpload(4 * MIB, false);
    sim.advance(5);
    expect(sim.compression.linkBytesPerSecond("plain")!).toBeGreaterThan(500e6);
    expect(sim.compression.encode(batch).encoding).toBe("zstd");
  });

  test("batches encoded while the pipeline waits for them (a client slower than its link) go one level faster each time", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    const batch = compressibleBatch();
    sim.upload(4 * MIB, 0.5);
    sim.upload(4 * MIB, 0.5, MIB);
    const chosen = () => {
      const before = sim.levels.length;
      expect(sim.compression.encode(batch).encoding).toBe("zstd");
      return Math.max(...sim.levels.slice(before));
    };
    // Three of the four uploads in flight as the batch is encoded: the wire waits for nothing, the slowest level.
    const inFlight = [0, 1, 2].map(() => sim.compression.startUpload(4 * MIB, true, MIB));
    expect(chosen()).toBe(9);
    sim.advance(8000);
    for (const upload of inFlight) upload.succeeded();
    // Then none in flight as each batch is encoded: the client is late, a step faster each time.
    expect([chosen(), chosen(), chosen(), chosen(), chosen()]).toEqual([7, 5, 3, 1, 1]);
    // Full again: back up a step at a time.
    const again = [0, 1, 2].map(() => sim.compression.startUpload(4 * MIB, true, MIB));
    expect([chosen(), chosen()]).toEqual([3, 5]);
    for (const upload of again) upload.succeeded();
  });

  test(`while compressing gains little, one batch in ${EXPLORE_EVERY} goes plain`, () => {
    // 400 MB/s of zstd (280 of them its share of the thread) against a link of 200 MB/s: 1.4 times faster.
    const sim = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    sim.upload(4 * MIB, 200);
    const encodings: (string | null)[] = [];
    for (let i = 0; i < 2 * EXPLORE_EVERY; i++) {
      const encoded = sim.compression.encode(batch);
      encodings.push(encoded.encoding);
      sim.upload(4 * MIB, 200, encoded.body.length);
    }
    expect(encodings.filter((e) => e === null).length).toBe(2);
    expect(encodings[EXPLORE_EVERY - 1]).toBeNull();
  });

  test(`while compressing gains much (a slow link), one batch in ${EXPLORE_EVERY * EXPLORE_SPREAD} goes plain`, () => {
    const sim = simulated({ kind: "auto" }, 400);
    const batch = compressibleBatch();
    sim.upload(4 * MIB, 2);
    const encodings: (string | null)[] = [];
    for (let i = 0; i < 2 * EXPLORE_EVERY * EXPLORE_SPREAD; i++) {
      const encoded = sim.compression.encode(batch);
      encodings.push(encoded.encoding);
      sim.upload(4 * MIB, 2, encoded.body.length);
    }
    expect(encodings.filter((e) => e === null).length).toBe(2);
    expect(encodings[EXPLORE_EVERY * EXPLORE_SPREAD - 1]).toBeNull();
  });
});

describe("UploadCompression with a node that takes objects as frames (upload item kind 1)", () => {
  /** A batch as the batch writer builds it: 16 objects of 64 KiB of the compressible text. */
  function objectBatch(): { batch: Uint8Array; objects: Uint8Array[] } {
    const text = compressibleBatch();
    const writer = new ObjectBatchWriter(new Uint8Array(5 * MIB));
    const objects: Uint8Array[] = [];
    for (let i = 0; i < 16; i++) {
      const bytes = text.subarray(i * 65536, (i + 1) * 65536);
      objects.push(bytes);
      writer.append(blake3(bytes), bytes);
    }
    return { batch: writer.finish().slice(), objects };
  }

  /** The items of a framed body: each [id, 1, frame] inflated, or [id, bytes] as it is. */
  function readFramed(body: Uint8Array): { kind: number; bytes: Uint8Array }[] {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    expect(body[0]).toBe(0xdd);
    const items: { kind: number; bytes: Uint8Array }[] = [];
    let at = 5;
    for (let i = 0; i < view.getUint32(1); i++) {
      const framed = body[at] === 0x93;
      const lengthAt = at + 35 + (framed ? 1 : 0);
      if (framed) expect(body[at + 35]).toBe(1);
      expect(body[lengthAt]).toBe(0xc6);
      const length = view.getUint32(lengthAt + 1);
      const payload = body.subarray(lengthAt + 5, lengthAt + 5 + length);
      items.push({ kind: framed ? 1 : 0, bytes: framed ? new Uint8Array(zlib.zstdDecompressSync(payload)) : payload });
      at = lengthAt + 5 + length;
    }
    expect(at).toBe(body.length);
    return items;
  }

  test("nothing measured yet: the body compressed whole (the saving a link would want)", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    sim.compression.framesAccepted = true;
    const encoded = sim.compression.encode(objectBatch().batch);
    expect(encoded.encoding).toBe("zstd");
    expect(sim.compression.batches.framed).toBe(0);
  });

  test("the node setting the pace (compressed uploads' wire rate far below plain's): the objects go as frames, each inflating to its object", () => {
    const sim = simulated({ kind: "level", level: 3 }, MEASURED_MBPS);
    sim.compression.framesAccepted = true;
    const { batch, objects } = objectBatch();
    // The node took 100 MB/s of object bytes either way: compressed uploads' wire rate a quarter of plain's.
    sim.upload(4 * MIB, 100);
    sim.upload(4 * MIB, 25, MIB);
    const encoded = sim.compression.encode(batch);
    expect(encoded.encoding).toBeNull();
    expect(encoded.compressed).toBe(true);
    expect(encoded.body.length).toBeLessThan(batch.length / 2);
    const items = readFramed(encoded.body);
    expect(items.map((item) => item.kind)).toEqual(objects.map(() => 1));
    items.forEach((item, i) => expect(Buffer.from(item.bytes).equals(Buffer.from(objects[i]!))).toBe(true));
    expect(sim.compression.batches).toEqual({ compressed: 1, plain: 0, framed: 1 });
    // Measured in between (half plain's wire rate): as it was, frames.
    sim.upload(4 * MIB, 50, MIB);
    sim.upload(4 * MIB, 50, MIB);
    expect(sim.compression.encode(batch).encoding).toBeNull();
  });

  test("the wire setting the pace (compressed uploads put bytes on it as fast as plain ones): the body compressed whole", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    sim.compression.framesAccepted = true;
    const { batch } = objectBatch();
    sim.upload(4 * MIB, 2);
    sim.upload(4 * MIB, 2, MIB);
    const encoded = sim.compression.encode(batch);
    expect(encoded.encoding).toBe("zstd");
    expect(Buffer.from(zlib.zstdDecompressSync(encoded.body)).equals(Buffer.from(batch))).toBe(true);
    expect(sim.compression.batches.framed).toBe(0);
  });

  test("a round trip per request on a slow link does not read as the node setting the pace", () => {
    const sim = simulated({ kind: "auto" }, MEASURED_MBPS);
    sim.compression.framesAccepted = true;
    const { batch } = objectBatch();
    // 100 Mbit/s and 40 ms per request: 4 MiB plain in 0.375 s, its tenth compressed in 0.074 s.
    // Per wire byte the compressed upload went at half plain's rate; per object byte five times faster.
    const plainSeconds = (4 * MIB) / 12.5e6 + 0.04;
    const compressedSeconds = (0.4 * MIB) / 12.5e6 + 0.04;
    sim.upload(4 * MIB, (4 * MIB) / plainSeconds / 1e6);
    sim.upload(4 * MIB, (0.4 * MIB) / compressedSeconds / 1e6, Math.round(0.4 * MIB));
    const encoded = sim.compression.encode(batch);
    expect(encoded.encoding).toBe("zstd");
    expect(sim.compression.batches.framed).toBe(0);
  });

  test("a node that does not list kind 1 never gets frames", () => {
    const sim = simulated({ kind: "level", level: 3 }, MEASURED_MBPS);
    const encoded = sim.compression.encode(objectBatch().batch);
    expect(encoded.encoding).toBe("zstd");
    expect(sim.compression.batches.framed).toBe(0);
  });
});

describe("UploadCompression never and LEVEL", () => {
  test("never: plain on a slow link with compressible data", () => {
    const sim = simulated({ kind: "never" }, 80);
    sim.upload(4 * MIB, 0.1);
    expect(sim.compression.encode(compressibleBatch()).encoding).toBeNull();
    expect(sim.levels).toEqual([]);
  });

  test("a level: compressible data at that level on a fast link, random data plain", () => {
    const sim = simulated({ kind: "level", level: 3 }, 80);
    sim.upload(4 * MIB, 1000);
    expect(sim.compression.encode(compressibleBatch()).encoding).toBe("zstd");
    expect(sim.levels.at(-1)).toBe(3);
    expect(sim.compression.encode(incompressibleBatch()).encoding).toBeNull();
  });
});

describe("parseCompressSetting", () => {
  test("auto (and no flag), never, and levels 1-19", () => {
    expect(parseCompressSetting(undefined)).toEqual({ kind: "auto" });
    expect(parseCompressSetting("auto")).toEqual({ kind: "auto" });
    expect(parseCompressSetting("never")).toEqual({ kind: "never" });
    expect(parseCompressSetting("1")).toEqual({ kind: "level", level: 1 });
    expect(parseCompressSetting("19")).toEqual({ kind: "level", level: 19 });
  });
  for (const bad of ["0", "20", "fast", "-3", "5.5", ""]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      expect(() => parseCompressSetting(bad)).toThrow(/--compress takes auto, never or a zstd level from 1 to 19/);
    });
  }
});
