// Completeness marks made as uploads arrive, so a push's commit has little left to check.
//
// A client uploads bottom-up: a directory's chunks and file nodes before its tree node, its
// subdirectories before it, the root last. Once a group of uploaded objects is durable, each
// tree or file node in it is checked for itself (core/tree-structure.ts, role "node"): every
// rule that lies within it and between it and its children, with the children taken only from
// what is already established, never read further down: a structured child must be marked
// complete (by an earlier group, an earlier commit, or earlier in this group), a chunk must be
// stored (and for a file named by its chunk, be of its size and no structured object). A node
// that passes is marked with the same summary a commit's check would give it; one that does not
// (a child not here yet, a broken rule) is simply left unmarked, and the commit checks it.
// The commit then finds the root marked, or descends only into what is not.
//
// As safe as the commit's own check:
// - marks are written only after the store acknowledged the group (durable), in one
//   transaction per group, and a child counts only once it is durable itself;
// - the work per group is bounded by its bytes: one node's check reads nothing below its
//   direct children, marks are asked for in batches, and chunks whose length is not known from
//   an earlier group are read within a budget per group (past it, the node stays unmarked);
// - gc pauses this marking for its whole run (a node marked while gc sweeps could vouch for a
//   child gc is deleting), and a quarantine cancels the marks of a group still being checked
//   (they may rest on a mark the quarantine dropped) and forgets every chunk length known.
import { idEquals, idToHex, type ObjectId } from "../core/id.ts";
import { decodeIfObject, decodeObject, isTreeLeaf, type StructuredObject } from "../core/objects.ts";
import { checkTreeStructure, TreeStructureError, type CheckedNode, type NodeSummary } from "../core/tree-structure.ts";
import type { StoredObject } from "../store/object-store.ts";
import type { MetadataStore } from "./metadata-store.ts";
import type { NodeStore } from "./node-store.ts";

/**
 * Chunk lengths remembered from recent groups (a directory's chunks usually arrive a group or two
 * before its node): two generations of at most this many each, the older dropped whole when the
 * newer fills (deleting a Map's oldest keys one by one costs JavaScriptCore a scan past every
 * key deleted before: 2 s for 100 000 chunks).
 */
const CHUNK_LENGTHS_GENERATION_MAX = 16_384;
/** Bytes of chunks one group may read from the store to check "c" entries whose length it does not know. */
const CHUNK_READ_BUDGET_BYTES = 4 * 1024 * 1024;

export interface IngestMarkReport {
  /** Tree and file nodes in the group. */
  nodes: number;
  /** Of them, marked complete. */
  marked: number;
}

export class IngestMarks {
  /**
   * Lengths of stored chunks that are no structured object, by hex id (newer generation first).
   * Only a gc deletes objects, and it forgets them all, as does a quarantine: what is here was
   * stored and still is.
   */
  private chunkLengths = new Map<string, number>();
  private olderChunkLengths = new Map<string, number>();
  /** Bumped by every quarantine: a group checked across one writes nothing. */
  private epoch = 0;
  private paused = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Totals since the node started, for the benchmarks and tests. */
  readonly totals = { nodes: 0, marked: 0 };

  constructor(
    private readonly store: Pick<NodeStore, "hasMany" | "getMany">,
    private readonly metadata: Pick<MetadataStore, "completeSummaries" | "markComplete" | "unmarkAllComplete">,
    /** Resolves once the last drop of every mark a quarantine started is done. */
    private readonly marksSettled: () => Promise<void>,
  ) {}

  /** Called (synchronously) when objects are quarantined, before the marks are dropped. */
  forgetAll(): void {
    this.epoch += 1;
    this.forgetChunkLengths();
  }

  private forgetChunkLengths(): void {
    this.chunkLengths = new Map();
    this.olderChunkLengths = new Map();
  }

  /**
   * Runs `task` (gc) with no ingest marking in flight or started meanwhile; the chunk lengths
   * known are forgotten once it ends, since it may have deleted some of those chunks.
   */
  async pauseWhile<T>(task: () => Promise<T>): Promise<T> {
    this.paused += 1;
    try {
      await Promise.allSettled([...this.inFlight]);
      return await task();
    } finally {
      this.forgetChunkLengths();
      this.paused -= 1;
    }
  }

  /** Lengths of chunks known stored and no structured object, for the checks (undefined: not known). */
  async knownChunkLengths(ids: readonly ObjectId[]): Promise<(number | undefined)[]> {
    return ids.map((id) => {
      const key = idToHex(id);
      return this.chunkLengths.get(key) ?? this.olderChunkLengths.get(key);
    });
  }

