"""SQLite files for the health, optimize and monitoring tests: clean, with planted problems, locked by others."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROWS = 20_000


def shop(path: Path, *, rows: int = ROWS, analyse: bool = True) -> Path:
    """A well-kept database: customers, orders with an indexed foreign key, statistics, no free pages."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer (id),
                             note TEXT NOT NULL);
        CREATE INDEX orders_customer ON orders (customer_id);
        """
    )
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO customer (id, name) VALUES (?, ?)", ((n, f"customer {n}") for n in range(1, 101)))
    conn.executemany(
        "INSERT INTO orders (customer_id, note) VALUES (?, ?)", ((1 + n % 100, "x" * 200) for n in range(rows))
    )
    conn.execute("COMMIT")
    if analyse:
        conn.execute("ANALYZE")
    conn.close()
    return path


def delete_half(path: Path) -> None:
    """Delete the second half of the orders: their pages go to the freelist (the file keeps its size)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("DELETE FROM orders WHERE id > (SELECT max(id) / 2 FROM orders)")


def execute(path: Path, *statements: str) -> None:
    """Run *statements* on *path*, autocommit."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in statements:
            conn.execute(statement)


def sha256(path: Path) -> str:
    """The file's SHA256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=120)
conn.execute(f"BEGIN {sys.argv[2]}")
conn.execute("INSERT INTO customer (name) VALUES ('written while locked')")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("committed", flush=True)
"""


@contextlib.contextmanager
def write_transaction(path: Path, kind: str = "IMMEDIATE") -> Iterator[subprocess.Popen[str]]:
    """Another process holds a write transaction (``BEGIN`` *kind*) on *path* for the block, then commits it.

    ``IMMEDIATE`` takes SQLite's write lock (readers go on); ``EXCLUSIVE`` in a
    rollback-journal file keeps readers out too.

    The process is asked to commit when the block ends; its output says whether it did.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        if holder.poll() is None:
            holder.communicate("commit\n", timeout=150)
