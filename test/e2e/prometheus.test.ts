// Three real nodes scraped every second by a real Prometheus (Debian's package): after pushes and
// replication, Prometheus's own API shows the push counter moved, every peer up, and the lag a
// stopped peer built up back at 0 once it returns, and the Raft group with one leader, one term
// and every committed entry applied; promtool accepts each node's exposition and
// deploy/prometheus.yml; every PromQL expression of the Grafana dashboard is valid and returns
// series against this Prometheus. Without prometheus installed this test fails, it never skips.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, REPO_ROOT, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { promtool, startPrometheus, type RunningPrometheus } from "../helpers/prometheus.ts";
import { writeTree } from "../helpers/trees.ts";

const TOKEN = "client-token-prom-1";
const METRICS_TOKEN = "metrics-token-prom-1";
const CLUSTER_TOKEN = "cluster-token-prom-1";
const NAMES = ["a", "b", "c"] as const;

let ports: number[] = [];
let urls: string[] = [];
let dataDirs: string[] = [];
const nodes: (NodeProcess | undefined)[] = [];
let prometheus: RunningPrometheus | undefined;

function startMember(i: number): Promise<NodeProcess> {
  return startNode({
    dataDir: dataDirs[i],
    listen: `127.0.0.1:${ports[i]}`,
    env: { DSYNC_TOKEN: TOKEN, DSYNC_METRICS_TOKEN: METRICS_TOKEN, DSYNC_CLUSTER_TOKEN: CLUSTER_TOKEN },
    args: ["--node-id", `node-${NAMES[i]}`, "--peers", urls.filter((_, j) => j !== i).join(","), "--sync-interval-ms", "300"],
  });
}

beforeAll(async () => {
  ports = [await freePort(), await freePort(), await freePort()];
  urls = ports.map((port) => `http://127.0.0.1:${port}`);
  dataDirs = NAMES.map((name) => join(tempDir(), name));
  for (let i = 0; i < 3; i++) nodes[i] = await startMember(i);
  prometheus = await startPrometheus(
    ports.map((port) => `127.0.0.1:${port}`),
    { token: METRICS_TOKEN },
  );
});

afterAll(async () => {
  await prometheus?.stop();
  for (const node of nodes) await node?.stop().catch(() => {});
  cleanupTempDirs();
});

const env = { DSYNC_TOKEN: TOKEN };

async function headOf(url: string, folder: string): Promise<string | null> {
  const response = await fetch(`${url}/v1/folders/${folder}`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => null);
  if (!response || response.status !== 200) return null;
  return ((await response.json()) as { head: string | null }).head;
}

async function waitForHead(head: string, folder: string, among: string[], capMs = 30_000): Promise<void> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const heads = await Promise.all(among.map((url) => headOf(url, folder)));
    if (heads.every((h) => h === head)) return;
    if (Date.now() > deadline) throw new Error(`nodes did not reach ${head} on ${folder}: ${JSON.stringify(heads)}`);
    await Bun.sleep(100);
  }
}

const instance = (i: number) => `127.0.0.1:${ports[i]}`;

