// A peer proof is good at the node it was made for, and nowhere else: node A, which pins peer
// X, calls X with its certificate, proof and the cluster token; X replays those headers to
// node B (which pins A but not X; A pins both), with the Host header A used for X, on the same path. B
// refuses (401): the proof names X's certificate, not B's. Before proofs named the receiver's
// certificate, B took the replay as a request from A (200, its folder listing). Real processes
// for A and B, a real TLS listener for X, all on 127.0.0.1.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";

const running: NodeProcess[] = [];
const CLUSTER_TOKEN = "replay-cluster-token-1";

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

async function makeCert() {
  const dir = join(tempDir(), "tls");
  const result = await runCli(["cert", "create", "--out", dir]);
  expect(result.code).toBe(0);
  const fingerprint = /sha256:[0-9a-f]{64}/.exec(result.stdout)?.[0];
  if (!fingerprint) throw new Error(`dsync cert create printed no fingerprint: ${result.stdout}${result.stderr}`);
  return { crt: join(dir, "node.crt"), key: join(dir, "node.key"), fingerprint };
}

test("a proof a peer received is refused when it replays it to another node", async () => {
  const [certA, certB, certX] = [await makeCert(), await makeCert(), await makeCert()];
  const [portA, portB] = [await freePort(), await freePort()];
  const captured: { path: string; headers: Headers }[] = [];
  const x = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(certX.crt, "utf8"), key: readFileSync(certX.key, "utf8") },
    fetch(request) {
      const url = new URL(request.url);
      if (request.method === "GET" && url.pathname.startsWith("/v1/peer/")) captured.push({ path: url.pathname + url.search, headers: request.headers });
      return new Response("{}", { status: 503, headers: { "content-type": "application/json" } });
    },
  });
  try {
    const xHost = `127.0.0.1:${x.port}`;
    const common = ["--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300"];
    const start = async (cert: typeof certA, port: number, args: string[]) => {
      const node = await startNode({ args: ["--tls-cert", cert.crt, "--tls-key", cert.key, ...args, ...common], listen: `127.0.0.1:${port}` });
      running.push(node);
      return node;
    };
    await start(certA, portA, ["--node-id", "node-a", "--peers", `https://${xHost}#${certX.fingerprint},https://127.0.0.1:${portB}#${certB.fingerprint}`]);
    const b = await start(certB, portB, ["--node-id", "node-b", "--peers", `https://127.0.0.1:${portA}#${certA.fingerprint}`]);

    const deadline = Date.now() + 20_000;
    while (captured.length === 0) {
      if (Date.now() > deadline) throw new Error("node A never called X, the peer it pins");
      await Bun.sleep(50);
    }
    const { path, headers } = captured[0]!;
    expect(headers.get("x-dsync-peer-proof")).toBeTruthy();
    const replayHeaders: Record<string, string> = { host: xHost };
    for (const name of ["authorization", "x-dsync-peer-certificate", "x-dsync-peer-proof"]) replayHeaders[name] = headers.get(name)!;
    const replay = await fetch(`${b.url}${path}`, { headers: replayHeaders, tls: { ca: readFileSync(certB.crt, "utf8") } } as RequestInit);
    const body = await replay.text();
    expect({ status: replay.status, body }).toMatchObject({ status: 401 });
    expect(body).toContain("does not verify");
    // B's own calls to A still pass: the proof B makes for A names A's certificate.
    const reachableBy = Date.now() + 20_000;
    for (;;) {
      const status = await fetch(`${b.url}/v1/status`, { tls: { ca: readFileSync(certB.crt, "utf8") } } as RequestInit);
      const peers = ((await status.json()) as { peers: { reachable: boolean | null; lastError: string | null }[] }).peers;
      if (peers[0]?.reachable === true) break;
      if (Date.now() > reachableBy) throw new Error(`B never reached A: ${JSON.stringify(peers)}`);
      await Bun.sleep(100);
    }
  } finally {
    x.stop(true);
  }
}, 60_000);
