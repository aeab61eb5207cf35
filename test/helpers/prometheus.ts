// A real Prometheus (Debian's `prometheus` package) for end-to-end tests: started on a free
// loopback port with its own storage in a temp dir, queried over its HTTP API, stopped after.
import { spawn, type Subprocess } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir } from "./processes.ts";

/** The path of a tool the test cannot run without; a clear failure (never a skip) when it is absent. */
export function requireTool(name: string): string {
  const path = Bun.which(name);
  if (!path) {
    throw new Error(`${name} is not installed: this test needs a real Prometheus (Debian package "prometheus": apt-get install -y prometheus; .ci/run installs it)`);
  }
  return path;
}

export interface RunningPrometheus {
  url: string;
  output(): string;
  /** An instant query; throws with Prometheus's own error when the expression is invalid. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Polls `check` over fresh query results until it holds; throws with the last results after `timeoutMs`. */
  waitFor(what: string, expr: string, check: (values: number[]) => boolean, timeoutMs?: number): Promise<number[]>;
  stop(): Promise<void>;
}

/** Prometheus scraping `targets` (HOST:PORT) every second, as job "dsync", with `token` as the bearer token when given. */
export async function startPrometheus(targets: string[], options: { token?: string; scrapeIntervalSeconds?: number } = {}): Promise<RunningPrometheus> {
  const binary = requireTool("prometheus");
  const dir = tempDir("dsync-prometheus-");
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const lines = ["global:", `  scrape_interval: ${interval}`, `  scrape_timeout: ${interval}`, `  evaluation_interval: ${interval}`, "scrape_configs:", "  - job_name: dsync"];
  if (options.token) {
    writeFileSync(join(dir, "token"), options.token, { mode: 0o600 });
    lines.push("    authorization:", `      credentials_file: ${join(dir, "token")}`);
  }
  lines.push("    static_configs:", `      - targets: ${JSON.stringify(targets)}`);
  writeFileSync(join(dir, "prometheus.yml"), lines.join("\n") + "\n");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: Subprocess<"ignore", "pipe", "pipe"> = spawn(
    [binary, `--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  // Never outlives the test process, whatever ends it (the stop below is the normal way).
  const killOnExit = () => proc.kill("SIGKILL");
  process.once("exit", killOnExit);
  let output = "";
  const decoder = new TextDecoder();
  for (const stream of [proc.stdout, proc.stderr]) {
    void (async () => {
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        output += decoder.decode(value);
      }
    })();
  }
  const stop = async () => {
    process.off("exit", killOnExit);
    if (proc.exitCode !== null) return;
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
    if (!exited) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}: ${output}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready within 60 s: ${output}`);
    }
    await Bun.sleep(100);
  }

  const query: RunningPrometheus["query"] = async (expr) => {
    const response = await fetch(`${url}/api/v1/query`, { method: "POST", body: new URLSearchParams({ query: expr }) });
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
    if (body.status !== "success") throw new Error(`Prometheus refused ${JSON.stringify(expr)}: ${body.error}`);
    const data = body.data!;
    if (data.resultType === "scalar") return [{ metric: {}, value: data.result as [number, string] }];
    if (data.resultType !== "vector") throw new Error(`${expr} gave a ${data.resultType}, not an instant vector`);
    return data.result as { metric: Record<string, string>; value: [number, string] }[];
  };

  return {
    url,
    output: () => output,
    query,
    async waitFor(what, expr, check, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      let last: number[] = [];
      for (;;) {
        last = (await query(expr)).map((sample) => Number(sample.value[1]));
        if (check(last)) return last;
        if (Date.now() > until) throw new Error(`Prometheus never showed ${what} within ${timeoutMs} ms: ${expr} = ${JSON.stringify(last)}`);
        await Bun.sleep(250);
      }
    },
    stop,
  };
}

/** Runs `promtool` with `stdin` as its input; returns its exit code and output. */
export async function promtool(args: string[], stdin?: string): Promise<{ code: number; output: string }> {
  const proc = spawn([requireTool("promtool"), ...args], { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: stdout + stderr };
}
