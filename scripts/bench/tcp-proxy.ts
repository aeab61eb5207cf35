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
//   bun scripts/bench/tcp-proxy.ts --target 7700 [--listen 7800] [--control 7801] [--link-mbit 100 [--latency-ms 5]]
// prints "proxy listening on 127.0.0.1:PORT"; with --control, GET http://127.0.0.1:CONTROL/counters
// returns the counters as JSON and POST /reset zeroes them. The counters are also printed on exit.
//
// Backpressure: when one side cannot take more, reading from the other side pauses until it
// drains, so memory stays bounded whatever the transfer size. Half-closes are forwarded.
//
// A slow link: `startTcpProxy({ targetPort, link: { mbit: 100, latencyMs: 5 } })` (or `--link-mbit
// 100 [--latency-ms 5]`) passes each direction through a token bucket of that rate, shared by all
// the proxy's connections as one link would be, with bursts of a few milliseconds' worth and an
// optional one-way latency added after it. `measureLinkMbit(link)` sends bytes through such a
// proxy to a sink and returns the rate achieved, to check the throttle.
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
  /** Bytes on their way to this side through the throttled link (queued or in their latency). */
  inLink: number;
  /** How to close this side once the link has delivered everything on its way to it. */
  closeAfterLink: "shutdown" | "end" | null;
}

function newSide(countAs: "up" | "down"): Side {
  return { socket: null, peer: null, queue: [], endPending: false, closed: false, countAs, inLink: 0, closeAfterLink: null };
}

/** A link's shape: its rate each way and an optional one-way latency. */
export interface LinkSettings {
  /** Megabits (10^6 bits) per second, each direction. */
  mbit: number;
  latencyMs?: number;
}

/** Bytes a connection may have waiting in the link before its sender is paused. */
const LINK_QUEUE_HIGH_BYTES = 256 * 1024;
/** The bucket's depth: this many milliseconds of the rate (at least one full-size TCP segment's worth). */
const LINK_BURST_MS = 8;

/**
 * One direction of a throttled link: a token bucket of `bytesPerSecond`, FIFO over every
 * connection's bytes (they share the link), then `latencyMs` before delivery.
 */
class LinkDirection {
  private readonly bytesPerMs: number;
  private readonly burstBytes: number;
  private readonly pieceBytes: number;
  private tokens: number;
  private lastMs = performance.now();
  private readonly queue: { from: Side; to: Side; data: Uint8Array }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    settings: LinkSettings,
    private readonly deliver: (to: Side, data: Uint8Array) => void,
  ) {
    if (!(settings.mbit > 0)) throw new Error("a link's rate must be above 0 Mbit/s");
    this.bytesPerMs = (settings.mbit * 1e6) / 8 / 1000;
    this.burstBytes = Math.max(32 * 1024, Math.round(this.bytesPerMs * LINK_BURST_MS));
    this.pieceBytes = Math.floor(this.burstBytes / 2);
    this.tokens = this.burstBytes;
    this.latencyMs = Math.max(0, settings.latencyMs ?? 0);
  }

  private readonly latencyMs: number;

  send(from: Side, to: Side, data: Uint8Array): void {
    this.queue.push({ from, to, data: data.slice() });
    to.inLink += data.length;
    if (to.inLink > LINK_QUEUE_HIGH_BYTES) from.socket?.pause();
    this.pump();
  }

  private pump(): void {
    this.timer = undefined;
    const now = performance.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.lastMs) * this.bytesPerMs);
    this.lastMs = now;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      // A piece goes once the bucket holds all of it, not byte by byte; pieces of half the
      // bucket's depth leave room for a timer that fires late, so no rate is lost to it.
      const want = Math.min(head.data.length, this.pieceBytes);
      if (this.tokens < want) break;
      const piece = head.data.subarray(0, want);
      this.tokens -= want;
      if (want === head.data.length) this.queue.shift();
      else head.data = head.data.subarray(want);
      if (this.latencyMs > 0) setTimeout(() => this.arrive(head.from, head.to, piece), this.latencyMs);
      else this.arrive(head.from, head.to, piece);
    }
    if (this.queue.length > 0 && this.timer === undefined) {
      const want = Math.min(this.queue[0]!.data.length, this.pieceBytes);
      this.timer = setTimeout(() => this.pump(), Math.max(1, (want - this.tokens) / this.bytesPerMs));
    }
  }

  private arrive(from: Side, to: Side, piece: Uint8Array): void {
    to.inLink -= piece.length;
    this.deliver(to, piece);
    if (to.inLink <= LINK_QUEUE_HIGH_BYTES / 2 && to.queue.length === 0 && !to.closed) from.socket?.resume();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
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
  // Bytes still crossing a throttled link to the peer go first.
  if (peer.inLink > 0) {
    peer.closeAfterLink = "end";
    return;
  }
  // Let the peer finish what it already holds, then close it.
  if (peer.queue.length === 0) peer.socket?.end();
  else peer.endPending = true;
}

/** Hands bytes that crossed the link to their side's socket (queued while it is backed up). */
function deliver(to: Side, data: Uint8Array): void {
  if (!to.closed) {
    if (to.queue.length === 0 && to.socket) {
      const written = to.socket.write(data);
      if (written < data.length) to.queue.push(data.subarray(Math.max(written, 0)));
    } else to.queue.push(data);
    if (to.queue.length > 0) to.peer?.socket?.pause();
  }
  if (to.inLink > 0 || to.closeAfterLink === null) return;
  const how = to.closeAfterLink;
  to.closeAfterLink = null;
  if (to.closed) return;
  if (to.queue.length === 0 && to.socket) {
    if (how === "end") to.socket.end();
    else to.socket.shutdown();
  } else to.endPending = true;
}

