// TlsTrust against real TLS listeners on 127.0.0.1: a pin is checked on every connection fetch
// opens, not only by the probe that anchored it, so a node that changes its certificate after
// the first request (or a listener that takes over its port) is refused, naming both fingerprints.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeCertificate } from "../../src/server/node-certificate.ts";
import { fingerprintOfPem, parseFingerprint } from "../../src/wire/tls-fingerprint.ts";
import { TlsTrust, TlsTrustError } from "../../src/wire/tls-trust.ts";

const servers: ReturnType<typeof Bun.serve>[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function openssl(dir: string, args: string[]): void {
  if (spawnSync(["sh", "-c", "command -v openssl"]).exitCode !== 0) throw new Error("this test makes certificates with openssl: install openssl (apt-get install openssl)");
  const result = spawnSync(["openssl", ...args], { cwd: dir });
  if (result.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr.toString()}`);
}

function serveTls(certPem: string, keyPem: string, port = 0, body = "ok") {
  const server = Bun.serve({ hostname: "127.0.0.1", port, tls: { cert: certPem, key: keyPem }, fetch: () => new Response(body) });
  servers.push(server);
  return server;
}

async function fetchWith(trust: TlsTrust, url: string): Promise<string> {
  const response = await fetch(url, { ...(await trust.fetchOptions()), keepalive: false } as RequestInit);
  return response.text();
}

test("fingerprints parse in the forms people paste, and nothing else", () => {
  const hex = "AB".repeat(32);
  expect(parseFingerprint(`sha256:${hex}`)).toBe(`sha256:${"ab".repeat(32)}`);
  expect(parseFingerprint(`sha256:${hex.match(/../g)!.join(":")}`)).toBe(`sha256:${"ab".repeat(32)}`);
  expect(parseFingerprint(`sha1:${hex}`)).toBeNull();
  expect(parseFingerprint(`sha256:${hex.slice(2)}`)).toBeNull();
  expect(parseFingerprint(`sha256:${hex}00`)).toBeNull();
  expect(parseFingerprint("")).toBeNull();
});

test("a pinned trust refuses, on a later connection, a certificate other than the pinned one", async () => {
  const first = await createNodeCertificate(["localhost", "127.0.0.1"]);
  const second = await createNodeCertificate(["localhost", "127.0.0.1"]);
  const server = serveTls(first.certPem, first.keyPem, 0, "first");
  const url = `https://127.0.0.1:${server.port}/`;
  const trust = new TlsTrust(url, { fingerprint: first.fingerprint });
  expect(await fetchWith(trust, url)).toBe("first");
  expect(trust.verifiedPin).toBe(first.fingerprint);

  // Another listener with another certificate takes the same port: the anchored options must not let it through.
  const port = server.port!;
  server.stop(true);
  serveTls(second.certPem, second.keyPem, port, "second");
  let failure: unknown;
  try {
    await fetchWith(trust, url);
  } catch (error) {
    failure = error;
  }
  expect(failure).toBeDefined();
  const explained = await trust.explain(failure);
  expect(explained).toBeInstanceOf(TlsTrustError);
  expect(explained!.message).toContain(`presented ${second.fingerprint}, expected ${first.fingerprint}`);
});

test("a pinned certificate that can issue others does not vouch for them: every connection compares the fingerprint itself", async () => {
  // A pinned self-signed CA certificate (openssl req -x509 makes CA:TRUE by default) and a leaf
  // it signed: the leaf's chain verifies through the pinned anchor, so only the fingerprint
  // comparison on the connection (checkServerIdentity) can refuse it.
  const dir = mkdtempSync(join(tmpdir(), "dsync-tls-"));
  dirs.push(dir);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl(dir, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pinned", "-addext", "subjectAltName=IP:127.0.0.1"]);
  openssl(dir, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=other"]);
  openssl(dir, ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.crt", "-days", "2", "-extfile", "san.ext"]);
  const ca = { cert: readFileSync(join(dir, "ca.crt"), "utf8"), key: readFileSync(join(dir, "ca.key"), "utf8") };
  const leaf = { cert: readFileSync(join(dir, "leaf.crt"), "utf8"), key: readFileSync(join(dir, "leaf.key"), "utf8") };
  const server = serveTls(ca.cert, ca.key, 0, "pinned");
  const url = `https://127.0.0.1:${server.port}/`;
  const pin = fingerprintOfPem(ca.cert);
  const trust = new TlsTrust(url, { fingerprint: pin });
  expect(await fetchWith(trust, url)).toBe("pinned");
  const port = server.port!;
  server.stop(true);
  serveTls(leaf.cert + ca.cert, leaf.key, port, "issued");
  let failure: unknown;
  try {
    await fetchWith(trust, url);
  } catch (error) {
    failure = error;
  }
  expect(failure).toBeDefined();
  expect((await trust.explain(failure))!.message).toContain(`presented ${fingerprintOfPem(leaf.cert)}, expected ${pin}`);
});

test("a pin that is not the presented certificate is refused before any request, naming both", async () => {
  const made = await createNodeCertificate(["127.0.0.1"]);
  const server = serveTls(made.certPem, made.keyPem);
  const wrong = `sha256:${"0".repeat(64)}`;
  const trust = new TlsTrust(`https://127.0.0.1:${server.port}`, { fingerprint: wrong });
  expect(trust.fetchOptions()).rejects.toThrow(`presented ${made.fingerprint}, expected ${wrong}`);
  expect(fingerprintOfPem(made.certPem)).toBe(made.fingerprint);
});

test("--ca checks the name: a certificate for another host is refused even from a trusted issuer", async () => {
  const made = await createNodeCertificate(["example.test"]);
  const server = serveTls(made.certPem, made.keyPem);
  const url = `https://127.0.0.1:${server.port}/`;
  const trust = new TlsTrust(url, { ca: { pem: made.certPem, name: "--ca test.pem" } });
  let failure: unknown;
  try {
    await fetchWith(trust, url);
  } catch (error) {
    failure = error;
  }
  expect(failure).toBeDefined();
  const explained = await trust.explain(failure);
  expect(explained!.message).toContain("does not vouch for");
  expect(explained!.message).toContain(made.fingerprint);
});

test("a fingerprint or --ca on a plain-http URL is refused", () => {
  expect(() => new TlsTrust("http://127.0.0.1:1", { fingerprint: `sha256:${"1".repeat(64)}` })).toThrow("is not an https:// URL");
});
