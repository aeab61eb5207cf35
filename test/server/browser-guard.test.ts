// A node served without a token, over a real socket: a web page in a local browser can neither
// send it requests (Origin of another page: 403) nor read it through a name rebound to
// 127.0.0.1 (Host not a loopback name: 421). Tools, which send no Origin, and the dashboard's
// own requests go through; with a token the guard is not in the way.
import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { idToHex } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { browserRefusal } from "../../src/server/browser-guard.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { assembleServices } from "../../src/assemble.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const running: RunningServer[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) await server.stop();
});

async function serve(options: { token?: string; metrics?: boolean } = {}) {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  const server = startServer(await assembleServices(node), { hostname: "127.0.0.1", port: 0 }, {
    token: options.token,
    metricsListen: options.metrics ? { hostname: "127.0.0.1", port: 0 } : undefined,
  });
  running.push(server);
  return { node, server, root: idToHex(root) };
}

/** One raw HTTP/1.1 exchange, so Host and Origin are exactly what a browser would send; bounded by a deadline. */
function raw(url: string, method: string, headers: Record<string, string>, body = ""): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  const path = new URL(url).pathname;
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${Buffer.byteLength(body)}`, "connection: close", "", body];
      socket.write(lines.join("\r\n"));
    });
    let text = "";
    const deadline = setTimeout(() => socket.destroy(new Error("no answer within 10 s")), 10_000);
    socket.on("data", (chunk) => (text += chunk));
    socket.on("error", (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    socket.on("end", () => {
      clearTimeout(deadline);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.split("\r\n\r\n").slice(1).join("\r\n\r\n") });
    });
  });
}

describe("browser guard on an address without a token", () => {
  test("another page's POST is refused and changes nothing; the same request from a tool commits", async () => {
    const { node, server, root } = await serve();
    const host = new URL(server.url).host;
    const body = JSON.stringify({ root, parent: null });
    // A page may send text/plain without a preflight: the browser adds its Origin.
    const fromPage = await raw(`${server.url}/v1/folders/f/commit`, "POST", { host, origin: "https://attacker.example", "content-type": "text/plain" }, body);
    expect(fromPage.status).toBe(403);
    expect(fromPage.body).toContain("other web pages");
    expect(await node.metadata.getFolder("f")).toBeUndefined();
    const fromTool = await raw(`${server.url}/v1/folders/f/commit`, "POST", { host, "content-type": "application/json" }, body);
    expect(fromTool.status).toBe(200);
    expect(await node.metadata.getFolder("f")).toBeDefined();
  });

  test("a name rebound to 127.0.0.1 is refused; loopback names and the page's own origin are served", async () => {
    const { server } = await serve();
    const { port } = new URL(server.url);
    const rebound = await raw(`${server.url}/v1/folders`, "GET", { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}` });
    expect(rebound.status).toBe(421);
    expect((await raw(`${server.url}/v1/folders`, "GET", { host: `attacker.example:${port}` })).status).toBe(421);
    expect((await raw(`${server.url}/`, "GET", { host: `attacker.example:${port}` })).status).toBe(421);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
      expect((await raw(`${server.url}/v1/folders`, "GET", { host })).status).toBe(200);
      expect((await raw(`${server.url}/v1/folders`, "GET", { host, origin: `http://${host}` })).status).toBe(200);
    }
  });

  test("the metrics-only address is guarded the same way", async () => {
    const { server } = await serve({ metrics: true });
    const { port } = new URL(server.metricsUrl!);
    expect((await raw(`${server.metricsUrl}/metrics`, "GET", { host: `attacker.example:${port}` })).status).toBe(421);
    expect((await raw(`${server.metricsUrl}/metrics`, "GET", { host: `127.0.0.1:${port}`, origin: "https://attacker.example" })).status).toBe(403);
    expect((await raw(`${server.metricsUrl}/metrics`, "GET", { host: `127.0.0.1:${port}` })).status).toBe(200);
  });

  test("with a token the token decides, whatever the names", async () => {
    const { server } = await serve({ token: "client-token" });
    const { port } = new URL(server.url);
    const host = `attacker.example:${port}`;
    expect((await raw(`${server.url}/v1/folders`, "GET", { host })).status).toBe(401);
    expect((await raw(`${server.url}/v1/folders`, "GET", { host, authorization: "Bearer client-token" })).status).toBe(200);
  });

  test("the rule itself: Host forms and Origin comparison", () => {
    const request = (headers: Record<string, string>) => new Request("http://127.0.0.1:7000/v1/folders", { headers });
    const loopbackOnly = { loopbackOnly: true };
    expect(browserRefusal(request({ host: "[::1]:7000" }), loopbackOnly)).toBeUndefined();
    expect(browserRefusal(request({ host: "127.0.0.5" }), loopbackOnly)).toBeUndefined();
    expect(browserRefusal(request({ host: "localhost." }), loopbackOnly)).toBeUndefined();
    expect(browserRefusal(request({ host: "127.0.0.1.attacker.example:7000" }), loopbackOnly)?.status).toBe(421);
    expect(browserRefusal(request({ host: "[::2]:7000" }), loopbackOnly)?.status).toBe(421);
    expect(browserRefusal(request({ host: "127.0.0.1:7000", origin: "null" }), loopbackOnly)?.status).toBe(403);
    expect(browserRefusal(request({ host: "127.0.0.1:7000", origin: "http://127.0.0.1:7001" }), loopbackOnly)?.status).toBe(403);
    // An address the operator declared trusted (--insecure, not loopback): any name, still no other page.
    expect(browserRefusal(request({ host: "nas.lan:7000" }), { loopbackOnly: false })).toBeUndefined();
    expect(browserRefusal(request({ host: "nas.lan:7000", origin: "https://attacker.example" }), { loopbackOnly: false })?.status).toBe(403);
  });
});
