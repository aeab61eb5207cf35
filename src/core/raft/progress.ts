// Where replication to one follower stands, as its leader sees it (etcd's Progress): the highest
// index known replicated (match), the next index to send, and how to send:
// - probe: one append at a time, waiting for its answer, until the follower's log is found to
//   match (§5.3's consistency check walks `next` back, helped by the follower's reject hint);
// - replicate: appends streamed optimistically, at most `maxInflightAppends` unanswered;
// - snapshot: a snapshot is on its way; nothing else is sent until it is answered or reported.
import type { FollowerProgress } from "./types.ts";

export type ProgressState = FollowerProgress["state"];

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** probe: an append was sent and not yet answered. */
  probeSent = false;
  /** snapshot: the index of the snapshot in flight. */
  pendingSnapshot = 0;
  /** snapshot: election timeouts passed since it was sent. */
  snapshotTimeouts = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false;
  /** replicate: the last index of each append in flight, oldest first. */
  private inflight: number[] = [];

  constructor(next: number, private readonly maxInflight: number) {
    this.next = Math.max(1, next);
  }

  /** Whether nothing more may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe": return this.probeSent;
      case "replicate": return this.inflight.length >= this.maxInflight;
      case "snapshot": return true;
    }
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot's index.
    this.next = this.state === "snapshot" ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.state = "probe";
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  becomeSnapshot(index: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = index;
    this.snapshotTimeouts = 0;
    this.probeSent = false;
    this.inflight = [];
  }

  /**
   * An election timeout passed. A snapshot neither answered nor reported (reportSnapshot) for two
   * of them is taken as lost: back to probing, which sends it again. Without this, one lost
   * snapshot whose failure the driver did not see would stop replication to the follower for good.
   */
  electionTimeoutPassed(): void {
    if (this.state !== "snapshot") return;
    if (++this.snapshotTimeouts < 2) return;
    this.pendingSnapshot = 0;
    this.becomeProbe();
  }

  /** An append up to `lastIndex` was sent. */
  sentAppend(entryCount: number, lastIndex: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** The follower accepted up to `index`; false when that is old news. */
  maybeUpdate(index: number): boolean {
    this.probeSent = false;
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    // Appends ending at or below what it now holds are answered.
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    return true;
  }

  /**
   * The follower rejected an append whose previous index was `rejected`; `matchHint` is where
   * its log may match ours. False when the rejection is stale (an answer to an older append).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** A heartbeat was answered: the follower is alive, so let one more append through. */
  heartbeatAnswered(): void {
    this.probeSent = false;
    if (this.state === "replicate" && this.inflight.length >= this.maxInflight) this.inflight.shift();
  }

  inflightCount(): number {
    return this.inflight.length;
  }

  view(): FollowerProgress {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive };
  }
}
