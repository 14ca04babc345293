#!/usr/bin/env bash
# Stop the Docker engine that scripts/docker-up.sh started (the dockerd in /var/run/docker.pid).
#
# Images (including the bootstrapped base image) are kept in /var/lib/docker, so the next docker-up.sh
# takes about a second. Running containers are stopped by dockerd on its way down; they are listed first
# so nobody is surprised. Settings: DOCKER_DOWN_TIMEOUT (40 s of grace before SIGKILL).
set -euo pipefail

PIDFILE=/var/run/docker.pid
DOCKER_DOWN_TIMEOUT=${DOCKER_DOWN_TIMEOUT:-40}

log() { echo "docker-down: $*" >&2; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# On a systemd machine the service restarts a killed daemon: stop it through systemd instead.
if [ -d /run/systemd/system ] && systemctl is-active --quiet docker.service 2>/dev/null; then
  log "stopping docker.service (systemd)"
  $SUDO systemctl stop docker.service docker.socket
  exit 0
fi

pid=""
[ -r "$PIDFILE" ] && pid=$(cat "$PIDFILE")
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  log "no dockerd running (nothing in $PIDFILE)"
  exit 0
fi
if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
  log "pid $pid in $PIDFILE is not dockerd; leaving it alone"
  exit 1
fi

running=$(docker ps --format '{{.Names}} ({{.Image}})' 2>/dev/null || true)
[ -z "$running" ] || log "stopping running containers with the engine: $(echo "$running" | paste -sd, -)"

log "stopping dockerd (pid $pid)"
$SUDO kill -TERM "$pid"
for _ in $(seq $((DOCKER_DOWN_TIMEOUT * 10))); do
  kill -0 "$pid" 2>/dev/null || {
    log "stopped"
    exit 0
  }
  sleep 0.1
done
log "dockerd did not stop within ${DOCKER_DOWN_TIMEOUT}s; sending SIGKILL"
$SUDO kill -KILL "$pid" 2>/dev/null || true
exit 1
