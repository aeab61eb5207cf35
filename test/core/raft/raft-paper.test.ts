// The Raft state machine against the paper (Ongaro & Ousterhout 2014, "§5.x", "§7") and
// Ongaro's thesis ("thesis §x"): each test names the rule it checks. Members run in the
// in-memory network of raft-network.ts, whose driver persists every Ready before sending it
// and checks that no message goes out ahead of what it depends on.
import { describe, expect, test } from "bun:test";
import { DecodeError, encodeCanonical } from "../../../src/core/encoding.ts";
import { decodeConfigChange, decodeConfigEntry, encodeConfigEntry } from "../../../src/core/raft/config-change.ts";
import { Raft } from "../../../src/core/raft/raft.ts";
import { ProposalDroppedError, type Message, type RaftConfig } from "../../../src/core/raft/types.ts";
import { createPrng } from "../../helpers/prng.ts";
import { entry, message, Network, text } from "./raft-network.ts";

const IDS3 = ["1", "2", "3"];
const IDS5 = ["1", "2", "3", "4", "5"];

function elect(net: Network, id: string): void {
  net.raft(id).campaign();
  net.stabilize();
  expect(net.raft(id).status().role).toBe("leader");
}

function types(messages: Message[]): string[] {
  return messages.map((m) => `${m.from}->${m.to} ${m.type}${m.reject ? " reject" : ""}`);
}

describe("§5.2 leader election", () => {
  test("a follower that hears nothing for its election timeout becomes a candidate: term+1, votes for itself, asks every other voter", () => {
    const net = new Network(IDS3);
    net.timeout("1");
    const s = net.raft("1").status();
    expect(s.role).toBe("candidate");
    expect(s.term).toBe(1);
    expect(s.vote).toBe("1");
    const sent = net.takeMessages("1");
    expect(types(sent)).toEqual(["1->2 vote", "1->3 vote"]);
    expect(sent.every((m) => m.term === 1 && m.index === 0 && m.logTerm === 0)).toBe(true);
  });

  test("election timeouts are randomized in [electionTicks, 2*electionTicks)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const net = new Network(IDS3, { electionTicks: 10 }, seed);
      let ticks = 0;
      while (net.raft("1").status().role === "follower") {
        net.tick("1");
        ticks++;
        if (ticks > 100) throw new Error("never campaigned");
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    // Randomized: many different timeouts, not one fixed value.
    expect(seen.size).toBeGreaterThanOrEqual(8);
  });

  test("the timeout is drawn again for every election, from RaftConfig.randomInt", () => {
    const bounds: number[] = [];
    let next = 0;
    const config: RaftConfig = {
      id: "1", electionTicks: 5, heartbeatTicks: 1, preVote: false, checkQuorum: false,
      randomInt: (bound) => { bounds.push(bound); return [0, 4, 2][next++ % 3]!; },
      maxEntriesPerAppend: 10, maxInflightAppends: 4,
    };
    const raft = new Raft(config, { hardState: { term: 0, vote: null, commit: 0 }, entries: [], config: { voters: IDS3 }, applied: 0 });
    const fireAfter = (): number => {
      const term = raft.status().term;
      let ticks = 0;
      while (raft.status().term === term) { raft.tick(); ticks++; }
      return ticks;
    };
    expect(fireAfter()).toBe(5); // 5 + 0
    expect(fireAfter()).toBe(9); // 5 + 4, drawn when it became a candidate
    expect(fireAfter()).toBe(7); // 5 + 2
    expect(bounds.every((b) => b === 5)).toBe(true);
  });

  // etcd's TestLeaderElectionInOneRoundRPC, after §5.2: a candidate wins with votes from a
  // majority, loses when a majority refuses, and waits otherwise.
  const rounds: { size: number; votes: Record<string, boolean>; role: string }[] = [
    { size: 1, votes: {}, role: "leader" },
    { size: 3, votes: { "2": true, "3": true }, role: "leader" },
    { size: 3, votes: { "2": true }, role: "leader" },
    { size: 5, votes: { "2": true, "3": true, "4": true, "5": true }, role: "leader" },
    { size: 5, votes: { "2": true, "3": true, "4": true }, role: "leader" },
    { size: 5, votes: { "2": true, "3": true }, role: "leader" },
    { size: 3, votes: { "2": false, "3": false }, role: "follower" },
    { size: 5, votes: { "2": false, "3": false, "4": false, "5": false }, role: "follower" },
    { size: 5, votes: { "2": true, "3": false, "4": false, "5": false }, role: "follower" },
    { size: 3, votes: {}, role: "candidate" },
    { size: 5, votes: { "2": true }, role: "candidate" },
    { size: 5, votes: { "2": false, "3": false }, role: "candidate" },
    { size: 5, votes: {}, role: "candidate" },
  ];
  for (const [i, row] of rounds.entries()) {
    test(`one round of votes #${i}: ${row.size} voters, answers ${JSON.stringify(row.votes)} -> ${row.role}`, () => {
      const ids = IDS5.slice(0, row.size);
      const net = new Network(ids);
      net.raft("1").campaign();
      for (const [from, granted] of Object.entries(row.votes)) {
        net.deliver(message({ type: "voteResponse", from, to: "1", term: 1, reject: !granted }));
      }
      const s = net.raft("1").status();
      expect(s.role as string).toBe(row.role);
      expect(s.term).toBe(1);
    });
  }

  // etcd's TestFollowerVote: one vote per term, first come first served; the same candidate
  // asking again is answered yes again.
  const votes: { vote: string | null; candidate: string; granted: boolean }[] = [
    { vote: null, candidate: "2", granted: true },
    { vote: null, candidate: "3", granted: true },
    { vote: "2", candidate: "2", granted: true },
    { vote: "3", candidate: "3", granted: true },
    { vote: "2", candidate: "3", granted: false },
    { vote: "3", candidate: "2", granted: false },
  ];
  for (const row of votes) {
    test(`a follower that voted for ${row.vote} in the term is asked by ${row.candidate}: ${row.granted ? "granted" : "refused"}`, () => {
      const net = new Network(IDS3);
      net.load("1", { term: 1, vote: row.vote });
      net.deliver(message({ type: "vote", from: row.candidate, to: "1", term: 1 }));
      const [reply] = net.takeMessages("1");
      expect(reply!.type).toBe("voteResponse");
      expect(reply!.reject).toBe(!row.granted);
      expect(net.raft("1").status().vote).toBe(row.granted ? row.candidate : row.vote);
    });
  }

  test("a candidate that hears from a leader of its term (or a later one) becomes its follower", () => {
    for (const term of [1, 2]) {
      const net = new Network(IDS3);
      net.raft("1").campaign();
      net.takeMessages("1");
      net.deliver(message({ type: "append", from: "2", to: "1", term }));
      const s = net.raft("1").status();
      expect(s.role).toBe("follower");
      expect(s.term).toBe(term);
      expect(s.leader).toBe("2");
    }
  });

  test("a candidate ignores an append of an older term", () => {
    const net = new Network(IDS3);
    net.load("1", { term: 1 });
    net.raft("1").campaign(); // term 2
    net.takeMessages("1");
    net.deliver(message({ type: "append", from: "2", to: "1", term: 1 }));
    expect(net.raft("1").status().role).toBe("candidate");
    expect(net.raft("1").status().term).toBe(2);
  });

  test("a split vote: each candidate times out again and a later term elects one leader", () => {
    const net = new Network(IDS3, { electionTicks: 10 }, 7);
    // 1 and 2 campaign at once; 3 votes for 1, 2 votes for itself: no, each only votes for itself
    // when both requests cross; with 3 cut off neither wins.
    net.isolate("3");
    net.raft("1").campaign();
    net.raft("2").campaign();
    net.stabilize();
    expect(net.raft("1").status().role).toBe("candidate");
    expect(net.raft("2").status().role).toBe("candidate");
    net.heal();
    for (let i = 0; i < 100 && !net.leader(); i++) {
      for (const id of IDS3) net.tick(id);
      net.stabilize();
    }
    const leader = net.leader()!;
    expect(leader).toBeDefined();
    expect(leader.raft.status().term).toBeGreaterThanOrEqual(2);
    expect(IDS3.filter((id) => net.raft(id).status().role === "leader")).toEqual([leader.id]);
  });

  test("a leader of a term answers no vote request of that term, and steps down for a later term", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.deliver(message({ type: "vote", from: "2", to: "1", term: 1, index: 99, logTerm: 1 }));
    expect(net.takeMessages("1").map((m) => m.reject)).toEqual([true]);
    net.deliver(message({ type: "vote", from: "2", to: "1", term: 2, index: 99, logTerm: 1 }));
    expect(net.raft("1").status().role).toBe("follower");
    expect(net.raft("1").status().term).toBe(2);
  });

  test("a member not in its own config never campaigns, but follows a leader that appends to it", () => {
    const net = new Network(IDS3);
    net.addMember("4", { voters: [] }); // about to be added: it knows no membership
    for (let i = 0; i < 100; i++) net.tick("4");
    net.raft("4").campaign();
    expect(net.raft("4").status().role).toBe("follower");
    expect(net.takeMessages("4")).toEqual([]);
    net.deliver(message({ type: "append", from: "1", to: "4", term: 3, index: 0, logTerm: 0, entries: [entry(1, 3)], commit: 1 }));
    expect(net.raft("4").status()).toMatchObject({ role: "follower", term: 3, leader: "1", commit: 1, lastIndex: 1 });
    expect(net.takeMessages("4")).toMatchObject([{ type: "appendResponse", to: "1", index: 1, reject: false }]);
  });
});

