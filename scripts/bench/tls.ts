// TLS costs: making a node's key and certificate (dsync cert create's work, without the
// process), and signing and verifying one peer request's proof of identity (what every request
// between nodes serving TLS adds), and a request over plain http, over https with --ca, and
// over https with a pinned fingerprint, on loopback. Run: bun scripts/bench/tls.ts
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createNodeCertificate } from "../../src/server/node-certificate.ts";
import { checkPeerProof, PEER_PROOF_HEADER, PeerProofSigner } from "../../src/wire/peer-proof.ts";

const MADE = 50;
const times: number[] = [];
for (let i = 0; i < MADE; i++) {
  const started = performance.now();
  await createNodeCertificate(["localhost", "127.0.0.1", "node.example"]);
  times.push(performance.now() - started);
}
const sorted = [...times].sort((a, b) => a - b);
console.log(`key + certificate: first ${times[0]!.toFixed(1)} ms (loads the code), median ${sorted[Math.floor(MADE / 2)]!.toFixed(2)} ms, p90 ${sorted[Math.floor(MADE * 0.9)]!.toFixed(2)} ms over ${MADE}`);

const made = await createNodeCertificate(["127.0.0.1"]);
const certificate = new X509Certificate(made.certPem);
const signer = new PeerProofSigner(new Uint8Array(certificate.raw), createPrivateKey(made.keyPem));
const PROOFS = 2000;
const url = "https://127.0.0.1:7701/v1/peer/objects/download";
let headers: Record<string, string> = {};
let started = performance.now();
const receiver = "sha256:" + "ab".repeat(32);
for (let i = 0; i < PROOFS; i++) headers = signer.headers("POST", url, receiver);
const signMicros = ((performance.now() - started) / PROOFS) * 1000;
started = performance.now();
for (let i = 0; i < PROOFS; i++) {
  const check = checkPeerProof(headers[PEER_PROOF_HEADER], certificate, { method: "POST", host: "127.0.0.1:7701", pathAndQuery: "/v1/peer/objects/download", receiverFingerprint: receiver }, Date.now());
  if (!check.ok) throw new Error(check.reason);
}
const verifyMicros = ((performance.now() - started) / PROOFS) * 1000;
console.log(`peer proof: sign ${signMicros.toFixed(0)} µs, verify ${verifyMicros.toFixed(0)} µs per request (${PROOFS} each)`);

// What a pin costs per request: Bun's fetch pools no connection whose options carry
// checkServerIdentity, so every pinned request makes its own handshake (and its own check).
const served = await createNodeCertificate(["127.0.0.1"]);
const tlsServer = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: served.certPem, key: served.keyPem }, fetch: () => new Response("ok") });
const plainServer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
const { TlsTrust } = await import("../../src/wire/tls-trust.ts");
const pinned = await new TlsTrust(`https://127.0.0.1:${tlsServer.port}`, { fingerprint: served.fingerprint }).fetchOptions();
const REQUESTS = 300;
for (const [name, url, init] of [
  ["plain http", `http://127.0.0.1:${plainServer.port}/`, {}],
  ["https, --ca (pooled)", `https://127.0.0.1:${tlsServer.port}/`, { tls: { ca: served.certPem } }],
  ["https, pinned", `https://127.0.0.1:${tlsServer.port}/`, pinned],
] as const) {
  const begun = performance.now();
  for (let i = 0; i < REQUESTS; i++) await (await fetch(url, init as RequestInit)).text();
  console.log(`${name}: ${((performance.now() - begun) / REQUESTS).toFixed(3)} ms per request (${REQUESTS} in a row, loopback)`);
}
tlsServer.stop(true);
plainServer.stop(true);
