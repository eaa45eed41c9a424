"""Memory stays flat on PostgreSQL backups, serial and parallel (the issue's 100 MB bound)."""

from __future__ import annotations

from pathlib import Path

from pg_server import APP_USER, Server

from helpers import peak_rss_mib

ROWS = 250_000
"""Rows per table: about 40 MB each of mixed text and numbers, several zstd jobs per artifact."""


def test_backup_memory_is_bounded_with_and_without_jobs(pg: Server, new_name: str, tmp_path: Path) -> None:
    """Two parallel dumps share the cores: each compressor gets its share, not a thread per core."""
    pg.psql(f"CREATE DATABASE {new_name} OWNER {APP_USER}")
    for table in ("events", "orders"):
        pg.psql(
            f"SET ROLE {APP_USER}; CREATE TABLE {table} AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS ref, "
            f"repeat(chr(65 + g % 26), g % 50) || md5(g::text) AS note, g * 1.5 AS amount, now() - g * interval '1s' "
            f"AS at FROM generate_series(1, {ROWS}) g",
            database=new_name,
        )
    url = pg.url(new_name)
    assert int(pg.psql(f"SELECT pg_database_size('{new_name}')")) > 70 * 2**20
    serial = peak_rss_mib("backup", url, "--dir", str(tmp_path / "serial"))
    parallel = peak_rss_mib("backup", url, "--dir", str(tmp_path / "parallel"), "--jobs", "2")
    assert max(serial, parallel) < 95, f"peak RSS: serial {serial:.0f} MiB, --jobs 2 {parallel:.0f} MiB"
