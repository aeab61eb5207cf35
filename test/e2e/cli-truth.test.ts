// The CLI tells the truth and leaves nothing half-made, against real nodes: a directory's binding
// changes only with --rebind; a failed first pull leaves no directory, an interrupted one is
// resumed by a bare pull; restore says what it kept and exits 3 when DIR does not match; counts
// are in words ("1 file"); a missing directory is a failure (1), not a usage error (2).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { describeTree, writeTree } from "../helpers/trees.ts";

let a: NodeProcess;
let b: NodeProcess;

beforeAll(async () => {
  [a, b] = await Promise.all([startNode(), startNode()]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  cleanupTempDirs();
});

/** Forwards requests to `node`, but answers 500 to those `fails` picks. */
function failingProxy(node: NodeProcess, fails: (url: URL, method: string) => boolean) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (fails(url, request.method)) return Response.json({ error: "injected failure" }, { status: 500 });
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      return fetch(node.url + url.pathname + url.search, { method: request.method, headers: request.headers, body, decompress: false } as RequestInit);
    },
  });
}

const stateOf = (dir: string) => JSON.parse(readFileSync(join(dir, ".dsync", "state.json"), "utf8"));

async function folderNames(node: NodeProcess): Promise<string[]> {
  return (await runCli(["ls", "--remote", node.url, "--json"])).json<{ folders: { name: string }[] }>().folders.map((f) => f.name);
}

test("a --remote, DSYNC_REMOTE or --folder other than the remembered one is refused unless --rebind", async () => {
  const dir = join(tempDir(), "j");
  writeTree(dir, { "note.txt": "journal\n" });
  expect((await runCli(["push", dir, "--remote", a.url, "--folder", "tokj"])).code).toBe(0);
  const remembered = readFileSync(join(dir, ".dsync", "state.json"), "utf8");

  const otherRemote = await runCli(["push", dir, "--remote", b.url]);
  expect(otherRemote.code).toBe(2);
  expect(otherRemote.stderr).toContain(`syncs with folder "tokj" on ${a.url}`);
  expect(otherRemote.stderr).toContain(`not --remote ${b.url}: add --rebind`);
  const viaEnvironment = await runCli(["pull", dir], { env: { DSYNC_REMOTE: b.url } });
  expect(viaEnvironment.code).toBe(2);
  expect(viaEnvironment.stderr).toContain(`not DSYNC_REMOTE=${b.url}`);
  const otherFolder = await runCli(["pull", dir, "--folder", "elsewhere"]);
  expect(otherFolder.code).toBe(2);
  expect(otherFolder.stderr).toContain('not --folder "elsewhere"');
  const restoreElsewhere = await runCli(["restore", "abcd", dir, "--folder", "elsewhere"]);
  expect(restoreElsewhere.code).toBe(2);
  // Nothing was made on the other node and the directory remembers what it did.
  expect(await folderNames(b)).not.toContain("tokj");
  expect(readFileSync(join(dir, ".dsync", "state.json"), "utf8")).toBe(remembered);
  // The same remote and folder, given explicitly, are no change.
  expect((await runCli(["push", dir, "--remote", `${a.url}/`, "--folder", "tokj"])).code).toBe(0);

  const rebound = await runCli(["push", dir, "--remote", b.url, "--rebind", "--json"]);
  expect(rebound.code).toBe(0);
  expect(rebound.json()).toMatchObject({ folder: "tokj", remote: b.url, parent: null });
  expect(stateOf(dir)).toMatchObject({ remote: b.url, folder: "tokj" });
  expect((await runCli(["push", dir])).code).toBe(0); // bound to b now
  expect((await runCli(["push", dir, "--remote", a.url])).code).toBe(2);
});

test("a first pull of a folder the node lacks fails with exit 1 and leaves no directory", async () => {
  const target = join(tempDir(), "never");
  const result = await runCli(["pull", target, "--remote", a.url, "--folder", "no-such-folder"]);
  expect(result.code).toBe(1);
  expect(result.stderr).toBe(`dsync: the node at ${a.url} has no folder named "no-such-folder" (dsync ls --remote ${a.url} lists its folders)\n`);
  expect(existsSync(target)).toBe(false);
  const unreachable = await runCli(["pull", target, "--remote", "http://127.0.0.1:1", "--folder", "x"]);
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr).toContain("cannot reach the dsync node at http://127.0.0.1:1");
  expect(existsSync(target)).toBe(false);
});

