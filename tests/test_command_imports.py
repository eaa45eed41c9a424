"""What a backup imports: not the monitoring types, secrets, tempfile or decimal (each costs every command 1-5 ms)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import dbkeeper.plugin
from dbkeeper.plugin import monitoring
from helpers import BIN

NOT_NEEDED = {"dbkeeper.plugin.monitoring", "secrets", "tempfile", "random", "decimal"}


def test_every_public_name_imports_in_a_fresh_interpreter() -> None:
    """``from dbkeeper.plugin import X`` works for every name in ``__all__``, the lazy ones included."""
    names = ", ".join(dbkeeper.plugin.__all__)
    code = f"import sys; from dbkeeper.plugin import {names}; print('dbkeeper.plugin.monitoring' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert not hasattr(dbkeeper.plugin, "NoSuchName")


def test_the_lazy_names_are_exactly_the_monitoring_types() -> None:
    """Every name of ``__all__`` that ``dbkeeper.plugin.monitoring`` defines is imported on first use, no other."""
    defined_there = {
        name
        for name in dbkeeper.plugin.__all__
        if name in vars(monitoring)
        and getattr(vars(monitoring)[name], "__module__", "typing") in (monitoring.__name__, "typing")
    }
    assert defined_there == dbkeeper.plugin._MONITORING


def test_a_backup_does_not_import_what_it_does_not_use(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE t (x)")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "dbkeeper"), "-q", "backup", f"sqlite:///{database}", "--dir",
         str(tmp_path / "backups")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "dbkeeper_sqlite.files" in imported  # the backup did run here
    assert not imported & NOT_NEEDED
