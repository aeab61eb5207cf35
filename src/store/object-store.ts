// The object store: immutable bytes named by their BLAKE3 id.
//
// Every implementation (in memory, pack files on disk, and later remote ones) passes the one
// conformance suite in test/store/conformance.ts. The contract:
// - put/putMany verify that each id is the BLAKE3 of its bytes and throw ObjectHashMismatchError
//   (storing nothing of that batch) when one is not;
// - when put/putMany resolve, the objects are durable (fsynced on disk stores);
// - a crash leaves no half object visible: an object is either whole and readable or absent;
// - get/getMany re-hash what they read and throw CorruptObjectError rather than return wrong bytes;
// - deleting an absent id is not an error; putting a present id is a cheap no-op.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

export interface StoredObject {
  id: ObjectId;
  bytes: Uint8Array;
}

export interface ObjectStore {
  has(id: ObjectId): Promise<boolean>;
  /** One answer per id, in order. */
  hasMany(ids: readonly ObjectId[]): Promise<boolean[]>;
  /** The verified bytes, or undefined when absent. */
  get(id: ObjectId): Promise<Uint8Array | undefined>;
  getMany(ids: readonly ObjectId[]): Promise<(Uint8Array | undefined)[]>;
  put(id: ObjectId, bytes: Uint8Array): Promise<void>;
  putMany(objects: readonly StoredObject[]): Promise<void>;
  delete(id: ObjectId): Promise<void>;
  deleteMany(ids: readonly ObjectId[]): Promise<void>;
  /** Every stored id, in no particular order. */
  list(): AsyncIterable<ObjectId>;
  /** Counts for status pages and metrics. */
  stats(): Promise<{ objects: number; storedBytes: number; rawBytes: number }>;
  close(): Promise<void>;
}

export class ObjectHashMismatchError extends Error {
  override name = "ObjectHashMismatchError";
  constructor(readonly claimedIdHex: string, readonly actualIdHex: string) {
    super(`object claimed to be ${claimedIdHex} hashes to ${actualIdHex}`);
  }
}

export class CorruptObjectError extends Error {
  override name = "CorruptObjectError";
  constructor(readonly idHex: string, detail: string) {
    super(`stored object ${idHex} is corrupt: ${detail}`);
  }
}

/**
 * Checks a whole batch before any of it is stored, so a bad batch leaves no trace: every object
 * within the size limit (RangeError) and hashing to its id (ObjectHashMismatchError).
 */
export function verifyObjects(objects: readonly StoredObject[]): void {
  for (const { id, bytes } of objects) {
    if (bytes.length > LIMITS.objectBytesMax) {
      throw new RangeError(`object ${idToHex(id)} is ${bytes.length} bytes, above the ${LIMITS.objectBytesMax}-byte limit`);
    }
    const actual = blake3(bytes);
    if (!idEquals(actual, id)) throw new ObjectHashMismatchError(idToHex(id), idToHex(actual));
  }
}
