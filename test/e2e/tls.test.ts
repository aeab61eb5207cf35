// TLS end to end, on real processes: dsync cert create, serve over https, clients that verify
// (a pinned fingerprint, remembered after the first push; --ca; the system roots refusing a
// self-signed certificate), the wrong scheme either way, redirects not followed, and three
// nodes replicating over TLS with pinned peers while a fourth, holding the cluster token but a
// certificate none of them pinned, is refused.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupTempDirs, freePort, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const running: NodeProcess[] = [];
const CLUSTER_TOKEN = "tls-cluster-token-1";
const FINGERPRINT = /sha256:[0-9a-f]{64}/;

afterAll(async () => {
  for (const node of running) await node.stop().catch(() => {});
  cleanupTempDirs();
});

interface Cert {
  dir: string;
  crt: string;
  key: string;
  fingerprint: string;
}

async function makeCert(hosts?: string): Promise<Cert> {
  const dir = join(tempDir(), "tls");
  const result = await runCli(["cert", "create", "--out", dir, ...(hosts ? ["--host", hosts] : [])]);
  expect(result.code).toBe(0);
  const fingerprint = FINGERPRINT.exec(result.stdout)?.[0];
  if (!fingerprint) throw new Error(`dsync cert create printed no fingerprint: ${result.stdout}${result.stderr}`);
  return { dir, crt: join(dir, "node.crt"), key: join(dir, "node.key"), fingerprint };
}

async function startTlsNode(cert: Cert, args: string[] = [], listen?: string): Promise<NodeProcess> {
  const node = await startNode({ args: ["--tls-cert", cert.crt, "--tls-key", cert.key, ...args], listen });
  running.push(node);
  return node;
}

