// A racing local process: swaps paths for other entries (a link out of the root, a FIFO) and
// back, in a loop, for a bounded time. Run as its own process so the swaps interleave with the
// code under test at any point, not only between its awaits:
//   bun test/helpers/path-swapper.ts <durationMs> <path> <alternate> [<path> <alternate>...]
// Each round moves `path` to `path.real`, puts `alternate` at `path`, then moves both back.
// Every rename is atomic; a step that fails (the path is gone meanwhile) is skipped. At the end
// each path is its original entry again. Prints "ready" once the first round ran.
import { existsSync, renameSync } from "node:fs";
import { spawn, type Subprocess } from "bun";

function swapRound(path: string, alternate: string): void {
  const real = `${path}.real`;
  const steps: [string, string][] = [[path, real], [alternate, path], [path, alternate], [real, path]];
  for (const [from, to] of steps) {
    try {
      renameSync(from, to);
    } catch {}
  }
}

/** Starts a swapper process; resolves once its first round ran. stop() waits for it to restore everything. */
export async function startPathSwapper(durationMs: number, pairs: [string, string][]): Promise<{ stop(): Promise<void>; process: Subprocess }> {
  const child = spawn([process.execPath, import.meta.path, String(durationMs), ...pairs.flat()], { stdout: "pipe", stderr: "inherit" });
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  const first = await Promise.race([reader.read(), Bun.sleep(10_000).then(() => undefined)]);
  if (!first || first.done) {
    child.kill();
    throw new Error("the path swapper did not start within 10 s");
  }
  return {
    process: child,
    async stop() {
      const exited = await Promise.race([child.exited, Bun.sleep(durationMs + 10_000).then(() => "timeout" as const)]);
      if (exited === "timeout") {
        child.kill();
        throw new Error("the path swapper did not stop in time");
      }
    },
  };
}

if (import.meta.main) {
  const [durationArg, ...rest] = process.argv.slice(2);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rest.length; i += 2) pairs.push([rest[i]!, rest[i + 1]!]);
  const endMs = Date.now() + Number(durationArg);
  let announced = false;
  while (Date.now() < endMs) {
    for (const [path, alternate] of pairs) swapRound(path, alternate);
    if (!announced) {
      process.stdout.write("ready\n");
      announced = true;
    }
  }
  // Leave every path as it started (a round interrupted by nothing always ends restored).
  for (const [path] of pairs) if (!existsSync(path) && existsSync(`${path}.real`)) renameSync(`${path}.real`, path);
}