describe("§5.4.1 election restriction", () => {
  // etcd's TestVoter: a vote goes only to a candidate whose log is at least as up to date
  // (later last term, or the same last term and at least as long).
  const rows: { log: [number, number][]; candidateTerm: number; candidateIndex: number; granted: boolean }[] = [
    { log: [[1, 1]], candidateTerm: 1, candidateIndex: 1, granted: true },
    { log: [[1, 1]], candidateTerm: 1, candidateIndex: 2, granted: true },
    { log: [[1, 1], [2, 1]], candidateTerm: 1, candidateIndex: 1, granted: false },
    { log: [[1, 1]], candidateTerm: 2, candidateIndex: 1, granted: true },
    { log: [[1, 1]], candidateTerm: 2, candidateIndex: 2, granted: true },
    { log: [[1, 1], [2, 1]], candidateTerm: 2, candidateIndex: 1, granted: true },
    { log: [[1, 2]], candidateTerm: 1, candidateIndex: 1, granted: false },
    { log: [[1, 2]], candidateTerm: 1, candidateIndex: 2, granted: false },
    { log: [[1, 1], [2, 2]], candidateTerm: 1, candidateIndex: 1, granted: false },
    { log: [[1, 1], [2, 2]], candidateTerm: 2, candidateIndex: 1, granted: false },
    { log: [[1, 1], [2, 2]], candidateTerm: 2, candidateIndex: 2, granted: true },
  ];
  for (const row of rows) {
    test(`log ${JSON.stringify(row.log)} asked by a candidate with last entry ${row.candidateIndex}/${row.candidateTerm}: ${row.granted ? "granted" : "refused"}`, () => {
      const net = new Network(IDS3);
      net.load("1", { entries: row.log.map(([index, term]) => entry(index, term)), term: 2 });
      net.deliver(message({ type: "vote", from: "2", to: "1", term: 3, index: row.candidateIndex, logTerm: row.candidateTerm }));
      const [reply] = net.takeMessages("1");
      expect(reply!.reject).toBe(!row.granted);
      expect(net.raft("1").status().vote).toBe(row.granted ? "2" : null);
      expect(net.raft("1").status().term).toBe(3);
    });
  }
});

describe("§5.3 log replication", () => {
  test("the leader appends a proposal, replicates it, commits it once a majority holds it, and followers learn the commit", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    const at = net.raft("1").propose(text("x"));
    expect(at).toEqual({ index: 2, term: 1 });
    net.stabilize();
    for (const id of IDS3) {
      expect(net.raft(id).status().commit).toBe(2);
      expect(net.get(id).store.appliedEntries.map((e) => [e.index, e.term, new TextDecoder().decode(e.data)])).toEqual([[1, 1, ""], [2, 1, "x"]]);
    }
  });

  test("a proposal commits with a majority even when one follower is down", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("3");
    net.raft("1").propose(text("x"));
    net.stabilize();
    expect(net.raft("1").status().commit).toBe(2);
    expect(net.raft("2").status().commit).toBe(2);
    expect(net.raft("3").status().commit).toBe(1);
    net.heal();
    net.tick("1");
    net.stabilize();
    expect(net.raft("3").status().commit).toBe(2);
  });

  test("no commit without a majority", () => {
    const net = new Network(IDS5);
    elect(net, "1");
    net.isolate("3");
    net.isolate("4");
    net.isolate("5");
    net.raft("1").propose(text("x"));
    net.stabilize();
    expect(net.raft("1").status().commit).toBe(1);
  });

  test("heartbeats carry min(leader commit, follower match): a follower never commits past what matches the leader", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("3");
    net.raft("1").propose(text("x"));
    net.stabilize();
    net.heal();
    net.tick("1"); // heartbeat
    const beats = net.takeMessages("1").filter((m) => m.type === "heartbeat");
    expect(beats.find((m) => m.to === "2")!.commit).toBe(2);
    expect(beats.find((m) => m.to === "3")!.commit).toBe(1);
  });

  test("the consistency check: a follower refuses an append whose previous entry it lacks, hinting where to probe", () => {
    const net = new Network(IDS3);
    net.load("2", { entries: [entry(1, 1), entry(2, 1)], term: 1 });
    net.deliver(message({ type: "append", from: "1", to: "2", term: 2, index: 5, logTerm: 2, entries: [entry(6, 2)] }));
    const [reply] = net.takeMessages("2");
    expect(reply).toMatchObject({ type: "appendResponse", reject: true, index: 5, rejectHint: 2, logTerm: 1 });
    expect(net.raft("2").status().lastIndex).toBe(2);
  });

  test("conflict back-off skips a whole term: the hint is the last entry whose term is at most the append's logTerm", () => {
    const net = new Network(IDS3);
    // The follower holds a long uncommitted suffix of term 3; the leader's entry 6 is of term 2.
    net.load("2", { entries: [entry(1, 1), entry(2, 2), entry(3, 3), entry(4, 3), entry(5, 3), entry(6, 3), entry(7, 3)], term: 3 });
    net.deliver(message({ type: "append", from: "1", to: "2", term: 4, index: 6, logTerm: 2 }));
    const [reply] = net.takeMessages("2");
    expect(reply).toMatchObject({ reject: true, index: 6, rejectHint: 2, logTerm: 2 });
  });

  // etcd's TestLeaderSyncFollowerLog (§5.3, Figure 7): whatever a follower's log holds, the new
  // leader brings it to its own log, and in few round trips thanks to the hint.
  const leaderLog = [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 4), entry(5, 4), entry(6, 5), entry(7, 5), entry(8, 6), entry(9, 6), entry(10, 6)];
  const log = (...terms: number[]) => terms.map((term, i) => entry(i + 1, term, `t${term}`));
  const followers: { name: string; entries: ReturnType<typeof entry>[] }[] = [
    { name: "(a) missing entries", entries: log(1, 1, 1, 4, 4, 5, 5, 6, 6) },
    { name: "(b) far behind", entries: log(1, 1, 1, 4) },
    { name: "(c) one extra of the same term", entries: log(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6) },
    { name: "(d) extra entries of a later term", entries: log(1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7) },
    { name: "(e) divergent term-4 suffix", entries: log(1, 1, 1, 4, 4, 4, 4) },
    { name: "(f) divergent terms 2 and 3", entries: log(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3) },
    { name: "empty", entries: [] },
  ];
  for (const f of followers) {
    test(`Figure 7 follower ${f.name} is brought to the leader's log`, () => {
      const net = new Network(IDS3, { maxEntriesPerAppend: 100 });
      const leaderEntries = leaderLog.map((e) => ({ ...e, data: text(`t${e.term}`) }));
      net.load("1", { entries: leaderEntries, term: 8, commit: 3, applied: 0 });
      net.load("2", { entries: f.entries, term: 8, commit: Math.min(3, f.entries.length) });
      net.load("3", { entries: leaderEntries, term: 8, commit: 3 });
      elect(net, "1");
      net.stabilize();
      const leader = net.get("1").store.entries.map((e) => `${e.index}/${e.term}`);
      expect(net.get("2").store.entries.map((e) => `${e.index}/${e.term}`)).toEqual(leader);
      expect(net.raft("2").status().commit).toBe(11);
    });
  }

  test("in probe state one append is in flight at a time; in replicate state at most maxInflightAppends, each at most maxEntriesPerAppend entries", () => {
    const net = new Network(IDS3, { maxEntriesPerAppend: 2, maxInflightAppends: 3 });
    elect(net, "1");
    // Nothing is delivered: the leader streams, unanswered.
    for (let i = 0; i < 20; i++) net.raft("1").propose(text(`p${i}`));
    const toThree = net.takeMessages("1").filter((m) => m.to === "3" && m.type === "append");
    expect(toThree.every((m) => m.entries.length <= 2)).toBe(true);
    expect(toThree.filter((m) => m.entries.length > 0).length).toBe(3);
    expect(net.raft("1").status().progress["3"]!.state).toBe("replicate");

    // A follower found not to match goes back to probing: one append, then silence until answered.
    const net2 = new Network(IDS3, { maxEntriesPerAppend: 2, maxInflightAppends: 3 });
    net2.load("1", { entries: [entry(1, 1), entry(2, 1)], term: 1, commit: 2, applied: 2 });
    net2.raft("1").campaign();
    net2.deliver(message({ type: "voteResponse", from: "2", to: "1", term: 2 }));
    expect(net2.raft("1").status().progress["3"]!.state).toBe("probe");
    for (let i = 0; i < 5; i++) net2.raft("1").propose(text(`p${i}`));
    const probes = net2.takeMessages("1").filter((m) => m.to === "3" && m.type === "append");
    expect(probes.length).toBe(1);
  });

  test("a rejected append in replicate state sends the follower back to probe state", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").propose(text("x"));
    net.stabilize();
    expect(net.raft("1").status().progress["2"]!.state).toBe("replicate");
    net.raft("1").propose(text("y"));
    net.raft("1").propose(text("z"));
    // The append of y was lost: 2 refuses the one of z (previous index 3).
    net.deliver(message({ type: "appendResponse", from: "2", to: "1", term: 1, index: 3, reject: true, rejectHint: 2, logTerm: 1 }));
    expect(net.raft("1").status().progress["2"]!.state).toBe("probe");
  });

  test("proposals only on the leader: elsewhere ProposalDroppedError names the known leader", () => {
    const net = new Network(IDS3);
    try {
      net.raft("2").propose(text("x"));
      throw new Error("not dropped");
    } catch (error) {
      expect(error).toBeInstanceOf(ProposalDroppedError);
      expect((error as ProposalDroppedError).leader).toBeNull();
    }
    elect(net, "1");
    try {
      net.raft("2").propose(text("x"));
      throw new Error("not dropped");
    } catch (error) {
      expect((error as ProposalDroppedError).reason).toBe("not leader");
      expect((error as ProposalDroppedError).leader).toBe("1");
    }
  });
});

