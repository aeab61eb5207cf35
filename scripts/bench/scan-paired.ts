// Pushes of many small files by this checkout and by another one, interleaved run by run with
// `rsync -a` to a local daemon, so all three see the same load: on a shared machine a change
// is told from the noise by comparing neighbours, not runs minutes apart.
//
//   bun scripts/bench/scan-paired.ts --root DIR [--case nochange|first] [--runs N] [--files N] [--data DIR]
//
// --root is the other checkout (`git archive <commit> | tar -x -C DIR`, with node_modules
// linked in). `nochange`: one node (from this checkout) gets the tree once, then each run is a
// no-change push by each checkout (sharing the directory's state) and an `rsync -a` of the
// unchanged tree. `first`: each run is a first push by each checkout into a fresh node of its
// own (the node's side is part of a first push) and an `rsync -a` into an empty module. Prints
// every run and the medians: wall time, the pushing process's CPU (user + sys; rsync's is the
// client's and the daemon's), the scan and commit phases, and the ratios to rsync. The tree is
// the scale benchmark's (`--files` files of 100-500 B in 100 directories, under --data).
import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { commandFlags, median } from "./lib.ts";
import { REPO_ROOT, runTimed, startDsyncNode, startRsyncDaemon, type DsyncCommand } from "./push-lib.ts";

interface Options {
  root: string;
  case: "nochange" | "first";
  runs: number;
  files: number;
  dataDir: string;
}

function usage(message?: string): never {
  process.stderr.write((message ? `scan-paired: ${message}\n` : "") + "usage: bun scripts/bench/scan-paired.ts --root DIR [--case nochange|first] [--runs N] [--files N] [--data DIR]\n");
  process.exit(message ? 2 : 0);
}

function parseOptions(argv: string[]): Options {
  const options: Options = { root: "", case: "nochange", runs: 7, files: 100_000, dataDir: join(REPO_ROOT, ".bench/scale") };
  for (const { flag, value, count } of commandFlags(argv, usage)) {
    if (flag === "--root") options.root = resolve(value());
    else if (flag === "--case") {
      const choice = value();
      if (choice !== "nochange" && choice !== "first") usage("--case must be nochange or first");
      options.case = choice;
    } else if (flag === "--runs") options.runs = count(1);
    else if (flag === "--files") options.files = count(1);
    else if (flag === "--data") options.dataDir = resolve(value());
    else usage(`unknown option ${flag}`);
  }
  if (!options.root) usage("--root DIR is required");
  return options;
}

interface Sample {
  seconds: number;
  cpuSeconds: number;
  scanMs?: number;
  commitMs?: number;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const tree = join(options.dataDir, `small-${options.files}`);
  if (!existsSync(`${tree}.complete`)) throw new Error(`${tree} is not there: make it with bun scripts/bench/scale.ts --cases small --files ${options.files} --data ${options.dataDir}`);
  const bun = process.execPath;
  const checkouts: { label: string; dsync: DsyncCommand }[] = [
    { label: "this", dsync: { argv: [bun, join(REPO_ROOT, "cli/main.ts")], label: "this checkout" } },
    { label: "other", dsync: { argv: [bun, join(options.root, "cli/main.ts")], label: options.root } },
  ];
  const work = join(options.dataDir, "scan-paired");
  const samples = new Map<string, Sample[]>([["this", []], ["other", []], ["rsync", []]]);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const push = async (dsync: DsyncCommand, url: string): Promise<Sample> => {
    const run = await runTimed([...dsync.argv, "push", tree, "--remote", url, "--folder", "bench", "--json"], { cwd: work });
    const report = JSON.parse(run.stdout) as { phases_ms: { scan: number; commit: number } };
    return { seconds: run.seconds, cpuSeconds: run.cpuSeconds, scanMs: report.phases_ms.scan, commitMs: report.phases_ms.commit };
  };
  const rsync = async (fresh: boolean): Promise<Sample> => {
    const module = join(work, "rsync-module");
    if (fresh) rmSync(module, { recursive: true, force: true });
    const daemon = await startRsyncDaemon(join(work, "rsyncd"), module);
    try {
      const argv = ["rsync", "-a", "--exclude=/.dsync/", `${tree}/`, `rsync://127.0.0.1:${daemon.port}/bench/tree/`];
      if (!fresh) await runTimed(argv);
      await runTimed(["sync"]);
      const before = daemon.cpuSeconds();
      const run = await runTimed(argv);
      return { seconds: run.seconds, cpuSeconds: run.cpuSeconds + daemon.cpuSeconds() - before };
    } finally {
      await daemon.stop();
    }
  };
  rmSync(work, { recursive: true, force: true });
  if (options.case === "nochange") {
    const node = await startDsyncNode(checkouts[0]!.dsync, join(work, "node"));
    try {
      rmSync(join(tree, ".dsync"), { recursive: true, force: true });
      await push(checkouts[0]!.dsync, node.url);
      for (let run = 0; run < options.runs; run++) {
        for (const { label, dsync } of checkouts) samples.get(label)!.push(await push(dsync, node.url));
        samples.get("rsync")!.push(await rsync(run === 0));
        log(`run ${run + 1}: ${[...samples].map(([label, s]) => `${label} ${s.at(-1)!.seconds.toFixed(3)} s`).join(", ")}`);
      }
    } finally {
      await node.stop();
    }
  } else {
    for (let run = 0; run < options.runs; run++) {
      for (const { label, dsync } of checkouts) {
        const node = await startDsyncNode(dsync, join(work, "node"));
        try {
          rmSync(join(tree, ".dsync"), { recursive: true, force: true });
          await runTimed(["sync"]);
          samples.get(label)!.push(await push(dsync, node.url));
        } finally {
          await node.stop();
        }
      }
      samples.get("rsync")!.push(await rsync(true));
      log(`run ${run + 1}: ${[...samples].map(([label, s]) => `${label} ${s.at(-1)!.seconds.toFixed(2)} s`).join(", ")}`);
    }
  }
  rmSync(work, { recursive: true, force: true });
  const rsyncSeconds = median(samples.get("rsync")!.map((s) => s.seconds));
  process.stdout.write(`\n${options.case}, ${options.files} files, ${options.runs} runs (medians); other = ${options.root}\n\n`);
  process.stdout.write("| who | wall s (runs) | ratio to rsync | CPU s | scan ms | commit ms |\n| --- | --- | ---: | ---: | ---: | ---: |\n");
  for (const [label, list] of samples) {
    const seconds = median(list.map((s) => s.seconds));
    const phase = (pick: (s: Sample) => number | undefined) => (list[0] && pick(list[0]) !== undefined ? String(median(list.map((s) => pick(s)!))) : "-");
    process.stdout.write(
      `| ${label} | ${seconds.toFixed(3)} (${list.map((s) => s.seconds.toFixed(2)).join(" / ")}) | ${(seconds / rsyncSeconds).toFixed(2)}× | ${median(list.map((s) => s.cpuSeconds)).toFixed(3)} | ${phase((s) => s.scanMs)} | ${phase((s) => s.commitMs)} |\n`,
    );
  }
}

await main();
