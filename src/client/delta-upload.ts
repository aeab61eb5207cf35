// Deltas for an update push (docs/format.md, "Delta frames"): a changed file's new chunks sent
// as zstd frames whose dictionary is made of blocks of the chunks the same path held in the last
// synced version. The client no longer holds those old bytes (the file was overwritten), but it
// knows their ids (the local node cache), and the node holds them: the node sends their block
// signatures (POST /v1/objects/signatures), the client finds which old blocks its new chunk
// still contains (core/block-signatures.ts) and compresses with those bytes, taken from its own
// chunk, as the dictionary; the node rebuilds the same dictionary from the old chunks and checks
// the result against the id.
//
// Signatures are asked for ahead of need, in the plan's order and in requests of up to
// LIMITS.signatureIdsMax ids that span files, one after another in the background while the
// upload goes on: first each file's first PROBE_BYTES of old chunks (at most REQUESTS_AHEAD_MAX
// requests waiting, FILES_AHEAD_MAX files ahead), then, for a file whose deltas pay, up to
// WINDOW_AHEAD_BYTES past the chunk being sent. A delta is sent only where it pays: it must come
// to less than DELTA_PAYS of the chunk's own zstd frame at the same level (plain chunks travel in
// batches compressed as a whole, which gain some 10% over chunk by chunk); a file whose deltas
// saved less than twice the signature bytes of the last window asks for no more, and the rest of
// it is neither matched nor sent as deltas (a rebuilt binary shares few whole blocks with its old
// build: its deltas would cost more than they save).
import { BlockIndex, blockCount, DEFAULT_BLOCK_BYTES, SIGNATURE_BYTES, type BlockMatch } from "../core/block-signatures.ts";
import { dictionaryFromFresh, runsFromMatches } from "../core/delta-base.ts";
import type { ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { ChunkRef } from "../core/objects.ts";
import { compressWithDictionary, DELTA_BASES_MAX, encodeDeltaFrame } from "../wire/delta-frame.ts";
import type { RemoteNode } from "./remote.ts";

/** The chunks a path held in the last synced version, in file order; shared by all of that file's new chunks. */
export interface PreviousChunks {
  chunks: readonly ChunkRef[];
}

/** The upload item kind of a delta, as a node lists it in GET /v1/health "uploadItems". */
export const DELTA_ITEM_KIND = 2;

/** The zstd level of delta frames: level 3 keeps the client's CPU well under rsync -az's for the same data. */
export const DELTA_ZSTD_LEVEL = 3;
/** A delta is sent when it is at most this fraction of the chunk's own zstd frame. */
const DELTA_PAYS = 0.85;
/** Matches below this share of a chunk are not worth a second compression. */
const MATCHED_SHARE_MIN = 1 / 16;
/** Matches above this share make a delta that surely pays (it is not compared with the chunk's own frame). */
const MATCHED_SHARE_SURE = 1 / 2;
/** Old-file bytes whose signatures are asked for every changed file before any delta of it is tried. */
const PROBE_BYTES = 2 * 1024 * 1024;
/** Signatures asked for ahead of the chunk being sent, in old-file bytes, once a file's deltas pay. */
const WINDOW_AHEAD_BYTES = 4 * 1024 * 1024;
/** Old chunks smaller than this are never bases (a few blocks; their signatures cost more than they find). */
const BASE_BYTES_MIN = 4 * 1024;
/** Files whose block index is kept while others are encoded. */
const INDEXES_KEPT = 4;
/**
 * Signature requests waiting ahead of the encoder, at most (each at most LIMITS.signatureIdsMax
 * ids), and files whose probe is asked for ahead of the one being encoded: what is held stays
 * bounded (at most some 256 probes of 48 KiB) however many files an update changes.
 */
const REQUESTS_AHEAD_MAX = 8;
const FILES_AHEAD_MAX = 256;

export interface DeltaCounters {
  /** Chunks sent as deltas, and the bytes of those deltas against the chunks' own length. */
  chunksAsDelta: number;
  deltaBytes: number;
  deltaChunkBytes: number;
  /** Signatures received, in bytes, and the requests that brought them. */
  signatureBytes: number;
  signatureRequests: number;
}

/** One changed file's old chunks: the signatures received for them, in chunk order, and their index while the file is encoded. */
class FileBases {
  /** Old chunks whose signatures were asked for: chunks[0, asked). */
  asked = 0;
  /** Settles once everything asked for this file has arrived. */
  ready: Promise<void> = Promise.resolve();
  readonly received: { chunk: number; signatures: Uint8Array }[] = [];
  readonly startBytes: number[] = [];
  readonly totalBytes: number;
  /** What deltas saved against the chunks' own frames, and the signature bytes, since the last request for this file. */
  savedBytes = 0;
  signatureBytes = 0;
  off = false;
  /** The index over received[0, indexed), rebuilt when the file is encoded again after another. */
  index: BlockIndex | undefined;
  indexed = 0;
  firstBlocks: number[] = [];
  chunkOfFirst: number[] = [];

  constructor(readonly previous: PreviousChunks) {
    let at = 0;
    for (const chunk of previous.chunks) {
      this.startBytes.push(at);
      at += chunk.lengthBytes;
    }
    this.totalBytes = at;
  }

  /** The index over every signature received, made or brought up to date. */
  indexFor(blockBytes: number): BlockIndex {
    if (!this.index || this.index.blockBytes !== blockBytes) {
      this.index = new BlockIndex(blockBytes, Math.ceil(this.totalBytes / blockBytes));
      this.indexed = 0;
      this.firstBlocks = [];
      this.chunkOfFirst = [];
    }
    for (; this.indexed < this.received.length; this.indexed++) {
      const { chunk, signatures } = this.received[this.indexed]!;
      this.firstBlocks.push(this.index.blocks);
      this.chunkOfFirst.push(chunk);
      this.index.add(signatures);
    }
    return this.index;
  }

  /** Which old chunk, and which block in it, a global block number names. */
  place(block: number): { chunk: number; block: number } {
    let lo = 0;
    let hi = this.firstBlocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.firstBlocks[mid]! <= block) lo = mid;
      else hi = mid - 1;
    }
    return { chunk: this.chunkOfFirst[lo]!, block: block - this.firstBlocks[lo]! };
  }

  /**
   * Whether its deltas since the last request have paid for that request's signatures twice
   * over. Once only would let the Bun binary's rebuild (case 4) go on through all 100 MiB,
   * saving 1.0 MiB more of 37.7 for 1.7 s more of CPU; this stops it after its first windows.
   */
  pays(): boolean {
    return this.savedBytes >= 2 * this.signatureBytes;
  }

  /** Lets go of the index and the signatures; the file takes no more deltas. */
  forget(): void {
    this.index = undefined;
    this.received.length = 0;
    this.indexed = 0;
    this.off = true;
  }

  /** A new window of signatures asked for: what it costs and saves is counted afresh. */
  newWindow(): void {
    this.savedBytes = 0;
    this.signatureBytes = 0;
  }
}

