// A failed pull's message names its folder: GET /v1/status shows it to a token that may see
// that folder, and to a token limited to other folders only as "replicating failed", so a
// peer's trouble with folder secret-b does not tell a reader of f that secret-b exists. The
// node replicates over HTTP from a peer on 127.0.0.1 that lists secret-b and fails its history.
import { afterAll, expect, test } from "bun:test";
import { systemRandom } from "../../src/node/clock.ts";
import { SqliteTokenStore } from "../../src/node/token-store.ts";
import { HttpPeerTransport } from "../../src/replication/http-transport.ts";
import { Replicator } from "../../src/replication/replicator.ts";
import { createApp } from "../../src/server/app.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const ADMIN = "admin-token-for-tests";
const CLUSTER = "cluster-token-for-tests";

test("a pull failure in another folder reaches a scoped token's status without that folder's name", async () => {
  const peer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      if (url.pathname === "/v1/peer/folders") {
        return Response.json({ node: "peer-1", folders: [{ name: "secret-b", mode: "eventual", head: "ab".repeat(32), vector: { "peer-1": 1 } }], next: null });
      }
      return Response.json({ error: "the history of secret-b is unreadable here" }, { status: 500 });
    },
  });
  const { node } = await memoryNodeWithOneCommit();
  const replicator = new Replicator({
    node,
    peers: [`http://127.0.0.1:${peer.port}`],
    transport: new HttpPeerTransport({ clusterToken: CLUSTER }),
    timers: { setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as number, clearTimeout: (id) => clearTimeout(id as unknown as Timer) },
    intervalMs: 60_000,
  });
  const tokens = SqliteTokenStore.open(tempDir(), systemRandom);
  const reader = await tokens.create({ role: "read", folders: ["f"], name: "reader of f", expiresMs: null }, Date.now());
  const app = createApp(node, { token: ADMIN, tokens, clusterToken: "another-cluster-token", replicator });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  const status = async (token: string) => (await fetch(`http://127.0.0.1:${server.port}/v1/status`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<{ peers: { lastError: string | null }[] }>;
  try {
    replicator.start();
    const deadline = Date.now() + 10_000;
    while (!replicator.peerStates()[0]?.lastError) {
      if (Date.now() > deadline) throw new Error("the pull from the peer never failed");
      await Bun.sleep(20);
    }
    const asAdmin = await status(ADMIN);
    expect(asAdmin.peers[0]!.lastError).toContain("secret-b");
    const asReader = await status(reader.token);
    expect(asReader.peers.length).toBe(1);
    expect(asReader.peers[0]!.lastError).toBe("replicating failed (an admin token sees why)");
    expect(JSON.stringify(asReader)).not.toContain("secret-b");
  } finally {
    replicator.stop();
    server.stop(true);
    peer.stop(true);
  }
});
