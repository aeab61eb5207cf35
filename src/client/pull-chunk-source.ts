// The chunks a pull writes: from files already in the directory where they hold them (the old
// versions of changed files, files this pull wrote), else from the node, verified, in bounded
// batches. What it remembers of local files is bounded, so a pull of a million files does not
// keep a million locations: past the bound the oldest are forgotten (their chunks are fetched).
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { ChunkRef } from "../core/objects.ts";
import type { ChunkSource } from "../fs/materialize.ts";
import { FileChunkReader, type ChunkLocation } from "./file-chunks.ts";
import { RemoteError, type RemoteNode } from "./remote.ts";

/** Chunk locations in local files remembered at most (about 200 bytes each: 4 MB). */
export const LOCAL_CHUNKS_REMEMBERED_MAX = 20_000;

/** Serves chunks from local files where possible, else from the node, in bounded batches. */
export class PullChunkSource implements ChunkSource {
  /** Chunks of files this pull wrote (bounded: LOCAL_CHUNKS_REMEMBERED_MAX, the oldest forgotten). */
  readonly local = new Map<string, ChunkLocation>();
  /** Chunks of the files the current group replaces (their old versions): all of them, until the group is written. */
  readonly replaced = new Map<string, ChunkLocation>();
  readonly prefetched = new Map<string, Uint8Array>();
  /** The reply buffers prefetch's chunks are views of, freed with them (releasePrefetched). */
  private prefetchedReplies: ArrayBufferLike[] = [];
  /** Reply buffers getChunks handed out, each to one caller, until that caller releases them. */
  private readonly handedOut = new WeakSet<ArrayBufferLike>();
  readonly reader = new FileChunkReader();
  chunksFetched = 0;
  bytesFetched = 0;
  chunksReused = 0;

  constructor(private readonly remote: RemoteNode, private readonly onFetched: (bytes: number) => void = () => {}) {}

  /** Whether a chunk can be had without the network (not verified until read). */
  hasLocally(id: ObjectId): boolean {
    const key = idToHex(id);
    return this.prefetched.has(key) || this.replaced.has(key) || this.local.has(key);
  }

