// Whether an upload batch goes compressed: `dsync push --compress auto|never|LEVEL`.
//
// zstd at the upload level costs the client 1-1.5 s of CPU per 100 MiB of text on a 2-core
// machine (docs/benchmarks.md); on loopback or a fast LAN the node takes plain bytes faster
// than that, so compressing only slows the push down, while on a slow link every byte saved
// is time saved. `auto` (the default) decides batch by batch from what it measured on this
// push: the ratio of a sample of the batch, the compressor's speed at that level, and the rates
// at which the node took plain and compressed uploads so far, each in object bytes (as before
// compression) per second of request, weighted by how many requests were in flight with it
// (they share the link). Batches are compressed on the main thread while earlier ones are on
// the wire, so compressed object bytes go at the slower of the compressor (the share of the
// thread left to it by the scan and the requests) and the node's compressed intake, and a batch
// is compressed when that is faster than plain:
//
//     min(compressRate × LINK_BUSY_CPU_SHARE, compressedRate)  ≥  GAIN_MIN × plainRate
//
// With one rate measured the other is predicted as a link would make it (a compressed batch
// ratio times faster). Measuring both matters where the node's own work, not the link, sets the
// pace (loopback, a busy node): there compressed batches come no faster than plain ones, and the
// client's CPU is spent for nothing. So once a compressed upload is measured and no plain one,
// the next batch goes plain, and while compressing one batch in EXPLORE_EVERY does, to keep the
// plain rate known (one in EXPLORE_EVERY × EXPLORE_SPREAD while compressing is far ahead: on a
// slow link each plain batch costs the bytes it does not save). Until a first upload finished or
// has been in flight long enough to bound the rate, batches the sample says shrink go at the
// fastest level (1): cheap on a fast link, and most of the saving on a slow one.
//
// The level: batches are compressed while others are on the wire, so on a slow link the push
// takes about compressed bytes / link rate as long as the compressor keeps ahead of the link.
// `chooseLevel` takes the level that shrinks the sample most among those whose measured speed
// keeps ahead of the link's measured wire rate with room to spare (LINK_BUSY_CPU_SHARE of the
// time the wire takes); where none does (a fast link), the one with the least compress-then-send
// time. The wire rate is the lower of the compressed uploads' (each weighted by the uploads it
// shared the link with) and all uploads' bytes over the time any was in flight, so the level errs
// towards compressing more. A first push of the Bun binary and typescript on a 100 Mbit/s link:
// mostly level 9 (0.379 of the bytes in 4 MiB batches; level 7 0.385, 5 0.397, 1 0.466).
//
// The node takes either (Content-Encoding: zstd or none), inflating within its body bound.
import { LIMITS } from "../core/limits.ts";
import { reframeBatch } from "./batch-frames.ts";
import { UsageError } from "./sync-target.ts";

/** `--compress`: decide per batch, never compress, or always try this zstd level. */
export type CompressSetting = { kind: "auto" } | { kind: "never" } | { kind: "level"; level: number };

export const COMPRESS_AUTO: CompressSetting = { kind: "auto" };
export const COMPRESS_LEVEL_MIN = 1;
export const COMPRESS_LEVEL_MAX = 19;
/** The levels `auto` chooses among, fastest first (above 9 zstd slows down far more than it gains). */
export const AUTO_LEVELS = [1, 3, 5, 7, 9] as const;
/**
 * A level keeps the link busy when compressing a batch takes at most this share of the time its
 * compressed bytes take on the wire: the rest of the thread is the scan's and the requests'.
 */
export const LINK_BUSY_CPU_SHARE = 0.7;
/** The level `auto` uses while nothing bounds the link's rate yet. */
export const PROBE_LEVEL = 1;
/** Compression is kept only when it saves at least this fraction. */
export const SAVING_MIN = 0.05;
/**
 * Compressing must promise at least this many times plain's rate: where the node sets the pace
 * the two rates are equal give or take the noise of a loaded machine, which alone sent 6 of 31
 * batches of a loopback push compressed (at load 7) when any gain above 1 counted.
 */
