#!/usr/bin/env bash
# Install everything (scripts/setup.sh), lint, and run the whole test suite.
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
command -v sqlite3 >/dev/null && command -v zstd >/dev/null || {
  echo "installing the native peers the tests compare against (sqlite3, zstd)" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends sqlite3 zstd >/dev/null
}
.venv/bin/ruff check --quiet .
exec .venv/bin/pytest "$@"
