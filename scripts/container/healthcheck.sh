#!/bin/bash
# Container health check for a dsync node: GET /v1/health and succeed when the node answers
# 200 with "ok":true. Installed in the image as /usr/local/bin/dsync-healthcheck.
#
# Images built from debian:bookworm-slim (or a minbase debootstrap) have no curl or wget, and
# installing one would need the network at build time. bash is an Essential package in
# Debian, and Debian's bash has /dev/tcp redirections, so plain bash can speak the few
# bytes of HTTP this needs. Nothing else is used: no grep, no coreutils.
#
# Usage: dsync-healthcheck [HOST [PORT]]
#   HOST defaults to $DSYNC_HEALTH_HOST or 127.0.0.1, PORT to $DSYNC_HEALTH_PORT or 7700.
#   Exit status: 0 healthy, 1 otherwise (what HEALTHCHECK expects).

host=${1:-${DSYNC_HEALTH_HOST:-127.0.0.1}}
port=${2:-${DSYNC_HEALTH_PORT:-7700}}
timeout=${DSYNC_HEALTH_TIMEOUT:-3}

# The braces keep bash's own connect error quiet without redirecting stderr for good.
if ! { exec 3<>"/dev/tcp/${host}/${port}"; } 2>/dev/null; then
  echo "dsync-healthcheck: cannot connect to ${host}:${port}" >&2
  exit 1
fi

printf 'GET /v1/health HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\nConnection: close\r\n\r\n' \
  "$host" "$port" >&3

status_line=""
response=""
# `read -t` bounds each wait, so a server that keeps the connection open cannot hang the check.
# The body has no trailing newline: the last `read` fails at end of input but still fills $line.
while true; do
  line=""
  IFS= read -r -t "$timeout" line <&3
  rc=$?
  [ -z "$status_line" ] && status_line=${line%$'\r'}
  response+="${line}"$'\n'
  [ "$rc" -eq 0 ] || break
done
exec 3<&-

case "$status_line" in
  "HTTP/1."?" 200"*) ;;
  *)
    echo "dsync-healthcheck: unexpected status from ${host}:${port}: ${status_line:-<none>}" >&2
    exit 1
    ;;
esac
case "$response" in
  *'"ok":true'*)
    echo "dsync-healthcheck: ${host}:${port} healthy"
    exit 0
    ;;
esac
echo "dsync-healthcheck: ${host}:${port} answered without \"ok\":true" >&2
exit 1
