// Starts a node's HTTP server on Bun.serve. The only place that listens on a socket.
import { LIMITS } from "../core/limits.ts";
import type { DsyncNode } from "../node/node.ts";
import { createApp } from "./app.ts";
import { HttpPeerTransport } from "../replication/http-transport.ts";
import { PeerService } from "../replication/peer-service.ts";
import { Replicator } from "../replication/replicator.ts";
import { systemTimers } from "../replication/transport.ts";

export interface ListenAddress {
  hostname: string;
  port: number;
}

/** Parses "HOST:PORT", "[::1]:PORT" or ":PORT". */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!match) throw new Error(`--listen takes HOST:PORT, got ${JSON.stringify(text)}`);
  const hostname = match[1] ?? (match[2] || "127.0.0.1");
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range`);
  return { hostname, port };
}

export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  token?: string;
  version?: string;
  /** Credential for the peer routes and for calling peers. */
  clusterToken?: string;
  /** Peer base URLs to replicate with. */
  peers?: string[];
  syncIntervalMs?: number;
}

export function startServer(node: DsyncNode, address: ListenAddress, options: ServerOptions): RunningServer {
  let replicator: Replicator | undefined;
  let peerService: PeerService | undefined;
  if (options.clusterToken) {
    replicator = new Replicator({
      node,
      peers: options.peers ?? [],
      transport: new HttpPeerTransport({ clusterToken: options.clusterToken }),
      timers: systemTimers,
      intervalMs: options.syncIntervalMs ?? 2000,
      log: (line) => console.error(line),
    });
    const running = replicator;
    peerService = new PeerService(node, (notice) => running.onNotice(notice));
  }
  const app = createApp(node, { token: options.token, version: options.version, clusterToken: options.clusterToken, peerService, replicator });
  const server = Bun.serve({
    hostname: address.hostname,
    port: address.port,
    fetch: app.fetch,
    // Slightly above the API's own limit, so the API answers 413 with a readable body.
    maxRequestBodySize: LIMITS.requestBodyBytesMax + 1024 * 1024,
    idleTimeout: 120,
  });
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  replicator?.start();
  return {
    url: `http://${host}:${server.port}`,
    stop: async () => {
      replicator?.stop();
      // Let requests in flight finish (a push's commit must not be cut off), but not forever.
      const graceful = server.stop(false);
      const timeout = new Promise((resolve) => setTimeout(resolve, 5000));
      await Promise.race([graceful, timeout]);
      await server.stop(true);
    },
  };
}
