// The list routes answer in pages: a page never holds more than the route's maximum, whatever
// the client asks, and following `next` returns every item exactly once, in order, even while
// new versions are committed between pages.
import { describe, expect, test } from "bun:test";
import type { ObjectId } from "../../src/core/id.ts";
import { idToHex } from "../../src/core/id.ts";
import { LIMITS } from "../../src/core/limits.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

interface Page {
  versions: { id: string; sequence: number }[];
  limit: number;
  next: string | null;
}

async function setUp() {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const objects = new MemoryObjects();
  const root = objects.tree({ "a.txt": "hello" });
  await node.putObjects(objects.all());
  let head: ObjectId | null = null;
  const commit = async (folder = "f") => {
    const parent = (await node.metadata.getFolder(folder))?.head ?? null;
    const result = await node.commit({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 5 });
    head = result.version;
    return idToHex(result.version);
  };
  const app = createApp(node);
  const get = async (path: string) => {
    const response = await app.request(path);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  return { node, commit, get, head: () => head };
}

describe("GET /v1/folders/:folder/versions", () => {
  test("a page never holds more than the maximum, with or without a limit, and says where the next starts", async () => {
    const { commit, get } = await setUp();
    for (let i = 0; i < LIMITS.versionsPageMax + 5; i++) await commit();
    for (const query of ["", "?limit=5000", `?limit=${LIMITS.versionsPageMax}`]) {
      const { status, body } = await get(`/v1/folders/f/versions${query}`);
      expect(status).toBe(200);
      const page = body as unknown as Page;
      expect(page.versions.length).toBe(LIMITS.versionsPageMax);
      expect(page.limit).toBe(LIMITS.versionsPageMax);
      expect(page.next).not.toBeNull();
      const rest = (await get(`/v1/folders/f/versions?cursor=${page.next}`)).body as unknown as Page;
      expect(rest.versions.length).toBe(5);
      expect(rest.next).toBeNull();
      expect(rest.versions[0]!.sequence).toBe(page.versions.at(-1)!.sequence - 1);
    }
  });

  test("following next returns every version exactly once, newest first, while versions are committed between pages", async () => {
    const { node, commit, get } = await setUp();
    for (let i = 0; i < 40; i++) await commit();
    const atStart = (await node.listVersions("f")).map((v) => idToHex(v.id)); // newest first
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "?limit=7" : `?limit=7&cursor=${cursor}`;
      const page = (await get(`/v1/folders/f/versions${query}`)).body as unknown as Page;
      expect(page.versions.length).toBeLessThanOrEqual(7);
      seen.push(...page.versions.map((v) => v.id));
      cursor = page.next;
      // New versions arrive meanwhile; they are newer than everything already listed.
      for (let i = 0; i < 3; i++) await commit();
      pages++;
      expect(pages).toBeLessThan(20); // a cursor that did not move would page forever
    } while (cursor !== null);
    // The first page already held the head of the time; the rest are the history behind it.
    expect(seen).toEqual(atStart);
    expect(new Set(seen).size).toBe(seen.length);
  });

  test("before names a version (id or prefix) and starts below it", async () => {
    const { commit, get } = await setUp();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await commit());
    const below = (await get(`/v1/folders/f/versions?before=${ids[3]}&limit=2`)).body as unknown as Page;
    expect(below.versions.map((v) => v.id)).toEqual([ids[2]!, ids[1]!]);
    expect(below.next).not.toBeNull();
    const byPrefix = (await get(`/v1/folders/f/versions?before=${ids[1]!.slice(0, 10)}`)).body as unknown as Page;
    expect(byPrefix.versions.map((v) => v.id)).toEqual([ids[0]!]);
    expect(byPrefix.next).toBeNull();
  });

  test("bad paging parameters get 400 with the reason; an unknown version 404", async () => {
    const { commit, get } = await setUp();
    const head = await commit();
    const cases: [string, number, string][] = [
      ["limit=0", 400, "limit"],
      ["limit=-3", 400, "limit"],
      ["limit=abc", 400, "limit"],
      ["limit=1.5", 400, "limit"],
      ["limit=99999999999999999999", 400, "limit"],
      ["cursor=12", 400, "cursor"],
      ["cursor=s0", 400, "cursor"],
      ["cursor=sabc", 400, "cursor"],
      ["cursor=nfoo", 400, "cursor"],
      [`cursor=s5&before=${head}`, 400, "not both"],
      ["before=zz", 400, "before"],
      ["before=abcd0123", 404, "no version"],
    ];
    for (const [query, status, words] of cases) {
      const { status: got, body } = await get(`/v1/folders/f/versions?${query}`);
      expect({ query, got }).toEqual({ query, got: status });
      expect(String(body.error)).toContain(words);
    }
  });
});

describe("GET /v1/folders", () => {
  test("folders come in pages of at most the maximum, by name, each exactly once", async () => {
    const { commit, get } = await setUp();
    const names = Array.from({ length: 12 }, (_, i) => `folder-${String(i).padStart(2, "0")}`);
    for (const name of names.toReversed()) await commit(name);
    const whole = (await get("/v1/folders")).body as { folders: { name: string }[]; limit: number; next: string | null };
    expect(whole.folders.map((f) => f.name)).toEqual(names);
    expect(whole.limit).toBe(LIMITS.foldersPageMax);
    expect(whole.next).toBeNull();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "?limit=5" : `?limit=5&cursor=${encodeURIComponent(cursor)}`;
      const page = (await get(`/v1/folders${query}`)).body as { folders: { name: string }[]; next: string | null };
      expect(page.folders.length).toBeLessThanOrEqual(5);
      seen.push(...page.folders.map((f) => f.name));
      cursor = page.next;
    } while (cursor !== null);
    expect(seen).toEqual(names);
    expect((await get("/v1/folders?limit=0")).status).toBe(400);
    expect((await get("/v1/folders?cursor=s12")).status).toBe(400);
  });
});

describe("GET /v1/status", () => {
  test("lists at most a page of folders, and says how many there are", async () => {
    const { commit, get } = await setUp();
    const count = LIMITS.foldersPageMax + 3;
    for (let i = 0; i < count; i++) await commit(`folder-${String(i).padStart(5, "0")}`);
    const status = (await get("/v1/status")).body as { folders: { name: string }[]; foldersTotal: number };
    expect(status.folders).toHaveLength(LIMITS.foldersPageMax);
    expect(status.folders[0]!.name).toBe("folder-00000");
    expect(status.foldersTotal).toBe(count);
    await commit("another");
    expect(((await get("/v1/status")).body as { foldersTotal: number }).foldersTotal).toBe(count + 1);
  });

  test("with fewer folders than a page, all of them", async () => {
    const { commit, get } = await setUp();
    await commit("a");
    await commit("b");
    const status = (await get("/v1/status")).body as { folders: { name: string }[]; foldersTotal: number };
    expect(status.folders.map((f) => f.name)).toEqual(["a", "b"]);
    expect(status.foldersTotal).toBe(2);
  });
});