function openssl(args: string[]): string {
  const which = spawnSync(["sh", "-c", "command -v openssl"]);
  if (which.exitCode !== 0) throw new Error("this test compares with openssl x509 -fingerprint -sha256: install openssl (apt-get install openssl)");
  const result = spawnSync(["openssl", ...args]);
  if (result.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr.toString()}`);
  return result.stdout.toString();
}

/** GET a JSON route of a TLS node, trusting exactly its certificate (the test's own check, apart from dsync's). */
async function getJson(url: string, cert: Cert, token?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { tls: { ca: readFileSync(cert.crt, "utf8") }, headers: token ? { authorization: `Bearer ${token}` } : {} } as RequestInit);
  return { status: response.status, body: await response.json() };
}

test("dsync cert create writes node.key (0600) and node.crt, prints the fingerprint openssl and the served node report, and never overwrites without --force", async () => {
  const cert = await makeCert("localhost,127.0.0.1,nas.lan,::1");
  expect(statSync(cert.key).mode & 0o777).toBe(0o600);
  expect(readFileSync(cert.key, "utf8")).toStartWith("-----BEGIN PRIVATE KEY-----");
  const text = openssl(["x509", "-in", cert.crt, "-noout", "-fingerprint", "-sha256", "-ext", "subjectAltName,basicConstraints"]);
  const opensslFingerprint = /Fingerprint=([0-9A-F:]+)/.exec(text)![1]!.replaceAll(":", "").toLowerCase();
  expect(`sha256:${opensslFingerprint}`).toBe(cert.fingerprint);
  expect(text).toContain("DNS:localhost");
  expect(text).toContain("IP Address:127.0.0.1");
  expect(text).toContain("DNS:nas.lan");
  expect(text).toContain("IP Address:0:0:0:0:0:0:0:1");
  expect(text).toContain("CA:FALSE");

  // Again without --force: refused, the files untouched.
  const before = [readFileSync(cert.key, "utf8"), readFileSync(cert.crt, "utf8")];
  const again = await runCli(["cert", "create", "--out", cert.dir]);
  expect(again.code).toBe(1);
  expect(again.stderr).toContain("already exist");
  expect(again.stderr).toContain("--force");
  expect([readFileSync(cert.key, "utf8"), readFileSync(cert.crt, "utf8")]).toEqual(before);
  const forced = await runCli(["cert", "create", "--out", cert.dir, "--force", "--json"]);
  expect(forced.code).toBe(0);
  const made = forced.json();
  expect(made.fingerprint).toMatch(FINGERPRINT);
  expect(made.fingerprint).not.toBe(cert.fingerprint);
  expect(made.hosts).toContain("localhost");
  expect(readFileSync(cert.key, "utf8")).not.toBe(before[0]);
  expect(statSync(cert.key).mode & 0o777).toBe(0o600);

  // The node serving it says the same fingerprint at start and in /v1/health.
  const served = { ...cert, fingerprint: made.fingerprint };
  const node = await startTlsNode(served, ["--metrics-listen", "127.0.0.1:0"]);
  expect(node.url).toStartWith("https://");
  await Bun.sleep(100);
  expect(node.output()).toContain(`tls fingerprint ${made.fingerprint}`);
  const health = await getJson(`${node.url}/v1/health`, served);
  expect(health.body.tlsFingerprint).toBe(made.fingerprint);
  // The metrics-only address is served over TLS too, with the same certificate.
  const metricsUrl = /metrics without a token on (\S+)\/metrics/.exec(node.output())?.[1];
  expect(metricsUrl).toStartWith("https://");
  const metrics = await fetch(`${metricsUrl}/metrics`, { tls: { ca: readFileSync(served.crt, "utf8") } } as RequestInit);
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toContain("dsync_build_info");

  expect((await runCli(["cert", "create", "--out", join(tempDir(), "x"), "--host", "bad host!"])).code).toBe(2);
}, 60_000);

test("serve refuses a missing certificate, a key that is not the certificate's, and one of the pair alone, before listening", async () => {
  const a = await makeCert();
  const b = await makeCert();
  const dataDir = join(tempDir(), "never");
  const mismatched = await runCli(["serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--tls-cert", a.crt, "--tls-key", b.key]);
  expect(mismatched.code).toBe(1);
  expect(mismatched.stderr).toContain("is not the key of --tls-cert");
  expect(mismatched.stderr).toContain(a.fingerprint);
  const missing = await runCli(["serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--tls-cert", join(a.dir, "nope.crt"), "--tls-key", a.key]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain("no such file");
  const alone = await runCli(["serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--tls-cert", a.crt]);
  expect(alone.code).toBe(2);
  expect(alone.stderr).toContain("--tls-cert and --tls-key go together");
  const notPem = join(tempDir(), "not.crt");
  writeFileSync(notPem, "hello\n");
  const garbage = await runCli(["serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--tls-cert", notPem, "--tls-key", a.key]);
  expect(garbage.code).toBe(1);
  expect(garbage.stderr).toContain("is not a PEM certificate");
  expect(existsSync(dataDir)).toBe(false);
}, 60_000);

test("push and pull over https with a pinned fingerprint, remembered for the next pull; a wrong one, none, or the wrong scheme fail clearly and change nothing", async () => {
  const cert = await makeCert();
  const node = await startTlsNode(cert);
  const notes = join(tempDir(), "notes");
  writeTree(notes, { "todo.txt": "first\n", sub: { "b.txt": "bee\n" } });

  // A self-signed certificate without a pin: refused, with the fingerprint it presented and the flag to pass.
  const unpinned = await runCli(["push", notes, "--remote", node.url]);
  expect(unpinned.code).toBe(1);
  expect(unpinned.stderr).toContain(`presented a certificate no system root vouches for (self-signed?): ${cert.fingerprint}`);
  expect(unpinned.stderr).toContain(`--tls-fingerprint ${cert.fingerprint}`);
  expect(unpinned.stderr.trim().split("\n")).toHaveLength(1);

  // A wrong pin: both fingerprints named, nothing sent, nothing remembered.
  const wrong = `sha256:${"ab".repeat(32)}`;
  const mismatch = await runCli(["push", notes, "--remote", node.url, "--tls-fingerprint", wrong]);
  expect(mismatch.code).toBe(1);
  expect(mismatch.stderr).toContain(`the node at ${node.url} presented ${cert.fingerprint}, expected ${wrong}`);
  expect(existsSync(join(notes, ".dsync", "state.json"))).toBe(false);
  expect((await getJson(`${node.url}/v1/folders`, cert)).body.folders).toEqual([]);

  // A malformed pin is a usage error.
  expect((await runCli(["push", notes, "--remote", node.url, "--tls-fingerprint", "sha256:xyz"])).code).toBe(2);

  // The right pin: pushed, and remembered in the directory's state.
  const pushed = await runCli(["push", notes, "--remote", node.url, "--tls-fingerprint", cert.fingerprint, "--json"]);
  expect(pushed.code).toBe(0);
  const state = JSON.parse(readFileSync(join(notes, ".dsync", "state.json"), "utf8"));
  expect(state.tlsFingerprint).toBe(cert.fingerprint);
  expect(state.remote).toBe(node.url);

  // A second copy, pinned once by its first pull; then pulls and pushes without the flag.
  const copy = join(tempDir(), "copy");
  expect((await runCli(["pull", copy, "--remote", node.url, "--folder", "notes", "--tls-fingerprint", cert.fingerprint])).code).toBe(0);
  expect(readFileSync(join(copy, "todo.txt"), "utf8")).toBe("first\n");
  writeFileSync(join(notes, "todo.txt"), "second\n");
  const second = await runCli(["push", notes]);
  expect(second.stderr).toBe("");
  expect(second.code).toBe(0);
  const bare = await runCli(["pull", copy]);
  expect(bare.code).toBe(0);
  expect(readFileSync(join(copy, "todo.txt"), "utf8")).toBe("second\n");

  // A wrong pin given to a directory that remembers the right one: refused, the directory and its state untouched.
  const stateBefore = readFileSync(join(copy, ".dsync", "state.json"), "utf8");
  writeFileSync(join(notes, "todo.txt"), "third\n");
  expect((await runCli(["push", notes])).code).toBe(0);
  const refused = await runCli(["pull", copy, "--tls-fingerprint", wrong]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`presented ${cert.fingerprint}, expected ${wrong}`);
  expect(readFileSync(join(copy, "todo.txt"), "utf8")).toBe("second\n");
  expect(readFileSync(join(copy, ".dsync", "state.json"), "utf8")).toBe(stateBefore);

  // The environment variable works like the flag, for commands without a directory.
  const listed = await runCli(["ls", "--remote", node.url, "--json"], { env: { DSYNC_TLS_FINGERPRINT: cert.fingerprint } });
  expect(listed.code).toBe(0);

  // A plain-http client at the https node: one line, naming the scheme to use.
  const plain = await runCli(["ls", "--remote", node.url.replace("https://", "http://")]);
  expect(plain.code).toBe(1);
  expect(plain.stderr).toContain(`speaks TLS, not plain http: use ${node.url}`);
  expect(plain.stderr.trim().split("\n")).toHaveLength(1);

  // A pin on an http:// remote is a usage error, before anything is sent.
  expect((await runCli(["ls", "--remote", node.url.replace("https://", "http://"), "--tls-fingerprint", cert.fingerprint])).code).toBe(2);
}, 120_000);

test("an https client at a plain-http node fails in one line", async () => {
  const node = await startNode();
  running.push(node);
  const result = await runCli(["ls", "--remote", node.url.replace("http://", "https://")]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain("does not speak TLS");
  expect(result.stderr.trim().split("\n")).toHaveLength(1);
}, 30_000);

test("--ca FILE trusts the certificates it holds, for the names they carry; another CA is refused", async () => {
  const cert = await makeCert();
  const other = await makeCert();
  const node = await startTlsNode(cert);
  const trusted = await runCli(["ls", "--remote", node.url, "--ca", cert.crt, "--json"]);
  expect(trusted.code).toBe(0);
  const refused = await runCli(["ls", "--remote", node.url, "--ca", other.crt]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`presented ${cert.fingerprint}, which --ca ${other.crt} does not vouch for`);
  // The certificate names localhost and 127.0.0.1; by the name "localhost" it is trusted too.
  expect((await runCli(["ls", "--remote", node.url.replace("127.0.0.1", "localhost"), "--ca", cert.crt])).code).toBe(0);
}, 60_000);

test("a redirect to another origin is not followed: the request and its token stay where they were sent", async () => {
  const seenElsewhere: string[] = [];
  const elsewhere = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => (seenElsewhere.push(request.headers.get("authorization") ?? "none"), Response.json({ items: [], next: null })) });
  const redirector = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request) => new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${elsewhere.port}${new URL(request.url).pathname}` } }),
  });
  try {
    const result = await runCli(["ls", "--remote", `http://127.0.0.1:${redirector.port}`], { env: { DSYNC_TOKEN: "secret-token-1" } });
    expect(result.code).toBe(1);
    expect(seenElsewhere).toEqual([]);
  } finally {
    redirector.stop(true);
    elsewhere.stop(true);
  }
}, 30_000);

