// Raft's safety properties, checked after every trace command, so a golden output can never
// quietly record a violation: each one is printed in the output and fails the test whatever the
// recorded output says.
//
// - Election safety (§5.2): at most one leader per term, over every running member's status.
// - Durable state goes forward (Figure 2): a member's persisted term and commit index never
//   decrease, and its persisted vote never changes within a term.
// - State machine safety (§5.4.3): members apply entries in index order without gaps, and no
//   two members apply different entries at the same index.

import type { Entry, HardState } from "../../../../src/core/raft/types.ts";

function describeEntry(entry: Entry): string {
  return `${entry.term}/${entry.index} ${entry.kind} ${Buffer.from(entry.data).toString("hex")}`;
}

export class SafetyChecks {
  private readonly leaderOfTerm = new Map<number, string>();
  /** index -> the entry first applied there, by whom. */
  private readonly applied = new Map<number, { entry: string; by: string }>();
  private pending: string[] = [];

  /** Violations found since the last call. */
  take(): string[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  private violation(text: string): void {
    this.pending.push(`SAFETY VIOLATION: ${text}`);
  }

  leaderSeen(member: string, term: number): void {
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) this.leaderOfTerm.set(term, member);
    else if (known !== member) this.violation(`two leaders in term ${term}: ${known} and ${member}`);
  }

  persisted(member: string, before: HardState, after: HardState): void {
    if (after.term < before.term) this.violation(`${member}'s durable term went back from ${before.term} to ${after.term}`);
    if (after.commit < before.commit) {
      this.violation(`${member}'s durable commit went back from ${before.commit} to ${after.commit}`);
    }
    if (after.term === before.term && before.vote !== null && after.vote !== before.vote) {
      this.violation(`${member} changed its vote in term ${after.term} from ${before.vote} to ${after.vote ?? "none"}`);
    }
  }

  /** A snapshot replaced the state up to `index`: what it covers counts as applied there. */
  snapshotApplied(member: string, appliedBefore: number, index: number): void {
    if (index < appliedBefore) this.violation(`${member} applied a snapshot at ${index}, behind its applied index ${appliedBefore}`);
  }

  entryApplied(member: string, appliedBefore: number, entry: Entry): void {
    if (entry.index !== appliedBefore + 1) {
      this.violation(`${member} applied index ${entry.index} after ${appliedBefore} (not the next one)`);
    }
    const text = describeEntry(entry);
    const first = this.applied.get(entry.index);
    if (first === undefined) this.applied.set(entry.index, { entry: text, by: member });
    else if (first.entry !== text) {
      this.violation(`${member} applied ${text} at index ${entry.index}, where ${first.by} applied ${first.entry}`);
    }
  }
}
