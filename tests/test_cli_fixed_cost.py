"""What the CLI does to start and end quickly leaves nothing behind: the collector, exit statuses, output."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BIN

CHECK_COLLECTOR = """
import atexit, gc, json, sys
if sys.argv[1] == "off":
    gc.disable()
from dbkeeper.cli import main

start_up = []  # the collections that ran before the command's module was imported
gc.callbacks.append(
    lambda phase, info: phase == "start" and "dbkeeper.cli.backup_commands" not in sys.modules and start_up.append(info)
)
atexit.register(lambda: print(json.dumps([len(start_up), gc.isenabled(), gc.get_freeze_count() > 1000])))
main(["-q", "backup", "sqlite:///" + sys.argv[2], "--dir", sys.argv[3]])
"""


@pytest.mark.parametrize("state", ["on", "off"])
def test_the_start_up_runs_no_collection_and_the_command_finds_the_collector_as_it_was(
    state: str, tmp_path: Path
) -> None:
    """main() pauses the collector while it starts up, freezes what start-up made, and resumes it for the command."""
    sqlite3.connect(tmp_path / "x.db").close()
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_COLLECTOR, state, str(tmp_path / "x.db"), str(tmp_path / "backups")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(proc.stdout.splitlines()[-1]) == [0, state == "on", True]


def test_the_fast_exit_keeps_statuses_and_flushes_everything_written() -> None:
    """os._exit skips Python's teardown, not the flush of stdout nor the exit status."""
    listed = subprocess.run([str(BIN / "dbkeeper"), "plugins", "--json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and json.loads(listed.stdout)["plugins"]  # the whole document arrived
    usage = subprocess.run([str(BIN / "dbkeeper"), "backup", "--no-such-flag"], capture_output=True, timeout=60)
    assert usage.returncode == 2
    failed = subprocess.run([str(BIN / "dbkeeper"), "backup", "nosuch:///x"], capture_output=True, timeout=60)
    assert failed.returncode == 1 and failed.stderr.startswith(b"error: ")


CHECK_KEEP = """
import gc, json
from dbkeeper.system.collector import collector_paused
before = gc.get_freeze_count()
with collector_paused(keep=True):
    kept = [[i] for i in range(1000)]
after = gc.get_freeze_count()
with collector_paused():
    other = [[i] for i in range(1000)]
print(json.dumps([after - before >= 1000, gc.get_freeze_count() == after, gc.isenabled()]))
"""


def test_only_a_kept_block_moves_its_objects_out_of_the_collections() -> None:
    """``keep=True`` freezes what is alive at the end (start-up's modules, plugins); a plain pause freezes nothing."""
    proc = subprocess.run([sys.executable, "-c", CHECK_KEEP], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(proc.stdout) == [True, True, True]
