// Every route against every kind of caller: no token, a malformed header, a wrong token, an
// expired and a revoked one, read, write and admin tokens for folder f, and a write token for
// folder g only. Each answer has the expected status, and a refused request changes nothing
// (heads, versions, retention, tokens). The table of ROUTE_ACCESS covers every route the app
// registers, and docs/api.md holds the same table.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { SqliteTokenStore } from "../../src/node/token-store.ts";
import { systemRandom } from "../../src/node/clock.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { ROUTE_ACCESS } from "../../src/server/access.ts";
import { createApp } from "../../src/server/app.ts";
import { openMembership } from "../../src/server/object-visibility.ts";
import { NodeMetrics } from "../../src/server/metrics.ts";
import { encodeIdList, encodeObjectBatch } from "../../src/wire/formats.ts";
import { encodeRaftMessages } from "../../src/wire/raft-message.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { cleanupTempDirs, REPO_ROOT, tempDir } from "../helpers/processes.ts";

afterAll(cleanupTempDirs);

const ADMIN = "admin-token-for-tests";
const CLUSTER = "cluster-token-for-tests";
const HOUR_MS = 3600_000;

const CALLERS = ["none", "malformed", "wrong", "expired", "revoked", "read", "write", "admin", "other"] as const;
type Caller = (typeof CALLERS)[number];

