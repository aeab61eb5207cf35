// Keeps a long scan's memory near what it holds rather than what it has thrown away.
//
// A push of many small files makes garbage fast (a stat per file, a node per file, a batch per
// few thousand) and the garbage collector, with memory to spare, lets the heap grow well past
// the live data: 100 000 files peaked at 380 MB with about 80 MB live. A full collection each
// time the heap has grown by COLLECTABLE_GROWTH_BYTES (a push's scan) or the process by
// GROWTH_BYTES (a pull) since the last one holds the peak near the live data, and costs some
// ten collections per hundred thousand files (each takes milliseconds at this heap size), not
// one per batch.
import { heapSize } from "bun:jsc";

/** Growth of the resident set since the last collection that triggers the next one. */
const GROWTH_BYTES = 48 * 1024 * 1024;

/**
 * Growth of what the collector can free (the JavaScript heap and ArrayBuffers) since the last
 * collection that triggers the next, for a push's scan. The resident set is a poor trigger
 * there: after a collection it stays near its high-water mark (freed blocks are kept for reuse),
 * so each collection raised the bar by the growth again, and a first push of 200 000 small files
 * still peaked at 270-300 MB. Watching the heap, a collection comes every 8 MiB of new heap and
 * buffers: 20 collections (0.5 s) for those 200 000 files, peak 240 MB; one every 1 024 files
 * took 2.9 s for 200 MB.
 */
export const COLLECTABLE_GROWTH_BYTES = 8 * 1024 * 1024;

/** What a budget watches: the process's resident set, or the heap and buffers the collector can free. */
export type MemoryMeasure = "resident" | "collectable";

function collectableBytes(): number {
  return heapSize() + process.memoryUsage().arrayBuffers;
}

export class MemoryBudget {
  private readonly read: () => number;
  private baselineBytes: number;

  /** `growthBytes`: the growth that triggers a collection (a pull, whose garbage is large batches, uses less). */
  constructor(
    private readonly growthBytes = GROWTH_BYTES,
    measure: MemoryMeasure = "resident",
  ) {
    this.read = measure === "resident" ? () => process.memoryUsage.rss() : collectableBytes;
    this.baselineBytes = this.read();
  }

  /** Collects garbage if the measure grew by `growthBytes` since the last collection; cheap otherwise (a few µs). */
  check(): void {
    if (this.read() < this.baselineBytes + this.growthBytes) return;
    Bun.gc(true);
    // Freed memory is reused before the process grows again, even when it is not given back.
    this.baselineBytes = this.read();
  }
}