test("Prometheus sees pushes counted, peers up, a stopped peer's lag back at 0 once it returns, and one Raft leader", async () => {
  const p = prometheus!;
  const dir = tempDir();
  writeTree(dir, { "notes.txt": "first\n", photos: { "one.bin": "x".repeat(50_000) } });
  const first = (await runCli(["push", dir, "--remote", urls[0]!, "--folder", "album", "--json"], { env })).json();
  await waitForHead(first.version, "album", urls);
  await p.waitFor("all six peer links up", "dsync_peer_up", (values) => values.length === 6 && values.every((v) => v === 1));
  await p.waitFor("the push on node a", `dsync_pushes_total{result="ok",instance="${instance(0)}"}`, (values) => values[0] === 1);

  // Node b stops; node a takes a push b does not get: a sees b down and b lacking a write.
  await nodes[1]!.stop();
  nodes[1] = undefined;
  writeTree(dir, { "notes.txt": "second\n" });
  const second = (await runCli(["push", dir, "--json"], { env })).json();
  await waitForHead(second.version, "album", [urls[0]!, urls[2]!]);
  await p.waitFor("node b down as seen from a", `dsync_peer_up{instance="${instance(0)}",peer="${urls[1]}"}`, (values) => values[0] === 0);
  await p.waitFor("node b lacking a's write", `dsync_peer_lacking_writes{instance="${instance(0)}",peer="${urls[1]}"}`, (values) => values[0]! > 0);
  await p.waitFor("the scrape of b failing", `up{instance="${instance(1)}"}`, (values) => values[0] === 0);

  // Node b returns, catches up, and everything settles at 0.
  nodes[1] = await startMember(1);
  await waitForHead(second.version, "album", urls);
  await p.waitFor("all six peer links up again", "dsync_peer_up", (values) => values.length === 6 && values.every((v) => v === 1));
  await p.waitFor("no node lacking writes", "max(dsync_peer_lacking_writes) + max(dsync_peer_missing_writes)", (values) => values[0] === 0);
  await p.waitFor("replication lag at 0 everywhere", "max(dsync_peer_replication_lag_seconds)", (values) => values[0] === 0);
  await p.waitFor("two pushes counted on a", `dsync_pushes_total{result="ok",instance="${instance(0)}"}`, (values) => values[0] === 2);
  await p.waitFor("pulls by the replicas", `sum(dsync_replication_pulls_total{result="ok"})`, (values) => values[0]! >= 3);
  // Since its restart, b fetched the second push from a or from c, whichever was first.
  await p.waitFor("bytes fetched by b from its peers", `sum(dsync_peer_fetched_bytes_total{instance="${instance(1)}"})`, (values) => values[0]! > 0);
  await p.waitFor("the folder's last change on all three", "dsync_folder_last_change_timestamp_seconds", (values) => values.length === 3 && values.every((v) => v === values[0]));
  await p.waitFor("the same version count everywhere", `dsync_folder_versions{folder="album"}`, (values) => values.length === 3 && values.every((v) => v === 2));
  // The strong mode's Raft group, as the dashboard's panels read it: one leader, one term, every log applied.
  await p.waitFor("one Raft leader among the three", "sum(dsync_raft_is_leader)", (values) => values[0] === 1);
  await p.waitFor("the same Raft term on all three", "dsync_raft_term", (values) => values.length === 3 && values[0]! > 0 && values.every((v) => v === values[0]));
  await p.waitFor("every committed entry applied", "max(dsync_raft_commit_index - dsync_raft_applied_index)", (values) => values[0] === 0);
}, 120_000);

test("promtool check metrics accepts every node's exposition", async () => {
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${urls[i]}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    const checked = await promtool(["check", "metrics"], await response.text());
    expect({ node: NAMES[i], ...checked }).toEqual({ node: NAMES[i], code: 0, output: "" });
  }
});

/** Every `expr` in a dashboard JSON, wherever it sits (panels, rows, nested panels, variables' queries are separate). */
function dashboardExpressions(dashboard: unknown): { panel: string; expr: string }[] {
  const found: { panel: string; expr: string }[] = [];
  const visit = (value: unknown, panel: string) => {
    if (Array.isArray(value)) return value.forEach((item) => visit(item, panel));
    if (value === null || typeof value !== "object") return;
    const record = value as Record<string, unknown>;
    const title = typeof record.title === "string" ? record.title : panel;
    if (typeof record.expr === "string") found.push({ panel: title, expr: record.expr });
    for (const [key, child] of Object.entries(record)) if (key !== "templating") visit(child, title);
  };
  visit(dashboard, "dashboard");
  return found;
}

/** Grafana's variables as Grafana would fill them in for "all nodes" over a short range. */
function withVariables(expr: string): string {
  return expr.replaceAll("$__rate_interval", "10s").replaceAll("$instance", ".+");
}

