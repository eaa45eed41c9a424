#!/usr/bin/env bash
# Install dbkeeper, its first-party plugins and the development tools into ./.venv.
# Idempotent and quiet when nothing changed. Needs only python3 (3.11+) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_SYSTEM_CERTS=1 UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
if [ ! -x .tools/bin/uv ]; then
  python3 -m venv .tools
  .tools/bin/pip install --quiet uv
fi
.tools/bin/uv sync --quiet --locked --all-packages --compile-bytecode --python "$(command -v python3)"
# The workspace's own packages are editable installs, which --compile-bytecode skips: compile
# them too, or every command recompiles them (~30 ms) where bytecode writing is off.
.venv/bin/python -m compileall -q core/src plugins/*/src