  /**
   * Marks what it can of a group the store has just acknowledged (durable). Never throws: a
   * mark not made here is made by the commit's check.
   */
  async markStored(objects: readonly StoredObject[]): Promise<IngestMarkReport> {
    if (this.paused > 0) return { nodes: 0, marked: 0 };
    const run = this.mark(objects).catch((error: unknown) => {
      console.error("dsync: marking uploaded objects complete failed (the commit checks them):", error);
      return { nodes: 0, marked: 0 };
    });
    this.inFlight.add(run);
    try {
      const report = await run;
      this.totals.nodes += report.nodes;
      this.totals.marked += report.marked;
      return report;
    } finally {
      this.inFlight.delete(run);
    }
  }

  private remember(key: string, lengthBytes: number): void {
    if (this.chunkLengths.size >= CHUNK_LENGTHS_GENERATION_MAX) {
      this.olderChunkLengths = this.chunkLengths;
      this.chunkLengths = new Map();
    }
    this.chunkLengths.set(key, lengthBytes);
  }

  private async mark(objects: readonly StoredObject[]): Promise<IngestMarkReport> {
    const epoch = this.epoch;
    await this.marksSettled();
    const nodes: (StoredObject & { object: StructuredObject })[] = [];
    for (const stored of objects) {
      const object = decodeIfObject(stored.bytes);
      if (object === undefined) this.remember(idToHex(stored.id), stored.bytes.length);
      else if (object.kind !== "version") nodes.push({ ...stored, object });
    }
    if (nodes.length === 0 || epoch !== this.epoch) return { nodes: nodes.length, marked: 0 };

    /** What this group established so far, found by the nodes after it. */
    const established = new Map<string, NodeSummary>();
    const toMark: CheckedNode[] = [];
    let readBudgetBytes = CHUNK_READ_BUDGET_BYTES;
    const knownMany = async (ids: readonly ObjectId[]): Promise<(NodeSummary | undefined)[]> => {
      const answers = ids.map((id) => established.get(idToHex(id)));
      const asked = ids.filter((_, i) => answers[i] === undefined);
      if (asked.length === 0) return answers;
      const stored = await this.metadata.completeSummaries(asked);
      let next = 0;
      return answers.map((answer) => answer ?? stored[next++]);
    };
    for (const node of nodes) {
      const object = node.object;
      if (object.kind === "version") continue;
      // The chunks this node names by "c" entries: the only objects besides itself its check may read.
      const namedChunks = new Set<string>();
      if (object.kind === "tree" && isTreeLeaf(object)) for (const entry of object.entries) if (entry.idNamesChunk) namedChunks.add(idToHex(entry.id!));
      const nodeId = node.id;
      try {
        const report = await checkTreeStructure(
          nodeId,
          {
            getMany: async (ids) => {
              const answers: (Uint8Array | undefined)[] = ids.map((id) => (idEquals(id, nodeId) ? node.bytes : undefined));
              // One at a time, so a lie about a chunk's size costs at most one object past the budget.
              for (let i = 0; i < ids.length && readBudgetBytes > 0; i++) {
                if (answers[i] !== undefined || !namedChunks.has(idToHex(ids[i]!))) continue;
                const bytes = (await this.store.getMany([ids[i]!]))[0];
                if (bytes !== undefined) readBudgetBytes -= bytes.length;
                answers[i] = bytes;
              }
              return answers;
            },
            hasMany: (ids) => this.store.hasMany(ids),
            decode: (bytes) => (bytes === node.bytes ? object : decodeObject(bytes)),
            known: async (id) => (await knownMany([id]))[0],
            knownMany,
            chunkLengths: (ids) => this.knownChunkLengths(ids),
            record: (checked) => {
              for (const done of checked) {
                established.set(idToHex(done.id), done.summary);
                toMark.push(done);
              }
            },
          },
          "node",
        );
        // Something below is not here yet (or not known to be): unmarked, for the commit to check.
        if (report.missing.length > 0) continue;
      } catch (error) {
        if (error instanceof TreeStructureError) continue;
        throw error;
      }
    }
    if (toMark.length === 0) return { nodes: nodes.length, marked: 0 };
    // A quarantine since the group was checked may have dropped a mark it rests on. The store's
    // epoch is read and the marks written in one step for SQLite (no await between them).
    if (epoch !== this.epoch) return { nodes: nodes.length, marked: 0 };
    await this.metadata.markComplete(toMark);
    // An asynchronous store (PostgreSQL) may have written them after a quarantine's drop: drop again.
    if (epoch !== this.epoch) await this.metadata.unmarkAllComplete();
    return { nodes: nodes.length, marked: toMark.length };
  }
}
