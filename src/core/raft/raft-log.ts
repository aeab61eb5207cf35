// One member's log as the state machine sees it: the snapshot boundary (the last compacted
// index and its term), the entries after it, how far they are committed, handed out to apply
// and applied, and how far they have been handed to the driver to persist. Everything is in
// memory; the driver's store holds the same entries once it has persisted a Ready.
import type { Entry, Snapshot } from "./types.ts";

export class RaftLog {
  /** The last index the snapshot covers (0: never compacted) and that entry's term. */
  snapshotIndex = 0;
  snapshotTerm = 0;
  /** The entries after snapshotIndex, without gaps: entries[i].index === snapshotIndex + 1 + i. */
  private entries: Entry[] = [];
  /** The highest index known committed. */
  committed = 0;
  /** The highest index handed out in Ready.committedEntries (or covered by a handed-out snapshot). */
  applying = 0;
  /** The highest index the driver said it applied (advance). */
  applied = 0;
  /** The first index not yet handed to the driver to persist. */
  unstableFrom = 1;
  /** A snapshot received from a leader, not yet handed to the driver. */
  pendingSnapshot: Snapshot | undefined;
  /** The latest snapshot kept (sent to followers whose next entry is compacted away). */
  latestSnapshot: Snapshot | undefined;

  /** A log loaded from the driver's store: all of it is stable. */
  static restore(snapshot: Snapshot | undefined, entries: Entry[], commit: number, applied: number): RaftLog {
    const log = new RaftLog();
    if (snapshot) {
      log.snapshotIndex = snapshot.meta.index;
      log.snapshotTerm = snapshot.meta.term;
      log.latestSnapshot = snapshot;
    }
    let expected = log.snapshotIndex + 1;
    for (const entry of entries) {
      if (entry.index !== expected) throw new RangeError(`persisted raft log has a gap: entry ${entry.index} where ${expected} was expected`);
      expected++;
    }
    log.entries = entries.slice();
    log.unstableFrom = log.lastIndex() + 1;
    log.applied = Math.max(applied, log.snapshotIndex);
    log.applying = log.applied;
    log.committed = Math.min(Math.max(commit, log.applied), log.lastIndex());
    if (log.applied > log.committed) throw new RangeError(`persisted raft state applied ${log.applied} past the log's last index ${log.lastIndex()}`);
    return log;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex())!;
  }

  /** The term of the entry at `index`; undefined when compacted away or past the end. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** Entries in [from, to] (at most `max`); undefined when `from` is compacted away. */
  slice(from: number, to: number, max = Number.POSITIVE_INFINITY): Entry[] | undefined {
    if (from <= this.snapshotIndex) return undefined;
    const end = Math.min(to, this.lastIndex(), from + max - 1);
    if (end < from) return [];
    return this.entries.slice(from - this.snapshotIndex - 1, end - this.snapshotIndex);
  }

  /** §5.4.1: whether a candidate's log (last index and term) is at least as up to date as this one. */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex());
  }

  /**
   * The largest index at or below `index` whose term is at most `term`, and its term (0 once
   * the walk reaches compacted entries). A follower answers a failed consistency check with it,
   * and the leader uses it to skip a whole term of conflicting entries at once.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let at = Math.min(index, this.lastIndex());
    for (;;) {
      const atTerm = this.term(at);
      if (atTerm === undefined) return { index: at, term: 0 };
      if (atTerm <= term) return { index: at, term: atTerm };
      at--;
    }
  }

  /**
   * §5.3: appends `entries` after (index, logTerm) if the log holds that entry. Entries already
   * present with the same term are kept; from the first conflicting one on, the log is replaced.
   * Returns the last index now known to match the leader's, or undefined when the consistency
   * check fails. Refuses (undefined) to replace a committed entry: no correct leader asks that.
   */
  maybeAppend(index: number, logTerm: number, entries: Entry[]): { lastNew: number; truncatedFrom: number } | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + entries.length;
    let conflict = 0;
    for (const entry of entries) {
      if (entry.index <= this.snapshotIndex) continue;
      if (!this.matchTerm(entry.index, entry.term)) {
        conflict = entry.index;
        break;
      }
    }
    if (conflict === 0) return { lastNew, truncatedFrom: 0 };
    if (conflict <= this.committed) return undefined;
    const truncatedFrom = conflict <= this.lastIndex() ? conflict : 0;
    this.append(entries.slice(conflict - entries[0]!.index));
    return { lastNew, truncatedFrom };
  }

  /** Appends entries starting at entries[0].index, dropping whatever the log held from there on. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.committed || first > this.lastIndex() + 1) throw new RangeError(`raft log append at ${first} (committed ${this.committed}, last ${this.lastIndex()})`);
    this.entries.length = first - this.snapshotIndex - 1;
    for (const entry of entries) this.entries.push(entry);
    if (first < this.unstableFrom) this.unstableFrom = first;
  }

  /** Commit only moves forward, and never past what the log holds. */
  commitTo(index: number): boolean {
    const to = Math.min(index, this.lastIndex());
    if (to <= this.committed) return false;
    this.committed = to;
    return true;
  }

  /** A leader's snapshot newer than anything here replaces the whole log. */
  installSnapshot(snapshot: Snapshot): void {
    this.snapshotIndex = snapshot.meta.index;
    this.snapshotTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.applying = Math.max(this.applying, snapshot.meta.index);
    this.unstableFrom = snapshot.meta.index + 1;
    this.pendingSnapshot = snapshot;
    this.latestSnapshot = snapshot;
  }

  /** The application's snapshot at `snapshot.meta.index` (≤ applied) replaces the entries it covers. */
  compact(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = snapshot.meta.term;
    this.latestSnapshot = snapshot;
  }

  unstableEntries(): Entry[] {
    return this.entries.slice(Math.max(0, this.unstableFrom - this.snapshotIndex - 1));
  }

  /** Committed entries not yet handed out to apply. */
  nextCommittedEntries(): Entry[] {
    if (this.committed <= this.applying) return [];
    return this.slice(this.applying + 1, this.committed) ?? [];
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applying;
  }
}
