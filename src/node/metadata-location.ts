// Where a node keeps its metadata: SQLite in the data folder (the default), or a PostgreSQL
// database (`--metadata postgres://USER@HOST:PORT/DB`, or DSYNC_METADATA). Objects stay in the
// data folder either way.
//
// A data folder is one node's, and its metadata is in one place: a folder that holds
// metadata.sqlite is not started on Postgres (its folders and heads are in that file; a node on
// Postgres would start without them), and a folder that ran on Postgres (it has DATA/node-id and
// no metadata.sqlite) is not started on a new, empty SQLite file. Either way the node refuses,
// naming the flag that starts it as it was.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { claimMetadata, NODE_ID_FILE_NAME } from "./metadata-claim.ts";
import { METADATA_FILE_NAME } from "./metadata-damage.ts";
import { PostgresMetadataStore, redactedUrl, type PostgresMetadataOptions } from "./postgres-metadata-store.ts";

export type MetadataLocation = { backend: "sqlite" } | { backend: "postgres"; url: string };

/** Why `text` names no metadata location, or undefined; accepted: "sqlite", postgres:// and postgresql:// URLs. */
export function metadataLocationProblem(text: string): string | undefined {
  if (text === "sqlite") return undefined;
  if (!/^postgres(ql)?:\/\//.test(text)) return `expected "sqlite" or a postgres://USER@HOST:PORT/DB URL, got ${JSON.stringify(text.slice(0, 100))}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not a URL: ${redactedUrl(text)}`;
  }
  if (!url.hostname) return `the URL names no host: ${redactedUrl(text)}`;
  if (url.pathname.length <= 1) return `the URL names no database (postgres://USER@HOST:PORT/DB): ${redactedUrl(text)}`;
  return undefined;
}

/** The location `text` names (undefined: the default, SQLite in the data folder); throws with metadataLocationProblem's words. */
export function parseMetadataLocation(text: string | undefined): MetadataLocation {
  if (text === undefined || text === "") return { backend: "sqlite" };
  const problem = metadataLocationProblem(text);
  if (problem) throw new Error(problem);
  return text === "sqlite" ? { backend: "sqlite" } : { backend: "postgres", url: text };
}

/** Why this data folder must not be started with its metadata at `location`, or undefined. */
export function metadataPlaceProblem(dataDir: string, location: MetadataLocation): string | undefined {
  const sqlitePath = join(dataDir, METADATA_FILE_NAME);
  if (location.backend === "postgres" && existsSync(sqlitePath)) {
    return (
      `${dataDir} keeps its metadata in ${sqlitePath}; started on PostgreSQL it would have none of its folders. ` +
      "Start it with --metadata sqlite (the default), or give the PostgreSQL node a data folder of its own"
    );
  }
  if (location.backend === "sqlite" && !existsSync(sqlitePath) && existsSync(join(dataDir, NODE_ID_FILE_NAME))) {
    return (
      `${dataDir} belongs to a node whose metadata is on PostgreSQL (it has ${NODE_ID_FILE_NAME} and no ${METADATA_FILE_NAME}); ` +
      "start it with --metadata and that database's URL (or DSYNC_METADATA)"
    );
  }
  return undefined;
}

/**
 * Opens a node's metadata on PostgreSQL and claims the database for this node and data folder
 * (metadata-claim.ts). Returns the store and the node id to run as; the store is closed again
 * when the claim is refused.
 */
export async function openPostgresNodeMetadata(
  url: string,
  dataDir: string,
  requestedNodeId: string | undefined,
  newNodeId: () => string,
  options: PostgresMetadataOptions = {},
): Promise<{ store: PostgresMetadataStore; nodeId: string }> {
  const problem = metadataPlaceProblem(dataDir, { backend: "postgres", url });
  if (problem) throw new Error(problem);
  // The data folder records the node id beside the objects (metadata-claim.ts).
  mkdirSync(dataDir, { recursive: true });
  const store = await PostgresMetadataStore.open(url, options);
  try {
    const nodeId = await claimMetadata(store, redactedUrl(url), dataDir, requestedNodeId, newNodeId);
    return { store, nodeId };
  } catch (error) {
    await store.close();
    throw error;
  }
}
