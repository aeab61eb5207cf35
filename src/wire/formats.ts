// Wire formats for object transfer, shared by the client, replication and the server (none
// imports another for them). Data travels as msgpack; batches of object bytes are
// zstd-compressed as a whole when that pays (compressing a 4 MiB batch finds more redundancy
// than compressing chunks one by one), announced with `Content-Encoding: zstd`. Download replies
// are compressed here (compressIfWorthIt); an upload's client decides per batch from what it
// measured of the link (src/client/upload-compression.ts), and the node takes either.
import zlib from "node:zlib";
import { DecodeError, decodeMsgpack, encodeCanonical } from "../core/encoding.ts";
import { isObjectIdBytes, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";
import type { StoredObject } from "../store/object-store.ts";
import { encodeDownloadReplyDirect } from "./download-reply.ts";
import { encodeIdListMessage, idsFromLackingBits, lackingBits, readIdListMessage } from "./id-list.ts";

/** Compression is kept only when it saves at least this fraction. */
const COMPRESSION_SAVING_MIN = 0.05;
/**
 * Levels: uploads compress harder (5) where they compress at all (a link slow enough for it to
 * pay), since every byte saved crosses that link; on a real release update level 5 saved 5% over
 * level 3 for ~1 s more CPU per 100 MiB (docs/benchmarks.md). Download replies stay at 3: a node
 * serves many clients and its CPU is shared.
 */
export const ZSTD_LEVEL_UPLOAD = 5;
export const ZSTD_LEVEL_DOWNLOAD = 3;

export function compressIfWorthIt(bytes: Uint8Array, level: number = ZSTD_LEVEL_DOWNLOAD): { body: Uint8Array; encoding: "zstd" | null } {
  if (bytes.length < 512) return { body: bytes, encoding: null };
  // A 64 KiB sample tells cheaply whether the batch is already compressed or random.
  if (bytes.length > 256 * 1024) {
    const sample = bytes.subarray(0, 64 * 1024);
    const packed = Bun.zstdCompressSync(sample, { level: 1 });
    if (packed.length > sample.length * (1 - COMPRESSION_SAVING_MIN)) return { body: bytes, encoding: null };
  }
  const compressed = Bun.zstdCompressSync(bytes, { level });
  if (compressed.length > bytes.length * (1 - COMPRESSION_SAVING_MIN)) return { body: bytes, encoding: null };
  return { body: compressed, encoding: "zstd" };
}

/** Undoes compressIfWorthIt, refusing to inflate past `maxBytes` (a zstd bomb gets an error, not our memory). */
export function decompressBody(body: Uint8Array, encoding: string | null | undefined, maxBytes: number = LIMITS.requestBodyBytesMax): Uint8Array {
  if (!encoding || encoding === "identity") return body;
  if (encoding !== "zstd") throw new DecodeError(`unsupported content encoding ${JSON.stringify(encoding)}`);
  try {
    return zlib.zstdDecompressSync(body, { maxOutputLength: maxBytes });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE") throw new BodyTooLargeError(`body inflates past ${maxBytes} bytes`);
    throw new DecodeError(`malformed zstd body: ${(error as Error).message}`);
  }
}

/**
 * A response body read up to `maxBytes`; null when it is longer (a declared length beyond it is
 * refused before anything is read, and an undeclared one is cut off as soon as it passes).
 * Shared by the client and the replication transport: no reply from another host is read whole
 * without a bound.
 */
export async function readAtMost(response: Response, maxBytes: number): Promise<Uint8Array | null> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > maxBytes || !response.body) {
    await response.body?.cancel();
    return declared > maxBytes ? null : new Uint8Array(0);
  }
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  return Buffer.concat(parts);
}

export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

export function encodeIdList(ids: readonly ObjectId[], reply?: string): Uint8Array {
  return encodeIdListMessage("ids", ids, reply);
}

function parseIdArray(list: unknown, field: string): ObjectId[] {
  if (!Array.isArray(list)) throw new DecodeError(`expected an array "${field}"`);
  if (list.length > LIMITS.batchIdsMax) throw new DecodeError(`at most ${LIMITS.batchIdsMax} ids per request`);
  return list.map((id, i) => {
    if (!isObjectIdBytes(id)) throw new DecodeError(`${field}[${i}] is not a 32-byte id`);
    return id as ObjectId;
  });
}

