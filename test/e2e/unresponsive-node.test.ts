// The real CLI against servers that never answer, stall, trickle, send without end, close
// mid-reply, are not dsync nodes, or are busy for a moment: each command ends, within its timeout
// and a margin, with exit 1 and one clear line on stderr (never a JavaScript error), in bounded
// memory; a node busy for two answers is waited for, saying so on stderr.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  busyThenNodeServer,
  closeMidBodyServer,
  endlessBodyServer,
  endlessDownloadServer,
  notFoundServer,
  silentServer,
  slowLorisBodyServer,
  slowLorisHeadersServer,
  stallAfterHeadersServer,
  unacceptingPort,
  type FakeServer,
} from "../helpers/fake-servers.ts";
import { freePort, runCli, spawnCli, startNode, tempDir, cleanupTempDirs, type NodeProcess } from "../helpers/processes.ts";

let node: NodeProcess;

beforeAll(async () => {
  node = await startNode();
  const source = join(tempDir(), "f");
  mkdirSync(source);
  // Chunks a pull fetches in one 3 MiB batch (random, so not compressed): the endless download is met on a real route.
  writeFileSync(join(source, "big.bin"), randomBytes(3 * 1024 * 1024));
  writeFileSync(join(source, "small.txt"), "small\n");
  const pushed = await runCli(["push", source, "--remote", node.url]);
  if (pushed.code !== 0) throw new Error(`could not push the test folder: ${pushed.stderr}`);
});

afterAll(async () => {
  await node?.stop();
  cleanupTempDirs();
});

interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  elapsedMs: number;
  /** The child's peak resident set (VmHWM), in bytes, as last read from /proc before it exited. */
  peakRssBytes: number;
}

