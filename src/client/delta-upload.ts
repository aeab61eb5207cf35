// Deltas for an update push (docs/formats.md, "Delta frames"): a changed file's new chunks sent
// as zstd frames whose dictionary is made of blocks of the chunks the same path held in the last
// synced version. The client no longer holds those old bytes (the file was overwritten), but it
// knows their ids (the local node cache), and the node holds them: the node sends their block
// signatures (POST /v1/objects/signatures), the client finds which old blocks its new chunk
// still contains (core/block-signatures.ts) and compresses with those bytes, taken from its own
// chunk, as the dictionary; the node rebuilds the same dictionary from the old chunks and checks
// the result against the id.
//
// Signatures are asked for per file as its new chunks come, in file order, for the old chunks up
// to a window ahead of the chunk being sent. A delta is sent only where it pays: it must come to
// less than DELTA_PAYS of the chunk's own zstd frame at the same level (plain chunks travel in
// batches compressed as a whole, which gain some 10% over chunk by chunk), and a file whose
// deltas have saved less than twice the signature bytes they cost, once those pass
// PROBE_SIGNATURE_BYTES, asks for no more (a rebuilt binary shares few whole blocks with its
// old build: its deltas would cost more than they save).
import { BlockIndex, blockCount, SIGNATURE_BYTES, type BlockMatch } from "../core/block-signatures.ts";
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
/** Signatures asked for ahead of the chunk being sent, in old-file bytes. */
const WINDOW_AHEAD_BYTES = 8 * 1024 * 1024;
/** Signature bytes a file may cost before its deltas must have paid for them twice over. */
const PROBE_SIGNATURE_BYTES = 256 * 1024;
/** Old chunks smaller than this are never bases (a few blocks; their signatures cost more than they find). */
const BASE_BYTES_MIN = 4 * 1024;

export interface DeltaCounters {
  /** Chunks sent as deltas, and the bytes of those deltas against the chunks' own length. */
  chunksAsDelta: number;
  deltaBytes: number;
  deltaChunkBytes: number;
  /** Signatures received, in bytes, and the requests that brought them. */
  signatureBytes: number;
  signatureRequests: number;
}

/** One changed file's old chunks: their signatures as fetched, indexed. */
class FileBases {
  readonly index: BlockIndex;
  /** Old chunks whose signatures were asked for: chunks[0, fetched). */
  fetched = 0;
  /** The global number of each fetched chunk's first block (BlockIndex numbering), for the chunks with any. */
  readonly firstBlocks: number[] = [];
  readonly chunkOfFirst: number[] = [];
  readonly startBytes: number[] = [];
  savedBytes = 0;
  signatureBytes = 0;
  off = false;

  constructor(readonly previous: PreviousChunks, blockBytes: number) {
    let at = 0;
    for (const chunk of previous.chunks) {
      this.startBytes.push(at);
      at += chunk.lengthBytes;
    }
    this.index = new BlockIndex(blockBytes);
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
}

export class DeltaEncoder {
  readonly counters: DeltaCounters = { chunksAsDelta: 0, deltaBytes: 0, deltaChunkBytes: 0, signatureBytes: 0, signatureRequests: 0 };
  private readonly files = new Map<PreviousChunks, FileBases>();
  /** The block size the node signs with, learnt from its first reply (its own choice). */
  private blockBytes: number | undefined;

  constructor(private readonly remote: RemoteNode) {}

  /**
   * The chunk `bytes` (named `id`, at `offsetBytes` of its file) as a delta against the old
   * chunks of `previous`, or undefined when none pays. A node that fails to answer signatures
   * gets no deltas from this encoder again.
   */
  async encode(id: ObjectId, bytes: Uint8Array, offsetBytes: number, previous: PreviousChunks): Promise<{ delta: Uint8Array; baseId: ObjectId } | undefined> {
    if (previous.chunks.length === 0 || bytes.length < BASE_BYTES_MIN) return undefined;
    let file = this.files.get(previous);
    if (!file) {
      // One file at a time in practice (chunks come in file order): the last one's index goes.
      this.files.clear();
      file = new FileBases(previous, this.blockBytes ?? 512);
      this.files.set(previous, file);
    }
    if (file.off) return undefined;
    await this.fetchUpTo(file, offsetBytes + bytes.length + WINDOW_AHEAD_BYTES);
    if (file.off || file.index.blocks === 0) return undefined;
    const matches = file.index.match(bytes);
    if (matches.length * file.index.blockBytes < bytes.length * MATCHED_SHARE_MIN) return undefined;
    const encoded = this.deltaFor(file, bytes, matches);
    if (!encoded) return undefined;
    const plain = compressWithDictionary(bytes, new Uint8Array(0), DELTA_ZSTD_LEVEL).length;
    if (encoded.delta.length > plain * DELTA_PAYS) return undefined;
    file.savedBytes += plain - encoded.delta.length;
    this.counters.chunksAsDelta++;
    this.counters.deltaBytes += encoded.delta.length;
    this.counters.deltaChunkBytes += bytes.length;
    return encoded;
  }

  private deltaFor(file: FileBases, bytes: Uint8Array, matches: BlockMatch[]): { delta: Uint8Array; baseId: ObjectId } | undefined {
    const blockBytes = file.index.blockBytes;
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

  /** Asks for the signatures of the old chunks that start before `endBytes` and were not asked for yet. */
  private async fetchUpTo(file: FileBases, endBytes: number): Promise<void> {
    const chunks = file.previous.chunks;
    while (file.fetched < chunks.length && file.startBytes[file.fetched]! < endBytes && !file.off) {
      if (file.signatureBytes >= PROBE_SIGNATURE_BYTES && file.savedBytes < 2 * file.signatureBytes) {
        file.off = true;
        return;
      }
      const from = file.fetched;
      const asked: number[] = [];
      for (let i = from; i < chunks.length && asked.length < LIMITS.signatureIdsMax && file.startBytes[i]! < endBytes; i++) {
        if (chunks[i]!.lengthBytes >= BASE_BYTES_MIN) asked.push(i);
        file.fetched = i + 1;
      }
      if (asked.length === 0) continue;
      let reply;
      try {
        reply = await this.remote.signatures(asked.map((i) => chunks[i]!.id));
      } catch {
        // No signatures, no deltas: the chunks go whole, as to a node without the route.
        file.off = true;
        return;
      }
      this.counters.signatureRequests++;
      if (this.blockBytes === undefined) this.blockBytes = reply.blockBytes;
      if (reply.blockBytes !== file.index.blockBytes) {
        // The node signs with another size than this file's index was made for: start it afresh at that size.
        this.files.delete(file.previous);
        const fresh = new FileBases(file.previous, reply.blockBytes);
        this.files.set(file.previous, fresh);
        file.off = true;
        return this.fetchUpTo(fresh, endBytes);
      }
      asked.forEach((chunk, i) => {
        const signatures = reply.signatures[i]!;
        // None (the node lacks it, or the reply's bound), or not the blocks a chunk of its length has: not a base.
        if (signatures.length === 0 || signatures.length / SIGNATURE_BYTES !== blockCount(chunks[chunk]!.lengthBytes, reply.blockBytes)) return;
        file.firstBlocks.push(file.index.blocks);
        file.chunkOfFirst.push(chunk);
        file.index.add(signatures);
        file.signatureBytes += signatures.length;
        this.counters.signatureBytes += signatures.length;
      });
    }
  }
}
