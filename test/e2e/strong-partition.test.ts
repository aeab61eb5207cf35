// Three real nodes whose links to each other go through cuttable proxies, so one node can be cut
// off from the other two while clients still reach it. Cut off, a node takes no strong push and
// serves no linearizable read (503 naming the leader it knows, with Retry-After), while the two
// others go on electing and committing; an eventual folder keeps taking pushes on the isolated
// node; healed, all three agree, and the strong folder's history is linearizable. The leader is
// cut off first, then a follower, by links that blackhole (as a real partition does). Raft
// messages without the cluster credential, or from a node that is not a member, are refused and
// change nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Message } from "../../src/core/raft/types.ts";
import { encodeRaftMessages } from "../../src/wire/raft-message.ts";
import { PUSH, type HeadInput, type PushOutput } from "../helpers/linearizability/head-register.ts";
import type { CutMode } from "../helpers/cuttable-proxy.ts";
import { cleanupTempDirs, runCli, tempDir } from "../helpers/processes.ts";
import {
  allVersions,
  checkStrongRun,
  CLUSTER_TOKEN,
  headAt,
  startStrongCluster,
  strongFolderWithClients,
  waitForAgreement,
  type CommitContent,
  type StrongClients,
  type StrongCluster,
} from "../helpers/strong-cluster.ts";
import { writeTree } from "../helpers/trees.ts";

const STRONG = "contracts";
const EVENTUAL = "scratch";
/** How long a cut-off node may take to answer a strong request: its read barrier's or its forwarding's wait, and slack for a loaded machine. */
const UNAVAILABLE_ANSWER_CAP_MS = 20_000;

let cluster: StrongCluster;
let clients: StrongClients;
/** The tree every commit names (pushed once): what the commit body carries besides parent and message. */
let content: CommitContent;
let dir: string;

beforeAll(async () => {
  cluster = await startStrongCluster({ proxies: true });
  ({ clients, content } = await strongFolderWithClients(cluster, STRONG, 2));
  dir = tempDir("linearizability-client-");
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
  cleanupTempDirs();
});

/** A strong request to the cut-off node: must be a 503 naming a leader (or none) with Retry-After, within the cap. */
async function expectUnavailable(url: string, init: RequestInit, what: string): Promise<{ leader: { id: string; address: string | null } | null }> {
  const started = performance.now();
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(UNAVAILABLE_ANSWER_CAP_MS) }).catch((error: Error) => {
    throw new Error(`${what}: no answer within ${UNAVAILABLE_ANSWER_CAP_MS} ms (${error.message})`);
  });
  const body = (await response.json().catch(() => null)) as { error: string; leader: { id: string; address: string | null } | null } | null;
  expect(response.status, `${what}: ${JSON.stringify(body)}`).toBe(503);
  expect(response.headers.get("retry-after"), what).toBeTruthy();
  expect(typeof body?.error).toBe("string");
  expect(body && "leader" in body, `${what}: the 503 names the leader known (or null)`).toBe(true);
  console.log(`${what}: 503 after ${(performance.now() - started).toFixed(0)} ms, leader ${JSON.stringify(body!.leader)}`);
  return body!;
}

/** Pushes through every node but `isolated` until `count` more are acknowledged (bounded). */
async function writesGoOn(isolated: number, count: number, clientId: string): Promise<void> {
  const others = cluster.urls.filter((_, i) => i !== isolated);
  const target = clients.tally.acknowledgedPushes + count;
  const deadline = Date.now() + 20_000;
  for (let k = 0; clients.tally.acknowledgedPushes < target; k++) {
    if (Date.now() > deadline) throw new Error(`the majority side acknowledged ${clients.tally.acknowledgedPushes} of ${target} pushes: ${JSON.stringify(clients.tally)}`);
    if (!(await clients.push(clientId, others[k % others.length]))) await Bun.sleep(50);
    await clients.read(`${clientId}-reader`, others[(k + 1) % others.length]);
  }
}

async function eventualPushOn(url: string, name: string): Promise<string> {
  // A directory of its own each time: a first push from there, merged onto whatever the node holds.
  const source = join(dir, `${EVENTUAL}-${name}`);
  writeTree(source, { [`${name}.txt`]: `${name}\n` });
  const pushed = await runCli(["push", source, "--remote", url, "--folder", EVENTUAL, "--json"]);
  expect(pushed.code, pushed.stderr).toBe(0);
  return pushed.json().version as string;
}

async function isolationRound(isolated: number, leaderBefore: number, label: string, mode: CutMode): Promise<void> {
  const c = cluster;
  const url = c.urls[isolated];
  c.mesh!.isolate(isolated, mode);
  try {
    await whileIsolated(isolated, leaderBefore, label, url);
  } finally {
    c.mesh!.healAll();
  }

  // Healed: one strong head everywhere, and the eventual pushes reach every node.
  await c.waitForLeader(`a leader after healing (${label})`);
  await waitForAgreement(c.urls, STRONG, 30_000);
  await waitForAgreement(c.urls, EVENTUAL, 30_000);
  for (const other of c.urls) {
    const ids = (await allVersions(other, EVENTUAL)).map((v) => v.id);
    expect(ids, `the eventual push on the cut-off node reached ${other}`).toContain(eventualPushed.get(label)!);
  }
}

/** Pushes to the eventual folder on a cut-off node, by round. */
const eventualPushed = new Map<string, string>();

