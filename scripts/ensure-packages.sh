#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks need, when they are missing:
# the native peers (sqlite3, zstd) and the database servers the tests start themselves.
# Installing starts nothing: the tests run their own throwaway servers on loopback.
set -euo pipefail

want=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || want+=("${@:2}"); }
need sqlite3 sqlite3
need zstd zstd
need /usr/lib/postgresql/15/bin/postgres postgresql-15
need pg_dump postgresql-client-15
need mariadbd mariadb-server
need mariadb mariadb-client

if [ ${#want[@]} -gt 0 ]; then
  echo "installing Debian packages: ${want[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  # Debian's packaging may start a server; this project runs its own, so stop any it started.
  command -v service >/dev/null && { service mariadb stop || service postgresql stop || true; } >/dev/null 2>&1
fi
