// A node's memory while it receives real pushes and at rest afterwards, through a real node
// process and the real command line: its peak (VmHWM) and its RSS a few seconds after the push
// stay under bounds that a node holding whole upload bodies, the whole tree in its commit check
// and a push's garbage after it went quiet exceeded (docs/benchmarks.md, "Node memory"). Before:
// 156 MB peak for 64 MiB in 500 files; 360 MB peak and 187 MB at rest for 100 000 tiny files.
// After: 119–139 MB; 248–252 MB and 104 MB.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { createPrng } from "../helpers/prng.ts";

const MB = 1_000_000;

function statusKb(pid: number, field: "VmHWM" | "VmRSS"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1000;
}

/** Pushes `dir` to a fresh node; its peak RSS through the push, and its RSS `restMs` after. */
async function receive(dir: string, restMs: number): Promise<{ peakBytes: number; restBytes: number; node: NodeProcess }> {
  const node = await startNode();
  try {
    const pushed = await runCli(["push", dir, "--remote", node.url, "--folder", "memory"]);
    expect({ code: pushed.code, stderr: pushed.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const peakBytes = statusKb(node.process.pid, "VmHWM");
    await Bun.sleep(restMs);
    return { peakBytes, restBytes: statusKb(node.process.pid, "VmRSS"), node };
  } finally {
    await node.stop();
  }
}

describe("node memory", () => {
  test("receiving 64 MiB in 500 files: peak under 150 MB, under 120 MB at rest", async () => {
    const dir = tempDir();
    const random = createPrng(64);
    for (let d = 0; d < 10; d++) mkdirSync(join(dir, `d${d}`));
    for (let i = 0; i < 500; i++) writeFileSync(join(dir, `d${i % 10}`, `f${i}`), random.bytes((64 * 1024 * 1024) / 500));
    const { peakBytes, restBytes } = await receive(dir, 3000);
    console.log(`64 MiB in 500 files: node peak ${(peakBytes / MB).toFixed(0)} MB, ${(restBytes / MB).toFixed(0)} MB at rest`);
    expect(peakBytes).toBeLessThan(150 * MB);
    expect(restBytes).toBeLessThan(120 * MB);
  }, 120_000);

  test("receiving 100 000 tiny files: peak under 300 MB, under 150 MB at rest", async () => {
    const dir = tempDir();
    const random = createPrng(100);
    const pool = random.bytes(1 << 16);
    for (let d = 0; d < 100; d++) mkdirSync(join(dir, `d${d}`));
    for (let i = 0; i < 100_000; i++) {
      const bytes = pool.slice(i % 60_000, (i % 60_000) + 8 + (i % 193));
      // Each file differs from every other by its index, so none is deduplicated away.
      new DataView(bytes.buffer).setUint32(0, i);
      writeFileSync(join(dir, `d${i % 100}`, `f${i}`), bytes);
    }
    const { peakBytes, restBytes } = await receive(dir, 3000);
    console.log(`100 000 tiny files: node peak ${(peakBytes / MB).toFixed(0)} MB, ${(restBytes / MB).toFixed(0)} MB at rest`);
    expect(peakBytes).toBeLessThan(300 * MB);
    expect(restBytes).toBeLessThan(150 * MB);
  }, 240_000);
});
