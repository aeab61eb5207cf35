// Loading objects from a node in batches, one request per turn of the event loop.
//
// A Merkle descent (diffTrees, unsharedLeaves) asks for every object of one level at once: the
// differing subtrees are explored concurrently, each branch awaiting its own load(). This loader
// collects every id asked for while the current turn runs (the synchronous code and the
// microtasks it queues), and sends them together in one `POST /v1/objects/download` when the
// turn ends. A descent that loads one level per round therefore costs one request per level,
// whatever the number of branches, instead of one request per object.
//
// Every object received is checked against its id (BLAKE3 of the bytes) before anyone sees it.
// Results are kept, so asking again for an id costs nothing; an id the node lacks resolves to
// undefined (fetch) or throws (load), and a failed request can be retried by asking again.
import { blake3 } from "../core/blake3.ts";
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { decodeObject, type StructuredObject } from "../core/objects.ts";
import type { ObjectLoader } from "../core/pages.ts";
import type { StoredObject } from "../store/object-store.ts";
import { RemoteError } from "./remote.ts";

/** The one call the loader needs from a RemoteNode (tests pass a fake). */
export interface ObjectDownloader {
  download(ids: readonly ObjectId[]): Promise<{ objects: StoredObject[]; missing: ObjectId[] }>;
}

export interface BatchedLoaderStats {
  /** Turns that sent at least one id. */
  batches: number;
  /** Download calls (more than batches when a batch was split). */
  requests: number;
  idsRequested: number;
  objectsReceived: number;
  bytesReceived: number;
}

export interface BatchedLoaderOptions {
  /**
   * Most ids per request. A level wider than this is sent as several requests (concurrently).
   * Structured objects are a few KiB each, so the default stays well below the node's 64 MiB
   * reply limit; a reply the node refuses as too large is split in halves and asked again.
   */
  idsPerRequest?: number;
  /** Where the node is, for error messages. */
  label?: string;
}

const DEFAULT_IDS_PER_REQUEST = 4096;

interface Waiter {
  id: ObjectId;
  key: string;
  resolve(bytes: Uint8Array | undefined): void;
  reject(error: unknown): void;
}

export class BatchedRemoteLoader {
  readonly stats: BatchedLoaderStats = { batches: 0, requests: 0, idsRequested: 0, objectsReceived: 0, bytesReceived: 0 };
  private readonly results = new Map<string, Promise<Uint8Array | undefined>>();
  private pending = new Map<string, Waiter>();
  private scheduled = false;
  private readonly idsPerRequest: number;
  private readonly label: string;

  constructor(
    private readonly remote: ObjectDownloader,
    options: BatchedLoaderOptions = {},
  ) {
    this.idsPerRequest = Math.max(1, options.idsPerRequest ?? DEFAULT_IDS_PER_REQUEST);
    this.label = options.label ?? "the node";
  }

  /** The verified bytes of `id`, or undefined when the node does not hold it. */
  fetch(id: ObjectId): Promise<Uint8Array | undefined> {
    const key = idToHex(id);
    let result = this.results.get(key);
    if (result === undefined) {
      result = new Promise<Uint8Array | undefined>((resolve, reject) => {
        this.pending.set(key, { id, key, resolve, reject });
      });
      this.results.set(key, result);
      this.schedule();
    }
    return result;
  }

  /** An ObjectLoader over the node: the decoded object, or an error when the node lacks it. */
  readonly load: ObjectLoader = async (id: ObjectId): Promise<StructuredObject> => {
    const bytes = await this.fetch(id);
    if (bytes === undefined) throw new RemoteError("not-found", `${this.label} has no object ${idToHex(id)}`);
    return decodeObject(bytes);
  };

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after the microtasks of this turn: every branch that continues from the
    // previous reply has asked for its next ids by then.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending = new Map();
    if (batch.length === 0) return;
    this.stats.batches++;
    this.stats.idsRequested += batch.length;
    const parts: Waiter[][] = [];
    for (let i = 0; i < batch.length; i += this.idsPerRequest) parts.push(batch.slice(i, i + this.idsPerRequest));
    await Promise.all(parts.map((part) => this.send(part)));
  }

  private async send(part: Waiter[]): Promise<void> {
    let reply: { objects: StoredObject[]; missing: ObjectId[] };
    this.stats.requests++;
    try {
      reply = await this.remote.download(part.map((w) => w.id));
    } catch (error) {
      if (part.length > 1 && error instanceof RemoteError && (error.status === 400 || error.status === 413)) {
        // Most likely more bytes than one reply may carry: ask for each half on its own.
        const half = Math.ceil(part.length / 2);
        await Promise.all([this.send(part.slice(0, half)), this.send(part.slice(half))]);
        return;
      }
      for (const waiter of part) this.fail(waiter, error);
      return;
    }
    const open = new Map(part.map((w) => [w.key, w]));
    for (const object of reply.objects) {
      const key = idToHex(object.id);
      const waiter = open.get(key);
      if (waiter === undefined) continue; // not asked for (or sent twice): ignored
      open.delete(key);
      if (!idEquals(blake3(object.bytes), waiter.id)) {
        this.fail(waiter, new RemoteError("rejected", `${this.label} sent object ${key} with bytes that do not match its id`));
        continue;
      }
      this.stats.objectsReceived++;
      this.stats.bytesReceived += object.bytes.length;
      waiter.resolve(object.bytes);
    }
    for (const id of reply.missing) {
      const key = idToHex(id);
      const waiter = open.get(key);
      if (waiter === undefined) continue;
      open.delete(key);
      waiter.resolve(undefined);
    }
    for (const waiter of open.values()) {
      this.fail(waiter, new RemoteError("rejected", `${this.label} answered a download without object ${waiter.key}, neither sent nor listed as missing`));
    }
  }

  private fail(waiter: Waiter, error: unknown): void {
    // Forget the failure, so a later fetch asks again.
    this.results.delete(waiter.key);
    waiter.reject(error);
  }
}