test("three nodes replicate over TLS with pinned peers; a fourth with the cluster token but an unpinned certificate is refused both ways", async () => {
  const certs = [await makeCert(), await makeCert(), await makeCert(), await makeCert()];
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const urls = ports.map((port) => `https://127.0.0.1:${port}`);
  const pinned = (i: number) => `${urls[i]}#${certs[i]!.fingerprint}`;
  const common = ["--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300"];
  // B's peers come from a file, with a comment: the same pins as --peers.
  const peersFile = join(tempDir(), "peers");
  writeFileSync(peersFile, `# the cluster\n${urls[0]} ${certs[0]!.fingerprint}\n${urls[2]} ${certs[2]!.fingerprint}  # C\n`);
  const [a, b, c] = [
    await startTlsNode(certs[0]!, ["--node-id", "node-a", "--peers", [pinned(1), pinned(2)].join(","), ...common], `127.0.0.1:${ports[0]}`),
    await startTlsNode(certs[1]!, ["--node-id", "node-b", "--peers-file", peersFile, ...common], `127.0.0.1:${ports[1]}`),
    await startTlsNode(certs[2]!, ["--node-id", "node-c", "--peers", [pinned(0), pinned(1)].join(","), ...common], `127.0.0.1:${ports[2]}`),
  ];
  // D knows A (and pins it rightly), holds the cluster token, but nobody pinned D.
  const d = await startTlsNode(certs[3]!, ["--node-id", "node-d", "--peers", pinned(0), ...common], `127.0.0.1:${ports[3]}`);

  const waited = await runCli(["status", "--wait", "--timeout-ms", "30000", "--remote", a.url, "--tls-fingerprint", certs[0]!.fingerprint]);
  expect(waited.stderr).toBe("");
  expect(waited.code).toBe(0);

  const dir = join(tempDir(), "team");
  writeTree(dir, { "plan.txt": "over tls\n" });
  expect((await runCli(["push", dir, "--remote", a.url, "--tls-fingerprint", certs[0]!.fingerprint])).code).toBe(0);
  const headOnA = (await getJson(`${a.url}/v1/folders/team`, certs[0]!)).body.head;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const onC = await getJson(`${c.url}/v1/folders/team`, certs[2]!);
    if (onC.status === 200 && onC.body.head === headOnA) break;
    if (Date.now() > deadline) throw new Error(`C never got A's push: ${JSON.stringify(onC)}\nC: ${c.output()}`);
    await Bun.sleep(100);
  }
  const fromC = join(tempDir(), "from-c");
  expect((await runCli(["pull", fromC, "--remote", c.url, "--folder", "team", "--tls-fingerprint", certs[2]!.fingerprint])).code).toBe(0);
  expect(readFileSync(join(fromC, "plan.txt"), "utf8")).toBe("over tls\n");

  // Replica against replica, each side pinned to its own node's certificate.
  const compared = await runCli(["diff", `${a.url}/team#${certs[0]!.fingerprint}`, `${c.url}/team#${certs[2]!.fingerprint}`]);
  expect(compared.stderr).toContain("requests");
  expect(compared.code).toBe(0);
  const misPinned = await runCli(["diff", `${a.url}/team#${certs[0]!.fingerprint}`, `${c.url}/team#${certs[0]!.fingerprint}`]);
  expect(misPinned.code).toBe(2);
  expect(misPinned.stderr).toContain(`presented ${certs[2]!.fingerprint}, expected ${certs[0]!.fingerprint}`);

  // D takes a push of its own, and calls A (listing, notices, fetches): A refuses every call.
  const rogue = join(tempDir(), "rogue");
  writeTree(rogue, { "evil.txt": "from d\n" });
  expect((await runCli(["push", rogue, "--remote", d.url, "--folder", "rogue", "--tls-fingerprint", certs[3]!.fingerprint])).code).toBe(0);
  const refusedDeadline = Date.now() + 20_000;
  let peerOfD: any;
  for (;;) {
    const status = await getJson(`${d.url}/v1/status`, certs[3]!);
    peerOfD = status.body.peers.find((peer: any) => peer.address === urls[0]);
    if (peerOfD?.lastError) break;
    if (Date.now() > refusedDeadline) throw new Error(`D never recorded A's refusal: ${JSON.stringify(status.body.peers)}`);
    await Bun.sleep(100);
  }
  expect(peerOfD.reachable).toBe(false);
  expect(peerOfD.lastError).toContain("403");
  expect(peerOfD.lastError).toContain(`does not replicate with the node whose certificate is ${certs[3]!.fingerprint}`);
  expect(a.output()).toContain(`refused peer requests from ${certs[3]!.fingerprint}`);
  // Nothing of D's reached the cluster; D got nothing of the cluster's.
  await Bun.sleep(1000);
  for (const [node, cert] of [[a, certs[0]!], [b, certs[1]!], [c, certs[2]!]] as const) {
    expect((await getJson(`${node.url}/v1/folders/rogue`, cert)).status).toBe(404);
  }
  expect((await getJson(`${d.url}/v1/folders/team`, certs[3]!)).status).toBe(404);

  // The cluster token alone, without a node's proof, opens no peer route of a TLS cluster.
  const bare = await fetch(`${a.url}/v1/peer/folders`, { headers: { authorization: `Bearer ${CLUSTER_TOKEN}` }, tls: { ca: readFileSync(certs[0]!.crt, "utf8") } } as RequestInit);
  expect(bare.status).toBe(401);
  expect(((await bare.json()) as { error: string }).error).toContain("carries no certificate");
}, 180_000);

