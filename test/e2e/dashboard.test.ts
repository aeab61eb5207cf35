// The web dashboard in real headless Chromium against three real replicating nodes: a wrong
// token is refused, the right one shows the three nodes and every folder, a push to another
// node shows up within 2 s without a reload, a conflict shows in the folder's history; names
// holding HTML and script show as text and run nothing; the page's CSP forbids inline script
// and other origins; not one request leaves 127.0.0.1. The Cluster panel shows the Raft group
// (role, term, the leader by id and address, commit and applied index, every member) on each
// node and on a node alone, flags a missing leader and silent members on a node cut off from the
// others, and a strong folder shows its mode. Screenshots go to docs/ for the README.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Page } from "playwright-core";
import type { NodeStatus } from "../../src/client/remote.ts";
import { formatBytes } from "../../src/client/status-summary.ts";
import { counted } from "../../src/core/plural.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { openNode } from "../../src/assemble.ts";
import { launchChromium, requestsOffLoopback, type Browser } from "../helpers/browser.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { cleanupTempDirs, freePort, REPO_ROOT, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const TOKEN = "dashboard-client-token";
// The screenshots kept in docs/ for the README are rewritten only when asked for
// (DSYNC_UPDATE_SCREENSHOTS=1), so a test run never changes tracked files.
const SCREENSHOT_DIR = process.env.DSYNC_UPDATE_SCREENSHOTS === "1" ? join(REPO_ROOT, "docs") : tempDir("dsync-screenshots-");
const CLUSTER_TOKEN = "dashboard-cluster-token";
const env = { DSYNC_TOKEN: TOKEN };
const IMG = "<img src=x onerror=alert(1)>.txt";
// '/' separates names, so this is the file "script>.txt" in the directory "<": its path reads "</script>.txt".
const SCRIPT_END = "</script>.txt";

let nodes: NodeProcess[] = [];
let urls: string[] = [];
let browser: Browser;
const dialogs: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  urls = ports.map((port) => `http://127.0.0.1:${port}`);
  nodes = await Promise.all(
    ["alpha", "bravo", "charlie"].map((id, i) =>
      startNode({
        listen: `127.0.0.1:${ports[i]}`,
        env,
        args: ["--token", TOKEN, "--node-id", id, "--peers", urls.filter((_, j) => j !== i).join(","), "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "500"],
      }),
    ),
  );
  browser = await launchChromium();
  browser.context.on("page", (page) => {
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("pageerror", (error) => pageErrors.push(error.message));
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const node of nodes) await node.stop().catch(() => {});
  cleanupTempDirs();
});

async function push(dir: string, url: string, folder: string, extra: string[] = []): Promise<{ version: string; conflicts: unknown[] }> {
  const result = await runCli(["push", dir, "--remote", url, "--folder", folder, "--json", ...extra], { env });
  if (result.code !== 0) throw new Error(`push failed: ${result.stdout} ${result.stderr}`);
  return result.json();
}

async function pull(dir: string, url: string, folder: string): Promise<void> {
  const result = await runCli(["pull", dir, "--remote", url, "--folder", folder], { env });
  if (result.code !== 0) throw new Error(`pull failed: ${result.stdout} ${result.stderr}`);
}

