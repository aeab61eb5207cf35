// Whether the metadata store answers right now, for GET /v1/health, /metrics and the status.
// A request that needs the metadata already says so when it fails (503, MetadataUnavailableError);
// the health and the metrics must say it without one, so they ask the store a one-row read.
//
// The probe is bounded (a store that does not answer within timeoutMs counts as unavailable,
// and the health answers at once rather than after the store's own 20 s timer) and shared: one
// read in flight at a time, its answer reused for freshMs, so a monitor polling the public health
// route many times a second costs the database one read per freshMs, not one per request.
import type { MetadataStore } from "./metadata-store.ts";
import { MetadataUnavailableError } from "./metadata-unavailable.ts";

export type MetadataAvailability = { available: true } | { available: false; reason: string };

/** A store slower than this to read one row is unavailable as far as a monitor is concerned. */
export const METADATA_PROBE_TIMEOUT_MS = 3_000;
/** How long one probe's answer stands for the next callers. */
export const METADATA_PROBE_FRESH_MS = 1_000;

export class MetadataProbe {
  private inFlight: Promise<MetadataAvailability> | undefined;
  private last: { atMs: number; answer: MetadataAvailability } | undefined;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly timeoutMs = METADATA_PROBE_TIMEOUT_MS,
    private readonly freshMs = METADATA_PROBE_FRESH_MS,
  ) {}

  /** Whether the store answered a one-row read within timeoutMs (an answer at most freshMs old). */
  check(): Promise<MetadataAvailability> {
    if (this.last && performance.now() - this.last.atMs < this.freshMs) return Promise.resolve(this.last.answer);
    this.inFlight ??= this.probe().then((answer) => {
      this.last = { atMs: performance.now(), answer };
      this.inFlight = undefined;
      return answer;
    });
    return this.inFlight;
  }

  private async probe(): Promise<MetadataAvailability> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<MetadataAvailability>((resolve) => {
      timer = setTimeout(() => resolve({ available: false, reason: `did not answer within ${this.timeoutMs / 1000} s` }), this.timeoutMs);
    });
    const read = this.metadata.getMeta("node_id").then(
      (): MetadataAvailability => ({ available: true }),
      (error: unknown): MetadataAvailability => ({
        available: false,
        // The reason alone: the health route is public, and the location names the database server.
        reason: error instanceof MetadataUnavailableError ? error.reason : error instanceof Error ? error.message : String(error),
      }),
    );
    try {
      return await Promise.race([read, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