describe("§5.4.2 committing entries from previous terms (Figure 8)", () => {
  test("a leader does not commit an entry of an earlier term by counting replicas, only with an entry of its own term", () => {
    const net = new Network(IDS5);
    // Figure 8 (c): S1 led term 2 and wrote index 2 on S1, S2; S5 led term 3 and wrote its own
    // index 2 on itself only; now S1 leads term 4 and copies its index 2 to S3.
    net.load("1", { entries: [entry(1, 1), entry(2, 2)], term: 3, commit: 1 });
    net.load("2", { entries: [entry(1, 1), entry(2, 2)], term: 3, commit: 1 });
    net.load("3", { entries: [entry(1, 1)], term: 3, commit: 1 });
    net.load("4", { entries: [entry(1, 1)], term: 3, commit: 1 });
    net.load("5", { entries: [entry(1, 1), entry(2, 3)], term: 3, commit: 1 });
    net.raft("1").campaign();
    for (const from of ["2", "3", "4"]) net.deliver(message({ type: "voteResponse", from, to: "1", term: 4 }));
    expect(net.raft("1").status()).toMatchObject({ role: "leader", term: 4, lastIndex: 3 });
    net.takeMessages("1");
    // S2 and S3 hold index 2 (of term 2): a majority with S1, and still not committed.
    for (const from of ["2", "3"]) net.deliver(message({ type: "appendResponse", from, to: "1", term: 4, index: 2 }));
    expect(net.raft("1").status().commit).toBe(1);
    // Figure 8 (d) shows why: S5 could still be elected (its last term 3 beats 2) and replace it.
    // (e): once an entry of term 4 is on a majority, it and everything before it commit.
    for (const from of ["2", "3"]) net.deliver(message({ type: "appendResponse", from, to: "1", term: 4, index: 3 }));
    expect(net.raft("1").status().commit).toBe(3);
  });

  test("Figure 8 (d): the uncommitted entry of the old term is indeed replaced by a later leader, and nobody applied it", () => {
    const net = new Network(IDS5);
    net.load("1", { entries: [entry(1, 1), entry(2, 2)], term: 4, commit: 1 });
    net.load("2", { entries: [entry(1, 1), entry(2, 2)], term: 4, commit: 1 });
    net.load("3", { entries: [entry(1, 1), entry(2, 2)], term: 4, commit: 1 });
    net.load("4", { entries: [entry(1, 1)], term: 4, commit: 1 });
    net.load("5", { entries: [entry(1, 1), entry(2, 3)], term: 4, commit: 1 });
    net.isolate("1");
    elect(net, "5"); // votes from 2, 3 (S5's last term 3 beats their 2), 4
    net.raft("5").propose(text("y"));
    net.stabilize();
    for (const id of ["2", "3", "4", "5"]) {
      expect(net.get(id).store.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["1/1", "2/3", "3/5", "4/5"]);
      expect(net.get(id).store.appliedEntries.map((e) => `${e.index}/${e.term}`)).toEqual(["1/1", "2/3", "3/5", "4/5"]);
    }
  });

  test("a new leader appends an empty entry of its term at once, which commits the previous term's entries", () => {
    const net = new Network(IDS3);
    net.load("1", { entries: [entry(1, 1, "a"), entry(2, 1, "b")], term: 1, commit: 0 });
    net.load("2", { entries: [entry(1, 1, "a"), entry(2, 1, "b")], term: 1, commit: 0 });
    elect(net, "1");
    const noop = net.get("1").store.entries[2]!;
    expect(noop).toMatchObject({ index: 3, term: 2, kind: "normal" });
    expect(noop.data.length).toBe(0);
    for (const id of IDS3) expect(net.raft(id).status().commit).toBe(3);
  });
});

