// --metadata and DSYNC_METADATA: what names a location, and which data folders refuse which.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { metadataLocationProblem, metadataPlaceProblem, parseMetadataLocation } from "../../src/node/metadata-location.ts";
import { cleanupTempDirs, tempDir } from "../helpers/processes.ts";

afterAll(() => cleanupTempDirs());

test("sqlite, nothing, and postgres URLs with a host and a database are locations; anything else says what is expected", () => {
  expect(parseMetadataLocation(undefined)).toEqual({ backend: "sqlite" });
  expect(parseMetadataLocation("sqlite")).toEqual({ backend: "sqlite" });
  expect(parseMetadataLocation("postgres://dsync@127.0.0.1:5432/meta")).toEqual({ backend: "postgres", url: "postgres://dsync@127.0.0.1:5432/meta" });
  expect(parseMetadataLocation("postgresql://db/meta").backend).toBe("postgres");
  expect(metadataLocationProblem("mysql://x/y")).toContain('expected "sqlite" or a postgres://');
  expect(metadataLocationProblem("postgres://dsync@127.0.0.1:5432")).toContain("names no database");
  expect(metadataLocationProblem("postgres://dsync:hunter2@127.0.0.1:5432/")).not.toContain("hunter2");
  expect(() => parseMetadataLocation("SQLite")).toThrow('expected "sqlite"');
});

test("a folder with metadata.sqlite is not started on Postgres; one that ran on Postgres is not started on a new SQLite file", () => {
  const postgres = { backend: "postgres" as const, url: "postgres://x@h/db" };
  const fresh = tempDir();
  expect(metadataPlaceProblem(fresh, postgres)).toBeUndefined();
  expect(metadataPlaceProblem(fresh, { backend: "sqlite" })).toBeUndefined();
  const sqliteNode = tempDir();
  writeFileSync(join(sqliteNode, "metadata.sqlite"), "");
  expect(metadataPlaceProblem(sqliteNode, postgres)).toContain("--metadata sqlite");
  expect(metadataPlaceProblem(sqliteNode, { backend: "sqlite" })).toBeUndefined();
  const postgresNode = tempDir();
  writeFileSync(join(postgresNode, "node-id"), "n1\n");
  expect(metadataPlaceProblem(postgresNode, { backend: "sqlite" })).toContain("metadata is on PostgreSQL");
  expect(metadataPlaceProblem(postgresNode, postgres)).toBeUndefined();
});
