// dsync serve: runs a node until SIGINT or SIGTERM.
import { existsSync, rmSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { terminalLines } from "../src/core/terminal-text.ts";
import { UsageError } from "../src/client/sync-target.ts";
import { DsyncNode, nodeIdProblem } from "../src/node/node.ts";
import { assembleServices, openNode } from "../src/assemble.ts";
import { metadataLocationProblem } from "../src/node/metadata-location.ts";
import { redactedUrl } from "../src/node/postgres-metadata-store.ts";
import { isLoopback, parseListenAddress, startServer } from "../src/server/serve.ts";
import { parseCount } from "./errors.ts";
import { DSYNC_VERSION } from "./version.ts";
import { mergePeers, parsePeerList, readPeersFile, serveTls } from "./serve-tls.ts";
import { readTokenFile } from "./token-file.ts";
import { SqliteTokenStore } from "../src/node/token-store.ts";
import { systemRandom } from "../src/node/clock.ts";
import { openMembership } from "../src/server/object-visibility.ts";

export interface ServeFlags {
  data?: string;
  listen?: string;
  token?: string;
  tokenFile?: string;
  insecure?: boolean;
  keepVersions?: string;
  keepDays?: string;
  nodeId?: string;
  metadata?: string;
  peers?: string;
  clusterToken?: string;
  clusterTokenFile?: string;
  syncIntervalMs?: string;
  replicationStreaming?: string;
  scrubBytesPerSecond?: string;
  metricsToken?: string;
  metricsTokenFile?: string;
  metricsListen?: string;
  tlsCert?: string;
  tlsKey?: string;
  ca?: string;
  peersFile?: string;
}

/** Parses --peers: comma-separated http(s) URLs, each a node's base address (a pin after `#`: serve-tls.ts). */
export function parsePeers(text: string | undefined): string[] {
  return mergePeers([parsePeerList(text)]).map((peer) => peer.url);
}

/** The outermost directory of `path` (itself included) that does not exist yet, or null when it does. */
function firstMissingAncestor(path: string): string | null {
  let missing: string | null = null;
  for (let at = path; !existsSync(at); at = dirname(at)) {
    missing = at;
    if (dirname(at) === at) break;
  }
  return missing;
}

/** --NAME or --NAME-file (its first line: cli/token-file.ts), not both; undefined when neither. */
function tokenOption(value: string | undefined, file: string | undefined, name: string): string | undefined {
  if (file === undefined) return value;
  if (value !== undefined) throw new UsageError(`--${name} and --${name}-file: give one`);
  return readTokenFile(String(file), `--${name}-file`);
}

export async function serveCommand(flags: ServeFlags): Promise<number> {
  const dataDir = flags.data ?? "./dsync-data";
  let address;
  try {
    address = parseListenAddress(flags.listen ?? "127.0.0.1:7700");
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const token = tokenOption(flags.token, flags.tokenFile, "token") ?? (process.env.DSYNC_TOKEN || undefined);
  // The rule of the other tokens: a short one is guessed by trying (a refusal costs nothing), and
  // one with a space or a control character could never be sent in an Authorization header.
  if (token !== undefined && !/^[\x21-\x7e]{8,512}$/.test(token)) {
    throw new UsageError("--token (or DSYNC_TOKEN) must be 8 to 512 printable characters without spaces");
  }
  if (!token && !isLoopback(address.hostname) && !flags.insecure) {
    throw new UsageError(
      `refusing to listen on ${address.hostname} without a token: anyone who can reach it could read and change every folder. ` +
        "Set --token (or DSYNC_TOKEN), or pass --insecure if the network is trusted.",
    );
  }
  const peerSpecs = mergePeers([parsePeerList(flags.peers), flags.peersFile === undefined ? [] : readPeersFile(String(flags.peersFile))]);
  const peers = peerSpecs.map((peer) => peer.url);
  const clusterToken = tokenOption(flags.clusterToken, flags.clusterTokenFile, "cluster-token") ?? (process.env.DSYNC_CLUSTER_TOKEN || undefined);
  if (peers.length > 0 && !clusterToken) {
    throw new UsageError("--peers (or --peers-file) needs --cluster-token (or DSYNC_CLUSTER_TOKEN): nodes prove to each other that they belong to the cluster");
  }
  if (clusterToken !== undefined && !/^[\x21-\x7e]{8,512}$/.test(clusterToken)) {
    throw new UsageError("--cluster-token must be 8 to 512 printable characters without spaces");
  }
  if (clusterToken !== undefined && token !== undefined && clusterToken === token) {
    throw new UsageError("--cluster-token must differ from --token: a client must not be able to act as a node");
  }
  const metricsToken = tokenOption(flags.metricsToken, flags.metricsTokenFile, "metrics-token") ?? (process.env.DSYNC_METRICS_TOKEN || undefined);
  if (metricsToken !== undefined && !/^[\x21-\x7e]{8,512}$/.test(metricsToken)) {
    throw new UsageError("--metrics-token must be 8 to 512 printable characters without spaces");
  }
  if (metricsToken !== undefined && clusterToken !== undefined && metricsToken === clusterToken) {
    throw new UsageError("--metrics-token must differ from --cluster-token: a scraper must not be able to act as a node");
  }
  let metricsListen;
  if (flags.metricsListen !== undefined) {
    try {
      metricsListen = parseListenAddress(String(flags.metricsListen));
    } catch (error) {
      throw new UsageError((error as Error).message.replace("--listen", "--metrics-listen"));
    }
    if (!isLoopback(metricsListen.hostname) && !flags.insecure) {
      throw new UsageError(
        `refusing to serve metrics without a token on ${metricsListen.hostname}: --metrics-listen takes a loopback address ` +
          "(use --metrics-token for scrapes from elsewhere), or --insecure if the network is trusted.",
      );
    }
  }
  // The certificate, the key and the peers' pins are checked before anything is created or bound.
  const tls = serveTls(flags, peerSpecs);
  const syncIntervalMs = parseCount(flags.syncIntervalMs, "--sync-interval-ms") ?? 2000;
  if (syncIntervalMs < 50) throw new UsageError("--sync-interval-ms must be at least 50");
  const streaming = flags.replicationStreaming ?? "on";
  if (streaming !== "on" && streaming !== "off") throw new UsageError("--replication-streaming is on or off");
  const scrubBytesPerSecond = parseCount(flags.scrubBytesPerSecond, "--scrub-bytes-per-second");
  if (flags.nodeId !== undefined) {
    const problem = nodeIdProblem(String(flags.nodeId));
    if (problem) throw new UsageError(`--node-id: ${problem}`);
  }
  // SQLite in the data folder unless --metadata (or DSYNC_METADATA) names a postgres:// URL.
  const metadata = flags.metadata === undefined ? process.env.DSYNC_METADATA || undefined : String(flags.metadata);
  if (metadata !== undefined) {
    const problem = metadataLocationProblem(metadata);
    if (problem) throw new UsageError(`--metadata: ${problem}`);
  }
  const defaultKeepVersions = parseCount(flags.keepVersions, "--keep-versions") ?? null;
  const defaultKeepDays = parseCount(flags.keepDays, "--keep-days") ?? null;
  if (existsSync(dataDir) && !statSync(dataDir).isDirectory()) {
    throw new UsageError(`--data ${dataDir} is not a directory: name a directory for the node's data (it is created if missing)`);
  }
  // A serve that fails to start leaves no data folder behind: what this run created (the folder
  // and any missing parents) holds nothing but the empty databases it just made.
  const createdHere = firstMissingAncestor(resolve(dataDir));
  const removeCreated = () => {
    if (createdHere) rmSync(createdHere, { recursive: true, force: true });
  };
  let node: DsyncNode;
  try {
    node = await openNode({ dataDir, metadata, defaultKeepVersions, defaultKeepDays, nodeId: flags.nodeId === undefined ? undefined : String(flags.nodeId) });
  } catch (error) {
    removeCreated();
    throw new Error(`cannot use ${dataDir} as the data folder: ${(error as Error).message}`);
  }
  // Before anything else is said: what had to be repaired before the node could start.
  if (node.startupNotes.length > 0) process.stderr.write(terminalLines(node.startupNotes));
  // The tokens `dsync token create` makes (tokens.sqlite), and which objects each folder reaches,
  // for tokens limited to some folders (folder-objects.sqlite); both beside the metadata.
  const tokens = SqliteTokenStore.open(dataDir, systemRandom);
  const membership = openMembership(node, dataDir);
  const closeStores = async () => {
    membership.close();
    await tokens.close();
  };
  // Replication, repair from peers and the scrub, as the assembly makes them.
  let services;
  try {
    services = await assembleServices(node, { clusterToken, peers, syncIntervalMs, replicationStreaming: streaming === "on", scrubBytesPerSecond, peerTrust: tls.peerTrust, tls: tls.identity });
  } catch (error) {
    await closeStores();
    await node.close();
    removeCreated();
    throw new Error(`cannot start the node's replication and scrub: ${(error as Error).message}`);
  }
  let server;
  try {
    server = startServer(services, address, { token, version: DSYNC_VERSION, clusterToken, metricsToken, metricsListen, tokens, membership, tls: tls.identity, peerIdentities: tls.peerIdentities });
  } catch (error) {
    await closeStores();
    await node.close();
    removeCreated();
    throw new Error(
      `cannot listen on ${address.hostname}:${address.port}: ${(error as Error).message} (stop what uses it, or choose another address with --listen)`,
    );
  }
  const started = [`dsync node ${node.nodeId} listening on ${server.url} (data in ${dataDir})`];
  if (metadata !== undefined && metadata !== "sqlite") started.push(`dsync: metadata on ${redactedUrl(metadata)}`);
  if (peers.length > 0) started.push(`dsync: replicating with ${peers.join(", ")}`);
  if (server.metricsUrl) started.push(`dsync: metrics without a token on ${server.metricsUrl}/metrics`);
  // Clients pin this (--tls-fingerprint) and peers list it after the node's URL (--peers URL#sha256:...).
  if (tls.identity) started.push(`tls fingerprint ${tls.identity.fingerprint}`);
  process.stdout.write(terminalLines(started));
  if (tls.warnings.length > 0) process.stderr.write(terminalLines(tls.warnings));
  if (!tls.identity && token && !isLoopback(address.hostname)) {
    process.stderr.write(
      terminalLines([
        `dsync: warning: serving plain http on ${address.hostname}: the token, and every file, cross the network in clear; serve TLS with --tls-cert and --tls-key (dsync cert create makes them)`,
      ]),
    );
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  process.stdout.write(terminalLines(["dsync: shutting down"]));
  await server.stop();
  await node.close();
  await closeStores();
  return 0;
}
