// The metrics' label sets stay bounded: at most FOLDER_SERIES_MAX folders get per-folder series
// (those changed last), the rest are counted; request routes are patterns whatever the path.
import { expect, test } from "bun:test";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { createApp } from "../../src/server/app.ts";
import { FOLDER_SERIES_MAX, NodeMetrics } from "../../src/server/metrics.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";
import { parseExposition } from "../helpers/exposition.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

test(`only the ${FOLDER_SERIES_MAX} most recently changed folders get per-folder series; the rest are counted`, async () => {
  const clock = { now: Date.UTC(2026, 11, 1), nowMs: () => clock.now };
  const node = await DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n", clock });
  const extra = 7;
  for (let i = 0; i < FOLDER_SERIES_MAX + extra; i++) {
    const objects = new MemoryObjects();
    const root = objects.tree({ [`file-${i}.txt`]: `content ${i}` });
    await node.putObjects(objects.all());
    clock.now += 1000;
    await node.commit({ folder: `folder-${String(i).padStart(3, "0")}`, root, parent: null, message: "", chunking: "test", files: 1, totalBytes: 9 });
  }
  const metrics = new NodeMetrics({ node, version: "test" });
  const exposition = parseExposition((await metrics.exposition()).text);
  const folders = exposition.samples.filter((s) => s.family === "dsync_folder_last_change_timestamp_seconds").map((s) => s.labels.folder!);
  expect(folders.length).toBe(FOLDER_SERIES_MAX);
  // The oldest `extra` folders are the ones left out.
  const expected = Array.from({ length: FOLDER_SERIES_MAX }, (_, i) => `folder-${String(i + extra).padStart(3, "0")}`);
  expect(folders.sort()).toEqual(expected);
  expect(exposition.value("dsync_metrics_folders_omitted")).toBe(extra);
  expect(exposition.value("dsync_folders")).toBe(FOLDER_SERIES_MAX + extra);
  expect(exposition.value("dsync_versions")).toBe(FOLDER_SERIES_MAX + extra);
  for (const family of ["dsync_folder_versions", "dsync_folder_files", "dsync_folder_bytes"]) {
    expect(exposition.samples.filter((s) => s.family === family).length).toBe(FOLDER_SERIES_MAX);
  }
});

test("a thousand different paths make one series per route pattern, and unknown paths one 'unmatched' series", async () => {
  const clock = { now: Date.UTC(2026, 11, 1), nowMs: () => clock.now };
  const node = await DsyncNode.over(new MemoryObjectStore({ nowMs: clock.nowMs }), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n", clock });
  const metrics = new NodeMetrics({ node, version: "test" });
  const app = createApp(node, { metrics });
  for (let i = 0; i < 500; i++) {
    expect((await app.request(`/v1/folders/missing-${i}`)).status).toBe(404);
    expect((await app.request(`/no/such/path/${i}`)).status).toBe(404);
  }
  const exposition = parseExposition((await (await app.request("/metrics")).text()));
  const series = exposition.samples.filter((s) => s.name === "dsync_http_request_duration_seconds_count");
  expect(series.map((s) => s.labels)).toEqual([
    { route: "/v1/folders/:folder", method: "GET", status: "404" },
    { route: "unmatched", method: "GET", status: "404" },
  ]);
  expect(series.map((s) => s.value)).toEqual([500, 500]);
});

test("requests with every method the server takes make series for the API's methods and one 'other'", async () => {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n" });
  const metrics = new NodeMetrics({ node, version: "test" });
  const app = createApp(node, { metrics, token: "client-token" });
  // Methods an HTTP server accepts besides the API's own, sent by someone without the token.
  const others = ["PATCH", "PURGE", "PROPFIND", "MKCOL", "SEARCH", "LINK", "UNLINK", "REPORT", "NOTIFY", "SUBSCRIBE", "LOCK", "OPTIONS", "TRACE", "QUERY", "SOURCE"];
  for (const method of others) await app.request("/v1/folders", { method });
  await app.request("/v1/folders", { method: "GET" });
  const exposition = parseExposition(await (await app.request("/metrics", { headers: { authorization: "Bearer client-token" } })).text());
  const methods = new Set(exposition.samples.filter((s) => s.name === "dsync_http_request_duration_seconds_count").map((s) => s.labels.method!));
  expect([...methods].sort()).toEqual(["GET", "other"]);
});