/** Every node has this head for the folder (bounded wait). */
async function waitForHead(folder: string, head: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const heads = await Promise.all(
      urls.map(async (url) => {
        const response = await fetch(`${url}/v1/folders/${folder}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        return response.ok ? ((await response.json()) as { head: string }).head : null;
      }),
    );
    if (heads.every((h) => h === head)) return;
    if (Date.now() > deadline) throw new Error(`nodes did not converge on ${folder}: ${JSON.stringify(heads)}`);
    await Bun.sleep(50);
  }
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

/** Two clients change the same files (paths may hold '/') from the same version; the second push is merged with a conflict on the node. */
async function makeConflict(url: string, folder: string, files: Record<string, string>, message?: string): Promise<{ version: string; conflicts: unknown[] }> {
  const first = join(tempDir(), "first");
  writeFiles(first, files);
  const base = await push(first, url, folder);
  await waitForHead(folder, base.version);
  const second = join(tempDir(), "second");
  await pull(second, url, folder);
  for (const name of Object.keys(files)) writeFileSync(join(first, name), `first client's ${name}\n`);
  await push(first, url, folder);
  for (const name of Object.keys(files)) writeFileSync(join(second, name), `second client's ${name}\n`);
  const merged = await push(second, url, folder, message ? ["--message", message] : []);
  expect(merged.conflicts.length).toBe(Object.keys(files).length);
  await waitForHead(folder, merged.version);
  return merged;
}

async function createStrongFolder(url: string, folder: string): Promise<void> {
  const result = await runCli(["folder", "create", folder, "--consistency", "strong", "--remote", url], { env });
  if (result.code !== 0) throw new Error(`folder create failed: ${result.stdout} ${result.stderr}`);
}

let ledgerMade: Promise<void> | null = null;

/** The strong folder "ledger", made on alpha and pushed to through bravo, once for the file. */
function ensureLedger(): Promise<void> {
  ledgerMade ??= (async () => {
    await createStrongFolder(urls[0]!, "ledger");
    const ledger = join(tempDir(), "ledger");
    writeTree(ledger, { "march.txt": "rent paid\n" });
    await push(ledger, urls[1]!, "ledger");
  })();
  return ledgerMade;
}

type ConsensusJson = NonNullable<NodeStatus["consensus"]>;

async function consensusOf(url: string): Promise<ConsensusJson> {
  const response = await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const status = (await response.json()) as NodeStatus;
  if (!status.consensus) throw new Error(`${url} reports no consensus in its status`);
  return status.consensus;
}

/** Every node names the same leader in the same term (bounded wait). */
async function waitForOneLeader(among: string[]): Promise<ConsensusJson[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = await Promise.all(among.map(consensusOf));
    const leader = seen[0]!.leader?.id;
    if (leader && seen.every((c) => c.leader?.id === leader && c.term === seen[0]!.term)) return seen;
    if (Date.now() > deadline) throw new Error(`the nodes did not agree on a leader: ${JSON.stringify(seen.map((c) => [c.nodeId, c.term, c.leader]))}`);
    await Bun.sleep(100);
  }
}

/** The Cluster panel's text facts, as the page shows them. */
async function clusterPanel(page: Page) {
  const panel = page.locator("#cluster");
  await panel.locator('table[aria-label="Raft members"]').waitFor({ timeout: 10_000 });
  const rows = panel.locator("tbody tr");
  const members: { id: string; text: string; match: string; silent: boolean }[] = [];
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    members.push({ id: (await row.getAttribute("data-member"))!, text: (await row.textContent())!, match: (await row.locator("td").nth(2).textContent())!, silent: (await row.locator(".badge", { hasText: "not heard from" }).count()) > 0 });
  }
  return {
    role: (await panel.locator("#cluster-role strong").textContent())!,
    leader: (await panel.locator("#cluster-leader").textContent())!,
    text: (await panel.textContent())!,
    problem: (await panel.locator("#cluster-problem").count()) > 0 ? await panel.locator("#cluster-problem").textContent() : null,
    members,
  };
}

/** The number a stat of the panel shows, by its label. */
async function clusterStat(page: Page, label: string): Promise<number> {
  const value = await page.locator("#cluster .stat", { has: page.locator("span", { hasText: new RegExp(`^${label}`) }) }).locator("strong").textContent();
  return Number(value);
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.locator("#token").fill(token);
  await page.locator("#token").press("Enter");
}

describe("dashboard in Chromium", () => {
  test("a wrong token is refused; the right one lists the three nodes and the folders; a push elsewhere appears live; a conflict shows in history", async () => {
    const photos = join(tempDir(), "photos");
    writeTree(photos, { "beach.jpg": "pretend jpeg\n".repeat(500), "index.txt": "beach\n" });
    const first = await push(photos, urls[1]!, "photos");
    await waitForHead("photos", first.version);

    const page = await browser.context.newPage();
    await signIn(page, urls[0]!, "not-the-token");
    await expect(page.locator("[role=alert]").textContent({ timeout: 10_000 })).resolves.toContain("refused this token");
    expect(await page.locator("a[data-folder]").count()).toBe(0);
    // The API said so too: nothing but the refusal came back.
    const refused = browser.requests.filter((r) => r.url().endsWith("/v1/status"));
    expect(refused.length).toBeGreaterThan(0);
    expect((await refused.at(-1)!.response())!.status()).toBe(401);

    await page.locator("#token").fill(TOKEN);
    await page.locator("#token").press("Enter");
    await page.locator('a[data-folder="photos"]').waitFor({ timeout: 10_000 });
    const text = (await page.locator("main").textContent())!;
    for (const id of ["alpha", "bravo", "charlie"]) expect(text).toContain(id);
    // The event stream is open (the badge turns "live" once the node answered it).
    await page.locator("#live.on").waitFor({ timeout: 5000 });
    expect(await page.locator("#live").textContent()).toBe("live");
    // The token is in no URL the page ever asked for.
    expect(browser.requests.filter((r) => r.url().includes(TOKEN))).toEqual([]);

    // A push to bravo shows on alpha's page without a reload, within 2 s of its acknowledgement.
    writeFileSync(join(photos, "sunset.jpg"), "another pretend jpeg\n".repeat(300));
    const navigations: string[] = [];
    page.on("framenavigated", (frame) => navigations.push(frame.url()));
    const second = await push(photos, urls[1]!, "photos");
    const acknowledgedMs = Date.now();
    await page.waitForFunction(
      (head) => document.querySelector('a[data-folder="photos"]')?.closest("tr")?.textContent?.includes(head.slice(0, 12)) ?? false,
      second.version,
      { timeout: 2000 },
    );
    const shownAfterMs = Date.now() - acknowledgedMs;
    expect(shownAfterMs).toBeLessThan(2000);
    expect(navigations).toEqual([]);
    console.log(`dashboard: a push to another node was shown ${shownAfterMs} ms after its acknowledgement`);

    // Two clients of charlie change the same file: charlie merges and keeps both; alpha, which only
    // received the merge, shows the conflict in the folder's history all the same.
    const merged = await makeConflict(urls[2]!, "notes", { "plan.md": "# plan\n" }, "second client's plan");
    await page.locator('a[data-folder="notes"]').waitFor({ timeout: 5000 });
    // A strong folder beside them, for the picture (its checks are the Cluster panel's test).
    await ensureLedger();
    await page.locator('a[data-folder="ledger"]').waitFor({ timeout: 5000 });
    await Bun.sleep(1200); // let the rates and the event list settle for the picture
    await page.screenshot({ path: join(SCREENSHOT_DIR, "dashboard.png"), fullPage: true });

    // From the keyboard: focus the folder's link and press Enter.
    await page.locator('a[data-folder="notes"]').focus();
    await page.keyboard.press("Enter");
    await page.locator("h1", { hasText: "notes" }).waitFor({ timeout: 5000 });
    const history = page.locator('table[aria-label="History"]');
    await history.waitFor();
    const historyText = (await history.textContent())!;
    expect(historyText).toContain(merged.version.slice(0, 12));
    expect(historyText).toContain("merge");
    expect(historyText).toContain("1 conflict");
    expect(historyText).not.toContain("(s)");
    expect(historyText).toMatch(/kept as plan\.sync-conflict-\d{8}-\d{6}-charlie\.md/);
    await page.screenshot({ path: join(SCREENSHOT_DIR, "dashboard-folder.png"), fullPage: true });

    expect(requestsOffLoopback(browser.requests)).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 90_000);

  test("names holding HTML and script show as text and run nothing; the CSP forbids inline script and other origins", async () => {
    // Folder names are restricted to letters, digits, '.', '_' and '-': the markup ones are refused outright.
    for (const folder of ["<img src=x onerror=alert(1)>", "</script>"]) {
      const response = await fetch(`${urls[0]}/v1/folders/${encodeURIComponent(folder)}/versions`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(response.status).toBe(400);
      const dir = join(tempDir(), "markup-folder");
      writeTree(dir, { "a.txt": "a\n" });
      const result = await runCli(["push", dir, "--remote", urls[0]!, "--folder", folder, "--json"], { env });
      expect(result.code).not.toBe(0);
    }
    // File names may hold anything but '/' and NUL: conflicts on them, and a message with markup, reach the page.
    const message = "<b>bold</b><script>window.__ran = 1</script>";
    await makeConflict(urls[0]!, "markup", { [IMG]: "one\n", [SCRIPT_END]: "two\n" }, message);

    const page = await browser.context.newPage();
    const response = await page.goto(urls[0]!);
    const csp = response!.headers()["content-security-policy"]!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).not.toMatch(/https?:|\*/);
    await page.locator("#token").fill(TOKEN);
    await page.locator("#token").press("Enter");
    await page.locator('a[data-folder="markup"]').click();
    await page.locator('table[aria-label="History"]').waitFor({ timeout: 10_000 });
    const mainText = (await page.locator("main").textContent())!;
    expect(mainText).toContain(IMG);
    expect(mainText).toContain(SCRIPT_END);
    expect(mainText).toContain(message);
    // No element was made of them: no image, no script, no bold, and nothing ran.
    expect(await page.locator("main img, main script, main b").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __ran?: number }).__ran)).toBeUndefined();
    // The policy is enforced, not only sent: an inline script put into the page does not run.
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.__inline = 1";
      document.body.append(script);
    });
    await Bun.sleep(100);
    expect(await page.evaluate(() => (window as unknown as { __inline?: number }).__inline)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(requestsOffLoopback(browser.requests)).toEqual([]);
    await page.close();
  }, 60_000);

  test("a node with more folders than the status holds: the front page follows GET /v1/folders' pages and lists every one", async () => {
    // The folders are made straight through the node's own API in this process, then served.
    const dataDir = join(tempDir(), "many-folders");
    const local = await openNode({ dataDir });
    const objects = new MemoryObjects();
    const root = objects.tree({ "a.txt": "hello" });
    await local.putObjects(objects.all());
    const names = Array.from({ length: LIMITS.foldersPageMax + 5 }, (_, i) => `many-${String(i).padStart(5, "0")}`);
    for (const folder of names) await local.commit({ folder, root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 5 });
    await local.close();
    const node = await startNode({ dataDir, env, args: ["--token", TOKEN] });
    try {
      const page = await browser.context.newPage();
      await signIn(page, node.url, TOKEN);
      // The last folder by name is past the status's page: only the list's second page names it.
      await page.locator(`a[data-folder="${names.at(-1)}"]`).waitFor({ timeout: 10_000 });
      expect(await page.locator('table[aria-label="Folders"] a[data-folder]').count()).toBe(names.length);
      expect(await page.locator(".stat", { hasText: "folders" }).first().textContent()).toContain(String(names.length));
      expect(await page.locator("#folders-not-shown").count()).toBe(0);
      const listed = browser.requests.filter((r) => r.url().startsWith(`${node.url}/v1/folders?`));
      expect(listed.some((r) => r.url().includes("cursor="))).toBe(true);
      // Alone, the node is its own Raft group of one: it leads, at its own address.
      const cluster = await clusterPanel(page);
      expect(cluster.role).toBe("leader");
      expect(cluster.leader).toContain(`${(await consensusOf(node.url)).nodeId} ${node.url}`);
      expect(cluster.leader).toContain("this node");
      expect(cluster.problem).toBeNull();
      expect(cluster.members.length).toBe(1);
      expect(cluster.members[0]!.text).toContain(node.url);
      expect(cluster.members[0]!.silent).toBe(false);
      expect(pageErrors).toEqual([]);
      await page.close();
    } finally {
      await node.stop();
    }
  }, 90_000);

  test("dsync status prints the front page's summary: the same peers, states, folders, files, bytes and authors", async () => {
    const result = await runCli(["status", "--remote", urls[0]!], { env });
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    const status = (await (await fetch(`${urls[0]}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      peers: { address: string; node: string }[];
      folders: { name: string; mode: string; files: number; bytes: number; changedBy: string; head: string }[];
    };
    const page = await browser.context.newPage();
    await signIn(page, urls[0]!, TOKEN);
    await page.locator('a[data-folder="photos"]').waitFor({ timeout: 10_000 });
    expect(lines[0]).toStartWith("node alpha at ");
    for (const peer of status.peers) {
      const line = lines.find((l) => l.startsWith(`peer ${peer.address} (node ${peer.node}): reachable, `))!;
      expect(line).toBeDefined();
      expect(line).toContain("last contact");
      const row = (await page.locator('table[aria-label="Nodes"] tr', { hasText: peer.address }).textContent())!;
      expect(row).toContain(peer.node);
      expect(row).toContain("reachable");
    }
    for (const folder of status.folders) {
      const line = lines.find((l) => l.startsWith(`folder ${folder.name} (${folder.mode}) head ${folder.head.slice(0, 12)}: `))!;
      expect(line).toBeDefined();
      expect(line).toContain(`${counted(folder.files, "file")}, ${formatBytes(folder.bytes)}, changed `);
      expect(line).toContain(` by ${folder.changedBy}`);
      const row = (await page.locator("tr", { has: page.locator(`a[data-folder="${folder.name}"]`) }).textContent())!;
      for (const fact of [folder.head.slice(0, 12), String(folder.files), formatBytes(folder.bytes), folder.changedBy]) expect(row).toContain(fact);
    }
    await page.close();
  }, 60_000);

  test("the Cluster panel on each of three nodes: role, term, the one leader by id and address, commit and applied index, every member; a strong folder's mode in the list and on its page", async () => {
    await ensureLedger();
    const consensus = await waitForOneLeader(urls);
    const leaderId = consensus[0]!.leader!.id;
    const leaderUrl = urls[consensus.findIndex((c) => c.nodeId === leaderId)]!;
    for (const [i, url] of urls.entries()) {
      const page = await browser.context.newPage();
      await signIn(page, url, TOKEN);
      const cluster = await clusterPanel(page);
      const now = await consensusOf(url);
      expect(cluster.role).toBe(now.role);
      expect(cluster.text).toContain(`${now.term}term`);
      // The leader by id and the address it is reached at (this page's own for the leader itself).
      expect(cluster.leader).toContain(`${leaderId} ${leaderUrl}`);
      expect(cluster.problem).toBeNull();
      const commit = await clusterStat(page, "commit index");
      const applied = await clusterStat(page, "applied");
      // Creating the folder and pushing to it were two entries at least, all applied by now.
      expect(commit).toBeGreaterThanOrEqual(2);
      expect(applied).toBe(commit);
      expect(cluster.members.map((m) => m.id).sort()).toEqual(["alpha", "bravo", "charlie"]);
      for (const [j, memberUrl] of urls.entries()) {
        const row = cluster.members.find((m) => m.id === consensus[j]!.nodeId)!;
        expect(row.text).toContain(memberUrl);
        expect(row.silent).toBe(false);
        if (j === i) expect(row.text).toContain("this node");
        if (consensus[j]!.nodeId === leaderId) expect(row.text).toContain("leader");
        // The leader knows how far each member's log goes; the others do not.
        if (url === leaderUrl) expect(Number.parseInt(row.match, 10)).toBeGreaterThanOrEqual(2);
        else expect(row.match).toBe("—");
      }

      // The strong folder's mode in the list (beside the first test's eventual photos), and its standing through the log rather than against each peer.
      const ledgerRow = page.locator("tr", { has: page.locator('a[data-folder="ledger"]') });
      expect(await ledgerRow.locator("[data-mode]").textContent()).toBe("strong");
      expect(await ledgerRow.textContent()).toContain("through the log");
      expect(await page.locator("tr", { has: page.locator('a[data-folder="photos"]') }).locator("[data-mode]").textContent()).toBe("eventual");
      await page.locator('a[data-folder="ledger"]').click();
      await page.locator('table[aria-label="History"]').waitFor({ timeout: 10_000 });
      expect(await page.locator("#folder-mode strong").textContent()).toBe("strong");
      expect(await page.locator("#strong-standing").textContent()).toContain(`term ${now.term}`);
      expect(await page.locator("#peers-title").count()).toBe(0);
      await page.close();
    }
    expect(pageErrors).toEqual([]);
  }, 90_000);

  test("a node cut off from the other two: the Cluster panel flags no leader and both silent members, and the strong folder is marked without a leader", async () => {
    // Runs last: it stops bravo and charlie.
    await ensureLedger();
    await nodes[1]!.stop();
    await nodes[2]!.stop();
    const page = await browser.context.newPage();
    await signIn(page, urls[0]!, TOKEN);
    // The page redraws on its own (every 5 s) once alpha, alone, finds it has no leader.
    await page.locator("#cluster-problem", { hasText: "no leader" }).waitFor({ timeout: 20_000 });
    const cluster = await clusterPanel(page);
    expect(cluster.leader).toBe("none");
    expect(cluster.role).not.toBe("leader");
    expect(cluster.members.find((m) => m.id === "alpha")!.silent).toBe(false);
    expect(cluster.members.filter((m) => m.silent).map((m) => m.id).sort()).toEqual(["bravo", "charlie"]);
    expect(await page.locator("tr", { has: page.locator('a[data-folder="ledger"]') }).textContent()).toContain("no leader");
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 60_000);
});