/** Runs the CLI, polling its peak RSS from /proc every 50 ms. */
async function measured(args: string[]): Promise<Measured> {
  const started = performance.now();
  const running = spawnCli(args);
  let peakRssBytes = 0;
  const sample = () => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${running.process.pid}/status`, "utf8"));
      if (match) peakRssBytes = Math.max(peakRssBytes, Number(match[1]) * 1024);
    } catch {}
  };
  // Once at once: a command that fails at once (connection refused) can exit before the first tick.
  sample();
  const poll = setInterval(sample, 50);
  const result = await running.result;
  clearInterval(poll);
  return { code: result.code, stdout: result.stdout, stderr: result.stderr, elapsedMs: performance.now() - started, peakRssBytes };
}

/** The commands tried against each server, each given `--timeout 2`. */
function commands(url: string): Record<string, string[]> {
  const pushDir = join(tempDir(), "f");
  mkdirSync(pushDir);
  writeFileSync(join(pushDir, "a.txt"), "a\n");
  // Two files, so the push's first "which do you lack?" names three ids (two chunks, the tree)
  // and its reply's bound stays above the 160 bytes the fake servers declare.
  writeFileSync(join(pushDir, "b.txt"), "b\n");
  return {
    ls: ["ls", "--remote", url],
    log: ["log", "--remote", url, "--folder", "f"],
    status: ["status", "--remote", url],
    pull: ["pull", join(tempDir(), "copy"), "--remote", url, "--folder", "f"],
    push: ["push", pushDir, "--remote", url, "--folder", "f"],
  };
}

const TIMEOUT_SECONDS = 2;
/** Start-up, the connect check and the command's own work, on a loaded machine. */
const MARGIN_MS = 6000;
const MEMORY_BYTES_MAX = 200 * 1024 * 1024;

/**
 * Every command against the server ends with exit 1 and, after any retry notices, exactly one
 * error line matching `expected`, within `withinMs`, under MEMORY_BYTES_MAX.
 */
async function expectClearFailure(server: { url: string }, expected: RegExp, withinMs = TIMEOUT_SECONDS * 1000 + MARGIN_MS): Promise<void> {
  const runs = Object.entries(commands(server.url));
  const results = await Promise.all(runs.map(async ([name, args]) => ({ name, ...(await measured([...args, "--timeout", String(TIMEOUT_SECONDS)])) })));
  for (const result of results) {
    const lines = result.stderr.trimEnd().split("\n");
    const errors = lines.filter((line) => !line.startsWith("dsync: retrying "));
    const seen = { command: result.name, code: result.code, errors, stdout: result.stdout };
    expect(seen).toEqual({ command: result.name, code: 1, errors: [expect.stringMatching(expected)], stdout: "" });
    expect(result.stderr).not.toMatch(/TypeError|is not an object|undefined|null is not|JSON Parse/);
    expect({ command: result.name, inTime: result.elapsedMs < withinMs, elapsedMs: Math.round(result.elapsedMs) }).toMatchObject({ command: result.name, inTime: true });
    expect({ command: result.name, measured: result.peakRssBytes > 0, bounded: result.peakRssBytes < MEMORY_BYTES_MAX, peak: result.peakRssBytes }).toMatchObject({
      command: result.name,
      measured: true,
      bounded: true,
    });
  }
}

async function withServer<T extends FakeServer | { url: string; stop(): void }>(server: T, body: (server: T) => Promise<void>): Promise<void> {
  try {
    await body(server);
  } finally {
    server.stop();
  }
}

test("a server that accepts and never answers: each command gives up after its --timeout", async () => {
  await withServer(await silentServer(), (server) => expectClearFailure(server, /^dsync: the node at http:\/\/127\.0\.0\.1:\d+ did not answer (GET|POST) \/v1\/\S+ within 2 s/));
}, 60_000);

test("a port that never accepts a connection: the connect timeout (at most --timeout) says so", async () => {
  await withServer(await unacceptingPort(), (server) =>
    expectClearFailure(server, /^dsync: cannot reach the dsync node at http:\/\/127\.0\.0\.1:\d+: no connection within 2 s/),
  );
}, 60_000);

test("headers, then nothing: the idle timeout ends the body", async () => {
  await withServer(await stallAfterHeadersServer(), (server) => expectClearFailure(server, /^dsync: the node at \S+ stopped sending its reply to (GET|POST) \/v1\/\S+ \(2 bytes in the last 2 s/));
}, 60_000);

test("a slow loris on the headers (a byte every 0.5 s, forever) is not an answer", async () => {
  await withServer(await slowLorisHeadersServer(500), (server) => expectClearFailure(server, /^dsync: the node at \S+ did not answer (GET|POST) \/v1\/\S+ within 2 s/));
}, 60_000);

test("a slow loris on the body (a byte every 0.5 s, forever) is stalled", async () => {
  await withServer(await slowLorisBodyServer(500), (server) => expectClearFailure(server, /^dsync: the node at \S+ stopped sending its reply to (GET|POST) \/v1\/\S+ \(\d bytes in the last 2 s/));
}, 60_000);

test("an endless body is cut off at the route's bound, in bounded memory", async () => {
  await withServer(await endlessBodyServer(), (server) => expectClearFailure(server, /^dsync: the node's reply to (GET|POST) \/v1\/\S+ exceeded \d+ bytes; it was not read/));
}, 60_000);

test("a connection closed in the middle of a reply is tried again, then said", async () => {
  // Retried (GET is idempotent): three pauses of 0.5 to 4 s come on top.
  await withServer(await closeMidBodyServer(), (server) =>
    expectClearFailure(server, /^dsync: the connection to \S+ closed in the middle of the reply to (GET|POST) \/v1\/\S+/, TIMEOUT_SECONDS * 1000 + MARGIN_MS + 8000),
  );
}, 60_000);

test("a plain web server answering 404 with an empty body is not a dsync node", async () => {
  await withServer(notFoundServer(), (server) => expectClearFailure(server, /^dsync: http:\/\/127\.0\.0\.1:\d+ is not a dsync node: GET \/v1\/health answered 404/));
}, 60_000);

test("nothing listening: connection refused, at once, naming the URL", async () => {
  const url = `http://127.0.0.1:${await freePort()}`;
  await expectClearFailure({ url }, /^dsync: cannot reach the dsync node at http:\/\/127\.0\.0\.1:\d+: connection refused/, 5000);
}, 60_000);

