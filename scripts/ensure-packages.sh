#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks need, when they are missing:
# the native peers (sqlite3, zstd) and the database servers the tests start themselves.
# Installing starts nothing: the tests run their own throwaway servers on loopback.
#
# Three more packages are only extracted, never installed (no service, no user, nothing
# started): prometheus for its promtool (tests/promtool.py), and the exporters
# prometheus-postgres-exporter and prometheus-mysqld-exporter that benchmarks/metrics.py
# compares dbkeeper with. 'apt-get download' + 'dpkg -x' unpack each into
# .tools/deb/PACKAGE/ (git-ignored); their programs run from .tools/deb/PACKAGE/usr/bin/.
#
# Another apt or dpkg process (unattended-upgrades, a second terminal) may hold the
# package locks: each apt-get waits for them up to APT_LOCK_TIMEOUT seconds (default
# 300) in all, then fails with apt's own message. Packages already installed are never
# upgraded, and only a server this script installed is stopped afterwards.
set -euo pipefail

lock_timeout=${APT_LOCK_TIMEOUT:-300}
lock_poll=${APT_LOCK_POLL:-5} # seconds between two attempts at a lock apt-get cannot wait for itself

want=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || want+=("${@:2}"); }
need sqlite3 sqlite3
need zstd zstd
need jq jq # the docs' checked examples of reading a manifest by hand
need tmux tmux # tests/test_top.py drives dbkeeper top in a real terminal
need age age # the stock age CLI: recovering an encrypted backup without dbkeeper (tests/test_encryption*)
need /usr/lib/postgresql/15/bin/postgres postgresql-15
need pg_dump postgresql-client-15
need mariadbd mariadb-server
need mariadb mariadb-client

tools=$(cd "$(dirname "$0")/.." && pwd)/.tools/deb
unpack=()
extracted() { [ -x "$tools/$2/usr/bin/$1" ] || unpack+=("$2"); }
extracted promtool prometheus
extracted prometheus-postgres-exporter prometheus-postgres-exporter
extracted prometheus-mysqld-exporter prometheus-mysqld-exporter

# apt-get ARGS..., waiting for another process's locks until $deadline. DPkg::Lock::Timeout
# covers dpkg's frontend lock; 'apt-get update' does not wait for the package lists' lock
# (/var/lib/apt/lists/lock), so a refusal naming a lock is retried every $lock_poll seconds.
apt_get() {
  local errors status
  while true; do
    status=0
    { errors=$(apt-get -o DPkg::Lock::Timeout="$(remaining)" "$@" 2>&1 >&3) || status=$?; } 3>&1
    if [ "$status" -eq 0 ]; then
      [ -z "$errors" ] || printf '%s\n' "$errors" >&2
      return 0
    fi
    if ! grep -q 'Could not get lock' <<<"$errors" || [ "$(remaining)" -le 0 ]; then
      printf '%s\n' "$errors" >&2
      [ "$(remaining)" -gt 0 ] || echo "gave up after waiting ${lock_timeout}s (APT_LOCK_TIMEOUT) for apt's locks" >&2
      return "$status"
    fi
    echo "another apt or dpkg process holds a package lock; waiting (up to $(remaining)s more)" >&2
    sleep "$lock_poll"
  done
}

# Seconds left before $deadline, never negative.
remaining() {
  local left=$((deadline - SECONDS))
  echo $((left > 0 ? left : 0))
}

# Stop the service of each server package just installed (Debian's packaging may start
# one; this project runs its own). A server that was already installed is left alone.
stop_started_servers() {
  command -v service >/dev/null || return 0
  local package
  for package in "${want[@]}"; do
    case "$package" in
      mariadb-server) service mariadb stop >/dev/null 2>&1 || true ;;
      postgresql-15) service postgresql stop >/dev/null 2>&1 || true ;;
    esac
  done
}

# Download each package of $unpack (without its dependencies: the three are static Go
# programs) into a temporary directory and extract it into $tools/PACKAGE; an extraction
# that fails half-way leaves no PACKAGE directory behind, so the next run tries again.
unpack_packages() {
  local package
  downloads=$(mktemp -d)
  trap 'rm -rf "$downloads"' EXIT
  # As root, apt downloads as the unprivileged _apt user, who cannot write into mktemp's directory.
  (cd "$downloads" && apt_get download -qq -o APT::Sandbox::User=root "${unpack[@]}" >/dev/null)
  mkdir -p "$tools"
  for package in "${unpack[@]}"; do
    rm -rf "$tools/$package" "$tools/$package.partial"
    dpkg -x "$downloads/${package}"_*.deb "$tools/$package.partial"
    mv "$tools/$package.partial" "$tools/$package"
  done
}

export DEBIAN_FRONTEND=noninteractive
deadline=$((SECONDS + lock_timeout))
lists_updated=false
if [ ${#want[@]} -gt 0 ]; then
  echo "installing Debian packages: ${want[*]}" >&2
  apt_get update -qq
  lists_updated=true
  apt_get install -y -qq --no-install-recommends --no-upgrade "${want[@]}" >/dev/null
  stop_started_servers
fi
if [ ${#unpack[@]} -gt 0 ]; then
  echo "extracting Debian packages into .tools/deb: ${unpack[*]}" >&2
  # A clean machine's package lists may not know them yet.
  if ! $lists_updated && ! apt-cache show "${unpack[@]}" >/dev/null 2>&1; then
    apt_get update -qq
  fi
  unpack_packages
fi
