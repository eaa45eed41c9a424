"""Load the sample shop database (scripts/sample_db.py's rows) into PostgreSQL, for benchmarks.

    .venv/bin/python benchmarks/postgresql_sample.py URL --size 1GB [--seed 42]

The rows come from ``sample_db.ShopGenerator``, the generator behind the SQLite sample
database: customers with non-ASCII names, products, orders whose totals add up, order
items, reviews with free text drawn with a Zipf-like word frequency, and an event log
with JSON payloads — data that compresses like real data (about 3x under ``zstd -3``),
not like pgbench's repeated filler. Here it goes through ``COPY`` into PostgreSQL types
(``timestamptz``, ``numeric``, ``boolean``, ``jsonb``), batch by batch, until the tables
reach the requested share of the size; the primary keys and indexes are built at the
end, so the whole database is about ``--size``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from sample_db import DEFAULT_SEED, ShopGenerator, parse_size

TABLES = """
CREATE TABLE customers (id bigint NOT NULL, first_name text NOT NULL, last_name text NOT NULL, email text NOT NULL,
    phone text, city text NOT NULL, country text NOT NULL, created_at timestamptz NOT NULL, is_active boolean NOT NULL,
    loyalty_points integer NOT NULL);
CREATE TABLE products (id bigint NOT NULL, sku text NOT NULL, name text NOT NULL, category text NOT NULL,
    description text NOT NULL, price numeric(12, 2) NOT NULL, stock integer NOT NULL, weight_kg real);
CREATE TABLE orders (id bigint NOT NULL, customer_id bigint NOT NULL, ordered_at timestamptz NOT NULL,
    status text NOT NULL, currency text NOT NULL, total numeric(14, 2) NOT NULL, shipping_city text NOT NULL,
    note text);
CREATE TABLE order_items (id bigint NOT NULL, order_id bigint NOT NULL, product_id bigint NOT NULL,
    quantity integer NOT NULL, unit_price numeric(12, 2) NOT NULL);
CREATE TABLE reviews (id bigint NOT NULL, product_id bigint NOT NULL, customer_id bigint NOT NULL,
    rating integer NOT NULL, title text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE events (id bigint NOT NULL, customer_id bigint, created_at timestamptz NOT NULL, kind text NOT NULL,
    payload jsonb NOT NULL, message text);
"""
CONSTRAINTS = """
ALTER TABLE customers ADD PRIMARY KEY (id);
ALTER TABLE products ADD PRIMARY KEY (id), ADD UNIQUE (sku);
ALTER TABLE orders ADD PRIMARY KEY (id), ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE order_items ADD PRIMARY KEY (id), ADD FOREIGN KEY (order_id) REFERENCES orders (id),
    ADD FOREIGN KEY (product_id) REFERENCES products (id);
ALTER TABLE reviews ADD PRIMARY KEY (id), ADD FOREIGN KEY (product_id) REFERENCES products (id),
    ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE events ADD PRIMARY KEY (id), ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX events_created ON events (created_at);
"""
TABLE_SHARE = 0.75
"""The tables' share of the final size; keys and indexes are the rest."""
BATCH_CUSTOMERS = 2000


def _copy(conn: psycopg.Connection[tuple[object, ...]], table: str, rows: Sequence[tuple[object, ...]]) -> None:
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load(url: str, size: int, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Create the shop tables in the (empty) database at *url* and fill them to about *size* bytes."""
    generator = ShopGenerator(seed, products=max(50, min(50_000, size // 40_000)))
    counts: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLES)
        products = list(generator.products())
        _copy(conn, "products", products)
        counts["products"] = len(products)
        progress = 0.0
        while True:
            current = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
            if current >= size * TABLE_SHARE:
                break
            progress = min(1.0, current / (size * TABLE_SHARE))
            with conn.transaction():
                for table, rows in generator.batch(BATCH_CUSTOMERS, progress).items():
                    _copy(conn, table, rows)
                    counts[table] = counts.get(table, 0) + len(rows)
        conn.execute(CONSTRAINTS)
        conn.execute("VACUUM ANALYZE")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="an empty database (postgresql://user:password@host:port/name)")
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="approximate size (default 1GB)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = load(args.url, args.size, args.seed)
    rows = ", ".join(f"{n} {t}" for t, n in counts.items())
    print(f"loaded in {time.perf_counter() - started:.0f}s: {rows}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
