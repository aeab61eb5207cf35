// A peer's reply is read within a bound: one declaring more is refused before its body is read,
// one streaming more without saying so is cut off once it passes the bound. Either way the pull
// fails with a clear error and this node's memory does not follow the peer's reply.
import { expect, test } from "bun:test";
import { HttpPeerTransport, PEER_REPLY_BYTES_MAX } from "../../src/replication/http-transport.ts";

function serve(body: () => Response) {
  return Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => body() });
}

test("a peer reply that declares more than the bound is refused unread", async () => {
  // A raw socket, so the declared length is exactly what the peer says (an HTTP server library
  // would compute its own); the body that follows is small, and never read anyway.
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket) {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${PEER_REPLY_BYTES_MAX + 1}\r\n\r\n{"node":`);
      },
    },
  });
  try {
    const transport = new HttpPeerTransport({ clusterToken: "cluster-token-for-tests", requestTimeoutMs: 10_000 });
    const error = await transport.listFolders(`http://127.0.0.1:${server.port}`).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("larger than");
  } finally {
    server.stop(true);
  }
});

test("a peer reply streamed past the bound without a length is cut off there", async () => {
  const chunk = new Uint8Array(4 * 1024 * 1024);
  let sent = 0;
  const server = serve(
    () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            // Far more than the bound, if it were all read.
            if (sent > 4 * PEER_REPLY_BYTES_MAX) return controller.close();
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        }),
      ),
  );
  try {
    const transport = new HttpPeerTransport({ clusterToken: "cluster-token-for-tests", requestTimeoutMs: 30_000 });
    const error = await transport.listFolders(`http://127.0.0.1:${server.port}`).catch((e: Error) => e);
    expect((error as Error).message).toContain("larger than");
    expect(sent).toBeLessThan(2 * PEER_REPLY_BYTES_MAX);
  } finally {
    server.stop(true);
  }
}, 60_000);
