// What one saveRaft or compactRaft does to the stored Raft log, worked out before anything is
// written from a few facts about what is stored, so the SQLite and PostgreSQL stores refuse the
// same calls and change the same rows. Pure: the stores read the facts inside their transaction
// and carry out the plan in the same one.
import type { ClusterConfig, Entry, HardState, Snapshot } from "../core/raft/types.ts";
import { RAFT_SAVE_LIMITS, RaftStorageError, type RaftSave } from "./metadata-records.ts";

/** What a store knows of its log, read inside the transaction that will carry out the plan. */
export interface RaftLogFacts {
  /** The kept snapshot's index and term, if any. */
  snapshot: { index: number; term: number } | undefined;
  /** The last index held: the last entry's, else the snapshot's, else 0. */
  lastIndex: number;
  /** The stored hard state's term, if any was stored. */
  hardTerm: number | undefined;
  /** The term of the stored entry at `index` (entries only, not the snapshot), or undefined. */
  termAt(index: number): number | undefined;
}

export interface RaftSavePlan {
  snapshot?: Snapshot;
  /** Delete every stored entry (the snapshot is newer than the log). */
  dropAllEntries: boolean;
  /** Delete the stored entries at or below this index (0: none). */
  dropEntriesThrough: number;
  /** Delete the stored entries from this index on before inserting `entries` (0: none). */
  replaceFrom: number;
  entries: Entry[];
  hardState?: HardState;
  bootstrapConfig?: ClusterConfig | null;
}

/** The indexes whose terms planRaftSave may ask of facts.termAt, for a save that passed validateRaftSave: the store reads just these. */
export function raftSaveLookups(save: RaftSave): number[] {
  const out: number[] = [];
  if (save.snapshot) out.push(save.snapshot.meta.index);
  const first = save.entries?.[0];
  if (first && first.index > 1) out.push(first.index - 1);
  return out;
}

/**
 * In this order: the snapshot replaces every entry at or below its index (every entry, when the
 * log does not hold its index with its term); the entries replace every stored entry from their
 * first index on, and must follow the last index kept without a gap (entries the snapshot
 * covers are committed and dropped from the save); the hard state replaces the stored one.
 * Throws RaftStorageError for a call that breaks a rule; the store then changes nothing.
 */
export function planRaftSave(save: RaftSave, facts: RaftLogFacts): RaftSavePlan {
  validateRaftSave(save);
  let snapIndex = facts.snapshot?.index ?? 0;
  let snapTerm = facts.snapshot?.term ?? 0;
  let last = facts.lastIndex;
  const plan: RaftSavePlan = { dropAllEntries: false, dropEntriesThrough: 0, replaceFrom: 0, entries: [] };

  if (save.snapshot) {
    const { index, term } = save.snapshot.meta;
    if (index < snapIndex) throw new RaftStorageError("older snapshot", `a snapshot at ${index} is older than the one kept at ${snapIndex}`);
    const heldTerm = index === snapIndex ? snapTerm : facts.termAt(index);
    if (index <= last && heldTerm === term) {
      plan.dropEntriesThrough = index;
    } else {
      plan.dropAllEntries = true;
      last = index;
    }
    snapIndex = index;
    snapTerm = term;
    plan.snapshot = save.snapshot;
  }

  const entries = (save.entries ?? []).filter((e) => e.index > snapIndex);
  if (entries.length > 0) {
    const first = entries[0]!.index;
    if (first > last + 1) throw new RaftStorageError("gap", `entries from ${first} do not follow the last index kept, ${last}`);
    const before = first - 1;
    const termBefore = before === snapIndex ? snapTerm : before === 0 ? 0 : facts.termAt(before);
    if (termBefore === undefined) throw new RaftStorageError("gap", `no entry kept at ${before}, before the entries from ${first}`);
    if (entries[0]!.term < termBefore) throw new RaftStorageError("term went back", `entry ${first} has term ${entries[0]!.term}, below the term ${termBefore} of entry ${before}`);
    plan.replaceFrom = first;
    plan.entries = entries;
    last = entries.at(-1)!.index;
  }

  if (save.hardState) {
    const { term, commit } = save.hardState;
    if (facts.hardTerm !== undefined && term < facts.hardTerm) throw new RaftStorageError("term went back", `hard state term ${term} is below the stored ${facts.hardTerm}`);
    if (commit > last) throw new RaftStorageError("order", `commit index ${commit} is past the last index kept, ${last}`);
    plan.hardState = { term, vote: save.hardState.vote, commit };
  }
  if (save.bootstrapConfig !== undefined) plan.bootstrapConfig = save.bootstrapConfig;
  return plan;
}

/**
 * compactRaft's rules: the application's snapshot must be at an index the log holds with that
 * term (or the kept snapshot's own), and not older than the kept snapshot. Throws RaftStorageError.
 */
export function checkCompaction(snapshot: Snapshot, facts: RaftLogFacts): void {
  validateCompaction(snapshot);
  const kept = facts.snapshot?.index ?? 0;
  const { index, term } = snapshot.meta;
  if (index < kept) throw new RaftStorageError("older snapshot", `a snapshot at ${index} is older than the one kept at ${kept}`);
  const held = index === kept ? facts.snapshot!.term : facts.termAt(index);
  if (held !== term) throw new RaftStorageError("not in log", `the log does not hold index ${index} with term ${term}`);
}

const isIndex = (n: unknown, min: number): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= min;

/** How long a member id may be (node ids are 16 hex digits; the bound only keeps rows small). */
const MEMBER_ID_MAX_CHARS = 256;
/** Voters in one configuration, at most. */
const VOTERS_MAX = 1024;

