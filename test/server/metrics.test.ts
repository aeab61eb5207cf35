// GET /metrics on a real node: the exposition agrees with docs/metrics.md (every documented metric
// is exported with its type and labels, every exported one is documented), the token rules, and
// the counters move with a push, a gc and a verify.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, REPO_ROOT, runCli, spawnCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";
import { parseExposition, type Exposition } from "../helpers/exposition.ts";

const TOKEN = "client-token-metrics-1";
const METRICS_TOKEN = "scrape-token-metrics-1";
const CLUSTER_TOKEN = "cluster-token-metrics-1";
let node: NodeProcess;

beforeAll(async () => {
  // A peer that never answers, so the per-peer series exist.
  const silentPeer = `http://127.0.0.1:${await freePort()}`;
  node = await startNode({
    args: ["--token", TOKEN, "--metrics-token", METRICS_TOKEN, "--peers", silentPeer, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "200"],
  });
});

afterAll(async () => {
  await node?.stop();
  cleanupTempDirs();
});

interface DocumentedMetric {
  type: string;
  labels: string[];
}

/** The table of docs/metrics.md: `| \`name\` | type | \`label\`, ... | meaning |`. */
function documentedMetrics(): Map<string, DocumentedMetric> {
  const text = readFileSync(join(REPO_ROOT, "docs/metrics.md"), "utf8");
  const metrics = new Map<string, DocumentedMetric>();
  for (const line of text.split("\n")) {
    const match = /^\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram|summary) \|\s*([^|]*?)\s*\|/.exec(line);
    if (!match) continue;
    if (metrics.has(match[1]!)) throw new Error(`docs/metrics.md lists ${match[1]} twice`);
    const labels = [...match[3]!.matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((m) => m[1]!).sort();
    metrics.set(match[1]!, { type: match[2]!, labels });
  }
  return metrics;
}

