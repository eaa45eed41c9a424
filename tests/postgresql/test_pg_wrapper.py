"""psql, pg_dump and pg_restore without Debian's pg_wrapper, where the wrapper's choice is provably the same."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pg_server import APP_PASSWORD, APP_USER, Server

from dbkeeper_postgresql import pg_wrapper
from dbkeeper_postgresql.pg_wrapper import WRAPPER, wrapped_client
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
    found = wrapped_client(wrapper_psql(), target)
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


def traced(tmp_path: Path, *args: str) -> list[tuple[str, str]]:
    """Run ``dbkeeper -q ARGS`` under strace: the programs it started, with each one's first argument."""
    if not shutil.which("strace"):
        pytest.fail("strace is needed to see which programs dbkeeper runs (apt-get install strace)", pytrace=False)
    trace = tmp_path / "execve.txt"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-s", "512", "-e", "trace=execve", "-o", str(trace), str(BIN / "dbkeeper"), "-q",
         *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    started = re.findall(r'execve\("([^"]+)", \["[^"]*", "([^"]*)"', trace.read_text())
    assert not [path for path, _ in started if os.path.realpath(path) == WRAPPER], started
    return started


def test_a_backup_runs_psql_and_pg_dump_directly(pg: Server, tmp_path: Path) -> None:
    """Neither the control session's psql nor pg_dump (its version probe and the dump) goes through the wrapper."""
    started = traced(tmp_path, "backup", pg.url("postgres"), "--dir", str(tmp_path / "backups"))
    psql_runs = [path for path, first in started if Path(path).name == "psql" and first == "--no-psqlrc"]
    assert psql_runs and all(path.startswith("/usr/lib/postgresql/") for path in psql_runs), started
    dumps = [(path, first) for path, first in started if Path(path).name == "pg_dump"]
    assert {first.split("=")[0] for _, first in dumps} == {"--version", "--dbname"}, dumps
    assert all(path.startswith("/usr/lib/postgresql/") for path, _ in dumps), dumps


def test_a_restore_and_a_drill_run_pg_restore_directly(pg: Server, tmp_path: Path) -> None:
    """pg_restore's version probe and the restore itself, into a database and into a drill's throwaway server."""
    backups = str(tmp_path / "backups")
    traced(tmp_path, "backup", pg.url("postgres"), "--dir", backups)
    for args in (["restore", "latest", pg.url("restored_directly"), "--dir", backups],
                 ["drill", "latest", "--dir", backups]):  # fmt: skip
        restores = [(path, first) for path, first in traced(tmp_path, *args) if Path(path).name == "pg_restore"]
        assert {first.split("=")[0] for _, first in restores} == {"--version", "--exit-on-error"}, restores
        assert all(path.startswith("/usr/lib/postgresql/") for path, _ in restores), restores
    pg.psql("DROP DATABASE restored_directly")


@pytest.mark.parametrize("tool", ["pg_dump", "pg_restore"])
def test_the_wrapper_runs_the_same_tool_in_the_same_environment(tool: str) -> None:
    """The wrapper's pg_dump or pg_restore (seen by the PGSYSCONFDIR it sets and the binary's own version line)."""
    wrapped = shutil.which(tool)
    assert wrapped and os.path.realpath(wrapped) == WRAPPER
    found = wrapped_client(wrapped, TARGET)
    assert found is not None
    program, extra = found
    assert Path(program).name == tool
    env = {k: v for k, v in os.environ.items() if k != "PGSYSCONFDIR"}
    through_wrapper = subprocess.run([wrapped, "--version"], env=env, capture_output=True, text=True, check=True)
    direct = subprocess.run([program, "--version"], env=env, capture_output=True, text=True, check=True)
    assert through_wrapper.stdout == direct.stdout and program.startswith("/usr/lib/postgresql/")
    assert extra == {} if "PGSYSCONFDIR" in os.environ else extra == {"PGSYSCONFDIR": "/etc/postgresql-common"}


@pytest.mark.parametrize("tool", ["pg_dump", "pg_restore"])
def test_a_local_cluster_of_another_version_leaves_the_tool_to_the_wrapper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tool: str
) -> None:
    """The wrapper runs the pg_dump or pg_restore of the cluster on the default port: dbkeeper cannot know which."""
    wrapped = shutil.which(tool)
    assert wrapped
    newest = max(os.listdir(pg_wrapper.BINROOT), key=float)
    (tmp_path / newest).mkdir()
    monkeypatch.setattr(pg_wrapper, "CLUSTER_CONFIG", tmp_path)
    assert wrapped_client(wrapped, TARGET) is not None
    (tmp_path / "9.6").mkdir()
    assert wrapped_client(wrapped, TARGET) is None
    assert wrapped_client(wrapper_psql(), TARGET) is not None  # psql: the newest whatever the clusters (9.2 and up)


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
    assert wrapped_client(wrapper_psql(), params) is None, case


def test_a_cluster_map_entry_leaves_the_choice_to_the_wrapper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    rc = tmp_path / ".postgresqlrc"
    rc.write_text("# comments and blank lines choose nothing\n\n")
    assert wrapped_client(wrapper_psql(), TARGET) is not None
    rc.write_text("9.1 main mydb\n")
    assert wrapped_client(wrapper_psql(), TARGET) is None


def test_a_psql_that_is_not_the_wrapper_is_run_as_found() -> None:
    assert wrapped_client("/usr/lib/postgresql/15/bin/psql", TARGET) is None
    assert wrapped_client(wrapper_psql(), TARGET) == (
        "/usr/lib/postgresql/15/bin/psql",
        {} if "PGSYSCONFDIR" in os.environ else {"PGSYSCONFDIR": "/etc/postgresql-common"},
    )
