// dsync log reads a history a page at a time: a history longer than one page is printed whole,
// each version once and in order, in text, --json (one document) and --json-lines; --limit N
// asks for no more than N; a node whose cursor does not advance is an error, not an endless loop.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { openNode } from "../../src/assemble.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";
import { cleanupTempDirs, runCli, startNode, tempDir, type NodeProcess } from "../helpers/processes.ts";

// More than two pages, so the log has to follow two cursors.
const VERSIONS = 2 * LIMITS.versionsPageMax + 150;

describe("dsync log against a node with a history of several pages", () => {
  let node: NodeProcess;
  let newestFirst: string[];
  let folderNames: string[];

  beforeAll(async () => {
    // The history is made straight through the node's own API in this process, then served.
    const dataDir = join(tempDir(), "data");
    const local = await openNode({ dataDir });
    const objects = new MemoryObjects();
    const root = objects.tree({ "a.txt": "hello" });
    await local.putObjects(objects.all());
    let parent: ObjectId | null = null;
    const ids: string[] = [];
    for (let i = 0; i < VERSIONS; i++) {
      const result = await local.commit({ folder: "long", root, parent, message: `number ${i}`, chunking: "test", files: 1, totalBytes: 5 });
      parent = result.version;
      ids.push(idToHex(result.version));
    }
    // And more folders than one page of the folder list holds.
    folderNames = Array.from({ length: LIMITS.foldersPageMax + 5 }, (_, i) => `many-${String(i).padStart(5, "0")}`);
    for (const folder of folderNames) await local.commit({ folder, root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 5 });
    folderNames = [...folderNames, "long"].sort();
    await local.close();
    newestFirst = ids.toReversed();
    node = await startNode({ dataDir });
  }, 120_000);

  afterAll(async () => {
    await node?.stop();
    cleanupTempDirs();
  });

  test("the text log prints every version once, newest first", async () => {
    const log = await runCli(["log", "--remote", node.url, "--folder", "long"]);
    expect(log.code).toBe(0);
    const shown = log.stdout.trimEnd().split("\n").map((line) => line.slice(0, 12));
    expect(shown).toEqual(newestFirst.map((id) => id.slice(0, 12)));
    expect(log.stdout.split("\n")[0]).toContain("(head)");
    expect(log.stdout.trimEnd().split("\n").at(-1)).toContain("number 0");
  }, 60_000);

  test("--json is one document holding every version; --json-lines one version per line", async () => {
    const json = await runCli(["log", "--remote", node.url, "--folder", "long", "--json"]);
    expect(json.code).toBe(0);
    const document = json.json<{ folder: { name: string; head: string }; versions: { id: string }[] }>();
    expect(document.folder.name).toBe("long");
    expect(document.folder.head).toBe(newestFirst[0]!);
    expect(document.versions.map((v) => v.id)).toEqual(newestFirst);

    const lines = await runCli(["log", "--remote", node.url, "--folder", "long", "--json-lines"]);
    expect(lines.code).toBe(0);
    const parsed = lines.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { id: string; message: string });
    expect(parsed.map((v) => v.id)).toEqual(newestFirst);
    expect(parsed.at(-1)!.message).toBe("number 0");
  }, 60_000);

  test("--limit N prints the newest N, across pages too", async () => {
    for (const limit of [20, LIMITS.versionsPageMax + 7]) {
      const log = await runCli(["log", "--remote", node.url, "--folder", "long", "--limit", String(limit), "--json-lines"]);
      expect(log.code).toBe(0);
      expect(log.stdout.trimEnd().split("\n").map((line) => (JSON.parse(line) as { id: string }).id)).toEqual(newestFirst.slice(0, limit));
    }
    const empty = await runCli(["log", "--remote", node.url, "--folder", "long", "--json", "--limit", "3"]);
    expect(empty.json<{ versions: unknown[] }>().versions).toHaveLength(3);
  }, 60_000);

  test("dsync ls lists every folder once, by name, in text and --json, across pages of folders", async () => {
    const ls = await runCli(["ls", "--remote", node.url]);
    expect(ls.code).toBe(0);
    expect(ls.stdout.trimEnd().split("\n").map((line) => line.split("\t")[0])).toEqual(folderNames);
    const json = await runCli(["ls", "--remote", node.url, "--json"]);
    expect(json.json<{ folders: { name: string }[] }>().folders.map((f) => f.name)).toEqual(folderNames);
  }, 60_000);

  test("dsync status says it shows a page of the folders and how many there are; --json carries foldersTotal", async () => {
    const text = await runCli(["status", "--remote", node.url]);
    expect(text.code).toBe(0);
    expect(text.stdout.split("\n").filter((line) => line.startsWith("folder "))).toHaveLength(LIMITS.foldersPageMax);
    expect(text.stdout).toContain(`showing ${LIMITS.foldersPageMax} of ${folderNames.length} folders`);
    const json = (await runCli(["status", "--remote", node.url, "--json"])).json<{ folders: unknown[]; foldersTotal: number }>();
    expect(json.folders).toHaveLength(LIMITS.foldersPageMax);
    expect(json.foldersTotal).toBe(folderNames.length);
    // --wait cannot see the folders past the status's page: it says so at once, never "in sync".
    const waited = await runCli(["status", "--remote", node.url, "--wait", "--timeout-ms", "20000"]);
    expect(waited.code).toBe(1);
    expect(waited.stderr).toContain(`${folderNames.length - LIMITS.foldersPageMax} folders after the first ${LIMITS.foldersPageMax} by name`);
    expect(waited.stderr).toContain(`--wait sees the first ${LIMITS.foldersPageMax} folders of the status only`);
  }, 60_000);
});

