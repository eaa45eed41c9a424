#!/usr/bin/env bash
# Install everything (Python packages, native tools, database servers), lint, check the
# format and the types, build the docs site, and run the whole test suite; the tests start
# and stop their own servers on loopback.
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/ensure-packages.sh
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
# Strict type check of the core, the drivers and the plugin template ([tool.mypy] in pyproject.toml).
.venv/bin/mypy --no-error-summary
# The docs as a site (mkdocs.yml), strictly: a broken link or anchor, or a page missing from
# the navigation, fails. Built into a temporary directory; its log is shown only on failure.
(
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  if ! log=$(NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site" 2>&1); then
    printf '%s\n' "$log" >&2
    exit 1
  fi
)
exec .venv/bin/pytest "$@"