describe("§5.1 persistence, Ready and restart", () => {
  test("a Ready hands out new hard state, entries to persist and committed entries to apply, each once", () => {
    const net = new Network(["1"]);
    const raft = net.raft("1");
    raft.campaign();
    const ready = raft.ready();
    expect(ready.softState).toEqual({ leader: "1", role: "leader" });
    expect(ready.hardState).toEqual({ term: 1, vote: "1", commit: 1 });
    expect(ready.entries.map((e) => e.index)).toEqual([1]);
    expect(ready.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(ready.mustSync).toBe(true);
    raft.advance(ready);
    expect(raft.hasReady()).toBe(false);
    expect(raft.status().applied).toBe(1);
    raft.propose(text("x"));
    const next = raft.ready();
    expect(next.softState).toBeUndefined();
    expect(next.entries.map((e) => e.index)).toEqual([2]);
    expect(next.hardState).toEqual({ term: 1, vote: "1", commit: 2 });
    raft.advance(next);
  });

  test("a commit that moves alone needs no fsync (mustSync false); a vote or a term does", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").propose(text("x"));
    net.processReady("1");
    // Deliver the appends; the followers answer; the leader commits.
    const batch = net.inflight;
    net.inflight = [];
    for (const m of batch) net.deliver(m);
    for (const id of ["2", "3"]) net.processReady(id);
    const answers = net.inflight;
    net.inflight = [];
    for (const m of answers) net.deliver(m);
    const ready = net.processReady("1")!;
    expect(ready.hardState?.commit).toBe(2);
    expect(ready.entries).toEqual([]);
    expect(ready.mustSync).toBe(false);
  });

  test("restart: term, vote and log come back from what was persisted; committed entries after `applied` are handed out again", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    for (const d of ["a", "b", "c"]) net.raft("1").propose(text(d));
    net.stabilize();
    const store = net.get("2").store;
    store.applied = 2; // the application applied up to 2 before the crash
    store.appliedEntries = store.appliedEntries.slice(0, 2);
    const member = net.restart("2");
    const s = member.raft.status();
    expect(s).toMatchObject({ term: 1, vote: "1", commit: 4, applied: 2, lastIndex: 4, role: "follower" });
    const ready = member.raft.ready();
    expect(ready.committedEntries.map((e) => e.index)).toEqual([3, 4]);
    expect(ready.entries).toEqual([]);
    expect(ready.hardState).toBeUndefined();
  });

  test("a restarted member does not vote twice in a term", () => {
    const net = new Network(IDS3);
    net.deliver(message({ type: "vote", from: "2", to: "1", term: 1 }));
    net.processReady("1");
    net.inflight = [];
    net.restart("1");
    net.deliver(message({ type: "vote", from: "3", to: "1", term: 1 }));
    const [reply] = net.takeMessages("1");
    expect(reply!.reject).toBe(true);
  });

  test("what a Ready handed out but the driver did not persist is lost in a crash, and was never acknowledged", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").propose(text("x"));
    net.processReady("1");
    const appends = net.inflight;
    net.inflight = [];
    for (const m of appends) net.deliver(m);
    net.get("2").raft.ready(); // handed out; the crash comes before the driver persists it
    const member = net.restart("2");
    expect(member.raft.status().lastIndex).toBe(1);
    expect(net.inflight.filter((m) => m.from === "2")).toEqual([]);
    net.tick("1");
    net.stabilize();
    expect(net.raft("2").status().lastIndex).toBe(2);
  });
});

describe("status", () => {
  test("a leader reports every other voter's progress; a follower none", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").propose(text("x"));
    net.stabilize();
    const s = net.raft("1").status();
    expect(s).toMatchObject({ id: "1", role: "leader", term: 1, vote: "1", leader: "1", commit: 2, applied: 2, lastIndex: 2, config: { voters: IDS3 }, pendingConfigIndex: 0, transferee: null });
    expect(s.progress).toEqual({
      "2": { match: 2, next: 3, state: "replicate", recentActive: true },
      "3": { match: 2, next: 3, state: "replicate", recentActive: true },
    });
    expect(net.raft("2").status()).toMatchObject({ role: "follower", leader: "1", progress: {} });
  });
});

describe("thesis §9.6 pre-vote", () => {
  test("a follower whose timeout fires asks for pre-votes at term+1 without raising its term or changing its vote", () => {
    const net = new Network(IDS3, { preVote: true });
    net.load("1", { entries: [entry(1, 1)], term: 1, vote: "2", commit: 1 });
    net.timeout("1");
    expect(net.raft("1").status()).toMatchObject({ role: "preCandidate", term: 1, vote: "2" });
    const sent = net.takeMessages("1");
    expect(types(sent)).toEqual(["1->2 preVote", "1->3 preVote"]);
    expect(sent.every((m) => m.term === 2 && m.index === 1 && m.logTerm === 1)).toBe(true);
  });

  test("with a majority of pre-votes it becomes a candidate at term+1; refused by a majority it stays a follower at its term", () => {
    const net = new Network(IDS3, { preVote: true });
    net.raft("1").campaign();
    net.takeMessages("1");
    net.deliver(message({ type: "preVoteResponse", from: "2", to: "1", term: 1 }));
    expect(net.raft("1").status()).toMatchObject({ role: "candidate", term: 1, vote: "1" });
    expect(types(net.takeMessages("1"))).toEqual(["1->2 vote", "1->3 vote"]);

    const net2 = new Network(IDS3, { preVote: true });
    net2.raft("1").campaign();
    net2.deliver(message({ type: "preVoteResponse", from: "2", to: "1", term: 0, reject: true }));
    net2.deliver(message({ type: "preVoteResponse", from: "3", to: "1", term: 0, reject: true }));
    expect(net2.raft("1").status()).toMatchObject({ role: "follower", term: 0 });
  });

  test("granting a pre-vote changes neither the voter's term nor its vote", () => {
    const net = new Network(IDS3, { preVote: true });
    net.load("2", { term: 3, vote: "3" });
    net.deliver(message({ type: "preVote", from: "1", to: "2", term: 4 }));
    const [reply] = net.takeMessages("2");
    expect(reply).toMatchObject({ type: "preVoteResponse", reject: false, term: 4 });
    expect(net.raft("2").status()).toMatchObject({ term: 3, vote: "3" });
  });

  test("a member that heard from a leader within the election timeout refuses pre-votes, even from an up-to-date log", () => {
    const net = new Network(IDS3, { preVote: true });
    elect(net, "1");
    net.deliver(message({ type: "preVote", from: "3", to: "2", term: 2, index: 1, logTerm: 1 }));
    expect(net.takeMessages("2")).toEqual([]);
    // Once the election timeout passes without a word from the leader, it answers.
    net.tick("2", 10);
    net.deliver(message({ type: "preVote", from: "3", to: "2", term: 2, index: 1, logTerm: 1 }));
    expect(net.takeMessages("2").map((m) => m.reject)).toEqual([false]);
  });

  for (const preVote of [true, false]) {
    test(`a partitioned follower that comes back ${preVote ? "does not disrupt the leader (pre-vote)" : "forces an election by its raised term (no pre-vote)"}`, () => {
      const net = new Network(IDS3, { preVote }, 3);
      elect(net, "1");
      net.isolate("3");
      for (let i = 0; i < 100; i++) {
        net.tick("3");
        net.stabilize();
      }
      expect(net.raft("3").status().term).toBe(preVote ? 1 : net.raft("3").status().term);
      if (!preVote) expect(net.raft("3").status().term).toBeGreaterThan(1);
      net.heal();
      // Back, it times out once more before hearing from the leader, and asks the others.
      net.timeout("3");
      net.stabilize();
      for (let i = 0; i < 3; i++) {
        net.tick("1");
        net.stabilize();
      }
      if (preVote) {
        expect(net.raft("1").status()).toMatchObject({ role: "leader", term: 1 });
        expect(net.raft("3").status()).toMatchObject({ role: "follower", term: 1, leader: "1" });
      } else {
        // The leader hears of the later term from 3's answer and steps down.
        expect(net.raft("1").status().term).toBeGreaterThan(1);
        expect(net.raft("1").status().role).not.toBe("leader");
      }
    });
  }
});

