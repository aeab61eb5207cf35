// Strong folders through the CLI against real `dsync serve` processes. One node (a Raft group of
// itself): folders made in either mode and shown so by ls and status, a strong folder pushed and
// pulled, a stale parent merged, the mode mismatch refused with nothing pushed, --stale reads.
// Three nodes: a push through a follower lands on the leader and on every node, status shows the
// term and the leader, and a member is removed and added back with dsync cluster.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const running: NodeProcess[] = [];
afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

/** Runs the CLI and fails with its output when it does not exit `code`. */
async function cli(args: string[], code = 0) {
  const result = await runCli(args);
  if (result.code !== code) throw new Error(`dsync ${args.join(" ")} exited ${result.code}, not ${code}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

describe("one node", () => {
  test("folders in both modes, a strong folder pushed, pulled and merged, a mode mismatch refused, --stale reads", async () => {
    const node = await startNode();
    running.push(node);
    const remote = ["--remote", node.url];

    const made = await cli(["folder", "create", "ledger", "--consistency", "strong", ...remote]);
    expect(made.stdout).toContain("made a strong folder");
    expect((await cli(["folder", "create", "ledger", "--consistency", "strong", ...remote])).stdout).toContain("exists already as a strong folder");
    const mismatch = await cli(["folder", "create", "ledger", "--consistency", "eventual", ...remote], 1);
    expect(mismatch.stderr).toContain("ledger");
    expect(mismatch.stderr).toContain("strong folder");
    await cli(["folder", "create", "photos", ...remote]);

    const ls = (await cli(["ls", ...remote])).stdout;
    expect(ls).toMatch(/^ledger\t\(empty\)\tstrong$/m);
    expect(ls).toMatch(/^photos\t\(empty\)\teventual$/m);

    // Pushed and pulled, then two copies pushing from the same version: merged onto the head.
    const a = join(tempDir(), "a");
    writeTree(a, { "one.txt": "one\n", "shared.txt": "base\n" });
    await cli(["push", a, "--folder", "ledger", ...remote]);
    const b = join(tempDir(), "b");
    await cli(["pull", b, "--folder", "ledger", ...remote]);
    expect(readFileSync(join(b, "one.txt"), "utf8")).toBe("one\n");
    writeTree(a, { "from-a.txt": "a\n" });
    await cli(["push", a]);
    writeTree(b, { "from-b.txt": "b\n" });
    const merged = await cli(["push", b]);
    expect(merged.stdout).toContain("merged with the newer head");
    await cli(["pull", b]);
    expect(readFileSync(join(b, "from-a.txt"), "utf8")).toBe("a\n");
    expect(readFileSync(join(b, "from-b.txt"), "utf8")).toBe("b\n");
    const versions = (await cli(["log", b, "--json"])).json().versions as { origin: string }[];
    expect(versions.map((v) => v.origin)).toEqual(["merge", "push", "push", "push"]);

    // --stale reads the same here (one node: nothing is behind).
    const c = join(tempDir(), "c");
    await cli(["pull", c, "--folder", "ledger", "--stale", ...remote]);
    expect((await cli(["log", c, "--stale", "--json"])).json().versions).toHaveLength(4);
    await cli(["diff", "--stale", b, `${node.url}/ledger`]);
    expect((await getJson(`${node.url}/v1/folders/ledger?stale=1`)).body.mode).toBe("strong");

    // push --consistency: a first push makes the folder in that mode; the other mode is refused with nothing pushed.
    const d = join(tempDir(), "d");
    writeTree(d, { "x.txt": "x\n" });
    await cli(["push", d, "--folder", "config", "--consistency", "strong", ...remote]);
    expect((await getJson(`${node.url}/v1/folders/config`)).body).toMatchObject({ mode: "strong" });
    const e = join(tempDir(), "e");
    writeTree(e, { "y.txt": "y\n" });
    const refused = await cli(["push", e, "--folder", "photos", "--consistency", "strong", ...remote], 1);
    expect(refused.stderr).toContain("photos");
    expect(refused.stderr).toContain("eventual folder, not strong");
    expect((await getJson(`${node.url}/v1/folders/photos`)).body.head).toBeNull();

    const status = (await cli(["status", ...remote])).stdout;
    expect(status).toContain("folder ledger (strong)");
    expect(status).toContain("folder photos (eventual)");
    // A group of one knows no address of itself (no peer ever names it).
    expect(status).toMatch(/^consensus: leader, term \d+, leader \S+( at \S+)? \(this node\); commit (\d+), applied \2, last index \2$/m);
    expect(status).toMatch(/^  member \S+: this node$/m);
  }, 120_000);
});

const CLUSTER_TOKEN = "strong-api-cluster-token";

/** Each node's view of the Raft group, once every node names the same leader and all three are members. */
async function agreedLeader(urls: string[], capMs = 30_000): Promise<{ id: string; url: string }> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const views = await Promise.all(urls.map((url) => getJson(`${url}/v1/status`).then((r) => r.body.consensus).catch(() => null)));
    const leaderIds = views.map((v) => v?.leader?.id ?? null);
    if (leaderIds[0] && leaderIds.every((id) => id === leaderIds[0]) && views.every((v) => v.members.length === urls.length)) {
      const index = views.findIndex((v) => v.role === "leader");
      if (index >= 0) return { id: leaderIds[0], url: urls[index]! };
    }
    if (Date.now() > deadline) throw new Error(`no agreed leader within ${capMs} ms: ${JSON.stringify(views)}`);
    await Bun.sleep(100);
  }
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, capMs = 30_000): Promise<T> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const value = await read().catch(() => undefined as T);
    if (value !== undefined && done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${capMs} ms (last: ${JSON.stringify(value)})`);
    await Bun.sleep(100);
  }
}

