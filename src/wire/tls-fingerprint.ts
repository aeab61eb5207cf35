// A node's TLS identity is the SHA-256 of its DER certificate, written `sha256:<64 hex>`: what
// `dsync cert create` and `dsync serve` print, what a client pins with --tls-fingerprint and a
// node pins in --peers. `openssl x509 -fingerprint -sha256` shows the same bytes with colons.
import { createHash, X509Certificate } from "node:crypto";

export const FINGERPRINT_PREFIX = "sha256:";

/** The fingerprint of a certificate's DER bytes. */
export function fingerprintOfDer(der: Uint8Array): string {
  return FINGERPRINT_PREFIX + createHash("sha256").update(der).digest("hex");
}

/** The fingerprint of the first certificate of a PEM text; throws when there is none. */
export function fingerprintOfPem(pem: string): string {
  return fingerprintOfDer(new X509Certificate(pem).raw);
}

/**
 * A fingerprint as typed: `sha256:` and 64 hex digits, colons allowed between pairs (as openssl
 * prints them), any case. Returns the canonical form, or null when it is not one.
 */
export function parseFingerprint(text: string): string | null {
  const match = /^sha256:((?:[0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2})$/.exec(text.trim());
  if (!match) return null;
  return FINGERPRINT_PREFIX + match[1]!.replaceAll(":", "").toLowerCase();
}

/** `parseFingerprint`, with a message naming where the text came from when it is not one. */
export function fingerprintOrThrow(text: string, where: string): string {
  const fingerprint = parseFingerprint(text);
  if (fingerprint === null) throw new TlsFingerprintSyntaxError(`${where}: ${JSON.stringify(text.slice(0, 100))} is not a certificate fingerprint (sha256: and 64 hex digits, as dsync cert create prints it)`);
  return fingerprint;
}

export class TlsFingerprintSyntaxError extends Error {
  override name = "TlsFingerprintSyntaxError";
}
