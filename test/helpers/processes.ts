// End-to-end helpers: real `dsync` processes on 127.0.0.1 with real temporary data folders.
import { afterAll, beforeAll } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const CLI_ENTRY = join(REPO_ROOT, "cli/main.ts");

/** The command that runs dsync: the compiled binary when given, else bun on the sources. */
export function dsyncCommand(binary?: string): string[] {
  return binary ? [binary] : [process.execPath, CLI_ENTRY];
}

const tempDirs: string[] = [];

export function tempDir(prefix = "dsync-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

function baseEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("DSYNC_")) env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  binary?: string;
}

/** A dsync command started but not awaited: its process (to kill it midway) and its result once it exits. */
export interface RunningCli {
  process: Subprocess<"ignore", "pipe", "pipe">;
  result: Promise<CliResult>;
}

export function spawnCli(args: string[], options: CliOptions = {}): RunningCli {
  const proc = spawn([...dsyncCommand(options.binary), ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: baseEnv(options.env ?? {}),
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const result = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]).then(([stdout, stderr, code]) => ({
    code,
    stdout,
    stderr,
    json() {
      try {
        return JSON.parse(stdout);
      } catch {
        throw new Error(`not JSON (exit ${code}): ${stdout}\n${stderr}`);
      }
    },
  }));
  return { process: proc, result };
}

export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, options).result;
}

export interface NodeProcess {
  url: string;
  dataDir: string;
  process: Subprocess;
  output(): string;
  stop(): Promise<number>;
  kill9(): Promise<void>;
}

/** A loopback port that was free a moment ago (for nodes that must know each other's address before starting). */
export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

/** Starts `dsync serve` on a free loopback port and waits until it answers. */
export async function startNode(options: { dataDir?: string; args?: string[]; env?: Record<string, string | undefined>; binary?: string; listen?: string } = {}): Promise<NodeProcess> {
  const dataDir = options.dataDir ?? join(tempDir(), "data");
  const proc = spawn([...dsyncCommand(options.binary), "serve", "--data", dataDir, "--listen", options.listen ?? "127.0.0.1:0", ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: baseEnv(options.env ?? {}),
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  let output = "";
  const decoder = new TextDecoder();
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`dsync serve did not start: ${output}`)), 20_000);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        output += decoder.decode(value);
        const match = /listening on (https?:\/\/\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]!);
        }
      }
    };
    void pump(proc.stdout as ReadableStream<Uint8Array>);
    void pump(proc.stderr as ReadableStream<Uint8Array>);
    void proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`dsync serve exited with ${code}: ${output}`));
    });
  });
  return {
    url,
    dataDir,
    process: proc,
    output: () => output,
    async stop() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/**
 * One node shared by the tests of a file: started before them, stopped (and temp dirs removed)
 * after. Returns a getter, since the node exists only once the tests run.
 */
export function sharedNode(options: Parameters<typeof startNode>[0] = {}): () => NodeProcess {
  let node: NodeProcess | undefined;
  beforeAll(async () => {
    node = await startNode(options);
  });
  afterAll(async () => {
    await node?.stop();
    cleanupTempDirs();
  });
  return () => {
    if (!node) throw new Error("the shared node has not started");
    return node;
  };
}
