// What ignore rules and the progress bar's pre-walk cost a scan of many small files.
//
//   bun scripts/bench/scan-progress.ts [--files N] [--runs N] [--data DIR] [--src DIR]
//
// A tree of --files files (default 100 000, 64 bytes each, 100 per directory) with a root
// .dsyncignore of 12 patterns (negation, '**', anchoring, brackets; no POSIX class, so older
// matchers read them alike) and one nested .dsyncignore per 10 directories; 17% of the files
// are ignored. Medians over
// --runs runs (default 5), page cache warm, of:
//   scan cold      scanDirectory reading every file (no stat cache)
//   scan no-change scanDirectory with a full stat cache (one lstat per file: what a no-change
//                  push scans), where matching the rules weighs most
//   matching only  the walk's ignore test over every path of the tree (no I/O)
//   pre-walk       estimateScan with the same stat cache (what a shown progress bar adds to a
//                  first scan; later scans take their files total from the stat cache)
// --src runs the same against another copy of src/ (e.g. an older commit exported with
// `git archive COMMIT src | tar -x -C /tmp/old`), to compare matchers; a copy without
// fs/scan-estimate.ts skips the pre-walk.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { median } from "./lib.ts";

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1] ?? fallback;
}

const files = Number(flag("files", "100000"));
const runs = Number(flag("runs", "5"));
const data = flag("data", "/tmp/dsync-bench");
const src = resolve(flag("src", resolve(import.meta.dir, "../../src")));
const root = join(data, `scan-progress-${files}`);

const ROOT_RULES = ["*.log", "!keep.log", "build/", "/top-only", "**/cache/**", "[0-9]*.tmp", "*.[oa]", "d1*/f[0-4]?.bak", "!d10/f00.bak", "*~", "\\#*#", "node_modules/"];

function makeTree(): void {
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, ".dsyncignore"), ROOT_RULES.join("\n") + "\n");
  if (existsSync(join(root, ".complete"))) return;
  const perDir = 100;
  const content = "x".repeat(64);
  for (let d = 0; d * perDir < files; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir, { recursive: true });
    if (d % 10 === 0) writeFileSync(join(dir, ".dsyncignore"), "/local-*\n!1keep.tmp\n");
    for (let f = 0; f < perDir && d * perDir + f < files; f++) {
      // Mostly plain names; every 12th one matches some rule.
      const kind = f % 12;
      const name = kind === 0 ? `f${String(f).padStart(2, "0")}.log` : kind === 6 ? `${f}x.tmp` : kind === 11 ? `f${String(f).padStart(2, "0")}.bak` : `f${String(f).padStart(2, "0")}.txt`;
      writeFileSync(join(dir, name), content);
    }
  }
  writeFileSync(join(root, ".complete"), "");
}

async function timed(run: () => Promise<unknown> | unknown): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

makeTree();
const { scanDirectory } = await import(join(src, "fs/scanner.ts"));
const { SqliteStatCache } = await import(join(src, "fs/stat-cache.ts"));
const estimatePath = join(src, "fs/scan-estimate.ts");
const estimateScan = existsSync(estimatePath) ? (await import(estimatePath)).estimateScan : undefined;
const sink = { object() {} };
const cachePath = join(data, `scan-progress-${files}-${process.pid}.db`);
const cache = new SqliteStatCache(cachePath);
const late = () => BigInt(Date.now() + 10_000) * 1_000_000n;
// Fill the stat cache once (and warm the page cache).
const first = await scanDirectory(root, { sink, statCache: cache, nowNs: late });

const cold: number[] = [];
const noChange: number[] = [];
const preWalk: number[] = [];
for (let i = 0; i < runs; i++) {
  cold.push(await timed(() => scanDirectory(root, { sink })));
  noChange.push(await timed(() => scanDirectory(root, { sink, statCache: cache, nowNs: late })));
  if (estimateScan) preWalk.push(await timed(() => estimateScan(root, { statCache: cache })));
}
// Matching alone (CPU only, steadier on a busy machine): every path of the tree, with the rule
// sets in force in its directory, through what the walk calls (`ignoredInWalk`; `isIgnored` in
// older copies of src/).
const ignoreModule = await import(join(src, "fs/ignore.ts"));
const { parseIgnoreFile } = ignoreModule;
const isIgnored = ignoreModule.ignoredInWalk ?? ignoreModule.isIgnored;
const rootRules = parseIgnoreFile(ROOT_RULES.join("\n") + "\n", "");
const work: [unknown[], string][] = [];
for (let d = 0; d * 100 < files; d++) {
  const sets = d % 10 === 0 ? [rootRules, parseIgnoreFile("/local-*\n!1keep.tmp\n", `d${d}`)] : [rootRules];
  for (let f = 0; f < 100 && d * 100 + f < files; f++) work.push([sets, `d${d}/${f % 12 === 0 ? `f${f}.log` : `f${f}.txt`}`]);
}
const matching: number[] = [];
for (let i = 0; i < runs; i++) matching.push(await timed(() => work.forEach(([sets, path]) => isIgnored(sets, path, false))));
cache.close();
rmSync(cachePath, { force: true });
for (const suffix of ["-wal", "-shm"]) rmSync(cachePath + suffix, { force: true });
const ms = (values: number[]) => `${median(values).toFixed(0)} ms`;
console.log(`src ${src}; ${first.files} files scanned, ${first.notRead.length} paths ignored; median of ${runs} runs`);
console.log(`scan cold       ${ms(cold)}   (runs: ${cold.map((v) => v.toFixed(0)).join(", ")})`);
console.log(`scan no-change  ${ms(noChange)}   (runs: ${noChange.map((v) => v.toFixed(0)).join(", ")})`);
console.log(`matching only   ${ms(matching)}   (${work.length} paths; runs: ${matching.map((v) => v.toFixed(0)).join(", ")})`);
if (estimateScan) {
  console.log(`pre-walk        ${ms(preWalk)}   (runs: ${preWalk.map((v) => v.toFixed(0)).join(", ")})`);
  console.log(`pre-walk / scan: ${(median(preWalk) / median(cold)).toFixed(2)} of a cold scan, ${(median(preWalk) / median(noChange)).toFixed(2)} of a no-change scan`);
}
