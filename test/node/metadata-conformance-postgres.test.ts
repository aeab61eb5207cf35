// The MetadataStore contract (test/helpers/metadata-conformance.ts) on PostgreSQL: a database of
// its own per test on the cluster named by DSYNC_TEST_POSTGRES_URL (npm test starts one; without
// it every test here fails, saying how to start one).
import { runMetadataConformance } from "../helpers/metadata-conformance.ts";
import { dropTestDatabases, freshDatabase, withConnection } from "../helpers/postgres.ts";

runMetadataConformance("PostgresMetadataStore", {
  backend: "postgres",
  freshLocation: () => freshDatabase(),
  cleanup: () => dropTestDatabases(),
  exec: async (location, sql) => {
    await withConnection(location, (db) => db.unsafe(sql).simple());
  },
});
