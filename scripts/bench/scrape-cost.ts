// What scraping /metrics costs a push: the push benchmark's first case (a mixed tree: three large
// random files and many small ones) pushed to a fresh node, with and without a scraper reading
// /metrics every second, alternating the order each run so drift on a shared machine falls on
// both sides alike.
//
//   bun scripts/bench/scrape-cost.ts [--data DIR] [--runs N] [--size-mib N] [--interval-ms MS] [--scrapes N] [--folders N]
//                                    [--dsync auto|binary|source]
//
// Reports, for each side, the median push time and the median CPU the push took (client and
// node together), their ratios, what one scrape took (median and max over every scrape of every
// run), and the node's CPU per scrape, measured over --scrapes back-to-back scrapes of a node
// holding the pushed folder. On a loaded machine the wall-time ratio moves by more than the
// scrape costs; the CPU per scrape bounds what a scraper can add. Then the same per-scrape
// figure on one node of a three-node cluster holding --folders replicated folders (0: skip),
// where a scrape also compares every folder with every peer.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { commandFlags, formatMarkdownTable, gitCommit, listFilesRecursively, machineInfo, median, warmPageCache } from "./lib.ts";
import { cleanEnv, ensureMixedTree, freePort, REPO_ROOT, resolveDsync, runTimed, startDsyncNode, type DsyncCommand } from "./push-lib.ts";

interface Options {
  dataDir: string;
  runs: number;
  sizeMiB: number;
  intervalMs: number;
  dsync: "auto" | "binary" | "source";
  scrapes: number;
  folders: number;
}

function usage(message?: string): never {
  process.stderr.write(
    (message ? `scrape-cost bench: ${message}\n` : "") +
      "usage: bun scripts/bench/scrape-cost.ts [--data DIR] [--runs N] [--size-mib N] [--interval-ms MS] [--scrapes N] [--folders N] [--dsync auto|binary|source]\n",
  );
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = { dataDir: join(REPO_ROOT, ".bench/push"), runs: 3, sizeMiB: 256, intervalMs: 1000, dsync: "auto", scrapes: 200, folders: 100 };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--data") options.dataDir = resolve(value());
    else if (flag === "--runs") options.runs = count(1);
    else if (flag === "--size-mib") options.sizeMiB = count(16);
    else if (flag === "--interval-ms") options.intervalMs = count(50);
    else if (flag === "--scrapes") options.scrapes = count(1);
    else if (flag === "--folders") options.folders = count(0);
    else if (flag === "--dsync") {
      const choice = value();
      if (choice !== "auto" && choice !== "binary" && choice !== "source") usage("--dsync is auto, binary or source");
      options.dsync = choice;
    } else if (flag === "--help" || flag === "-h") usage();
    else usage(`unknown argument ${flag}`);
  }
  return options;
}

/** Reads /metrics every `intervalMs` until stopped; each scrape's duration in ms. */
function startScraper(url: string, intervalMs: number): { stop(): Promise<number[]> } {
  const durationsMs: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      const response = await fetch(`${url}/metrics`);
      if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
      await response.text();
      durationsMs.push(performance.now() - started);
      await Bun.sleep(Math.max(0, intervalMs - (performance.now() - started)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return durationsMs;
    },
  };
}

/** The node's CPU per scrape, in ms, over `scrapes` scrapes back to back. */
async function cpuPerScrapeMs(node: { url: string; cpuSeconds(): number }, scrapes: number): Promise<number> {
  const before = node.cpuSeconds();
  for (let i = 0; i < scrapes; i++) {
    const response = await fetch(`${node.url}/metrics`);
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
    await response.text();
  }
  return ((node.cpuSeconds() - before) * 1000) / scrapes;
}

