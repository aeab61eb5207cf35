// Starts a node's HTTP server on Bun.serve. The only place that listens on a socket.
import { LIMITS } from "../core/limits.ts";
import { ERROR_MESSAGE_CHARS_MAX, terminalLines, truncateText } from "../core/terminal-text.ts";
import type { DsyncNode } from "../node/node.ts";
import { createApp } from "./app.ts";
import { idleCollector } from "./idle-collect.ts";
import type { FolderMembership } from "../node/folder-membership.ts";
import type { TokenStore } from "../node/token-store.ts";
import { guardAgainstBrowsers } from "./browser-guard.ts";
import { createMetricsOnlyApp, NodeMetrics } from "./metrics.ts";
import type { PeerService } from "../replication/peer-service.ts";
import type { PeerTransport } from "../replication/transport.ts";
import type { RaftDriver } from "../consensus/raft-driver.ts";
import type { Replicator } from "../replication/replicator.ts";
import type { Repairer } from "../node/repair.ts";
import type { Scrubber } from "../node/scrub.ts";
import type { TlsIdentity } from "./node-certificate.ts";
import { requirePeerIdentity, type PeerIdentityPolicy } from "./peer-identity.ts";

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
  /** The metrics-only address's base URL, when there is one. */
  metricsUrl?: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  token?: string;
  version?: string;
  /** Credential for the peer routes (the assembly gives the same to the transport that calls peers). */
  clusterToken?: string;
  /** Accepted on GET /metrics only, besides the client token (docs/metrics.md). */
  metricsToken?: string;
  /** A second address serving GET /metrics only, without a token (the caller allows only loopback, or --insecure). */
  metricsListen?: ListenAddress;
  /** Tokens with roles and folders (besides `token`, the admin token) and the folder membership they are checked against. */
  tokens?: TokenStore;
  membership?: FolderMembership;
  /** Serve TLS with this certificate and key (both listeners); the assembly signs peer requests with the key. */
  tls?: TlsIdentity;
  /** With TLS peers: the only certificates whose peer requests this node takes (peer-identity.ts). */
  peerIdentities?: PeerIdentityPolicy;
}

/** Log lines carry peers' words (their errors, folder names): escaped like all terminal output. */
export const serverLog = (line: string): void => void process.stderr.write(terminalLines([truncateText(line, ERROR_MESSAGE_CHARS_MAX)]));

/**
 * What a serving node runs beside its routes: the replication with its peers and what it answers
 * them, the repair of quarantined objects from them, the background scrub. Made by the assembly
 * (src/assemble.ts, assembleServices); the server starts and stops them with itself.
 */
export interface NodeServices {
  node: DsyncNode;
  replicator?: Replicator;
  peerService?: PeerService;
  repairer?: Repairer;
  scrubber: Scrubber;
  /** The strong mode's Raft group (src/consensus): started with the server, stopped first (a leader hands over). */
  consensus?: RaftDriver;
  /** How this node calls its peers (absent without a cluster token): strong writes are handed to the leader through it. */
  transport?: PeerTransport;
}

export function startServer(services: NodeServices, address: ListenAddress, options: ServerOptions): RunningServer {
  const { node, replicator, peerService, repairer, scrubber, consensus, transport } = services;
  const log = serverLog;
  const metrics = new NodeMetrics({ node, version: options.version ?? "dev", replicator, repairer, scrubber, consensus });
  // The node's write buffers are let go whenever it goes quiet (idle-collect.ts), until it stops.
  const stopReleasing = idleCollector.onQuiet(() => node.releaseIdleMemory());
  const app = createApp(node, {
    metrics,
    metricsToken: options.metricsToken,
    token: options.token,
    version: options.version,
    clusterToken: options.clusterToken,
    peerService,
    replicator,
    repairer,
    scrubber,
    tokens: options.tokens,
    membership: options.membership,
    tlsFingerprint: options.tls?.fingerprint,
    peerIdentity: options.peerIdentities ? requirePeerIdentity(options.peerIdentities, { nowMs: () => Date.now(), log }) : undefined,
    consensus,
    transport,
  });
  // Without a token, nothing but the guard keeps a web page in a local browser out (browser-guard.ts).
  const fetchHandler = options.token ? app.fetch : guardAgainstBrowsers(app.fetch, { loopbackOnly: isLoopback(address.hostname) });
  const tls = options.tls ? { cert: options.tls.certPem, key: options.tls.keyPem } : undefined;
  const server = Bun.serve({
    hostname: address.hostname,
    port: address.port,
    fetch: fetchHandler,
    tls,
    // Slightly above the API's own limit, so the API answers 413 with a readable body.
    maxRequestBodySize: LIMITS.requestBodyBytesMax + 1024 * 1024,
    // A quiet connection is kept 120 s: the client waits as long for an answer that comes only
    // when the work is done (a commit, gc, verify: NODE_WORK_HOLD_MS in client/remote.ts).
    idleTimeout: 120,
  });
  const urlOf = (listen: ListenAddress, port: number | undefined) => `${tls ? "https" : "http"}://${listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname}:${port}`;
  let metricsServer: ReturnType<typeof Bun.serve> | undefined;
  if (options.metricsListen) {
    try {
      metricsServer = Bun.serve({ hostname: options.metricsListen.hostname, port: options.metricsListen.port, fetch: guardAgainstBrowsers(createMetricsOnlyApp(metrics).fetch, { loopbackOnly: isLoopback(options.metricsListen.hostname) }), maxRequestBodySize: 64 * 1024, tls });
    } catch (error) {
      void server.stop(true);
      throw new Error(`--metrics-listen ${options.metricsListen.hostname}:${options.metricsListen.port}: ${(error as Error).message}`);
    }
  }
  replicator?.start();
  void consensus?.start().catch((error: unknown) => log(`dsync: starting the Raft group failed: ${(error as Error).message}`));
  void repairer?.start().catch((error: unknown) => log(`dsync: starting repair failed: ${(error as Error).message}`));
  scrubber.start();
  return {
    url: urlOf(address, server.port),
    metricsUrl: metricsServer ? urlOf(options.metricsListen!, metricsServer.port) : undefined,
    stop: async () => {
      stopReleasing();
      // First, while the routes still answer: a leader hands leadership over (bounded), so the
      // others need not wait an election timeout.
      await consensus?.stop().catch((error: unknown) => log(`dsync: stopping the Raft group: ${(error as Error).message}`));
      await metricsServer?.stop(true);
      replicator?.stop();
      scrubber.stop();
      repairer?.stop();
      node.setRepairer(undefined);
      // Event streams never end by themselves; this ends them, so the graceful stop below is quick.
      node.events.close();
      // Let requests in flight finish (a push's commit must not be cut off), but not forever.
      const graceful = server.stop(false);
      const timeout = new Promise((resolve) => setTimeout(resolve, 5000));
      await Promise.race([graceful, timeout]);
      await server.stop(true);
      // A scrub step or position save still in flight lands before the caller closes the metadata (bounded).
      await scrubber.settled();
    },
  };
}
