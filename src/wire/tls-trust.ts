// Whom an https:// connection to a node trusts, and how a failure to trust is said. Used by the
// client (src/client/remote.ts) and by a node calling its peers (src/replication/http-transport.ts),
// the same way, as the `tls` and `redirect` options of every fetch:
//
//   - a pinned fingerprint: the node's certificate must be exactly the one pinned. Bun's fetch
//     calls `checkServerIdentity` only once a chain verified, so the pinned certificate itself
//     is the trust anchor (`ca`), read once by a probe connection and taken only if its
//     fingerprint is the pin; `checkServerIdentity` then compares the fingerprint again on every
//     connection fetch opens. The host name is not checked: the pin names the certificate.
//   - --ca FILE: the chain must end at one of those certificates, and the name must match.
//   - neither: the system roots, and the name must match (fetch's default).
//
// Redirects are never followed (`redirect: "manual"`): a node answers none, and a followed one
// would carry the request, its token included, to whatever address the answer names.
//
// This is the one file of src/wire that opens a connection: the probe, which reads the
// certificate a node presents (to anchor a pin, and to name it when a check fails).
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { connect, rootCertificates } from "node:tls";
import { fingerprintOfDer } from "./tls-fingerprint.ts";

/** How long the probe waits for a node's handshake. */
export const TLS_PROBE_TIMEOUT_MS = 10_000;
/** How long what a --ca peer presented is taken as its certificate, for the proofs sent to it. */
export const RECEIVER_PROBE_KEPT_MS = 60_000;

export interface TlsTrustOptions {
  /** The pinned fingerprint (`sha256:<hex>`, canonical: tls-fingerprint.ts). */
  fingerprint?: string;
  /** Certificates (PEM) trusted instead of the system roots, and where they came from ("--ca FILE"). */
  ca?: { pem: string; name: string };
}

/** A node did not prove the identity it had to: the message says what it presented and what was expected. */
export class TlsTrustError extends Error {
  override name = "TlsTrustError";
  constructor(message: string, readonly presented?: string) {
    super(message);
  }
}

/** The extra fetch options every request to a node carries. */
export interface TlsFetchOptions {
  tls?: { ca?: string | string[]; checkServerIdentity?: (host: string, certificate: { raw?: Uint8Array }) => Error | undefined };
  redirect: "manual";
}

/** What a node presented when the probe connected; `error` when it would not speak TLS at all. */
export type ProbeResult = { der: Uint8Array; chain: Uint8Array[] } | { error: string; code?: string };

/** How many certificates of a presented chain are kept beyond the node's own (a real chain has one to three). */
const CHAIN_CERTIFICATES_MAX = 8;

/** Connects, reads the certificate the node presents, and hangs up; never trusts or sends anything. */
export function probeCertificate(url: URL, timeoutMs = TLS_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    // Only what the certificate is matters here, so nothing is verified on this connection.
    const socket = connect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: false }, () => {
      const presented = socket.getPeerCertificate(true) as { raw?: Uint8Array; issuerCertificate?: unknown } | undefined;
      const raw = presented?.raw;
      if (!raw || raw.length === 0) return done({ error: "the node presented no certificate" });
      // The certificates the node sent above its own, which a pin on a CA-issued certificate needs to verify.
      const chain: Uint8Array[] = [];
      let above = presented?.issuerCertificate as typeof presented;
      while (above && above !== presented && above.raw && chain.length < CHAIN_CERTIFICATES_MAX) {
        const der = new Uint8Array(above.raw);
        if (chain.some((known) => Buffer.compare(known, der) === 0) || Buffer.compare(der, raw) === 0) break;
        chain.push(der);
        above = above.issuerCertificate as typeof presented;
      }
      done({ der: new Uint8Array(raw), chain });
    });
    socket.on("error", (error: NodeJS.ErrnoException) => done({ error: error.message, code: error.code }));
    const timer = setTimeout(() => done({ error: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
  });
}

