// kill -9 of a node while it pulls a folder from its peer, at several points of the pull: after
// each restart it picks up where it was (fetching only what it still lacks), ends on the
// peer's head with the whole tree, and passes verify; the data folder passes verify offline.
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";

const CLUSTER_TOKEN = "crash-cluster-token";
const running: NodeProcess[] = [];

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

/** The folder's head as B's metadata holds it (B stopped): null for none, undefined when unreadable. */
function headOnDisk(dataDir: string): string | null | undefined {
  try {
    const db = new Database(join(dataDir, "metadata.sqlite"), { readonly: true });
    try {
      const row = db.query("SELECT head FROM folders WHERE name = 'big'").get() as { head: Uint8Array | null } | null;
      return row?.head ? Buffer.from(row.head).toString("hex") : null;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

async function statusOf(url: string): Promise<any> {
  return (await fetch(`${url}/v1/status`)).json();
}

test("a node killed with -9 in the middle of pulls catches up and verifies clean", async () => {
  const [portA, portB] = [await freePort(), await freePort()];
  const urlA = `http://127.0.0.1:${portA}`;
  const urlB = `http://127.0.0.1:${portB}`;
  const a = await startNode({ listen: `127.0.0.1:${portA}`, args: ["--node-id", "node-a", "--cluster-token", CLUSTER_TOKEN, "--peers", urlB] });
  running.push(a);
  const dataB = join(tempDir(), "b");
  const startB = () =>
    startNode({ dataDir: dataB, listen: `127.0.0.1:${portB}`, args: ["--node-id", "node-b", "--cluster-token", CLUSTER_TOKEN, "--peers", urlA, "--sync-interval-ms", "200"] });

  // Several versions, each with a large new file and many small ones, so pulls take a while.
  const source = join(tempDir(), "src");
  const killDelaysMs = [30, 90, 200, 350];
  let killedBeforeCaughtUp = 0;
  for (const [round, delayMs] of killDelaysMs.entries()) {
    writeTree(source, {
      [`big-${round}.bin`]: randomBytes(8_000_000, 500 + round),
      [`dir-${round}`]: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`f${i}.txt`, `round ${round} file ${i}\n`])),
    });
    // B is down while A takes the push, then comes back and is killed partway through its pull.
    expect((await runCli(["push", source, "--remote", urlA, "--folder", "big"])).code).toBe(0);
    const b = await startB();
    await Bun.sleep(delayMs);
    await b.kill9();
    // Where did the kill land? B's head, read from its metadata while it is down.
    const headA = (await (await fetch(`${urlA}/v1/folders/big`)).json()).head;
    const headB = headOnDisk(dataB);
    if (headB !== undefined && headB !== headA) killedBeforeCaughtUp++;
  }
  // At least one kill landed before B had caught up (in practice most do).
  expect(killedBeforeCaughtUp).toBeGreaterThan(0);

  const b = await startB();
  running.push(b);
  const headA = (await (await fetch(`${urlA}/v1/folders/big`)).json()).head;
  let headB: string | null = null;
  for (let attempt = 0; attempt < 600 && headB !== headA; attempt++) {
    const response = await fetch(`${urlB}/v1/folders/big`);
    headB = response.status === 200 ? (await response.json()).head : null;
    if (headB !== headA) await Bun.sleep(100);
  }
  expect(headB).toBe(headA);
  // Every version A has is in B's history too.
  const versionsA = (await (await fetch(`${urlA}/v1/folders/big/versions`)).json()).versions.map((v: { id: string }) => v.id);
  const versionsB = new Set((await (await fetch(`${urlB}/v1/folders/big/versions`)).json()).versions.map((v: { id: string }) => v.id));
  for (const id of versionsA) expect(versionsB.has(id)).toBe(true);

  const pulled = join(tempDir(), "pulled");
  expect((await runCli(["pull", pulled, "--remote", urlB, "--folder", "big"])).code).toBe(0);
  expect(describeTree(pulled)).toEqual(describeTree(source));
  const verify = await runCli(["verify", "--remote", urlB, "--json"]);
  expect(verify.code).toBe(0);
  expect(verify.json().healthy).toBe(true);
  expect((await statusOf(urlB)).replication.pullFailures).toBe(0);
  await b.stop();
  const offline = await runCli(["verify", "--data", dataB, "--json"]);
  expect(offline.code).toBe(0);
  expect(offline.json().metadataIntegrity).toBe("ok");
}, 180_000);
