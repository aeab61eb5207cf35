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