describe("thesis §6.2 check-quorum", () => {
  test("a leader that did not hear from a quorum within an election timeout steps down; without check-quorum it stays", () => {
    for (const checkQuorum of [true, false]) {
      const net = new Network(IDS3, { checkQuorum, electionTicks: 10 });
      elect(net, "1");
      net.isolate("1");
      for (let i = 0; i < 9; i++) {
        net.tick("1");
        net.stabilize();
      }
      expect(net.raft("1").status().role).toBe("leader");
      for (let i = 0; i < 11; i++) {
        net.tick("1");
        net.stabilize();
      }
      expect(net.raft("1").status().role).toBe(checkQuorum ? "follower" : "leader");
      if (checkQuorum) expect(net.raft("1").status()).toMatchObject({ term: 1, leader: null });
    }
  });

  test("a leader that hears from a quorum keeps leading", () => {
    const net = new Network(IDS5, { checkQuorum: true });
    elect(net, "1");
    net.isolate("4");
    net.isolate("5");
    for (let i = 0; i < 50; i++) {
      net.tick("1");
      net.stabilize();
    }
    expect(net.raft("1").status().role).toBe("leader");
  });

  test("the isolated leader steps down while the majority elects a new one; rejoining, it follows", () => {
    const net = new Network(IDS3, { checkQuorum: true, preVote: true }, 5);
    elect(net, "1");
    net.isolate("1");
    for (let i = 0; i < 60; i++) {
      for (const id of IDS3) net.tick(id);
      net.stabilize();
    }
    // It stepped down (and, cut off, keeps failing to be elected).
    expect(net.raft("1").status().role).not.toBe("leader");
    expect(net.raft("1").status().term).toBe(1);
    const leader = net.leader()!;
    expect(["2", "3"]).toContain(leader.id);
    net.heal();
    for (let i = 0; i < 5; i++) {
      net.tick(leader.id);
      net.stabilize();
    }
    expect(net.raft("1").status()).toMatchObject({ role: "follower", leader: leader.id, term: leader.raft.status().term });
  });

  test("with check-quorum, a member that heard from a leader within the election timeout ignores vote requests of a later term (leader lease)", () => {
    const net = new Network(IDS3, { checkQuorum: true });
    elect(net, "1");
    net.deliver(message({ type: "vote", from: "3", to: "2", term: 5, index: 9, logTerm: 9 }));
    expect(net.takeMessages("2")).toEqual([]);
    expect(net.raft("2").status()).toMatchObject({ term: 1, leader: "1" });
    // Without check-quorum a leader may be gone unnoticed: the request is heard.
    const net2 = new Network(IDS3);
    elect(net2, "1");
    net2.deliver(message({ type: "vote", from: "3", to: "2", term: 5, index: 9, logTerm: 9 }));
    expect(net2.raft("2").status()).toMatchObject({ term: 5, vote: "3" });
  });

  test("a stale leader that appends after the cluster moved on hears the later term and steps down", () => {
    const net = new Network(IDS3, { checkQuorum: true });
    elect(net, "1");
    net.load("2", { entries: net.get("2").store.entries, term: 3, commit: 1 });
    net.raft("1").propose(text("x"));
    net.stabilize();
    expect(net.raft("1").status()).toMatchObject({ role: "follower", term: 3 });
  });
});

describe("thesis §3.10 leader transfer", () => {
  test("to a caught-up follower: timeoutNow at once; it campaigns without pre-vote and wins despite the leader lease", () => {
    const net = new Network(IDS3, { preVote: true, checkQuorum: true });
    elect(net, "1");
    net.raft("1").transferLeadership("2");
    expect(net.raft("1").status().transferee).toBe("2");
    const [timeoutNow] = net.takeMessages("1");
    expect(timeoutNow).toMatchObject({ type: "timeoutNow", to: "2", term: 1 });
    net.deliver(timeoutNow!);
    expect(net.raft("2").status()).toMatchObject({ role: "candidate", term: 2 });
    net.stabilize();
    expect(net.raft("2").status()).toMatchObject({ role: "leader", term: 2 });
    expect(net.raft("1").status()).toMatchObject({ role: "follower", leader: "2", transferee: null });
  });

  test("proposals and config changes are dropped while a transfer is in progress", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("2");
    net.raft("1").propose(text("x")); // 2 lags now
    net.raft("1").transferLeadership("2");
    for (const call of [() => net.raft("1").propose(text("y")), () => net.raft("1").proposeConfigChange({ type: "remove", node: "3", address: "" })]) {
      expect(call).toThrow(ProposalDroppedError);
      try { call(); } catch (error) { expect((error as ProposalDroppedError).reason).toBe("leadership transfer in progress"); }
    }
  });

  test("to a lagging follower: the leader first brings it up to date, then sends timeoutNow", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("2");
    for (const d of ["a", "b", "c"]) net.raft("1").propose(text(d));
    net.stabilize();
    net.heal();
    net.raft("1").transferLeadership("2");
    const first = net.takeMessages("1");
    expect(first.some((m) => m.type === "timeoutNow")).toBe(false);
    expect(first.some((m) => m.type === "append" && m.to === "2")).toBe(true);
    for (const m of first) net.deliver(m);
    net.stabilize();
    expect(net.raft("2").status().role).toBe("leader");
    expect(net.raft("2").status().lastIndex).toBe(5); // 1-4 of term 1, then its own no-op: nothing lost
    expect(net.get("2").store.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(["", "a", "b", "c", ""]);
  });

  test("a transfer that does not finish within an election timeout is abandoned and proposals flow again", () => {
    const net = new Network(IDS3, { electionTicks: 10 });
    elect(net, "1");
    net.isolate("2");
    net.raft("1").propose(text("x"));
    net.raft("1").transferLeadership("2");
    for (let i = 0; i < 10; i++) {
      net.tick("1");
      net.stabilize();
    }
    expect(net.raft("1").status()).toMatchObject({ role: "leader", transferee: null });
    expect(net.raft("1").propose(text("y")).index).toBe(3);
  });

  test("transfer to itself calls off a transfer in progress, and proposals flow again", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("2");
    net.raft("1").propose(text("x"));
    net.raft("1").transferLeadership("2");
    expect(net.raft("1").status().transferee).toBe("2");
    net.raft("1").transferLeadership("1");
    expect(net.raft("1").status()).toMatchObject({ role: "leader", transferee: null });
    expect(net.raft("1").propose(text("y")).index).toBe(3);
  });

  test("transfer to itself, to a non-member, or from a follower does nothing", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").transferLeadership("1");
    net.raft("1").transferLeadership("9");
    net.raft("2").transferLeadership("3");
    expect(net.raft("1").status().transferee).toBeNull();
    expect(net.raft("2").status().transferee).toBeNull();
    expect(net.takeMessages("1").filter((m) => m.type === "timeoutNow")).toEqual([]);
  });
});

describe("thesis §6.4 ReadIndex", () => {
  test("on the leader: the read records the commit index and surfaces once a quorum acks a heartbeat carrying its context", () => {
    const net = new Network(IDS5);
    elect(net, "1");
    net.raft("1").propose(text("x"));
    net.stabilize();
    net.raft("1").readIndex(text("r1"));
    const beats = net.takeMessages("1");
    expect(beats.map((m) => [m.type, fromTextOr(m.context)])).toEqual([["heartbeat", "r1"], ["heartbeat", "r1"], ["heartbeat", "r1"], ["heartbeat", "r1"]]);
    // One ack: with the leader, 2 of 5, no quorum yet.
    net.deliver(message({ type: "heartbeatResponse", from: "2", to: "1", term: 1, context: text("r1") }));
    expect(net.processReady("1")?.readStates ?? []).toEqual([]);
    // A stale context answers nothing.
    net.deliver(message({ type: "heartbeatResponse", from: "3", to: "1", term: 1, context: text("other") }));
    expect(net.processReady("1")?.readStates ?? []).toEqual([]);
    net.deliver(message({ type: "heartbeatResponse", from: "3", to: "1", term: 1, context: text("r1") }));
    const ready = net.processReady("1")!;
    expect(ready.readStates).toEqual([{ index: 2, context: text("r1") }]);
  });

  test("a leader that has not yet committed an entry of its term holds the read until its no-op commits", () => {
    const net = new Network(IDS3);
    net.load("1", { entries: [entry(1, 1), entry(2, 1)], term: 1, commit: 1 });
    net.raft("1").campaign();
    net.deliver(message({ type: "voteResponse", from: "2", to: "1", term: 2 }));
    net.raft("1").readIndex(text("r"));
    net.processReady("1");
    expect(net.inflight.filter((m) => m.type === "heartbeat")).toEqual([]);
    net.stabilize();
    // The no-op (3) committed; the read then went through a heartbeat round.
    expect(net.get("1").readStates).toEqual([{ index: 3, context: text("r") }]);
  });

  test("a single-member cluster answers at once", () => {
    const net = new Network(["1"]);
    elect(net, "1");
    net.raft("1").readIndex(text("r"));
    expect(net.processReady("1")!.readStates).toEqual([{ index: 1, context: text("r") }]);
  });

  test("on a follower: forwarded to the leader, whose answer surfaces as the follower's ReadState", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").propose(text("x"));
    net.stabilize();
    net.raft("2").readIndex(text("f"));
    const [forward] = net.takeMessages("2");
    expect(forward).toMatchObject({ type: "readIndex", to: "1", term: 1 });
    net.deliver(forward!);
    net.stabilize();
    expect(net.get("2").readStates).toEqual([{ index: 2, context: text("f") }]);
    expect(net.get("1").readStates).toEqual([]);
  });

  test("a partitioned old leader never answers: no quorum acks its heartbeats", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("1");
    net.raft("1").readIndex(text("r"));
    for (let i = 0; i < 30; i++) {
      net.tick("1");
      net.stabilize();
    }
    expect(net.get("1").readStates).toEqual([]);
    // A follower without a leader has no one to ask.
    const net2 = new Network(IDS3);
    net2.raft("2").readIndex(text("r"));
    expect(net2.takeMessages("2")).toEqual([]);
  });

  test("heartbeats retry the newest pending read: a lost round is made up by the next one", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").readIndex(text("r"));
    net.takeMessages("1"); // the first round is lost
    net.tick("1"); // heartbeat tick
    net.stabilize();
    expect(net.get("1").readStates).toEqual([{ index: 1, context: text("r") }]);
  });
});

