// A peer that takes the connection and then says nothing, or sends its headers and then stalls
// in the middle of the body, costs each call its deadline and no more: every transport call
// (listing, history, download, notice) fails within its timeout, naming the peer.
import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { blake3 } from "../../src/core/blake3.ts";
import type { ObjectId } from "../../src/core/id.ts";
import { HttpPeerTransport, PeerRequestError } from "../../src/replication/http-transport.ts";

type Behaviour = "silent" | "stalls-in-body";

/** A peer that reads requests and then hangs, as `behaviour` says; its sockets stay open. */
function hangingPeer(behaviour: Behaviour): Promise<{ url: string; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("data", () => {
      if (behaviour === "stalls-in-body") socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"node\":");
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      });
    }),
  );
}

const peers: { close: () => void }[] = [];
afterAll(() => {
  for (const peer of peers) peer.close();
});

describe("a peer that hangs", () => {
  for (const behaviour of ["silent", "stalls-in-body"] as const) {
    test(`${behaviour}: every call fails within its deadline`, async () => {
      const peer = await hangingPeer(behaviour);
      peers.push(peer);
      const timeoutMs = 300;
      const transport = new HttpPeerTransport({ clusterToken: "cluster-token", requestTimeoutMs: timeoutMs, downloadTimeoutMs: timeoutMs });
      const id = blake3(new Uint8Array([1])) as ObjectId;
      const calls: [string, () => Promise<unknown>][] = [
        ["listFolders", () => transport.listFolders(peer.url)],
        ["history", () => transport.history(peer.url, { folder: "f", head: id, known: [] })],
        ["download", () => transport.download(peer.url, [id])],
        ["notify", () => transport.notify(peer.url, { from: "n1", folder: "f", head: id, vector: [] })],
      ];
      for (const [name, call] of calls) {
        const startedMs = performance.now();
        // A bound well past the deadline: reaching it means the call did not keep its deadline.
        const outcome = await Promise.race([
          call().then(
            () => "answered",
            (error: unknown) => error as Error,
          ),
          Bun.sleep(5000).then(() => "still waiting"),
        ]);
        expect(outcome, name).toBeInstanceOf(PeerRequestError);
        expect((outcome as Error).message, name).toContain(`peer ${peer.url}`);
        expect(performance.now() - startedMs, name).toBeLessThan(3000);
      }
    }, 30_000);
  }
});
