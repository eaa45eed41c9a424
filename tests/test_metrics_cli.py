"""``dbkeeper metrics`` on real SQLite files: formats, promtool, up 0 within the deadline, no secrets.

The scrape's bounds are checked by the process finishing within a generous timeout
(``helpers.dbkeeper`` allows 300 s) and saying what happened, never by timing it.
"""

from __future__ import annotations

import os
import pty
import socket
import sqlite3
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from promtool import check_metrics

from helpers import BIN, assert_one_line_error, dbkeeper, make_db, write_migration

SECRET = "pa55-w0rd-xyz"


def _config(directory: Path, text: str) -> Path:
    (directory / "dbkeeper.toml").write_text(text, encoding="utf-8")
    return directory


def _scrape_json(cwd: Path, *args: str) -> list[dict[str, object]]:
    data = dbkeeper("metrics", *args, "--format", "json", cwd=cwd).json()
    assert isinstance(data, list)
    return data


def test_promtool_accepts_the_sqlite_output(chinook: Path) -> None:
    run = dbkeeper("metrics", f"sqlite:///{chinook}", "--format", "prometheus")
    check_metrics(run.out)
    names = {family.name for family in text_string_to_metric_families(run.out)}
    assert {"dbkeeper_up", "dbkeeper_database_size_bytes", "dbkeeper_table_size_bytes"} <= names
    assert 'dbkeeper_up{connection="default"} 1.0' in run.out
    assert 'dbkeeper_table_size_bytes{connection="default",kind="data",table="Track"}' in run.out


def test_without_a_terminal_the_output_is_prometheus_text(chinook: Path) -> None:
    run = dbkeeper("metrics", f"sqlite:///{chinook}")
    assert run.out.startswith("# HELP dbkeeper_up ")


def test_the_table_format_is_for_people(chinook: Path) -> None:
    run = dbkeeper("metrics", f"sqlite:///{chinook}", "--format", "table")
    lines = run.out.splitlines()
    assert lines[0].startswith("default: up, ")
    assert lines[1].split() == ["METRIC", "LABELS", "VALUE"]
    assert any(line.startswith("dbkeeper_database_size_bytes") and line.endswith("KiB") for line in lines)