function fromTextOr(data: Uint8Array | undefined): string | undefined {
  return data === undefined ? undefined : new TextDecoder().decode(data);
}

describe("§7 log compaction", () => {
  test("compact(index) keeps a snapshot of the index's term and membership and drops the entries up to it", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    for (const d of ["a", "b", "c"]) net.raft("1").propose(text(d));
    net.stabilize();
    const snapshot = net.compact("1", 3);
    expect(snapshot.meta).toEqual({ index: 3, term: 1, config: { voters: IDS3 } });
    expect(net.raft("1").entriesBetween(1, 10).map((e) => e.index)).toEqual([4]);
    expect(net.raft("1").status()).toMatchObject({ lastIndex: 4, commit: 4 });
    // Not past what the application applied, not at or before the snapshot.
    expect(() => net.raft("1").compact(9, new Uint8Array())).toThrow(RangeError);
    expect(() => net.raft("1").compact(3, new Uint8Array())).toThrow(RangeError);
  });

  test("the leader sends its snapshot to a follower whose next entry is compacted away; the follower installs it and catches up", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("3");
    for (const d of ["a", "b", "c", "d"]) net.raft("1").propose(text(d));
    net.stabilize();
    net.compact("1", 4);
    net.raft("1").propose(text("e"));
    net.stabilize();
    net.heal();
    net.tick("1");
    net.processReady("1");
    const toThree = net.inflight.filter((m) => m.to === "3");
    net.stabilize();
    const sent = [...toThree];
    expect(sent.some((m) => m.type === "snapshot") || net.get("3").store.snapshot !== undefined).toBe(true);
    const three = net.get("3");
    expect(three.store.snapshot?.meta).toEqual({ index: 4, term: 1, config: { voters: IDS3 } });
    expect(three.store.entries.map((e) => e.index)).toEqual([5, 6]);
    expect(three.raft.status()).toMatchObject({ commit: 6, applied: 6, lastIndex: 6 });
    // The application state came from the snapshot, then the entries after it.
    expect(three.store.appliedEntries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test("a follower installs a snapshot newer than its commit: Ready.snapshot, log and membership replaced", () => {
    const net = new Network(IDS3);
    net.load("2", { entries: [entry(1, 1), entry(2, 1), entry(3, 2)], term: 2, commit: 1, applied: 1 });
    const snapshot = { meta: { index: 5, term: 3, config: { voters: ["1", "2", "4"] } }, data: text("state") };
    net.deliver(message({ type: "snapshot", from: "1", to: "2", term: 3, snapshot }));
    const raft = net.raft("2");
    const ready = raft.ready();
    expect(ready.snapshot).toBe(snapshot);
    expect(ready.hardState).toEqual({ term: 3, vote: null, commit: 5 });
    expect(ready.committedEntries).toEqual([]);
    expect(ready.messages).toMatchObject([{ type: "appendResponse", to: "1", index: 5, reject: false }]);
    expect(ready.mustSync).toBe(true);
    raft.advance(ready);
    expect(raft.status()).toMatchObject({ lastIndex: 5, commit: 5, applied: 5, config: { voters: ["1", "2", "4"] }, leader: "1" });
    expect(raft.entriesBetween(1, 10)).toEqual([]);
  });

  test("a snapshot at or below the follower's commit is answered with the commit and ignored", () => {
    const net = new Network(IDS3);
    net.load("2", { entries: [entry(1, 1), entry(2, 1), entry(3, 1)], term: 1, commit: 3, applied: 3 });
    net.deliver(message({ type: "snapshot", from: "1", to: "2", term: 1, snapshot: { meta: { index: 2, term: 1, config: { voters: IDS3 } }, data: text("") } }));
    const ready = net.raft("2").ready();
    expect(ready.snapshot).toBeUndefined();
    expect(ready.messages).toMatchObject([{ type: "appendResponse", index: 3 }]);
  });

  test("a snapshot whose last entry the follower holds only moves its commit, keeping the entries after it", () => {
    const net = new Network(IDS3);
    net.load("2", { entries: [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)], term: 1, commit: 1, applied: 1 });
    net.deliver(message({ type: "snapshot", from: "1", to: "2", term: 1, snapshot: { meta: { index: 3, term: 1, config: { voters: IDS3 } }, data: text("") } }));
    const ready = net.raft("2").ready();
    expect(ready.snapshot).toBeUndefined();
    expect(ready.committedEntries.map((e) => e.index)).toEqual([2, 3]);
    // It acknowledges the snapshot's index only: entry 4 may differ from the leader's.
    expect(ready.messages).toMatchObject([{ type: "appendResponse", index: 3 }]);
    expect(net.raft("2").status().lastIndex).toBe(4);
  });

  test("after such a snapshot the leader counts the follower only up to the snapshot's index, and repairs a divergent suffix", () => {
    const net = new Network(IDS3);
    // 2 holds 1/1 2/1 (matching the leader) and 3/2 of a term whose leader lost; the leader
    // (term 3) compacted through 2 and holds its no-op 3/3.
    net.load("2", { entries: [entry(1, 1), entry(2, 1), entry(3, 2)], term: 2, commit: 1, applied: 1 });
    net.load("1", { entries: [entry(1, 1), entry(2, 1)], term: 2, commit: 2, applied: 2 });
    net.load("3", { entries: [entry(1, 1), entry(2, 1)], term: 2, commit: 2, applied: 2 });
    net.raft("1").campaign();
    net.deliver(message({ type: "voteResponse", from: "3", to: "1", term: 3 }));
    net.processReady("1");
    net.inflight = [];
    net.compact("1", 2);
    net.deliver(message({ type: "snapshot", from: "1", to: "2", term: 3, snapshot: net.get("1").store.snapshot! }));
    const [ack] = net.takeMessages("2");
    expect(ack).toMatchObject({ type: "appendResponse", index: 2, reject: false });
    net.deliver(ack!);
    expect(net.raft("1").status().progress["2"]!.match).toBe(2);
    // Counting 2 at 3 would commit 3/3, which is on the leader alone.
    expect(net.raft("1").status().commit).toBe(2);
    net.stabilize();
    expect(net.get("2").store.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["1/1", "2/1", "3/3"]);
    expect(net.raft("2").entriesBetween(1, 9).map((e) => `${e.index}/${e.term}`)).toEqual(["1/1", "2/1", "3/3"]);
  });

  test("a member restarts from its snapshot and the entries after it", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    for (const d of ["a", "b", "c"]) net.raft("1").propose(text(d));
    net.stabilize();
    net.compact("2", 3);
    const member = net.restart("2");
    expect(member.raft.status()).toMatchObject({ lastIndex: 4, commit: 4, applied: 4, term: 1 });
    expect(member.raft.entriesBetween(1, 9).map((e) => e.index)).toEqual([4]);
    expect(member.raft.hasReady()).toBe(false);
  });

  test("a failed snapshot (reportSnapshot false) sends the follower back to probing, and the snapshot is sent again", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("3");
    for (const d of ["a", "b"]) net.raft("1").propose(text(d));
    net.stabilize();
    net.compact("1", 3);
    net.heal();
    net.tick("1");
    // Heartbeat, its answer, an append 3 refuses, the probe back: 3's next entry is gone, so a
    // snapshot, which is lost here.
    let snaps: Message[] = [];
    for (let round = 0; round < 10 && snaps.length === 0; round++) {
      for (const id of IDS3) net.processReady(id);
      const batch = net.inflight.splice(0);
      snaps = batch.filter((m) => m.type === "snapshot");
      for (const m of batch) if (m.type !== "snapshot") net.deliver(m);
    }
    expect(snaps.map((m) => m.to)).toEqual(["3"]);
    expect(net.raft("1").status().progress["3"]!.state).toBe("snapshot");
    net.raft("1").reportSnapshot("3", false);
    expect(net.raft("1").status().progress["3"]!.state).toBe("probe");
    net.tick("1");
    net.stabilize();
    expect(net.raft("3").status()).toMatchObject({ commit: 3, lastIndex: 3 });
  });
});

