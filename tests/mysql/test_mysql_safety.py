"""What must hold at 3 a.m.: passwords out of sight, consistent snapshots, clear errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from mariadb_server import TEST_USER, MariaDBServer
from mysql_snapshot import count

from helpers import BIN, assert_one_line_error, dbkeeper

TOOL_NAMES = {"mariadb-dump", "mysqldump", "mariadb", "mysql"}
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def big_db(mariadb: MariaDBServer) -> str:
    """About 40 MB in one table, so that a dump runs long enough to be watched."""
    mariadb.recreate("src_big")
    mariadb.execute(
        "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(200) NOT NULL)",
        "INSERT INTO big SELECT seq, REPEAT(MD5(seq), 4) FROM seq_1_to_300000",
        database="src_big",
    )
    return "src_big"


@dataclass
class Sightings:
    """What a watcher saw of other processes while a command ran."""

    tools: list[str] = field(default_factory=list)
    secret_in_arguments: list[str] = field(default_factory=list)
    secret_in_environment: list[str] = field(default_factory=list)
    option_file_modes: set[int] = field(default_factory=set)


def _processes() -> Iterator[Path]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            yield entry


def run_watched(argv: list[str], env: dict[str, str], cwd: Path, secret: str) -> Sightings:
    """Run *argv*, reading every process's command line (and the tools' environments) until it exits."""
    seen = Sightings()
    needle = secret.encode()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while proc.poll() is None:
        for entry in _processes():
            try:
                arguments = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(needle in argument for argument in arguments):
                seen.secret_in_arguments.append(b" ".join(arguments).decode(errors="replace"))
            if not arguments[0] or Path(arguments[0].decode()).name not in TOOL_NAMES:
                continue
            seen.tools.append(Path(arguments[0].decode()).name)
            try:
                environment = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environment or b"MYSQL_PWD=" in environment:
                seen.secret_in_environment.append(Path(arguments[0].decode()).name)
            for argument in arguments:
                if argument.startswith(b"--defaults-file="):
                    path = argument.split(b"=", 1)[1].decode()  # /dev/fd/N is the tool's own descriptor N
                    own = entry / "fd" / Path(path).name if path.startswith("/dev/fd/") else Path(path)
                    with suppress(OSError):
                        seen.option_file_modes.add(stat.S_IMODE(os.stat(own).st_mode))
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    return seen


def test_the_password_never_reaches_a_command_line(
    mariadb: MariaDBServer, big_db: str, tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    target = new_database("watched")
    (tmp_path / "dbkeeper.toml").write_text(
        f'[connections.source]\nurl = "{mariadb.url(big_db, password="${DB_PW}")}"\n\n'
        f'[connections.target]\nurl = "{mariadb.url(target, password="${DB_PW}")}"\n'
    )
    env = {**os.environ, "DB_PW": quote(mariadb.password, safe=""), "NO_COLOR": "1"}
    dbkeeper_bin = str(BIN / "dbkeeper")

    dumped = run_watched([dbkeeper_bin, "-q", "backup", "source", "--dir", "bk"], env, tmp_path, mariadb.password)
    assert "mariadb-dump" in dumped.tools
    loaded = run_watched(
        [dbkeeper_bin, "-q", "restore", "latest", "target", "--dir", "bk"], env, tmp_path, mariadb.password
    )
    assert "mariadb" in loaded.tools
    for seen in (dumped, loaded):
        assert seen.secret_in_arguments == []
        assert seen.secret_in_environment == []
        assert seen.option_file_modes <= {0o600}
    assert count(mariadb, target, "big") == 300_000


def test_wrong_password_is_one_line_without_the_password(
    mariadb: MariaDBServer, chinook_db: str, tmp_path: Path
) -> None:
    wrong = "Wrong-Pa55word"
    url = mariadb.url(chinook_db, password=wrong)
    for args in (("backup", url, "--dir", str(tmp_path)), ("query", url, "SELECT 1")):
        run = dbkeeper(*args, check=False)
        assert_one_line_error(run, "Access denied for user", TEST_USER)
        assert wrong not in run.err
    python = dbkeeper("backup", url, "--dir", str(tmp_path), env={"DBKEEPER_MYSQL_TOOLS": "python"}, check=False)
    assert_one_line_error(python, "Access denied")
    assert wrong not in python.err


def test_bad_requests_are_one_line(mariadb: MariaDBServer, tmp_path: Path) -> None:
    missing = dbkeeper("backup", mariadb.url("no_such_db"), "--dir", str(tmp_path), check=False)
    assert_one_line_error(missing, "database 'no_such_db' does not exist")
    no_db = dbkeeper("backup", mariadb.url(""), "--dir", str(tmp_path), check=False)
    assert_one_line_error(no_db, "names no database")
    parameter = dbkeeper("backup", mariadb.url("x") + "?sslmode=require", "--dir", str(tmp_path), check=False)
    assert_one_line_error(parameter, "unsupported parameter 'sslmode'", "unix_socket")
    jobs = dbkeeper("backup", mariadb.url("x"), "--jobs", "2", "--dir", str(tmp_path), check=False)
    assert jobs.code == 2, jobs.err  # a usage error (issue 10): another driver's flag
    assert "does not support the 'jobs' option for backups" in jobs.err
    choice = dbkeeper("backup", mariadb.url("x"), "--dir", str(tmp_path), env={"DBKEEPER_MYSQL_TOOLS": "maybe"},
                      check=False)  # fmt: skip
    assert_one_line_error(choice, "DBKEEPER_MYSQL_TOOLS", "auto, client, python")


@pytest.mark.parametrize("tools", ["client", "python"])
def test_the_dump_is_one_snapshot_and_counts_its_rows(
    mariadb: MariaDBServer, tmp_path: Path, new_database: Callable[[str], str], tools: str
) -> None:
    """Rows committed while the dump runs are neither in the dump nor in its row counts.

    The dump is held at the second table by a write lock; rows are added to both tables
    and committed; then the lock is released and the dump goes on in its snapshot.
    """
    source = new_database("moving")
    mariadb.recreate(source)
    mariadb.execute(
        "CREATE TABLE a_first (id INT PRIMARY KEY)",
        "CREATE TABLE b_second (id INT PRIMARY KEY)",
        "INSERT INTO a_first SELECT seq FROM seq_1_to_10",
        "INSERT INTO b_second SELECT seq FROM seq_1_to_10",
        database=source,
    )
    with closing(mariadb.admin(source)) as locker, locker.cursor() as cursor:
        cursor.execute("LOCK TABLES b_second WRITE")
        dump = subprocess.Popen(
            [str(BIN / "dbkeeper"), "-q", "backup", mariadb.url(source), "--dir", str(tmp_path), "--json"],
            env={**os.environ, "DBKEEPER_MYSQL_TOOLS": tools},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _wait_for_lock_wait(mariadb, dump)
        cursor.execute("INSERT INTO b_second VALUES (11), (12), (13), (14), (15)")
        cursor.execute("UNLOCK TABLES")
        cursor.execute("INSERT INTO a_first SELECT seq FROM seq_11_to_15")
    out, err = dump.communicate(timeout=WAIT_SECONDS)
    assert dump.returncode == 0, err.decode()
    manifest = json.loads(out)
    assert manifest["row_counts"] == {"a_first": 10, "b_second": 10}
    target = new_database("snapshot")
    dbkeeper("restore", manifest["id"], mariadb.url(target), "--dir", str(tmp_path))
    assert (count(mariadb, target, "a_first"), count(mariadb, target, "b_second")) == (10, 10)


def _wait_for_lock_wait(server: MariaDBServer, dump: subprocess.Popen[bytes]) -> None:
    """Wait until the dump's connection waits for the lock on b_second (it has its snapshot then)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        waiting = server.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            f"WHERE USER = '{TEST_USER}' AND STATE = 'Waiting for table metadata lock' AND INFO LIKE '%b_second%'"
        )
        if waiting[0][0]:
            return
        if dump.poll() is not None:
            pytest.fail(f"the dump ended without waiting for the lock: {dump.communicate()[1].decode()}")
        time.sleep(0.02)
    pytest.fail("the dump never reached the locked table")
