// Reading request bodies and writing msgpack answers, shared by the client and peer routes.
import type { Context } from "hono";
import { UserError } from "../node/node.ts";
import { LIMITS } from "../core/limits.ts";
import { parseJsonBounded } from "../core/json-shape.ts";
import { BodyTooLargeError, compressIfWorthIt, decompressBody } from "../wire/formats.ts";
import { requireObject } from "./validate.ts";
import zlib from "node:zlib";
import { once } from "node:events";
import { DecodeError } from "../core/encoding.ts";
import type { StoredObject } from "../store/object-store.ts";
import { readObjectBatchStream, type BatchTotals, type DeltaRebuilder } from "./object-batch-stream.ts";
import { countBodyBytes } from "./metrics.ts";
import { idleCollector } from "./idle-collect.ts";

/** A request body, inflated when it came compressed; at most `maxBytes` as sent and once inflated (413 beyond). */
export async function readBody(c: Context, maxBytes: number = LIMITS.requestBodyBytesMax): Promise<Uint8Array> {
  const tooLarge = () => new BodyTooLargeError(`request body larger than ${maxBytes} bytes`);
  // A declared length past the bound is refused before a byte is read.
  const declared = Number(c.req.header("content-length") ?? NaN);
  if (declared > maxBytes) throw tooLarge();
  const raw = new Uint8Array(await c.req.arrayBuffer());
  countBodyBytes(c, "received", raw.length);
  idleCollector.noteBytes(raw.length);
  if (raw.length > maxBytes) throw tooLarge();
  return decompressBody(raw, c.req.header("content-encoding"), maxBytes);
}

/**
 * An upload batch read as it arrives (object-batch-stream.ts): its objects go to `onGroup` in
 * groups of about one client batch, each awaited before the next is read, so a 64 MiB body
 * never sits in memory whole. At most `maxBytes` as sent and once inflated (413 beyond).
 */
export async function readObjectBatch(c: Context, onGroup: (objects: StoredObject[]) => Promise<void>, maxBytes: number = LIMITS.requestBodyBytesMax, rebuildDelta?: DeltaRebuilder): Promise<BatchTotals> {
  const tooLarge = () => new BodyTooLargeError(`request body larger than ${maxBytes} bytes`);
  const declared = Number(c.req.header("content-length") ?? NaN);
  if (declared > maxBytes) throw tooLarge();
  const encoding = c.req.header("content-encoding");
  if (encoding && encoding !== "identity" && encoding !== "zstd") throw new DecodeError(`unsupported content encoding ${JSON.stringify(encoding)}`);
  let sentBytes = 0;
  let inflatedBytes = 0;
  const sent = countedPieces(c.req.raw.body, maxBytes, (n) => (sentBytes += n));
  const pieces = encoding === "zstd" ? countedInflated(inflatedPieces(sent), (n) => (inflatedBytes += n)) : sent;
  try {
    return await readObjectBatchStream(pieces, onGroup, maxBytes, rebuildDelta);
  } finally {
    countBodyBytes(c, "received", sentBytes);
    // The garbage a body leaves is what was read out of it: a compressed body counted as sent
    // made the busy collections three times rarer for the same objects (a node receiving
    // 100 000 tiny files in compressed batches peaked up to ~100 MB higher).
    idleCollector.noteBytes(Math.max(sentBytes, inflatedBytes));
  }
}

/** Inflated pieces, counted as they pass. */
async function* countedInflated(pieces: AsyncIterable<Uint8Array>, count: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  for await (const piece of pieces) {
    count(piece.length);
    yield piece;
  }
}

/** The pieces of a request body, counted as sent and refused past `maxBytes`. */
async function* countedPieces(body: ReadableStream<Uint8Array> | null, maxBytes: number, count: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  if (body === null) return;
  const reader = body.getReader();
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.length;
      count(value.length);
      if (total > maxBytes) throw new BodyTooLargeError(`request body larger than ${maxBytes} bytes`);
      yield value;
    }
  } finally {
    // A batch refused part way stops reading (the rest of the body is not waited for).
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * Inflated pieces of this size rather than zlib's 16 KiB: a 4 MiB batch comes in 32 pieces, not
 * 256, and each piece costs the batch reader a turn (4.6 against 2.8 ms of CPU per 4 MiB batch of
 * text, inflated and read). The reader bounds the total, not the piece.
 */
const INFLATED_PIECE_BYTES = 128 * 1024;

/** A zstd stream inflated piece by piece; the reader bounds the inflated total, so a bomb stops there. */
async function* inflatedPieces(compressed: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const inflate = zlib.createZstdDecompress({ chunkSize: INFLATED_PIECE_BYTES });
  const feeding = (async () => {
    try {
      for await (const piece of compressed) if (!inflate.write(piece)) await once(inflate, "drain");
      inflate.end();
    } catch (error) {
      inflate.destroy(error as Error);
    }
  })();
  try {
    for await (const piece of inflate) yield piece as Uint8Array;
  } catch (error) {
    if (error instanceof BodyTooLargeError || error instanceof DecodeError) throw error;
    throw new DecodeError(`malformed zstd body: ${(error as Error).message}`);
  } finally {
    inflate.destroy();
    await feeding;
  }
}

/**
 * A JSON object body, at most LIMITS.jsonBodyBytesMax: every JSON body is a small request, and a
 * body of the general 64 MiB bound would parse into millions of objects (gigabytes of memory).
 */
export async function readJson(c: Context, emptyAllowed = false): Promise<Record<string, unknown>> {
  const bytes = await readBody(c, LIMITS.jsonBodyBytesMax);
  if (emptyAllowed && bytes.length === 0) return {};
  let value: unknown;
  try {
    value = parseJsonBounded(bytes);
  } catch (error) {
    throw new UserError(`the body must be valid JSON (${(error as Error).message})`);
  }
  return requireObject(value);
}

export function msgpackResponse(c: Context, bytes: Uint8Array, allowCompression = false): Response {
  const accepts = (c.req.header("accept-encoding") ?? "").includes("zstd");
  const { body, encoding } = allowCompression && accepts ? compressIfWorthIt(bytes) : { body: bytes, encoding: null };
  const headers: Record<string, string> = { "content-type": "application/msgpack" };
  if (encoding) headers["content-encoding"] = encoding;
  countBodyBytes(c, "sent", body.length);
  idleCollector.noteBytes(body.length);
  return new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers });
}