export const GAIN_MIN = 1.2;
/** Compressed uploads whose wire rate is at least this share of plain's are taken as limited by the wire. */
const WIRE_BOUND_SHARE = 0.8;
/**
 * What sets the pace, by the node's intake of object bytes in compressed uploads against plain
 * ones: the wire when compressed ones come at least this many times faster (a link takes them
 * about 1/ratio times faster), the node when at most NODE_BOUND_GAIN (its work is the same for
 * the same objects). Object rates, not wire rates: a fixed round trip per request makes small
 * compressed bodies look slower per wire byte than large plain ones (20 ms each way sent three
 * batches of case 5 as frames, read as the node setting the pace, on a 100 Mbit/s link).
 */
const WIRE_BOUND_GAIN = 1.5;
const NODE_BOUND_GAIN = 1.15;
/** Batches below this are sent as they are (zstd's frame eats the gain). */
const COMPRESS_BYTES_MIN = 512;
/** A plain measurement sent as part of a batch takes at least this long at the link's measured wire rate (plainMeasurePart). */
export const PLAIN_MEASURE_MS = 100;
/** ... and is at least this large. */
export const PLAIN_MEASURE_BYTES_MIN = 256 * 1024;
/** The sample: this many slices spread over the batch, compressed together. */
const SAMPLE_SLICES = 4;
const SAMPLE_SLICE_BYTES = 16 * 1024;
/** How much each older measurement still counts when a new one comes (recent ones weigh most). */
const DECAY = 0.8;
/** While compressing, every this many batches one goes plain, so the plain rate stays measured. */
export const EXPLORE_EVERY = 16;
/** While compressing takes at most 1 / CLEAR_GAIN of plain's time per byte, exploring is this many times rarer. */
export const EXPLORE_SPREAD = 4;
const CLEAR_GAIN = 1.5;

export function parseCompressSetting(text: string | undefined): CompressSetting {
  if (text === undefined || text === "auto") return COMPRESS_AUTO;
  if (text === "never") return { kind: "never" };
  if (/^\d+$/.test(text)) {
    const level = Number(text);
    if (level >= COMPRESS_LEVEL_MIN && level <= COMPRESS_LEVEL_MAX) return { kind: "level", level };
  }
  throw new UsageError(`--compress takes auto, never or a zstd level from ${COMPRESS_LEVEL_MIN} to ${COMPRESS_LEVEL_MAX}, got ${JSON.stringify(text)}`);
}

/** What `auto` decides a batch by. */
export interface CompressionMeasurements {
  /** Compressed over plain length of the batch's sample at the level considered. */
  sampleRatio: number;
  /** Plain bytes per second the compressor went through at that level on this push. */
  compressBytesPerSecond: number;
  /** Object bytes per second the node took plain uploads at; undefined while nothing bounds it. */
  plainBytesPerSecond: number | undefined;
  /** Object bytes (before compression) per second it took compressed uploads at; undefined while unmeasured. */
  compressedBytesPerSecond?: number | undefined;
}

/** Pure: whether object bytes go faster compressed (compressing overlapped with sending) than plain, by GAIN_MIN at least. */
export function compressionPays(m: CompressionMeasurements): boolean {
  if (!(m.sampleRatio <= 1 - SAVING_MIN)) return false;
  return overlappedGain(m) >= GAIN_MIN;
}

/**
 * Why a batch went plain: the setting (never), too small to gain, the sample or the output did not
 * shrink, measuring the plain rate (auto's exploration), or plain measured faster.
 */
export type PlainReason = "setting" | "small" | "incompressible" | "measuring" | "faster plain";

/** One level as the sample saw it. */
export interface LevelMeasurement {
  level: number;
  /** Compressed over plain length of the batch's sample at this level. */
  sampleRatio: number;
  /** Plain bytes per second the compressor went through at this level on this push. */
  compressBytesPerSecond: number;
}

/**
 * Pure: the level to compress at, from each level's sample ratio and speed (fastest level first)
 * and the link's wire rate (undefined: not measured yet, the first level).
 */
export function chooseLevel(levels: readonly LevelMeasurement[], wireBytesPerSecond: number | undefined): number {
  if (levels.length === 0) throw new RangeError("chooseLevel needs at least one level");
  if (wireBytesPerSecond === undefined) return levels[0]!.level;
  let best: LevelMeasurement | undefined;
  for (const m of levels) {
    // Plain bytes per second the link takes at this ratio; the compressor must outrun it.
    const linkPlainBytesPerSecond = wireBytesPerSecond / Math.max(m.sampleRatio, 1e-3);
    if (m.compressBytesPerSecond * LINK_BUSY_CPU_SHARE < linkPlainBytesPerSecond) continue;
    if (!best || m.sampleRatio < best.sampleRatio) best = m;
  }
  if (best) return best.level;
  // None keeps ahead: the least time compressing and sending one after the other.
  const serialSecondsPerByte = (m: LevelMeasurement) => 1 / m.compressBytesPerSecond + m.sampleRatio / wireBytesPerSecond;
  return levels.reduce((a, b) => (serialSecondsPerByte(b) < serialSecondsPerByte(a) ? b : a)).level;
}