describe("three nodes", () => {
  test("a push through a follower lands on the leader and every node; status shows the term and leader; a member removed and added back", async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const ids = ["node-a", "node-b", "node-c"];
    const nodes = await Promise.all(
      [0, 1, 2].map((i) =>
        startNode({
          listen: `127.0.0.1:${ports[i]}`,
          args: ["--node-id", ids[i]!, "--peers", urls.filter((_, j) => j !== i).join(","), "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300"],
        }),
      ),
    );
    running.push(...nodes);
    const leader = await agreedLeader(urls);
    const followers = urls.filter((url) => url !== leader.url);
    const [viaFollower, other] = followers as [string, string];
    const otherId = ids[urls.indexOf(other)]!;

    // Made and pushed through a follower: the follower hands both to the leader.
    await cli(["folder", "create", "ledger", "--consistency", "strong", "--remote", viaFollower]);
    const dir = join(tempDir(), "ledger");
    writeTree(dir, { "entry.txt": "first\n" });
    const pushed = (await cli(["push", dir, "--folder", "ledger", "--remote", viaFollower, "--json"])).json();
    // A linearizable read on any node sees the acknowledged push at once: no waiting for replication.
    for (const url of urls) expect({ url, head: (await getJson(`${url}/v1/folders/ledger`)).body.head }).toEqual({ url, head: pushed.version });
    const leaderView = (await getJson(`${leader.url}/v1/folders/ledger/versions`)).body.versions;
    expect(leaderView.map((v: { id: string }) => v.id)).toEqual([pushed.version]);
    // Pulled from the other follower, stale or not, it is the same.
    const copy = join(tempDir(), "copy");
    await cli(["pull", copy, "--folder", "ledger", "--remote", other]);
    expect(readFileSync(join(copy, "entry.txt"), "utf8")).toBe("first\n");

    // A tree neither the follower nor the leader holds: the leader's check names what is missing,
    // and that answer reaches the client unchanged (it uploads those to the follower and commits again).
    const lost = "ab".repeat(32);
    const incomplete = await fetch(`${viaFollower}/v1/folders/ledger/commit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ root: lost, parent: pushed.version, message: "", chunking: "x", files: 1, bytes: 1 }),
    });
    expect(incomplete.status).toBe(409);
    expect(((await incomplete.json()) as { missing: string[] }).missing).toEqual([lost]);

    // A restore through a follower goes to the leader too, and its answer comes back.
    const restored = (await cli(["restore", pushed.version, dir, "--no-pull", "--remote", viaFollower, "--json"])).json();
    expect(restored.version).not.toBe(pushed.version);
    for (const url of urls) expect({ url, head: (await getJson(`${url}/v1/folders/ledger`)).body.head }).toEqual({ url, head: restored.version });

    const followerStatus = (await cli(["status", "--remote", viaFollower])).stdout;
    expect(followerStatus).toMatch(new RegExp(`^consensus: follower, term \\d+, leader ${leader.id} at ${leader.url.replace(/\./g, "\\.")}; commit \\d+, applied \\d+`, "m"));
    const leaderStatus = (await cli(["status", "--remote", leader.url])).stdout;
    expect(leaderStatus).toMatch(/^consensus: leader, term \d+, leader \S+ .*\(this node\)/m);
    for (const id of ids.filter((id) => id !== leader.id)) expect(leaderStatus).toMatch(new RegExp(`^  member ${id} \\(http://127\\.0\\.0\\.1:\\d+\\): match \\d+, last contact `, "m"));
    expect(leaderStatus).toContain("folder ledger (strong)");

    // Removed through a follower (handed to the leader), then a push still commits on the two left.
    const removed = await cli(["cluster", "remove", otherId, "--remote", viaFollower]);
    expect(removed.stdout).toContain(`removed node ${otherId}`);
    await until("two members", () => getJson(`${leader.url}/v1/status`).then((r) => r.body.consensus.members.map((m: { id: string }) => m.id)), (members: string[]) => members.length === 2 && !members.includes(otherId));
    writeTree(dir, { "entry.txt": "second\n" });
    const second = (await cli(["push", dir, "--json"])).json();
    expect((await getJson(`${leader.url}/v1/folders/ledger`)).body.head).toBe(second.version);

    // Added back: it catches up from the leader and reads the head the others have.
    const added = await cli(["cluster", "add", other, "--remote", leader.url]);
    expect(added.stdout).toContain(`added node ${otherId}`);
    await until("three members", () => getJson(`${leader.url}/v1/status`).then((r) => r.body.consensus.members.length), (count: number) => count === 3);
    await until("the re-added node has the head", () => getJson(`${other}/v1/folders/ledger?stale=1`).then((r) => r.body.head), (head: string) => head === second.version);
    expect((await getJson(`${other}/v1/folders/ledger`)).body.head).toBe(second.version);

    // One hop only: a follower handed a commit answers 503 naming the leader, and hands nothing on.
    const handed = await fetch(`${viaFollower}/v1/peer/strong/commit`, {
      method: "POST",
      headers: { authorization: `Bearer ${CLUSTER_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ from: otherId, folder: "ledger", root: pushed.root, parent: second.version, message: "", chunking: "x", files: 1, bytes: 1 }),
    });
    expect(handed.status).toBe(503);
    expect(handed.headers.get("retry-after")).toBe("1");
    expect(((await handed.json()) as { leader: unknown }).leader).toEqual({ id: leader.id, address: leader.url });
    expect((await getJson(`${leader.url}/v1/folders/ledger`)).body.head).toBe(second.version);

    // Alone (the two others stopped), a node refuses strong writes and linearizable reads with
    // 503 and the leader it last knew; a stale read still answers, and eventual folders go on.
    const last = nodes[urls.indexOf(other)]!;
    for (const node of nodes) if (node !== last) await node.stop();
    const alone = await fetch(`${other}/v1/folders/ledger`);
    expect(alone.status).toBe(503);
    expect(alone.headers.get("retry-after")).toBe("1");
    expect(Object.keys((await alone.json()) as object).sort()).toEqual(["error", "leader"]);
    expect((await getJson(`${other}/v1/folders/ledger?stale=1`)).body.head).toBe(second.version);
    writeTree(dir, { "entry.txt": "third\n" });
    const refused = await cli(["push", dir, "--remote", other, "--rebind", "--timeout", "30"], 1);
    expect(refused.stderr).toContain("503");
    const photos = join(tempDir(), "photos");
    writeTree(photos, { "p.txt": "p\n" });
    await cli(["push", photos, "--folder", "photos", "--remote", other]);
  }, 180_000);
});
