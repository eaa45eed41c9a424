"""The control session's psql without Debian's pg_wrapper, where the wrapper's choice is provably the same."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pg_server import APP_PASSWORD, APP_USER, Server

from dbkeeper_postgresql.pg_wrapper import WRAPPER, wrapped_psql
from helpers import BIN

TARGET = {"host": "127.0.0.1", "port": "5432", "dbname": "postgres"}


def wrapper_psql() -> str:
    """The ``psql`` on PATH, which must be the wrapper here (Debian's postgresql-common)."""
    psql = shutil.which("psql")
    assert psql and os.path.realpath(psql) == WRAPPER, f"psql on PATH is {psql}, not a link to {WRAPPER}"
    return psql


def test_the_wrapper_runs_the_same_psql_in_the_same_environment(pg: Server) -> None:
    """What the wrapper execs, seen from inside psql (``\\!`` runs a shell whose parent is psql)."""
    target = {"host": "127.0.0.1", "port": str(pg.port), "dbname": "postgres"}
    found = wrapped_psql(wrapper_psql(), target)
    assert found is not None
    env = {k: v for k, v in os.environ.items() if k not in ("PGSYSCONFDIR", "DATABASE_URL")}
    conninfo = " ".join(f"{k}={v}" for k, v in {**target, "user": APP_USER}.items())
    shown = subprocess.run(
        [wrapper_psql(), "--no-psqlrc", "--quiet", f"--dbname={conninfo}", "--command",
         r"\! readlink /proc/$PPID/exe; echo PGSYSCONFDIR=$PGSYSCONFDIR"],
        env={**env, "PGPASSWORD": APP_PASSWORD}, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    program, extra = found
    assert shown == [program, f"PGSYSCONFDIR={extra['PGSYSCONFDIR']}"]
    assert program.startswith("/usr/lib/postgresql/")


def test_a_backup_runs_psql_directly_and_pg_dump_through_the_wrapper(pg: Server, tmp_path: Path) -> None:
    """Only psql's choice is taken from the wrapper: pg_dump's depends on the cluster and stays its own."""
    if not shutil.which("strace"):
        pytest.fail("strace is needed to see which programs a backup runs (apt-get install strace)", pytrace=False)
    trace = tmp_path / "execve.txt"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), str(BIN / "dbkeeper"), "-q", "backup",
         pg.url("postgres"), "--dir", str(tmp_path / "backups")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    started = re.findall(r'execve\("([^"]+)", \["[^"]*", "([^"]*)"', trace.read_text())
    psql_runs = [path for path, first in started if Path(path).name == "psql" and first == "--no-psqlrc"]
    assert psql_runs and all(path.startswith("/usr/lib/postgresql/") for path in psql_runs), started
    assert shutil.which("pg_dump") in {path for path, _ in started}  # the wrapper, as before


@pytest.mark.parametrize(
    ("case", "params", "env"),
    [
        ("no port in the connection string", {"host": "h", "dbname": "d"}, {}),
        ("no database in the connection string", {"host": "h", "port": "1"}, {}),
        ("PGCLUSTER chooses a cluster", TARGET, {"PGCLUSTER": "15/main"}),
    ],
)
def test_the_wrapper_is_run_where_its_choice_could_differ(
    monkeypatch: pytest.MonkeyPatch, case: str, params: dict[str, str], env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert wrapped_psql(wrapper_psql(), params) is None, case


def test_a_cluster_map_entry_leaves_the_choice_to_the_wrapper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    rc = tmp_path / ".postgresqlrc"
    rc.write_text("# comments and blank lines choose nothing\n\n")
    assert wrapped_psql(wrapper_psql(), TARGET) is not None
    rc.write_text("9.1 main mydb\n")
    assert wrapped_psql(wrapper_psql(), TARGET) is None


def test_a_psql_that_is_not_the_wrapper_is_run_as_found() -> None:
    assert wrapped_psql("/usr/lib/postgresql/15/bin/psql", TARGET) is None
    assert wrapped_psql(wrapper_psql(), TARGET) == (
        "/usr/lib/postgresql/15/bin/psql",
        {} if "PGSYSCONFDIR" in os.environ else {"PGSYSCONFDIR": "/etc/postgresql-common"},
    )
