"""Helpers shared by every test module: the real CLI as a process, native-tool comparisons."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dbkeeper.plugin import CollectorResult, Sample

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
CHINOOK_SQLITE = DATASETS / "chinook" / "Chinook_Sqlite.sql"
BIN = Path(sys.executable).parent


@dataclass
class Run:
    """The outcome of one ``dbkeeper`` process."""

    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def dbkeeper(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True) -> Run:
    """Run the installed ``dbkeeper`` command as a real process."""
    inherited = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    full_env = {**inherited, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [str(BIN / "dbkeeper"), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300
    )
    result = Run(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"dbkeeper {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return result


def peak_rss_mib(*args: str) -> float:
    """Run ``dbkeeper --quiet ARGS`` under GNU time; its peak RSS in MiB (it must succeed)."""
    inherited = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", str(BIN / "dbkeeper"), "--quiet", *args],
        env=inherited, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"dbkeeper {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def query_peak_mib(out: Path, *args: str) -> float:
    """Run ``dbkeeper -q query ARGS`` under GNU time, its stdout into the file *out*; its peak RSS in MiB."""
    inherited = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    with out.open("wb") as stdout:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", str(BIN / "dbkeeper"), "-q", "query", *args],
            stdout=stdout, stderr=subprocess.PIPE, env=inherited, text=True, timeout=600,
        )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"dbkeeper query {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def assert_million_ids_stream(out: Path, url: str, sql: str, *, rows: int, bound_mib: float) -> None:
    """``dbkeeper query URL SQL --json`` (SQL yields ``id, md5(id)`` for ids 1..*rows*) stays under *bound_mib*.

    The JSON document written to *out* must be complete and its rowcount what the driver
    reports (-1 when unknown), never garbage.
    """
    peak = query_peak_mib(out, url, sql, "--json")
    assert peak < bound_mib, f"peak RSS {peak:.0f} MiB for {rows} rows"
    with out.open(encoding="utf-8") as stream:
        document = json.load(stream)
    found = document["rows"]
    assert len(found) == rows and found[-1] == [rows, hashlib.md5(str(rows).encode()).hexdigest()]
    assert document["rowcount"] in (-1, rows), document["rowcount"]


def concurrent_migrate_up(url: str, migrations: Path, runs: int = 8) -> list[str]:
    """Start *runs* ``dbkeeper migrate up --json`` processes at once; all must succeed.

    Returns the ids of every migration they applied between them, sorted (each should
    appear once: exactly once under concurrency).
    """
    argv = [str(BIN / "dbkeeper"), "migrate", "up", url, "--dir", str(migrations), "--json"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(runs)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    return sorted(result["id"] for out, _ in outputs for result in json.loads(out))


def sqlite_dump(path: Path) -> str:
    """``sqlite3 PATH .dump`` — the native tool is the judge of equality."""
    return subprocess.run(["sqlite3", str(path), ".dump"], capture_output=True, text=True, check=True).stdout


def assert_one_line_error(run: Run, *fragments: str) -> None:
    """An error is one ``error: …`` line on stderr, exit 1, and no traceback."""
    assert run.code == 1, (run.code, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: "), run.err
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def artifact_of(backups: Path, backup_id: str) -> Path:
    """The single artifact file of a backup (not its manifest, nor its ``.records`` directory)."""
    (artifact,) = [p for p in (backups / backup_id).iterdir() if p.name != "manifest.json" and p.name[0] != "."]
    return artifact


def noting_tool(bindir: Path, tool: str, log: Path, note: str = '"$@"') -> None:
    """A *tool* in *bindir* that appends *note* (shell words; by default its arguments) to *log*, and runs the real one.

    With *bindir* first on ``PATH``, *log* shows which programs dbkeeper ran, and with what.
    """
    real = shutil.which(tool)
    assert real, f"{tool} is not installed"
    bindir.mkdir(exist_ok=True)
    (bindir / tool).write_text(f'#!/bin/sh\necho {note} >> {log}\nexec {real} "$@"\n')
    (bindir / tool).chmod(0o755)


def make_db(path: Path, rows: int, *, blob_size: int = 0) -> Path:
    """A database of *rows* mixed rows (text, numbers, optional random blobs)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, payload BLOB)")
    conn.executemany(
        "INSERT INTO item (name, price, payload) VALUES (?, ?, ?)",
        ((f"item {i} ünïcode", i * 1.25, os.urandom(blob_size) if blob_size else None) for i in range(rows)),
    )
    conn.commit()
    conn.close()
    return path


def write_migration(directory: Path, migration_id: str, up: str, down: str = "", header: str = "") -> Path:
    """A migration file ``<directory>/<migration_id>.sql`` with the given parts."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{migration_id}.sql"
    path.write_text(f"{header}-- migrate:up\n{up}\n-- migrate:down\n{down}\n")
    return path


WAIT = 60.0
"""Seconds a test waits for a server-side event before failing."""
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = WAIT, every: float = 0.2) -> T:
    """*probe*'s first truthy result, tried every *every* s for *timeout* s; fails saying *what* never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


def finishes(function: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """*function*'s result, run on a thread; fails if it is still running after *timeout* s."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{what} still ran after {timeout:g} s"
    if failure:
        raise failure[0]
    return outcome[0]


def samples(results: dict[str, CollectorResult], name: str, **labels: str) -> list[Sample]:
    """The samples called *name* whose labels include *labels*, from every collector."""
    return [
        sample
        for result in results.values()
        for sample in result.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    ]


def value(results: dict[str, CollectorResult], name: str, **labels: str) -> float:
    """The one sample called *name* with *labels*."""
    (found,) = samples(results, name, **labels)
    return found.value


def failed(results: dict[str, CollectorResult]) -> dict[str, str | None]:
    """The collectors that failed, with their errors."""
    return {name: result.error for name, result in results.items() if not result.success}


def private_copy(made: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A copy of a module's backup directory *made* (directory, id) in *tmp_path*: its records are the test's own."""
    import shutil

    directory, ident = made
    copy = tmp_path / "backups"
    shutil.copytree(directory, copy)
    return copy, ident
