// No answer of the API can be rendered as a page of the node's origin: an object's bytes are
// whatever a client stored (here an HTML page with a script), and errors quote names. Every
// answer says nosniff and carries a policy that loads, runs and frames nothing; the
// dashboard's files keep their own policy.
import { expect, test } from "bun:test";
import { blake3 } from "../../src/core/blake3.ts";
import { idToHex } from "../../src/core/id.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { API_CONTENT_SECURITY_POLICY, createApp } from "../../src/server/app.ts";
import { CONTENT_SECURITY_POLICY } from "../../src/server/dashboard/routes.ts";
import { NodeMetrics } from "../../src/server/metrics.ts";
import { MemoryObjectStore } from "../../src/store/memory-store.ts";

test("objects, errors, listings, events and metrics are never sniffed, run or framed; the dashboard keeps its policy", async () => {
  const node = await DsyncNode.over(new MemoryObjectStore(), SqliteMetadataStore.open(":memory:"), { dataDir: "", nodeId: "n1" });
  const app = createApp(node, { metrics: new NodeMetrics({ node, version: "test" }) });
  const page = new TextEncoder().encode("<!doctype html><script>fetch('/v1/gc',{method:'POST'})</script>");
  const id = idToHex(blake3(page));
  expect((await app.request(`/v1/objects/${id}`, { method: "PUT", body: page })).status).toBe(201);
  const answers = await Promise.all([
    app.request(`/v1/objects/${id}`),
    app.request("/v1/folders/%3Cscript%3E"),
    app.request("/no/such/<b>path"),
    app.request("/v1/folders"),
    app.request("/v1/status"),
    app.request("/v1/health"),
    app.request("/v1/events?since=0&wait=0"),
    app.request("/metrics"),
  ]);
  expect(await answers[0]!.text()).toContain("<script>");
  for (const answer of answers) {
    expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
    expect(answer.headers.get("content-security-policy")).toBe(API_CONTENT_SECURITY_POLICY);
  }
  for (const path of ["/", "/ui/app.js", "/ui/style.css"]) {
    const answer = await app.request(path);
    expect(answer.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
  }
});