/**
 * How many times faster object bytes go compressed than plain, with compressing overlapped with
 * sending (as the pipeline does): the slower of the compressor (its share of the thread) and the
 * node's compressed intake, against the plain intake.
 */
function overlappedGain(m: CompressionMeasurements): number {
  // What a link would make of the rate not measured: wire bytes cost the same either way.
  const plain = m.plainBytesPerSecond ?? (m.compressedBytesPerSecond === undefined ? undefined : m.compressedBytesPerSecond * m.sampleRatio);
  if (plain === undefined) return Number.POSITIVE_INFINITY;
  const compressed = m.compressedBytesPerSecond ?? plain / m.sampleRatio;
  return Math.min(m.compressBytesPerSecond * LINK_BUSY_CPU_SHARE, compressed) / plain;
}

export interface EncodedBatch {
  body: Uint8Array;
  /** The body's Content-Encoding: zstd when compressed whole. */
  encoding: "zstd" | null;
  /** Whether the objects were compressed, whole or as frames of their own (upload item kind 1). */
  compressed: boolean;
}

/** Objects below this go as they are in a framed batch (zstd's frame eats the gain). */
const FRAME_BYTES_MIN = 128;

export interface UploadCompressionOptions {
  /** Milliseconds, monotonic. Default performance.now. */
  nowMs?: () => number;
  /**
   * zstd at a level. Default Bun.zstdCompressSync. (Bun.zstdCompress, on a worker thread, was
   * tried for whole batches: no faster on 2 shared cores, and a little more CPU.)
   */
  compress?: (bytes: Uint8Array, level: number) => Uint8Array;
  /** The most uploads in flight at once (the pipeline's bound). Default LIMITS.transferConcurrency. */
  uploadsInFlightMax?: number;
}

/** A decaying rate: bytes over milliseconds, older measurements counting less and less. */
class DecayingRate {
  private bytes = 0;
  private ms = 0;
  private samples = 0;

  add(bytes: number, ms: number): void {
    this.bytes = this.bytes * DECAY + bytes;
    this.ms = this.ms * DECAY + ms;
    this.samples++;
  }

  /** Bytes per second; Infinity when all of it took no measurable time; undefined before any. */
  perSecond(): number | undefined {
    if (this.samples === 0) return undefined;
    return this.ms <= 0 ? Number.POSITIVE_INFINITY : (this.bytes / this.ms) * 1000;
  }
}

/**
 * The link's rate: a moving geometric mean of each upload's rate, so a change of speed either
 * way shows within a few uploads (a mean of bytes over time would let one slow minute outweigh
 * many fast uploads, and a mean of rates the other way round).
 */
class LinkRate {
  private logRate: number | undefined;

  add(bytesPerSecond: number): void {
    if (!(bytesPerSecond > 0 && Number.isFinite(bytesPerSecond))) return;
    const log = Math.log(bytesPerSecond);
    this.logRate = this.logRate === undefined ? log : this.logRate * DECAY + log * (1 - DECAY);
  }

  perSecond(): number | undefined {
    return this.logRate === undefined ? undefined : Math.exp(this.logRate);
  }
}

interface Upload {
  startMs: number;
  plainBytes: number;
  /** Bytes of the body sent (the compressed length when compressed). */
  wireBytes: number;
  compressed: boolean;
  /** The in-flight area (requests × ms) when it started. */
  areaAtStartMs: number;
}

/**
 * One push's compression of its upload batches (shared by the requests in flight): chooses per
 * batch, and measures the link from the uploads it is told about.
 */
