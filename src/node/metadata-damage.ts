// A damaged metadata.sqlite: the node's only copy of its folders, heads and history (the
// version objects are in the object store, but which folder each belongs to, and which is its
// head, is known only here). Unlike the object index it cannot be rebuilt from local data, so
// the node refuses to start on it, changes nothing, and says which file and what to do next,
// rather than failing later mid-request or, worse, starting with no folders.
import { Database } from "bun:sqlite";
import { isSqliteDamage } from "../store/sqlite-damage.ts";

export const METADATA_FILE_NAME = "metadata.sqlite";

export class MetadataDamagedError extends Error {
  override name = "MetadataDamagedError";

  constructor(
    readonly path: string,
    readonly problem: string,
    /** This node's id, when it could still be read from the damaged file. */
    readonly nodeId: string | undefined,
    /** Found by a running node (a request failed), rather than at open (the node did not start). */
    readonly whileRunning = false,
  ) {
    super(
      `the metadata database ${path} is damaged (${problem}); it holds this node's folders, heads and history, ` +
        (whileRunning
          ? "and this request could not be answered. Next step: stop the node (it will not start on the damaged file), keep a copy of the data folder, "
          : "so the node does not start on it, and nothing was changed. Next step: keep a copy of the data folder, ") +
        `then recover from a peer: move ${path} (and any ${path}-wal, ${path}-shm) aside ` +
        `and start the node again with its peers${nodeId ? ` and --node-id ${nodeId}` : " and its old --node-id"}; ` +
        "its folders, heads and history come back from the peers, and the objects stored here are kept " +
        "(docs/reliability.md, \"A damaged metadata database\")",
    );
  }
}

/**
 * SQLite's quick check (every page read; 38-175 ms for 100 000 versions, a 21 MB file:
 * scripts/bench/quick-check.ts) of an existing metadata file, on a read-write connection of its
 * own that is closed before this returns: closing the last connection removes the -wal and
 * -shm files the open made, so a refusal leaves the data folder as it was (a read-only
 * connection leaves them behind). Undefined when the file is sound; otherwise what is wrong,
 * and the node id if that one row can still be read.
 */
export function metadataDamage(path: string): { problem: string; nodeId: string | undefined } | undefined {
  let db: Database | undefined;
  try {
    db = new Database(path);
    const rows = db.query<{ quick_check: string }, []>("PRAGMA quick_check").all();
    const problem = rows.map((row) => row.quick_check).join("; ");
    return problem === "ok" ? undefined : { problem, nodeId: nodeIdIn(db) };
  } catch (error) {
    if (!isSqliteDamage(error)) throw error;
    return { problem: (error as Error).message, nodeId: db === undefined ? undefined : nodeIdIn(db) };
  } finally {
    db?.close();
  }
}

function nodeIdIn(db: Database): string | undefined {
  try {
    return db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'node_id'").get()?.value;
  } catch {
    return undefined;
  }
}
