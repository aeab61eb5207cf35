#!/usr/bin/env bash
# npm test: the whole suite (or the files given) with a real PostgreSQL for the tests that run
# the metadata on Postgres. When DSYNC_TEST_POSTGRES_URL names a cluster already (CI starts one),
# that one is used; otherwise a throwaway cluster is started (scripts/postgres-test-cluster.sh)
# and removed at the end. Where PostgreSQL is not installed this says so and runs the tests
# anyway: the Postgres tests then fail, saying how to get one.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DSYNC_TEST_POSTGRES_URL:-}" ]; then
  cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/dsync-test-postgres-XXXXXX")
  if url=$(scripts/postgres-test-cluster.sh start "$cluster_dir"); then
    trap 'scripts/postgres-test-cluster.sh stop "$cluster_dir" >/dev/null 2>&1' EXIT
    trap 'exit 130' INT TERM
    export DSYNC_TEST_POSTGRES_URL=$url
  else
    rm -rf "$cluster_dir"
    echo "test: no PostgreSQL cluster could be started (above); the tests that need one will fail" >&2
  fi
fi

bun test "$@"
