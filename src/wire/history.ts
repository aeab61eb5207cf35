// The peer history reply (POST /v1/peer/folders/:folder/history): a page of version objects,
// each with its file and byte counts, and the ids the walk stopped at (`more`). Encoded by the
// answering node's routes, decoded by the asking node's transport; both use this file so
// neither imports the other.
import { DecodeError, decodeMsgpack, encodeCanonical } from "../core/encoding.ts";
import type { ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

export interface HistoryPage {
  versions: HistoryItem[];
  more: ObjectId[];
}

export interface HistoryItem {
  /** The version object's bytes; the receiver hashes them for the id. */
  bytes: Uint8Array;
  files: number;
  totalBytes: number;
}

export function encodeHistory(page: HistoryPage): Uint8Array {
  return encodeCanonical({ versions: page.versions.map((item) => [item.bytes, item.files, item.totalBytes]), more: page.more });
}

/**
 * A history page as received. `more` absent (a node from before paging, whose one answer was
 * all it would send) reads as the last page; a `more` longer than a page may name is refused.
 */
export function decodeHistory(bytes: Uint8Array): HistoryPage {
  const value = decodeMsgpack(bytes);
  if (!(value instanceof Map) || !Array.isArray(value.get("versions"))) throw new DecodeError("a history reply is a map with a versions list");
  const moreValue = value.get("more") ?? [];
  if (!Array.isArray(moreValue) || moreValue.length > LIMITS.historyFrontierIdsMax) {
    throw new DecodeError(`a history reply's more is a list of at most ${LIMITS.historyFrontierIdsMax} ids`);
  }
  const more = moreValue.map((id, i) => {
    if (!(id instanceof Uint8Array) || id.length !== 32) throw new DecodeError(`history more[${i}] is not a 32-byte id`);
    return new Uint8Array(id) as ObjectId;
  });
  return { versions: decodeHistoryItems(value.get("versions") as unknown[]), more };
}

function decodeHistoryItems(versions: unknown[]): HistoryItem[] {
  return versions.map((item, i) => {
    if (!Array.isArray(item) || item.length !== 3 || !(item[0] instanceof Uint8Array)) throw new DecodeError(`history item ${i} is not [bytes, files, bytes]`);
    const [bytes, files, totalBytes] = item as [Uint8Array, unknown, unknown];
    const count = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0);
    return { bytes, files: count(files), totalBytes: count(totalBytes) };
  });
}