export class UploadCompression {
  private readonly nowMs: () => number;
  private readonly compressWith: (bytes: Uint8Array, level: number) => Uint8Array;
  private readonly compressRates = new Map<number, DecayingRate>();
  /** The node's intake of plain and of compressed uploads, in object bytes per second, and of compressed ones in wire bytes. */
  private readonly links = { plain: new LinkRate(), compressed: new LinkRate(), compressedWire: new LinkRate() };
  /** How many times less time per byte the last batch compressed took than plain would (auto; 0 when plain). */
  private lastGain = 0;
  /** Compressed batches sent since the last plain one (auto's exploration). */
  private compressedInARow = 0;
  private readonly uploads = new Set<Upload>();
  /** ∫ (uploads in flight) dt, in request-milliseconds, up to `areaUpToMs`. */
  private areaMs = 0;
  private areaUpToMs = 0;
  /** Milliseconds with at least one upload in flight, and the wire bytes of those that came back (up to the last one back). */
  private busyMs = 0;
  private readonly wireDone = { bytes: 0, busyMs: 0 };
  /** Batches sent each way (for the push's report). */
  readonly batches = { compressed: 0, plain: 0, framed: 0 };
  /**
   * Whether the node takes objects as zstd frames of their own (upload item kind 1, keeping them
   * as it gets them): set by the caller from the node's health before the first batch.
   */
  framesAccepted = false;
  private pace: "wire" | "node" | undefined;
  /** Batches compressed at each level, and batches sent plain by why (for the push's report). */
  readonly batchesByLevel = new Map<number, number>();
  readonly plainBecause = new Map<PlainReason, number>();
  private plainReason: PlainReason = "setting";
  private readonly uploadsInFlightMax: number;
  /**
   * The slowest of AUTO_LEVELS auto may take (an index). When a batch is encoded with fewer
   * uploads in flight than the pipeline holds (after it was once full), the wire is waiting for
   * the client, so the next batch may go no slower than one level faster; when the pipeline is
   * full the cap rises one level. This keeps a loaded machine from choosing levels its measured
   * speeds said it could afford when the link's rate it measured fell because the client was late.
   */
  private levelCap = AUTO_LEVELS.length - 1;
  private pipelineWasFull = false;
  /** The batch being encoded, compressed whole as its own sample at these levels (a small batch). */
  private readonly wholeBatchSamples = new Map<number, Uint8Array>();

  constructor(
    readonly setting: CompressSetting = COMPRESS_AUTO,
    options: UploadCompressionOptions = {},
  ) {
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.compressWith = options.compress ?? ((bytes, level) => Bun.zstdCompressSync(bytes, { level }));
    this.uploadsInFlightMax = options.uploadsInFlightMax ?? LIMITS.transferConcurrency;
  }

  /** The body to send for an encoded batch, compressed or not as the setting and measurements say. */
  encode(batch: Uint8Array): EncodedBatch {
    this.wholeBatchSamples.clear();
    const level = this.levelFor(batch);
    // A small batch was its own sample: compressed once.
    const sampled = level === null ? undefined : this.wholeBatchSamples.get(level);
    this.wholeBatchSamples.clear();
    if (level === null) return this.plain(batch, this.plainReason);
    const framed = this.framesAccepted && this.paceSetter() === "node";
    const compressed = framed ? this.timedFrames(batch, level) : sampled ?? this.timedCompress(batch, level);
    if (compressed.length > batch.length * (1 - SAVING_MIN)) return this.plain(batch, "incompressible");
    this.batches.compressed++;
    if (framed) this.batches.framed++;
    this.batchesByLevel.set(level, (this.batchesByLevel.get(level) ?? 0) + 1);
    this.compressedInARow++;
    return { body: compressed, encoding: framed ? null : "zstd", compressed: true };
  }

  /**
   * What sets the pace, once both kinds of upload came back (WIRE_BOUND_GAIN, NODE_BOUND_GAIN;
   * in between, as it was). Where the wire does, or nothing says yet, a batch goes compressed
   * whole, which saves 3-11% more bytes than frames of each object (docs/benchmarks.md, case 5);
   * where the node does, as frames, which the node keeps as they come instead of inflating the
   * body and compressing each object again for its store.
   */
  private paceSetter(): "wire" | "node" | undefined {
    const plain = this.links.plain.perSecond() === undefined ? undefined : this.linkBytesPerSecond("plain");
    const compressed = this.links.compressed.perSecond() === undefined ? undefined : this.linkBytesPerSecond("compressed");
    if (plain !== undefined && compressed !== undefined) {
      if (compressed >= WIRE_BOUND_GAIN * plain) this.pace = "wire";
      else if (compressed <= NODE_BOUND_GAIN * plain) this.pace = "node";
    }
    return this.pace;
  }

