// The dashboard's folder list (src/server/dashboard/folder-list.ts): past the status's first page
// of folders it follows GET /v1/folders' cursors, up to a bound, and says how many it left out.
import { describe, expect, test } from "bun:test";
import type { NodeStatus } from "../../src/client/remote.ts";
import { DASHBOARD_FOLDERS_MAX, folderRows, readFolderPages, type FolderPage, type ListedFolder } from "../../src/server/dashboard/folder-list.ts";

const names = (count: number) => Array.from({ length: count }, (_, i) => `f-${String(i).padStart(6, "0")}`);

/** A node's GET /v1/folders over `all`, pages of `pageSize`, the cursor the last name of a page; records each cursor asked for. */
function pagedNode(all: string[], pageSize: number) {
  const asked: (string | null)[] = [];
  const fetchPage = async (cursor: string | null): Promise<FolderPage> => {
    asked.push(cursor);
    const start = cursor === null ? 0 : all.indexOf(cursor) + 1;
    const page = all.slice(start, start + pageSize);
    const next = start + pageSize < all.length ? page.at(-1)! : null;
    return { folders: page.map((name) => ({ name, mode: "eventual", head: null })), next };
  };
  return { asked, fetchPage };
}

describe("dashboard folder list", () => {
  test("every page is read, in order, each asked for with the cursor the one before gave", async () => {
    const all = names(2500);
    const node = pagedNode(all, 1000);
    const listed = await readFolderPages(node.fetchPage, DASHBOARD_FOLDERS_MAX);
    expect(listed.map((f) => f.name)).toEqual(all);
    expect(node.asked).toEqual([null, all[999]!, all[1999]!]);
  });

  test("it stops at the bound, and the rows say how many more the node has", async () => {
    const all = names(DASHBOARD_FOLDERS_MAX + 1500);
    const node = pagedNode(all, 1000);
    const listed = await readFolderPages(node.fetchPage, DASHBOARD_FOLDERS_MAX);
    expect(listed).toHaveLength(DASHBOARD_FOLDERS_MAX);
    expect(node.asked).toHaveLength(DASHBOARD_FOLDERS_MAX / 1000);
    const status: NodeStatus = { node: "n1", peers: [], folders: [], foldersTotal: all.length, replication: null };
    expect(folderRows(status, listed).notShown).toBe(1500);
  });

  test("a page that does not advance is an error, not a loop", async () => {
    const stuck = async (): Promise<FolderPage> => ({ folders: [{ name: "a", mode: "eventual", head: null }], next: "same" });
    await expect(readFolderPages(stuck, DASHBOARD_FOLDERS_MAX)).rejects.toThrow("does not advance");
    const empty = async (cursor: string | null): Promise<FolderPage> => ({ folders: [], next: cursor === null ? "x" : "y" });
    await expect(readFolderPages(empty, DASHBOARD_FOLDERS_MAX)).rejects.toThrow("does not advance");
  });

  test("rows take the status's detail for the folders it describes and the list's fields for the rest", () => {
    const summary = { name: "f-000000", mode: "eventual", head: "ab".repeat(32), vector: {}, files: 3, bytes: 9, peers: [] };
    const status: NodeStatus = { node: "n1", peers: [], folders: [summary], foldersTotal: 2, replication: null };
    const listed: ListedFolder[] = [
      { name: "f-000000", mode: "eventual", head: summary.head },
      { name: "f-000001", mode: "eventual", head: null },
    ];
    const { rows, notShown } = folderRows(status, listed);
    expect(rows.map((row) => [row.folder.name, row.summary?.files])).toEqual([
      ["f-000000", 3],
      ["f-000001", undefined],
    ]);
    expect(notShown).toBe(0);
    // A status that holds every folder needs no list.
    expect(folderRows({ ...status, foldersTotal: 1 }, null)).toEqual({ rows: [{ folder: summary, summary }], notShown: 0 });
  });
});
