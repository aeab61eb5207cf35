#!/usr/bin/env bash
# Build the dsync container image without a container registry or a Docker engine, then check
# that the binary inside it works.
#
#   1. installs debootstrap, podman and buildah with apt-get when missing;
#   2. debootstraps a minbase Debian rootfs into a cache dir, once, and imports it as the
#      local base image (no registry pull);
#   3. runs `npm run build` when dist/dsync is missing or older than the sources;
#   4. `podman build --isolation=chroot` of the Dockerfile on that base;
#   5. checks the image with `buildah run --isolation=chroot`: --version, non-root user,
#      /data ownership, image config, the token refusal, and a real node answering
#      /v1/health from inside the container through the image's own health check.
#
# Idempotent: a second run reuses the rootfs, the base image and an up-to-date binary.
# Prints PASS/FAIL lines; exits non-zero when any check fails. Needs root (debootstrap,
# rootful podman storage). Slow on a first run (a few minutes), so it is not part of CI.
#
# Settings (environment):
#   DSYNC_IMAGE          image to build           (default localhost/dsync:dev)
#   DSYNC_BASE_IMAGE     local base image         (default localhost/dsync-base:bookworm)
#   DSYNC_ROOTFS_DIR     debootstrap cache dir    (default /var/tmp/dsync-rootfs)
#   DSYNC_SUITE          Debian suite             (default bookworm)
#   DSYNC_DEBIAN_MIRROR  Debian mirror URL        (default: the one in /etc/apt/sources.list*)
#   DSYNC_REBUILD_BASE=1 re-debootstrap and re-import the base image
#   DSYNC_SKIP_BUILD=1   use dist/dsync as it is, even if older than the sources
#   DSYNC_CHECK_PORT     loopback port for the in-container node (default 7799)
set -euo pipefail

cd "$(dirname "$0")/../.."
repo_root=$(pwd)

IMAGE=${DSYNC_IMAGE:-localhost/dsync:dev}
BASE_IMAGE=${DSYNC_BASE_IMAGE:-localhost/dsync-base:bookworm}
ROOTFS_DIR=${DSYNC_ROOTFS_DIR:-/var/tmp/dsync-rootfs}
SUITE=${DSYNC_SUITE:-bookworm}
CHECK_PORT=${DSYNC_CHECK_PORT:-7799}

log() { printf '==> %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  die "run as root (debootstrap and rootful podman need it): sudo $0"
fi

# --- 1. tools ------------------------------------------------------------------------------
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. base image -------------------------------------------------------------------------
# The mirror for $SUITE from the machine's own apt sources (deb822 .sources or one-line .list).
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^#/) continue
          if ($i ~ /^URIs:/)   { uris = $i;   sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
        }
        n = split(suites, s, /[ \t]+/)
        for (j = 1; j <= n; j++) if (s[j] == suite) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f"
  done
}

if [ "${DSYNC_REBUILD_BASE:-0}" = 1 ]; then
  log "DSYNC_REBUILD_BASE=1: discarding $ROOTFS_DIR and $BASE_IMAGE"
  rm -rf "$ROOTFS_DIR"
  podman image rm -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi

if [ -d "$ROOTFS_DIR" ]; then
  log "rootfs cached in $ROOTFS_DIR"
