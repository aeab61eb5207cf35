// Conflict copy names: the marker, the writer's time in UTC and its node, the extension kept.
import { expect, test } from "bun:test";
import { conflictCopyName, utcStampText } from "../../src/core/conflict-name.ts";

test("names keep the extension and carry time and node", () => {
  const at = Date.UTC(2026, 10, 25, 12, 30, 5);
  expect(conflictCopyName("report.txt", at, "node-a")).toBe("report.sync-conflict-20261125-123005-node-a.txt");
  expect(conflictCopyName("Makefile", at, "n1")).toBe("Makefile.sync-conflict-20261125-123005-n1");
  expect(conflictCopyName(".profile", at, "n1")).toBe(".profile.sync-conflict-20261125-123005-n1");
  expect(conflictCopyName("archive.tar.gz", at, "n1")).toBe("archive.tar.sync-conflict-20261125-123005-n1.gz");
});

test("a long name is shortened in its stem, never past the filesystem limit", () => {
  const name = "x".repeat(250) + ".txt";
  const copy = conflictCopyName(name, 0, "node");
  expect(Buffer.byteLength(copy)).toBeLessThanOrEqual(255);
  expect(copy.endsWith(".sync-conflict-19700101-000000-node.txt")).toBe(true);
});

test("the UTC stamp agrees with the calendar across leap days and centuries", () => {
  for (const ms of [0, Date.UTC(2000, 1, 29), Date.UTC(2100, 2, 1, 23, 59, 59), Date.UTC(1999, 11, 31, 23, 59, 59), Date.UTC(2024, 1, 29, 1, 2, 3), -1000]) {
    const want = new Date(ms).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
    expect(utcStampText(ms)).toBe(want);
  }
});
