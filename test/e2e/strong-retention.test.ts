// A strong folder's retention goes through the cluster's log: `PUT /v1/folders/:folder/retention`
// sent to a follower is handed to the leader, committed, and applied by every member, so every
// member keeps the same versions; what a collection prunes is then the same everywhere.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupTempDirs } from "../helpers/processes.ts";
import { allVersions, startStrongCluster, strongFolderWithClients, waitForAgreement, type StrongClients, type StrongCluster } from "../helpers/strong-cluster.ts";

const FOLDER = "ledger";
let cluster: StrongCluster;
let clients: StrongClients;

beforeAll(async () => {
  cluster = await startStrongCluster();
  ({ clients } = await strongFolderWithClients(cluster, FOLDER, 0));
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
  cleanupTempDirs();
});

async function retentionAt(url: string): Promise<{ keepVersions: number | null; keepDays: number | null }> {
  const response = await fetch(`${url}/v1/folders/${FOLDER}?stale=1`, { signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { keepVersions: number | null; keepDays: number | null };
  return { keepVersions: body.keepVersions, keepDays: body.keepDays };
}

async function putRetention(url: string, body: object): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/v1/folders/${FOLDER}/retention`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: await response.json() };
}

/** Polls until every node holds `wanted` as the folder's retention (bounded). */
async function retentionEverywhere(wanted: { keepVersions: number | null; keepDays: number | null }): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const seen = await Promise.all(cluster.urls.map(retentionAt));
    if (seen.every((r) => r.keepVersions === wanted.keepVersions && r.keepDays === wanted.keepDays)) return;
    if (Date.now() > deadline) throw new Error(`retention of ${FOLDER} per node: ${JSON.stringify(seen)}, wanted ${JSON.stringify(wanted)} everywhere`);
    await Bun.sleep(100);
  }
}

describe("a strong folder's retention", () => {
  test("set through a follower: every member takes it from the log, and a collection keeps the same versions on each", async () => {
    const leader = await cluster.waitForLeader();
    const follower = (leader + 1) % cluster.size;

    const set = await putRetention(cluster.urls[follower], { keepVersions: 3 });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body.keepVersions).toBe(3);
    await retentionEverywhere({ keepVersions: 3, keepDays: null });

    // An absent field is unchanged, null removes a limit; through another follower this time.
    const other = (leader + 2) % cluster.size;
    expect((await putRetention(cluster.urls[other], { keepDays: 30 })).status).toBe(200);
    await retentionEverywhere({ keepVersions: 3, keepDays: 30 });
    expect((await putRetention(cluster.urls[leader], { keepDays: null })).status).toBe(200);
    await retentionEverywhere({ keepVersions: 3, keepDays: null });

    // Eight more pushes, then a collection on every node: each keeps the same (newest) versions.
    for (let i = 0; i < 8; i++) {
      if (!(await clients.push("writer", cluster.urls[i % cluster.size]))) throw new Error(`push ${i} was not acknowledged: ${JSON.stringify(clients.tally)}`);
    }
    await waitForAgreement(cluster.urls, FOLDER);
    for (const url of cluster.urls) {
      const gc = await fetch(`${url}/v1/gc`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ graceMs: 0 }), signal: AbortSignal.timeout(30_000) });
      expect(gc.status, await gc.text()).toBe(200);
    }
    const kept = await Promise.all(cluster.urls.map(async (url) => (await allVersions(url, FOLDER)).map((v) => v.id).sort()));
    for (const ids of kept) expect(ids).toEqual(kept[0]);
    expect(kept[0].length).toBeLessThan(9);
    expect(kept[0].length).toBeGreaterThanOrEqual(3);

    // A folder the log does not hold: 404 on a follower as on the leader, nothing proposed.
    const missing = await fetch(`${cluster.urls[follower]}/v1/folders/no-such-folder/retention`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ keepVersions: 1 }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(missing.status).toBe(404);
  }, 90_000);
});