test("a pull whose chunk batches never end stops at the batch's own bytes (what the tree says), under 200 MB", async () => {
  await withServer(endlessDownloadServer(node.url), async (server) => {
    const result = await measured(["pull", join(tempDir(), "copy"), "--remote", server.url, "--folder", "f", "--timeout", "5"]);
    const errors = result.stderr.trimEnd().split("\n").filter((line) => !line.startsWith("dsync: retrying "));
    expect({ code: result.code, errors }).toEqual({ code: 1, errors: [expect.stringMatching(/^dsync: the node's reply to POST \/v1\/objects\/download exceeded \d+ bytes/)] });
    // The folder's one 3 MiB file is one batch: its reply is read to 3 MiB and its framing, not to the 64 MiB any batch may hold.
    const bound = Number(/exceeded (\d+) bytes/.exec(errors[0]!)![1]);
    expect(bound).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(bound).toBeLessThan(4 * 1024 * 1024);
    expect(result.peakRssBytes).toBeGreaterThan(0);
    expect(result.peakRssBytes).toBeLessThan(MEMORY_BYTES_MAX);
  });
}, 60_000);

test("a node that answers 503 twice, then works: every command succeeds, the retries said on stderr only", async () => {
  for (const [name, args] of Object.entries(commands("URL"))) {
    const server = busyThenNodeServer(node.url, 2);
    try {
      const result = await measured([...args.map((arg) => (arg === "URL" ? server.url : arg)), "--timeout", "5", "--json"]);
      const retries = result.stderr.trimEnd().split("\n").filter((line) => line.startsWith("dsync: retrying "));
      expect({ name, code: result.code, stderr: result.stderr }).toEqual({ name, code: 0, stderr: expect.any(String) });
      // Two busy answers, two retries said: of one request (attempts 2 and 3), or of two asked at
      // once (a push asks what the node takes beside its first "which do you lack?": attempt 2 each).
      const busy = /^dsync: retrying (GET|POST) \/v1\/\S+: 503 the node is busy.*attempt [23] of 4/;
      expect({ name, retries }).toEqual({ name, retries: [expect.stringMatching(busy), expect.stringMatching(busy)] });
      if (new Set(retries.map((line) => /retrying (\S+ \S+):/.exec(line)![1])).size === 1) expect(retries[1]).toMatch(/attempt 3 of 4/);
      // --json stays one document: the notices went to stderr.
      expect(() => JSON.parse(result.stdout)).not.toThrow();
      expect(server.requests()).toBeGreaterThan(2);
    } finally {
      server.stop();
    }
  }
}, 120_000);

test("https:// to a server that speaks plain http: one line naming the URL and TLS", async () => {
  await withServer(notFoundServer(), (server) => expectClearFailure({ url: server.url.replace("http:", "https:") }, /^dsync: .*https:\/\/127\.0\.0\.1:\d+.*\bTLS\b/, 5000));
}, 60_000);

test("a name that does not resolve: one line naming it", async () => {
  // .invalid never resolves (RFC 6761).
  await expectClearFailure({ url: "http://no-such-node.invalid:7700" }, /^dsync: cannot reach the dsync node at http:\/\/no-such-node\.invalid:7700: the name no-such-node\.invalid does not resolve/, 15_000);
}, 60_000);

test("a node marks every answer with X-Dsync-Node, errors and pages included", async () => {
  const health = await fetch(`${node.url}/v1/health`);
  const id = ((await health.json()) as { node: string }).node;
  expect(health.headers.get("x-dsync-node")).toBe(id);
  for (const path of ["/v1/no-such-route", "/v1/folders/no-such-folder", "/v1/folders/bad%20name", "/"]) {
    const answer = await fetch(node.url + path);
    await answer.arrayBuffer();
    expect({ path, mark: answer.headers.get("x-dsync-node") }).toEqual({ path, mark: id });
  }
});
