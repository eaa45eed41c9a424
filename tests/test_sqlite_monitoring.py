"""The SQLite driver's monitoring hooks on real files: samples' names and values, limits, bounds, sessions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_samples import delete_half, execute, shop, write_transaction

from dbkeeper.errors import DatabaseError
from dbkeeper.plugin import CollectorResult, DatabaseURL, Deadline, MetricsOptions, MetricsRequest, SessionsRequest
from dbkeeper.plugin.manager import Driver, load_plugins
from dbkeeper_sqlite.facts import btrees, reading


@pytest.fixture(scope="module")
def driver() -> Driver:
    return load_plugins().driver_named("sqlite")


def scrape(driver: Driver, path: Path, **options: int) -> dict[str, CollectorResult]:
    request = MetricsRequest("sqlite", DatabaseURL.parse(f"sqlite:///{path}"), Deadline(10), 5.0, 1.0)
    if options:
        request = MetricsRequest(request.driver, request.url, request.deadline, options=MetricsOptions(**options))
    return {result.name: result for result in driver.collect_metrics(request)}


def values(result: CollectorResult) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert result.success, result.error
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in result.samples}


def test_file_samples_match_the_file(driver: Driver, tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db")
    delete_half(path)
    conn = sqlite3.connect(path)
    page_size, pages, free = (
        conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count", "freelist_count")
    )
    conn.close()
    found = values(scrape(driver, path)["file"])
    assert found == {
        ("version", (("engine", "sqlite"), ("version", sqlite3.sqlite_version))): 1,
        ("database_size", ()): path.stat().st_size,
        ("sqlite_page_size", ()): page_size,
        ("sqlite_pages", ()): pages,
        ("sqlite_freelist_size", ()): free * page_size,
        ("sqlite_journal_mode", (("mode", "delete"),)): 1,
    }
    assert free * page_size > path.stat().st_size / 3
    units = {s.name: (s.type, s.unit) for s in scrape(driver, path)["file"].samples}
    assert units["database_size"] == ("gauge", "bytes") and units["version"] == ("info", "")
    assert units["sqlite_freelist_size"] == ("gauge", "bytes") and units["sqlite_pages"] == ("gauge", "")


def test_the_wal_file_is_measured_in_wal_mode(driver: Driver, tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    execute(path, "PRAGMA journal_mode = WAL")
    shop(path)
    writer = sqlite3.connect(path, isolation_level=None)  # keeps the WAL from being checkpointed away
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO customer (name) VALUES ('in the WAL')")
    try:
        found = values(scrape(driver, path)["file"])
        wal = Path(f"{path}-wal").stat().st_size
    finally:
        writer.close()
    assert wal > 0
    assert found[("sqlite_wal_size", ())] == wal
    assert found[("sqlite_journal_mode", (("mode", "wal"),))] == 1


def test_table_bytes_from_dbstat(driver: Driver, tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db")
    found = values(scrape(driver, path)["tables"])
    conn = sqlite3.connect(path)
    orders = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'orders'").fetchone()[0]
    index = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'orders_customer'").fetchone()[0]
    conn.close()
    assert found == {
        ("table_size", (("kind", "data"), ("table", "customer"))): 4096,
        ("table_size", (("kind", "index"), ("table", "customer"))): 0,
        ("table_size", (("kind", "data"), ("table", "orders"))): orders,
        ("table_size", (("kind", "index"), ("table", "orders"))): index,
    }


def test_per_table_series_only_up_to_the_table_limit(driver: Driver, tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db")
    assert "tables" in scrape(driver, path, table_limit=2)
    assert "tables" not in scrape(driver, path, table_limit=1)
    assert "tables" not in scrape(driver, path, table_limit=0)
    assert "file" in scrape(driver, path, table_limit=0)


def test_analyzed_says_whether_analyze_ran(driver: Driver, tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db", analyse=False)
    assert values(scrape(driver, path)["statistics"]) == {("sqlite_analyzed", ()): 0}
    execute(path, "ANALYZE")
    assert values(scrape(driver, path)["statistics"]) == {("sqlite_analyzed", ()): 1}


def test_a_missing_file_is_an_error_and_is_not_created(driver: Driver, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="does not exist"):
        scrape(driver, tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "text.db").write_text("plain text, no database " * 200)
    with pytest.raises(DatabaseError, match="file is not a database"):
        scrape(driver, tmp_path / "text.db")


def test_a_scrape_waits_for_a_writer_lock_at_most_the_lock_timeout(driver: Driver, tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db")
    with write_transaction(path, "EXCLUSIVE") as holder:
        with pytest.raises(DatabaseError, match="locked by another connection for more than 1 s"):
            scrape(driver, path)
        assert holder.poll() is None
    with write_transaction(path):  # RESERVED: readers go on
        assert all(result.success for result in scrape(driver, path).values())


def test_queries_stop_at_the_deadline(tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db")
    deadline = Deadline(10)
    with reading(path, lock_timeout=1.0, deadline=deadline) as reader:
        assert btrees(reader)
        reader.deadline = Deadline(0)
        with pytest.raises(DatabaseError, match="stopped at the deadline"):
            btrees(reader)


def test_sqlite_has_no_sessions(driver: Driver, tmp_path: Path) -> None:
    url = DatabaseURL.parse(f"sqlite:///{shop(tmp_path / 'shop.db')}")
    assert driver.sessions(SessionsRequest("sqlite", url, Deadline(5))) == []
