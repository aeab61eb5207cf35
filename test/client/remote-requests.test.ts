// RemoteNode's requests against real sockets: what is tried again and what is not, the node's
// Retry-After, a server that is not a dsync node, a connect that never completes, and a wait
// that ends (its socket is closed).
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { attemptRequest } from "../../src/client/node-request.ts";
import { RemoteError, RemoteNode, type RemoteOptions } from "../../src/client/remote.ts";
import { silentServer, unacceptingPort } from "../helpers/fake-servers.ts";

/** A RemoteNode whose pauses are recorded, not waited, with jitter fixed at its lowest. */
function remote(url: string, options: RemoteOptions = {}): { node: RemoteNode; slept: number[]; notices: string[] } {
  const slept: number[] = [];
  const notices: string[] = [];
  const node = new RemoteNode(url, undefined, {
    timeouts: { idleTimeoutMs: 2000 },
    retry: { random: () => 0, sleep: async (ms) => void slept.push(ms) },
    notice: (line) => notices.push(line),
    ...options,
  });
  return { node, slept, notices };
}

function serve(handler: (request: Request) => Response | Promise<Response>) {
  const seen: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      seen.push(`${request.method} ${new URL(request.url).pathname}`);
      return handler(request);
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, seen, stop: () => server.stop(true) };
}

const busy = () => Response.json({ error: "busy" }, { status: 503, headers: { "retry-after": "3", "x-dsync-node": "n1" } });

test("a GET answered 503 is tried again after the node's Retry-After; a commit is not", async () => {
  const server = serve(busy);
  try {
    const { node, slept, notices } = remote(server.url);
    await expect(node.status()).rejects.toThrow("is not available (503) for GET /v1/status: busy");
    expect(server.seen).toEqual(Array(4).fill("GET /v1/status"));
    // Backoff 0.5, 1, 2 s at the lowest jitter, each raised to the 3 s the node asked for.
    expect(slept).toEqual([3000, 3000, 3000]);
    expect(notices[0]).toBe("retrying GET /v1/status: 503 busy (attempt 2 of 4 in 3.0 s)");

    server.seen.length = 0;
    const commit = node.commit("f", { root: "ab".repeat(32), parent: null, message: "", chunking: "x", files: 0, bytes: 0 });
    await expect(commit).rejects.toThrow("503");
    expect(server.seen).toEqual(["POST /v1/folders/f/commit"]);
  } finally {
    server.stop();
  }
});