test("an interrupted first pull is resumed by a bare pull", async () => {
  const source = join(tempDir(), "resumable");
  writeTree(source, { "a.txt": "alpha\n", sub: { "b.txt": "beta\n" } });
  expect((await runCli(["push", source, "--remote", a.url])).code).toBe(0);
  // A path to the node that fails every object download until told otherwise: the pull finds the
  // folder and version, then breaks off.
  let failDownloads = true;
  const proxy = failingProxy(a, (url) => failDownloads && url.pathname.startsWith("/v1/objects"));
  try {
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const target = join(tempDir(), "copy-elsewhere");
    const first = await runCli(["pull", target, "--remote", proxyUrl, "--folder", "resumable"]);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain(`the node at ${proxyUrl} failed (500)`);
    // Bound, but not claiming any version it does not hold.
    expect(stateOf(target)).toEqual({ remote: proxyUrl, folder: "resumable" });
    failDownloads = false;
    const again = await runCli(["pull", target]);
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(describeTree(target)).toEqual(describeTree(source));
    expect(stateOf(target).lastVersion).toMatch(/^[0-9a-f]{64}$/);
  } finally {
    proxy.stop(true);
  }
});

test("restore says which local changes it kept and why, and exits 3 when the directory does not match", async () => {
  const dir = join(tempDir(), "notes");
  writeTree(dir, { "a.txt": "one\n", "b.txt": "bee\n" });
  const v1 = (await runCli(["push", dir, "--remote", a.url, "--json"])).json<{ version: string }>().version;
  writeFileSync(join(dir, "a.txt"), "two\n");
  const v2 = (await runCli(["push", dir, "--json"])).json<{ version: string }>().version;

  // No local change: the directory matches, counted in words.
  const clean = await runCli(["restore", v1.slice(0, 8), dir]);
  expect(clean.code).toBe(0);
  expect(clean.stdout).toContain(`${dir} now matches it (1 file written, 0 paths removed)`);
  expect(readFileSync(join(dir, "a.txt"), "utf8")).toBe("one\n");

  // Local edits: one the restore conflicts with (kept as a copy), one it does not touch (kept in place).
  writeFileSync(join(dir, "a.txt"), "local edit of a\n");
  writeFileSync(join(dir, "b.txt"), "local edit of b\n");
  const kept = await runCli(["restore", v2, dir, "--json"]);
  expect(kept.code).toBe(3);
  const report = kept.json<{ matches: boolean; kept: { path: string; change: string; reason: string }[]; version: string }>();
  expect(report.matches).toBe(false);
  const byPath = Object.fromEntries(report.kept.map((k) => [k.path, k]));
  expect(byPath["b.txt"]).toEqual({ path: "b.txt", change: "M", reason: "changed here since the last sync; kept" });
  const copy = report.kept.find((k) => k.path.startsWith("a.sync-conflict-"))!;
  expect(copy.change).toBe("A");
  expect(copy.reason).toContain("your version of a.txt, kept as a conflict copy");
  expect(report.kept.length).toBe(2);
  // What it says is what diff sees.
  const diff = await runCli(["diff", `${a.url}/notes@${report.version}`, dir]);
  expect(diff.code).toBe(1);
  expect(diff.stdout.trim().split("\n").sort()).toEqual(report.kept.map((k) => `${k.change} ${k.path}`).sort());

  rmSync(join(dir, copy.path));
  writeFileSync(join(dir, "b.txt"), "another local edit of b\n");
  const text = await runCli(["restore", v1, dir]);
  expect(text.code).toBe(3);
  expect(text.stdout).toContain(`${dir} does not match it: 1 local change kept`);
  expect(text.stdout).toContain("  M b.txt: changed here since the last sync; kept\n");
});

test("counts are in words, and a missing directory is a failure (exit 1) naming it", async () => {
  const dir = join(tempDir(), "single");
  writeTree(dir, { "only.txt": "x\n" });
  const pushed = await runCli(["push", dir, "--remote", a.url]);
  // One node, the directory's: a file of one chunk is named by that chunk, with no file node.
  expect(pushed.stdout).toContain("  1 file, 2 B in 1 chunk; sent 1 chunk and 1 node,");
  const pulled = await runCli(["pull", join(tempDir(), "single-copy"), "--remote", a.url, "--folder", "single"]);
  expect(pulled.stdout).toContain("  wrote 1 file (2 B), removed 0 paths; fetched 1 chunk (2 B), reused 0 local chunks, ");
  const missing = join(tempDir(), "not-there");
  const result = await runCli(["push", missing, "--remote", a.url]);
  expect(result.code).toBe(1);
  expect(result.stderr).toBe(`dsync: ${missing} does not exist: nothing to push (check the path, or pull to create it)\n`);
  // The same for the other commands given a path that is not what they need.
  const aFile = join(tempDir(), "a-file");
  writeFileSync(aFile, "x");
  const failures: [string[], string][] = [
    [["pull", aFile, "--remote", a.url, "--folder", "single"], `dsync: ${aFile} exists and is not a directory: pull into a directory (it is created if missing)\n`],
    [["inspect", "chunks", missing], `dsync: ${missing} does not exist (check the path)\n`],
    [["verify", "--data", missing], `dsync: ${missing} is not a dsync data folder (it has no metadata.sqlite): name the --data folder of a stopped node\n`],
  ];
  for (const [args, stderr] of failures) {
    const failed = await runCli(args);
    expect({ args, code: failed.code, stderr: failed.stderr }).toEqual({ args, code: 1, stderr });
  }
  const gc = await runCli(["gc", "--remote", a.url, "--dry-run"]);
  expect(gc.stdout).toMatch(/^would prune \d+ versions?, would delete \d+ objects? \(\d+ reachable objects? kept\), would reclaim \d+ bytes?\n$/);
});