/** Three replicating nodes, `folders` small folders pushed to the first and replicated to all; CPU per scrape of the first. */
async function clusterScrapeCostMs(dsync: DsyncCommand, folders: number, scrapes: number, log: (line: string) => void): Promise<number> {
  const workDir = mkdtempSync(join(tmpdir(), "dsync-scrape-cluster-"));
  const ports = [freePort(), freePort(), freePort()];
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const nodes: Awaited<ReturnType<typeof startDsyncNode>>[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const peers = urls.filter((_, j) => j !== i).join(",");
      nodes.push(await startDsyncNode(dsync, join(workDir, `node-${i}`), true, { listen: `127.0.0.1:${ports[i]}`, args: ["--peers", peers, "--cluster-token", "scrape-bench-cluster"] }));
    }
    const pushOne = async (i: number) => {
      const dir = join(workDir, "trees", `f${i}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "note.txt"), `folder ${i}\n`);
      await runTimed([...dsync.argv, "push", dir, "--remote", urls[0]!, "--folder", `folder-${String(i).padStart(4, "0")}`], { cwd: workDir, env: cleanEnv() });
    };
    for (let next = 0; next < folders; next += 4) await Promise.all([0, 1, 2, 3].filter((k) => next + k < folders).map((k) => pushOne(next + k)));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const counts = await Promise.all(urls.map(async (url) => ((await (await fetch(`${url}/v1/folders`)).json()) as { folders: unknown[] }).folders.length));
      if (counts.every((count) => count === folders)) break;
      if (Date.now() > deadline) throw new Error(`the cluster did not replicate ${folders} folders within 120 s: ${counts.join(", ")}`);
      await Bun.sleep(200);
    }
    log(`cluster: ${folders} folders on all three nodes`);
    return await cpuPerScrapeMs(nodes[0]!, scrapes);
  } finally {
    for (const node of nodes) await node.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const dsync = resolveDsync(options.dsync);
  if (dsync.staleNote) log(`warning: ${dsync.staleNote}`);
  const tree = ensureMixedTree(options.dataDir, options.sizeMiB, log);
  const buffer = new Uint8Array(4 * 1024 * 1024);
  const seconds: Record<"without" | "with", number[]> = { without: [], with: [] };
  const cpuSeconds: Record<"without" | "with", number[]> = { without: [], with: [] };
  let singleNodeScrapeMs = 0;
  const scrapesMs: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const order: ("without" | "with")[] = run % 2 === 0 ? ["without", "with"] : ["with", "without"];
    for (const side of order) {
      // A copy's remembered state would make the next push a different one: each starts clean.
      rmSync(join(tree.root, ".dsync"), { recursive: true, force: true });
      warmPageCache(listFilesRecursively(tree.root), buffer);
      const nodeDir = mkdtempSync(join(tmpdir(), "dsync-scrape-bench-"));
      const node = await startDsyncNode(dsync, join(nodeDir, "data"));
      const scraper = side === "with" ? startScraper(node.url, options.intervalMs) : undefined;
      try {
        const nodeCpuBefore = node.cpuSeconds();
        const timed = await runTimed([...dsync.argv, "push", tree.root, "--remote", node.url, "--folder", "bench", "--json"], { cwd: nodeDir, env: cleanEnv() });
        const cpu = timed.cpuSeconds + node.cpuSeconds() - nodeCpuBefore;
        seconds[side].push(timed.seconds);
        cpuSeconds[side].push(cpu);
        log(`run ${run + 1} ${side} scraper: ${timed.seconds.toFixed(2)} s, ${cpu.toFixed(2)} s CPU`);
        if (run === options.runs - 1 && side === order[1]) {
          // The node now holds the pushed folder: what one scrape costs it, over many.
          singleNodeScrapeMs = await cpuPerScrapeMs(node, options.scrapes);
        }
      } finally {
        const durations = (await scraper?.stop()) ?? [];
        scrapesMs.push(...durations);
        await node.stop();
        rmSync(nodeDir, { recursive: true, force: true });
        rmSync(join(tree.root, ".dsync"), { recursive: true, force: true });
      }
    }
  }
  const clusterMs = options.folders > 0 ? await clusterScrapeCostMs(dsync, options.folders, options.scrapes, log) : undefined;
  const without = median(seconds.without);
  const withScraper = median(seconds.with);
  const machine = machineInfo();
  const cpuWithout = median(cpuSeconds.without);
  const cpuWith = median(cpuSeconds.with);
  const list = (values: number[]) => values.map((v) => v.toFixed(2)).join(", ");
  const rows = [
    ["without a scraper", without.toFixed(2), list(seconds.without), cpuWithout.toFixed(2), list(cpuSeconds.without)],
    [`scraped every ${options.intervalMs} ms`, withScraper.toFixed(2), list(seconds.with), cpuWith.toFixed(2), list(cpuSeconds.with)],
  ];
  process.stdout.write(
    [
      `scrape cost: first push of ${tree.files} files, ${(tree.bytes / 1024 / 1024).toFixed(0)} MiB (${dsync.label}), ${options.runs} runs each, at ${await gitCommit(REPO_ROOT)}`,
      `machine: ${JSON.stringify(machine)}`,
      "",
      formatMarkdownTable(["push", "median s", "runs s", "median CPU s", "runs CPU s"], rows),
      "",
      `ratio with / without: time ${(withScraper / without).toFixed(3)}, CPU ${(cpuWith / cpuWithout).toFixed(3)}`,
      `node CPU per scrape (${options.scrapes} back to back, the pushed folder held): ${singleNodeScrapeMs.toFixed(2)} ms, ` +
        `${((singleNodeScrapeMs / options.intervalMs) * 100).toFixed(2)}% of one core at one scrape per ${options.intervalMs} ms`,
      ...(clusterMs === undefined
        ? []
        : [
            `node CPU per scrape, one of three replicating nodes holding ${options.folders} folders: ${clusterMs.toFixed(2)} ms, ` +
              `${((clusterMs / options.intervalMs) * 100).toFixed(2)}% of one core at one scrape per ${options.intervalMs} ms`,
          ]),
      `scrapes: ${scrapesMs.length}, median ${median(scrapesMs).toFixed(1)} ms, max ${Math.max(...scrapesMs).toFixed(1)} ms`,
      "",
    ].join("\n"),
  );
}

await main();
