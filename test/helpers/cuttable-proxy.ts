// A TCP proxy on 127.0.0.1 that a test can cut and heal, to partition real nodes: each node's
// peers point through one proxy per directed link, so cutting the proxies to and from a node
// isolates it while its clients still reach it directly.
//
// Cut, a proxy closes every connection through it and treats new ones the way a partition
// does: "blackhole" accepts and never answers (a request waits for its own timeout, as over a
// dead link), "refuse" closes them at once (as a stopped process would). Healed, it forwards
// again; connections held in the blackhole are closed, so no request from before the cut is
// delivered late.
import { createServer, connect, type Server, type Socket } from "node:net";

export type CutMode = "blackhole" | "refuse";

export interface CuttableProxy {
  readonly port: number;
  /** The proxy's base URL, for a node's --peers. */
  readonly url: string;
  cut(mode?: CutMode): void;
  heal(): void;
  isCut(): boolean;
  /** Connections accepted while forwarding (to see the link is in use). */
  forwarded(): number;
  stop(): Promise<void>;
}

export async function startCuttableProxy(targetPort: number): Promise<CuttableProxy> {
  let mode: CutMode | null = null;
  let forwardedCount = 0;
  // Every socket open on either side, so a cut or a stop closes them all.
  const open = new Set<Socket>();
  const held = new Set<Socket>();
  const track = (socket: Socket) => {
    open.add(socket);
    socket.on("close", () => {
      open.delete(socket);
      held.delete(socket);
    });
    // A reset on one side is the end of that connection, not the test's.
    socket.on("error", () => socket.destroy());
  };

  const server: Server = createServer((client) => {
    track(client);
    if (mode === "refuse") {
      client.destroy();
      return;
    }
    if (mode === "blackhole") {
      held.add(client);
      client.on("data", () => {});
      return;
    }
    forwardedCount++;
    const upstream = connect({ host: "127.0.0.1", port: targetPort });
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the proxy has no port");
  const port = address.port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    cut(cutMode: CutMode = "blackhole") {
      mode = cutMode;
      for (const socket of [...open]) socket.destroy();
    },
    heal() {
      mode = null;
      for (const socket of [...held]) socket.destroy();
    },
    isCut: () => mode !== null,
    forwarded: () => forwardedCount,
    async stop() {
      for (const socket of [...open]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Proxies for every directed link of a cluster: `link(from, to)` is the proxy node `from` reaches
 * node `to` through. `isolate(i)` cuts every link to and from node i; `healAll()` restores them.
 */
export interface ProxyMesh {
  link(from: number, to: number): CuttableProxy;
  /** The --peers value of node i: the proxies it reaches the others through. */
  peersOf(i: number): string[];
  isolate(i: number, mode?: CutMode): void;
  healAll(): void;
  stop(): Promise<void>;
}

export async function startProxyMesh(ports: number[]): Promise<ProxyMesh> {
  const links = new Map<string, CuttableProxy>();
  for (let from = 0; from < ports.length; from++) {
    for (let to = 0; to < ports.length; to++) if (from !== to) links.set(`${from}>${to}`, await startCuttableProxy(ports[to]));
  }
  const link = (from: number, to: number) => {
    const proxy = links.get(`${from}>${to}`);
    if (!proxy) throw new Error(`no link from node ${from} to node ${to}`);
    return proxy;
  };
  return {
    link,
    peersOf: (i) => ports.flatMap((_, j) => (j === i ? [] : [link(i, j).url])),
    isolate(i, mode) {
      for (let j = 0; j < ports.length; j++) {
        if (j === i) continue;
        link(i, j).cut(mode);
        link(j, i).cut(mode);
      }
    },
    healAll() {
      for (const proxy of links.values()) proxy.heal();
    },
    async stop() {
      await Promise.all([...links.values()].map((proxy) => proxy.stop()));
    },
  };
}