function parseObjectPairs(value: unknown): StoredObject[] {
  if (!Array.isArray(value)) throw new DecodeError("an object batch is an array of [id, bytes] pairs");
  if (value.length > LIMITS.batchIdsMax) throw new DecodeError(`at most ${LIMITS.batchIdsMax} objects per batch`);
  return value.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new DecodeError(`batch item ${i} is not an [id, bytes] pair`);
    const [id, data] = pair;
    if (!isObjectIdBytes(id)) throw new DecodeError(`batch item ${i}: id is not 32 bytes`);
    if (!(data instanceof Uint8Array)) throw new DecodeError(`batch item ${i}: bytes must be binary`);
    if (data.length > LIMITS.objectBytesMax) throw new DecodeError(`batch item ${i}: object larger than ${LIMITS.objectBytesMax} bytes`);
    return { id: id as ObjectId, bytes: data };
  });
}

export function decodeIdList(bytes: Uint8Array, field = "ids"): ObjectId[] {
  return decodeIdQuestion(bytes, field).ids;
}

/** An id list and the reply format it asks for (`"reply"`, a short string, when given). */
export function decodeIdQuestion(bytes: Uint8Array, field = "ids"): { ids: ObjectId[]; reply?: string } {
  const direct = readIdListMessage(bytes, field, LIMITS.batchIdsMax);
  if (direct) return direct;
  const value = decodeMsgpack(bytes);
  if (!(value instanceof Map)) throw new DecodeError(`expected a map with an array "${field}"`);
  const ids = parseIdArray(value.get(field), field);
  const reply = value.get("reply");
  if (reply === undefined) return { ids };
  if (typeof reply !== "string" || reply.length > 16) throw new DecodeError(`"reply" is a short string`);
  return { ids, reply };
}

/**
 * The answer to "which of `asked` do you lack?": `{"missing": [bin32, ...]}` (every node), or
 * `{"lacking": bin}`, one bit per id asked (a node asked for `"reply": "bits"`). The ids lacking,
 * in the order asked.
 */
export function decodeMissingReply(bytes: Uint8Array, asked: readonly ObjectId[]): ObjectId[] {
  const direct = readIdListMessage(bytes, "missing", asked.length);
  if (direct) return direct.ids;
  const value = decodeMsgpack(bytes);
  if (!(value instanceof Map)) throw new DecodeError(`expected a map with "missing" or "lacking"`);
  const bits = value.get("lacking");
  if (bits !== undefined) {
    if (!(bits instanceof Uint8Array)) throw new DecodeError(`"lacking" must be binary`);
    return idsFromLackingBits(asked, bits);
  }
  const missing = parseIdArray(value.get("missing"), "missing");
  if (missing.length > asked.length) throw new DecodeError(`the node named ${missing.length} ids missing of ${asked.length} asked`);
  return missing;
}

/** The node's answer in bits (`"reply": "bits"`): bit i set when `lacking(i)`. */
export function encodeLackingReply(count: number, lacking: (index: number) => boolean): Uint8Array {
  return encodeCanonical({ lacking: lackingBits(count, lacking) });
}

/** A batch of objects: msgpack array of [id, bytes] pairs. */
export function encodeObjectBatch(objects: readonly StoredObject[]): Uint8Array {
  return encodeCanonical(objects.map((o) => [o.id, o.bytes]));
}

export function decodeObjectBatch(bytes: Uint8Array): StoredObject[] {
  return parseObjectPairs(decodeMsgpack(bytes));
}

/** Download reply: the objects found, and the ids that were not. */
/** `{"objects": [[id, bytes], ...], "missing": [id, ...]}`, written directly (download-reply.ts): the canonical encoder's bytes. */
export function encodeDownloadReply(found: readonly StoredObject[], missing: readonly ObjectId[]): Uint8Array {
  return encodeDownloadReplyDirect(found, missing);
}

export function decodeDownloadReply(bytes: Uint8Array): { objects: StoredObject[]; missing: ObjectId[] } {
  const value = decodeMsgpack(bytes);
  if (!(value instanceof Map)) throw new DecodeError("a download reply is a map");
  return { objects: parseObjectPairs(value.get("objects")), missing: parseIdArray(value.get("missing"), "missing") };
}
