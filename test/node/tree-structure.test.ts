// The node refuses a tree that breaks a structural rule across objects, at commit, even when
// the parts it is made of were accepted (and marked complete) by earlier commits; verify finds
// such a tree planted behind the commit's back (as an older dsync could have let it in); marks
// of an older data folder, which did not say what they vouched for, are dropped on upgrade.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { sealObject, type Version } from "../../src/core/objects.ts";
import { InvalidTreeError } from "../../src/node/closure.ts";
import { SQLITE_SCHEMA_VERSION, SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";
import { DsyncNode } from "../../src/node/node.ts";
import { openNode as openDataFolder } from "../../src/assemble.ts";
import { hostileTrees, type HostileCase } from "../helpers/hostile-trees.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterEach(() => cleanupTempDirs());

class ManualClock {
  constructor(public now = 1_800_000_000_000) {}
  nowMs = () => this.now;
}

const commitOf = (folder: string, root: ObjectId, parent: ObjectId | null) => ({ folder, root, parent, message: "", chunking: "test", files: 1, totalBytes: 1 });

async function openNode(dataDir = join(tempDir(), "data")) {
  return openDataFolder({ dataDir, clock: new ManualClock() });
}

/** Commits every earlier root of a case (each in its own folder), so its parts are marked complete. */
async function commitEarlier(node: DsyncNode, hostile: HostileCase) {
  await node.putObjects(hostile.objects);
  for (const [i, root] of hostile.earlier.entries()) await node.commit(commitOf(`earlier-${i}`, root, null));
}

/** Stores a version of `root` and makes it the folder's head without any check, as an older node might have. */
async function plantHead(node: DsyncNode, folder: string, root: ObjectId): Promise<ObjectId> {
  const version: Version = { kind: "version", root, parents: [], author: node.nodeId, hlcWallMs: 1, hlcCounter: 0, message: "planted", versionVector: [], chunking: "test" };
  const sealed = sealObject(version);
  await node.putObjects([sealed]);
  await node.metadata.ensureFolder(folder, 0);
  const record = { id: sealed.id, root, parents: [], author: node.nodeId, hlcWallMs: 1, hlcCounter: 0, message: "planted", origin: "push" as const, files: 0, totalBytes: 0, createdMs: 0 };
  await node.metadata.commitVersions(folder, null, sealed.id, [record], 0);
  return sealed.id;
}

describe("commit", () => {
  for (const hostile of hostileTrees()) {
    test(`refuses ${hostile.name}, even with its parts marked complete by earlier commits`, async () => {
      const node = await openNode();
      await commitEarlier(node, hostile);
      // The folder has a good head the hostile push would replace.
      const good = hostile.earlier[0]!;
      const head = (await node.commit(commitOf("f", good, null))).version;
      const marksBefore = (await node.metadata.listCompleteIds()).map(idToHex).sort();

      const error = await node.commit(commitOf("f", hostile.root, head)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidTreeError);
      expect((error as Error).message).toMatch(hostile.rule);
      expect(idToHex((await node.getFolder("f")).head!)).toBe(idToHex(head));
      expect((await node.listVersions("f")).length).toBe(1);
      expect((await node.metadata.listCompleteIds()).map(idToHex).sort()).toEqual(marksBefore);
      await node.close();
    });
  }

  test("a merge of a stale push marks only what its own check established", async () => {
    const node = await openNode();
    const [hostile] = hostileTrees();
    await commitEarlier(node, hostile!);
    const first = await node.commit(commitOf("f", hostile!.earlier[0]!, null));
    await node.commit(commitOf("f", hostile!.earlier[1]!, first.version));
    const merged = await node.commit(commitOf("f", hostile!.earlier[0]!, null));
    expect(merged.mergedWith).not.toBeNull();
    expect(await node.metadata.completeSummary(merged.root)).toMatchObject({ kind: "tree" });
    expect((await node.verify()).structure).toEqual([]);
    await node.close();
  });
});

describe("verify", () => {
  test("reports a planted tree that breaks a rule, per folder and version, beside healthy ones", async () => {
    const node = await openNode();
    const cases = hostileTrees();
    const healthy = cases[0]!;
    await commitEarlier(node, healthy);
    expect((await node.verify()).structure).toEqual([]);

    const planted: { folder: string; version: string; hostile: HostileCase }[] = [];
    for (const [i, hostile] of cases.entries()) {
      await node.putObjects(hostile.objects);
      const folder = `planted-${i}`;
      planted.push({ folder, version: idToHex(await plantHead(node, folder, hostile.root)), hostile });
    }
    const report = await node.verify();
    expect(report.structure.map((p) => p.folder).sort()).toEqual(planted.map((p) => p.folder).sort());
    for (const { folder, version, hostile } of planted) {
      const problem = report.structure.find((p) => p.folder === folder)!;
      expect(problem.version).toBe(version);
      expect(problem.object).toMatch(/^[0-9a-f]{64}$/);
      expect(`object ${problem.object} at ${JSON.stringify(problem.path)}: ${problem.problem}`).toMatch(hostile.rule);
    }
    expect(report.missing).toEqual([]);
    await node.close();
  });

  test("checks every kept version, not only the head, and the parts they share once", async () => {
    const node = await openNode();
    const [hostile] = hostileTrees();
    await node.putObjects(hostile!.objects);
    const bad = await plantHead(node, "f", hostile!.root);
    // A later, healthy head: the bad version is still kept, and a pull of it would fail.
    await node.commit(commitOf("f", hostile!.earlier[0]!, bad));
    const report = await node.verify();
    expect(report.structure.map((p) => [p.folder, p.version])).toEqual([["f", idToHex(bad)]]);
    await node.close();
  });
});

describe("completeness marks of an older data folder", () => {
  test("are dropped on upgrade: a file node an old mark vouched for cannot pass as a directory", async () => {
    const dataDir = join(tempDir(), "data");
    const cases = hostileTrees();
    const dirToFile = cases.find((c) => c.name === "a directory entry naming a file node")!;
    // A data folder as schema 1 left it, the file node marked complete without its kind.
    {
      const node = await openNode(dataDir);
      await node.putObjects(dirToFile.objects);
      await node.close();
      const db = new Database(join(dataDir, "metadata.sqlite"));
      db.exec("DROP TABLE checked_nodes; CREATE TABLE complete_objects (id BLOB PRIMARY KEY) WITHOUT ROWID; UPDATE meta SET value = '1' WHERE key = 'schema_version'");
      const insert = db.query("INSERT INTO complete_objects (id) VALUES (?)");
      for (const object of dirToFile.objects) insert.run(object.id);
      db.close();
    }
    const node = await openNode(dataDir);
    expect(await node.metadata.getMeta("schema_version")).toBe(String(SQLITE_SCHEMA_VERSION));
    expect(await node.metadata.listCompleteIds()).toEqual([]);
    const error = await node.commit(commitOf("f", dirToFile.root, null)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidTreeError);
    expect((await node.getFolder("f")).head).toBeNull();
    await node.close();
    // A data folder of a newer schema is refused rather than misread.
    const db = new Database(join(dataDir, "metadata.sqlite"));
    db.exec(`UPDATE meta SET value = '${SQLITE_SCHEMA_VERSION + 1}' WHERE key = 'schema_version'`);
    db.close();
    expect(() => SqliteMetadataStore.open(join(dataDir, "metadata.sqlite"))).toThrow(/newer/);
  });
});
