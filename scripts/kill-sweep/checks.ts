// What the kill sweep checks on disk after a kill, without any node's help: SQLite integrity of
// every database in a folder, dsync temp files left visible in a pulled directory, and the root
// id a directory's tree has (computed here, so an acknowledged version can be checked against
// the bytes that were pushed: equal ids mean equal bytes).
import { Database } from "bun:sqlite";
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CHUNKER_PARAMS } from "../../src/core/fastcdc.ts";
import { idToHex } from "../../src/core/id.ts";
import { scanDirectory, TEMP_FILE_PREFIX } from "../../src/fs/scanner.ts";
import { STATE_DIR_NAME } from "../../src/client/local-state.ts";

const SQLITE_HEADER = "SQLite format 3\0";

export interface IntegrityResult {
  /** Database files checked. */
  files: number;
  /** One line per database that is not "ok" (or could not be opened). */
  problems: string[];
}

function isSqliteFile(path: string): boolean {
  const header = Buffer.alloc(SQLITE_HEADER.length);
  const fd = openSync(path, "r");
  try {
    return readSync(fd, header, 0, header.length, 0) === header.length && header.toString("latin1") === SQLITE_HEADER;
  } finally {
    closeSync(fd);
  }
}

/** Every SQLite database under dir (by header, so -wal and -shm files are not counted). */
export function findSqliteFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const child = join(path, name);
      const stats = lstatSync(child);
      if (stats.isDirectory()) walk(child);
      else if (stats.isFile() && stats.size >= SQLITE_HEADER.length && isSqliteFile(child)) out.push(child);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/**
 * PRAGMA integrity_check on every SQLite file under dir, each opened read-only (its WAL is read,
 * not checkpointed), so what is checked is what the next process to open it would see. Call it
 * with no process holding the files open for writing (killed or stopped).
 */
export function checkSqliteIntegrity(dir: string): IntegrityResult {
  const files = findSqliteFiles(dir);
  const problems: string[] = [];
  for (const path of files) {
    try {
      const db = new Database(path, { readonly: true });
      try {
        const rows = db.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
        const text = rows.map((row) => row.integrity_check).join("; ");
        if (text !== "ok") problems.push(`${path}: ${text}`);
      } finally {
        db.close();
      }
    } catch (error) {
      problems.push(`${path}: cannot open read-only: ${(error as Error).message}`);
    }
  }
  return { files: files.length, problems };
}

/** Paths (relative to dir) of dsync temp files anywhere in a synced directory's tree. */
export function findTempFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(dir, relative))) {
      if (relative === "" && name === STATE_DIR_NAME) continue;
      const path = relative === "" ? name : `${relative}/${name}`;
      if (name.startsWith(TEMP_FILE_PREFIX)) out.push(path);
      if (lstatSync(join(dir, path)).isDirectory()) walk(path);
    }
  };
  walk("");
  return out.sort();
}

/** The root id (hex) a push of dir makes: the same scan as the client's, with nothing stored. */
export async function treeRootHex(dir: string): Promise<string> {
  const result = await scanDirectory(dir, {
    chunker: DEFAULT_CHUNKER_PARAMS,
    excludeTopLevel: [STATE_DIR_NAME],
    sink: { object() {} },
  });
  if (result.skipped.length > 0) throw new Error(`the workload tree has paths a push skips: ${result.skipped.map((s) => s.path).join(", ")}`);
  return idToHex(result.rootId);
}