function pemOf(der: Uint8Array): string {
  return `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
}

/** Codes fetch fails with when a certificate is not trusted (as opposed to a node not answering). */
const UNTRUSTED_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REJECTED",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

/**
 * The trust of one node's base URL. `fetchOptions()` is awaited before every request (it
 * probes once, for a pin); `explain(error)` turns a failed fetch into a TlsTrustError when TLS
 * was the reason, or returns undefined when it was not (the node is down, say).
 */
export class TlsTrust {
  readonly url: URL;
  private pinned: TlsFetchOptions | undefined;
  /** The fingerprint the node presented on the last probe, for messages. */
  presented: string | undefined;
  private probed: { fingerprint: string; atMs: number } | undefined;

  constructor(baseUrl: string, readonly options: TlsTrustOptions = {}, private readonly probeTimeoutMs = TLS_PROBE_TIMEOUT_MS) {
    this.url = new URL(baseUrl);
    if (this.url.protocol !== "https:" && (options.fingerprint !== undefined || options.ca !== undefined)) {
      throw new TlsTrustError(`${baseUrl} is not an https:// URL: a certificate fingerprint or --ca applies only to a node that serves TLS`);
    }
  }

  /** The pin, once the node presented that very certificate (and so once a request could pass). */
  get verifiedPin(): string | undefined {
    return this.pinned ? this.options.fingerprint : undefined;
  }

  private get origin(): string {
    return `${this.url.protocol}//${this.url.host}`;
  }

  private mismatch(presented: string): TlsTrustError {
    return new TlsTrustError(
      `the node at ${this.origin} presented ${presented}, expected ${this.options.fingerprint}: not the node that was pinned (if its certificate was replaced on purpose, pass the new one with --tls-fingerprint)`,
      presented,
    );
  }

  async fetchOptions(): Promise<TlsFetchOptions> {
    if (this.url.protocol !== "https:") return { redirect: "manual" };
    const pin = this.options.fingerprint;
    // A pin is the stronger statement: with one, --ca is not consulted.
    if (pin === undefined) return this.options.ca ? { tls: { ca: this.options.ca.pem }, redirect: "manual" } : { redirect: "manual" };
    if (this.pinned) return this.pinned;
    const probe = await probeCertificate(this.url, this.probeTimeoutMs);
    if ("error" in probe) throw this.unreachable(probe);
    const presented = fingerprintOfDer(probe.der);
    this.presented = presented;
    if (presented !== pin) throw this.mismatch(presented);
    const anchor = pemOf(probe.der);
    const chain = probe.chain.map(pemOf);
    const certificate = new X509Certificate(anchor);
    // A self-signed pinned certificate is its own anchor; one a CA issued verifies through the chain
    // the node sent, --ca, or the system roots.
    const roots = certificate.checkIssued(certificate) ? [] : [...rootCertificates];
    this.pinned = {
      tls: {
        // Only to let the chain verify, so that checkServerIdentity runs: the pin decides.
        ca: [anchor, ...chain, ...(this.options.ca ? [this.options.ca.pem] : []), ...roots],
        // Every connection, not just the probe's: the certificate must still be the pinned one.
        checkServerIdentity: (_host, peer) => {
          const seen = peer.raw && peer.raw.length > 0 ? fingerprintOfDer(new Uint8Array(peer.raw)) : "no certificate";
          return seen === pin ? undefined : this.mismatch(seen);
        },
      },
      redirect: "manual",
    };
    return this.pinned;
  }

  /**
   * The fingerprint of the certificate the node presents, which a peer proof names
   * (peer-proof.ts): the pin, or for a node --ca vouches for, what a probe saw, read again after
   * RECEIVER_PROBE_KEPT_MS so a certificate the node replaced is named within that time. Call
   * after fetchOptions (a pin is named only once it was seen).
   */
  async receiverFingerprint(): Promise<string> {
    if (this.options.fingerprint !== undefined) return this.options.fingerprint;
    if (this.probed && performance.now() - this.probed.atMs < RECEIVER_PROBE_KEPT_MS) return this.probed.fingerprint;
    const probe = await probeCertificate(this.url, this.probeTimeoutMs);
    if ("error" in probe) throw this.unreachable(probe);
    this.probed = { fingerprint: fingerprintOfDer(probe.der), atMs: performance.now() };
    this.presented = this.probed.fingerprint;
    return this.probed.fingerprint;
  }

  private unreachable(probe: { error: string; code?: string }): Error {
    if (/WRONG_VERSION_NUMBER|wrong version|packet length|EPROTO|handshake/i.test(`${probe.code ?? ""} ${probe.error}`)) return this.notTls();
    return new TlsTrustError(`cannot reach the dsync node at ${this.origin}: ${probe.error}`);
  }

  private notTls(): TlsTrustError {
    const plain = `http://${this.url.host}`;
    return new TlsTrustError(`the node at ${this.origin} does not speak TLS: it looks like a plain-http node (${plain}); use https:// only for a node started with --tls-cert`);
  }

  /** A TLS reason for a failed fetch, said with what the node presented; undefined when TLS was not why. */
  async explain(error: unknown): Promise<TlsTrustError | undefined> {
    if (error instanceof TlsTrustError) return error;
    const message = (error as Error)?.message ?? String(error);
    // fetch's error has a code; a caller's error built from it names the code in its message ("(ECONNRESET)", "(EPROTO: ...)").
    const code = (error as { code?: string })?.code ?? /\(([A-Z][A-Z0-9_]{3,})(?:[:)])/.exec(message)?.[1] ?? "";
    if (/presented sha256:[0-9a-f]{64}, expected/.test(message)) return new TlsTrustError(message);
    if (this.url.protocol === "http:") {
      // A TLS listener hangs up on a plain request; say so if a handshake works there.
      if (!/ECONNRESET|closed unexpectedly/.test(`${code} ${message}`)) return undefined;
      const probe = await probeCertificate(this.url, this.probeTimeoutMs);
      if ("error" in probe) return undefined;
      const presented = fingerprintOfDer(probe.der);
      return new TlsTrustError(
        `the node at ${this.origin} speaks TLS, not plain http: use https://${this.url.host} (it presented ${presented}; pin it with --tls-fingerprint ${presented} if that is the fingerprint the node printed at start)`,
        presented,
      );
    }
    if (code === "EPROTO" || /WRONG_VERSION_NUMBER|Does the server speak TLS/i.test(message)) return this.notTls();
    if (!UNTRUSTED_CODES.has(code)) return undefined;
    const probe = await probeCertificate(this.url, this.probeTimeoutMs);
    const presented = "der" in probe ? fingerprintOfDer(probe.der) : undefined;
    const shown = presented ?? "a certificate";
    if (this.options.fingerprint !== undefined && presented !== undefined && presented !== this.options.fingerprint) return this.mismatch(presented);
    if (this.options.fingerprint !== undefined && presented === this.options.fingerprint) {
      // The pinned certificate, issued by a CA whose certificate neither the node sent nor this client holds.
      return new TlsTrustError(
        `the node at ${this.origin} presented the pinned certificate ${presented}, but its chain cannot be checked (${code}): it was issued by a CA the node does not send; pass --ca FILE with that CA's certificate as well`,
        presented,
      );
    }
    if (this.options.ca && this.options.fingerprint === undefined) {
      return new TlsTrustError(
        `the node at ${this.origin} presented ${shown}, which ${this.options.ca.name} does not vouch for (${code}: ${message.split(". For more")[0]})` +
          (presented ? `; if that is the node's own fingerprint (dsync serve prints it), pass --tls-fingerprint ${presented} instead of --ca` : ""),
        presented,
      );
    }
    const why = code === "ERR_TLS_CERT_ALTNAME_INVALID" ? "a certificate that does not name this host" : code === "CERT_HAS_EXPIRED" ? "an expired certificate" : "a certificate no system root vouches for (self-signed?)";
    return new TlsTrustError(
      `the node at ${this.origin} presented ${why}: ${shown}. If that is the fingerprint the node printed at start, pass --tls-fingerprint ${presented ?? "sha256:..."} (or DSYNC_TLS_FINGERPRINT), or --ca FILE with the certificate that issued it`,
      presented,
    );
  }
}
