// Giving back what finished transfers held, once the node is idle.
//
// JavaScriptCore collects when allocation asks for it, never because a process went quiet: after
// a push of 200 MiB the node kept ~60 MB of request bodies already answered and ~50 MB of dead
// objects, and after a 100 000-file commit ~130 MB of the check's dead objects, for as long as
// nothing else ran (docs/benchmarks.md, "Node memory"). So heavy requests (bodies of many bytes,
// commits, whose checks read every new object) count towards one full collection, run IDLE_MS
// after the last of them (right after a commit, which ends a push). Light traffic (a status poll, a metrics scrape) never triggers one,
// and a push in progress puts it off with each batch. Right before that quiet-time collection,
// what was kept for the next transfer is let go (onQuiet: the upload buffers, the pack writer's),
// so the collection frees it too: 12 MiB of buffers the node held at rest after every push.

/** Bytes of request and reply bodies since the last collection that make one worth it. */
export const HEAVY_BYTES_MIN = 16 * 1024 * 1024;
/** Bytes of bodies after which a collection is asked for even while requests go on. */
export const BUSY_COLLECT_BYTES = 16 * 1024 * 1024;
/** Quiet time before collecting. */
export const IDLE_MS = 1000;
/** Time after a commit before collecting: none beyond the reply going out (a commit ends a push, and the pusher is done). */
export const COMMIT_IDLE_MS = 0;

export class IdleCollector {
  private heavyBytes = 0;
  private busyBytes = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  collections = 0;
  /** When the last quiet-time collection ran (performance.now()), so commits in a row share one. */
  private lastCollectedMs = Number.NEGATIVE_INFINITY;
  private readonly releasers = new Set<() => void>();

  constructor(
    private readonly collect: () => void = () => Bun.gc(true),
    private readonly idleMs = IDLE_MS,
    private readonly collectBusy: () => void = () => Bun.gc(true),
  ) {}

  /**
   * Body bytes received or sent: counts towards a collection. While bodies stream in, every
   * BUSY_COLLECT_BYTES also asks for a collection at once (not waiting for quiet): the pieces a
   * socket hands over are garbage as soon as they are copied out, and JavaScriptCore, which
   * paces itself by the size of its own heap, let ~70 MB of them pile up during a 200 MiB push.
   */
  noteBytes(bytes: number): void {
    this.heavyBytes += bytes;
    this.busyBytes += bytes;
    if (this.busyBytes >= BUSY_COLLECT_BYTES) {
      this.busyBytes = 0;
      this.collectBusy();
    }
    this.schedule();
  }

  /**
   * A commit ended: its check read every new object, as much garbage as a big body, and it ends
   * a push, so the collection follows at once (COMMIT_IDLE_MS) rather than after IDLE_MS. Call it
   * before the commit's reply: after a push whose bodies alone were worth a collection, it
   * collects right here, so the pusher sees its reply with the push's garbage already given
   * back (a full collection of the node's small heap, 10-30 ms, against a reply racing a
   * collection that ran just after it: RSS when the push returned swung between 99 and 124 MB
   * for the same 200 MiB push). After a small push it is scheduled, off the reply's path.
   */
  noteCommit(): void {
    if (this.heavyBytes >= HEAVY_BYTES_MIN && performance.now() - this.lastCollectedMs >= this.idleMs) {
      this.collectQuiet();
      return;
    }
    this.heavyBytes += HEAVY_BYTES_MIN;
    // At once only if nothing was collected in the last idle period: a stream of small commits
    // (each would cost a full collection of 10-40 ms) waits for quiet like any heavy traffic.
    this.schedule(performance.now() - this.lastCollectedMs >= this.idleMs ? COMMIT_IDLE_MS : this.idleMs);
  }

  /** Calls `release` right before each quiet-time collection (to drop what is kept for the next transfer); returns an unsubscribe. */
  onQuiet(release: () => void): () => void {
    this.releasers.add(release);
    return () => void this.releasers.delete(release);
  }

  /** Once enough was moved, collect `delayMs` after the last heavy request (each one puts it off). */
  private schedule(delayMs = this.idleMs): void {
    if (this.heavyBytes < HEAVY_BYTES_MIN) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.collectQuiet(), delayMs);
    // A scheduled collection never keeps the process alive.
    this.timer.unref?.();
  }

  /** The quiet-time collection, what is kept for the next transfer let go first. */
  private collectQuiet(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.heavyBytes = 0;
    this.collections += 1;
    this.lastCollectedMs = performance.now();
    for (const release of this.releasers) {
      try {
        release();
      } catch (error) {
        console.error("dsync: releasing idle buffers failed:", error);
      }
    }
    this.collect();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The process's one collector: every server in it shares the same heap. */
export const idleCollector = new IdleCollector();
