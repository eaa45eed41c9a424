"""Notes (``dbkeeper.plugin.note``): log records for library code; ``note: …`` lines in the CLI.

The CLI side under ``--quiet`` is exercised by the MySQL restore tests, whose settle notes
(``always=True``) must show with ``-q``.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, sys
from dbkeeper.plugin import note
note("an aside")                 # INFO: nothing, unless the program configures logging
note("something changed", always=True)
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(message)s", force=True)
note("now configured")
"""


def test_library_code_sees_notes_as_log_records() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    assert run.stderr == "something changed\n"  # Python's last-resort handler shows WARNING records only
    assert run.stdout == "INFO now configured\n"
