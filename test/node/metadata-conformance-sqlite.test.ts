// The MetadataStore contract (test/helpers/metadata-conformance.ts) on SQLite: a fresh file per test.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { runMetadataConformance } from "../helpers/metadata-conformance.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

runMetadataConformance("SqliteMetadataStore", {
  backend: "sqlite",
  freshLocation: async () => join(tempDir("dsync-metadata-"), "metadata.sqlite"),
  cleanup: async () => cleanupTempDirs(),
  exec: async (location, sql) => {
    const db = new Database(location);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  },
});
