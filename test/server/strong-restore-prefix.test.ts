// A restore of a strong folder naming its version by a prefix that more than one version starts
// with: refused (400, "ambiguous", nothing proposed to the log, the head unchanged), never the
// first match taken. A prefix that names one version restores it. One node whose Raft group is
// itself (the real driver over the node's metadata), enough commits for two ids to share four
// hex digits.
import { afterAll, describe, expect, test } from "bun:test";
import { idToHex } from "../../src/core/id.ts";
import type { RaftDriver } from "../../src/consensus/raft-driver.ts";
import { createApp } from "../../src/server/app.ts";
import { memoryNode } from "../helpers/memory-node.ts";
import { leadAlone } from "../helpers/strong-single-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const drivers: RaftDriver[] = [];
afterAll(async () => {
  for (const driver of drivers) await driver.stop();
});

describe("restore of a strong folder by a version prefix", () => {
  test("an ambiguous prefix is 400 and proposes nothing; a unique one restores", async () => {
    const node = await memoryNode("n1");
    const driver = await leadAlone(node, drivers);
    const app = createApp(node, { consensus: driver });
    const post = async (path: string, body: unknown) => {
      const response = await app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as any };
    };
    expect((await post("/v1/folders", { name: "s", consistency: "strong" })).status).toBe(201);
    const objects = new MemoryObjects();
    const root = objects.tree({ "a.txt": "a" });
    await node.putObjects(objects.all());

    // Commits until two version ids share their first four hex digits (about 320 expected; bounded).
    const byPrefix = new Map<string, string>();
    let shared: { prefix: string; ids: string[] } | null = null;
    let head: string | null = null;
    for (let i = 0; i < 3000 && shared === null; i++) {
      const made = await post("/v1/folders/s/commit", { root: idToHex(root), parent: head, message: `commit ${i}`, chunking: "test", files: 1, bytes: 1 });
      expect(made.status).toBe(200);
      head = made.body.version as string;
      const prefix = head.slice(0, 4);
      const seen = byPrefix.get(prefix);
      if (seen) shared = { prefix, ids: [seen, head] };
      else byPrefix.set(prefix, head);
    }
    if (!shared) throw new Error("3000 versions and no two share four hex digits");

    const before = { applied: driver.status().applied, head: idToHex((await node.getFolder("s")).head!) };
    const refused = await post("/v1/folders/s/restore", { version: shared.prefix });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain("ambiguous");
    expect({ applied: driver.status().applied, head: idToHex((await node.getFolder("s")).head!) }).toEqual(before);

    // Long enough to name one of them: restored, through the log.
    const older = shared.ids[0]!;
    const restored = await post("/v1/folders/s/restore", { version: older.slice(0, 16) });
    expect(restored.status, JSON.stringify(restored.body)).toBe(200);
    expect(driver.status().applied).toBeGreaterThan(before.applied);
    // The version named, not another that shares the prefix: its message says which.
    expect((await node.resolveVersion("s", restored.body.version)).message).toBe(`restore ${older.slice(0, 12)}`);
  }, 60_000);
});
