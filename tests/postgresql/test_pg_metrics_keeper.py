"""PostgreSQL scrapes on a kept connection (``ConnectionKeeper``, as ``dbkeeper metrics --serve`` does).

One connection per database serves scrape after scrape; a connection that was terminated
is replaced within the next scrape; the kept session still bounds a collector stuck
behind another session's lock; closing the keeper (or stopping the server) ends it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import psycopg
from pg_monitoring import app_url, driver, session
from pg_server import Server

from dbkeeper.plugin import CollectorResult, ConnectionKeeper, Deadline, MetricsRequest
from helpers import BIN, eventually, failed, finishes

STOP_TIMEOUT = 30
"""Seconds a stopped ``metrics --serve`` may take to exit before the test fails."""


def scrape(pg: Server, database: str, keeper: ConnectionKeeper) -> dict[str, CollectorResult]:
    """One scrape of *database* as the unprivileged role, given *keeper*, by collector name."""
    request = MetricsRequest("postgresql", app_url(pg, database), Deadline(10), keeper=keeper)
    return {result.name: result for result in driver().collect_metrics(request)}


def scrape_sessions(pg: Server, database: str) -> list[int]:
    """The pids of the scrape sessions (``dbkeeper-metrics``) connected to *database*."""
    with session(pg, database) as other:
        rows = other.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'dbkeeper-metrics' AND datname = %s",
            (database,),
        ).fetchall()
    return [pid for (pid,) in rows]


def test_one_kept_connection_serves_every_scrape_until_the_keeper_closes(pg: Server) -> None:
    name = pg.app_database("keeper_reused", "CREATE TABLE item (id int PRIMARY KEY)")
    keeper = ConnectionKeeper()
    try:
        assert failed(scrape(pg, name, keeper)) == {}
        first = scrape_sessions(pg, name)
        assert len(first) == 1, "the scrape's connection stays open, kept for the next scrape"
        assert failed(scrape(pg, name, keeper)) == {}
        assert scrape_sessions(pg, name) == first, "the second scrape used the kept connection"
    finally:
        keeper.close()
    eventually(lambda: scrape_sessions(pg, name) == [], "the kept connection closing with the keeper")


def test_a_terminated_kept_connection_is_replaced_within_the_next_scrape(pg: Server) -> None:
    name = pg.app_database("keeper_terminated", "CREATE TABLE item (id int PRIMARY KEY)")
    keeper = ConnectionKeeper()
    try:
        scrape(pg, name, keeper)
        (kept,) = scrape_sessions(pg, name)
        with session(pg, name) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (kept,))
        eventually(lambda: kept not in scrape_sessions(pg, name), "the kept session ending")
        results = scrape(pg, name, keeper)
        assert failed(results) == {}, "the broken connection was replaced before the collectors ran"
        (replacement,) = scrape_sessions(pg, name)
        assert replacement != kept
    finally:
        keeper.close()


def test_a_kept_connection_still_gives_up_on_a_lock_within_its_lock_timeout(pg: Server) -> None:
    name = pg.app_database("keeper_locked", "CREATE TABLE item (id int PRIMARY KEY)")
    keeper = ConnectionKeeper()
    try:
        scrape(pg, name, keeper)
        with session(pg, name, autocommit=False) as locker:
            locker.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
            results = finishes(lambda: scrape(pg, name, keeper), "a scrape on the kept connection behind a lock")
            locker.rollback()
        assert set(failed(results)) == {"table_sizes"}
        assert "lock timeout" in (results["table_sizes"].error or "")
    finally:
        keeper.close()


def test_a_kept_connection_gives_up_on_an_unacknowledged_send_within_the_deadline(pg: Server) -> None:
    name = pg.app_database("keeper_tcp", "")
    keeper = ConnectionKeeper()
    try:
        scrape(pg, name, keeper)
        kept = keeper.take(psycopg.Connection)
        assert kept is not None
        assert kept.info.get_parameters()["tcp_user_timeout"] == "10000", "the 10 s deadline, in milliseconds"
        kept.close()
    finally:
        keeper.close()


def test_metrics_serve_keeps_one_connection_between_scrapes_and_closes_it_when_stopped(
    pg: Server, tmp_path: Path
) -> None:
    name = pg.app_database("keeper_served", "CREATE TABLE item (id int PRIMARY KEY)")
    (tmp_path / "dbkeeper.toml").write_text(f'[connections.shop]\nurl = "{app_url(pg, name).raw}"\n', encoding="utf-8")
    process = subprocess.Popen(
        [str(BIN / "dbkeeper"), "metrics", "--serve", "127.0.0.1:0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        found = re.search(r"serving (http://127\.0\.0\.1:\d+/metrics)", process.stderr.readline())
        assert found, "the server says where it listens"
        pids = []
        for _ in range(2):
            with urllib.request.urlopen(found.group(1), timeout=60) as response:
                assert 'dbkeeper_up{connection="shop"} 1.0' in response.read().decode()
            pids.append(scrape_sessions(pg, name))
        assert len(pids[0]) == 1 and pids[1] == pids[0], f"one connection kept between scrapes: {pids}"
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=STOP_TIMEOUT)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_TIMEOUT)
    eventually(lambda: scrape_sessions(pg, name) == [], "the kept connection closing when the server stopped")
