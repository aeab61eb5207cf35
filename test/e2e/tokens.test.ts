// Tokens with roles and folders on a real node process: dsync token create, list and revoke
// against the node and in its data folder (running and stopped), expiry, last use, and the
// rule that a folder-scoped token learns nothing of objects other folders hold.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idFromHex, idToHex, type ObjectId } from "../../src/core/id.ts";
import { systemRandom } from "../../src/node/clock.ts";
import { SqliteTokenStore } from "../../src/node/token-store.ts";
import { decodeDownloadReply, decodeIdList, encodeIdList } from "../../src/wire/formats.ts";
import { cleanupTempDirs, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

afterAll(cleanupTempDirs);

const ADMIN = "admin-token-for-token-tests";
const bin = (bytes: Uint8Array) => bytes as unknown as BodyInit;

/** `dsync token create ...` with the admin token; the token and its id. */
async function create(node: NodeProcess, args: string[]): Promise<{ token: string; id: string }> {
  const result = await runCli(["token", "create", "--remote", node.url, ...args, "--json"], { env: { DSYNC_TOKEN: ADMIN } });
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
  const created = result.json<{ token: string; id: string }>();
  expect(created.token).toMatch(/^dsync_[a-z2-7]{52}$/);
  return created;
}

function call(node: NodeProcess, token: string, method: string, path: string, body?: Uint8Array | object) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array) payload = bin(body);
  else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  return fetch(node.url + path, { method, headers, body: payload });
}

describe("dsync token on a running node", () => {
  test("create, use, list (never the token), revoke; a scoped token sees and pushes only its folder", async () => {
    const node = await startNode({ args: ["--token", ADMIN] });
    try {
      const text = await runCli(["token", "create", "--remote", node.url, "--role", "write", "--folder", "alpha", "--name", "laptop"], { env: { DSYNC_TOKEN: ADMIN } });
      expect(text.code).toBe(0);
      const [token, details] = text.stdout.trim().split("\n");
      expect(token).toMatch(/^dsync_[a-z2-7]{52}$/);
      expect(text.stderr).toContain("shown this once");
      const id = /^id ([0-9a-f]{16}), role write, alpha, expires never, name laptop$/.exec(details!)?.[1];
      expect(id).toBeDefined();

      const alpha = join(tempDir(), "alpha");
      writeTree(alpha, { "a.txt": "alpha's file\n" });
      expect((await runCli(["push", alpha, "--remote", node.url, "--folder", "alpha"], { env: { DSYNC_TOKEN: token } })).code).toBe(0);
      const beta = join(tempDir(), "beta");
      writeTree(beta, { "b.txt": "beta's file\n" });
      const refused = await runCli(["push", beta, "--remote", node.url, "--folder", "beta"], { env: { DSYNC_TOKEN: token } });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("beta");
      expect((await runCli(["push", beta, "--remote", node.url, "--folder", "beta"], { env: { DSYNC_TOKEN: ADMIN } })).code).toBe(0);
      const ls = await runCli(["ls", "--remote", node.url], { env: { DSYNC_TOKEN: token } });
      expect(ls.stdout.split("\n").filter(Boolean).map((line) => line.split("\t")[0])).toEqual(["alpha"]);

      const list = await runCli(["token", "list", "--remote", node.url], { env: { DSYNC_TOKEN: ADMIN } });
      expect(list.code).toBe(0);
      expect(list.stdout).not.toContain(token!);
      expect(list.stdout).toContain(`${id}\tlaptop\twrite\talpha\t`);
      const listed = (await runCli(["token", "list", "--remote", node.url, "--json"], { env: { DSYNC_TOKEN: ADMIN } })).json<{ tokens: { id: string; lastUsedMs: number | null }[] }>();
      // Last use is recorded (its first use at once, then at most once a minute).
      expect(listed.tokens.find((t) => t.id === id)!.lastUsedMs).toBeGreaterThan(Date.now() - 120_000);
      expect(JSON.stringify(listed)).not.toContain(token!);

      // A write token may not make tokens.
      const notAdmin = await runCli(["token", "list", "--remote", node.url], { env: { DSYNC_TOKEN: token } });
      expect(notAdmin.code).toBe(1);

      const revoke = await runCli(["token", "revoke", id!, "--remote", node.url], { env: { DSYNC_TOKEN: ADMIN } });
      expect(revoke.code).toBe(0);
      expect(revoke.stdout).toContain(`revoked ${id}`);
      expect((await call(node, token!, "GET", "/v1/folders")).status).toBe(401);
      const after = await runCli(["ls", "--remote", node.url], { env: { DSYNC_TOKEN: token } });
      expect(after.code).toBe(1);
      expect((await runCli(["token", "revoke", "0123456789abcdef", "--remote", node.url], { env: { DSYNC_TOKEN: ADMIN } })).code).toBe(1);
    } finally {
      await node.stop();
    }
  }, 60_000);

  test("--data works beside the running node (made and revoked there, counted at once); an expired token gets 401", async () => {
    const node = await startNode({ args: ["--token", ADMIN] });
    try {
      const made = await runCli(["token", "create", "--data", node.dataDir, "--role", "read", "--expires", "30d", "--json"]);
      expect(made.code).toBe(0);
      const { token, id, expiresMs } = made.json<{ token: string; id: string; expiresMs: number }>();
      expect(expiresMs).toBeGreaterThan(Date.now() + 29 * 86_400_000);
      expect((await call(node, token, "GET", "/v1/folders")).status).toBe(200);
      expect((await call(node, token, "POST", "/v1/gc", {})).status).toBe(403);
      expect((await runCli(["token", "revoke", id, "--data", node.dataDir])).code).toBe(0);
      expect((await call(node, token, "GET", "/v1/folders")).status).toBe(401);

      // Expiry is the node's clock against the stored time: a token that ran out a moment ago.
      const store = SqliteTokenStore.open(node.dataDir, systemRandom);
      const nowMs = Date.now();
      const expired = await store.create({ role: "admin", folders: [], name: "short", expiresMs: nowMs - 1000 }, nowMs - 60_000);
      const valid = await store.create({ role: "admin", folders: [], name: "long", expiresMs: nowMs + 3_600_000 }, nowMs);
      await store.close();
      expect((await call(node, expired.token, "GET", "/v1/status")).status).toBe(401);
      expect((await call(node, valid.token, "GET", "/v1/status")).status).toBe(200);

      for (const bad of ["30", "1y", "0d", "-1d", "30 d"]) {
        const result = await runCli(["token", "create", "--data", node.dataDir, "--role", "read", "--expires", bad]);
        expect({ bad, code: result.code }).toEqual({ bad, code: 2 });
      }
      expect((await runCli(["token", "create", "--data", node.dataDir, "--role", "owner"])).code).toBe(2);
      expect((await runCli(["token", "create", "--data", node.dataDir, "--role", "admin", "--folder", "x"])).code).toBe(2);
      expect((await runCli(["token", "create", "--data", node.dataDir, "--role", "read", "--folder", "../x"])).code).toBe(2);
    } finally {
      await node.stop();
    }
  }, 60_000);

  test("a stopped node's data folder: a token made there works once the node starts", async () => {
    const first = await startNode({ args: ["--token", ADMIN] });
    const dataDir = first.dataDir;
    await first.stop();
    const made = await runCli(["token", "create", "--data", dataDir, "--role", "read", "--folder", "docs", "--json"]);
    expect(made.code).toBe(0);
    const { token } = made.json<{ token: string }>();
    expect((await runCli(["token", "list", "--data", dataDir])).stdout).toContain("\tread\tdocs\t");
    expect((await runCli(["token", "list", "--data", join(tempDir(), "nothing-here")])).code).toBe(1);
    const node = await startNode({ dataDir, args: ["--token", ADMIN] });
    try {
      expect((await call(node, token, "GET", "/v1/folders")).status).toBe(200);
      expect((await call(node, token, "POST", "/v1/folders/docs/commit", { root: "0".repeat(64) })).status).toBe(403);
    } finally {
      await node.stop();
    }
  }, 60_000);
});

