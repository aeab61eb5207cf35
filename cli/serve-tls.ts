// dsync serve's TLS and peer identities: the node's own certificate (--tls-cert, --tls-key), the
// peers it replicates with and how each is verified (--peers URL#sha256:..., --peers-file, --ca),
// all checked before the node listens.
import { readFileSync, statSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { UsageError } from "../src/client/sync-target.ts";
import { tlsIdentityOf, type TlsIdentity } from "../src/server/node-certificate.ts";
import type { PeerIdentityPolicy } from "../src/server/peer-identity.ts";
import { parseFingerprint } from "../src/wire/tls-fingerprint.ts";
import { TlsTrust } from "../src/wire/tls-trust.ts";

/** A PEM file read at start is small; anything larger is not one (a mistyped path to a big file). */
const PEM_FILE_BYTES_MAX = 1024 * 1024;
/** A peers file lists a cluster, not a directory of the internet. */
const PEERS_FILE_BYTES_MAX = 1024 * 1024;
export const PEERS_MAX = 1000;

export interface PeerSpec {
  /** The base URL, as the replicator names the peer. */
  url: string;
  /** The pinned certificate fingerprint, when given. */
  fingerprint?: string;
}

export function readPemFile(path: string, flag: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (error) {
    throw new Error(`${flag} ${path}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
  if (size > PEM_FILE_BYTES_MAX) throw new Error(`${flag} ${path} is ${size} bytes: not a PEM file (at most ${PEM_FILE_BYTES_MAX})`);
  return readFileSync(path, "utf8");
}

/** Every certificate of a PEM file (a CA bundle may hold several). */
export function certificatesOfPem(pem: string, where: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${where} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`${where}: certificate ${index + 1} cannot be read: ${(error as Error).message}`);
    }
  });
}

/** One peer, `URL` or `URL#sha256:...` (or, in a file, `URL sha256:...`). */
function parsePeerSpec(text: string, fingerprintText: string | undefined, where: string): PeerSpec {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${where}: ${JSON.stringify(text)} is not a URL (use https://HOST:PORT#sha256:..., or http://HOST:PORT)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`${where}: ${text} must be an http:// or https:// URL`);
  let pinText = fingerprintText;
  if (url.hash) {
    if (pinText !== undefined) throw new UsageError(`${where}: ${text} names a fingerprint twice`);
    pinText = decodeURIComponent(url.hash.slice(1));
  }
  if (url.search || url.username || url.password) throw new UsageError(`${where}: ${text} must be a plain base URL`);
  const base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
  if (pinText === undefined) return { url: base };
  const fingerprint = parseFingerprint(pinText);
  if (fingerprint === null) throw new UsageError(`${where}: ${JSON.stringify(pinText)} after ${base} is not a certificate fingerprint (sha256: and 64 hex digits, as dsync cert create prints it)`);
  if (url.protocol !== "https:") throw new UsageError(`${where}: ${base} is plain http, so it has no certificate to pin: use https:// for a node started with --tls-cert`);
  return { url: base, fingerprint };
}

/** --peers: comma-separated URLs, each optionally `#sha256:...`. */
export function parsePeerList(text: string | undefined): PeerSpec[] {
  if (text === undefined || String(text).trim() === "") return [];
  return String(text)
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => parsePeerSpec(part, undefined, "--peers"));
}

/** --peers-file: one `URL [sha256:...]` a line; `#` starts a comment (at a line's start or after a space). */
export function parsePeersFile(text: string, path: string): PeerSpec[] {
  const peers: PeerSpec[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (line === "") return;
    const words = line.split(/\s+/);
    if (words.length > 2) throw new UsageError(`--peers-file ${path} line ${index + 1}: expected URL [sha256:...], got ${words.length} words`);
    peers.push(parsePeerSpec(words[0]!, words[1], `--peers-file ${path} line ${index + 1}`));
  });
  return peers;
}

export function readPeersFile(path: string): PeerSpec[] {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (error) {
    throw new UsageError(`--peers-file ${path}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
  if (size > PEERS_FILE_BYTES_MAX) throw new UsageError(`--peers-file ${path} is ${size} bytes: at most ${PEERS_FILE_BYTES_MAX}`);
  return parsePeersFile(readFileSync(path, "utf8"), path);
}

/** The peers of both flags, one entry per URL; the same URL twice with two pins is refused. */
export function mergePeers(lists: PeerSpec[][]): PeerSpec[] {
  const byUrl = new Map<string, PeerSpec>();
  for (const spec of lists.flat()) {
    const known = byUrl.get(spec.url);
    if (known && known.fingerprint !== undefined && spec.fingerprint !== undefined && known.fingerprint !== spec.fingerprint) {
      throw new UsageError(`peer ${spec.url} is pinned to two fingerprints (${known.fingerprint} and ${spec.fingerprint})`);
    }
    byUrl.set(spec.url, { url: spec.url, fingerprint: known?.fingerprint ?? spec.fingerprint });
  }
  if (byUrl.size > PEERS_MAX) throw new UsageError(`at most ${PEERS_MAX} peers, got ${byUrl.size}`);
  return [...byUrl.values()];
}

export interface ServeTls {
  identity?: TlsIdentity;
  /** Said at start, not fatal: a private key others can read. */
  warnings: string[];
  peerTrust: Map<string, TlsTrust>;
  peerIdentities?: PeerIdentityPolicy;
}

/**
 * The node's certificate, and how its peers are verified. A node serving TLS replicates only
 * over TLS, and only with peers it can verify (a pin or --ca): it takes peer requests from
 * exactly those, so an unverifiable peer could never replicate with it anyway.
 */
export function serveTls(flags: { tlsCert?: string; tlsKey?: string; ca?: string }, peers: readonly PeerSpec[]): ServeTls {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: the certificate and its private key (dsync cert create writes both)");
  }
  let identity: TlsIdentity | undefined;
  const warnings: string[] = [];
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
    const cert = String(flags.tlsCert);
    const key = String(flags.tlsKey);
    identity = tlsIdentityOf(readPemFile(cert, "--tls-cert"), readPemFile(key, "--tls-key"), { cert, key });
    const mode = statSync(key).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      warnings.push(`dsync: warning: --tls-key ${key} can be read by others (mode ${mode.toString(8).padStart(4, "0")}): whoever reads it can pose as this node; chmod 600 it`);
    }
  }
  let ca: { pem: string; name: string; certificates: X509Certificate[] } | undefined;
  if (flags.ca !== undefined) {
    const path = String(flags.ca);
    const pem = readPemFile(path, "--ca");
    ca = { pem, name: `--ca ${path}`, certificates: certificatesOfPem(pem, `--ca ${path}`) };
  }
  const peerTrust = new Map<string, TlsTrust>();
  for (const peer of peers) {
    if (identity && !peer.url.startsWith("https:")) {
      throw new UsageError(`peer ${peer.url} is plain http: a node serving TLS replicates only over TLS (https://HOST:PORT#sha256:... of a node started with --tls-cert)`);
    }
    if (identity && peer.fingerprint === undefined && !ca) {
      throw new UsageError(
        `peer ${peer.url} has no pinned fingerprint: a node serving TLS takes peer requests only from peers it can verify; write it as ${peer.url}#sha256:... (the fingerprint that node prints at start), or give --ca FILE`,
      );
    }
    // A plain-http peer gets a trust too: it follows no redirect, and says so when that address speaks TLS.
    const https = peer.url.startsWith("https:");
    peerTrust.set(peer.url, new TlsTrust(peer.url, https ? { fingerprint: peer.fingerprint, ca } : {}));
  }
  const peerIdentities = identity
    ? { own: identity.fingerprint, fingerprints: new Set(peers.flatMap((peer) => (peer.fingerprint ? [peer.fingerprint] : []))), ca: ca?.certificates }
    : undefined;
  return { identity, warnings, peerTrust, peerIdentities };
}