async function scrape(token: string | null = METRICS_TOKEN): Promise<Response> {
  return fetch(`${node.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function exposition(): Promise<Exposition> {
  const response = await scrape();
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain");
  return parseExposition(await response.text());
}

test("every documented metric is exported with its type and labels, and every exported one is documented", async () => {
  // Something in every family that has samples only after activity: a push (folder series, pushes, bytes).
  const dir = tempDir();
  writeTree(dir, { "a.txt": "alpha\n", sub: { "b.txt": "beta\n" } });
  expect((await runCli(["push", dir, "--remote", node.url, "--folder", "contract"], { env: { DSYNC_TOKEN: TOKEN } })).code).toBe(0);

  const documented = documentedMetrics();
  expect(documented.size).toBeGreaterThan(40);
  const exported = await exposition();

  const undocumented = [...exported.types.keys()].filter((name) => !documented.has(name));
  const missing = [...documented.keys()].filter((name) => !exported.types.has(name));
  expect({ undocumented, missing }).toEqual({ undocumented: [], missing: [] });
  for (const [name, doc] of documented) {
    expect({ name, type: exported.types.get(name) }).toEqual({ name, type: doc.type });
    const samples = exported.samples.filter((sample) => sample.family === name);
    // Every documented metric has a sample on a node with a peer and a folder, but the one only
    // a successful exchange with a peer sets.
    if (name !== "dsync_peer_last_contact_timestamp_seconds") expect({ name, samples: samples.length }).not.toEqual({ name, samples: 0 });
    for (const sample of samples) {
      const labels = Object.keys(sample.labels).filter((label) => label !== "le").sort();
      expect({ name, labels }).toEqual({ name, labels: doc.labels });
    }
  }
});

test("/metrics takes the metrics token or the client token; the metrics token opens nothing else", async () => {
  expect((await scrape(null)).status).toBe(401);
  expect((await scrape("wrong-token-entirely")).status).toBe(401);
  expect((await scrape(CLUSTER_TOKEN)).status).toBe(401);
  expect((await scrape(TOKEN)).status).toBe(200);
  expect((await scrape(METRICS_TOKEN)).status).toBe(200);
  const folders = await fetch(`${node.url}/v1/folders`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(folders.status).toBe(401);
  const status = await fetch(`${node.url}/v1/status`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(status.status).toBe(401);
});

test("a push, a merge, a gc and a verify move their counters; routes are patterns, never paths", async () => {
  const before = await exposition();
  const dir = tempDir();
  writeTree(dir, { "one.txt": "one\n" });
  const env = { DSYNC_TOKEN: TOKEN };
  expect((await runCli(["push", dir, "--remote", node.url, "--folder", "counted"], { env })).code).toBe(0);
  // A second copy pushes on top of the first version after the first copy moved on: a merge.
  const other = tempDir();
  expect((await runCli(["pull", other, "--remote", node.url, "--folder", "counted"], { env })).code).toBe(0);
  writeTree(dir, { "one.txt": "one, changed here\n" });
  expect((await runCli(["push", dir], { env })).code).toBe(0);
  writeTree(other, { "two.txt": "two\n" });
  expect((await runCli(["push", other], { env })).code).toBe(0);
  expect((await runCli(["gc", "--remote", node.url, "--grace-ms", "0"], { env })).code).toBe(0);
  expect((await runCli(["verify", "--remote", node.url], { env })).code).toBe(0);
  const bad = await fetch(`${node.url}/v1/folders/counted/commit`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ root: "00".repeat(32), parent: null }),
  });
  expect(bad.status).toBeGreaterThanOrEqual(400);
  expect(bad.status).toBeLessThan(500);

  const after = await exposition();
  const moved = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
  expect(moved("dsync_pushes_total", { result: "ok" })).toBe(2);
  expect(moved("dsync_pushes_total", { result: "merged" })).toBe(1);
  expect(moved("dsync_pushes_total", { result: "rejected" })).toBe(1);
  expect(moved("dsync_commits_total", { origin: "push", outcome: "fast_forward" })).toBe(2);
  expect(moved("dsync_commits_total", { origin: "push", outcome: "merged" })).toBe(1);
  expect(moved("dsync_gc_runs_total", { result: "ok" })).toBe(1);
  expect(moved("dsync_verify_runs_total")).toBe(1);
  expect(moved("dsync_objects_verified_total", { by: "verify" })).toBeGreaterThan(0);
  expect(moved("dsync_http_received_bytes_total", { kind: "objects" })).toBeGreaterThan(0);
  expect(moved("dsync_http_sent_bytes_total", { kind: "objects" })).toBeGreaterThan(0);
  expect(after.value("dsync_folders")).toBe(2);
  expect(after.value("dsync_folder_files", { folder: "counted" })).toBe(2);
  const lastChange = after.value("dsync_folder_last_change_timestamp_seconds", { folder: "counted" });
  expect(Math.abs(lastChange - Date.now() / 1000)).toBeLessThan(120);
  expect(after.value("dsync_dedup_ratio")).toBeGreaterThan(0);
  // The metadata store says what it is and how big (metadata.sqlite and its log, on this node).
  expect(after.value("dsync_metadata_bytes", { backend: "sqlite" })).toBeGreaterThan(4096);
  expect(after.value("dsync_metadata_checked_nodes")).toBeGreaterThan(0);
  expect(after.value("dsync_peer_up", { peer: after.samples.find((s) => s.family === "dsync_peer_up")!.labels.peer! })).toBe(0);

  // The commit route is one series whatever the folder; no label value holds a folder path or an id.
  const routes = new Set(after.samples.filter((s) => s.family === "dsync_http_request_duration_seconds").map((s) => s.labels.route));
  expect(routes.has("/v1/folders/:folder/commit")).toBe(true);
  for (const sample of after.samples) {
    for (const value of Object.values(sample.labels)) expect(value).not.toMatch(/[0-9a-f]{64}/);
    if (sample.labels.route !== undefined) expect(sample.labels.route).not.toContain("counted");
  }
  const info = after.samples.find((s) => s.family === "dsync_build_info")!;
  expect(info.labels.blake3).toBeTruthy();
  expect(info.labels.runtime).toStartWith("bun ");
});

test("serve refuses a metrics token that is too short or equal to the cluster token", async () => {
  /** Runs serve expecting it to refuse at once; a serve that starts instead is stopped and fails the test. */
  const refused = async (args: string[]) => {
    const running = spawnCli(["serve", "--data", join(tempDir(), "d"), "--listen", "127.0.0.1:0", ...args]);
    const timer = setTimeout(() => running.process.kill("SIGKILL"), 10_000);
    const result = await running.result;
    clearTimeout(timer);
    return result;
  };
  const short = await refused(["--metrics-token", "short"]);
  expect(short.code).toBe(2);
  expect(short.stderr).toContain("--metrics-token must be 8 to 512 printable characters");
  const same = await refused(["--metrics-token", CLUSTER_TOKEN, "--cluster-token", CLUSTER_TOKEN]);
  expect(same.code).toBe(2);
  expect(same.stderr).toContain("--metrics-token must differ from --cluster-token");
}, 30_000);

test("--metrics-listen serves /metrics alone without a token, on loopback only", async () => {
  const scraped = await startNode({ args: ["--token", TOKEN, "--metrics-listen", "127.0.0.1:0"] });
  try {
    const match = /metrics without a token on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(scraped.output());
    expect(match).not.toBeNull();
    const metricsUrl = match![1]!;
    const open = await fetch(`${metricsUrl}/metrics`);
    expect(open.status).toBe(200);
    expect(parseExposition(await open.text()).types.get("dsync_build_info")).toBe("gauge");
    // Nothing else is on that address, and the API's own /metrics still wants a token.
    for (const path of ["/v1/folders", "/v1/status", "/v1/health", "/"]) expect({ path, status: (await fetch(`${metricsUrl}${path}`)).status }).toEqual({ path, status: 404 });
    expect((await fetch(`${scraped.url}/metrics`)).status).toBe(401);
  } finally {
    await scraped.stop();
  }
  const refused = spawnCli(["serve", "--data", join(tempDir(), "d"), "--listen", "127.0.0.1:0", "--token", TOKEN, "--metrics-listen", "0.0.0.0:0"]);
  const timer = setTimeout(() => refused.process.kill("SIGKILL"), 10_000);
  const result = await refused.result;
  clearTimeout(timer);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("--metrics-listen takes a loopback address");
}, 60_000);