function malformed(detail: string): never {
  throw new RaftStorageError("malformed", detail);
}

function checkBytes(bytes: number): void {
  if (bytes > RAFT_SAVE_LIMITS.maxBytes) throw new RaftStorageError("too large", `${bytes} bytes in one call, above ${RAFT_SAVE_LIMITS.maxBytes}`);
}

export function validateConfig(config: ClusterConfig, what: string): void {
  if (typeof config !== "object" || config === null || !Array.isArray(config.voters)) malformed(`${what} has no voters list`);
  if (config.voters.length > VOTERS_MAX) malformed(`${what} has ${config.voters.length} voters, above ${VOTERS_MAX}`);
  config.voters.forEach((id, i) => {
    if (typeof id !== "string" || id.length === 0 || id.length > MEMBER_ID_MAX_CHARS) malformed(`${what} voter ${i} is not a member id`);
    if (i > 0 && !(config.voters[i - 1]! < id)) malformed(`${what} voters are not sorted without duplicates`);
  });
}

function validateSnapshot(snapshot: Snapshot): void {
  if (!isIndex(snapshot.meta?.index, 1) || !isIndex(snapshot.meta.term, 1)) malformed("snapshot index and term must be positive safe integers");
  validateConfig(snapshot.meta.config, "snapshot config");
  if (!(snapshot.data instanceof Uint8Array)) malformed("snapshot data is not bytes");
}

/** compactRaft's argument alone, before anything is read: a snapshot of the right shape, within the bounds. */
export function validateCompaction(snapshot: Snapshot): void {
  validateSnapshot(snapshot);
  checkBytes(snapshot.data.byteLength);
}

/** A save's shape and bounds, before anything is read (planRaftSave checks it again; it costs a pass over the entries). */
export function validateRaftSave(save: RaftSave): void {
  const entries = save.entries ?? [];
  if (entries.length > RAFT_SAVE_LIMITS.maxEntries) throw new RaftStorageError("too large", `${entries.length} entries in one call, above ${RAFT_SAVE_LIMITS.maxEntries}`);
  let bytes = 0;
  entries.forEach((e, i) => {
    if (!isIndex(e.index, 1) || !isIndex(e.term, 1)) malformed(`entry ${i}: index and term must be positive safe integers`);
    if (e.kind !== "normal" && e.kind !== "config") malformed(`entry ${e.index}: kind ${JSON.stringify(e.kind)}`);
    if (!(e.data instanceof Uint8Array)) malformed(`entry ${e.index}: data is not bytes`);
    bytes += e.data.byteLength;
    if (i > 0) {
      const prev = entries[i - 1]!;
      if (e.index !== prev.index + 1) throw new RaftStorageError("order", `entry ${e.index} follows entry ${prev.index}`);
      if (e.term < prev.term) throw new RaftStorageError("term went back", `entry ${e.index} has term ${e.term}, below ${prev.term} before it`);
    }
  });
  if (save.snapshot) {
    validateSnapshot(save.snapshot);
    bytes += save.snapshot.data.byteLength;
  }
  checkBytes(bytes);
  if (save.hardState) {
    const { term, vote, commit } = save.hardState;
    if (!isIndex(term, 0) || !isIndex(commit, 0)) malformed("hard state term and commit must be non-negative safe integers");
    if (vote !== null && (typeof vote !== "string" || vote.length === 0 || vote.length > MEMBER_ID_MAX_CHARS)) malformed("hard state vote is not a member id");
  }
  if (save.bootstrapConfig !== undefined && save.bootstrapConfig !== null) validateConfig(save.bootstrapConfig, "bootstrap config");
}

/** What a store's integrity check reads of its Raft tables (one aggregate each). */
export interface RaftLogCounts {
  entries: number;
  /** Lowest and highest entry index (null without entries). */
  minIndex: number | null;
  maxIndex: number | null;
  /** The kept snapshot's index, or null. */
  snapshotIndex: number | null;
  /** Entries whose term is below the entry before them. */
  termDrops: number;
  /** Whether the raft_state row exists. */
  hasState: boolean;
  /** The stored commit index (0 without state). */
  commit: number;
}

/**
 * What the Raft tables say against the rules every save kept (entries after the snapshot
 * without a gap, terms not decreasing, commit within the log, a state row beside any entry),
 * in words for `dsync verify`; empty when nothing contradicts them.
 */
export function raftLogProblems(counts: RaftLogCounts): string[] {
  const problems: string[] = [];
  const after = counts.snapshotIndex ?? 0;
  if (counts.entries > 0) {
    if (!counts.hasState) problems.push("the Raft log has entries but no hard state");
    if (counts.maxIndex! - counts.minIndex! + 1 !== counts.entries) problems.push(`the Raft log has gaps (${counts.entries} entries from ${counts.minIndex} to ${counts.maxIndex})`);
    if (counts.minIndex !== after + 1) problems.push(`the Raft log starts at ${counts.minIndex}, not right after ${after === 0 ? "the start" : `its snapshot at ${after}`}`);
  } else if (counts.snapshotIndex !== null && !counts.hasState) {
    problems.push("the Raft snapshot has no hard state beside it");
  }
  if (counts.termDrops > 0) problems.push(`${counts.termDrops} Raft entr${counts.termDrops === 1 ? "y has a term" : "ies have terms"} below the entry before`);
  const last = counts.maxIndex ?? after;
  if (counts.commit > last) problems.push(`the Raft commit index ${counts.commit} is past the last index kept, ${last}`);
  return problems;
}