describe("no existence oracle", () => {
  test("a token for folder a is told a chunk only folder b holds is lacking, cannot download it nor commit b's tree, and can once it uploaded the bytes", async () => {
    const node = await startNode({ args: ["--token", ADMIN] });
    try {
      const secret = "only folder b holds these bytes\n";
      const b = join(tempDir(), "b");
      writeTree(b, { "secret.txt": secret });
      expect((await runCli(["push", b, "--remote", node.url, "--folder", "b"], { env: { DSYNC_TOKEN: ADMIN } })).code).toBe(0);
      const chunk = blake3(new TextEncoder().encode(secret));
      const bRoot = ((await (await call(node, ADMIN, "GET", "/v1/folders/b")).json()) as { root: string }).root;

      const { token } = await create(node, ["--role", "write", "--folder", "a"]);
      const lacking = async (who: string, id: ObjectId) =>
        decodeIdList(new Uint8Array(await (await call(node, who, "POST", "/v1/objects/missing", encodeIdList([id]))).arrayBuffer()), "missing").map(idToHex);
      expect(await lacking(ADMIN, chunk)).toEqual([]);
      expect(await lacking(token, chunk)).toEqual([idToHex(chunk)]);
      expect(await lacking(token, idFromHex(bRoot))).toEqual([bRoot]);
      const download = decodeDownloadReply(new Uint8Array(await (await call(node, token, "POST", "/v1/objects/download", encodeIdList([chunk]))).arrayBuffer()));
      expect({ objects: download.objects.length, missing: download.missing.map(idToHex) }).toEqual({ objects: 0, missing: [idToHex(chunk)] });
      expect((await call(node, token, "GET", `/v1/objects/${idToHex(chunk)}`)).status).toBe(404);
      // Naming b's tree in a commit to a is "not stored", and a stays as it was (it does not exist).
      const theft = await call(node, token, "POST", "/v1/folders/a/commit", { root: bRoot, parent: null });
      expect(theft.status).toBe(409);
      expect(((await theft.json()) as { missing: string[] }).missing).toEqual([bRoot]);
      expect((await call(node, ADMIN, "GET", "/v1/folders/a")).status).toBe(404);

      // The same bytes pushed to a by the token itself: uploaded (the answer said lacking), committed, readable.
      const a = join(tempDir(), "a");
      writeTree(a, { "copy.txt": secret });
      const push = await runCli(["push", a, "--remote", node.url, "--folder", "a"], { env: { DSYNC_TOKEN: token } });
      expect({ code: push.code, stderr: push.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
      expect(await lacking(token, chunk)).toEqual([]);
      const got = await call(node, token, "GET", `/v1/objects/${idToHex(chunk)}`);
      expect(got.status).toBe(200);
      expect(await got.text()).toBe(secret);
      // b's own tree stays out of reach.
      expect(await lacking(token, idFromHex(bRoot))).toEqual([bRoot]);
      const pull = await runCli(["pull", join(tempDir(), "a-again"), "--remote", node.url, "--folder", "a"], { env: { DSYNC_TOKEN: token } });
      expect(pull.code).toBe(0);
    } finally {
      await node.stop();
    }
  }, 60_000);
});