describe("dsync log against a node serving pages", () => {
  test("--limit 20 asks for one page of 20; no request asks for more than a page", async () => {
    const asked: string[] = [];
    const total = 3000;
    const version = (sequence: number) => ({
      id: sequence.toString(16).padStart(64, "0"),
      sequence,
      parents: [],
      author: "a",
      time: "t",
      origin: "push",
      files: 1,
      bytes: 1,
      message: `m${sequence}`,
    });
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request) {
        const url = new URL(request.url);
        if (url.pathname === "/v1/folders/big") return Response.json({ name: "big", head: version(total).id, mode: "eventual" });
        if (url.pathname === "/v1/folders/big/versions") {
          asked.push(url.search);
          const limit = Number(url.searchParams.get("limit") ?? "1000");
          const cursor = url.searchParams.get("cursor");
          const below = cursor === null ? total + 1 : Number(cursor.slice(1));
          const versions = [];
          for (let s = below - 1; s >= 1 && versions.length < Math.min(limit, 1000); s--) versions.push(version(s));
          const last = versions.at(-1);
          return Response.json({ versions, limit, next: last && last.sequence > 1 ? `s${last.sequence}` : null });
        }
        return Response.json({ error: "no" }, { status: 404 });
      },
    });
    try {
      const url = `http://127.0.0.1:${server.port}`;
      const short = await runCli(["log", "--remote", url, "--folder", "big", "--limit", "20"]);
      expect(short.code).toBe(0);
      expect(short.stdout.trimEnd().split("\n")).toHaveLength(20);
      expect(asked).toEqual(["?limit=20"]);

      asked.length = 0;
      const whole = await runCli(["log", "--remote", url, "--folder", "big"]);
      expect(whole.code).toBe(0);
      expect(whole.stdout.trimEnd().split("\n")).toHaveLength(total);
      expect(asked).toEqual(["?limit=1000", "?limit=1000&cursor=s2001", "?limit=1000&cursor=s1001"]);
    } finally {
      server.stop(true);
    }
  }, 60_000);

  test("a node whose cursor does not advance gets an error naming it, after one page", async () => {
    let requests = 0;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request) {
        const url = new URL(request.url);
        if (url.pathname === "/v1/folders/big") return Response.json({ name: "big", head: null, mode: "eventual" });
        if (url.pathname === "/v1/folders/big/versions") {
          requests++;
          const id = "ab".repeat(32);
          return Response.json({ versions: [{ id, parents: [], author: "a", time: "t", origin: "push", files: 1, bytes: 1, message: "" }], next: "s5" });
        }
        return Response.json({ error: "no" }, { status: 404 });
      },
    });
    try {
      const log = await runCli(["log", "--remote", `http://127.0.0.1:${server.port}`, "--folder", "big"]);
      expect(log.code).toBe(1);
      expect(log.stderr).toContain("does not advance");
      expect(requests).toBe(2);
    } finally {
      server.stop(true);
    }
  }, 60_000);
});
