// Whom the https:// nodes this process talks to must prove to be, chosen once for the whole
// process like the timeout (request-settings.ts): every RemoteNode made anywhere (push, pull,
// diff, status, ...) gets its TlsTrust here. In order:
//
//   1. --tls-fingerprint, else DSYNC_TLS_FINGERPRINT: the certificate must be that one;
//   2. the fingerprint a synced directory remembers for its remote (DIR/.dsync/state.json,
//      `tlsFingerprint`), noted when the remote is resolved from that state (sync-target.ts);
//   3. --ca FILE: certificates it issued, for the host named;
//   4. the system roots.
//
// A pin is remembered by writeSyncState (local-state.ts) once a request verified it: after the
// first push or pull that named it, the directory needs the flag no more.
import { readFileSync, statSync } from "node:fs";
import { TlsFingerprintSyntaxError, fingerprintOrThrow } from "../wire/tls-fingerprint.ts";
import { TlsTrust, TlsTrustError } from "../wire/tls-trust.ts";
import { UsageError } from "./sync-target.ts";

/** A CA file is a few certificates; larger is a mistyped path. */
const CA_FILE_BYTES_MAX = 1024 * 1024;

const chosen: { fingerprint?: string; fingerprintSource?: string; ca?: { pem: string; name: string } } = {};
/** Pins read from synced directories, by remote base URL. */
const remembered = new Map<string, string>();
/** One trust per base URL, so a pin is anchored (probed) once per process. */
const trusts = new Map<string, TlsTrust>();

function baseOf(url: string): string {
  return url.replace(/\/+$/, "");
}

/** --tls-fingerprint and --ca, as the command line gave them (checked here: a usage error before anything is sent). */
export function chooseTls(options: { fingerprint?: string; caFile?: string }): void {
  try {
    if (options.fingerprint !== undefined) {
      chosen.fingerprint = fingerprintOrThrow(options.fingerprint, "--tls-fingerprint");
      chosen.fingerprintSource = "--tls-fingerprint";
    } else if (process.env.DSYNC_TLS_FINGERPRINT) {
      chosen.fingerprint = fingerprintOrThrow(process.env.DSYNC_TLS_FINGERPRINT, "DSYNC_TLS_FINGERPRINT");
      chosen.fingerprintSource = "DSYNC_TLS_FINGERPRINT";
    }
  } catch (error) {
    if (error instanceof TlsFingerprintSyntaxError) throw new UsageError(error.message);
    throw error;
  }
  if (options.caFile !== undefined) {
    const path = options.caFile;
    let size: number;
    try {
      size = statSync(path).size;
    } catch (error) {
      throw new UsageError(`--ca ${path}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
    }
    if (size > CA_FILE_BYTES_MAX) throw new UsageError(`--ca ${path} is ${size} bytes: not a PEM file of certificates (at most ${CA_FILE_BYTES_MAX})`);
    const pem = readFileSync(path, "utf8");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--ca ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    chosen.ca = { pem, name: `--ca ${path}` };
  }
  trusts.clear();
}

/** A fingerprint a synced directory remembers for `remote` (sync-target.ts calls this when it resolves the remote from the state). */
export function noteRememberedPin(remote: string, fingerprint: string | undefined): void {
  if (fingerprint !== undefined) remembered.set(baseOf(remote), fingerprint);
}

/** The trust every RemoteNode to `baseUrl` uses (remote.ts). A pin on a plain-http URL is a usage error. */
export function tlsTrustFor(baseUrl: string): TlsTrust {
  const base = baseOf(baseUrl);
  const known = trusts.get(base);
  if (known) return known;
  const https = base.startsWith("https:");
  const fingerprint = chosen.fingerprint ?? remembered.get(base);
  if (!https && chosen.fingerprint !== undefined) {
    throw new UsageError(`${chosen.fingerprintSource} pins a TLS certificate, but ${base} is plain http: use the node's https:// URL`);
  }
  let trust: TlsTrust;
  try {
    trust = new TlsTrust(base, https ? { fingerprint, ca: chosen.ca } : {});
  } catch (error) {
    if (error instanceof TlsTrustError) throw new UsageError(error.message);
    throw error;
  }
  trusts.set(base, trust);
  return trust;
}

/**
 * The fingerprint to remember for `remote` in its directory's state: the pin this process
 * verified against it (a request succeeded through it), else the one already remembered.
 */
export function pinToRemember(remote: string): string | undefined {
  const base = baseOf(remote);
  const trust = trusts.get(base);
  if (trust?.verifiedPin) return trust.verifiedPin;
  return remembered.get(base);
}