  /** Downloads chunks into memory, a few requests of ~4 MiB at a time. */
  async prefetch(chunks: readonly ChunkRef[]): Promise<void> {
    // Each batch with the bytes its chunks have by the tree: its reply is read no further.
    const batches: { ids: ObjectId[]; bytes: number }[] = [];
    let batch: ObjectId[] = [];
    let bytes = 0;
    for (const chunk of chunks) {
      batch.push(chunk.id);
      bytes += chunk.lengthBytes;
      if (bytes >= LIMITS.batchBytesTarget) {
        batches.push({ ids: batch, bytes });
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) batches.push({ ids: batch, bytes });
    for (let i = 0; i < batches.length; i += LIMITS.transferConcurrency) {
      const replies = await Promise.all(
        batches.slice(i, i + LIMITS.transferConcurrency).map((b) => this.remote.download(b.ids, { objectBytesMax: b.bytes })),
      );
      for (const reply of replies) {
        if (reply.missing.length > 0) throw new RemoteError("rejected", `the node lacks chunk ${idToHex(reply.missing[0]!)} of its own tree`);
        for (const object of reply.objects) {
          if (!idEquals(blake3(object.bytes), object.id)) throw new RemoteError("rejected", `the node sent chunk ${idToHex(object.id)} with wrong bytes`);
          if (this.prefetchedReplies.at(-1) !== object.bytes.buffer) this.prefetchedReplies.push(object.bytes.buffer);
          this.prefetched.set(idToHex(object.id), object.bytes);
          this.chunksFetched++;
          this.bytesFetched += object.bytes.length;
          this.onFetched(object.bytes.length);
        }
      }
    }
  }

  async getChunks(ids: readonly ObjectId[]): Promise<Uint8Array[]> {
    const out: (Uint8Array | undefined)[] = ids.map((id) => {
      const key = idToHex(id);
      const fetched = this.prefetched.get(key);
      if (fetched) return fetched;
      const location = this.replaced.get(key) ?? this.local.get(key);
      if (!location) return undefined;
      const bytes = this.reader.tryRead(id, location);
      if (bytes) this.chunksReused++;
      else {
        // The local copy changed; fetch instead.
        this.replaced.delete(key);
        this.local.delete(key);
      }
      return bytes;
    });
    // Each distinct chunk once, however often the batch names it.
    const missing = [...new Map(ids.filter((_, i) => out[i] === undefined).map((id) => [idToHex(id), id])).values()];
    if (missing.length > 0) {
      const reply = await this.remote.download(missing);
      for (const object of reply.objects) this.handedOut.add(object.bytes.buffer);
      const counted = new Set<string>();
      const byId = new Map(reply.objects.map((o) => [idToHex(o.id), o.bytes]));
      for (let i = 0; i < ids.length; i++) {
        if (out[i] !== undefined) continue;
        const key = idToHex(ids[i]!);
        const bytes = byId.get(key);
        if (!bytes) throw new RemoteError("rejected", `the node lacks chunk ${key} of its own tree`);
        out[i] = bytes;
        if (counted.has(key)) continue;
        counted.add(key);
        this.chunksFetched++;
        this.bytesFetched += bytes.length;
        this.onFetched(bytes.length);
      }
    }
    return out as Uint8Array[];
  }

  /** Remembers where a file's chunks sit on disk, to reuse them for later files. */
  noteLocalFile(absolutePath: string, chunks: readonly ChunkRef[], startOffsetBytes = 0): void {
    let offset = startOffsetBytes;
    for (const chunk of chunks) {
      const key = idToHex(chunk.id);
      if (!this.local.has(key)) {
        this.local.set(key, { path: absolutePath, offsetBytes: offset, lengthBytes: chunk.lengthBytes });
        // The oldest first (a Map keeps insertion order).
        if (this.local.size > LOCAL_CHUNKS_REMEMBERED_MAX) this.local.delete(this.local.keys().next().value!);
      }
      offset += chunk.lengthBytes;
    }
  }

  /**
   * Remembers every chunk of a file the current group is about to replace, however large: an
   * edit in a 10 GiB file fetches only what changed. Forgotten when the group is written.
   */
  noteReplacedFile(absolutePath: string, chunks: readonly ChunkRef[]): void {
    let offset = 0;
    for (const chunk of chunks) {
      const key = idToHex(chunk.id);
      if (!this.replaced.has(key)) this.replaced.set(key, { path: absolutePath, offsetBytes: offset, lengthBytes: chunk.lengthBytes });
      offset += chunk.lengthBytes;
    }
  }

  /**
   * A writer is done with bytes getChunks returned: the reply buffers they are views of are
   * freed at once (detached), not at the next collection. Only buffers this source downloaded
   * for getChunks, and each once: prefetched chunks wait for releasePrefetched, and chunks read
   * from local files are the collector's.
   */
  release(chunks: readonly Uint8Array[]): void {
    for (const chunk of chunks) freeReplyBuffer(chunk.buffer, this.handedOut);
  }

  /** Drops what prefetch brought (freeing its reply buffers: the group is written) and the replaced files' chunks. */
  releasePrefetched(): void {
    this.prefetched.clear();
    const replies = this.prefetchedReplies;
    this.prefetchedReplies = [];
    for (const buffer of replies) freeReplyBuffer(buffer);
    this.replaced.clear();
  }
}

/**
 * Detaches a download reply's buffer, which frees its memory in Bun at once: a pull of a large
 * file receives its whole size in ~4 MiB replies, and left to the collector they were tens of
 * MiB of its peak. With `only`, just a buffer in that set (removed from it, so freed once).
 * A small one is left to the collector: it may be a slab of Buffer's pool, shared with others.
 */
function freeReplyBuffer(buffer: ArrayBufferLike, only?: WeakSet<ArrayBufferLike>): void {
  if (only !== undefined && !only.delete(buffer)) return;
  if (buffer.byteLength < REPLY_BUFFER_FREED_BYTES_MIN) return;
  if (buffer instanceof ArrayBuffer && typeof buffer.transfer === "function" && !buffer.detached) buffer.transfer(0);
}

/** Reply buffers smaller than this are not freed early (Buffer's pool slabs are 8 KiB). */
const REPLY_BUFFER_FREED_BYTES_MIN = 64 * 1024;