  /**
   * Notes an upload of `plainBytes` (object bytes, before compression) starting: `succeeded`
   * once the node answered it measures the link; `failed` drops it (a failure says nothing of
   * the link's rate).
   */
  startUpload(plainBytes: number, compressed: boolean, wireBytes = plainBytes): { succeeded(): void; failed(): void } {
    const now = this.advance();
    const upload: Upload = { startMs: now, plainBytes, wireBytes, compressed, areaAtStartMs: this.areaMs };
    this.uploads.add(upload);
    const end = (measured: boolean) => {
      if (!this.uploads.has(upload)) return;
      const endMs = this.advance();
      this.uploads.delete(upload);
      if (!measured) return;
      this.wireDone.bytes += upload.wireBytes;
      this.wireDone.busyMs = this.busyMs;
      const durationMs = endMs - upload.startMs;
      // An upload too quick for the clock says only that the link is fast: nothing to average.
      if (durationMs <= 0) return;
      // Weighted by the uploads it shared the link with: k at once each get a k-th of it.
      const sharing = Math.max(1, (this.areaMs - upload.areaAtStartMs) / durationMs);
      this.links[upload.compressed ? "compressed" : "plain"].add(((upload.plainBytes * sharing) / durationMs) * 1000);
      if (upload.compressed) this.links.compressedWire.add(((upload.wireBytes * sharing) / durationMs) * 1000);
    };
    return { succeeded: () => end(true), failed: () => end(false) };
  }

  /**
   * The rate the node took plain (or compressed) uploads at, in object bytes per second: the
   * measured uploads', lowered by any still in flight for longer than that rate allows (a slow
   * request says the link is slow before it ends).
   */
  linkBytesPerSecond(kind: "plain" | "compressed" | "compressedWire" = "plain"): number | undefined {
    const now = this.advance();
    let rate = this.links[kind].perSecond();
    for (const upload of this.uploads) {
      if (upload.compressed !== (kind !== "plain")) continue;
      const elapsedMs = now - upload.startMs;
      if (elapsedMs <= 0) continue;
      const sharing = Math.max(1, (this.areaMs - upload.areaAtStartMs) / elapsedMs);
      const atMost = (((kind === "compressedWire" ? upload.wireBytes : upload.plainBytes) * sharing) / elapsedMs) * 1000;
      rate = rate === undefined ? atMost : Math.min(rate, atMost);
    }
    return rate;
  }

  /**
   * Wire bytes per second of time with uploads in flight, over the push so far: the bytes of the
   * uploads that came back over the busy time up to the last one back. Steadier than each upload's
   * rate (which requests sharing the link make jump about), and never above what the link took,
   * so the level chosen errs towards compressing more.
   */
  wireBytesPerBusySecond(): number | undefined {
    if (this.wireDone.bytes === 0 || this.wireDone.busyMs <= 0) return undefined;
    return (this.wireDone.bytes / this.wireDone.busyMs) * 1000;
  }

  /** Plain bytes per second zstd went through at `level` on this push; undefined before it ran. */
  compressBytesPerSecond(level: number): number | undefined {
    return this.compressRates.get(level)?.perSecond();
  }

  private plain(batch: Uint8Array, reason: PlainReason): EncodedBatch {
    this.batches.plain++;
    this.plainBecause.set(reason, (this.plainBecause.get(reason) ?? 0) + 1);
    this.compressedInARow = 0;
    this.lastGain = 0;
    return { body: batch, encoding: null, compressed: false };
  }

  /**
   * Whether auto's next batch goes plain to measure the plain rate: compressed uploads measured
   * and plain ones not (or not for a while), and none on its way, so the choice compares two
   * measured rates rather than one and a guess.
   */
  private measuresPlainNext(): boolean {
    if (this.setting.kind !== "auto" || this.links.compressed.perSecond() === undefined) return false;
    const plainUnmeasured = this.links.plain.perSecond() === undefined && ![...this.uploads].some((upload) => !upload.compressed);
    const exploreEvery = this.lastGain >= CLEAR_GAIN ? EXPLORE_EVERY * EXPLORE_SPREAD : EXPLORE_EVERY;
    return plainUnmeasured || this.compressedInARow >= exploreEvery - 1;
  }

