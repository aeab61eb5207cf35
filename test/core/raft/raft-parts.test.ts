// The Raft state machine's parts on their own: majorities (quorum.ts), the log (raft-log.ts) and
// a follower's progress (progress.ts), as tables.
import { describe, expect, test } from "bun:test";
import { Progress } from "../../../src/core/raft/progress.ts";
import { committedIndex, quorumSize, tallyVotes } from "../../../src/core/raft/quorum.ts";
import { RaftLog } from "../../../src/core/raft/raft-log.ts";
import { entry } from "./raft-network.ts";

describe("quorum", () => {
  test("a majority is more than half; no voters is never a quorum", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorumSize)).toEqual([1, 2, 2, 3, 3, 4, 4]);
    expect(quorumSize(0)).toBe(Number.POSITIVE_INFINITY);
  });

  const rows: { matches: number[]; committed: number }[] = [
    { matches: [5], committed: 5 },
    { matches: [5, 3], committed: 3 },
    { matches: [5, 3, 1], committed: 3 },
    { matches: [5, 5, 1, 1], committed: 1 },
    { matches: [5, 5, 5, 1], committed: 5 },
    { matches: [9, 7, 5, 3, 1], committed: 5 },
    { matches: [], committed: 0 },
  ];
  for (const row of rows) {
    test(`matches ${JSON.stringify(row.matches)}: a majority holds ${row.committed}`, () => {
      const voters = row.matches.map((_, i) => String(i + 1));
      expect(committedIndex({ voters }, (id) => row.matches[Number(id) - 1]!)).toBe(row.committed);
    });
  }

  test("votes: won at a majority of grants, lost once a majority is out of reach, pending otherwise; non-voters do not count", () => {
    const config = { voters: ["1", "2", "3", "4", "5"] };
    const tally = (votes: Record<string, boolean>) => tallyVotes(config, new Map(Object.entries(votes))).outcome;
    expect(tally({ "1": true, "2": true, "3": true })).toBe("won");
    expect(tally({ "1": true, "2": true })).toBe("pending");
    expect(tally({ "1": true, "2": false, "3": false, "4": false })).toBe("lost");
    expect(tally({ "1": true, "2": false, "3": false })).toBe("pending");
    expect(tally({ "1": true, "2": true, "9": true, "8": true })).toBe("pending");
  });
});

describe("raft log", () => {
  const log = (...terms: number[]) => RaftLog.restore(undefined, terms.map((t, i) => entry(i + 1, t)), 0, 0);

  test("term lookup at the snapshot boundary, inside, before and past the log", () => {
    const l = RaftLog.restore({ meta: { index: 3, term: 2, config: { voters: [] } }, data: new Uint8Array() }, [entry(4, 2), entry(5, 3)], 3, 3);
    expect([2, 3, 4, 5, 6].map((i) => l.term(i))).toEqual([undefined, 2, 2, 3, undefined]);
    expect(l.slice(3, 5)).toBeUndefined();
    expect(l.slice(4, 5)!.map((e) => e.index)).toEqual([4, 5]);
    expect(l.slice(4, 5, 1)!.map((e) => e.index)).toEqual([4]);
  });

  test("findConflictByTerm: the last index at or below the given one whose term is at most the given term", () => {
    const l = log(1, 1, 2, 3, 3, 3, 5);
    expect(l.findConflictByTerm(7, 4)).toEqual({ index: 6, term: 3 });
    expect(l.findConflictByTerm(7, 2)).toEqual({ index: 3, term: 2 });
    expect(l.findConflictByTerm(5, 1)).toEqual({ index: 2, term: 1 });
    expect(l.findConflictByTerm(9, 9)).toEqual({ index: 7, term: 5 });
    expect(l.findConflictByTerm(4, 0)).toEqual({ index: 0, term: 0 });
  });

  test("maybeAppend keeps matching entries, truncates from the first conflict, refuses a failed check or a committed entry", () => {
    const l = log(1, 1, 2, 2);
    expect(l.maybeAppend(1, 1, [entry(2, 1), entry(3, 2)])).toEqual({ lastNew: 3, truncatedFrom: 0 });
    expect(l.lastIndex()).toBe(4); // an append that is a prefix truncates nothing
    expect(l.maybeAppend(2, 1, [entry(3, 3)])).toEqual({ lastNew: 3, truncatedFrom: 3 });
    expect(l.lastIndex()).toBe(3);
    expect(l.term(3)).toBe(3);
    expect(l.unstableFrom).toBe(3);
    expect(l.maybeAppend(3, 2, [entry(4, 3)])).toBeUndefined();
    l.commitTo(3);
    expect(l.maybeAppend(1, 1, [entry(2, 4)])).toBeUndefined();
    expect(l.term(2)).toBe(1);
  });

  test("commit only moves forward and never past the last index", () => {
    const l = log(1, 1);
    expect(l.commitTo(5)).toBe(true);
    expect(l.committed).toBe(2);
    expect(l.commitTo(1)).toBe(false);
    expect(l.committed).toBe(2);
  });

  test("a persisted log with a gap, or applied past its end, is refused", () => {
    expect(() => RaftLog.restore(undefined, [entry(1, 1), entry(3, 1)], 0, 0)).toThrow(RangeError);
    expect(() => RaftLog.restore(undefined, [entry(2, 1)], 0, 0)).toThrow(RangeError);
    expect(() => RaftLog.restore(undefined, [entry(1, 1)], 1, 2)).toThrow(RangeError);
  });
});

describe("progress", () => {
  test("probe: one append in flight; an answer unpauses; a stale rejection changes nothing", () => {
    const pr = new Progress(6, 2);
    pr.sentAppend(1, 6);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeDecrTo(3, 0)).toBe(false); // not an answer to the append in flight (prev 5)
    expect(pr.maybeDecrTo(5, 2)).toBe(true);
    expect(pr.next).toBe(3);
    expect(pr.isPaused()).toBe(false);
  });

  test("replicate: at most maxInflight appends unanswered; answers free the window in order; a heartbeat answer frees one", () => {
    const pr = new Progress(1, 2);
    pr.maybeUpdate(0);
    pr.becomeReplicate();
    pr.sentAppend(2, 2);
    pr.sentAppend(2, 4);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(5);
    pr.maybeUpdate(2);
    expect(pr.inflightCount()).toBe(1);
    expect(pr.isPaused()).toBe(false);
    pr.sentAppend(1, 5);
    expect(pr.isPaused()).toBe(true);
    pr.heartbeatAnswered();
    expect(pr.isPaused()).toBe(false);
    // A rejection above match sends it back to match+1.
    expect(pr.maybeDecrTo(4, 0)).toBe(true);
    expect(pr.next).toBe(3);
    expect(pr.maybeDecrTo(1, 0)).toBe(false);
  });

  test("snapshot: paused until answered; back to probing after it, from past the snapshot", () => {
    const pr = new Progress(3, 2);
    pr.becomeSnapshot(10);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(11);
    pr.becomeSnapshot(10);
    pr.electionTimeoutPassed();
    expect(pr.state).toBe("snapshot");
    pr.electionTimeoutPassed();
    expect(pr.state).toBe("probe");
    expect(pr.next).toBe(1); // taken as lost: probe from what is known matched
  });
});
