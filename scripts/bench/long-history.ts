// Long-history benchmark: what `dsync log` costs the node and the client on a folder with a very
// long history (make one with many-versions.ts). For each case a fresh `dsync serve` is started
// on the data folder, the command is run --runs times with its output read and counted (as a
// pipe would), and the figures are: wall time (median), the client's peak RSS (/usr/bin/time),
// the node's RSS before and its peak (VmHWM) after.
//
//   bun scripts/bench/many-versions.ts --data /dev/shm/dsync-many          # 200 000 versions
//   bun scripts/bench/long-history.ts --data /dev/shm/dsync-many [--root DIR] [--runs N]
//
// --root runs the dsync of another checkout (its cli/main.ts), e.g. an older commit extracted
// with `git archive`, to compare before and after on the same data.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatBytes, formatTable, median, readVmHwmBytes } from "./lib.ts";

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1] ?? fallback;
}

const dataDir = flag("data", "/dev/shm/dsync-many");
const root = resolve(flag("root", join(import.meta.dir, "../..")));
const runs = Number(flag("runs", "3"));
const folder = flag("folder", "big");
const cli = ["bun", join(root, "cli/main.ts")];

function vmRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}

/** A stream's chunks as they arrive. */
async function* chunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

async function startNode(): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const proc = Bun.spawn([...cli, "serve", "--data", dataDir, "--listen", "127.0.0.1:0"], { stdout: "pipe", stderr: "pipe" });
  let output = "";
  const decoder = new TextDecoder();
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`dsync serve did not start within 60 s: ${output}`)), 60_000);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of chunks(stream)) {
        output += decoder.decode(chunk);
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]!);
        }
      }
    };
    void pump(proc.stdout);
    void pump(proc.stderr);
  });
  return {
    url,
    pid: proc.pid,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** One run: wall seconds, the client's peak RSS, and what it printed (bytes, lines), read as it comes. */
async function runLog(url: string, extra: string[]): Promise<{ seconds: number; clientPeakBytes: number; bytes: number; lines: number }> {
  const started = performance.now();
  const proc = Bun.spawn(["/usr/bin/time", "-f", "%M", ...cli, "log", "--remote", url, "--folder", folder, ...extra], { stdout: "pipe", stderr: "pipe" });
  let bytes = 0;
  let lines = 0;
  const counting = (async () => {
    for await (const chunk of chunks(proc.stdout)) {
      bytes += chunk.length;
      for (const byte of chunk) if (byte === 10) lines++;
    }
  })();
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited, counting]);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`dsync log ${extra.join(" ")} exited with ${code}: ${stderr.slice(0, 500)}`);
  const peakKib = Number(stderr.trim().split("\n").at(-1));
  return { seconds, clientPeakBytes: peakKib * 1024, bytes, lines };
}

const cases: [string, string[]][] = [
  ["dsync log --limit 20", ["--limit", "20"]],
  ["dsync log (all)", []],
];
const rows: string[][] = [];
for (const [label, extra] of cases) {
  const node = await startNode();
  try {
    await fetch(`${node.url}/v1/health`);
    const nodeBefore = vmRssBytes(node.pid);
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await runLog(node.url, extra));
    const nodePeak = readVmHwmBytes(node.pid) ?? 0;
    const last = results.at(-1)!;
    process.stderr.write(`${label}: ${results.map((r) => r.seconds.toFixed(2)).join(", ")} s\n`);
    rows.push([
      label,
      `${median(results.map((r) => r.seconds)).toFixed(2)} s`,
      formatBytes(Math.max(...results.map((r) => r.clientPeakBytes))),
      formatBytes(nodeBefore),
      formatBytes(nodePeak),
      String(last.lines),
      formatBytes(last.bytes),
    ]);
  } finally {
    await node.stop();
  }
}
process.stdout.write(`dsync at ${root}, data ${dataDir}, folder ${folder}, ${runs} runs each\n`);
process.stdout.write(`${formatTable(["case", "time (median)", "client peak RSS", "node RSS before", "node peak RSS", "lines", "output"], rows)}\n`);
