// The object store: immutable bytes named by their BLAKE3 id.
//
// Every implementation (in memory, pack files on disk, and later remote ones) passes the one
// conformance suite in test/store/conformance.ts. The contract:
// - put/putMany verify that each id is the BLAKE3 of its bytes and throw ObjectHashMismatchError
//   (storing nothing of that batch) when one is not;
// - when put/putMany resolve, the objects are durable (fsynced on disk stores);
// - a crash leaves no half object visible: an object is either whole and readable or absent;
// - get/getMany re-hash what they read and throw CorruptObjectError rather than return wrong bytes;
// - an object found corrupt by any read (get/getMany, verifyAll, scrub) is quarantined: from then
//   on it reads as absent (has, hasMany, touch, get, list, stats), so "which do you lack?" names it
//   and a client or peer sends it again; its damaged bytes are kept, never deleted, and a put of
//   the right bytes stores a new copy and marks the quarantine record repaired;
// - deleting an absent id is not an error; putting a present id is a cheap no-op.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { LIMITS } from "../core/limits.ts";

export interface StoredObject {
  id: ObjectId;
  bytes: Uint8Array;
  /**
   * One zstd frame that inflates to `bytes` (an upload item of kind 1, inflated by its reader),
   * which a store that compresses may keep as the stored payload instead of compressing `bytes`
   * again. `bytes` is what is verified against the id; the frame is trusted to inflate to them.
   */
  frame?: Uint8Array;
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
  /**
   * Re-reads and verifies stored objects in id order after `afterId` (null: from the start),
   * until about `bytesMax` bytes were read; quarantines what is corrupt. `nextAfterId` is where
   * the next step starts, null once the pass reached the end.
   */
  scrub(afterId: ObjectId | null, bytesMax: number): Promise<ScrubStep>;
  /** Objects found corrupt, oldest first; `unrepairedOnly` leaves out those stored again since. */
  listQuarantine(options?: { unrepairedOnly?: boolean }): Promise<QuarantineRecord[]>;
  /** How many objects are quarantined now, and how many were repaired by a later put. */
  quarantineStats(): Promise<QuarantineStats>;
  /** Calls `listener` with the ids each time objects are newly quarantined; returns an unsubscribe. */
  onQuarantine(listener: QuarantineListener): () => void;
  /**
   * Forgets those of `ids` that are quarantined and not repaired, for gc once nothing kept needs
   * them: their damaged records become garbage like any deleted object's (repack may reclaim
   * them). Returns how many were forgotten.
   */
  dropQuarantined(ids: readonly ObjectId[]): Promise<number>;
  close(): Promise<void>;
}

/** Which read found an object corrupt. */
export type QuarantineFinder = "read" | "verify" | "scrub" | "repack" | "rebuild";

export interface QuarantineRecord {
  id: ObjectId;
  foundMs: number;
  foundBy: QuarantineFinder;
  /** What was wrong, e.g. "content hashes to …" or "pack file … is missing". */
  detail: string;
  /** When a good copy was stored again; null while the object is still missing. */
  repairedMs: number | null;
}

export interface QuarantineStats {
  quarantined: number;
  repaired: number;
}

export type QuarantineListener = (ids: readonly ObjectId[]) => void;

export interface ScrubStep {
  checkedObjects: number;
  checkedBytes: number;
  /** Ids found corrupt (and quarantined) by this step. */
  corrupt: ObjectId[];
  nextAfterId: ObjectId | null;
}

/** Listeners of one store, each called in turn; one that throws does not stop the others. */
export class QuarantineListeners {
  private readonly listeners: QuarantineListener[] = [];

  add(listener: QuarantineListener): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at !== -1) this.listeners.splice(at, 1);
    };
  }

  emit(ids: readonly ObjectId[]): void {
    if (ids.length === 0) return;
    for (const listener of [...this.listeners]) {
      try {
        listener(ids);
      } catch (error) {
        console.error("dsync: quarantine listener failed:", error);
      }
    }
  }
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
  checkObjectSizes(objects);
  for (const { id, bytes } of objects) {
    const actual = blake3(bytes);
    if (!idEquals(actual, id)) throw new ObjectHashMismatchError(idToHex(id), idToHex(actual));
  }
}

/** Every object within the size limit (RangeError), before any of the batch is stored. */
export function checkObjectSizes(objects: readonly StoredObject[]): void {
  for (const { id, bytes } of objects) {
    if (bytes.length > LIMITS.objectBytesMax) {
      throw new RangeError(`object ${idToHex(id)} is ${bytes.length} bytes, above the ${LIMITS.objectBytesMax}-byte limit`);
    }
  }
}