  /**
   * The bytes of `batchBytes` to send plain when the next batch is to measure the plain rate,
   * the rest going as usual beside it; undefined to send the whole batch plain (or no measuring
   * due). On a slow link a whole plain batch costs every byte zstd would have saved on it (two
   * such batches were the 6% a first push of compressible data at 100 Mbit/s lost against
   * rsync -az); a part that takes PLAIN_MEASURE_MS at the compressed uploads' wire rate still
   * measures a rate a request's fixed cost does not skew. On a fast link that part is the whole
   * batch or more, and the batch goes plain whole as before.
   */
  plainMeasurePart(batchBytes: number): number | undefined {
    if (batchBytes < COMPRESS_BYTES_MIN || !this.measuresPlainNext()) return undefined;
    const wire = this.linkBytesPerSecond("compressedWire");
    if (wire === undefined) return undefined;
    const partBytes = Math.max(PLAIN_MEASURE_BYTES_MIN, Math.ceil((wire * PLAIN_MEASURE_MS) / 1000));
    return partBytes * 2 <= batchBytes ? partBytes : undefined;
  }

  /** The level to compress the batch at, or null to send it plain. */
  private levelFor(batch: Uint8Array): number | null {
    this.plainReason = "small";
    if (batch.length < COMPRESS_BYTES_MIN) return null;
    const setting = this.setting;
    this.plainReason = "setting";
    if (setting.kind === "never") return null;
    this.plainReason = "incompressible";
    if (setting.kind === "level") {
      // A fixed level still skips what the sample says is already compressed or random.
      return this.sampleRatio(batch, PROBE_LEVEL) <= 1 - SAVING_MIN ? setting.level : null;
    }
    this.plainReason = "measuring";
    const plain = this.linkBytesPerSecond("plain");
    const compressed = this.linkBytesPerSecond("compressed");
    if (this.measuresPlainNext()) return null;
    this.plainReason = "incompressible";
    if (plain === undefined && compressed === undefined) {
      const sampleRatio = this.sampleRatio(batch, PROBE_LEVEL);
      return compressionPays({ sampleRatio, compressBytesPerSecond: this.compressBytesPerSecond(PROBE_LEVEL) ?? Number.POSITIVE_INFINITY, plainBytesPerSecond: undefined }) ? PROBE_LEVEL : null;
    }
    // The link's wire rate: as compressed uploads measured it, else as plain ones did.
    const compressedWire = this.linkBytesPerSecond("compressedWire");
    // Rates of uploads still in flight are upper bounds that fall as they go on, so two of them
    // started at different times do not compare. Until a plain upload has come back, plain is
    // taken to go no faster than compressed uploads put bytes on the wire (as a link would
    // make it), and the compressed intake counts once one has come back.
    const plainForChoice = this.links.plain.perSecond() === undefined && compressedWire !== undefined ? Math.min(plain ?? Number.POSITIVE_INFINITY, compressedWire) : plain;
    // No ratio could pay when plain batches outrun the compressor itself: no sample needed.
    const fastest = this.compressBytesPerSecond(AUTO_LEVELS[0]);
    this.plainReason = "faster plain";
    // Nothing back yet: the rates are only upper bounds (4 MiB in flight for 2 ms: "at most 2 GB/s"),
    // which can show a link is slow but never that it is fast.
    const nothingBack = this.links.plain.perSecond() === undefined && this.links.compressed.perSecond() === undefined;
    if (!nothingBack && plainForChoice !== undefined && fastest !== undefined && fastest <= plainForChoice) return null;
    const wire = Math.min(compressedWire ?? plain!, this.wireBytesPerBusySecond() ?? Number.POSITIVE_INFINITY);
    // Each level's sample, fastest first, up to the first that cannot keep ahead of the link
    // (the slower ones cannot either), and no slower than the cap.
    const measured: LevelMeasurement[] = [];
    for (const level of AUTO_LEVELS.slice(0, this.adjustLevelCap() + 1)) {
      const sampleRatio = this.sampleRatio(batch, level);
      const compressBytesPerSecond = this.compressBytesPerSecond(level) ?? Number.POSITIVE_INFINITY;
      measured.push({ level, sampleRatio, compressBytesPerSecond });
      if (!(sampleRatio <= 1 - SAVING_MIN)) break;
      if (compressBytesPerSecond * LINK_BUSY_CPU_SHARE < wire / sampleRatio) break;
    }
    const chosen = measured.find((m) => m.level === chooseLevel(measured, wire))!;
    if (!(chosen.sampleRatio <= 1 - SAVING_MIN)) this.plainReason = "incompressible";
    // The compressed intake: where the wire sets the pace (compressed uploads put bytes on it
    // about as fast as plain ones), as the wire rate makes it at this batch's ratio: measured as
    // is, it would mix batches that shrank little with ones that shrank much. Where the node sets
    // the pace (compressed uploads' wire rate well below plain's), as measured: a smaller ratio
    // gains nothing there.
    const compressedMeasured = this.links.compressed.perSecond() === undefined ? undefined : compressed;
    const wireSetsPace = compressedWire !== undefined && plainForChoice !== undefined && compressedWire >= WIRE_BOUND_SHARE * plainForChoice;
    const compressedForChoice = compressedMeasured !== undefined && wireSetsPace ? compressedWire / chosen.sampleRatio : compressedMeasured;
    const m: CompressionMeasurements = { sampleRatio: chosen.sampleRatio, compressBytesPerSecond: chosen.compressBytesPerSecond, plainBytesPerSecond: plainForChoice, compressedBytesPerSecond: compressedForChoice };
    this.plainReason = "faster plain";
    this.lastGain = overlappedGain(m);
    if (compressionPays(m)) return chosen.level;
    // Nothing has come back yet: the bounds err towards plain, so a batch that shrinks goes at
    // the fastest level until an upload measures the link (a slow node looks like a slow link
    // until then: a loopback push at load 7 sent its first 5-9 batches before any came back).
    if (nothingBack && measured[0]!.level === PROBE_LEVEL && measured[0]!.sampleRatio <= 1 - SAVING_MIN) return PROBE_LEVEL;
    return null;
  }