test("a commit whose connection breaks before the answer is not sent again, and says how to find out", async () => {
  const requests: string[] = [];
  const server = net.createServer((socket) => {
    socket.on("data", (data) => {
      requests.push(data.toString("latin1").split("\r\n")[0]!);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { node } = remote(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    const commit = node.commit("f", { root: "ab".repeat(32), parent: null, message: "", chunking: "x", files: 0, bytes: 0 });
    await expect(commit).rejects.toThrow(/closed before the node answered POST \/v1\/folders\/f\/commit .*it is not sent again: dsync log or dsync status shows whether it did/);
    // (A TLS handshake may follow, asking whether the port speaks TLS: that is no request.)
    expect(requests.filter((line) => /^[A-Z]+ \//.test(line))).toEqual(["POST /v1/folders/f/commit HTTP/1.1"]);
  } finally {
    server.close();
  }
});

test("a web server's 200 page is not a dsync node's reply: asked once, said once", async () => {
  const server = serve(() => new Response("<html>hello</html>", { headers: { "content-type": "text/html" } }));
  try {
    const { node } = remote(server.url);
    await expect(node.listFolders()).rejects.toThrow(`${server.url} is not a dsync node: GET /v1/health answered 200 with something other than a dsync node's health`);
    await expect(node.getFolder("f")).rejects.toThrow("is not a dsync node");
    expect(server.seen).toEqual(["GET /v1/folders", "GET /v1/health", "GET /v1/folders/f"]);
  } finally {
    server.stop();
  }
});

test("a 404 with a JSON error is a dsync node's (an older one, without the header): no health check", async () => {
  const server = serve(() => Response.json({ error: "no folder named f" }, { status: 404 }));
  try {
    const { node } = remote(server.url);
    expect(await node.getFolder("f")).toBeUndefined();
    expect(server.seen).toEqual(["GET /v1/folders/f"]);
  } finally {
    server.stop();
  }
});

test("a 404 whose body is JSON null, from a server that is not a node, is said as such (never a JavaScript error)", async () => {
  const server = serve(() => new Response("null", { status: 404 }));
  try {
    const { node } = remote(server.url);
    const error = await node.getFolder("f").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).kind).toBe("not-a-node");
    expect((error as Error).message).toBe(`${server.url} is not a dsync node: GET /v1/health answered 404 (check --remote or DSYNC_REMOTE)`);
  } finally {
    server.stop();
  }
});

test("a connect that never completes ends at the connect timeout, however long the idle timeout", async () => {
  const port = await unacceptingPort();
  try {
    const { node } = remote(port.url, { timeouts: { connectTimeoutMs: 500, idleTimeoutMs: 30_000 } });
    const started = performance.now();
    await expect(node.health()).rejects.toThrow(`cannot reach the dsync node at ${port.url}: no connection within 0.5 s`);
    expect(performance.now() - started).toBeLessThan(3000);
  } finally {
    port.stop();
  }
});

test("an ended wait aborts its request and the socket is closed", async () => {
  const server = await silentServer();
  try {
    const { node } = remote(server.url, { timeouts: { idleTimeoutMs: 30_000 } });
    const controller = new AbortController();
    const asked = node.status({ signal: controller.signal, retry: false });
    for (let i = 0; i < 100 && server.requests() === 0; i++) await Bun.sleep(20);
    expect(server.openConnections!()).toBe(1);
    controller.abort(new Error("the wait is over"));
    await expect(asked).rejects.toThrow("the wait is over");
    for (let i = 0; i < 100 && server.openConnections!() > 0; i++) await Bun.sleep(20);
    expect(server.openConnections!()).toBe(0);
  } finally {
    server.stop();
  }
});

test("a long poll's hold is waited for on top of the idle timeout; without it the same answer is too late", async () => {
  const server = serve(async () => {
    await Bun.sleep(1200);
    return Response.json({ ok: true }, { headers: { "x-dsync-node": "n1" } });
  });
  try {
    const request = { method: "GET", path: "/v1/events?wait=1", headers: {}, replyBytesMax: 1024, errorBytesMax: 1024 };
    const options = { timeouts: { connectTimeoutMs: 1000, idleTimeoutMs: 400 }, checkConnect: true };
    const held = await attemptRequest(server.url, { ...request, holdMs: 1500 }, options);
    expect(held.status).toBe(200);
    await expect(attemptRequest(server.url, request, options)).rejects.toThrow(`the node at ${server.url} did not answer GET /v1/events within 0.4 s`);
  } finally {
    server.stop();
  }
});

test("a commit's answer listing 80 000 conflicts (past the 2 MiB JSON bound and a million values) is read whole", async () => {
  const id = "ab".repeat(32);
  const entry = { kind: "file", id, mode: 420, size: 1, mtimeMs: 0, target: null };
  const conflicts = Array.from({ length: 80_000 }, (_, i) => ({ path: `dir/file-${i}.txt`, kind: "both-modified", winner: "ours", kept: entry, losers: [entry], copies: [`dir/file-${i}.sync-conflict.txt`] }));
  const body = JSON.stringify({ version: id, pushed: id, parent: null, mergedWith: id, root: id, conflicts });
  expect(body.length).toBeGreaterThan(4 * 1024 * 1024);
  const server = serve(() => new Response(body, { headers: { "content-type": "application/json", "x-dsync-node": "n1" } }));
  try {
    const { node } = remote(server.url);
    const commit = await node.commit("f", { root: id, parent: null, message: "", chunking: "x", files: 0, bytes: 0 });
    expect(commit.conflicts.length).toBe(80_000);
  } finally {
    server.stop();
  }
});

test("a commit is given the node's working time on top of the idle timeout; a status is not", async () => {
  const id = "ab".repeat(32);
  const server = serve(async (request) => {
    await Bun.sleep(1500);
    if (request.method === "POST") return Response.json({ version: id, pushed: id, parent: null, mergedWith: null, root: id, conflicts: [] }, { headers: { "x-dsync-node": "n1" } });
    return Response.json({ error: "late" }, { headers: { "x-dsync-node": "n1" } });
  });
  try {
    const { node } = remote(server.url, { timeouts: { idleTimeoutMs: 500 } });
    const commit = await node.commit("f", { root: id, parent: null, message: "", chunking: "x", files: 0, bytes: 0 });
    expect(commit.version).toBe(id);
    await expect(node.status({ retry: false })).rejects.toThrow("did not answer GET /v1/status within 0.5 s");
  } finally {
    server.stop();
  }
});

test("an upload to a node that stops reading ends near the idle timeout, not after the time allowed to send it", async () => {
  // Accepts, never reads: the socket buffers fill, then nothing moves.
  const server = net.createServer((socket) => socket.pause());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { node } = remote(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, { retry: { attemptsMax: 1 } });
    const started = performance.now();
    // 32 MiB would be given 512 s at the 64 KiB/s floor; Bun's socket timer, in whole seconds, ends it.
    await expect(node.uploadEncoded(new Uint8Array(randomBytes(32 * 1024 * 1024)))).rejects.toThrow(/nothing moved between this client and the node at \S+ for 2 s during POST \/v1\/objects\/upload/);
    expect(performance.now() - started).toBeLessThan(20_000);
  } finally {
    server.close();
  }
}, 30_000);