async function setUp() {
  const { node, root, commit } = await memoryNodeWithOneCommit();
  // Folder g, apart from f: its own file, which exists nowhere in f.
  const objects = new MemoryObjects();
  const gRoot = objects.tree({ "secret.txt": "only in g" });
  await node.putObjects(objects.all());
  await node.commit({ folder: "g", root: gRoot, parent: null, message: "", chunking: "test", files: 1, totalBytes: 9 });
  const tokens = SqliteTokenStore.open(tempDir(), systemRandom);
  const now = Date.now();
  const make = async (role: "read" | "write" | "admin", folders: string[], createdMs = now, expiresMs: number | null = null) =>
    (await tokens.create({ role, folders, name: role, expiresMs }, createdMs)).token;
  const revoked = await tokens.create({ role: "admin", folders: [], name: "revoked", expiresMs: null }, now);
  await tokens.revoke(revoked.record.id, now);
  const victim = await tokens.create({ role: "read", folders: [], name: "to revoke", expiresMs: null }, now);
  const credentials: Record<Caller, string | null> = {
    none: null,
    malformed: "Bearer two words",
    wrong: `Bearer dsync_${"a".repeat(52)}`,
    expired: `Bearer ${await make("admin", [], now - 2 * HOUR_MS, now - HOUR_MS)}`,
    revoked: `Bearer ${revoked.token}`,
    read: `Bearer ${await make("read", ["f"])}`,
    write: `Bearer ${await make("write", ["f"])}`,
    admin: `Bearer ${await make("admin", [])}`,
    other: `Bearer ${await make("write", ["g"])}`,
  };
  const metrics = new NodeMetrics({ node, version: "test" });
  const app = createApp(node, { token: ADMIN, tokens, clusterToken: CLUSTER, peerService: new PeerService(node, () => {}), metrics });
  const call = (method: string, path: string, caller: Caller | "cluster", body?: Uint8Array | unknown) => {
    const headers: Record<string, string> = {};
    const credential = caller === "cluster" ? `Bearer ${CLUSTER}` : credentials[caller];
    if (credential) headers.authorization = credential;
    let payload: BodyInit | undefined;
    if (body instanceof Uint8Array) {
      headers["content-type"] = "application/x-msgpack";
      payload = body as Uint8Array<ArrayBuffer>;
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    return app.request(path, { method, headers, body: payload });
  };
  /** Everything a refused request must leave as it was. */
  const snapshot = async () => {
    const folders = await node.listFolders();
    const versions = [];
    for (const folder of folders) versions.push((await node.listVersions(folder.name)).map((v) => idToHex(v.id)));
    return { folders, versions, tokens: await tokens.list() };
  };
  return { node, app, call, snapshot, tokens, credentials, root, gRoot, head: commit.version, victimId: victim.record.id };
}

/** A fresh object's id and bytes (not stored anywhere yet). */
function freshObject(text: string): { id: ObjectId; bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(text);
  return { id: blake3(bytes), bytes };
}

type Expect = Partial<Record<Caller, number>> & { ok: number; least: "public" | "read" | "write" | "admin" | "cluster" | "metrics"; folderRoute?: boolean };

interface RouteCase {
  method: string;
  /** As in ROUTE_ACCESS. */
  pattern: string;
  path: (s: Awaited<ReturnType<typeof setUp>>) => string;
  body?: (s: Awaited<ReturnType<typeof setUp>>) => unknown;
  expect: Expect;
}

const hex = idToHex;
const ROUTES: RouteCase[] = [
  { method: "GET", pattern: "/", path: () => "/", expect: { ok: 200, least: "public" } },
  { method: "GET", pattern: "/ui", path: () => "/ui", expect: { ok: 302, least: "public" } },
  { method: "GET", pattern: "/ui/app.js", path: () => "/ui/app.js", expect: { ok: 200, least: "public" } },
  { method: "GET", pattern: "/ui/style.css", path: () => "/ui/style.css", expect: { ok: 200, least: "public" } },
  { method: "GET", pattern: "/favicon.ico", path: () => "/favicon.ico", expect: { ok: 204, least: "public" } },
  { method: "GET", pattern: "/v1/health", path: () => "/v1/health", expect: { ok: 200, least: "public" } },
  { method: "GET", pattern: "/metrics", path: () => "/metrics", expect: { ok: 200, least: "metrics" } },
  { method: "GET", pattern: "/v1/status", path: () => "/v1/status", expect: { ok: 200, least: "read" } },
  { method: "GET", pattern: "/v1/events", path: () => "/v1/events?since=0&wait=0", expect: { ok: 200, least: "read" } },
  { method: "GET", pattern: "/v1/folders", path: () => "/v1/folders", expect: { ok: 200, least: "read" } },
  { method: "GET", pattern: "/v1/folders/:folder", path: () => "/v1/folders/f", expect: { ok: 200, least: "read", folderRoute: true } },
  { method: "GET", pattern: "/v1/folders/:folder/versions", path: () => "/v1/folders/f/versions", expect: { ok: 200, least: "read", folderRoute: true } },
  { method: "GET", pattern: "/v1/folders/:folder/versions/:version", path: (s) => `/v1/folders/f/versions/${hex(s.head)}`, expect: { ok: 200, least: "read", folderRoute: true } },
  {
    method: "GET",
    pattern: "/v1/folders/:folder/versions/:version/conflicts",
    path: (s) => `/v1/folders/f/versions/${hex(s.head)}/conflicts`,
    expect: { ok: 200, least: "read", folderRoute: true },
  },
  // The other folder's token is told f's root is not there (it may not know of it).
  { method: "POST", pattern: "/v1/objects/download", path: () => "/v1/objects/download", body: (s) => encodeIdList([s.root]), expect: { ok: 200, least: "read" } },
  { method: "GET", pattern: "/v1/objects/:id", path: (s) => `/v1/objects/${hex(s.root)}`, expect: { ok: 200, least: "read", other: 404 } },
  { method: "POST", pattern: "/v1/objects/missing", path: () => "/v1/objects/missing", body: (s) => encodeIdList([s.root]), expect: { ok: 200, least: "write" } },
  { method: "POST", pattern: "/v1/objects/signatures", path: () => "/v1/objects/signatures", body: (s) => encodeIdList([s.root]), expect: { ok: 200, least: "read" } },
  { method: "POST", pattern: "/v1/objects/upload", path: () => "/v1/objects/upload", body: () => encodeObjectBatch([freshObject("uploaded")]), expect: { ok: 200, least: "write" } },
  { method: "PUT", pattern: "/v1/objects/:id", path: () => `/v1/objects/${hex(freshObject("put").id)}`, body: () => freshObject("put").bytes, expect: { ok: 201, least: "write" } },
  // f exists as an eventual folder: 200, nothing changes. A token for g may make only g (403).
  { method: "POST", pattern: "/v1/folders", path: () => "/v1/folders", body: () => ({ name: "f", consistency: "eventual" }), expect: { ok: 200, least: "write", other: 403 } },
  {
    method: "POST",
    pattern: "/v1/folders/:folder/commit",
    path: () => "/v1/folders/f/commit",
    body: (s) => ({ root: hex(s.root), parent: hex(s.head), message: "again", chunking: "test", files: 1, bytes: 5 }),
    expect: { ok: 200, least: "write", folderRoute: true },
  },
  { method: "POST", pattern: "/v1/folders/:folder/restore", path: () => "/v1/folders/f/restore", body: (s) => ({ version: hex(s.head) }), expect: { ok: 200, least: "write", folderRoute: true } },
  { method: "PUT", pattern: "/v1/folders/:folder/retention", path: () => "/v1/folders/f/retention", body: () => ({ keepVersions: 7 }), expect: { ok: 200, least: "admin", folderRoute: true } },
  { method: "POST", pattern: "/v1/gc", path: () => "/v1/gc", body: () => ({ graceMs: 0 }), expect: { ok: 200, least: "admin" } },
  { method: "POST", pattern: "/v1/verify", path: () => "/v1/verify", body: () => ({}), expect: { ok: 200, least: "admin" } },
  { method: "POST", pattern: "/v1/tokens", path: () => "/v1/tokens", body: () => ({ role: "read", folders: ["f"], name: "new" }), expect: { ok: 201, least: "admin" } },
  { method: "GET", pattern: "/v1/tokens", path: () => "/v1/tokens", expect: { ok: 200, least: "admin" } },
  { method: "DELETE", pattern: "/v1/tokens/:tokenId", path: (s) => `/v1/tokens/${s.victimId}`, expect: { ok: 200, least: "admin" } },
  // This app runs no Raft group: an admin gets through, and the node says it cannot change membership now.
  { method: "POST", pattern: "/v1/cluster/members", path: () => "/v1/cluster/members", body: () => ({ address: "http://127.0.0.1:9" }), expect: { ok: 503, least: "admin" } },
  { method: "DELETE", pattern: "/v1/cluster/members/:node", path: () => "/v1/cluster/members/n2", expect: { ok: 503, least: "admin" } },
  { method: "GET", pattern: "/v1/peer/folders", path: () => "/v1/peer/folders", expect: { ok: 200, least: "cluster" } },
  {
    method: "POST",
    pattern: "/v1/peer/folders/:folder/history",
    path: () => "/v1/peer/folders/f/history",
    body: (s) => ({ head: hex(s.head), known: {} }),
    expect: { ok: 200, least: "cluster" },
  },
  { method: "POST", pattern: "/v1/peer/objects/download", path: () => "/v1/peer/objects/download", body: (s) => encodeIdList([s.root]), expect: { ok: 200, least: "cluster" } },
  { method: "POST", pattern: "/v1/peer/notify", path: () => "/v1/peer/notify", body: (s) => ({ from: "n2", folder: "f", head: hex(s.head), vector: {} }), expect: { ok: 202, least: "cluster" } },
  { method: "POST", pattern: "/v1/peer/stored", path: () => "/v1/peer/stored", body: () => ({ from: "n2", folder: "f", objects: [] }), expect: { ok: 202, least: "cluster" } },
  // Strong writes handed over by a member: this node leads no Raft group, so each is 503 (one hop, never on).
  {
    method: "POST",
    pattern: "/v1/peer/strong/commit",
    path: () => "/v1/peer/strong/commit",
    body: (s) => ({ from: "n2", folder: "f", root: hex(s.root), parent: hex(s.head), message: "", chunking: "test", files: 1, bytes: 5 }),
    expect: { ok: 503, least: "cluster" },
  },
  { method: "POST", pattern: "/v1/peer/strong/restore", path: () => "/v1/peer/strong/restore", body: (s) => ({ from: "n2", folder: "f", version: hex(s.head) }), expect: { ok: 503, least: "cluster" } },
  { method: "POST", pattern: "/v1/peer/strong/folders", path: () => "/v1/peer/strong/folders", body: () => ({ from: "n2", name: "s", consistency: "strong" }), expect: { ok: 503, least: "cluster" } },
  { method: "POST", pattern: "/v1/peer/strong/members", path: () => "/v1/peer/strong/members", body: () => ({ from: "n2", action: "add", address: "http://127.0.0.1:9" }), expect: { ok: 503, least: "cluster" } },
  { method: "POST", pattern: "/v1/peer/strong/retention", path: () => "/v1/peer/strong/retention", body: () => ({ from: "n2", folder: "f", keepVersions: 3 }), expect: { ok: 503, least: "cluster" } },
  // This app's PeerService runs no Raft group: the cluster token gets through, and the node says it has none.
  { method: "POST", pattern: "/v1/peer/raft", path: () => "/v1/peer/raft", body: () => encodeRaftMessages([]), expect: { ok: 503, least: "cluster" } },
];

const RANK = { read: 1, write: 2, admin: 3 } as const;
const ROLE_OF: Partial<Record<Caller, keyof typeof RANK>> = { read: "read", write: "write", admin: "admin", other: "write" };

function expectedStatus(route: RouteCase, caller: Caller): number {
  const e = route.expect;
  if (e[caller] !== undefined) return e[caller]!;
  if (e.least === "public") return e.ok;
  // Peer routes take the cluster token only; metrics an admin or the metrics token only.
  if (e.least === "cluster") return 401;
  if (e.least === "metrics") return caller === "admin" ? e.ok : 401;
  const role = ROLE_OF[caller];
  if (!role) return 401;
  if (RANK[role] < RANK[e.least]) return 403;
  if (caller === "other" && e.folderRoute) return 404;
  return e.ok;
}

describe("route access", () => {
  test("every route the app registers is in ROUTE_ACCESS, and every entry is a route; the table here covers them all", async () => {
    const { app } = await setUp();
    const registered = new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`));
    expect([...registered].sort()).toEqual(Object.keys(ROUTE_ACCESS).sort());
    expect(ROUTES.map((r) => `${r.method} ${r.pattern}`).sort()).toEqual(Object.keys(ROUTE_ACCESS).sort());
    for (const route of ROUTES) {
      expect({ route: route.pattern, least: ROUTE_ACCESS[`${route.method} ${route.pattern}`] }).toEqual({ route: route.pattern, least: route.expect.least });
    }
  });

  test("docs/api.md lists the same role for every route", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs/api.md"), "utf8");
    const rows = new Map<string, string>();
    for (const match of doc.matchAll(/^\| `(GET|POST|PUT|DELETE) ([^`]+)` \| (\w+) \|/gm)) rows.set(`${match[1]} ${match[2]}`, match[3]!);
    expect(Object.fromEntries([...rows].sort())).toEqual(Object.fromEntries(Object.entries(ROUTE_ACCESS).sort()));
  });

  for (const route of ROUTES) {
    test(`${route.method} ${route.pattern}: each caller gets its status, and a refusal changes nothing`, async () => {
      const s = await setUp();
      const seen: Record<string, number> = {};
      const wanted: Record<string, number> = {};
      for (const caller of CALLERS) {
        const before = await s.snapshot();
        const response = await s.call(route.method, route.path(s), caller, route.body?.(s));
        await response.arrayBuffer();
        seen[caller] = response.status;
        wanted[caller] = expectedStatus(route, caller);
        if (response.status >= 400) {
          const after = await s.snapshot();
          // Last use is recorded on an accepted token even when its request is refused later (403, 404).
          const withoutUse = (snap: typeof before) => ({ ...snap, tokens: snap.tokens.map((t) => ({ ...t, lastUsedMs: null })) });
          expect({ caller, state: withoutUse(after) }).toEqual({ caller, state: withoutUse(before) });
        }
      }
      if (route.expect.least === "cluster") {
        const response = await s.call(route.method, route.path(s), "cluster", route.body?.(s));
        seen.cluster = response.status;
        wanted.cluster = route.expect.ok;
      }
      expect(seen).toEqual(wanted);
    });
  }

  test("a scoped token's lists show only its folders, with no cursor to others; its event stream only their events", async () => {
    const s = await setUp();
    const folders = (await (await s.call("GET", "/v1/folders", "other")).json()) as { folders: { name: string }[]; next: string | null };
    expect(folders.folders.map((f) => f.name)).toEqual(["g"]);
    expect(folders.next).toBeNull();
    const status = (await (await s.call("GET", "/v1/status", "read")).json()) as { folders: { name: string }[]; foldersTotal: number };
    expect(status.folders.map((f) => f.name)).toEqual(["f"]);
    expect(status.foldersTotal).toBe(1);
    const adminFolders = (await (await s.call("GET", "/v1/folders", "admin")).json()) as { folders: { name: string }[] };
    expect(adminFolders.folders.map((f) => f.name)).toEqual(["f", "g"]);
    const events = (await (await s.call("GET", "/v1/events?since=0&wait=0", "read")).json()) as { events: { folder: string | null }[] };
    expect(events.events.length).toBeGreaterThan(0);
    expect(events.events.every((e) => e.folder === "f")).toBe(true);
    const all = (await (await s.call("GET", "/v1/events?since=0&wait=0", "admin")).json()) as { events: { folder: string | null }[] };
    expect(all.events.some((e) => e.folder === "g")).toBe(true);
    // A token for g cannot label its uploads as f's, so f's readers never see them.
    const upload = await s.app.request("/v1/objects/upload", {
      method: "POST",
      headers: { authorization: s.credentials.other!, "x-dsync-folder": "f" },
      body: encodeObjectBatch([freshObject("labelled")]) as Uint8Array<ArrayBuffer>,
    });
    expect(upload.status).toBe(200);
    const seen = (await (await s.call("GET", "/v1/events?since=0&wait=0", "admin")).json()) as { events: { type: string; folder: string | null }[] };
    expect(seen.events.filter((e) => e.type === "push").map((e) => e.folder)).toEqual([null]);
  });

  test("a scoped token's folders are recorded ahead of its first request: when it is made, and when the node starts", async () => {
    const s = await setUp();
    const membership = openMembership(s.node, ":memory:");
    const app = createApp(s.node, { token: ADMIN, tokens: s.tokens, membership });
    // At the start: the folders of the valid scoped tokens made in setUp (f and g).
    const settled = async (folder: string) => {
      for (let i = 0; i < 100 && !membership.isTracked(folder); i++) await Bun.sleep(10);
      return membership.isTracked(folder);
    };
    expect(await settled("f")).toBe(true);
    expect(await settled("g")).toBe(true);
    const objects = new MemoryObjects();
    const hRoot = objects.tree({ "h.txt": "in h" });
    await s.node.putObjects(objects.all());
    await s.node.commit({ folder: "h", root: hRoot, parent: null, message: "", chunking: "test", files: 1, totalBytes: 4 });
    expect(membership.isTracked("h")).toBe(false);
    const made = await app.request("/v1/tokens", { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify({ role: "read", folders: ["h"] }) });
    expect(made.status).toBe(201);
    expect(await settled("h")).toBe(true);
    membership.close();
  });

  test("token routes refuse bad input with 400 and change nothing", async () => {
    const s = await setUp();
    const before = await s.tokens.list();
    for (const id of ["xyz", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0"]) expect((await s.call("DELETE", `/v1/tokens/${id}`, "admin")).status).toBe(400);
    expect((await s.call("DELETE", "/v1/tokens/0123456789abcdef", "admin")).status).toBe(404);
    const bodies = [
      {},
      { role: "owner" },
      { role: "admin", folders: ["f"] },
      { role: "read", folders: "f" },
      { role: "read", folders: ["a/b"] },
      { role: "read", expiresInMs: 0 },
      { role: "read", expiresInMs: -5 },
      { role: "read", expiresInMs: 11 * 366 * 86_400_000 },
      { role: "read", name: "bell\u0007" },
    ];
    for (const body of bodies) expect({ body, status: (await s.call("POST", "/v1/tokens", "admin", body)).status }).toEqual({ body, status: 400 });
    // Nothing made: the same tokens (the admin token's last use aside).
    const ignoringUse = (list: typeof before) => list.map((t) => ({ ...t, lastUsedMs: null }));
    expect(ignoringUse(await s.tokens.list())).toEqual(ignoringUse(before));
  });

  test("the node's own token and stored tokens never open a peer route, and the cluster token opens no client route", async () => {
    const s = await setUp();
    const peer = await s.app.request("/v1/peer/folders", { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(peer.status).toBe(401);
    expect((await s.call("GET", "/v1/status", "cluster")).status).toBe(401);
  });
});
