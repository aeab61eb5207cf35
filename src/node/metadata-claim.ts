// Which node a metadata database belongs to. A node whose metadata is on a database server keeps
// its objects in its data folder, so the two halves of one node live apart, and nothing but
// this stops two nodes from being pointed at one database by accident (a copied config, a
// second node started with the first one's URL): they would share folders, heads and a node
// id, and write each other's version vectors as their own.
//
// So a database belongs to one node id, recorded in it (meta "node_id", claimed atomically: of
// two nodes starting at once on an empty database, one gets it), and the data folder records
// the same id in DATA/node-id. A node starts only where the two agree:
// - database and folder both new: a new node; both record its id;
// - the database has an id and the folder has none: refused (another node's database), unless
//   --node-id names that id (this folder is deliberately that node's new data folder);
// - both have ids and they differ, or --node-id differs from the database's: refused;
// - the folder has an id and the database none (a new, empty database for a known node): the
//   database takes the folder's id (or --node-id's), and its folders come back from peers.
//
// One database per node, not a schema per node: the rule is one line for an operator to
// follow, and a database is what backups, permissions and connection limits are set on.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { nodeIdProblem } from "./node-id.ts";

export const NODE_ID_FILE_NAME = "node-id";

/** What the claim needs of a store: the node id it holds, and an atomic first write of it. */
export interface ClaimableMetadata {
  getMeta(key: string): Promise<string | undefined>;
  claimMeta(key: string, value: string): Promise<string>;
}

/** The database belongs to another node, or the data folder does: nothing was changed. */
export class MetadataClaimError extends Error {
  override name = "MetadataClaimError";
}

/** The node id recorded in a data folder, or undefined for a folder that has none. */
export function folderNodeId(dataDir: string): string | undefined {
  const path = join(dataDir, NODE_ID_FILE_NAME);
  if (!existsSync(path)) return undefined;
  const id = readFileSync(path, "utf8").trim();
  const problem = nodeIdProblem(id);
  if (problem) throw new MetadataClaimError(`${path} does not hold a node id (${problem}); it says which node this data folder belongs to`);
  return id;
}

/** Writes the folder's node id durably: a temporary file, fsync, rename, fsync of the folder. */
function writeFolderNodeId(dataDir: string, id: string): void {
  const path = join(dataDir, NODE_ID_FILE_NAME);
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, "w", 0o644);
  try {
    writeSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dir = openSync(dataDir, "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Decides which node id this node runs as, by the rules above, records it in the database and
 * the data folder, and returns it; throws MetadataClaimError (changing nothing) where the
 * database or the folder belongs to another node. `location` names the database in messages.
 */
export async function claimMetadata(
  store: ClaimableMetadata,
  location: string,
  dataDir: string,
  requestedNodeId: string | undefined,
  newNodeId: () => string,
): Promise<string> {
  const inDatabase = await store.getMeta("node_id");
  const inFolder = folderNodeId(dataDir);
  const own = "give each node a database of its own (CREATE DATABASE), or start this data folder with the database it ran with";
  if (inDatabase !== undefined) {
    if (requestedNodeId !== undefined && requestedNodeId !== inDatabase) {
      throw new MetadataClaimError(`the metadata database ${location} belongs to node ${inDatabase}, not to --node-id ${requestedNodeId}: ${own}`);
    }
    if (inFolder !== undefined && inFolder !== inDatabase) {
      throw new MetadataClaimError(`the metadata database ${location} belongs to node ${inDatabase}, but the data folder ${dataDir} belongs to node ${inFolder}: ${own}`);
    }
    if (inFolder === undefined && requestedNodeId === undefined) {
      throw new MetadataClaimError(
        `the metadata database ${location} belongs to node ${inDatabase}, whose data folder is not ${dataDir} (it has no ${NODE_ID_FILE_NAME}): ` +
          `two nodes must not share one database; ${own}. If ${dataDir} is meant to become node ${inDatabase}'s data folder, start it once with --node-id ${inDatabase}`,
      );
    }
  }
  const id = requestedNodeId ?? inDatabase ?? inFolder ?? newNodeId();
  const claimed = await store.claimMeta("node_id", id);
  if (claimed !== id) {
    // Another node claimed the empty database between our read and our write.
    throw new MetadataClaimError(`the metadata database ${location} was just claimed by node ${claimed}: ${own}`);
  }
  if (inFolder !== id) writeFolderNodeId(dataDir, id);
  return id;
}
