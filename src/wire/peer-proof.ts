// A node proves to its peers which node it is: every peer request it makes over TLS carries its
// certificate and a signature, by the certificate's private key, of the request's method,
// host, path and time, and of the certificate of the node it calls. The receiving node takes the request only when that certificate is one
// it pinned (or its --ca issued) and the signature verifies (src/server/peer-identity.ts), so a
// machine holding the cluster token but not a pinned node's key is refused.
//
// This stands in for mutual TLS, which Bun.serve cannot report per request (a handler sees no
// client certificate). What it proves is the same: the caller holds the key of a certificate
// the receiver chose to trust. The request travels inside TLS to the pinned receiver, so nobody
// else sees a proof to replay it. The receiver itself sees it, and could replay it (with any
// body) to another node within PEER_PROOF_WINDOW_MS: the host it names is only the Host header,
// which the replayer sets as it likes. So a proof also names the fingerprint of the receiver's
// certificate (the pin, or what a --ca peer presented), and a node takes only proofs that name
// its own: one peer cannot pose as the caller to a node that trusts the caller but not it. The
// body is not signed: TLS keeps it intact.
import { sign, verify, type KeyObject, type X509Certificate } from "node:crypto";

export const PEER_CERTIFICATE_HEADER = "x-dsync-peer-certificate";
export const PEER_PROOF_HEADER = "x-dsync-peer-proof";

/** How far a proof's time may be from the receiver's clock (clock skew between nodes, and the request's time in flight). */
export const PEER_PROOF_WINDOW_MS = 5 * 60_000;
/** The largest certificate header read (base64 of a DER certificate; a node's is about 600 bytes). */
export const PEER_CERTIFICATE_HEADER_CHARS_MAX = 16 * 1024;

/** What is signed: the request as the receiver sees it, and the receiver's own certificate. */
export function peerProofText(method: string, host: string, pathAndQuery: string, receiverFingerprint: string, timeMs: number): string {
  return `dsync peer request v2\n${method.toUpperCase()}\n${host.toLowerCase()}\n${pathAndQuery}\n${receiverFingerprint}\n${timeMs}`;
}

/** Signs a node's peer requests with its certificate's key. */
export class PeerProofSigner {
  private readonly certificateBase64: string;

  constructor(certificateDer: Uint8Array, private readonly privateKey: KeyObject, private readonly nowMs: () => number = Date.now) {
    this.certificateBase64 = Buffer.from(certificateDer).toString("base64");
  }

  /** The two headers for a request to `url` (the full URL as fetch sends it), to the node whose certificate has `receiverFingerprint`. */
  headers(method: string, url: string, receiverFingerprint: string): Record<string, string> {
    const target = new URL(url);
    const timeMs = this.nowMs();
    const signature = sign("sha256", Buffer.from(peerProofText(method, target.host, target.pathname + target.search, receiverFingerprint, timeMs)), this.privateKey);
    return { [PEER_CERTIFICATE_HEADER]: this.certificateBase64, [PEER_PROOF_HEADER]: `v2 ${timeMs} ${signature.toString("base64")}` };
  }
}

export type ProofCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks the proof header against a certificate (already parsed from the other header) for a
 * request as the receiver saw it. Bounded: the header is a few hundred characters or refused.
 */
export function checkPeerProof(
  proofHeader: string | undefined,
  certificate: X509Certificate,
  request: { method: string; host: string; pathAndQuery: string; receiverFingerprint: string },
  nowMs: number,
): ProofCheck {
  if (proofHeader === undefined) return { ok: false, reason: `no ${PEER_PROOF_HEADER} header` };
  if (/^v1 /.test(proofHeader)) return { ok: false, reason: "a proof of the first form, which names no receiver: the calling node must run this version of dsync" };
  const match = /^v2 (\d{1,16}) ([A-Za-z0-9+/]{16,1024}={0,2})$/.exec(proofHeader);
  if (!match) return { ok: false, reason: `a malformed ${PEER_PROOF_HEADER} header` };
  const timeMs = Number(match[1]);
  if (Math.abs(nowMs - timeMs) > PEER_PROOF_WINDOW_MS) {
    return { ok: false, reason: `a proof ${Math.round((nowMs - timeMs) / 1000)} s away from this node's clock (at most ${PEER_PROOF_WINDOW_MS / 1000} s: are both clocks right?)` };
  }
  let good = false;
  try {
    good = verify("sha256", Buffer.from(peerProofText(request.method, request.host, request.pathAndQuery, request.receiverFingerprint, timeMs)), certificate.publicKey, Buffer.from(match[2]!, "base64"));
  } catch {
    good = false;
  }
  return good ? { ok: true } : { ok: false, reason: `a signature that does not verify with its certificate for a request to this node (${request.receiverFingerprint})` };
}
