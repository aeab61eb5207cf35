// A node incarnation's view of its metadata store, for the strong runs: writes take simulated
// time, and a crash loses every write that has not landed yet.
//
// The metadata (an in-memory SQLite database shared by a node's incarnations) is the node's
// disk for folders, heads, versions and the Raft log and hard state. Reads answer at once. A
// write (any method in WRITES) lands a few simulated milliseconds later, in the order the
// incarnation issued its writes (one disk, one queue), and only then resolves. When the
// incarnation has crashed by then, the write is lost whole (the stores are transactional: a
// save either lands or does not) and never resolves. So whatever the node acknowledged or sent
// before a write resolved is exposed: a vote sent before the hard state that records it was
// durable is forgotten at a crash, and the simulation's checks see the second vote.
//
// `acknowledgeEarly` turns the store into a broken one that resolves the Raft log's writes at
// once but lands them later (lost at a crash all the same): a disk that says "synced" when it is
// not, or a driver that sends before it persists. The checks must catch what that does
// (strong-regressions.test.ts runs it).
import type { MetadataStore } from "../../src/node/metadata-store.ts";
import type { Incarnation } from "./network.ts";
import type { Scheduler, SimRandom } from "./scheduler.ts";

/** The metadata methods that change the store (the rest only read). */
export const WRITES: ReadonlySet<string> = new Set([
  "setMeta",
  "ensureFolder",
  "setRetention",
  "commitVersions",
  "recordVersions",
  "deleteVersions",
  "markComplete",
  "unmarkComplete",
  "unmarkAllComplete",
  "saveRaft",
  "compactRaft",
  "setRaftApplied",
  "setFolderMode",
]);

/** The writes of the Raft log and hard state (all resolve to nothing). */
export const RAFT_WRITES: ReadonlySet<string> = new Set(["saveRaft", "compactRaft", "setRaftApplied"]);

export interface DurableMetadataOptions {
  /** Longest simulated time one write takes before it lands. */
  maxWriteMs: number;
  /** Resolve the Raft writes before they land (a lying disk); off in every honest run. */
  acknowledgeEarly?: boolean;
  /** Runs a resolution now, or later when the node is paused (it takes no events meanwhile). */
  whenAwake: (run: () => void) => void;
  /** Called as a write is queued, with the simulated time until it lands (a chance for the harness to crash the node meanwhile). */
  onWrite?: (method: string, delayMs: number) => void;
  /** Called once a write has landed on the disk, with its method and arguments. */
  onLanded?: (method: string, args: unknown[], result: unknown) => void;
  /** Called when a crash loses a write that had not landed. */
  onLost?: (method: string) => void;
}

/**
 * Wraps `disk` for one incarnation. Every method not in WRITES goes straight through; `close`
 * lets go of nothing (the disk outlives the incarnation).
 */
export function incarnationMetadata(disk: MetadataStore, incarnation: Incarnation, scheduler: Scheduler, random: SimRandom, options: DurableMetadataOptions): MetadataStore {
  let lastDueMs = 0;
  const write = (method: string, args: unknown[]): Promise<unknown> => {
    if (!incarnation.alive) return new Promise(() => {});
    const now = scheduler.nowMs();
    const dueMs = Math.max(now + random.between(0, options.maxWriteMs), lastDueMs);
    lastDueMs = dueMs;
    options.onWrite?.(method, dueMs - now);
    const target = disk as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const early = options.acknowledgeEarly === true && RAFT_WRITES.has(method);
    const landed = new Promise<unknown>((resolve, reject) => {
      scheduler.schedule(dueMs - now, `disk ${incarnation.address} ${method}`, () => {
        if (!incarnation.alive) {
          // Crashed before this write reached the disk: it is gone, and nobody waits for it.
          options.onLost?.(method);
          return;
        }
        target[method]!.apply(disk, args).then(
          (result) => {
            options.onLanded?.(method, args, result);
            if (!early) options.whenAwake(() => resolve(result));
          },
          // A write the store refuses after it was acknowledged early: nobody hears of it, as with a lying disk.
          (error) => {
            if (!early) options.whenAwake(() => reject(error));
          },
        );
      });
    });
    return early ? Promise.resolve(undefined) : landed;
  };
  return new Proxy(disk, {
    get(target, property, receiver) {
      if (property === "close") return async () => {};
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (typeof property === "string" && WRITES.has(property)) return (...args: unknown[]) => write(property, args);
      return value.bind(target);
    },
  });
}
