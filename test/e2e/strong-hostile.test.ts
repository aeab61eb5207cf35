// The strong API as a hostile or careless client uses it, against three real `dsync serve`
// processes: a commit naming another folder's version as its parent, a consistency that is
// neither mode, a folder name that differs from a strong one only by case, a message at and past
// its bound, 100 pushes at once through the three nodes, `cluster add` of an address that is no
// dsync node, or of this node, and `cluster remove` of the leader itself. Each is answered as
// docs/security.md ("Attacks tried") says, and the strong folders stay linearizable.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cleanupTempDirs, runCli } from "../helpers/processes.ts";
import {
  allVersions,
  checkStrongRun,
  createStrongFolder,
  startStrongCluster,
  strongFolderWithClients,
  StrongClients,
  waitForAgreement,
  type CommitContent,
  type StrongCluster,
} from "../helpers/strong-cluster.ts";

let cluster: StrongCluster;
let content: CommitContent;
let fake: Server | null = null;

beforeAll(async () => {
  cluster = await startStrongCluster();
  ({ content } = await strongFolderWithClients(cluster, "ledger", 1));
}, 60_000);

afterAll(async () => {
  fake?.close();
  await cluster?.stopAll();
  cleanupTempDirs();
});

async function send(method: string, url: string, body?: unknown, timeoutMs = 30_000): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed };
}

async function followerIndex(): Promise<number> {
  return ((await cluster.waitForLeader()) + 1) % cluster.size;
}

describe("what a strong commit names", () => {
  test("another folder's version as parent: left out of the history, the push merged onto the head without it", async () => {
    await createStrongFolder(cluster.urls[0], "other");
    const otherPush = await send("POST", `${cluster.urls[0]}/v1/folders/other/commit`, { ...content, parent: null, message: "in other" });
    expect(otherPush.status, JSON.stringify(otherPush.body)).toBe(200);
    const foreign = otherPush.body.version as string;

    const follower = await followerIndex();
    const pushed = await send("POST", `${cluster.urls[follower]}/v1/folders/ledger/commit`, { ...content, parent: foreign, message: "names a version of other" });
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(200);
    await waitForAgreement(cluster.urls, "ledger");
    for (const url of cluster.urls) {
      const versions = await allVersions(url, "ledger");
      expect(versions.some((v) => v.id === foreign), `${url} holds no version of other in ledger`).toBe(false);
      expect(versions.every((v) => !v.parents.includes(foreign)), `no version of ledger on ${url} has other's as parent`).toBe(true);
    }
  }, 30_000);

  test("a message at its bound (4096 bytes of UTF-8, 2 bytes a character) through a follower lands; one byte more is 400", async () => {
    const follower = await followerIndex();
    const head = (await send("GET", `${cluster.urls[follower]}/v1/folders/ledger`)).body.head as string;
    const atBound = "é".repeat(2048);
    const landed = await send("POST", `${cluster.urls[follower]}/v1/folders/ledger/commit`, { ...content, parent: head, message: atBound });
    expect(landed.status, JSON.stringify(landed.body).slice(0, 300)).toBe(200);
    // The same again from a stale parent: the pushed version and the merge in one log entry.
    const merged = await send("POST", `${cluster.urls[(follower + 1) % cluster.size]}/v1/folders/ledger/commit`, { ...content, parent: head, message: "é".repeat(2047) + "ab" });
    expect(merged.status, JSON.stringify(merged.body).slice(0, 300)).toBe(200);
    expect(merged.body.mergedWith).not.toBeNull();
    const tooLong = await send("POST", `${cluster.urls[follower]}/v1/folders/ledger/commit`, { ...content, parent: head, message: atBound + "x" });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toContain("message");
    await waitForAgreement(cluster.urls, "ledger");
  }, 90_000);
});

describe("what a folder is called and how it is made", () => {
  test("a consistency that is neither mode is 400 on the leader and on a follower; nothing is made", async () => {
    for (const url of cluster.urls) {
      for (const consistency of ["Strong", "linearizable", "", 1, true, ["strong"], { mode: "strong" }]) {
        const reply = await send("POST", `${url}/v1/folders`, { name: "odd-mode", consistency });
        expect(reply.status, `${JSON.stringify(consistency)} on ${url}: ${JSON.stringify(reply.body)}`).toBe(400);
      }
    }
    for (const url of cluster.urls) expect((await send("GET", `${url}/v1/folders/odd-mode?stale=1`)).status).toBe(404);
  }, 30_000);

  test("a name that differs from a strong folder's only by case is refused (409 naming it), as a new folder or a first push", async () => {
    const follower = await followerIndex();
    for (const url of [cluster.urls[follower], cluster.urls[(follower + 2) % cluster.size]]) {
      for (const consistency of ["eventual", "strong"]) {
        const made = await send("POST", `${url}/v1/folders`, { name: "Ledger", consistency });
        expect(made.status, `${consistency} Ledger on ${url}: ${JSON.stringify(made.body)}`).toBe(409);
        expect(made.body.error).toContain("ledger");
      }
      const pushed = await send("POST", `${url}/v1/folders/LEDGER/commit`, { ...content, parent: null, message: "to the wrong case" });
      expect(pushed.status, JSON.stringify(pushed.body)).toBe(409);
      expect(pushed.body.error).toContain("ledger");
    }
    for (const url of cluster.urls) {
      expect((await send("GET", `${url}/v1/folders/Ledger?stale=1`)).status).toBe(404);
      expect((await send("GET", `${url}/v1/folders/LEDGER?stale=1`)).status).toBe(404);
    }
  }, 30_000);
});

