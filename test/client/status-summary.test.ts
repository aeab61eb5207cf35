// The words of a node's summary (src/client/status-summary.ts), shared by dsync status and the dashboard.
import { describe, expect, test } from "bun:test";
import type { NodeStatus } from "../../src/client/remote.ts";
import { folderContentText, folderCountNotShown, folderPeerText, lagText, summaryLines } from "../../src/client/status-summary.ts";

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

  test("the metadata store is named with its size where the node knows it, and not at all by an older node", () => {
    expect(summaryLines({ ...status(0), metadata: { backend: "sqlite", sizeBytes: 2048 } }, "http://node", 0)[1]).toBe("metadata: sqlite, 2.0 KiB");
    expect(summaryLines({ ...status(0), metadata: { backend: "postgres", sizeBytes: null } }, "http://node", 0)[1]).toBe("metadata: postgres");
    expect(summaryLines(status(0), "http://node", 0).some((line) => line.startsWith("metadata"))).toBe(false);
  });

  test("counts are in words: one of a thing is singular, any other number plural", () => {
    const withFiles = (files: number) => folderContentText({ ...folder("f"), head: "ab".repeat(32), files, bytes: 0 }, 0);
    expect(withFiles(1)).toBe("1 file, 0 B");
    expect(withFiles(2)).toBe("2 files, 0 B");
    expect(withFiles(0)).toBe("0 files, 0 B");
    const peer = (state: string, behindWrites: number, aheadWrites: number) => ({ peer: "http://p", node: "n2", head: null, state, behindWrites, aheadWrites });
    expect(folderPeerText(peer("behind", 1, 0), 0)).toBe("behind: this node lacks 1 write the peer has");
    expect(folderPeerText(peer("ahead", 0, 3), 0)).toBe("ahead: the peer lacks 3 writes");
    expect(folderPeerText(peer("diverged", 1, 1), 0)).toBe("diverged: this node lacks 1 write, the peer lacks 1 write");
    expect(folderPeerText(peer("in-sync", 0, 0), 1)).toBe("in sync, but corrupt: 1 object quarantined here await repair");
    expect(lagText({ writes: 1, lagMs: 0 })).toBe("lags 1 write");
    expect(lagText({ writes: 2, lagMs: 0 })).toBe("lags 2 writes");
  });
});
