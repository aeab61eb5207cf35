// Names and ids in routes: every route that takes a folder name, a version reference or an
// object id refuses a bad one with 400 and a reason, before anything happens, and no folder
// ever comes into being as a side effect (only a commit, or replication, creates one).
import { describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import { PeerService } from "../../src/replication/peer-service.ts";
import { createApp } from "../../src/server/app.ts";
import { ROUTE_PARAM_RULES } from "../../src/server/route-params.ts";
import { memoryNodeWithOneCommit } from "../helpers/memory-node.ts";

const CLIENT = "client-token-for-tests";
const CLUSTER = "cluster-token-for-tests";

async function setUp() {
  const { node, root, commit } = await memoryNodeWithOneCommit();
  const app = createApp(node, { token: CLIENT, clusterToken: CLUSTER, peerService: new PeerService(node, () => {}) });
  const call = (method: string, path: string, body?: unknown) => {
    const token = path.startsWith("/v1/peer/") ? CLUSTER : CLIENT;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    return app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  };
  const folderNames = async () => (await node.listFolders()).map((folder) => folder.name);
  return { node, app, call, folderNames, root: idToHex(root), head: idToHex(commit.version) };
}

/** Bad folder names, and what each is. */
const BAD_FOLDER_NAMES: [string, string][] = [
  ["../../etc", "a path up and out"],
  ["a/b", "a slash"],
  ["a\\b", "a backslash"],
  ["..", "dot-dot"],
  [".", "dot"],
  ["", "empty"],
  ["a\0b", "NUL"],
  ["\x1b[2J", "ESC [2J (clear screen)"],
  ["a\nb", "newline"],
  ["a\rb", "carriage return"],
  ["a\tb", "tab"],
  ["a\x7fb", "DEL"],
  ["a\x9bb", "C1 CSI"],
  ["\u202etxt.exe", "right-to-left override"],
  ["\u2066x", "left-to-right isolate"],
  [" lead", "leading space"],
  ["two words", "a space"],
  ["caf\u00e9", "a non-ASCII letter"],
  ["%ZZ", "a percent sign"],
  ["a".repeat(129), "129 characters"],
];

/**
 * The same names as path segments. "." and ".." (and "") never reach a folder route: URL
 * parsing resolves dot segments before routing, which is checked on its own below.
 */
const BAD_FOLDER_SEGMENTS: [string, string][] = [
  ...BAD_FOLDER_NAMES.filter(([name]) => name !== "." && name !== ".." && name !== "").map(([name, what]): [string, string] => [encodeURIComponent(name), what]),
  ["%2e%2e%2fx", "dot-dot slash, encoded"],
  ["%ZZ", "a broken percent escape"],
];

/** Every route that names a folder in its path, with a body that would be valid for a good folder. */
function folderRoutes(root: string, head: string): [string, (folder: string) => string, unknown][] {
  return [
    ["GET", (f) => `/v1/folders/${f}`, undefined],
    ["PUT", (f) => `/v1/folders/${f}/retention`, { keepVersions: 3 }],
    ["GET", (f) => `/v1/folders/${f}/versions`, undefined],
    ["GET", (f) => `/v1/folders/${f}/versions/${head.slice(0, 8)}`, undefined],
    ["GET", (f) => `/v1/folders/${f}/versions/${head.slice(0, 8)}/conflicts`, undefined],
    ["POST", (f) => `/v1/folders/${f}/commit`, { root, parent: null, message: "x", chunking: "test", files: 1, bytes: 5 }],
    ["POST", (f) => `/v1/folders/${f}/restore`, { version: head }],
    ["POST", (f) => `/v1/peer/folders/${f}/history`, { head, known: {} }],
  ];
}

describe("names in routes", () => {
  test("every route with a folder in its path refuses each bad name with 400, and nothing is created", async () => {
    const { call, folderNames, root, head } = await setUp();
    const seen: string[] = [];
    for (const [method, path] of folderRoutes(root, head)) {
      for (const [segment, what] of BAD_FOLDER_SEGMENTS) {
        const response = await call(method, path(segment), method === "GET" ? undefined : {});
        const body = (await response.json()) as { error?: unknown };
        seen.push(`${method} ${path(segment)} (${what}): ${response.status} ${typeof body.error === "string" && /folder/i.test(body.error) ? "names the folder" : JSON.stringify(body)}`);
      }
    }
    // Sent with the body each route would accept for a good name, too: the name alone decides.
    for (const [method, path, body] of folderRoutes(root, head)) {
      for (const [segment, what] of BAD_FOLDER_SEGMENTS) {
        const response = await call(method, path(segment), body);
        seen.push(`${method} ${path(segment)} (${what}) with a valid body: ${response.status}`);
      }
    }
    for (const line of seen) expect(line).toMatch(/: 400( names the folder)?$/);
    expect(seen.filter((line) => line.endsWith("400 names the folder"))).toHaveLength(folderRoutes(root, head).length * BAD_FOLDER_SEGMENTS.length);
    expect(await folderNames()).toEqual(["f"]);
  });

  test("the table above covers every route of the app that takes a folder", async () => {
    const { app, root, head } = await setUp();
    const covered = new Set(folderRoutes(root, head).map(([method, path]) => `${method} ${path(":folder").replace(/\/versions\/[0-9a-f]{8}(?=\/|$)/, "/versions/:version")}`));
    const withFolder = app.routes.filter((route) => route.path.includes(":folder") && route.method !== "ALL").map((route) => `${route.method} ${route.path}`);
    expect(withFolder.length).toBeGreaterThan(0);
    for (const route of withFolder) expect({ route, covered: covered.has(route) }).toEqual({ route, covered: true });
  });

  test("every path parameter of every route has a rule", async () => {
    const { app } = await setUp();
    const names = new Set(app.routes.flatMap((route) => [...route.path.matchAll(/:(\w+)/g)].map((match) => match[1]!)));
    expect([...names].sort()).toEqual(["folder", "id", "node", "tokenId", "version"]);
    for (const name of names) expect(typeof ROUTE_PARAM_RULES[name]).toBe("function");
  });

  test("a folder named in a body (a peer's notice) follows the same rule", async () => {
    const { call, folderNames, head } = await setUp();
    for (const [folder, what] of BAD_FOLDER_NAMES) {
      const response = await call("POST", "/v1/peer/notify", { from: "n2", folder, head, vector: {} });
      expect({ what, status: response.status }).toEqual({ what, status: 400 });
    }
    expect(await folderNames()).toEqual(["f"]);
  });

  test("dot segments in a folder's place never reach a folder route, and create nothing", async () => {
    const { call, folderNames, root, head } = await setUp();
    for (const [method, path, body] of folderRoutes(root, head)) {
      for (const segment of ["..", ".", "%2e%2e", "%2E"]) {
        const response = await call(method, path(segment), body);
        expect({ path: path(segment), status: response.status }).toEqual({ path: path(segment), status: response.status === 400 ? 400 : 404 });
      }
    }
    expect(await folderNames()).toEqual(["f"]);
  });

  test("bad version references and object ids get 400 with a reason", async () => {
    const { call, head } = await setUp();
    for (const version of ["zz", "abc", "%1B%5B2J", "a".repeat(65), "abcd%0A", "%E2%80%AEabcd"]) {
      const response = await call("GET", `/v1/folders/f/versions/${version}`);
      expect({ version, status: response.status }).toEqual({ version, status: 400 });
      expect(((await response.json()) as { error: string }).error).toMatch(/version/);
    }
    for (const version of ["zz", "abc", "\x1b[2J", 7, null]) {
      const response = await call("POST", "/v1/folders/f/restore", { version });
      expect({ version, status: response.status }).toEqual({ version, status: 400 });
    }
    for (const id of ["zz", "AB".repeat(32), "ab".repeat(31), "%1B%5B2J"]) {
      const response = await call("GET", `/v1/objects/${id}`);
      expect({ id, status: response.status }).toEqual({ id, status: 400 });
    }
    expect((await call("GET", `/v1/folders/f/versions/${head.slice(0, 8)}`)).status).toBe(200);
  });

  test("setting retention on a folder that does not exist is 404 and creates nothing", async () => {
    const { call, folderNames } = await setUp();
    const response = await call("PUT", "/v1/folders/not-there/retention", { keepVersions: 2 });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: string }).error).toContain("not-there");
    expect(await folderNames()).toEqual(["f"]);
    const existing = await call("PUT", "/v1/folders/f/retention", { keepVersions: 2 });
    expect(existing.status).toBe(200);
    expect(((await existing.json()) as { keepVersions: number }).keepVersions).toBe(2);
  });

  test("good names stay good: letters, digits, '.', '_', '-' up to 128 characters", async () => {
    const { node, call, root } = await setUp();
    for (const folder of ["notes", "Photos_2024", "a.b-c", ".hidden", "...", "x".repeat(128)]) {
      const response = await call("POST", `/v1/folders/${folder}/commit`, { root, parent: null, message: "", chunking: "test", files: 1, bytes: 5 });
      expect({ folder, status: response.status }).toEqual({ folder, status: 200 });
    }
    expect(await node.listFolders()).toHaveLength(7);
  });

  test("a folder with a bad name left by an older version is still listed, exactly, and answers 400 by name", async () => {
    const { node, call } = await setUp();
    const planted = "\x1b[2J\u202eevil\r\n";
    await node.metadata.ensureFolder(planted, 0);
    const response = await call("GET", "/v1/folders");
    expect(response.status).toBe(200);
    const names = ((await response.json()) as { folders: { name: string }[] }).folders.map((folder) => folder.name);
    expect(names.sort()).toEqual([planted, "f"].sort());
    expect((await call("GET", "/v1/status")).status).toBe(200);
    expect((await call("GET", `/v1/folders/${encodeURIComponent(planted)}`)).status).toBe(400);
  });
});
