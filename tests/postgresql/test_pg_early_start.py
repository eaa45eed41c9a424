"""A backup whose arguments ask for other than what the command line began early still comes out right.

``dbkeeper backup URL`` begins PostgreSQL's head start (snapshot) with the driver's default
format and options before the arguments are parsed (dbkeeper.cli.early). A backup that asks for
another format or more jobs stops that one — its psql and its server session go — and makes
its own: the backup is the one asked for, and nothing of the first is left.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from pg_server import Server
from test_pg_prepare import WITHIN, processes_mentioning

from helpers import dbkeeper


@pytest.mark.parametrize(("extra", "fmt"), [(["--format", "sql"], "sql"), (["--jobs", "2"], "custom")])
def test_a_backup_asking_for_another_format_or_jobs_stops_the_early_head_start(
    pg: Server, tmp_path: Path, extra: list[str], fmt: str
) -> None:
    marker = f"early{os.getpid()}{fmt}{len(extra)}"
    pg.app_database(f"early_{fmt}", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
    url = pg.url(f"early_{fmt}", query=f"application_name={marker}")
    made = dbkeeper("-q", "backup", url, "--dir", str(tmp_path / "b"), "--json", *extra)
    manifest = json.loads(made.out)
    assert manifest["format"] == fmt and manifest["row_counts"] == {"public.t": 100}
    assert processes_mentioning(marker) == []
    deadline = time.monotonic() + WITHIN  # the server ends a session whose client is gone on its own time
    while pg.psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{marker}'").strip() != "0":
        assert time.monotonic() < deadline, "a head start's session is still open on the server"
        time.sleep(0.05)
    dbkeeper("-q", "verify", manifest["id"], "--dir", str(tmp_path / "b"))
