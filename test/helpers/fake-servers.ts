// Servers that misbehave the way real networks and wrong addresses do, each a real listening
// socket on 127.0.0.1: one that accepts and never answers, one that stalls after its headers, an
// endless body, a plain web server's 404, a connection closed mid-body, slow-loris trickles, a
// node that is busy for its first answers, and a port whose connections are never accepted.
import { dlopen, FFIType, ptr } from "bun:ffi";
import net from "node:net";

export interface FakeServer {
  url: string;
  /** Requests (or connections, for the raw servers) seen so far. */
  requests(): number;
  /** Connections open now (raw servers only). */
  openConnections?(): number;
  stop(): void;
}

/**
 * A raw TCP server: `answer` gets each connection once its request head has arrived (never,
 * for a server that does not read). Timers it starts are cleared when the socket closes.
 */
async function rawServer(answer: (socket: net.Socket, timers: (timer: ReturnType<typeof setInterval>) => void) => void): Promise<FakeServer> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const timers: ReturnType<typeof setInterval>[] = [];
    socket.on("close", () => {
      sockets.delete(socket);
      for (const timer of timers) clearInterval(timer);
    });
    socket.on("error", () => {});
    let head = "";
    let answered = false;
    socket.on("data", (data) => {
      if (answered) return;
      head += data.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      answered = true;
      count++;
      answer(socket, (timer) => timers.push(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    openConnections: () => sockets.size,
    stop() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** What a dsync node puts on every answer, so the client takes the fake for one. */
const NODE_HEADERS = "Content-Type: application/json\r\nX-Dsync-Node: fake0000fake0000\r\n";

/** Accepts, reads the request, never answers. */
export function silentServer(): Promise<FakeServer> {
  return rawServer(() => {});
}

/** Answers with headers (a 100-byte body declared, within every route's bound) and two bytes, then nothing. */
export function stallAfterHeadersServer(): Promise<FakeServer> {
  return rawServer((socket) => socket.write(`HTTP/1.1 200 OK\r\n${NODE_HEADERS}Content-Length: 100\r\n\r\n{"`));
}

/** Answers 200 with a chunked body that never ends, as fast as the client reads it. */
export function endlessBodyServer(): Promise<FakeServer> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
  return rawServer((socket) => {
    socket.write(`HTTP/1.1 200 OK\r\n${NODE_HEADERS}Transfer-Encoding: chunked\r\n\r\n`);
    const pump = () => {
      while (!socket.destroyed && socket.write(framed));
    };
    socket.on("drain", pump);
    pump();
  });
}

/** Declares 160 bytes (within every route's bound), sends 10, closes the connection. */
export function closeMidBodyServer(): Promise<FakeServer> {
  return rawServer((socket) => {
    socket.write(`HTTP/1.1 200 OK\r\n${NODE_HEADERS}Content-Length: 160\r\n\r\n${"x".repeat(10)}`);
    setTimeout(() => socket.destroy(), 50);
  });
}

/** Sends its status line, then one header byte every `everyMs`, forever: the headers never end. */
export function slowLorisHeadersServer(everyMs = 500): Promise<FakeServer> {
  return rawServer((socket, timers) => {
    socket.write("HTTP/1.1 200 OK\r\nX-Slow: ");
    timers(setInterval(() => socket.write("x"), everyMs));
  });
}

/** Sends whole headers (160 bytes declared, within every route's bound), then one body byte every `everyMs`. */
export function slowLorisBodyServer(everyMs = 500): Promise<FakeServer> {
  return rawServer((socket, timers) => {
    socket.write(`HTTP/1.1 200 OK\r\n${NODE_HEADERS}Content-Length: 160\r\n\r\n`);
    timers(setInterval(() => socket.write(" "), everyMs));
  });
}

/** A plain web server: 404 with an empty body to everything. */
export function notFoundServer(): FakeServer {
  let count = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      count++;
      return new Response(null, { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests: () => count, stop: () => server.stop(true) };
}

/** Passes a request on to a real node, its answer back unchanged (compressed bodies stay compressed). */
async function forward(request: Request, nodeUrl: string): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  headers.delete("host");
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : new Uint8Array(await request.arrayBuffer());
  const answer = await fetch(nodeUrl + url.pathname + url.search, { method: request.method, headers, body, decompress: false } as RequestInit);
  const out = new Headers(answer.headers);
  out.delete("content-length");
  out.delete("transfer-encoding");
  return new Response(new Uint8Array(await answer.arrayBuffer()), { status: answer.status, headers: out });
}

/**
 * A real node behind a front that answers its first `busyAnswers` requests 503 (as a dsync node
 * does, with a JSON reason and Retry-After: 1), then passes everything on.
 */
export function busyThenNodeServer(nodeUrl: string, busyAnswers = 2): FakeServer {
  let count = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      count++;
      if (count <= busyAnswers) {
        return Response.json({ error: "the node is busy; try again later" }, { status: 503, headers: { "retry-after": "1", "x-dsync-node": "fake0000fake0000" } });
      }
      return forward(request, nodeUrl);
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests: () => count, stop: () => server.stop(true) };
}

/**
 * A real node behind a front whose download batches of chunks (POST /v1/objects/download whose
 * real answer passes 256 KiB; the tree and file nodes before them pass) never end.
 */
export function endlessDownloadServer(nodeUrl: string): FakeServer {
  let count = 0;
  const chunk = new Uint8Array(1024 * 1024);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      count++;
      if (new URL(request.url).pathname !== "/v1/objects/download") return forward(request, nodeUrl);
      const real = await forward(request, nodeUrl);
      const bytes = new Uint8Array(await real.arrayBuffer());
      if (bytes.length <= 256 * 1024) return new Response(bytes, { status: real.status, headers: real.headers });
      const endless = new ReadableStream<Uint8Array>({ pull: (controller) => controller.enqueue(chunk) });
      return new Response(endless, { headers: { "content-type": "application/msgpack", "x-dsync-node": "fake0000fake0000" } });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests: () => count, stop: () => server.stop(true) };
}

/**
 * A port that takes no connection: a socket listening with a backlog of 0 that never accepts,
 * whose one queue place is taken by a connection held open, so the kernel drops every further
 * SYN and a client's connect hangs, as against an address that drops packets. Made through libc,
 * since neither Bun.listen nor node:net can listen without accepting.
 */
export async function unacceptingPort(): Promise<{ url: string; stop(): void }> {
  const libc = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
  const fd = libc.symbols.socket(2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
  if (fd < 0) throw new Error("socket() failed: cannot make a port that accepts nothing");
  // struct sockaddr_in: family 2, port 0 (any), 127.0.0.1.
  const address = new Uint8Array(16);
  address[0] = 2;
  address.set([127, 0, 0, 1], 4);
  if (libc.symbols.bind(fd, ptr(address), 16) !== 0 || libc.symbols.listen(fd, 0) !== 0) throw new Error("bind() or listen() failed");
  const length = new Uint32Array([16]);
  libc.symbols.getsockname(fd, ptr(address), ptr(length));
  const port = (address[2]! << 8) | address[3]!;
  const filler = net.connect({ host: "127.0.0.1", port });
  filler.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    filler.once("connect", () => resolve());
    setTimeout(() => reject(new Error("the queue-filling connection did not connect")), 5000);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop() {
      filler.destroy();
      libc.symbols.close(fd);
      libc.close();
    },
  };
}