  /** Moves the level cap by how full the pipeline is as this batch is encoded; returns it. */
  private adjustLevelCap(): number {
    // The batch being encoded takes the slot that became free: a full pipeline has the rest in flight.
    const full = this.uploads.size >= this.uploadsInFlightMax - 1;
    if (full) {
      this.pipelineWasFull = true;
      this.levelCap = Math.min(AUTO_LEVELS.length - 1, this.levelCap + 1);
    } else if (this.pipelineWasFull) this.levelCap = Math.max(0, this.levelCap - 1);
    return this.levelCap;
  }

  /** Compressed over plain length of slices spread over the batch (the whole batch when small). */
  private sampleRatio(batch: Uint8Array, level: number): number {
    const sliceBytes = SAMPLE_SLICE_BYTES;
    let sample: Uint8Array;
    if (batch.length <= SAMPLE_SLICES * sliceBytes * 2) sample = batch;
    else {
      sample = new Uint8Array(SAMPLE_SLICES * sliceBytes);
      const stride = Math.floor((batch.length - sliceBytes) / (SAMPLE_SLICES - 1));
      for (let i = 0; i < SAMPLE_SLICES; i++) sample.set(batch.subarray(i * stride, i * stride + sliceBytes), i * sliceBytes);
    }
    const out = this.timedCompress(sample, level);
    if (sample === batch) this.wholeBatchSamples.set(level, out);
    return out.length / sample.length;
  }

  /** The batch with each object that shrinks as a zstd frame of its own (upload item kind 1). */
  private timedFrames(batch: Uint8Array, level: number): Uint8Array {
    const start = this.nowMs();
    const { body } = reframeBatch(batch, (bytes) => (bytes.length < FRAME_BYTES_MIN ? null : this.compressWith(bytes, level)));
    this.noteCompressed(level, batch.length, this.nowMs() - start);
    return body;
  }

  private timedCompress(bytes: Uint8Array, level: number): Uint8Array {
    const start = this.nowMs();
    const out = this.compressWith(bytes, level);
    this.noteCompressed(level, bytes.length, this.nowMs() - start);
    return out;
  }

  private noteCompressed(level: number, bytes: number, ms: number): void {
    let rate = this.compressRates.get(level);
    if (!rate) this.compressRates.set(level, (rate = new DecayingRate()));
    rate.add(bytes, ms);
  }

  /** Brings the in-flight area up to now and returns now. */
  private advance(): number {
    const now = this.nowMs();
    if (now > this.areaUpToMs) {
      this.areaMs += this.uploads.size * (now - this.areaUpToMs);
      if (this.uploads.size > 0) this.busyMs += now - this.areaUpToMs;
      this.areaUpToMs = now;
    }
    return now;
  }
}