describe("many writers at once", () => {
  test("100 strong pushes at once through the three nodes: every acknowledged one in every node's history, all agree, linearizable", async () => {
    const many = new StrongClients("burst", content, 120_000);
    await createStrongFolder(cluster.urls[0], "burst");
    const started = performance.now();
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => many.push(`writer-${i}`, cluster.urls[i % cluster.size])));
    const tookMs = performance.now() - started;
    const acknowledged = outcomes.filter((o) => o !== null).length;
    console.log(`100 concurrent strong pushes through 3 nodes: ${acknowledged} acknowledged in ${tookMs.toFixed(0)} ms; ${JSON.stringify(many.tally)}`);
    expect(many.tally.unexpected).toEqual([]);
    // Nothing failed on its way: no node fell over, every leader was reachable.
    expect(acknowledged).toBe(100);
    console.log(`burst: ${await checkStrongRun(cluster, many)}`);
  }, 180_000);
});

describe("membership", () => {
  test("cluster add of an address that is no dsync node, or of a node answering as one without the cluster's log, or of this node: refused, the group unchanged", async () => {
    // An HTTP server that answers every request with what a node's folder listing looks like.
    fake = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "x-dsync-node": "impostor-1" });
      res.end(JSON.stringify({ node: "impostor-1", folders: [], next: null, limit: 1 }));
    });
    await new Promise<void>((resolve) => fake!.listen(0, "127.0.0.1", resolve));
    const fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    const leader = await cluster.waitForLeader();
    const before = (await cluster.consensus(leader))!;
    const follower = (leader + 1) % cluster.size;

    for (const url of [cluster.urls[leader], cluster.urls[follower]]) {
      const impostor = await send("POST", `${url}/v1/cluster/members`, { address: fakeUrl });
      expect(impostor.status, `impostor via ${url}: ${JSON.stringify(impostor.body)}`).toBe(409);
      const nothing = await send("POST", `${url}/v1/cluster/members`, { address: "http://127.0.0.1:9" });
      expect(nothing.status, JSON.stringify(nothing.body)).toBe(409);
      for (const self of [cluster.urls[leader], url]) {
        const again = await send("POST", `${url}/v1/cluster/members`, { address: self });
        // A member already: nothing to add (200 added false), never a second entry for it.
        expect(again.status, `${self} via ${url}: ${JSON.stringify(again.body)}`).toBe(200);
        expect(again.body.added).toBe(false);
      }
    }
    const after = (await cluster.consensus(leader))!;
    expect(after.members.map((m) => m.id).sort()).toEqual(before.members.map((m) => m.id).sort());

    // The CLI says why.
    const cli = await runCli(["cluster", "add", fakeUrl, "--remote", cluster.urls[follower]]);
    expect(cli.code).not.toBe(0);
  }, 60_000);

  test("cluster remove of the leader itself: it steps down, the other two elect a leader and take pushes; added back, it catches up", async () => {
    const leader = await cluster.waitForLeader();
    const leaderId = cluster.nodeIds[leader];
    const removed = await send("DELETE", `${cluster.urls[leader]}/v1/cluster/members/${leaderId}`);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    const others = cluster.urls.filter((_, i) => i !== leader);

    // The two left elect one of themselves and go on.
    const deadline = Date.now() + 20_000;
    let newLeader: number | null = null;
    while (newLeader === null) {
      if (Date.now() > deadline) throw new Error("no leader among the two left after the leader removed itself");
      for (let i = 0; i < cluster.size; i++) {
        if (i === leader) continue;
        const status = await cluster.consensus(i);
        if (status?.role === "leader" && !status.members.some((m) => m.id === leaderId)) newLeader = i;
      }
      await Bun.sleep(100);
    }
    // A folder of its own, every operation on it recorded (the ones above were sent apart from the history).
    await createStrongFolder(others[0], "after-remove");
    const writers = new StrongClients("after-remove", content, 20_000);
    for (let k = 0; k < 4; k++) {
      if (!(await writers.push("after-remove", others[k % others.length]))) throw new Error(`push ${k} after the leader removed itself: ${JSON.stringify(writers.tally)}`);
    }
    await waitForAgreement(others, "after-remove");

    // The removed node takes no strong write (it is not a member), and is added back with its data.
    const refused = await send("POST", `${cluster.urls[leader]}/v1/folders/ledger/commit`, { ...content, parent: null, message: "to a removed node" }, 30_000);
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    const added = await send("POST", `${cluster.urls[newLeader]}/v1/cluster/members`, { address: cluster.urls[leader] });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(added.body.added).toBe(true);
    await cluster.waitForLeader("a leader of the three again");
    for (let k = 0; k < 3; k++) {
      if (!(await writers.push("after-add", cluster.urls[k]))) throw new Error(`push ${k} after the node was added back: ${JSON.stringify(writers.tally)}`);
    }
    console.log(`leader removed itself: ${await checkStrongRun(cluster, writers)}`);
  }, 90_000);
});
