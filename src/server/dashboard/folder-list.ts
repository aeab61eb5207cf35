// The dashboard's list of folders. GET /v1/status describes at most a page of folders (the first
// by name) and says how many there are (`foldersTotal`); the rest are read from GET /v1/folders,
// following its `next` cursors (docs/api.md, Paging), up to a bound so a node with a million
// folders does not make the page ask for a thousand pages on every redraw. Pure: the caller
// passes the function that fetches one page.
import type { NodeStatus } from "../../client/remote.ts";

/** The most folders the front page lists; beyond it, it says "and N more". */
export const DASHBOARD_FOLDERS_MAX = 10_000;

type FolderSummary = NodeStatus["folders"][number];

/** A folder as GET /v1/folders lists it (the fields the front page shows). */
export interface ListedFolder {
  name: string;
  mode: string;
  head: string | null;
}

export interface FolderPage {
  folders: ListedFolder[];
  next: string | null;
}

/**
 * Follows the cursors from the first page until the last page or `max` folders. A node that
 * hands back the cursor it was given, or an empty page with a cursor, would have the page
 * asking forever: that is an error.
 */
export async function readFolderPages(fetchPage: (cursor: string | null) => Promise<FolderPage>, max: number): Promise<ListedFolder[]> {
  const folders: ListedFolder[] = [];
  let cursor: string | null = null;
  while (folders.length < max) {
    const page: FolderPage = await fetchPage(cursor);
    folders.push(...page.folders.slice(0, max - folders.length));
    if (page.next === null) break;
    if (page.next === cursor || page.folders.length === 0) throw new Error("the node sent a page of folders that does not advance");
    cursor = page.next;
  }
  return folders;
}

/** One row of the front page: the status's detail when it has the folder, else what the list says. */
export interface FolderRow {
  folder: ListedFolder;
  summary: FolderSummary | undefined;
}

/**
 * The rows of the front page, by name, and how many folders are left out. `listed` is what
 * readFolderPages read, or null when the status already holds every folder.
 */
export function folderRows(status: NodeStatus, listed: ListedFolder[] | null): { rows: FolderRow[]; notShown: number } {
  const summaries = new Map(status.folders.map((folder) => [folder.name, folder]));
  const rows: FolderRow[] =
    listed === null
      ? status.folders.map((summary) => ({ folder: summary, summary }))
      : listed.map((folder) => ({ folder, summary: summaries.get(folder.name) }));
  const total = Math.max(status.foldersTotal ?? status.folders.length, rows.length);
  return { rows, notShown: total - rows.length };
}
