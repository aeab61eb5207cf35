// Trees that break a structural rule across objects, against real dsync processes: a hostile
// client's upload and commit gets 422 naming the object and the rule, and the head stays; a tree
// planted in a data folder behind the commit's back is reported by `dsync verify` (exit 1).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { sealObject, type Version } from "../../src/core/objects.ts";
import { openNode } from "../../src/assemble.ts";
import { encodeObjectBatch } from "../../src/wire/formats.ts";
import { hostileTrees } from "../helpers/hostile-trees.ts";
import { runCli, sharedNode, startNode, tempDir } from "../helpers/processes.ts";

const node = sharedNode();
const bin = (bytes: Uint8Array) => bytes as unknown as BodyInit;

async function upload(objects: { id: ObjectId; bytes: Uint8Array }[]) {
  const response = await fetch(`${node().url}/v1/objects/upload`, { method: "POST", body: bin(encodeObjectBatch(objects)) });
  expect(response.status).toBe(200);
}

function commit(folder: string, root: ObjectId, parent: string | null) {
  return fetch(`${node().url}/v1/folders/${folder}/commit`, { method: "POST", body: JSON.stringify({ root: idToHex(root), parent }) });
}

describe("a hostile client's commit", () => {
  for (const [i, hostile] of hostileTrees().entries()) {
    test(`gets 422 and leaves the head: ${hostile.name}`, async () => {
      await upload(hostile.objects);
      // Its parts, committed first as valid directories, are marked complete on the node.
      for (const [j, root] of hostile.earlier.entries()) expect((await commit(`parts-${i}-${j}`, root, null)).status).toBe(200);
      const folder = `hostile-${i}`;
      const first = await commit(folder, hostile.earlier[0]!, null);
      expect(first.status).toBe(200);
      const head = (await first.json()).version as string;

      const response = await commit(folder, hostile.root, head);
      expect(response.status).toBe(422);
      const body = (await response.json()) as { error: string; object: string; path: string; rule: string };
      expect(body.error).toMatch(hostile.rule);
      expect(body.error).toContain(`object ${body.object} at `);
      expect(body.object).toMatch(/^[0-9a-f]{64}$/);
      expect(typeof body.path).toBe("string");
      expect(body.error.endsWith(body.rule)).toBe(true);
      const after = await (await fetch(`${node().url}/v1/folders/${folder}`)).json();
      expect(after.head).toBe(head);
    });
  }
});

describe("dsync verify", () => {
  test("reports a tree planted in the data folder, by folder, version and object, and exits 1", async () => {
    const dataDir = join(tempDir(), "data");
    const hostile = hostileTrees().find((c) => c.name.startsWith("a directory in one page"))!;
    let versionHex: string;
    {
      // What an older node, which checked less at commit, could have let in.
      const local = await openNode({ dataDir });
      await local.putObjects(hostile.objects);
      const version: Version = { kind: "version", root: hostile.root, parents: [], author: local.nodeId, hlcWallMs: 1, hlcCounter: 0, message: "", versionVector: [], chunking: "test" };
      const sealed = sealObject(version);
      await local.putObjects([sealed]);
      await local.metadata.ensureFolder("planted", 0);
      await local.metadata.commitVersions("planted", null, sealed.id, [{ id: sealed.id, root: hostile.root, parents: [], author: local.nodeId, hlcWallMs: 1, hlcCounter: 0, message: "", origin: "push", files: 0, totalBytes: 0, createdMs: 0 }], 0);
      versionHex = idToHex(sealed.id);
      await local.close();
    }
    const offline = await runCli(["verify", "--data", dataDir, "--json"]);
    expect(offline.code).toBe(1);
    const report = offline.json();
    expect(report.healthy).toBe(false);
    expect(report.structure).toEqual([
      { folder: "planted", version: versionHex, object: expect.stringMatching(/^[0-9a-f]{64}$/), path: "(page 0 of a level-1 node)", problem: expect.stringMatching(/unique and sorted across pages/) },
    ]);

    const running = await startNode({ dataDir });
    try {
      const online = await runCli(["verify", "--remote", running.url]);
      expect(online.code).toBe(1);
      expect(online.stdout).toContain("1 invalid tree;");
      expect(online.stdout).toContain(`version ${versionHex}`);
    } finally {
      await running.stop();
    }
  });
});