test("a serve that cannot listen leaves no data folder; --data naming a file is a clear usage error", async () => {
  const listen = new URL(a.url).host; // taken by node a
  const parent = join(tempDir(), "fresh");
  const dataDir = join(parent, "nested", "data");
  const failed = await runCli(["serve", "--data", dataDir, "--listen", listen]);
  expect(failed.code).toBe(1);
  expect(failed.stderr).toContain(`dsync: cannot listen on ${listen}: `);
  expect(failed.stderr).toContain("(stop what uses it, or choose another address with --listen)");
  expect(existsSync(parent)).toBe(false);
  // An existing data folder (of a stopped node) is kept as it was.
  const stopped = await startNode();
  await stopped.stop();
  const again = await runCli(["serve", "--data", stopped.dataDir, "--listen", listen]);
  expect(again.code).toBe(1);
  expect(existsSync(join(stopped.dataDir, "metadata.sqlite"))).toBe(true);

  const file = join(tempDir(), "README.md");
  writeFileSync(file, "not a folder\n");
  const onFile = await runCli(["serve", "--data", file, "--listen", "127.0.0.1:0"]);
  expect(onFile.code).toBe(2);
  expect(onFile.stderr).toBe(`dsync: --data ${file} is not a directory: name a directory for the node's data (it is created if missing)\n`);
  expect(readFileSync(file, "utf8")).toBe("not a folder\n");
});

test("a push is remembered as soon as the node acknowledged it, even if setting retention then fails", async () => {
  const proxy = failingProxy(a, (url, method) => method === "PUT" && url.pathname.endsWith("/retention"));
  try {
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const dir = join(tempDir(), "retained");
    writeTree(dir, { "r.txt": "r\n" });
    const failed = await runCli(["push", dir, "--remote", proxyUrl, "--keep-versions", "3"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`the node at ${proxyUrl} failed (500)`);
    expect(failed.stderr).toMatch(/^dsync: pushed retained \(version [0-9a-f]{12}\), but setting its retention failed: .*; push again with the same --keep-versions\/--keep-days to set it\n$/);
    const head = (await runCli(["log", "--remote", a.url, "--folder", "retained", "--json"])).json<{ folder: { head: string } }>().folder.head;
    expect(stateOf(dir)).toMatchObject({ remote: proxyUrl, folder: "retained", lastVersion: head });
  } finally {
    proxy.stop(true);
  }
});

test("a version the folder lacks names the command that lists them", async () => {
  const dir = join(tempDir(), "versioned");
  writeTree(dir, { "v.txt": "v\n" });
  expect((await runCli(["push", dir, "--remote", a.url])).code).toBe(0);
  const result = await runCli(["pull", join(tempDir(), "nowhere"), "--remote", a.url, "--folder", "versioned", "--version", "ffff"]);
  expect(result.code).toBe(1);
  expect(result.stderr).toBe("dsync: folder versioned has no version ffff (dsync log --folder versioned lists its versions)\n");
});

test("a restore whose pull fails says the new version exists and how to finish", async () => {
  let failDownloads = false;
  const proxy = failingProxy(a, (url) => failDownloads && url.pathname.startsWith("/v1/objects"));
  try {
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const dir = join(tempDir(), "halfway");
    writeTree(dir, { "h.txt": "first\n" });
    const v1 = (await runCli(["push", dir, "--remote", proxyUrl, "--json"])).json<{ version: string }>().version;
    writeFileSync(join(dir, "h.txt"), "second\n");
    expect((await runCli(["push", dir])).code).toBe(0);
    const copy = join(tempDir(), "halfway-copy");
    expect((await runCli(["pull", copy, "--remote", proxyUrl, "--folder", "halfway"])).code).toBe(0);
    failDownloads = true;
    const restored = await runCli(["restore", v1, copy]);
    expect(restored.code).toBe(1);
    expect(restored.stderr).toMatch(new RegExp(`^dsync: restored halfway on the node \\(new version [0-9a-f]{12}\\), but bringing ${copy} to it failed: .*; run dsync pull ${copy} to finish\n$`));
    failDownloads = false;
    expect((await runCli(["pull", copy])).code).toBe(0);
    expect(readFileSync(join(copy, "h.txt"), "utf8")).toBe("first\n");
  } finally {
    proxy.stop(true);
  }
});
