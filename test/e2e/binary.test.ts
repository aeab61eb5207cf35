// The compiled single binary: built with `bun build --compile`, run with no node_modules beside
// it, serving and syncing end to end, with the native BLAKE3 embedded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { cleanupTempDirs, freePort, REPO_ROOT, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { describeTree, randomBytes, writeTree } from "../helpers/trees.ts";
import { parseExposition } from "../helpers/exposition.ts";
import { RUNTIME_METRICS } from "../../src/server/metrics.ts";

let binary: string;
let node: NodeProcess;

/** `npm run build`'s own arguments (package.json), writing to `outfile`: the binary tested is the one users get. */
function buildArguments(outfile: string): string[] {
  const script: string = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).scripts.build;
  const words = script.split(/\s+/);
  if (words[0] !== "bun" || words[1] !== "build" || !words.includes("--outfile")) throw new Error(`package.json's build script is not a bun build with --outfile: ${script}`);
  words[words.indexOf("--outfile") + 1] = outfile;
  return words.slice(1).map((word) => (word.endsWith(".ts") ? join(REPO_ROOT, word) : word));
}

beforeAll(async () => {
  // Build into an empty directory: nothing but the binary is there when it runs.
  const outDir = tempDir("dsync-bin-");
  binary = join(outDir, "dsync");
  const build = spawnSync([process.execPath, ...buildArguments(binary)], { cwd: REPO_ROOT });
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

test("the binary sends an update's changed chunks as deltas (zstd with a dictionary inside it), and the node rebuilds them", async () => {
  const dir = join(tempDir(), "bindelta");
  const words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split(" ");
  const text = (seed: number) => Array.from({ length: 60_000 }, (_, i) => words[(i * 7 + seed * (i % 13)) % words.length]).join(" ");
  const before = text(1);
  writeTree(dir, { "library.js": before });
  expect((await runCli(["push", dir, "--remote", node.url, "--folder", "bindelta"], { binary, cwd: tempDir() })).code).toBe(0);
  // Every 20 000 characters a few change: each chunk differs a little from the one it replaces.
  const after = before.replace(/(.{20000})/gs, "$1/* 2 */");
  writeFileSync(join(dir, "library.js"), after);
  const pushed = await runCli(["push", dir, "--remote", node.url, "--folder", "bindelta", "--json"], { binary, cwd: tempDir() });
  expect(pushed.code).toBe(0);
  expect(pushed.json<{ chunks_as_delta: number }>().chunks_as_delta).toBeGreaterThan(0);
  expect((await runCli(["diff", dir, `${node.url}/bindelta`], { binary })).code).toBe(0);
});

test("the binary carries the ignore package: git's POSIX classes and nested files, seen by push --dry-run", async () => {
  const dir = join(tempDir(), "binignore");
  writeTree(dir, { ".dsyncignore": "[[:digit:]]*.dat\n", "1data.dat": "1", "data.dat": "d", sub: { ".dsyncignore": "!2keep.dat\n", "2keep.dat": "k" } });
  const dry = await runCli(["push", dir, "--remote", node.url, "--dry-run", "--json"], { binary, cwd: tempDir() });
  expect(dry.code).toBe(0);
  const preview = dry.json<{ new: { path: string }[]; skipped: { path: string; cause: string; reason: string }[] }>();
  expect(preview.skipped).toEqual([{ path: "1data.dat", cause: "ignored", reason: "ignored by .dsyncignore" }]);
  expect(preview.new.map((p) => p.path)).toEqual([".dsyncignore", "data.dat", "sub", "sub/.dsyncignore", "sub/2keep.dat"]);
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

test("the binary cuts large files on its worker threads (an extra entry point inside it): the same root as on one thread", async () => {
  // 40 MiB starts the workers (scanner.ts); a worker module missing from the binary fails the push.
  const source = join(tempDir(), "binworkers");
  writeTree(source, { "large.bin": randomBytes(40 * 1024 * 1024, 43), "small.txt": "s\n" });
  const roots: string[] = [];
  for (const threads of ["2", "1"]) {
    // No state from the push before: no stat cache, every file read again.
    rmSync(join(source, ".dsync"), { recursive: true, force: true });
    const pushed = await runCli(["push", source, "--remote", node.url, "--folder", `binworkers-${threads}`, "--json"], { binary, cwd: tempDir(), env: { DSYNC_CHUNK_THREADS: threads } });
    expect(pushed.code).toBe(0);
    const report = pushed.json<{ root: string; files_read: number }>();
    expect(report.files_read).toBe(2);
    roots.push(report.root);
  }
  expect(roots[0]).toBe(roots[1]!);
}, 60_000);

test("two binaries replicate a folder and report it in status", async () => {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const pair: NodeProcess[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      pair.push(
        await startNode({
          binary,
          listen: `127.0.0.1:${ports[i]}`,
          args: ["--peers", urls[1 - i]!, "--cluster-token", "binary-cluster-token", "--sync-interval-ms", "200"],
        }),
      );
    }
    const source = join(tempDir(), "replicated");
    writeTree(source, { "a.txt": "alpha\n", sub: { "b.bin": randomBytes(300_000, 3) } });
    expect((await runCli(["push", source, "--remote", urls[0]!], { binary, cwd: tempDir() })).code).toBe(0);
    let status: any;
    for (let attempt = 0; attempt < 300; attempt++) {
      status = (await runCli(["status", "--remote", urls[1]!, "--json"], { binary })).json();
      const folder = status.folders.find((f: { name: string }) => f.name === "replicated");
      if (folder?.peers[0]?.state === "in-sync") break;
      await Bun.sleep(100);
    }
    expect(status.folders.find((f: { name: string }) => f.name === "replicated").peers[0].state).toBe("in-sync");
    const target = join(tempDir(), "from-second");
    expect((await runCli(["pull", target, "--remote", urls[1]!, "--folder", "replicated"], { binary, cwd: tempDir() })).code).toBe(0);
    expect(describeTree(target)).toEqual(describeTree(source));
    const text = await runCli(["status", "--remote", urls[1]!], { binary });
    expect(text.stdout).toContain("in sync");
  } finally {
    for (const node of pair) await node.stop();
  }
}, 60_000);

test("three binaries keep a strong folder: made on one, pushed through another, read linearizably on the third, with the Raft group in status", async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const nodes: NodeProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const peers = urls.filter((_, j) => j !== i).join(",");
      nodes.push(await startNode({ binary, listen: `127.0.0.1:${ports[i]}`, args: ["--peers", peers, "--cluster-token", "binary-cluster-token"] }));
    }
    // The group forms once every initial member has answered; until then a strong creation is refused with 503.
    let created: Awaited<ReturnType<typeof runCli>> | undefined;
    for (let attempt = 0; attempt < 100; attempt++) {
      created = await runCli(["folder", "create", "ledger", "--consistency", "strong", "--remote", urls[0]!], { binary });
      if (created.code === 0) break;
      await Bun.sleep(200);
    }
    expect(created!.code).toBe(0);
    const source = join(tempDir(), "ledger");
    writeTree(source, { "entry.txt": "first\n", more: { "b.bin": randomBytes(200_000, 7) } });
    expect((await runCli(["push", source, "--remote", urls[1]!, "--folder", "ledger"], { binary, cwd: tempDir() })).code).toBe(0);
    // No waiting for replication: a strong read takes the ReadIndex barrier, so the third node answers with the pushed head at once.
    const target = join(tempDir(), "from-third");
    const pulled = await runCli(["pull", target, "--remote", urls[2]!, "--folder", "ledger"], { binary, cwd: tempDir() });
    expect(pulled.code).toBe(0);
    expect(describeTree(target)).toEqual(describeTree(source));
    const status = (await runCli(["status", "--remote", urls[2]!, "--json"], { binary })).json();
    expect(status.folders.find((f: { name: string }) => f.name === "ledger").mode).toBe("strong");
    expect(status.consensus.term).toBeGreaterThan(0);
    expect(status.consensus.leader).not.toBeNull();
    expect(status.consensus.members).toHaveLength(3);
  } finally {
    for (const node of nodes) await node.stop();
  }
}, 90_000);

