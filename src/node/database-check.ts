// SQLite's own integrity check of a database file, opened read-only on its own: for when a node
// cannot even open its data folder (a damaged page it must read at start), so `dsync verify`
// can still say which database is damaged and how, instead of only the error that stopped it.
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";

export function sqliteIntegrity(path: string): string {
  if (!existsSync(path)) return `${path} does not exist`;
  let db: Database | undefined;
  try {
    db = new Database(path, { readonly: true });
    const rows = db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").all();
    return rows.map((row) => row.integrity_check).join("; ");
  } catch (error) {
    return `integrity check failed: ${(error as Error).message}`;
  } finally {
    db?.close();
  }
}
