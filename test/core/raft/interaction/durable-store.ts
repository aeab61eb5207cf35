// What one trace member's driver has made durable: hard state, the latest snapshot, the log
// after it, the applied index, and the application's state (the commands applied, in order).
// It is written only the way a driver writes it (persist a Ready, apply it, keep a compaction),
// and it is all a crashed member comes back with.

import {
  EMPTY_HARD_STATE,
  type ClusterConfig,
  type Entry,
  type HardState,
  type PersistedRaft,
  type Ready,
  type Snapshot,
} from "../../../../src/core/raft/types.ts";

/** One applied application command and the index it was applied at. */
export interface AppliedCommand {
  index: number;
  command: string;
}

export class DurableStore {
  hardState: HardState = { ...EMPTY_HARD_STATE };
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  applied = 0;
  /** The application's state: every non-empty normal entry applied, as text. */
  state: AppliedCommand[] = [];

  constructor(readonly bootstrapConfig: ClusterConfig) {}

  /** Step one of a Ready: snapshot, entries (replacing from the first new index on), hard state. */
  persist(ready: Ready): void {
    if (ready.snapshot) {
      const snap = ready.snapshot;
      // Log matching: if the stored entry at the snapshot's index has its term, the entries after
      // it agree with the leader's log and stay; otherwise the whole log is replaced.
      const at = this.entries.find((e) => e.index === snap.meta.index);
      this.entries = at !== undefined && at.term === snap.meta.term
        ? this.entries.filter((e) => e.index > snap.meta.index)
        : [];
      this.snapshot = clone(snap);
    }
    if (ready.entries.length > 0) {
      const first = ready.entries[0].index;
      this.entries = this.entries.filter((e) => e.index < first).concat(ready.entries.map(clone));
    }
    if (ready.hardState) this.hardState = { ...ready.hardState };
  }

  /** Step three of a Ready: the snapshot replaces the state, then committed entries are applied. */
  apply(ready: Ready): void {
    if (ready.snapshot) {
      this.state = decodeState(ready.snapshot);
      this.applied = ready.snapshot.meta.index;
    }
    for (const entry of ready.committedEntries) {
      if (entry.kind === "normal" && entry.data.length > 0) {
        this.state.push({ index: entry.index, command: new TextDecoder().decode(entry.data) });
      }
      this.applied = entry.index;
    }
  }

  /** The application's state as of `index` (≤ applied), as snapshot data. */
  stateAt(index: number): Uint8Array {
    return encodeState(this.state.filter((c) => c.index <= index).map((c) => c.command));
  }

  /** Keeps a compaction: the snapshot replaces the entries it covers. */
  compacted(snapshot: Snapshot): void {
    this.snapshot = clone(snapshot);
    this.entries = this.entries.filter((e) => e.index > snapshot.meta.index);
  }

  /**
   * What a restart starts from. `config` is the bootstrap membership, as types.ts asks: the state
   * machine takes the snapshot's instead when there is one, and applies the log's config entries.
   */
  load(): PersistedRaft {
    return {
      hardState: { ...this.hardState },
      snapshot: this.snapshot ? clone(this.snapshot) : undefined,
      entries: this.entries.map(clone),
      config: clone(this.bootstrapConfig),
      applied: this.applied,
    };
  }
}

function encodeState(commands: string[]): Uint8Array {
  return new TextEncoder().encode(commands.join(","));
}

function decodeState(snapshot: Snapshot): AppliedCommand[] {
  const text = new TextDecoder().decode(snapshot.data);
  if (text === "") return [];
  return text.split(",").map((command) => ({ index: snapshot.meta.index, command }));
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}
