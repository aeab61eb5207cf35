// How the metadata conformance suite opens each implementation of MetadataStore on a database
// given by a location string (a file path for SQLite, a URL for Postgres), in the test process
// and in the child process the crash test kills.
import type { MetadataStore } from "../../src/node/metadata-store.ts";
import { PostgresMetadataStore } from "../../src/node/postgres-metadata-store.ts";
import { SqliteMetadataStore } from "../../src/node/sqlite-metadata-store.ts";

export type MetadataBackendName = "sqlite" | "postgres";

/** One store instance (its own connections) on the database at `location`. */
export async function openStoreOn(backend: MetadataBackendName, location: string): Promise<MetadataStore> {
  if (backend === "sqlite") return SqliteMetadataStore.open(location);
  return PostgresMetadataStore.open(location, { maxConnections: 4 });
}