test("the binary serves the dashboard from inside itself: page, bundled script and style, with the CSP", async () => {
  const page = await fetch(`${node.url}/`);
  expect(page.status).toBe(200);
  expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
  const html = await page.text();
  expect(html).toContain('<script type="module" src="/ui/app.js"></script>');
  const script = await fetch(`${node.url}/ui/app.js`);
  expect(script.headers.get("content-type")).toStartWith("text/javascript");
  const code = await script.text();
  // The bundle, not the TypeScript source: no type annotations or imports left, the SSE reader inlined.
  expect(code).not.toContain("import ");
  expect(code).toContain("dsync-token");
  expect(code).toContain("last-event-id");
  expect((await fetch(`${node.url}/ui/style.css`)).status).toBe(200);
  const events = await (await fetch(`${node.url}/v1/events?since=0&wait=0`)).json();
  expect(events.events.some((event: { type: string }) => event.type === "commit")).toBe(true);
});

test("the binary serves /metrics: prom-client inside it, the runtime metrics it keeps with real values", async () => {
  const response = await fetch(`${node.url}/metrics`);
  expect(response.status).toBe(200);
  const exposition = parseExposition(await response.text());
  expect(exposition.samples.find((s) => s.family === "dsync_build_info")!.labels.blake3).toContain("native");
  for (const name of RUNTIME_METRICS) expect({ name, samples: exposition.samples.filter((s) => s.family === name).length }).toEqual({ name, samples: 1 });
  for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "nodejs_heap_size_used_bytes"]) {
    expect({ name, positive: exposition.value(name) > 0 }).toEqual({ name, positive: true });
  }
  expect(Math.abs(exposition.value("process_start_time_seconds") - Date.now() / 1000)).toBeLessThan(600);
  expect(exposition.value("dsync_pushes_total", { result: "ok" })).toBeGreaterThan(0);
});