/** A CA and two node certificates it issued (openssl), for 127.0.0.1 and localhost. */
function makeAuthority(): { ca: string; nodes: Cert[] } {
  const dir = tempDir("dsync-ca-");
  writeFileSync(join(dir, "node.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n");
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.crt"), "-days", "2", "-subj", "/CN=test authority"]);
  const nodes = ["n1", "n2"].map((name) => {
    const key = join(dir, `${name}.key`);
    const crt = join(dir, `${name}.crt`);
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", join(dir, `${name}.csr`), "-subj", `/CN=${name}`]);
    openssl(["x509", "-req", "-in", join(dir, `${name}.csr`), "-CA", join(dir, "ca.crt"), "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", join(dir, "node.ext")]);
    chmodSync(key, 0o600);
    const fingerprint = `sha256:${/Fingerprint=([0-9A-F:]+)/.exec(openssl(["x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]))![1]!.replaceAll(":", "").toLowerCase()}`;
    return { dir, crt, key, fingerprint };
  });
  return { ca: join(dir, "ca.crt"), nodes };
}

test("certificates a CA issued: clients trust them by --ca, nodes take as peers those --ca issued and refuse a self-signed one", async () => {
  const { ca, nodes: [n1, n2] } = makeAuthority() as { ca: string; nodes: [Cert, Cert] };
  const ports = [await freePort(), await freePort(), await freePort()];
  const urls = ports.map((port) => `https://127.0.0.1:${port}`);
  const common = ["--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300", "--ca", ca];
  const first = await startTlsNode(n1, ["--node-id", "ca-one", "--peers", urls[1]!, ...common], `127.0.0.1:${ports[0]}`);
  const second = await startTlsNode(n2, ["--node-id", "ca-two", "--peers", urls[0]!, ...common], `127.0.0.1:${ports[1]}`);
  // Its own, self-signed certificate: it pins the first node rightly (with the CA, which that
  // node does not send), but the first node takes peers the CA issued only.
  const outsiderCert = await makeCert();
  const outsider = await startTlsNode(outsiderCert, ["--node-id", "outsider", "--peers", `${urls[0]}#${n1.fingerprint}`, "--ca", ca, "--cluster-token", CLUSTER_TOKEN, "--sync-interval-ms", "300"], `127.0.0.1:${ports[2]}`);

  expect((await runCli(["status", "--wait", "--timeout-ms", "30000", "--remote", first.url, "--ca", ca])).code).toBe(0);
  const dir = join(tempDir(), "ca-folder");
  writeTree(dir, { "a.txt": "issued\n" });
  expect((await runCli(["push", dir, "--remote", first.url, "--ca", ca])).code).toBe(0);
  const copy = join(tempDir(), "ca-copy");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pulled = await runCli(["pull", copy, "--remote", second.url, "--folder", "ca-folder", "--ca", ca]);
    if (pulled.code === 0) break;
    if (Date.now() > deadline) throw new Error(`the second node never had the push: ${pulled.stderr}`);
    await Bun.sleep(200);
  }
  expect(readFileSync(join(copy, "a.txt"), "utf8")).toBe("issued\n");
  // A pin on a CA-issued certificate: with the CA, trusted; without it, said why.
  expect((await runCli(["ls", "--remote", first.url, "--tls-fingerprint", n1.fingerprint, "--ca", ca])).code).toBe(0);
  const noChain = await runCli(["ls", "--remote", first.url, "--tls-fingerprint", n1.fingerprint]);
  expect(noChain.code).toBe(1);
  expect(noChain.stderr).toContain(`presented the pinned certificate ${n1.fingerprint}, but its chain cannot be checked`);
  expect((await runCli(["ls", "--remote", first.url, "--tls-fingerprint", n2.fingerprint, "--ca", ca])).code).toBe(1);

  const refusedDeadline = Date.now() + 20_000;
  for (;;) {
    const status = await runCli(["status", "--remote", outsider.url, "--tls-fingerprint", outsiderCert.fingerprint, "--json"]);
    const peer = status.json().peers.find((p: any) => p.address === urls[0]);
    if (peer?.lastError) {
      expect(peer.lastError).toContain(`does not replicate with the node whose certificate is ${outsiderCert.fingerprint}`);
      break;
    }
    if (Date.now() > refusedDeadline) throw new Error(`the outsider was never refused: ${status.stdout}`);
    await Bun.sleep(200);
  }
}, 120_000);