export async function startTcpProxy(options: { targetPort: number; listenPort?: number; link?: LinkSettings }): Promise<TcpProxy> {
  const counters: ProxyCounters = { up: 0, down: 0, connections: 0 };
  let targetPort = options.targetPort;
  const open = new Set<Side>();
  const link = options.link ? { up: new LinkDirection(options.link, deliver), down: new LinkDirection(options.link, deliver) } : undefined;

  const handlers = {
    binaryType: "uint8array" as const,
    data(socket: Socket<Side>, data: Uint8Array) {
      const side = socket.data;
      counters[side.countAs] += data.length;
      if (link) link[side.countAs].send(side, side.peer!, data);
      else forward(side, side.peer!, data);
    },
    drain(socket: Socket<Side>) {
      const side = socket.data;
      if (flush(side)) side.peer?.socket?.resume();
    },
    end(socket: Socket<Side>) {
      // The sender finished: pass the half-close on once its bytes are through.
      const to = socket.data.peer!;
      if (to.closed) return;
      if (to.inLink > 0) {
        if (to.closeAfterLink === null) to.closeAfterLink = "shutdown";
        return;
      }
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
      link?.up.stop();
      link?.down.stop();
      listener.stop(true);
      for (const side of open) side.socket?.terminate();
      open.clear();
    },
  };
}

/**
 * Sends `bytes` each way through a proxy with these link settings (to a server that swallows
 * what it gets, then from one that sends as much) and returns the megabits per second achieved
 * in each direction, from the first byte written until the last one arrived.
 */
export async function measureLinkMbit(settings: LinkSettings, bytes = 4 * 1024 * 1024): Promise<{ up: number; down: number }> {
  const block = new Uint8Array(64 * 1024).fill(0x5a);
  let received = 0;
  let doneUp: () => void = () => {};
  const upDone = new Promise<void>((resolve) => (doneUp = resolve));
  /** Writes `total` bytes to the socket as fast as it takes them. */
  const pour = (socket: Socket<{ left: number }>) => {
    while (socket.data.left > 0) {
      const piece = block.subarray(0, Math.min(block.length, socket.data.left));
      const written = socket.write(piece);
      if (written <= 0) return;
      socket.data.left -= written;
    }
    socket.end();
  };
  const server = Bun.listen({
    hostname: LOOPBACK,
    port: 0,
    socket: {
      data(_socket, data) {
        received += data.length;
        if (received >= bytes) doneUp();
      },
    },
  });
  const proxy = await startTcpProxy({ targetPort: server.port, link: settings });
  try {
    const upStart = performance.now();
    const up = await Bun.connect<{ left: number }>({ hostname: LOOPBACK, port: proxy.port, data: { left: bytes }, socket: { data() {}, drain: pour, open: pour } });
    await upDone;
    const upMs = performance.now() - upStart;
    up.end();
    // Down: a second server that sends `bytes` as soon as a client connects.
    let got = 0;
    let doneDown: () => void = () => {};
    const downDone = new Promise<void>((resolve) => (doneDown = resolve));
    const source = Bun.listen<{ left: number }>({ hostname: LOOPBACK, port: 0, socket: { data() {}, open: (socket) => ((socket.data = { left: bytes }), pour(socket)), drain: pour } });
    proxy.setTarget(source.port);
    const downStart = performance.now();
    const down = await Bun.connect({
      hostname: LOOPBACK,
      port: proxy.port,
      socket: {
        data(_socket, data) {
          got += data.length;
          if (got >= bytes) doneDown();
        },
      },
    });
    await downDone;
    const downMs = performance.now() - downStart;
    down.end();
    source.stop(true);
    const mbit = (ms: number) => (bytes * 8) / 1e6 / (ms / 1000);
    return { up: mbit(upMs), down: mbit(downMs) };
  } finally {
    proxy.stop();
    server.stop(true);
  }
}

function parsePort(text: string | undefined, flag: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${flag} needs a port number`);
  return port;
}

function parsePositive(text: string | undefined, flag: string): number {
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`${flag} needs a positive number`);
  return value;
}

async function main(argv: string[]): Promise<void> {
  let target: number | undefined;
  let listen = 0;
  let control: number | undefined;
  let link: LinkSettings | undefined;
  let latencyMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--target") target = parsePort(argv[++i], flag);
    else if (flag === "--link-mbit") link = { mbit: parsePositive(argv[++i], flag) };
    else if (flag === "--latency-ms") latencyMs = parsePositive(argv[++i], flag);
    else if (flag === "--listen") listen = parsePort(argv[++i], flag);
    else if (flag === "--control") control = parsePort(argv[++i], flag);
    else throw new Error(`unknown argument ${flag} (usage: tcp-proxy.ts --target PORT [--listen PORT] [--control PORT] [--link-mbit N [--latency-ms N]])`);
  }
  if (target === undefined) throw new Error("--target PORT is required");
  if (latencyMs !== undefined) {
    if (!link) throw new Error("--latency-ms needs --link-mbit");
    link.latencyMs = latencyMs;
  }
  if (link) {
    const achieved = await measureLinkMbit(link);
    process.stdout.write(`link ${link.mbit} Mbit/s each way${link.latencyMs ? `, ${link.latencyMs} ms one way` : ""}: achieved ${achieved.up.toFixed(1)} up, ${achieved.down.toFixed(1)} down (4 MiB each way)\n`);
  }
  const proxy = await startTcpProxy({ targetPort: target, listenPort: listen, link });
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
