// A peer request's proof of identity: it verifies for the request it was made for, with the
// certificate whose key signed it, within the time window, and for nothing else: not another
// route, method or host, and not another receiver even when the Host header is set to the
// original one (a peer replaying a proof it received to another node of the cluster).
import { expect, test } from "bun:test";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createNodeCertificate } from "../../src/server/node-certificate.ts";
import { checkPeerProof, PEER_PROOF_HEADER, PEER_PROOF_WINDOW_MS, PeerProofSigner } from "../../src/wire/peer-proof.ts";

const NOW = 1_800_000_000_000;

async function signerAndCertificate() {
  const made = await createNodeCertificate(["127.0.0.1"]);
  const certificate = new X509Certificate(made.certPem);
  return { signer: new PeerProofSigner(new Uint8Array(certificate.raw), createPrivateKey(made.keyPem), () => NOW), certificate };
}

test("a proof verifies for its request and no other", async () => {
  const { signer, certificate } = await signerAndCertificate();
  const receiver = `sha256:${"1".repeat(64)}`;
  const proof = signer.headers("POST", "https://127.0.0.1:7701/v1/peer/notify", receiver)[PEER_PROOF_HEADER];
  const request = { method: "POST", host: "127.0.0.1:7701", pathAndQuery: "/v1/peer/notify", receiverFingerprint: receiver };
  expect(checkPeerProof(proof, certificate, request, NOW)).toEqual({ ok: true });
  // Another route, another receiver, another method: refused.
  expect(checkPeerProof(proof, certificate, { ...request, pathAndQuery: "/v1/peer/objects/download" }, NOW).ok).toBe(false);
  expect(checkPeerProof(proof, certificate, { ...request, host: "127.0.0.1:7702" }, NOW).ok).toBe(false);
  expect(checkPeerProof(proof, certificate, { ...request, method: "GET" }, NOW).ok).toBe(false);
  // The same request, Host header and all, at a node with another certificate: refused.
  expect(checkPeerProof(proof, certificate, { ...request, receiverFingerprint: `sha256:${"2".repeat(64)}` }, NOW).ok).toBe(false);
  // Too old or too far ahead.
  expect(checkPeerProof(proof, certificate, request, NOW + PEER_PROOF_WINDOW_MS + 1).ok).toBe(false);
  expect(checkPeerProof(proof, certificate, request, NOW - PEER_PROOF_WINDOW_MS - 1).ok).toBe(false);
  // Another node's certificate does not verify it; a changed time does not either.
  const other = await signerAndCertificate();
  expect(checkPeerProof(proof, other.certificate, request, NOW).ok).toBe(false);
  const [version, , signature] = proof!.split(" ");
  expect(checkPeerProof(`${version} ${NOW + 1} ${signature}`, certificate, request, NOW).ok).toBe(false);
  // Missing and malformed headers.
  expect(checkPeerProof(undefined, certificate, request, NOW).ok).toBe(false);
  expect(checkPeerProof("v1 x y", certificate, request, NOW).ok).toBe(false);
  expect(checkPeerProof(proof!.replace(/^v2/, "v1"), certificate, request, NOW).ok).toBe(false);
  expect(checkPeerProof(`v1 ${NOW} ${"A".repeat(5000)}`, certificate, request, NOW).ok).toBe(false);
});