/** Old chunks of one or more files asked for in one request. */
type Part = { file: FileBases; chunks: number[] };

export class DeltaEncoder {
  readonly counters: DeltaCounters = { chunksAsDelta: 0, deltaBytes: 0, deltaChunkBytes: 0, signatureBytes: 0, signatureRequests: 0 };
  private readonly files = new Map<PreviousChunks, FileBases>();
  /** Requests go one after another, in the order asked: each file's signatures arrive in chunk order. */
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  /** The files the plan's chunks replace, in its order, and the first whose probe is not asked for yet. */
  private readonly upcoming: PreviousChunks[] = [];
  private nextUpcoming = 0;
  /** The furthest place in `upcoming` the encoder has reached. */
  private reached = 0;
  private readonly placeInUpcoming = new Map<PreviousChunks, number>();
  /** The files whose index is held, the latest last (a large file's chunks come a page at a time, between other files'). */
  private readonly recent: FileBases[] = [];
  /** The block size the node signs with, from its replies; the default until one arrives. */
  private blockBytes = DEFAULT_BLOCK_BYTES;
  /** The node failed to answer signatures: no more deltas. */
  private off = false;
  /** What chunks' own frames came to, over their length, lately: the estimate for a chunk not compressed to compare. */
  private plainRatio = 0.5;

