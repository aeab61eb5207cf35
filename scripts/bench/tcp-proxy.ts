// A small counting TCP proxy for benchmarks: forwards 127.0.0.1:LISTEN to 127.0.0.1:TARGET and
// counts the bytes that cross it in each direction, so two sync tools can be compared by what
// they put on the wire (headers, protocol chatter and all), not by what they say they sent.
//
// As a module:
//   const proxy = await startTcpProxy({ targetPort: 7700 });   // listens on a free port
//   ... run a client against 127.0.0.1:proxy.port ...
//   proxy.counters()  -> { up, down, connections }   (up = client to target)
//   proxy.reset();  proxy.setTarget(7701);  proxy.stop();
//
// As a command:
//   bun scripts/bench/tcp-proxy.ts --target 7700 [--listen 7800] [--control 7801]
// prints "proxy listening on 127.0.0.1:PORT"; with --control, GET http://127.0.0.1:CONTROL/counters
// returns the counters as JSON and POST /reset zeroes them. The counters are also printed on exit.
//
// Backpressure: when one side cannot take more, reading from the other side pauses until it
// drains, so memory stays bounded whatever the transfer size. Half-closes are forwarded.
import type { Socket } from "bun";

const LOOPBACK = "127.0.0.1";

export interface ProxyCounters {
  /** Bytes from the client to the target. */
  up: number;
  /** Bytes from the target back to the client. */
  down: number;
  /** Connections accepted. */
  connections: number;
}

export interface TcpProxy {
  readonly port: number;
  targetPort: number;
  counters(): ProxyCounters;
  /** Zeroes the counters (connections in flight keep being forwarded and counted). */
  reset(): void;
  /** Points new connections at another port (connections in flight stay where they are). */
  setTarget(port: number): void;
  /** Stops listening and closes every connection. */
  stop(): void;
}

/** One direction of a connection: bytes waiting for the peer to accept them. */
interface Side {
  socket: Socket<Side> | null;
  peer: Side | null;
  /** Bytes received before the peer existed or while it was full. */
  queue: Uint8Array[];
  /** This side's peer finished sending: shut down our write half once the queue is flushed. */
  endPending: boolean;
  closed: boolean;
  countAs: "up" | "down";
}

function newSide(countAs: "up" | "down"): Side {
  return { socket: null, peer: null, queue: [], endPending: false, closed: false, countAs };
}

/** Writes as much of `side.queue` to side.socket as it takes; true when the queue is empty. */
function flush(side: Side): boolean {
  const socket = side.socket;
  if (!socket || side.closed) return side.queue.length === 0;
  while (side.queue.length > 0) {
    const head = side.queue[0]!;
    const written = socket.write(head);
    if (written < 0) return false;
    if (written < head.length) {
      side.queue[0] = head.subarray(written);
      return false;
    }
    side.queue.shift();
  }
  if (side.endPending) {
    side.endPending = false;
    socket.shutdown();
  }
  return true;
}

/** Queues bytes for `to` and writes what it takes; pauses `from` while `to` is backed up. */
function forward(from: Side, to: Side, data: Uint8Array): void {
  if (to.closed) return;
  if (to.queue.length === 0 && to.socket) {
    const written = to.socket.write(data);
    if (written === data.length) return;
    to.queue.push(data.slice(Math.max(written, 0)));
  } else {
    to.queue.push(data.slice());
  }
  from.socket?.pause();
}

function closeSide(side: Side): void {
  if (side.closed) return;
  side.closed = true;
  const peer = side.peer;
  if (!peer || peer.closed) return;
  // Let the peer finish what it already holds, then close it.
  if (peer.queue.length === 0) peer.socket?.end();
  else peer.endPending = true;
}

