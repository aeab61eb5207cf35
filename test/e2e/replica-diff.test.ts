// `dsync diff` between two replicas on two real nodes: a tree of ~3 000 files in several
// directory levels (the root and one directory are split into pages), differing in one file.
// The diff names that one path, says what each side lacks, and costs one request per level and
// side plus one to find each side's root: 2·depth + 2 for two remote sides, depth + 1 for a
// directory against a node, 2·depth + 4 for two heads on nodes whose folder records do not name
// the head's root (see src/client/compare.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree, type DiskTree } from "../helpers/trees.ts";

const CHANGED = "deep/x/y/f-01234.txt";
const OLD_CONTENT = "y file 1234 " + "o".repeat(150) + "\n";
const NEW_CONTENT = "y file 1234, edited on one replica only " + "n".repeat(200) + "\n";

function files(count: number, prefix: string): DiskTree {
  const out: DiskTree = {};
  for (let i = 0; i < count; i++) out[`f-${String(i).padStart(5, "0")}.txt`] = `${prefix} file ${i} ${"o".repeat(150)}\n`;
  return out;
}

function replicaTree(): DiskTree {
  return { ...files(600, "top"), deep: { x: { y: files(2400, "y") } }, "z-side": files(40, "z") };
}

/** Gives every file and directory below dir the same times, as replicas synced from one another have. */
function setTimes(dir: string, when: Date): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) setTimes(path, when);
    utimesSync(path, when, when);
  }
}

let nodeA: NodeProcess;
let nodeB: NodeProcess;
let dirA: string;
let dirB: string;
let versionA: string;
let versionB: string;

beforeAll(async () => {
  [nodeA, nodeB] = await Promise.all([startNode(), startNode()]);
  dirA = join(tempDir(), "replica-a");
  dirB = join(tempDir(), "replica-b");
  writeTree(dirA, replicaTree());
  writeTree(dirB, replicaTree());
  const when = new Date("2026-01-02T03:04:05Z");
  setTimes(dirA, when);
  setTimes(dirB, when);
  writeFileSync(join(dirB, CHANGED), NEW_CONTENT);
  const [pushA, pushB] = await Promise.all([
    runCli(["push", dirA, "--remote", nodeA.url, "--folder", "replica", "--json"]),
    runCli(["push", dirB, "--remote", nodeB.url, "--folder", "replica", "--json"]),
  ]);
  expect(pushA.code).toBe(0);
  expect(pushB.code).toBe(0);
  expect(pushA.json().files).toBe(3040);
  versionA = pushA.json().version;
  versionB = pushB.json().version;
}, 60_000);

afterAll(async () => {
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  cleanupTempDirs();
});

function expectOneChangedFile(report: any): void {
  expect(report.identical).toBe(false);
  expect(report.modified).toEqual([CHANGED]);
  expect(report.added).toEqual([]);
  expect(report.removed).toEqual([]);
  expect(report.typeChanged).toEqual([]);
  // Root pages, root leaf, deep, x, y's pages, y's leaf: the tree has pages. (The file is named
  // by its one chunk: there is no file node below y's leaf to load.)
  expect(report.depth).toBeGreaterThanOrEqual(6);
  // Each side lacks the other's node at every level of the changed path, and the new file's one chunk.
  expect(report.a.lacks.nodes).toBe(report.depth);
  expect(report.b.lacks.nodes).toBe(report.depth);
  expect(report.a.lacks).toMatchObject({ chunks: 1, chunkBytes: NEW_CONTENT.length, objects: report.depth + 1 });
  expect(report.b.lacks).toMatchObject({ chunks: 1, chunkBytes: OLD_CONTENT.length, objects: report.depth + 1 });
  expect(report.a.lacks.bytes).toBe(report.a.lacks.nodeBytes + NEW_CONTENT.length);
  expect(report.a.lacks.nodeBytes).toBeGreaterThan(0);
  expect(report.requests).toBe(report.a.requests + report.b.requests);
}

describe("dsync diff between two replicas", () => {
  test("two heads on two nodes: one changed path, what each side lacks, at most 2·depth + 2 requests", async () => {
    const result = await runCli(["diff", `${nodeA.url}/replica`, `${nodeB.url}/replica`, "--json"]);
    expect(result.code).toBe(1);
    const report = result.json();
    expectOneChangedFile(report);
    // Per side: the folder (head and root), then one download per level.
    expect(report.a.requests).toBe(report.depth + 1);
    expect(report.b.requests).toBe(report.depth + 1);
    expect(report.requests).toBeLessThanOrEqual(2 * report.depth + 2);
  });

  test("a node whose folder record lacks the head's root costs one request more per side: the head's version object", async () => {
    // A proxy in front of node A that drops `root` from folder records, as a node from before it was added would.
    const proxy = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(request) {
        const url = new URL(request.url);
        const body = request.method === "GET" ? undefined : await request.arrayBuffer();
        const upstream = await fetch(nodeA.url + url.pathname + url.search, { method: request.method, headers: request.headers, body, decompress: false } as RequestInit);
        if (request.method === "GET" && /^\/v1\/folders\/[^/]+$/.test(url.pathname) && upstream.ok) {
          const folder = (await upstream.json()) as Record<string, unknown>;
          delete folder.root;
          return Response.json(folder);
        }
        return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
      },
    });
    try {
      const result = await runCli(["diff", `http://127.0.0.1:${proxy.port}/replica`, `${nodeB.url}/replica`, "--json"]);
      expect(result.code).toBe(1);
      const report = result.json();
      expectOneChangedFile(report);
      expect(report.a.requests).toBe(report.depth + 2);
      expect(report.b.requests).toBe(report.depth + 1);
    } finally {
      proxy.stop(true);
    }
  });

  test("two pinned versions: at most 2·depth + 2 requests", async () => {
    const result = await runCli(["diff", `${nodeA.url}/replica@${versionA}`, `${nodeB.url}/replica@${versionB.slice(0, 12)}`, "--json"]);
    expect(result.code).toBe(1);
    const report = result.json();
    expectOneChangedFile(report);
    expect(report.a.requests).toBe(report.depth + 1);
    expect(report.requests).toBeLessThanOrEqual(2 * report.depth + 2);
  });

  test("a directory against a node: depth + 1 requests, all to the node", async () => {
    const result = await runCli(["diff", dirB, `${nodeA.url}/replica`, "--json"]);
    expect(result.code).toBe(1);
    const report = result.json();
    expect(report.modified).toEqual([CHANGED]);
    expect(report.a.requests).toBe(0);
    expect(report.b.requests).toBe(report.depth + 1);
    expect(report.requests).toBeLessThanOrEqual(2 * report.depth + 2);
    expect(report.a.lacks.chunkBytes).toBe(OLD_CONTENT.length);
  });

  test("text output: the path on stdout, the summary on stderr; identical replicas exit 0", async () => {
    const result = await runCli(["diff", `${nodeA.url}/replica`, `${nodeB.url}/replica`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(`M ${CHANGED}\n`);
    expect(result.stderr).toMatch(/^a lacks (\d+) objects \([\d.]+ KiB\), b lacks \1 objects \([\d.]+ KiB\); (\d+) requests \(a \d+, b \d+\), depth (\d+)\n$/);

    const same = await runCli(["diff", `${nodeA.url}/replica`, `${nodeA.url}/replica@${versionA.slice(0, 8)}`]);
    expect(same.code).toBe(0);
    expect(same.stdout).toBe("");
    expect(same.stderr).toBe("a lacks 0 objects (0 B), b lacks 0 objects (0 B); 2 requests (a 1, b 1), depth 0\n");
  });
});
