// kill -9 of a node during pushes: after a restart, every version it acknowledged (the version
// made from the pushed tree; the head may be a merge with earlier rounds) restores
// byte-identical, no object fails its hash, and the head names a whole version.
import { afterAll, expect, test } from "bun:test";
import { spawn } from "bun";
import { join } from "node:path";
import { cleanupTempDirs, CLI_ENTRY, runCli, startNode, tempDir } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";

afterAll(() => cleanupTempDirs());

test("acknowledged pushes survive kill -9 at arbitrary points", async () => {
  const dataDir = join(tempDir(), "data");
  const acknowledged: { version: string; tree: Record<string, unknown>; dir: string }[] = [];
  // Kill points spread over the push: during the scan/upload, around the commit, after it.
  const killDelaysMs = [40, 120, 250, 400, 700];
  for (const [round, delayMs] of killDelaysMs.entries()) {
    const node = await startNode({ dataDir });
    const dir = join(tempDir(), `round-${round}`);
    writeTree(dir, {
      "big.bin": randomBytes(6_000_000, 1000 + round),
      small: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}.txt`, `round ${round} file ${i}\n`])),
    });
    const push = spawn([process.execPath, CLI_ENTRY, "push", dir, "--remote", node.url, "--folder", "crashy", "--json"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    await Bun.sleep(delayMs);
    await node.kill9();
    const [stdout, code] = await Promise.all([new Response(push.stdout).text(), push.exited]);
    if (code === 0) acknowledged.push({ version: JSON.parse(stdout).pushed, tree: describeTree(dir), dir });
  }
  // One more push that certainly completes, so the check below always has something to check.
  const node = await startNode({ dataDir });
  const finalDir = join(tempDir(), "final");
  writeTree(finalDir, { "last.txt": "last\n" });
  const last = await runCli(["push", finalDir, "--remote", node.url, "--folder", "crashy", "--json"]);
  expect(last.code).toBe(0);
  acknowledged.push({ version: last.json().pushed, tree: describeTree(finalDir), dir: finalDir });

  const log = (await runCli(["log", "--remote", node.url, "--folder", "crashy", "--json"])).json();
  const known = new Set(log.versions.map((v: { id: string }) => v.id));
  for (const entry of acknowledged) {
    expect(known.has(entry.version)).toBe(true);
    const restored = join(tempDir(), "restored");
    const pulled = await runCli(["pull", restored, "--remote", node.url, "--folder", "crashy", "--version", entry.version]);
    expect(pulled.code).toBe(0);
    expect(describeTree(restored)).toEqual(entry.tree);
  }
  const verify = await runCli(["verify", "--remote", node.url, "--json"]);
  expect(verify.code).toBe(0);
  expect(verify.json().healthy).toBe(true);
  await node.stop();
  // And offline, straight from the data folder.
  const offline = await runCli(["verify", "--data", dataDir, "--json"]);
  expect(offline.json().metadataIntegrity).toBe("ok");
  expect(offline.code).toBe(0);
}, 120_000);