export async function startTcpProxy(options: { targetPort: number; listenPort?: number }): Promise<TcpProxy> {
  const counters: ProxyCounters = { up: 0, down: 0, connections: 0 };
  let targetPort = options.targetPort;
  const open = new Set<Side>();

  const handlers = {
    binaryType: "uint8array" as const,
    data(socket: Socket<Side>, data: Uint8Array) {
      const side = socket.data;
      counters[side.countAs] += data.length;
      forward(side, side.peer!, data);
    },
    drain(socket: Socket<Side>) {
      const side = socket.data;
      if (flush(side)) side.peer?.socket?.resume();
    },
    end(socket: Socket<Side>) {
      // The sender finished: pass the half-close on once its bytes are through.
      const to = socket.data.peer!;
      if (to.closed) return;
      if (to.queue.length === 0 && to.socket) to.socket.shutdown();
      else to.endPending = true;
    },
    close(socket: Socket<Side>) {
      open.delete(socket.data);
      closeSide(socket.data);
    },
    error(socket: Socket<Side>) {
      socket.end();
    },
  };

  const listener = Bun.listen<Side>({
    hostname: LOOPBACK,
    port: options.listenPort ?? 0,
    allowHalfOpen: true,
    socket: {
      ...handlers,
      open(client) {
        counters.connections++;
        const clientSide = newSide("up");
        const targetSide = newSide("down");
        clientSide.socket = client;
        clientSide.peer = targetSide;
        targetSide.peer = clientSide;
        client.data = clientSide;
        open.add(clientSide);
        // Bytes from the client wait in targetSide.queue until the target accepts the connection.
        client.pause();
        Bun.connect<Side>({
          hostname: LOOPBACK,
          port: targetPort,
          allowHalfOpen: true,
          data: targetSide,
          socket: {
            ...handlers,
            open(target) {
              targetSide.socket = target;
              open.add(targetSide);
              if (flush(targetSide)) client.resume();
            },
            connectError() {
              targetSide.closed = true;
              client.end();
            },
          },
        }).catch(() => undefined);
      },
    },
  });

  return {
    port: listener.port,
    get targetPort() {
      return targetPort;
    },
    set targetPort(port: number) {
      targetPort = port;
    },
    counters: () => ({ ...counters }),
    reset() {
      counters.up = 0;
      counters.down = 0;
      counters.connections = 0;
    },
    setTarget(port: number) {
      targetPort = port;
    },
    stop() {
      listener.stop(true);
      for (const side of open) side.socket?.terminate();
      open.clear();
    },
  };
}

function parsePort(text: string | undefined, flag: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${flag} needs a port number`);
  return port;
}

async function main(argv: string[]): Promise<void> {
  let target: number | undefined;
  let listen = 0;
  let control: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--target") target = parsePort(argv[++i], flag);
    else if (flag === "--listen") listen = parsePort(argv[++i], flag);
    else if (flag === "--control") control = parsePort(argv[++i], flag);
    else throw new Error(`unknown argument ${flag} (usage: tcp-proxy.ts --target PORT [--listen PORT] [--control PORT])`);
  }
  if (target === undefined) throw new Error("--target PORT is required");
  const proxy = await startTcpProxy({ targetPort: target, listenPort: listen });
  let server: ReturnType<typeof Bun.serve> | undefined;
  if (control !== undefined) {
    server = Bun.serve({
      hostname: LOOPBACK,
      port: control,
      fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === "/counters") return Response.json(proxy.counters());
        if (path === "/reset" && request.method === "POST") {
          const before = proxy.counters();
          proxy.reset();
          return Response.json(before);
        }
        return new Response("GET /counters or POST /reset\n", { status: 404 });
      },
    });
  }
  process.stdout.write(`proxy listening on ${LOOPBACK}:${proxy.port} -> ${LOOPBACK}:${target}` + (server ? ` (control on ${LOOPBACK}:${server.port})` : "") + "\n");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  process.stdout.write(JSON.stringify(proxy.counters()) + "\n");
  server?.stop(true);
  proxy.stop();
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`tcp-proxy: ${(error as Error).message}\n`);
    process.exit(2);
  });
}
