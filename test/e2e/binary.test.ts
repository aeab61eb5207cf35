// The compiled single binary: built with `bun build --compile`, run with no node_modules beside
// it, serving and syncing end to end, with the native BLAKE3 embedded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { cleanupTempDirs, REPO_ROOT, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";

let binary: string;
let node: NodeProcess;

beforeAll(async () => {
  // Build into an empty directory: nothing but the binary is there when it runs.
  const outDir = tempDir("dsync-bin-");
  binary = join(outDir, "dsync");
  const build = spawnSync([process.execPath, "build", "--compile", "--outfile", binary, join(REPO_ROOT, "cli/main.ts")], { cwd: REPO_ROOT });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  node = await startNode({ binary });
}, 120_000);

afterAll(async () => {
  await node?.stop();
  cleanupTempDirs();
});

test("the binary serves, pushes and pulls, with native BLAKE3 inside", async () => {
  const health = await (await fetch(`${node.url}/v1/health`)).json();
  expect(health.ok).toBe(true);
  expect(health.blake3).toContain("native");

  const source = join(tempDir(), "binsrc");
  writeTree(source, { "data.bin": randomBytes(2_000_000, 42), docs: { "read me.txt": "hello\n" }, link: { symlink: "docs" } });
  const pushed = await runCli(["push", source, "--remote", node.url, "--json"], { binary, cwd: tempDir() });
  expect(pushed.code).toBe(0);
  const target = join(tempDir(), "binout");
  const pulled = await runCli(["pull", target, "--remote", node.url, "--folder", "binsrc"], { binary, cwd: tempDir() });
  expect(pulled.code).toBe(0);
  expect(describeTree(target)).toEqual(describeTree(source));
  expect((await runCli(["diff", source, target], { binary })).code).toBe(0);
});

test("inspect chunks: offsets and lengths tile the file and each id is the BLAKE3 of its bytes", async () => {
  const file = join(tempDir(), "inspect.bin");
  const bytes = randomBytes(1_500_000, 7);
  writeFileSync(file, bytes);
  const result = await runCli(["inspect", "chunks", file, "--json"], { binary });
  expect(result.code).toBe(0);
  const { chunks } = result.json<{ chunks: { offset: number; length: number; id: string }[] }>();
  expect(chunks.length).toBeGreaterThan(5);
  let offset = 0;
  for (const chunk of chunks) {
    expect(chunk.offset).toBe(offset);
    expect(chunk.id).toBe(idToHex(blake3(bytes.subarray(chunk.offset, chunk.offset + chunk.length))));
    offset += chunk.length;
  }
  expect(offset).toBe(bytes.length);
  const text = await runCli(["inspect", "chunks", file], { binary });
  expect(text.stdout.trim().split("\n")).toHaveLength(chunks.length);
  expect(text.stdout.split("\n")[0]).toBe(`0\t${chunks[0]!.length}\t${chunks[0]!.id}`);
  // Agrees with b3sum where it is installed (same bytes, same id).
  const b3sum = Bun.which("b3sum");
  if (b3sum) {
    const first = join(tempDir(), "first-chunk");
    writeFileSync(first, bytes.subarray(0, chunks[0]!.length));
    const out = spawnSync([b3sum, "--no-names", first]).stdout.toString().trim();
    expect(out).toBe(chunks[0]!.id);
  }
});