async function whileIsolated(isolated: number, leaderBefore: number, label: string, url: string): Promise<void> {
  const c = cluster;

  // At once, a strong push to the cut-off node (a leader proposes it and cannot commit it; a
  // follower cannot hand it over), while the other two go on, electing a new leader first when
  // the cut-off node led.
  const message = `${label}-isolated-push`;
  const handle = clients.recorder.invoke<HeadInput, PushOutput>(`${label}-isolated`, PUSH, { folder: STRONG, message });
  const refusedPush = expectUnavailable(
    `${url}/v1/folders/${STRONG}/commit`,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...content, parent: null, message }) },
    `a strong push to ${c.nodeIds[isolated]} (${label})`,
  );
  // A 503 after proposing may still commit: whether it did is read from the history later.
  void refusedPush.then(
    () => handle.unknown(),
    () => handle.unknown(),
  );
  await writesGoOn(isolated, 5, `${label}-majority`);
  const leaderDuring = await c.waitForLeader(`a leader on the majority side (${label})`);
  expect(leaderDuring).not.toBe(isolated);
  if (isolated !== leaderBefore) expect(leaderDuring).toBe(leaderBefore);
  const pushReply = await refusedPush;
  if (isolated !== leaderBefore) expect(pushReply.leader?.id, "a cut-off follower names the leader it last knew").toBe(c.nodeIds[leaderBefore]);

  // No linearizable read there either; its own copy is still readable when asked for as stale.
  const readReply = await expectUnavailable(`${url}/v1/folders/${STRONG}`, {}, `a linearizable read on ${c.nodeIds[isolated]} (${label})`);
  // By now it may have given up on the leader it knew (an election timeout passed): none, or that one, never another.
  if (readReply.leader !== null) expect(readReply.leader.id).toBe(c.nodeIds[leaderBefore]);
  expect(await headAt(url, STRONG, true)).not.toBeUndefined();

  // The eventual folder keeps taking pushes there.
  eventualPushed.set(label, await eventualPushOn(url, `${label}-on-isolated`));
  await writesGoOn(isolated, 3, `${label}-majority`);
}

describe("a node cut off from the other two", () => {
  test("the leader, then a follower: no strong acknowledgement or linearizable read there, the others go on, all agree after healing", async () => {
    const c = cluster;
    await eventualPushOn(c.urls[0], "before");

    // Links cut as a real partition cuts them: packets vanish, connections hang.
    const leader = await c.waitForLeader();
    await isolationRound(leader, leader, "leader-cut", "blackhole");

    const leaderNow = await c.waitForLeader();
    const follower = (leaderNow + 1) % c.size;
    await isolationRound(follower, leaderNow, "follower-cut", "blackhole");

    // Every node holds every acknowledged push as acknowledged; the history is linearizable.
    console.log(`strong partition: ${await checkStrongRun(c, clients)}`);
  }, 120_000);
});

describe("Raft messages from outside the group", () => {
  test("without the cluster token, or from a node that is not a member, or addressed to another: refused, term and log unchanged", async () => {
    const c = cluster;
    c.mesh!.healAll();
    const leader = await c.waitForLeader();
    const target = (leader + 1) % c.size;
    const url = `${c.urls[target]}/v1/peer/raft`;
    const before = await c.consensus(target);
    if (!before) throw new Error(`${c.nodeIds[target]} gives no consensus status`);
    // Each would take over the group if obeyed: a term far ahead, a log that overwrites everything.
    const term = before.term + 100;
    const message = (from: string, to: string, type: Message["type"]): Message => ({
      type,
      from,
      to,
      term,
      logTerm: term,
      index: type === "append" ? 0 : before.lastIndex + 100,
      entries: type === "append" ? [{ term, index: 1, kind: "normal", data: new Uint8Array([1, 2, 3]) }] : [],
      commit: type === "append" ? 1 : 0,
      reject: false,
      rejectHint: 0,
    });
    const send = async (messages: Message[], token: string | null) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/msgpack", ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
        body: new Uint8Array(encodeRaftMessages(messages)),
        signal: AbortSignal.timeout(10_000),
      });
    const self = c.nodeIds[target];
    const member = c.nodeIds[leader];
    const other = c.nodeIds[(target + 1) % c.size === leader ? (target + 2) % c.size : (target + 1) % c.size];

    const statuses: [string, number][] = [];
    for (const type of ["vote", "append", "heartbeat", "timeoutNow"] as const) {
      statuses.push([`${type} without a token`, (await send([message(member, self, type)], null)).status]);
      statuses.push([`${type} with a wrong token`, (await send([message(member, self, type)], "not-the-cluster-token")).status]);
      statuses.push([`${type} from a non-member`, (await send([message("intruder-1", self, type)], CLUSTER_TOKEN)).status]);
      statuses.push([`${type} to another member`, (await send([message(member, other, type)], CLUSTER_TOKEN)).status]);
    }
    expect(statuses).toEqual(
      ["vote", "append", "heartbeat", "timeoutNow"].flatMap((type) => [
        [`${type} without a token`, 401],
        [`${type} with a wrong token`, 401],
        [`${type} from a non-member`, 403],
        [`${type} to another member`, 403],
      ]),
    );

    // Nothing changed: not the term, not the log, not who leads.
    const after = (await c.consensus(target))!;
    expect({ term: after.term, lastIndex: after.lastIndex, commit: after.commit, leader: after.leader?.id }).toEqual({
      term: before.term,
      lastIndex: before.lastIndex,
      commit: before.commit,
      leader: before.leader?.id,
    });
    expect(await c.leader()).toBe(leader);

    // The control: the same kind of message from a member, with the token, is obeyed (the term
    // jumps), so what refused the others above was who sent them, not their shape.
    const obeyed = await send([message(member, self, "heartbeat")], CLUSTER_TOKEN);
    expect(obeyed.status).toBe(200);
    const controlled = await c.consensus(target);
    expect(controlled?.term).toBe(term);
  }, 30_000);
});
