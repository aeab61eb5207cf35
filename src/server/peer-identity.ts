// On a node that serves TLS and replicates over it, the /v1/peer routes answer only the nodes it
// was told about: a request must carry the caller's certificate and a proof that it holds the
// certificate's key (src/wire/peer-proof.ts), and that certificate must be one of the pinned
// peers' (--peers URL#sha256:..., --peers-file) or issued by --ca. The cluster token is checked
// after this, as on any node (peer-routes.ts). A missing or bad proof is 401; a good proof from
// a certificate this node does not replicate with is 403, naming its fingerprint, and is logged
// once per certificate, so a node left out of a cluster is seen in the log of the nodes it calls.
import type { MiddlewareHandler } from "hono";
import { X509Certificate } from "node:crypto";
import { fingerprintOfDer } from "../wire/tls-fingerprint.ts";
import { checkPeerProof, PEER_CERTIFICATE_HEADER, PEER_CERTIFICATE_HEADER_CHARS_MAX, PEER_PROOF_HEADER } from "../wire/peer-proof.ts";

export interface PeerIdentityPolicy {
  /** This node's own certificate's fingerprint: a proof must name it (peer-proof.ts), so no peer replays another's proof here. */
  own: string;
  /** The fingerprints of the peers this node replicates with. */
  fingerprints: ReadonlySet<string>;
  /** CA certificates whose leaves are taken too (one level: the CA signed the node's certificate). */
  ca?: readonly X509Certificate[];
}

/** Parsed certificates kept between requests (peers send the same one every time); at most this many. */
const CERTIFICATES_KEPT_MAX = 256;
/** Refused certificates logged, at most: a flood of made-up ones does not fill the log. */
const REFUSALS_LOGGED_MAX = 64;

function issuedBy(certificate: X509Certificate, authorities: readonly X509Certificate[], now: Date): boolean {
  if (now < new Date(certificate.validFrom) || now > new Date(certificate.validTo)) return false;
  return authorities.some((authority) => {
    try {
      return certificate.checkIssued(authority) && certificate.verify(authority.publicKey);
    } catch {
      return false;
    }
  });
}

export function requirePeerIdentity(policy: PeerIdentityPolicy, options: { nowMs: () => number; log: (line: string) => void }): MiddlewareHandler {
  const parsed = new Map<string, X509Certificate>();
  const refusalsLogged = new Set<string>();
  return async (c, next) => {
    const encoded = c.req.header(PEER_CERTIFICATE_HEADER);
    if (encoded === undefined) {
      return c.json({ error: `this node takes peer requests only from the nodes it pinned: the request carries no certificate (${PEER_CERTIFICATE_HEADER}); start the calling node with --tls-cert and --tls-key` }, 401);
    }
    if (encoded.length > PEER_CERTIFICATE_HEADER_CHARS_MAX || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
      return c.json({ error: `a malformed ${PEER_CERTIFICATE_HEADER} header` }, 401);
    }
    let certificate = parsed.get(encoded);
    if (!certificate) {
      try {
        certificate = new X509Certificate(Buffer.from(encoded, "base64"));
      } catch {
        return c.json({ error: `${PEER_CERTIFICATE_HEADER} is not a certificate` }, 401);
      }
      if (parsed.size >= CERTIFICATES_KEPT_MAX) parsed.clear();
      parsed.set(encoded, certificate);
    }
    const url = new URL(c.req.url);
    const proof = checkPeerProof(c.req.header(PEER_PROOF_HEADER), certificate, { method: c.req.method, host: url.host, pathAndQuery: url.pathname + url.search, receiverFingerprint: policy.own }, options.nowMs());
    if (!proof.ok) return c.json({ error: `the peer request's proof of identity failed: ${proof.reason}` }, 401);
    const fingerprint = fingerprintOfDer(certificate.raw);
    if (!policy.fingerprints.has(fingerprint) && !(policy.ca && issuedBy(certificate, policy.ca, new Date(options.nowMs())))) {
      if (!refusalsLogged.has(fingerprint) && refusalsLogged.size < REFUSALS_LOGGED_MAX) {
        refusalsLogged.add(fingerprint);
        options.log(`dsync: refused peer requests from ${fingerprint}: not a node this one replicates with (pin it in --peers or --peers-file to take them)`);
      }
      return c.json({ error: `this node does not replicate with the node whose certificate is ${fingerprint}: it is in neither --peers nor --peers-file` }, 403);
    }
    await next();
  };
}