describe("§7 snapshots only to members that answer", () => {
  test("with check-quorum, a follower silent for an election timeout is sent no snapshot until it answers again", () => {
    const net = new Network(IDS5, { checkQuorum: true, electionTicks: 10 });
    elect(net, "1");
    net.isolate("5");
    for (let i = 0; i < 25; i++) {
      net.tick("1");
      net.stabilize();
    }
    for (const d of ["a", "b"]) net.raft("1").propose(text(d));
    net.stabilize();
    net.compact("1", 3);
    net.raft("1").reportUnreachable("5"); // probing again: the next append would need the snapshot
    net.raft("1").propose(text("c"));
    net.stabilize();
    expect(net.raft("1").status().progress["5"]).toMatchObject({ recentActive: false });
    expect(net.raft("1").status().progress["5"]!.state).not.toBe("snapshot");
    net.heal();
    for (let i = 0; i < 3; i++) {
      net.tick("1");
      net.stabilize();
    }
    expect(net.get("5").store.snapshot?.meta.index).toBe(3);
    expect(net.raft("5").status().commit).toBe(4);
  });
});

describe("§7 a lost snapshot nobody reported", () => {
  test("a snapshot neither answered nor reported for two election timeouts is sent again", () => {
    const net = new Network(IDS3, { electionTicks: 10 });
    elect(net, "1");
    net.isolate("3");
    for (const d of ["a", "b"]) net.raft("1").propose(text(d));
    net.stabilize();
    net.compact("1", 3);
    net.heal();
    const snapshotsTo3 = (): number => {
      let count = 0;
      for (const id of IDS3) net.processReady(id);
      for (const m of net.inflight.splice(0)) {
        if (m.type === "snapshot") count++; // lost, and the driver never hears of it
        else net.deliver(m);
      }
      return count;
    };
    const sentAt: number[] = [];
    for (let tick = 0; tick < 45; tick++) {
      net.tick("1");
      for (let i = 0; i < 5; i++) if (snapshotsTo3() > 0) sentAt.push(tick);
    }
    expect(sentAt.length).toBeGreaterThanOrEqual(2);
    expect(sentAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(10);
    expect(sentAt[1]! - sentAt[0]!).toBeLessThanOrEqual(20);
  });
});

describe("§6 cluster membership changes, one server at a time (thesis §4.1)", () => {
  test("adding a member: the change takes effect on the leader when appended; the new member starts from nothing and catches up", () => {
    const net = new Network(IDS3);
    // 4 starts with an empty bootstrap: it knows no membership at all.
    net.addMember("4", { voters: [] });
    elect(net, "1");
    const at = net.raft("1").proposeConfigChange({ type: "add", node: "4", address: "http://4" });
    expect(at).toEqual({ index: 2, term: 1 });
    expect(net.raft("1").status().config.voters).toEqual(["1", "2", "3", "4"]);
    expect(net.raft("1").status().pendingConfigIndex).toBe(2);
    expect(net.raft("1").status().progress["4"]).toBeDefined();
    net.stabilize();
    expect(net.raft("4").status()).toMatchObject({ role: "follower", leader: "1", commit: 2, config: { voters: ["1", "2", "3", "4"] } });
    expect(net.raft("1").status().pendingConfigIndex).toBe(0);
    // Now four voters: a quorum is three.
    net.isolate("3");
    net.isolate("4");
    net.raft("1").propose(text("x"));
    net.stabilize();
    expect(net.raft("1").status().commit).toBe(2);
  });

  test("one change pending at a time: a second is dropped until the first commits", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("2");
    net.isolate("3");
    net.raft("1").proposeConfigChange({ type: "add", node: "4", address: "http://4" });
    try {
      net.raft("1").proposeConfigChange({ type: "add", node: "5", address: "http://5" });
      throw new Error("not dropped");
    } catch (error) {
      expect(error).toBeInstanceOf(ProposalDroppedError);
      expect((error as ProposalDroppedError).reason).toBe("config change pending");
    }
  });

  test("a new leader takes no change before its first entry commits (an earlier term may have left one uncommitted)", () => {
    const net = new Network(IDS3);
    for (const id of IDS3) net.load(id, { entries: [entry(1, 1)], term: 1, commit: 1 });
    net.raft("1").campaign();
    net.processReady("1");
    net.inflight = [];
    // Elected by 3's vote (delivered by hand), before its no-op reached anyone.
    net.deliver(message({ type: "voteResponse", from: "3", to: "1", term: 2 }));
    expect(net.raft("1").status().role).toBe("leader");
    expect(() => net.raft("1").proposeConfigChange({ type: "remove", node: "2", address: "" })).toThrow(ProposalDroppedError);
    net.heal();
    net.stabilize();
    expect(net.raft("1").proposeConfigChange({ type: "remove", node: "2", address: "" }).index).toBe(3);
  });

  test("removing a follower: quorums at once use the smaller membership", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.raft("1").proposeConfigChange({ type: "remove", node: "3", address: "" });
    expect(net.raft("1").status().config.voters).toEqual(["1", "2"]);
    expect(net.raft("1").status().progress["3"]).toBeUndefined();
    net.stabilize();
    expect(net.raft("2").status().config.voters).toEqual(["1", "2"]);
    net.isolate("2");
    net.raft("1").propose(text("x"));
    net.stabilize();
    expect(net.raft("1").status().commit).toBe(2); // 2 of 2 needed now
  });

  test("a leader removing itself leads until the change commits, then steps down; the others elect a leader", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.isolate("1");
    net.raft("1").proposeConfigChange({ type: "remove", node: "1", address: "" });
    expect(net.raft("1").status()).toMatchObject({ role: "leader", config: { voters: ["2", "3"] } });
    expect(net.raft("1").propose(text("still leading")).index).toBe(3);
    net.heal();
    net.stabilize();
    const s = net.raft("1").status();
    expect(s.role).toBe("follower");
    expect(s.commit).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 40 && !net.leader(); i++) {
      for (const id of IDS3) net.tick(id);
      net.stabilize();
    }
    expect(["2", "3"]).toContain(net.leader()!.id);
    // The removed member never campaigns.
    for (let i = 0; i < 100; i++) net.tick("1");
    expect(net.raft("1").status().role).toBe("follower");
  });

  test("a config entry truncated away is undone", () => {
    const net = new Network(IDS3);
    const add4 = { index: 2, term: 1, kind: "config" as const, data: encodeConfigEntry({ change: { type: "add", node: "4", address: "http://4" }, voters: ["1", "2", "3", "4"] }) };
    net.load("2", { entries: [entry(1, 1), add4], term: 1, commit: 1 });
    expect(net.raft("2").status().config.voters).toEqual(["1", "2", "3", "4"]);
    // A leader of term 2 never had it: its entry 2 replaces it.
    net.deliver(message({ type: "append", from: "3", to: "2", term: 2, index: 1, logTerm: 1, entries: [entry(2, 2)], commit: 1 }));
    expect(net.raft("2").status().config.voters).toEqual(IDS3);
  });

  test("after a restart the membership is the bootstrap's with the log's config entries applied on top", () => {
    const net = new Network(IDS3);
    const add4 = { index: 2, term: 1, kind: "config" as const, data: encodeConfigEntry({ change: { type: "add", node: "4", address: "http://4" }, voters: ["1", "2", "3", "4"] }) };
    const remove2 = { index: 3, term: 1, kind: "config" as const, data: encodeConfigEntry({ change: { type: "remove", node: "2", address: "" }, voters: ["1", "3", "4"] }) };
    net.load("1", { entries: [entry(1, 1), add4, remove2], term: 1, commit: 3 });
    expect(net.raft("1").status().config.voters).toEqual(["1", "3", "4"]);
    // Compacted: the snapshot's config is the base.
    net.load("1", { entries: [remove2], term: 1, commit: 3, applied: 2, snapshot: { meta: { index: 2, term: 1, config: { voters: ["1", "2", "3", "4"] } }, data: text("") } });
    expect(net.raft("1").status().config.voters).toEqual(["1", "3", "4"]);
    net.processReady("1"); // applies 3
    expect(net.compact("1", 3).meta.config.voters).toEqual(["1", "3", "4"]);
  });

  test("a change that cannot be made throws a RangeError", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    const leader = net.raft("1");
    expect(() => leader.proposeConfigChange({ type: "add", node: "2", address: "http://2" })).toThrow(RangeError);
    expect(() => leader.proposeConfigChange({ type: "remove", node: "9", address: "" })).toThrow(RangeError);
    expect(() => leader.proposeConfigChange({ type: "add", node: "9", address: "" })).toThrow(RangeError);
    expect(() => leader.proposeConfigChange({ type: "add", node: "bad id!", address: "http://x" })).toThrow(RangeError);
    const single = new Network(["1"]);
    elect(single, "1");
    expect(() => single.raft("1").proposeConfigChange({ type: "remove", node: "1", address: "" })).toThrow(RangeError);
  });

  test("config entries encode the change and the resulting voters in canonical msgpack and decode only when consistent", () => {
    const entryValue = { change: { type: "add" as const, node: "4", address: "http://4" }, voters: ["1", "2", "3", "4"] };
    const bytes = encodeConfigEntry(entryValue);
    expect(decodeConfigEntry(bytes)).toEqual(entryValue);
    expect(encodeConfigEntry(decodeConfigEntry(bytes))).toEqual(bytes);
    expect(decodeConfigChange(bytes)).toEqual(entryValue.change);
    const bad = [
      encodeCanonical([2, "add", "4", "http://4", ["4"]]), // unknown version
      encodeCanonical([1, "swap", "4", "http://4", ["4"]]),
      encodeCanonical([1, "add", "4", "http://4", ["1", "2"]]), // voters lack the added member
      encodeCanonical([1, "remove", "2", "", ["1", "2"]]), // voters still hold the removed one
      encodeCanonical([1, "add", "4", "", ["4"]]), // an add without address
      encodeCanonical([1, "add", "4", "http://4", ["4", "1"]]), // unsorted
      encodeCanonical([1, "add", "4", "http://4", ["4", "4"]]), // duplicate
      encodeCanonical([1, "add", "4", "http://4", []]),
      encodeCanonical([1, "add", "4", "http://4"]),
      encodeCanonical({ a: 1 }),
      new Uint8Array([0xc1]),
      new Uint8Array(),
    ];
    for (const b of bad) expect(() => decodeConfigEntry(b)).toThrow(DecodeError);
  });
});