test("every PromQL expression of the Grafana dashboard is valid and returns series", async () => {
  const dir = join(REPO_ROOT, "deploy/grafana/dashboards");
  const files = readdirSync(dir).filter((name) => name.endsWith(".json"));
  expect(files.length).toBeGreaterThan(0);
  let checked = 0;
  for (const file of files) {
    const dashboard = JSON.parse(readFileSync(join(dir, file), "utf8"));
    const expressions = dashboardExpressions(dashboard);
    expect(expressions.length).toBeGreaterThan(20);
    // The node variable's own query, as Grafana runs it: label values of a metric every node has.
    const variable = dashboard.templating.list.find((v: { name: string }) => v.name === "instance");
    const variableQuery = /^label_values\((\w+), instance\)$/.exec(variable.query.query);
    expect(variableQuery).not.toBeNull();
    expect((await prometheus!.query(variableQuery![1]!)).length).toBe(3);
    for (const { panel, expr } of expressions) {
      const query = withVariables(expr);
      expect(query).not.toContain("$");
      const result = await prometheus!.query(query);
      expect({ file, panel, expr, series: result.length > 0 }).toEqual({ file, panel, expr, series: true });
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(20);
});

test("the Grafana dashboard's panels have unique ids, sit on the 24-column grid without overlapping, and every dsync_raft_* metric has a panel", () => {
  const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "deploy/grafana/dashboards/dsync.json"), "utf8"));
  const panels: { id: number; title: string; gridPos: { x: number; y: number; w: number; h: number } }[] = dashboard.panels;
  expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  for (const [i, a] of panels.entries()) {
    expect({ title: a.title, inGrid: a.gridPos.x >= 0 && a.gridPos.w > 0 && a.gridPos.x + a.gridPos.w <= 24 }).toEqual({ title: a.title, inGrid: true });
    for (const b of panels.slice(i + 1)) {
      const overlap = a.gridPos.x < b.gridPos.x + b.gridPos.w && b.gridPos.x < a.gridPos.x + a.gridPos.w && a.gridPos.y < b.gridPos.y + b.gridPos.h && b.gridPos.y < a.gridPos.y + a.gridPos.h;
      expect({ a: a.title, b: b.title, overlap }).toEqual({ a: a.title, b: b.title, overlap: false });
    }
  }
  const expressions = dashboardExpressions(dashboard).map((e) => e.expr).join("\n");
  for (const metric of ["dsync_raft_term", "dsync_raft_commit_index", "dsync_raft_applied_index", "dsync_raft_is_leader", "dsync_raft_leader_changes_total"]) {
    expect({ metric, shown: expressions.includes(metric) }).toEqual({ metric, shown: true });
  }
});

test("deploy/prometheus.yml passes promtool check config; deploy/compose.yaml runs three nodes, Prometheus and Grafana with the files it names", async () => {
  const dir = tempDir();
  copyFileSync(join(REPO_ROOT, "deploy/prometheus.yml"), join(dir, "prometheus.yml"));
  // The token file the configuration names (relative to it), as compose mounts it.
  writeFileSync(join(dir, "dsync-metrics-token"), METRICS_TOKEN);
  const checked = await promtool(["check", "config", join(dir, "prometheus.yml")]);
  expect(checked.output).toContain("SUCCESS");
  expect(checked.code).toBe(0);

  const compose = Bun.YAML.parse(readFileSync(join(REPO_ROOT, "deploy/compose.yaml"), "utf8")) as any;
  expect(Object.keys(compose.services).sort()).toEqual(["grafana", "node-a", "node-b", "node-c", "prometheus"]);
  const config = Bun.YAML.parse(readFileSync(join(REPO_ROOT, "deploy/prometheus.yml"), "utf8")) as any;
  const targets: string[] = config.scrape_configs[0].static_configs[0].targets;
  for (const name of ["node-a", "node-b", "node-c"]) {
    expect(targets).toContain(`${name}:7700`);
    const command: string[] = compose.services[name].command;
    expect(command).toContain("serve");
    expect(compose.services[name].environment.DSYNC_METRICS_TOKEN).toBeTruthy();
  }
  const secretTarget = compose.services.prometheus.secrets[0].target;
  expect(secretTarget).toBe(`/etc/prometheus/${config.scrape_configs[0].authorization.credentials_file}`);
  // Every file or folder the services mount exists in deploy/.
  for (const service of Object.values(compose.services) as { volumes?: string[] }[]) {
    for (const volume of service.volumes ?? []) {
      const source = volume.split(":")[0]!;
      if (source.startsWith(".")) expect({ volume, exists: existsSync(join(REPO_ROOT, "deploy", source)) }).toEqual({ volume, exists: true });
    }
  }
  const datasource = Bun.YAML.parse(readFileSync(join(REPO_ROOT, "deploy/grafana/provisioning/datasources/prometheus.yaml"), "utf8")) as any;
  const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "deploy/grafana/dashboards/dsync.json"), "utf8"));
  const uids = new Set(JSON.stringify(dashboard).match(/"uid":\s*"[^"]+"/g)!.map((m) => m.replace(/"uid":\s*"/, "").slice(0, -1)));
  uids.delete(dashboard.uid);
  expect([...uids]).toEqual([datasource.datasources[0].uid]);
});