def test_json_has_one_object_per_connection(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db", 10)
    project = _config(
        tmp_path,
        '[connections.a]\nurl = "sqlite:///a.db"\n[connections.gone]\nurl = "sqlite:///missing/nothing.db"\n',
    )
    scrapes = {s["connection"]: s for s in _scrape_json(project)}
    assert sorted(scrapes) == ["a", "gone"]
    up, down = scrapes["a"], scrapes["gone"]
    assert set(up) == {"connection", "driver", "up", "reason", "duration_seconds", "collectors", "samples"}
    assert (up["up"], up["reason"], up["driver"]) == (True, None, "sqlite")
    assert down["up"] is False and isinstance(down["reason"], str) and down["reason"]
    samples = up["samples"]
    assert isinstance(samples, list)
    first = samples[0]
    assert first == {"metric": "dbkeeper_up", "type": "gauge", "unit": "", "labels": {"connection": "a"}, "value": 1.0}
    collectors = up["collectors"]
    assert isinstance(collectors, list)
    assert {"backups"} <= {c["name"] for c in collectors}
    assert all(set(c) == {"name", "success", "duration_seconds", "error"} for c in collectors)


def test_a_missing_or_unreadable_database_is_up_0_with_the_reason(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all" * 100)
    project = _config(
        tmp_path,
        '[connections.missing]\nurl = "sqlite:///nowhere/none.db"\n'
        '[connections.garbage]\nurl = "sqlite:///garbage.db"\n'
        "[monitoring]\ndeadline = 2\n",
    )
    for name in ("missing", "garbage"):
        run = dbkeeper("metrics", name, "--format", "prometheus", cwd=project)
        assert run.code == 0
        assert f'dbkeeper_up{{connection="{name}"}} 0.0' in run.out
        assert f"note: {name}: down: " in run.err
        check_metrics(run.out)


def test_a_scrape_behind_another_sessions_lock_ends_within_the_deadline(tmp_path: Path) -> None:
    make_db(tmp_path / "busy.db", 100)
    project = _config(
        tmp_path, '[connections.busy]\nurl = "sqlite:///busy.db"\n[monitoring]\ndeadline = 2\nlock_timeout = 0.2\n'
    )
    holder = sqlite3.connect(tmp_path / "busy.db")
    holder.execute("BEGIN EXCLUSIVE")  # nobody else may read until it ends
    try:
        run = dbkeeper("metrics", "busy", "--format", "json", cwd=project)
    finally:
        holder.rollback()
        holder.close()
    (scrape,) = run.json()  # type: ignore[misc]  # a list of one
    failed = [c for c in scrape["collectors"] if not c["success"]]
    assert scrape["up"] is False or failed, "the lock made the scrape fail somewhere, and it said so"
    assert "note: busy: " in run.err


def test_a_server_that_never_answers_is_up_0_within_the_deadline(tmp_path: Path) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (the kernel's backlog), says nothing
    port = silent.getsockname()[1]
    project = _config(
        tmp_path,
        f'[connections.pg]\nurl = "postgresql://watcher:{SECRET}@127.0.0.1:{port}/app"\n'
        f'[connections.my]\nurl = "mysql://watcher:{SECRET}@127.0.0.1:{port}/app"\n'
        "[monitoring]\ndeadline = 2\n",
    )
    try:
        run = dbkeeper("metrics", "--format", "prometheus", cwd=project)
    finally:
        silent.close()
    assert 'dbkeeper_up{connection="pg"} 0.0' in run.out and 'dbkeeper_up{connection="my"} 0.0' in run.out
    assert "note: pg: down: " in run.err and "note: my: down: " in run.err
    assert SECRET not in run.out + run.err


def test_passwords_never_appear(tmp_path: Path) -> None:
    project = _config(
        tmp_path,
        f'[connections.pg]\nurl = "postgresql://watcher:{SECRET}@127.0.0.1:1/app"\n'
        f'[connections.my]\nurl = "mysql://watcher:{SECRET}@127.0.0.1:1/app"\n'
        "[monitoring]\ndeadline = 2\n",
    )
    for fmt in ("prometheus", "json", "table"):
        run = dbkeeper("metrics", "--format", fmt, cwd=project)
        assert SECRET not in run.out + run.err
        assert "pg" in run.out and "my" in run.out
    run = dbkeeper("metrics", f"postgresql://watcher:{SECRET}@127.0.0.1:1/app", cwd=tmp_path)
    assert SECRET not in run.out + run.err
    assert 'dbkeeper_up{connection="default"} 0.0' in run.out


def test_database_url_is_scraped_as_default(tmp_path: Path) -> None:
    make_db(tmp_path / "env.db", 3)
    run = dbkeeper("metrics", cwd=tmp_path, env={"DATABASE_URL": "sqlite:///env.db"})
    assert 'dbkeeper_up{connection="default"} 1.0' in run.out


def test_an_unknown_connection_is_one_error_line_and_a_bad_format_a_usage_error(tmp_path: Path) -> None:
    _config(tmp_path, '[connections.a]\nurl = "sqlite:///a.db"\n')
    assert_one_line_error(dbkeeper("metrics", "nope", cwd=tmp_path, check=False), "no connection named 'nope'")
    assert dbkeeper("metrics", "a", "--format", "xml", cwd=tmp_path, check=False).code == 2


def test_pending_and_failed_migrations_of_a_configured_directory(tmp_path: Path) -> None:
    """SQLite rolls a failed migration back (pending, not failed); only journaled engines record failures."""
    make_db(tmp_path / "app.db", 3)
    migrations = tmp_path / "db" / "migrations"
    write_migration(migrations, "20240101000000_accounts", "CREATE TABLE accounts (id INTEGER PRIMARY KEY);")
    project = _config(tmp_path, '[connections.app]\nurl = "sqlite:///app.db"\nmigrations = "db/migrations"\n')
    dbkeeper("migrate", "up", "app", cwd=project)
    write_migration(migrations, "20240102000000_broken", "CREATE TABLE accounts (id INTEGER PRIMARY KEY);")
    write_migration(migrations, "20240103000000_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY);")
    assert dbkeeper("migrate", "up", "app", cwd=project, check=False).code == 1  # the table already exists
    run = dbkeeper("metrics", "app", "--format", "prometheus", cwd=project)
    assert 'dbkeeper_migrations_pending{connection="app"} 2.0' in run.out, "SQLite rolled the failure back"
    assert 'dbkeeper_migrations_failed{connection="app"} 0.0' in run.out
    assert 'dbkeeper_scrape_collector_success{collector="migrations",connection="app"} 1.0' in run.out
    check_metrics(run.out)


def test_on_a_terminal_the_output_is_the_table(chinook: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [str(BIN / "dbkeeper"), "metrics", f"sqlite:///{chinook}"],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=300,
            check=True,
        )
        os.close(terminal)
        output = b""
        while chunk := _read_some(controller):
            output += chunk
    finally:
        os.close(controller)
    lines = output.decode().splitlines()
    assert lines[0].startswith("default: up, ") and lines[1].split() == ["METRIC", "LABELS", "VALUE"], lines[:2]
    assert not proc.stderr


def _read_some(fd: int) -> bytes:
    """What the terminal holds, or b'' once it is drained (Linux reports EIO then)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def test_an_unset_variable_is_up_0_among_others_and_an_error_alone(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db", 3)
    project = _config(
        tmp_path,
        '[connections.a]\nurl = "sqlite:///a.db"\n[connections.vault]\nurl = "postgresql://u:${NOPE_PW}@db/app"\n',
    )
    run = dbkeeper("metrics", "--format", "prometheus", cwd=project)
    assert 'dbkeeper_up{connection="a"} 1.0' in run.out and 'dbkeeper_up{connection="vault"} 0.0' in run.out
    assert "note: vault: down: connection 'vault' uses ${NOPE_PW}, which is not set" in run.err
    assert_one_line_error(dbkeeper("metrics", "vault", cwd=project, check=False), "${NOPE_PW}")
