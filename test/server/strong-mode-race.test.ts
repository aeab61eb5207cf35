// The mode-change race: a commit to an eventual folder reads the folder's mode, and before its
// compare-and-set the Raft log turns the same folder strong (its creation, committed elsewhere,
// applied here). Once the log made a folder strong, no local compare-and-set may move its head:
// the eventual move is refused in the same step that checks the mode, and the commit is made
// again through the log, from the head the log knows. One node whose Raft group is itself (the
// real driver, the node's real metadata); the log's creation is applied at exactly that moment.
import { afterAll, describe, expect, test } from "bun:test";
import { idToHex, type ObjectId } from "../../src/core/id.ts";
import { FolderModeChangedError, type CommitConditions, type NewVersionRecord } from "../../src/node/metadata-records.ts";
import type { RaftDriver } from "../../src/consensus/raft-driver.ts";
import { memoryNode } from "../helpers/memory-node.ts";
import { leadAlone } from "../helpers/strong-single-node.ts";
import { MemoryObjects } from "../helpers/memory-objects.ts";

const drivers: RaftDriver[] = [];
afterAll(async () => {
  for (const driver of drivers) await driver.stop();
});

describe("an eventual commit racing the log turning its folder strong", () => {
  test("the eventual compare-and-set is refused, and the commit goes through the log instead", async () => {
    const node = await memoryNode("n1");
    const driver = await leadAlone(node, drivers);
    const tree = async (files: Record<string, string>): Promise<ObjectId> => {
      const objects = new MemoryObjects();
      const root = objects.tree(files);
      await node.putObjects(objects.all());
      return root;
    };

    // An eventual folder with a head, made while this node did not hear the log.
    const first = await node.commit({ folder: "f", root: await tree({ "a.txt": "a" }), parent: null, message: "eventual", chunking: "test", files: 1, totalBytes: 1 });
    expect((await node.getFolder("f")).mode).toBe("eventual");

    // The next eventual compare-and-set of f: the log's creation of f is applied just before it.
    const metadata = node.metadata;
    const realCommit = metadata.commitVersions.bind(metadata);
    const raced: { outcome?: "moved" | "refused" | string } = {};
    let armed = true;
    metadata.commitVersions = async (folder: string, expected: ObjectId | null, head: ObjectId, versions: readonly NewVersionRecord[], nowMs: number, conditions?: CommitConditions) => {
      if (armed && folder === "f") {
        armed = false;
        expect(await driver.propose({ op: "createFolder", folder: "f", keepVersions: null, keepDays: null, atMs: nowMs }, 5_000)).toEqual({ applied: true });
        expect((await metadata.getFolder("f"))!.mode).toBe("strong");
        try {
          await realCommit(folder, expected, head, versions, nowMs, conditions);
          raced.outcome = "moved";
        } catch (error) {
          raced.outcome = error instanceof FolderModeChangedError ? "refused" : String(error);
          throw error;
        }
        return;
      }
      return realCommit(folder, expected, head, versions, nowMs, conditions);
    };

    const appliedBefore = driver.status().applied;
    const second = await node.commit({ folder: "f", root: await tree({ "b.txt": "b" }), parent: first.version, message: "second", chunking: "test", files: 1, totalBytes: 1 });
    // The local move was refused; the log moved the head (its applied index went on past the creation).
    expect(raced.outcome).toBe("refused");
    expect(driver.status().applied).toBeGreaterThanOrEqual(appliedBefore + 2);
    const folder = await node.getFolder("f");
    expect(folder.mode).toBe("strong");
    expect(idToHex(folder.head!)).toBe(idToHex(second.version));
    // The eventual history stays reachable: the pushed version sits on the old head.
    const pushed = await node.resolveVersion("f", idToHex(second.pushed));
    expect(pushed.parents.map(idToHex)).toEqual([idToHex(first.version)]);
  }, 30_000);
});