  constructor(private readonly remote: RemoteNode) {}

  /**
   * Notes the files the chunks replace, in their order, and starts asking for the signatures
   * of each one's first PROBE_BYTES; as the encoder moves on, more are asked for, so that at
   * most REQUESTS_AHEAD_MAX requests are ever waiting.
   */
  prefetch(chunks: readonly { previous?: PreviousChunks }[]): void {
    const seen = new Set<PreviousChunks>(this.upcoming);
    for (const { previous } of chunks) {
      if (!previous || seen.has(previous)) continue;
      seen.add(previous);
      this.placeInUpcoming.set(previous, this.upcoming.length);
      this.upcoming.push(previous);
    }
    this.topUp();
  }

  /** Asks for the next files' probes while fewer than REQUESTS_AHEAD_MAX requests wait. */
  private topUp(): void {
    let parts: Part[] = [];
    let ids = 0;
    while (this.queued < REQUESTS_AHEAD_MAX && this.nextUpcoming < this.upcoming.length && this.nextUpcoming < this.reached + FILES_AHEAD_MAX) {
      const file = this.fileFor(this.upcoming[this.nextUpcoming++]!);
      if (file.asked > 0) continue;
      const wanted = this.nextChunks(file, PROBE_BYTES, LIMITS.signatureIdsMax);
      for (let at = 0; at < wanted.length; ) {
        const piece = wanted.slice(at, at + LIMITS.signatureIdsMax - ids);
        parts.push({ file, chunks: piece });
        ids += piece.length;
        at += piece.length;
        if (ids >= LIMITS.signatureIdsMax) {
          this.enqueue(parts);
          parts = [];
          ids = 0;
        }
      }
    }
    if (parts.length > 0) this.enqueue(parts);
  }

  private fileFor(previous: PreviousChunks): FileBases {
    let file = this.files.get(previous);
    if (!file) {
      file = new FileBases(previous);
      this.files.set(previous, file);
    }
    return file;
  }

  /** The chunks of `file` after those asked for, starting before `endBytes`, at most `most`; marks them asked. */
  private nextChunks(file: FileBases, endBytes: number, most: number): number[] {
    const chunks = file.previous.chunks;
    const out: number[] = [];
    while (file.asked < chunks.length && file.startBytes[file.asked]! < endBytes && out.length < most) {
      if (chunks[file.asked]!.lengthBytes >= BASE_BYTES_MIN) out.push(file.asked);
      file.asked++;
    }
    return out;
  }

  /** Puts one request for `parts` on the chain; each part's file is ready once it has arrived. */
  private enqueue(parts: Part[]): void {
    this.queued++;
    const request = this.chain.then(async () => {
      if (this.off) return;
      const ids = parts.flatMap((part) => part.chunks.map((chunk) => part.file.previous.chunks[chunk]!.id));
      let reply;
      try {
        reply = await this.remote.signatures(ids);
      } catch {
        // No signatures, no deltas: the chunks go whole, as to a node without the route.
        this.off = true;
        return;
      } finally {
        this.queued--;
      }
      this.counters.signatureRequests++;
      this.blockBytes = reply.blockBytes;
      let at = 0;
      for (const part of parts) {
        for (const chunk of part.chunks) {
          const signatures = reply.signatures[at++]!;
          // None (the node lacks it, or the reply's bound), or not the blocks a chunk of its length has: not a base.
          if (part.file.off || signatures.length === 0 || signatures.length / SIGNATURE_BYTES !== blockCount(part.file.previous.chunks[chunk]!.lengthBytes, reply.blockBytes)) continue;
          part.file.received.push({ chunk, signatures });
          part.file.signatureBytes += signatures.length;
          this.counters.signatureBytes += signatures.length;
        }
      }
    });
    this.chain = request;
    for (const part of parts) part.file.ready = request;
  }

  /** Whether a chunk of `lengthBytes` replacing chunks of `previous` may go as a delta (else it is read straight into its batch). */
  mayEncode(previous: PreviousChunks, lengthBytes: number): boolean {
    return !this.off && previous.chunks.length > 0 && lengthBytes >= BASE_BYTES_MIN && this.files.get(previous)?.off !== true;
  }

