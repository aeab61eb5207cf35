// The peer routes under hostile input: every malformed request gets a 4xx with a readable error,
// never a 500, and changes nothing; the credential rules hold route by route.
import { describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { createApp } from "../../src/server/app.ts";
import { decodeDownloadReply, encodeIdList } from "../../src/wire/formats.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";

const CLUSTER = "cluster-token-for-tests";
const CLIENT = "client-token-for-tests";

async function setUp() {
  const { node, commit } = await memoryNodeWithOneCommit();
  const notices: unknown[] = [];
  const app = createApp(node, { token: CLIENT, clusterToken: CLUSTER, peerService: new PeerService(node, (n) => notices.push(n)) });
  const call = (method: string, path: string, body?: BodyInit, token = CLUSTER, type = "application/json") =>
    app.request(path, { method, body, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": type }) } });
  return { node, app, call, head: idToHex(commit.version), notices };
}

describe("peer routes", () => {
  test("each route takes only the cluster token", async () => {
    const { call } = await setUp();
    const routes: [string, string, BodyInit | undefined][] = [
      ["GET", "/v1/peer/folders", undefined],
      ["POST", "/v1/peer/notify", "{}"],
      ["POST", "/v1/peer/folders/f/history", "{}"],
      ["POST", "/v1/peer/objects/download", new Uint8Array([0x90])],
    ];
    for (const [method, path, body] of routes) {
      expect((await call(method, path, body, CLIENT)).status).toBe(401);
      expect((await call(method, path, body, "")).status).toBe(401);
    }
    expect((await call("GET", "/v1/folders", undefined, CLUSTER)).status).toBe(401);
    expect((await call("GET", "/v1/folders", undefined, CLIENT)).status).toBe(200);
  });

  test("malformed history and notice requests get 4xx and a reason", async () => {
    const { call, head, notices } = await setUp();
    const cases: [string, string, string][] = [
      ["/v1/peer/folders/f/history", "not json", "JSON"],
      ["/v1/peer/folders/f/history", "[]", ""],
      ["/v1/peer/folders/f/history", JSON.stringify({ head: "zz", known: {} }), "head"],
      ["/v1/peer/folders/f/history", JSON.stringify({ head, known: { n1: -1 } }), "counter"],
      ["/v1/peer/folders/f/history", JSON.stringify({ head, known: { n1: 1.5 } }), "counter"],
      ["/v1/peer/folders/f/history", JSON.stringify({ head, known: [1, 2] }), "vector"],
      ["/v1/peer/folders/f/history", JSON.stringify({ head, known: {}, resumeFrom: "x" }), "resumeFrom"],
      ["/v1/peer/folders/f/history", JSON.stringify({ head, known: {}, resumeFrom: ["zz"] }), "resumeFrom[0]"],
      ["/v1/peer/folders/f/history", JSON.stringify({ head, known: {}, resumeFrom: Array(10_001).fill(head) }), "more than"],
      ["/v1/peer/folders/..%2Fx/history", JSON.stringify({ head, known: {} }), ""],
      ["/v1/peer/notify", JSON.stringify({ from: "", folder: "f", head, vector: {} }), "node id"],
      ["/v1/peer/notify", JSON.stringify({ from: "n2", folder: "../x", head, vector: {} }), "folder"],
      ["/v1/peer/notify", JSON.stringify({ from: "n2", folder: "f", head: 7, vector: {} }), "head"],
      ["/v1/peer/notify", JSON.stringify({ from: "n2", folder: "f", head, vector: { n2: "x" } }), "counter"],
    ];
    for (const [path, body, reason] of cases) {
      const response = await call("POST", path, body);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      const json = (await response.json()) as { error: string };
      expect(typeof json.error).toBe("string");
      expect(json.error.toLowerCase()).toContain(reason.toLowerCase());
    }
    expect(notices).toEqual([]);
  });

  test("history of an unknown folder is 404; of an unknown head, empty", async () => {
    const { call, head } = await setUp();
    expect((await call("POST", "/v1/peer/folders/nope/history", JSON.stringify({ head, known: {} }))).status).toBe(404);
    const unknown = "ab".repeat(32);
    const response = await call("POST", "/v1/peer/folders/f/history", JSON.stringify({ head: unknown, known: {} }));
    expect(response.status).toBe(200);
  });

  test("download with a malformed id list is 400; with unknown ids, they are reported missing", async () => {
    const { call } = await setUp();
    for (const body of [new Uint8Array([0xc1]), new Uint8Array([0x91, 0x01]), new Uint8Array(0)]) {
      const response = await call("POST", "/v1/peer/objects/download", body, CLUSTER, "application/msgpack");
      expect(response.status).toBe(400);
    }
    const response = await call("POST", "/v1/peer/objects/download", encodeIdList([new Uint8Array(32).fill(7) as never]) as Uint8Array<ArrayBuffer>, CLUSTER, "application/msgpack");
    expect(response.status).toBe(200);
    const reply = decodeDownloadReply(new Uint8Array(await response.arrayBuffer()));
    expect(reply.objects).toEqual([]);
    expect(reply.missing.map(idToHex)).toEqual(["07".repeat(32)]);
  });

  test("stored-objects notices: only with the cluster token, malformed or too many refused with a reason, a valid one reaches the hook", async () => {
    const { node, commit } = await memoryNodeWithOneCommit();
    const stored: { from: string; folder: string; objects: { id: Uint8Array; lengthBytes: number }[] }[] = [];
    const app = createApp(node, { token: CLIENT, clusterToken: CLUSTER, peerService: new PeerService(node, () => {}, (n) => stored.push(n)) });
    const post = (body: string, token = CLUSTER) => app.request("/v1/peer/stored", { method: "POST", body, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } });
    const id = idToHex(commit.version);
    expect((await post(JSON.stringify({ from: "n2", folder: "f", objects: [] }), CLIENT)).status).toBe(401);
    const cases: [unknown, string][] = [
      [{ from: "", folder: "f", objects: [] }, "node id"],
      [{ from: "n2", folder: "../x", objects: [] }, "folder"],
      [{ from: "n2", folder: "f", objects: "x" }, "objects"],
      [{ from: "n2", folder: "f", objects: [[id]] }, "objects[0]"],
      [{ from: "n2", folder: "f", objects: [["zz", 1]] }, "objects[0]"],
      [{ from: "n2", folder: "f", objects: [[id, -1]] }, "lengthBytes"],
      [{ from: "n2", folder: "f", objects: [[id, 1.5]] }, "lengthBytes"],
      [{ from: "n2", folder: "f", objects: [[id, LIMITS.objectBytesMax + 1]] }, "lengthBytes"],
      [{ from: "n2", folder: "f", objects: Array(LIMITS.storedNoticeObjectsMax + 1).fill([id, 1]) }, "more than"],
    ];
    for (const [body, reason] of cases) {
      const response = await post(JSON.stringify(body));
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error.toLowerCase()).toContain(reason.toLowerCase());
    }
    expect(stored).toEqual([]);
    const response = await post(JSON.stringify({ from: "n2", folder: "f", objects: [[id, 1234]] }));
    expect(response.status).toBe(202);
    expect(stored.map((n) => ({ from: n.from, folder: n.folder, objects: n.objects.map((o) => [idToHex(o.id), o.lengthBytes]) }))).toEqual([{ from: "n2", folder: "f", objects: [[id, 1234]] }]);
  });

  test("a valid notice reaches the replicator's hook", async () => {
    const { call, head, notices } = await setUp();
    const response = await call("POST", "/v1/peer/notify", JSON.stringify({ from: "n2", folder: "f", head, vector: { n2: 3 } }));
    expect(response.status).toBe(202);
    expect(notices).toHaveLength(1);
  });
});