test("a node serving TLS refuses plain-http and unpinned peers at start", async () => {
  const cert = await makeCert();
  const plain = await runCli(["serve", "--data", join(tempDir(), "d1"), "--listen", "127.0.0.1:0", "--tls-cert", cert.crt, "--tls-key", cert.key, "--peers", "http://127.0.0.1:9", "--cluster-token", CLUSTER_TOKEN]);
  expect(plain.code).toBe(2);
  expect(plain.stderr).toContain("replicates only over TLS");
  const unpinned = await runCli(["serve", "--data", join(tempDir(), "d2"), "--listen", "127.0.0.1:0", "--tls-cert", cert.crt, "--tls-key", cert.key, "--peers", "https://127.0.0.1:9", "--cluster-token", CLUSTER_TOKEN]);
  expect(unpinned.code).toBe(2);
  expect(unpinned.stderr).toContain("has no pinned fingerprint");
  const pinOnHttp = await runCli(["serve", "--data", join(tempDir(), "d3"), "--listen", "127.0.0.1:0", "--peers", `http://127.0.0.1:9#${cert.fingerprint}`, "--cluster-token", CLUSTER_TOKEN]);
  expect(pinOnHttp.code).toBe(2);
  expect(pinOnHttp.stderr).toContain("plain http, so it has no certificate to pin");
}, 60_000);

test("a private key others can read is served, with a warning to chmod it", async () => {
  const cert = await makeCert();
  chmodSync(cert.key, 0o644);
  const node = await startTlsNode(cert);
  await Bun.sleep(200);
  expect(node.output()).toContain(`--tls-key ${cert.key} can be read by others (mode 0644)`);
}, 30_000);

test("listening beyond loopback over plain http with a token warns that the token crosses the network in clear", async () => {
  // 0.0.0.0 on a free port: the node binds every interface for a moment and is stopped at once.
  const node = await startNode({ listen: `0.0.0.0:${await freePort()}`, env: { DSYNC_TOKEN: "a-token-for-the-warning" } });
  running.push(node);
  await Bun.sleep(200);
  expect(node.output()).toContain("cross the network in clear");
  await node.stop();
}, 30_000);