test("the binary warns at start, with the reason and the fix, when its native BLAKE3 cannot load (TMPDIR not usable)", async () => {
  const file = join(tempDir(), "warned.bin");
  const bytes = randomBytes(200_000, 9);
  writeFileSync(file, bytes);
  const unusable = join(tempDir(), "no-such-tmp");
  const slow = await runCli(["inspect", "chunks", file, "--json"], { binary, env: { TMPDIR: unusable } });
  expect(slow.code).toBe(0);
  expect(slow.stderr).toMatch(/^dsync: warning: the native BLAKE3 could not load \(.+\); hashing uses the portable one, about 25x slower\. Fix: point TMPDIR at a writable directory/);
  // Still right, only slower.
  const fast = await runCli(["inspect", "chunks", file, "--json"], { binary });
  expect(fast.stderr).toBe("");
  expect(slow.json()).toEqual(fast.json());
  // Asked for: no warning.
  expect((await runCli(["inspect", "chunks", file], { binary, env: { TMPDIR: unusable, DSYNC_BLAKE3: "portable" } })).stderr).toBe("");
  // A command that does not hash says nothing; serve warns before it listens.
  expect((await runCli(["ls", "--remote", node.url], { binary, env: { TMPDIR: unusable } })).stderr).toBe("");
  const portableNode = await startNode({ binary, env: { TMPDIR: unusable } });
  try {
    expect(portableNode.output()).toContain("dsync: warning: the native BLAKE3 could not load");
    expect((await (await fetch(`${portableNode.url}/v1/health`)).json()).blake3).toContain("portable");
  } finally {
    await portableNode.stop();
  }
});
