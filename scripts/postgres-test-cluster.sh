#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests that run the metadata on Postgres: its own data
# folder, its own socket folder, trust authentication for the superuser "postgres", listening
# on 127.0.0.1 only, on a free port.
#
#   scripts/postgres-test-cluster.sh start [DIR]   make (initdb, once) and start the cluster in DIR;
#                                                  prints its URL (also kept in DIR/url)
#   scripts/postgres-test-cluster.sh halt [DIR]    stop the server, keep the cluster (start resumes it
#                                                  on the same port)
#   scripts/postgres-test-cluster.sh stop [DIR]    stop the server and delete DIR
#
# DIR defaults to ${TMPDIR:-/tmp}/dsync-postgres-test, so by hand:
#   export DSYNC_TEST_POSTGRES_URL=$(scripts/postgres-test-cluster.sh start)
#   npx bun test test/node/metadata-conformance-postgres.test.ts
#   scripts/postgres-test-cluster.sh stop
#
# initdb and the server refuse to run as root; run as root, the cluster belongs to the system
# user "postgres" (Debian's postgresql package makes it) and both run as that user. The tools
# are looked for on PATH, then in /usr/lib/postgresql/*/bin (Debian puts them there).
set -euo pipefail

command=${1:-}
dir=${2:-${TMPDIR:-/tmp}/dsync-postgres-test}

die() {
  echo "postgres-test-cluster: $*" >&2
  exit 1
}

find_tool() {
  local tool=$1 candidate
  if command -v "$tool" >/dev/null 2>&1; then
    command -v "$tool"
    return
  fi
  # The highest installed version first.
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$candidate/$tool" ]; then
      echo "$candidate/$tool"
      return
    fi
  done
  die "$tool not found on PATH nor in /usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql)"
}

# Runs a command as the cluster's owner: the postgres user when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a system user \"postgres\" to own the cluster (Debian's postgresql package makes it)"
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local initdb pg_ctl port attempt
  initdb=$(find_tool initdb)
  pg_ctl=$(find_tool pg_ctl)
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_owner "$initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      as_owner "$initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
      die "initdb failed (see $dir/initdb.log)"
  fi
  if as_owner "$pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    cat "$dir/url"
    return
  fi
  # A port chosen before is kept, so a halted cluster comes back at the same URL; a new one
  # takes a random free port, tried again elsewhere if something took it meanwhile.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if [ -f "$dir/port" ]; then
      port=$(cat "$dir/port")
    else
      port=$((20000 + RANDOM % 40000))
      if port_in_use "$port"; then continue; fi
    fi
    # Enough connections for several nodes' pools and the conformance suite's racing stores.
    if as_owner "$pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null 2>&1; then
      echo "$port" >"$dir/port.tmp" && mv "$dir/port.tmp" "$dir/port"
      echo "postgres://postgres@127.0.0.1:$port/postgres" >"$dir/url"
      chmod 644 "$dir/url" "$dir/port"
      cat "$dir/url"
      return
    fi
    if [ -f "$dir/port" ]; then die "the server did not start on port $port (see $dir/postgres.log)"; fi
  done
  die "the server did not start (see $dir/postgres.log)"
}

halt() {
  local pg_ctl
  pg_ctl=$(find_tool pg_ctl)
  [ -f "$dir/data/PG_VERSION" ] || die "no cluster in $dir"
  if as_owner "$pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_owner "$pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  fi
}

stop() {
  if [ -f "$dir/data/PG_VERSION" ]; then halt; fi
  rm -rf "$dir"
}

case "$command" in
  start) start ;;
  halt) halt ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|halt|stop [DIR]" >&2
    exit 2
    ;;
esac