  /**
   * The chunk `bytes` (named `id`, at `offsetBytes` of its file) as a delta against the old
   * chunks of `previous`, or undefined when none pays.
   */
  async encode(id: ObjectId, bytes: Uint8Array, offsetBytes: number, previous: PreviousChunks): Promise<{ delta: Uint8Array; baseId: ObjectId } | undefined> {
    if (this.off || previous.chunks.length === 0 || bytes.length < BASE_BYTES_MIN) return undefined;
    this.reached = Math.max(this.reached, this.placeInUpcoming.get(previous) ?? 0);
    this.topUp();
    const file = this.fileFor(previous);
    if (file.off) return undefined;
    // Not prefetched (past the prefetch's reach), or paying and near the end of what was asked: ask for more.
    const endBytes = offsetBytes + bytes.length + (file.asked === 0 ? PROBE_BYTES : WINDOW_AHEAD_BYTES);
    if (file.asked < previous.chunks.length && file.startBytes[file.asked]! < offsetBytes + bytes.length + PROBE_BYTES / 2) {
      if (file.asked > 0 && !file.pays()) {
        // Its deltas did not pay for their signatures: the rest of the file goes whole, and is
        // not even matched against the blocks already known (rolling over it costs CPU).
        file.off = true;
        return undefined;
      }
      const wanted = this.nextChunks(file, endBytes, LIMITS.signatureIdsMax);
      if (wanted.length > 0) {
        file.newWindow();
        this.enqueue([{ file, chunks: wanted }]);
      }
    }
    await file.ready;
    if (this.off) return undefined;
    if (!this.recent.includes(file)) {
      this.recent.push(file);
      // The file left behind lets go of its signatures too (memory stays bounded however many
      // files change); should a later page of it come, its chunks go whole.
      if (this.recent.length > INDEXES_KEPT) this.recent.shift()!.forget();
    }
    const index = file.indexFor(this.blockBytes);
    if (index.blocks === 0) return undefined;
    const matches = index.match(bytes);
    if (matches.length * index.blockBytes < bytes.length * MATCHED_SHARE_MIN) return undefined;
    const encoded = this.deltaFor(file, index, bytes, matches);
    // Most of the chunk found: the delta is a fraction of any frame of it, no need to make one to compare.
    const mostlyFound = matches.length * index.blockBytes >= bytes.length * MATCHED_SHARE_SURE;
    let plain: number;
    if (mostlyFound) {
      plain = Math.round(bytes.length * this.plainRatio);
    } else {
      plain = compressWithDictionary(bytes, new Uint8Array(0), DELTA_ZSTD_LEVEL).length;
      this.plainRatio = 0.8 * this.plainRatio + (0.2 * plain) / bytes.length;
      if (encoded.delta.length > plain * DELTA_PAYS) return undefined;
    }
    file.savedBytes += plain - encoded.delta.length;
    this.counters.chunksAsDelta++;
    this.counters.deltaBytes += encoded.delta.length;
    this.counters.deltaChunkBytes += bytes.length;
    return encoded;
  }

  private deltaFor(file: FileBases, index: BlockIndex, bytes: Uint8Array, matches: BlockMatch[]): { delta: Uint8Array; baseId: ObjectId } {
    const blockBytes = index.blockBytes;
    let { runs, bases } = runsFromMatches(matches, (block) => file.place(block));
    // More bases than a delta may name: keep the matches of the first ones.
    if (bases.length > DELTA_BASES_MAX) {
      const kept = new Set(bases.slice(0, DELTA_BASES_MAX));
      matches = matches.filter((m) => kept.has(file.place(m.block).chunk));
      ({ runs, bases } = runsFromMatches(matches, (block) => file.place(block)));
    }
    const frame = compressWithDictionary(bytes, dictionaryFromFresh(bytes, matches, blockBytes), DELTA_ZSTD_LEVEL);
    const ids = bases.map((chunk) => file.previous.chunks[chunk]!.id);
    const delta = encodeDeltaFrame({ blockBytes, rebuiltBytes: bytes.length, furtherBases: ids.slice(1), runs, frame });
    return { delta, baseId: ids[0]! };
  }
}
