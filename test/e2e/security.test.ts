// Authentication, input validation and integrity at the API, against a real node.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { encodeCanonical } from "../../src/core/encoding.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { encodeObject, type TreeEntry } from "../../src/core/objects.ts";
import { encodeIdList, encodeObjectBatch, decodeIdList } from "../../src/wire/formats.ts";
import { runCli, sharedNode, tempDir } from "../helpers/processes.ts";
import { writeTree } from "../helpers/trees.ts";

const TOKEN = "s3cret-token-for-tests";
const node = sharedNode({ args: ["--token", TOKEN] });
const auth = { authorization: `Bearer ${TOKEN}` };
/** Binary request bodies (the DOM typings are narrower than what fetch accepts). */
const bin = (bytes: Uint8Array) => bytes as unknown as BodyInit;

describe("authentication", () => {
  test("health needs no token; every other route needs the right one", async () => {
    expect((await fetch(`${node().url}/v1/health`)).status).toBe(200);
    const routes: [string, string][] = [
      ["GET", "/v1/folders"],
      ["POST", "/v1/objects/missing"],
      ["POST", "/v1/objects/upload"],
      ["POST", "/v1/objects/download"],
      ["GET", `/v1/objects/${"0".repeat(64)}`],
      ["PUT", `/v1/objects/${"0".repeat(64)}`],
      ["POST", "/v1/folders/x/commit"],
      ["GET", "/v1/folders/x/versions"],
      ["POST", "/v1/gc"],
      ["POST", "/v1/verify"],
    ];
    const badHeaders: (Record<string, string> | undefined)[] = [
      undefined,
      { authorization: "Bearer wrong" },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: "Bearer" },
      { authorization: `Basic ${btoa(`user:${TOKEN}`)}` },
      { authorization: TOKEN },
      { authorization: `bearer  ${TOKEN}` },
    ];
    for (const [method, path] of routes) {
      for (const headers of badHeaders) {
        const response = await fetch(node().url + path, { method, headers });
        expect({ method, path, headers, status: response.status }).toEqual({ method, path, headers, status: 401 });
      }
    }
    expect((await fetch(`${node().url}/v1/folders`, { headers: auth })).status).toBe(200);
  });

  test("the CLI uses DSYNC_TOKEN and says clearly when it is wrong", async () => {
    const dir = join(tempDir(), "authed");
    writeTree(dir, { "a.txt": "a\n" });
    const ok = await runCli(["push", dir, "--remote", node().url], { env: { DSYNC_TOKEN: TOKEN } });
    expect(ok.code).toBe(0);
    const wrong = await runCli(["push", dir, "--remote", node().url], { env: { DSYNC_TOKEN: "nope" } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("token");
    const none = await runCli(["ls", "--remote", node().url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("DSYNC_TOKEN");
  });

  test("a node refuses to listen beyond loopback without a token unless --insecure", async () => {
    const refused = await runCli(["serve", "--data", join(tempDir(), "d"), "--listen", "0.0.0.0:0"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("without a token");
  });
});

describe("integrity and bad input", () => {
  test("an upload whose bytes do not match its id is rejected and nothing is stored", async () => {
    const good = new TextEncoder().encode("good bytes");
    const goodId = blake3(good);
    const liar = { id: goodId, bytes: new TextEncoder().encode("evil bytes") };
    const other = new TextEncoder().encode("innocent bystander in the same batch");
    const batch = encodeObjectBatch([{ id: blake3(other), bytes: other }, liar]);
    const response = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(batch), headers: { ...auth, "content-type": "application/msgpack" } });
    expect(response.status).toBe(422);
    const missing = await fetch(`${node().url}/v1/objects/missing`, { method: "POST", body: bin(encodeIdList([goodId, blake3(other)])), headers: auth });
    expect(decodeIdList(new Uint8Array(await missing.arrayBuffer()), "missing").map(idToHex)).toEqual([idToHex(goodId), idToHex(blake3(other))]);
    expect((await fetch(`${node().url}/v1/objects/${idToHex(goodId)}`, { headers: auth })).status).toBe(404);

    const put = await fetch(`${node().url}/v1/objects/${idToHex(goodId)}`, { method: "PUT", body: "evil bytes", headers: auth });
    expect(put.status).toBe(422);
    const putOk = await fetch(`${node().url}/v1/objects/${idToHex(goodId)}`, { method: "PUT", body: bin(good), headers: auth });
    expect(putOk.status).toBe(201);
    const got = await fetch(`${node().url}/v1/objects/${idToHex(goodId)}`, { headers: auth });
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(good);
  });

  test("malformed bodies get a 4xx, never a crash", async () => {
    const cases: [string, string, BodyInit, Record<string, string>][] = [
      ["POST", "/v1/objects/missing", bin(new Uint8Array([0x92, 0x01])), {}],
      ["POST", "/v1/objects/missing", bin(encodeCanonical({ ids: [new Uint8Array(5)] })), {}],
      ["POST", "/v1/objects/missing", bin(encodeCanonical([1, 2, 3])), {}],
      ["POST", "/v1/objects/upload", bin(new Uint8Array([0xc1])), {}],
      ["POST", "/v1/objects/upload", bin(encodeCanonical([[new Uint8Array(32)]])), {}],
      ["POST", "/v1/objects/upload", bin(encodeCanonical([[new Uint8Array(32), "not bytes"]])), {}],
      ["POST", "/v1/objects/upload", bin(new Uint8Array([1, 2, 3, 4])), { "content-encoding": "zstd" }],
      ["POST", "/v1/objects/upload", bin(new Uint8Array([1, 2, 3, 4])), { "content-encoding": "gzip" }],
      ["POST", "/v1/objects/download", bin(encodeCanonical({ ids: "x" })), {}],
      ["GET", "/v1/objects/not-an-id", "", {}],
      ["POST", "/v1/folders/x/commit", "{not json", { "content-type": "application/json" }],
      ["POST", "/v1/folders/x/commit", JSON.stringify({ root: "zz" }), {}],
      ["POST", "/v1/folders/x/commit", JSON.stringify([1]), {}],
      ["POST", "/v1/folders/bad%20name/commit", JSON.stringify({ root: "0".repeat(64) }), {}],
      ["POST", "/v1/folders/x/commit", JSON.stringify({ root: "0".repeat(64), parent: "1".repeat(64) }), {}],
      ["POST", "/v1/folders/x/commit", JSON.stringify({ root: "0".repeat(64), files: -1 }), {}],
      ["GET", "/v1/folders/x/versions?limit=abc", "", {}],
      ["PUT", "/v1/folders/x/retention", JSON.stringify({ keepVersions: "many" }), {}],
    ];
    for (const [method, path, body, headers] of cases) {
      const response = await fetch(node().url + path, { method, body: method === "GET" ? undefined : body, headers: { ...auth, ...headers } });
      const text = await response.text();
      expect({ path, status: response.status >= 400 && response.status < 500 }).toEqual({ path, status: true });
      expect(JSON.parse(text).error).toBeString();
    }
    expect((await fetch(`${node().url}/v1/health`)).status).toBe(200);
  });

  test("bodies over the limit get 413", async () => {
    const huge = new Uint8Array(70 * 1024 * 1024);
    const response = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(huge), headers: auth });
    expect(response.status).toBe(413);
    // One object is bounded by the largest object, not by the largest request body.
    const big = new Uint8Array(9 * 1024 * 1024);
    const put = await fetch(`${node().url}/v1/objects/${idToHex(blake3(big))}`, { method: "PUT", body: bin(big), headers: auth });
    expect(put.status).toBe(413);
    expect(((await put.json()) as { error: string }).error).toContain(`larger than ${8 * 1024 * 1024} bytes`);
    // A small zstd body that would inflate past the limit is refused too: a well-formed batch
    // (ten objects of 8 MiB of zeros, each under its right id) gets 413 once it passes the
    // limit inflated, and zeros that are no batch at all are refused as soon as that shows.
    const zeros = new Uint8Array(8 * 1024 * 1024);
    const zerosId = blake3(zeros) as ObjectId;
    const batch = encodeObjectBatch(Array.from({ length: 10 }, () => ({ id: zerosId, bytes: zeros })));
    const bomb = Bun.zstdCompressSync(batch);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const inflated = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(bomb), headers: { ...auth, "content-encoding": "zstd" } });
    expect(inflated.status).toBe(413);
    const noBatch = Bun.zstdCompressSync(new Uint8Array(80 * 1024 * 1024));
    const refused = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(noBatch), headers: { ...auth, "content-encoding": "zstd" } });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toContain("not an array");
  });

  test("trees with unsafe names or missing children are rejected and the head does not move", async () => {
    const upload = async (objects: { id: ObjectId; bytes: Uint8Array }[]) => {
      const response = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(encodeObjectBatch(objects)), headers: auth });
      expect(response.status).toBe(200);
    };
    const content = new TextEncoder().encode("payload");
    const chunkId = blake3(content);
    const fileBytes = encodeObject({ kind: "file", level: 0, sizeBytes: content.length, chunks: [{ id: chunkId, lengthBytes: content.length }] });
    const fileId = blake3(fileBytes);
    await upload([{ id: chunkId, bytes: content }, { id: fileId, bytes: fileBytes }]);
    const entry = (name: string): TreeEntry => ({ name, kind: "file", mode: 0o644, mtimeMs: 0, sizeBytes: content.length, id: fileId, target: null });
    const commit = (root: ObjectId) =>
      fetch(`${node().url}/v1/folders/hostile/commit`, { method: "POST", body: JSON.stringify({ root: idToHex(root) }), headers: auth });

    // A good first version, so there is a head that must not move.
    const goodTree = encodeObject({ kind: "tree", level: 0, entries: [entry("fine.txt")] });
    await upload([{ id: blake3(goodTree), bytes: goodTree }]);
    const first = await commit(blake3(goodTree));
    expect(first.status).toBe(200);
    const head = (await first.json()).version;

    for (const name of ["..", ".", "", "a/b", "/etc/passwd", "a\0b", "..\\..\\x"]) {
      const bytes = encodeObject({ kind: "tree", level: 0, entries: [entry(name)] });
      await upload([{ id: blake3(bytes), bytes }]);
      const response = await commit(blake3(bytes));
      expect({ name, status: response.status }).toEqual({ name, status: 422 });
    }
    // A tree naming a file that was never uploaded.
    const ghost = blake3(new TextEncoder().encode("never uploaded"));
    const ghostTree = encodeObject({ kind: "tree", level: 0, entries: [{ ...entry("ghost"), id: ghost }] });
    await upload([{ id: blake3(ghostTree), bytes: ghostTree }]);
    const incomplete = await commit(blake3(ghostTree));
    expect(incomplete.status).toBe(409);
    expect((await incomplete.json()).missing).toEqual([idToHex(ghost)]);
    // A file whose entry lies about its size.
    const liarTree = encodeObject({ kind: "tree", level: 0, entries: [{ ...entry("liar"), sizeBytes: 999 }] });
    await upload([{ id: blake3(liarTree), bytes: liarTree }]);
    expect((await commit(blake3(liarTree))).status).toBe(422);

    const folder = await (await fetch(`${node().url}/v1/folders/hostile`, { headers: auth })).json();
    expect(folder.head).toBe(head);
  });
});
