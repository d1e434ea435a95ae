#!/usr/bin/env bash
# Installs what questline's run and tests need and is missing, from Debian's
# packages: clickhouse-server and clickhouse-client (the tests start their own
# server processes), kcat (an independent Kafka client for interop tests),
# prometheus (promtool), prometheus-alertmanager (amtool) and docker-compose
# (to check docker-compose.yml). Go itself must already be on the PATH.
#
#   scripts/deps.sh        everything the tests need (make test)
#   scripts/deps.sh run    only what the quick start needs (make run):
#                          ClickHouse and curl, so a first run starts sooner
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have clickhouse-server || [[ -x /usr/sbin/clickhouse-server ]] || need+=(clickhouse-server)
have clickhouse-client || need+=(clickhouse-client)
have curl || need+=(curl)
if [[ "${1:-}" != run ]]; then
  have kcat || need+=(kcat)
  have promtool || need+=(prometheus)
  have amtool || need+=(prometheus-alertmanager)
  have docker-compose || need+=(docker-compose)
fi

if ! have go; then
  echo "deps: Go is not on the PATH (expected at /usr/local/go/bin)" >&2
  exit 1
fi
# Go 1.21 or later fetches the toolchain go.mod names; an older go refuses
# go.mod with a message that does not say so.
if [[ $(go env GOVERSION 2>/dev/null) =~ ^go1\.([0-9]+) ]] && ((BASH_REMATCH[1] < 21)); then
  echo "deps: $(go env GOVERSION) is too old: questline needs Go 1.21 or later (which fetches the $(sed -n 's/^go //p' go.mod) toolchain go.mod names; https://go.dev/dl/)" >&2
  exit 1
fi

if ((${#need[@]})); then
  echo "deps: installing ${need[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # env, not a prefix: sudo's env_reset drops the variable.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package may start a system clickhouse-server on 9000; questline's
# tests use their own servers on free ports, so that one is left alone.
echo "deps: ok"