describe("robustness", () => {
  test("step never throws on well-formed messages with arbitrary numbers, in any role, and keeps terms and commits monotone", () => {
    const prng = createPrng(42);
    const kinds: Message["type"][] = ["append", "appendResponse", "vote", "voteResponse", "preVote", "preVoteResponse", "heartbeat", "heartbeatResponse", "snapshot", "timeoutNow", "readIndex", "readIndexResponse"];
    const num = () => [0, 1, 2, 3, 5, 100, 2 ** 40, Number.MAX_SAFE_INTEGER][prng.nextInt(8)]!;
    for (let round = 0; round < 300; round++) {
      const net = new Network(IDS3, { preVote: prng.nextInt(2) === 0, checkQuorum: prng.nextInt(2) === 0 }, round);
      elect(net, "1");
      net.raft("1").propose(text("x"));
      net.stabilize();
      const target = IDS3[prng.nextInt(3)]!;
      let lastTerm = net.raft(target).status().term;
      let lastCommit = net.raft(target).status().commit;
      for (let i = 0; i < 50; i++) {
        const type = kinds[prng.nextInt(kinds.length)]!;
        const index = num();
        const count = prng.nextInt(3);
        const entries = Array.from({ length: count }, (_, k) => entry(index + 1 + k, num()));
        const m = message({
          type, from: ["1", "2", "3", "9"][prng.nextInt(4)]!, to: target, term: num(), index, logTerm: num(), commit: num(),
          reject: prng.nextInt(2) === 0, rejectHint: num(), entries, context: prng.nextInt(2) === 0 ? text("c") : undefined,
          snapshot: type === "snapshot" ? { meta: { index: num() || 1, term: 1, config: { voters: IDS3 } }, data: text("") } : undefined,
        });
        net.deliver(m);
        net.processReady(target);
        net.inflight = [];
        const s = net.raft(target).status();
        expect(s.term).toBeGreaterThanOrEqual(lastTerm);
        expect(s.commit).toBeGreaterThanOrEqual(lastCommit);
        expect(s.commit).toBeLessThanOrEqual(s.lastIndex);
        lastTerm = s.term;
        lastCommit = s.commit;
      }
    }
  });

  test("an acknowledgement of entries the leader never had is ignored, not counted toward a commit", () => {
    const net = new Network(IDS3);
    elect(net, "1");
    net.deliver(message({ type: "appendResponse", from: "2", to: "1", term: 1, index: 50 }));
    expect(net.raft("1").status().progress["2"]!.match).toBeLessThanOrEqual(1);
    for (let i = 0; i < 3; i++) net.raft("1").propose(text(`${i}`));
    net.isolate("2");
    net.isolate("3");
    net.stabilize();
    expect(net.raft("1").status().commit).toBe(1);
  });

  test("a heartbeat's commit past the follower's log commits nothing; an append never replaces a committed entry", () => {
    const net = new Network(IDS3);
    net.load("2", { entries: [entry(1, 1), entry(2, 1)], term: 1, commit: 1 });
    net.deliver(message({ type: "heartbeat", from: "1", to: "2", term: 1, commit: 10 }));
    expect(net.raft("2").status().commit).toBe(1);
    net.deliver(message({ type: "append", from: "1", to: "2", term: 1, index: 0, logTerm: 0, entries: [entry(1, 2)], commit: 1 }));
    expect(net.raft("2").entriesBetween(1, 2).map((e) => e.term)).toEqual([1, 1]);
  });

  test("an append whose entries do not follow its index, or that carries an undecodable config entry, is dropped", () => {
    const net = new Network(IDS3);
    net.load("2", { entries: [entry(1, 1)], term: 1 });
    net.deliver(message({ type: "append", from: "1", to: "2", term: 1, index: 1, logTerm: 1, entries: [entry(3, 1)] }));
    net.deliver(message({ type: "append", from: "1", to: "2", term: 1, index: 1, logTerm: 1, entries: [entry(2, 1), entry(3, 0)] }));
    net.deliver(message({ type: "append", from: "1", to: "2", term: 1, index: 1, logTerm: 1, entries: [{ index: 2, term: 1, kind: "config", data: text("junk") }] }));
    expect(net.raft("2").status().lastIndex).toBe(1);
    expect(net.takeMessages("2")).toEqual([]);
  });
});
