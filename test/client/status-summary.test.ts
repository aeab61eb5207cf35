// The words of a node's summary (src/client/status-summary.ts), shared by dsync status and the dashboard.
import { describe, expect, test } from "bun:test";
import type { NodeStatus } from "../../src/client/remote.ts";
import { folderCountNotShown, summaryLines } from "../../src/client/status-summary.ts";

const folder = (name: string): NodeStatus["folders"][number] => ({ name, mode: "eventual", head: null, vector: {}, peers: [] });

function status(folders: number, foldersTotal?: number): NodeStatus {
  return { node: "n1", peers: [], folders: Array.from({ length: folders }, (_, i) => folder(`f${i}`)), foldersTotal, replication: null };
}

describe("status summary", () => {
  test("a status holding a page of the folders says how many it shows of how many", () => {
    const lines = summaryLines(status(3, 1500), "http://node", 0);
    expect(folderCountNotShown(status(3, 1500))).toBe(1497);
    expect(lines.at(-1)).toBe("showing 3 of 1500 folders (the first by name; dsync ls lists every one)");
  });

  test("a status holding every folder, or from a node without foldersTotal, says nothing of it", () => {
    for (const whole of [status(3, 3), status(3)]) {
      expect(folderCountNotShown(whole)).toBe(0);
      expect(summaryLines(whole, "http://node", 0).some((line) => line.startsWith("showing"))).toBe(false);
    }
  });
});