else
  mirror=${DSYNC_DEBIAN_MIRROR:-$(find_mirror | head -n 1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  log "debootstrap --variant=minbase $SUITE from $mirror into $ROOTFS_DIR"
  partial="$ROOTFS_DIR.partial"
  rm -rf "$partial"
  debootstrap --variant=minbase "$SUITE" "$partial" "$mirror" >"$partial.log" 2>&1 \
    || { tail -n 20 "$partial.log" >&2; die "debootstrap failed (log: $partial.log)"; }
  # Slim it down the way debian:*-slim images are: no package caches or lists, no manuals.
  # Copyright files stay. The host's resolver config and name are not carried into the image.
  rm -rf "$partial"/var/cache/apt/archives/*.deb "$partial"/var/cache/apt/*.bin \
    "$partial"/var/lib/apt/lists/* "$partial"/var/log/*.log "$partial"/var/log/apt/* \
    "$partial"/usr/share/man/* "$partial"/usr/share/info/* "$partial"/usr/share/locale/*
  find "$partial"/usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  : >"$partial"/etc/resolv.conf
  echo localhost >"$partial"/etc/hostname
  mv "$partial" "$ROOTFS_DIR"   # only a complete rootfs ever has the final name
  rm -f "$partial.log"
  podman image rm -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi

if podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE present"
else
  log "importing $ROOTFS_DIR as $BASE_IMAGE"
  tar --numeric-owner -C "$ROOTFS_DIR" -c . \
    | podman import --quiet --change 'CMD ["/bin/bash"]' --message "debootstrap --variant=minbase $SUITE" \
        - "$BASE_IMAGE" >/dev/null
fi

# --- 3. binary -----------------------------------------------------------------------------
sources=(cli src package.json package-lock.json bunfig.toml tsconfig.json)
if [ "${DSYNC_SKIP_BUILD:-0}" = 1 ]; then
  [ -x dist/dsync ] || die "DSYNC_SKIP_BUILD=1 but dist/dsync is missing"
  log "using dist/dsync as it is (DSYNC_SKIP_BUILD=1)"
elif [ ! -x dist/dsync ] || [ -n "$(find "${sources[@]}" -newer dist/dsync -type f -print -quit 2>/dev/null)" ]; then
  if [ ! -x node_modules/.bin/bun ]; then
    log "npm ci"
    npm ci --no-audit --no-fund
  fi
  log "npm run build (dist/dsync missing or older than the sources)"
  npm run build
else
  log "dist/dsync is up to date"
fi
host_version=$(./dist/dsync --version)

# --- 4. image ------------------------------------------------------------------------------
# --format docker keeps HEALTHCHECK, which the OCI image format has no field for.
log "podman build $IMAGE on $BASE_IMAGE"
previous_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman build --isolation=chroot --format docker --pull=never \
  --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" -f Dockerfile "$repo_root"
# A rebuild leaves the previous image untagged; drop it (only that one) so reruns do not pile up.
image_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$previous_id" ] && [ "$previous_id" != "$image_id" ]; then
  podman image rm "$previous_id" >/dev/null 2>&1 || true
fi

# --- 5. checks -----------------------------------------------------------------------------
failures=0
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...: PASS when the command succeeds
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

ctr=$(buildah from --pull=never "$IMAGE")
cleanup() { buildah rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
in_ctr() { buildah run --isolation=chroot "$ctr" -- "$@"; }

# The image's configuration.
config=$(podman image inspect --format \
  'user={{.Config.User}} entrypoint={{json .Config.Entrypoint}} cmd={{json .Config.Cmd}} ports={{json .Config.ExposedPorts}} volumes={{json .Config.Volumes}}' \
  "$IMAGE")
echo "    $config"
check "image runs as user dsync" [ "${config%% *}" = "user=dsync" ]
check "entrypoint is /usr/local/bin/dsync" grep -q 'entrypoint=\["/usr/local/bin/dsync"\]' <<<"$config"
check "default command serves /data on 0.0.0.0:7700" \
  grep -q 'cmd=\["serve","--data","/data","--listen","0.0.0.0:7700"\]' <<<"$config"
check "exposes 7700/tcp and declares volume /data" grep -q '"7700/tcp".*"/data"' <<<"$config"
healthcheck=$(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE" 2>/dev/null || true)
echo "    healthcheck=$healthcheck"
check "HEALTHCHECK runs dsync-healthcheck" grep -q 'dsync-healthcheck' <<<"$healthcheck"
env_out=$(podman image inspect --format '{{json .Config.Env}}' "$IMAGE")
no_token_in_env() { ! grep -q DSYNC_TOKEN <<<"$env_out"; }
check "no DSYNC_TOKEN baked into the image" no_token_in_env

# The binary runs.
if version=$(in_ctr /usr/local/bin/dsync --version 2>&1); then
  echo "    dsync --version: $version"
  check "dsync --version runs in the image and matches dist/dsync ($host_version)" [ "$version" = "$host_version" ]
else
  echo "    $version"
  fail "dsync --version runs in the image"
fi

# Non-root, and /data belongs to that user.
uid=$(in_ctr id -u 2>&1 || true)
echo "    id inside: $(in_ctr id 2>&1 || true)"
non_root() { [[ $uid =~ ^[0-9]+$ ]] && [ "$uid" -ne 0 ]; }
check "user inside is non-root (id -u = $uid)" non_root
data_owner=$(in_ctr stat -c '%u:%g %a' /data 2>&1 || true)
check "/data is owned by the container user ($data_owner)" [ "${data_owner%%:*}" = "$uid" ]

# No token and a non-loopback address: the node must refuse to start (and exit, not hang).
refusal=$(in_ctr timeout 20 /usr/local/bin/dsync serve --data /tmp/dsync-refuse --listen 0.0.0.0:7700 2>&1) \
  && refusal_rc=0 || refusal_rc=$?
echo "    without a token: exit $refusal_rc: ${refusal:0:120}"
refused() { [ "$refusal_rc" -ne 0 ] && [ "$refusal_rc" -ne 124 ] && grep -q "refusing to listen" <<<"$refusal"; }
check "default listen address without DSYNC_TOKEN is refused" refused

# A real node inside the container, reached from inside the same container with the image's
# own health check (bash /dev/tcp). The server is stopped by the same script, on any exit.
# Loopback only: the container shares the host's network under chroot isolation.
if (exec 3<>"/dev/tcp/127.0.0.1/$CHECK_PORT") 2>/dev/null; then
  fail "port $CHECK_PORT is already in use on this machine (set DSYNC_CHECK_PORT)"
else
  # shellcheck disable=SC2016 # expanded inside the container
  serve_script='
    set -u
    port=$1
    rm -rf /tmp/dsync-check
    DSYNC_TOKEN=check-token /usr/local/bin/dsync serve --data /tmp/dsync-check \
      --listen "127.0.0.1:$port" >/tmp/dsync-check.log 2>&1 &
    server=$!
    trap "kill \$server 2>/dev/null; wait \$server 2>/dev/null" EXIT
    healthy=0
    for _ in $(seq 1 40); do
      if out=$(DSYNC_HEALTH_PORT=$port /usr/local/bin/dsync-healthcheck 2>&1); then healthy=1; break; fi
      kill -0 $server 2>/dev/null || break
      sleep 0.25
    done
    echo "health-check: $healthy $out"
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3
    echo "health-body: $(tail -n 1 <&3)"
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf "GET /v1/folders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3
    echo "no-token-status: $(head -n 1 <&3)"
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf "GET /v1/folders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer check-token\r\nConnection: close\r\n\r\n" >&3
    echo "token-status: $(head -n 1 <&3)"
    echo "server-log: $(head -n 1 /tmp/dsync-check.log)"
    kill $server; wait $server; echo "server-exit: $?"
    trap - EXIT
    rm -rf /tmp/dsync-check /tmp/dsync-check.log
  '
  serve_out=$(in_ctr /bin/bash -c "$serve_script" serve-check "$CHECK_PORT" 2>&1 || true)
  while IFS= read -r line; do echo "    $line"; done <<<"$serve_out"
  check "dsync serve inside the image answers /v1/health (dsync-healthcheck)" grep -q '^health-check: 1 ' <<<"$serve_out"
  check "/v1/health reports ok and the native BLAKE3 backend" \
    grep -q '^health-body: .*"ok":true.*"blake3":"@napi-rs/blake-hash (native)"' <<<"$serve_out"
  token_enforced() {
    grep -q '^no-token-status: HTTP/1.1 401' <<<"$serve_out" && grep -q '^token-status: HTTP/1.1 200' <<<"$serve_out"
  }
  check "other routes need the token (401 without, 200 with)" token_enforced
  check "node stops cleanly on SIGTERM" grep -q '^server-exit: 0$' <<<"$serve_out"
fi

# --- summary -------------------------------------------------------------------------------
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")
binary_size=$(stat -c %s dist/dsync)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "image $IMAGE: $(mib "$size") (base $(mib "$base_size"), dsync binary $(mib "$binary_size"))"
if [ "$failures" -eq 0 ]; then
  echo "PASS: all image checks passed"
else
  echo "FAIL: $failures image check(s) failed"
  exit 1
fi
