#!/usr/bin/env bash
# Install everything (Python packages, native tools, database servers), lint, and run the
# whole test suite; the tests start and stop their own servers on loopback.
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/ensure-packages.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/pytest "$@"
