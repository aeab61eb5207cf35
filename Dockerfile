# Container image for a dsync node.
#
# Single stage on purpose: the image only copies the prebuilt `dist/dsync`, which is built
# outside the image by `npm run build` (a self-contained Bun executable). Building inside the
# image would need Node.js and npm in the base plus access to the npm registry during the
# build; the plain Debian base has neither, and scripts/container/build-image.sh builds
# offline from a locally debootstrapped base. So: run `npm run build` first (the script does
# it when dist/dsync is missing or older than the sources), then build this file.
#
#   npm run build
#   docker build -t dsync .                      # any engine that can pull debian:bookworm-slim
#   scripts/container/build-image.sh             # here: local base, podman, then checks
#
# The binary embeds a native BLAKE3 addon built for glibc, so the base must be glibc-based
# (Debian, Ubuntu, ...); Alpine/musl or distroless-static will not run it. It also uses bash
# for the health check below; bash is Essential in Debian, so every Debian base has it.
# See docs/container.md.

ARG BASE=debian:bookworm-slim
FROM ${BASE}

ARG DSYNC_UID=10001
ARG DSYNC_GID=10001

LABEL org.opencontainers.image.title="dsync" \
      org.opencontainers.image.description="Self-hosted file synchronization node" \
      org.opencontainers.image.licenses="UNLICENSED"

# Non-root user that owns the data volume. Written straight into /etc/passwd and /etc/group
# when useradd is absent (a minbase debootstrap may not have the passwd package), so this
# step needs nothing from the network on any Debian-like base.
RUN set -eu; \
    if command -v groupadd >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1; then \
      groupadd --gid "${DSYNC_GID}" dsync; \
      useradd --no-log-init --uid "${DSYNC_UID}" --gid "${DSYNC_GID}" --home-dir /data \
        --no-create-home --shell /usr/sbin/nologin dsync; \
    else \
      echo "dsync:x:${DSYNC_GID}:" >> /etc/group; \
      echo "dsync:x:${DSYNC_UID}:${DSYNC_GID}:dsync:/data:/usr/sbin/nologin" >> /etc/passwd; \
    fi; \
    mkdir -p /data; \
    chown "${DSYNC_UID}:${DSYNC_GID}" /data; \
    chmod 0750 /data

COPY --chmod=0755 dist/dsync /usr/local/bin/dsync
COPY --chmod=0755 scripts/container/healthcheck.sh /usr/local/bin/dsync-healthcheck

# DSYNC_TOKEN is deliberately not set here. The default command listens on 0.0.0.0:7700,
# and `dsync serve` refuses to listen beyond loopback without a token, so the container
# exits at start unless it gets one:
#   docker run -e DSYNC_TOKEN=... ...        (or --token on the command line)
# or the network is trusted and `--insecure` is passed explicitly in the command.

USER dsync
WORKDIR /data
VOLUME /data
EXPOSE 7700

# GET /v1/health (needs no token) over bash's /dev/tcp: the base has no curl. Checks port 7700
# on loopback; if the command listens elsewhere, set DSYNC_HEALTH_PORT (and DSYNC_HEALTH_HOST).
# Kept only in Docker-format images (podman/buildah: --format docker); OCI images drop it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/dsync-healthcheck"]

ENTRYPOINT ["/usr/local/bin/dsync"]
CMD ["serve", "--data", "/data", "--listen", "0.0.0.0:7700"]
