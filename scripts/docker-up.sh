#!/usr/bin/env bash
# Bring up a local Docker engine and the base image the project Dockerfile builds FROM.
#
# Idempotent and cheap when everything is already up (one `docker info`, one `docker image inspect`).
# On a fresh Debian 12 machine (as root, e.g. CI=true) it:
#   1. installs Debian's docker.io (dockerd, containerd, runc) and debootstrap if they are missing;
#   2. starts dockerd in the background if no engine answers, logging to $DOCKERD_LOG, and waits for it;
#   3. if $BASE_IMAGE is absent (there is no registry to pull from here), bootstraps it with
#      `debootstrap --variant=minbase` and `docker import`, slimmed the way the official
#      debian:bookworm-slim is, and with the host's extra CA certificates baked in (see below).
#
# Why the CA step: outbound HTTPS here goes through a TLS-intercepting proxy whose CA the host trusts
# (/usr/local/share/ca-certificates/*.crt). Containers built from a pristine rootfs do not, and pip inside
# `docker build` fails with CERTIFICATE_VERIFY_FAILED. Putting the CA into the *base* image keeps the
# project Dockerfile portable: against the real debian:bookworm-slim it needs no change at all.
#
# Settings (environment): BASE_IMAGE (debian:bookworm-slim), DOCKERD_LOG (/var/log/dockerd.log),
# DEBIAN_MIRROR (http://deb.debian.org), DOCKER_UP_TIMEOUT (60 s to wait for the engine),
# REBUILD_BASE=1 to re-bootstrap the base image even if it exists.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
SUITE=bookworm
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org}
DOCKER_UP_TIMEOUT=${DOCKER_UP_TIMEOUT:-60}
REBUILD_BASE=${REBUILD_BASE:-0}
HOST_EXTRA_CA_DIR=/usr/local/share/ca-certificates
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { echo "docker-up: $*" >&2; }
since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f s", e - s}'; }
die() {
  log "ERROR: $*"
  exit 1
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "needs root (or sudo) to install packages and start dockerd"
  SUDO="sudo"
fi

engine_up() { docker info >/dev/null 2>&1; }
base_present() { docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; }

start=$(date +%s.%N)
# Fast path: nothing to do.
if command -v docker >/dev/null && engine_up && base_present && [ "$REBUILD_BASE" != 1 ]; then
  log "engine up, $BASE_IMAGE present"
  exit 0
fi

# Serialise concurrent callers (two test sessions starting at once must not start two daemons).
LOCK=/run/lock/docker-up.lock
[ -w /run/lock ] || LOCK="${TMPDIR:-/tmp}/docker-up.lock"
exec 9>"$LOCK"
flock -w 600 9 || die "timed out waiting for another docker-up.sh"

install_packages() {
  local need=()
  command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
  command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
  ((${#need[@]})) || return 0
  log "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

start_engine() {
  engine_up && return 0
  local pidfile=/var/run/docker.pid pid=""
  [ -r "$pidfile" ] && pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) is running but not answering yet; waiting"
  elif [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    log "starting docker.service (systemd)"
    $SUDO systemctl start docker.service
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    $SUDO mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon must outlive this script and not get the caller's Ctrl-C / process-group kill.
    # 9>&-: the daemon must not inherit (and hold forever) our lock.
    $SUDO setsid -f sh -c "exec dockerd >>'$DOCKERD_LOG' 2>&1" </dev/null 9>&-
  fi
  local waited=0
  until engine_up; do
    if ((waited >= DOCKER_UP_TIMEOUT * 10)); then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      die "dockerd did not answer within ${DOCKER_UP_TIMEOUT}s (log above, full log: $DOCKERD_LOG)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  log "engine ready after $((waited / 10)).$((waited % 10))s"
}

# Unmount anything debootstrap left mounted inside ROOT (it mounts /proc and /sys in the chroot), so the
# cleanup below can never recurse into the host's /proc or /sys.
unmount_under() {
  local root=$1 mp
  while read -r mp; do
    $SUDO umount -l "$mp" 2>/dev/null || true
  done < <(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r)
}

# Make the minbase rootfs look like the official slim image: no docs/man/locales now or in later
# `apt-get install`s, apt caches cleaned after every install, and the security + updates suites enabled.
slim_rootfs() {
  local root=$1
  $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
# As in the official debian slim images: keep docs, man pages and translations out of the image.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-no-languages" >/dev/null <<'EOF'
Acquire::Languages "none";
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-autoremove-suggests" >/dev/null <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
  $SUDO rm -f "$root/etc/apt/sources.list"
  $SUDO tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $DEBIAN_MIRROR/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_MIRROR/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  upgrade_rootfs "$root"
  $SUDO find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  $SUDO find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  $SUDO rm -rf "$root"/usr/share/{man,info,groff,lintian,linda,locale}/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
}

# debootstrap installs the release's packages only; the official image also carries the security and
# point updates published since. Apply them too, so the image does not ship known-vulnerable libraries.
upgrade_rootfs() {
  local root=$1
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$root/usr/sbin/policy-rc.d" >/dev/null # start no services
  $SUDO chmod 0755 "$root/usr/sbin/policy-rc.d"
  $SUDO cp /etc/resolv.conf "$root/etc/resolv.conf"
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c \
    'apt-get update -qq && apt-get upgrade -y -qq --no-install-recommends && apt-get clean' \
    >"$root.upgrade.log" 2>&1; then
    tail -n 30 "$root.upgrade.log" >&2 || true
    die "apt-get upgrade in the new rootfs failed (log above)"
  fi
  $SUDO rm -f "$root.upgrade.log"
  $SUDO rm -f "$root/usr/sbin/policy-rc.d"
  # Docker provides these at run time; the image must not carry the host's.
  : | $SUDO tee "$root/etc/resolv.conf" "$root/etc/hostname" >/dev/null
}

# The TLS-interception CA (see the header). Only when the host has extra CAs; otherwise the base stays
# pristine. update-ca-certificates (run when the Dockerfile installs ca-certificates) merges the *.crt
# into the system store; pip does not read that store but /etc/pip.conf (also from inside a venv).
bake_host_ca() {
  local root=$1 crts=()
  shopt -s nullglob
  crts=("$HOST_EXTRA_CA_DIR"/*.crt)
  shopt -u nullglob
  ((${#crts[@]})) || return 0
  log "baking ${#crts[@]} extra host CA certificate(s) into $BASE_IMAGE"
  $SUDO mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl"
  $SUDO cp "${crts[@]}" "$root/usr/local/share/ca-certificates/"
  $SUDO cp "$HOST_CA_BUNDLE" "$root/etc/ssl/ci-host-ca-bundle.pem"
  printf '[global]\ncert = /etc/ssl/ci-host-ca-bundle.pem\n' | $SUDO tee "$root/etc/pip.conf" >/dev/null
  EXTRA_CA=true
}

bootstrap_base() {
  local root
  root=$($SUDO mktemp -d /var/tmp/base-rootfs.XXXXXX)
  $SUDO chmod 0755 "$root" # apt's sandbox user (_apt) must reach the chroot's cache and lists
  # shellcheck disable=SC2064  # expand $root now: the trap must clean this exact directory
  trap "unmount_under '$root'; $SUDO rm -rf --one-file-system '$root' '$root'.*.log" EXIT
  log "bootstrapping $BASE_IMAGE with debootstrap (about a minute)"
  local t0
  t0=$(date +%s.%N)
  if ! $SUDO debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR/debian" \
    >"$root.debootstrap.log" 2>&1; then
    tail -n 30 "$root.debootstrap.log" >&2 || true
    die "debootstrap failed (log above)"
  fi
  $SUDO rm -f "$root.debootstrap.log"
  log "debootstrap done ($(since "$t0"))"
  unmount_under "$root"
  t0=$(date +%s.%N)
  slim_rootfs "$root"
  log "security/point updates applied and rootfs slimmed ($(since "$t0"))"
  EXTRA_CA=false
  bake_host_ca "$root"
  $SUDO tar --numeric-owner -C "$root" -c . |
    docker import \
      --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL org.opencontainers.image.description=\"local debootstrap minbase $SUITE (docker-up.sh)\"" \
      --change "LABEL local.docker-up.extra-ca=$EXTRA_CA" \
      - "$BASE_IMAGE" >/dev/null
  unmount_under "$root"
  $SUDO rm -rf --one-file-system "$root"
  trap - EXIT
  log "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

install_packages
start_engine
if [ "$REBUILD_BASE" = 1 ] || ! base_present; then
  bootstrap_base
fi
log "ready in $(since "$start")"
