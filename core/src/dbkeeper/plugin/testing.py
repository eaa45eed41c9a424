"""The driver conformance kit: the contract every dbkeeper driver must keep, as pytest tests.

A driver's test suite runs it against its own, real database with one import and two
fixtures::

    import pytest
    from dbkeeper.plugin.testing import DriverConformance

    class TestConformance(DriverConformance):
        @pytest.fixture
        def source_url(self) -> str:
            '''An existing, empty database the kit may fill.'''
            return ...

        @pytest.fixture
        def new_url(self) -> Callable[[], str]:
            '''Each call: the URL of a database that does not exist yet (restore targets).'''
            return ...

The kit fills the source with a small sample (two tables, a foreign key, NULLs beside
empty strings, non-ASCII text, exact decimals, arbitrary bytes) through the driver's own
SQLAlchemy engine, then checks what dbkeeper promises its users of every driver: queries
and transactions, a backup per declared format with exact row counts and owner-only
files, byte-exact round trips, damage refused before anything is restored, non-empty
targets refused, and — when the driver declares them — deep verify, migrations, metrics, health
checks that are well formed, sessions as a list, a maintenance plan that changes nothing, and
a schema round trip (the kit's definition generated, applied and inspected back equal).

Capabilities a driver does not declare are skipped, never failed; the skips are listed
at the end of the pytest run ("dbkeeper conformance: …"). Installing dbkeeper registers
this module as a pytest plugin (entry point ``pytest11``), which also gives the kit's
assertions pytest's detailed messages. The reference drivers run the kit in dbkeeper's
own test suite.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.backups.manager import BackupManager
from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.errors import DatabaseError, IntegrityError, StorageError, TargetNotEmptyError
from dbkeeper.plugin.manager import Driver, Plugins, load_plugins
from dbkeeper.plugin.monitoring import (
    CollectorResult,
    ConnectionKeeper,
    Deadline,
    HealthCheck,
    HealthRequest,
    HealthThresholds,
    MaintenanceRequest,
    MetricsRequest,
    Sample,
    Session,
    SessionsRequest,
)
from dbkeeper.plugin.schema import (
    Check,
    Column,
    ColumnType,
    Enum,
    Expression,
    ForeignKey,
    Index,
    PrimaryKey,
    SchemaDefinition,
    SchemaDialect,
    Table,
    UniqueConstraint,
    View,
)
from dbkeeper.plugin.storage import ObjectStore

SKIP_PREFIX = "dbkeeper conformance: "
"""Every skip the kit makes starts with this, so the summary can find them."""

CUSTOMERS = [
    (1, "Ada", "ada@example.org", Decimal("0.00"), None),
    (2, "Zoë Ñúñez", "", Decimal("12.50"), b"\x00\xff\x10'\"\\\n"),
    (3, "李娜 🎉", None, Decimal("-7.05"), b""),
    *((n, f"customer {n}", f"c{n}@example.org", Decimal(n) / 4, bytes([n % 256]) * (n % 7)) for n in range(4, 301)),
]
"""Rows of ``kit_customers``: id, name, email (NULL beside empty), balance, avatar bytes."""

ORDERS = [(n, 1 + n % 300, dt.datetime(2024, 1, 1) + dt.timedelta(minutes=37 * n), n % 5) for n in range(1, 1201)]
"""Rows of ``kit_orders``: id, customer id (a foreign key), placed at, quantity."""

EXPECTED_COUNTS = {"kit_customers": len(CUSTOMERS), "kit_orders": len(ORDERS)}


def _tables() -> tuple[Any, Any, Any]:
    """The sample's SQLAlchemy metadata and tables (SQLAlchemy is imported only when the kit runs)."""
    from sqlalchemy import Column, DateTime, ForeignKey, Integer, LargeBinary, MetaData, Numeric, String, Table

    metadata = MetaData()
    customers = Table(
        "kit_customers",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(100), nullable=False),
        Column("email", String(100)),
        Column("balance", Numeric(10, 2), nullable=False),
        Column("avatar", LargeBinary),
    )
    orders = Table(
        "kit_orders",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("customer_id", Integer, ForeignKey("kit_customers.id"), nullable=False),
        Column("placed_at", DateTime, nullable=False),
        Column("quantity", Integer, nullable=False),
    )
    return metadata, customers, orders


def _columns(table: Any) -> list[str]:
    return [column.name for column in table.columns]


def fill_sample(engine: Any) -> None:
    """Create the kit's two tables in *engine*'s database and insert the sample rows."""
    metadata, customers, orders = _tables()
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(customers.insert(), [dict(zip(_columns(customers), row, strict=True)) for row in CUSTOMERS])
        conn.execute(orders.insert(), [dict(zip(_columns(orders), row, strict=True)) for row in ORDERS])


def read_sample(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The kit's tables in *engine*'s database, rows in key order, values as Python types."""
    from sqlalchemy import select

    _, customers, orders = _tables()
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)
                for row in conn.execute(select(table).order_by(table.c.id))
            ]
            for table in (customers, orders)
        }


def _expected_sample() -> dict[str, list[tuple[Any, ...]]]:
    return {"kit_customers": list(CUSTOMERS), "kit_orders": list(ORDERS)}


def _sample_counts(counts: dict[str, int]) -> dict[str, int]:
    """The kit's tables in a row-count mapping, whatever the driver prefixes (``public.kit_orders``)."""
    return {name: n for key, n in counts.items() if (name := key.rsplit(".", 1)[-1]) in EXPECTED_COUNTS}


def skip_unless(condition: bool, capability: str) -> None:
    """Skip the running test, reported as a missing capability, unless *condition*."""
    if not condition:
        pytest.skip(f"{SKIP_PREFIX}{capability}")


class DriverConformance:
    """The contract tests; subclass them and provide ``source_url`` and ``new_url`` (see the module)."""

    @pytest.fixture
    def source_url(self) -> str:
        """The URL of an existing, empty database the kit may fill (the driver's test suite provides it)."""
        raise NotImplementedError("provide a source_url fixture: the URL of an existing, empty database")

    @pytest.fixture
    def new_url(self) -> Callable[[], str]:
        """Each call returns the URL of a database that does not exist yet (the driver's test suite provides it)."""
        raise NotImplementedError("provide a new_url fixture: a function returning URLs of databases not made yet")

    @pytest.fixture
    def plugins(self) -> Plugins:
        """The plugins the kit runs with (default: every installed one, as the CLI loads them)."""
        return load_plugins()

    @pytest.fixture
    def driver(self, plugins: Plugins, source_url: str) -> Driver:
        """The driver that serves ``source_url``."""
        return plugins.driver_for(DatabaseURL.parse(source_url))

    @pytest.fixture
    def sample_url(self, driver: Driver, source_url: str) -> str:
        """``source_url`` holding the kit's sample tables."""
        engine = driver.connect(DatabaseURL.parse(source_url))
        try:
            fill_sample(engine)
        finally:
            engine.dispose()
        return source_url

    @pytest.fixture
    def backups(self, plugins: Plugins, tmp_path: Path) -> BackupManager:
        """A backup manager on a fresh directory."""
        return BackupManager(tmp_path / "backups", plugins=plugins)

    def _contents(self, driver: Driver, url: str) -> dict[str, list[tuple[Any, ...]]]:
        engine = driver.connect(DatabaseURL.parse(url))
        try:
            return read_sample(engine)
        finally:
            engine.dispose()

    # -- registration and queries ----------------------------------------------------

    def test_driver_is_registered_completely(self, driver: Driver, plugins: Plugins) -> None:
        """A name, schemes that lead back to it, formats, and the hooks every driver needs."""
        assert driver.info.name and driver.info.formats, f"{driver.info} declares no name or no formats"
        for scheme in driver.info.schemes:
            assert plugins.driver_for(DatabaseURL.parse(f"{scheme}://host/db")) is driver
        missing = [op for op in ("connect", "dump", "restore") if not driver.implements(op)]
        assert not missing, f"the {driver.name} driver does not implement {', '.join(missing)}"
        assert driver.name in {d["name"] for entry in plugins.describe() for d in entry["drivers"]}

    def test_queries_and_transactions(self, plugins: Plugins, sample_url: str) -> None:
        """``execute()`` returns columns and rows; a failed transaction leaves nothing behind."""
        from dbkeeper.connections.database import DatabaseManager

        with DatabaseManager(plugins=plugins) as manager:
            conn = manager.add("kit", sample_url)
            result = conn.execute("SELECT id, name FROM kit_customers WHERE id <= 3 ORDER BY id")
            assert [c.lower() for c in result.columns] == ["id", "name"]
            assert [tuple(row) for row in result.rows] == [(1, "Ada"), (2, "Zoë Ñúñez"), (3, "李娜 🎉")]
            with pytest.raises(RuntimeError), conn.transaction() as tx:
                tx.execute("DELETE FROM kit_orders")
                raise RuntimeError("abandon")
            assert conn.execute("SELECT COUNT(*) FROM kit_orders").rows[0][0] == len(ORDERS)
            with conn.transaction() as tx:
                tx.execute("DELETE FROM kit_orders WHERE id = 1")
            assert conn.execute("SELECT COUNT(*) FROM kit_orders").rows[0][0] == len(ORDERS) - 1

    # -- backups and restores --------------------------------------------------------

    def test_every_format_round_trips(
        self, driver: Driver, backups: BackupManager, sample_url: str, new_url: Callable[[], str]
    ) -> None:
        """Per declared format: exact row counts in the manifest, owner-only files, identical data restored."""
        for fmt in driver.info.formats:
            manifest = backups.backup(sample_url, format=fmt)
            assert _sample_counts(manifest.row_counts) == EXPECTED_COUNTS, f"format {fmt}: {manifest.row_counts}"
            directory = _local_root(backups) / manifest.id
            for path in directory.iterdir():
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"
            assert backups.verify(manifest.id).ok
            target = new_url()
            result = backups.restore(manifest.id, target)
            assert _sample_counts(result.row_counts) == EXPECTED_COUNTS, f"format {fmt}: {result.row_counts}"
            assert self._contents(driver, target) == _expected_sample(), f"format {fmt} changed the data"

    def test_damage_is_refused_before_anything_is_restored(
        self, driver: Driver, backups: BackupManager, sample_url: str, new_url: Callable[[], str]
    ) -> None:
        """One flipped byte: verify names it, restore refuses it, and the target gets no sample tables."""
        manifest = backups.backup(sample_url)
        artifact = _local_root(backups) / manifest.id / max(manifest.artifacts, key=lambda a: a.stored_bytes).file
        data = bytearray(artifact.read_bytes())
        data[len(data) // 2] ^= 0xFF
        artifact.write_bytes(bytes(data))
        assert not backups.verify(manifest.id).ok
        target = new_url()
        with pytest.raises(IntegrityError):
            backups.restore(manifest.id, target)
        try:
            left = self._contents(driver, target)
        except Exception:  # the target does not exist, or has no sample tables: nothing was restored
            return
        assert left == {"kit_customers": [], "kit_orders": []}, "a damaged backup restored rows"

    def test_a_non_empty_target_is_refused(
        self, driver: Driver, backups: BackupManager, sample_url: str, new_url: Callable[[], str]
    ) -> None:
        """Restoring over data needs ``force``; without it the target is left as it is."""
        manifest = backups.backup(sample_url)
        target = new_url()
        backups.restore(manifest.id, target)
        with pytest.raises(TargetNotEmptyError):
            backups.restore(manifest.id, target)
        assert self._contents(driver, target) == _expected_sample()

    def test_deep_verify_reads_the_rows(self, driver: Driver, backups: BackupManager, sample_url: str) -> None:
        """``verify --deep`` decodes every artifact and agrees with the manifest."""
        skip_unless(driver.implements("inspect_backup"), f"the {driver.name} driver has no deep verify")
        report = backups.verify(backups.backup(sample_url).id, deep=True)
        assert report.ok, report.problems

    def test_a_drill_restores_checks_and_cleans_up(
        self, driver: Driver, backups: BackupManager, sample_url: str
    ) -> None:
        """``dbkeeper drill``: the sample comes back in the driver's own target, checked, timed, recorded, removed.

        The drill's private directory is gone afterwards (and so is anything the target
        put in it); the report's row counts are the manifest's; a query that is false fails it.
        """
        skip_unless(driver.implements("drill"), f"the {driver.name} driver has no restore drills")
        import glob
        import os
        import tempfile

        mine = f"{tempfile.gettempdir()}/dbkeeper-drill-{os.getpid()}-*"  # not another drill's on this machine
        before = set(glob.glob(mine))
        manifest = backups.backup(sample_url)
        report = backups.drill(manifest.id)
        assert report.ok, report.problem
        assert report.restore_seconds is not None and report.restore_seconds >= 0
        assert report.rows == sum(manifest.row_counts.values())
        assert any(check.name == "row counts" and check.ok for check in report.checks), report.checks
        record = backups.repository.last_drill(manifest.id)
        assert record is not None and record.ok, "the verdict is recorded beside the backup"
        failed = backups.drill(manifest.id, check_sql=["SELECT 1 = 0"])
        assert not failed.ok and failed.problem and "SELECT 1 = 0" in failed.problem, failed
        last = backups.repository.last_drill(manifest.id)
        assert last is not None and not last.ok, "a failed drill is recorded too"
        assert set(glob.glob(mine)) <= before, "the drill left its directory"

    def test_migrations_go_up_and_down(self, driver: Driver, plugins: Plugins, source_url: str, tmp_path: Path) -> None:
        """A migration is applied once, recorded, and rolled back."""
        skip_unless(driver.implements("migrate"), f"the {driver.name} driver has no migrations")
        from dbkeeper.migrations import MigrationManager

        directory = tmp_path / "migrations"
        directory.mkdir()
        (directory / "20240101000000_kit_notes.sql").write_text(
            "-- migrate:up\nCREATE TABLE kit_notes (id INTEGER PRIMARY KEY, body VARCHAR(50));\n"
            "-- migrate:down\nDROP TABLE kit_notes;\n",
            encoding="utf-8",
        )
        manager = MigrationManager(source_url, directory, plugins=plugins)
        assert [r.id for r in manager.up()] == ["20240101000000_kit_notes"]
        assert manager.up() == []
        assert [s.state for s in manager.status()] == ["applied"]
        assert [r.outcome for r in manager.down()] == ["rolled back"]
        assert [s.state for s in manager.status()] == ["pending"]

    # -- metrics ---------------------------------------------------------------------

    def _scrape(self, driver: Driver, url: str, seconds: float = 60.0) -> list[CollectorResult]:
        request = MetricsRequest(driver.name, DatabaseURL.parse(url), Deadline(seconds))
        return driver.collect_metrics(request)

    def test_metrics_follow_the_naming_rules(self, driver: Driver, sample_url: str) -> None:
        """Sample names, units, types and labels as ``Sample`` says; the exposition parses."""
        skip_unless(driver.implements("collect_metrics"), f"the {driver.name} driver collects no metrics")
        from prometheus_client.parser import text_string_to_metric_families

        from dbkeeper.monitoring import DatabaseMetrics
        from dbkeeper.monitoring.prometheus import exposition

        results = self._scrape(driver, sample_url)
        names = [result.name for result in results]
        assert len(names) == len(set(names)), f"collector names repeat: {names}"
        assert any(result.success for result in results), [(r.name, r.error) for r in results]
        shapes: dict[str, tuple[str, str, frozenset[str]]] = {}
        for sample in (sample for result in results for sample in result.samples):
            _check_sample(driver.name, sample)
            shape = (sample.type, sample.unit, frozenset(sample.labels))
            assert shapes.setdefault(sample.name, shape) == shape, f"{sample.name}: type, unit or labels differ"
        text = exposition([DatabaseMetrics("kit", driver.name, True, tuple(results), 0.0)]).decode()
        families = [family.name for family in text_string_to_metric_families(text)]
        assert families and all(name.startswith("dbkeeper_") for name in families), families

    def test_metrics_say_up_for_a_live_database(self, driver: Driver, plugins: Plugins, sample_url: str) -> None:
        """``monitor_database`` on a live database: ``up`` is 1 and the driver's collectors are there."""
        skip_unless(driver.implements("collect_metrics"), f"the {driver.name} driver collects no metrics")
        from dbkeeper.connections.config import Config
        from dbkeeper.monitoring import monitor_database

        metrics = monitor_database(sample_url, config=Config(), plugins=plugins)
        assert metrics.up, metrics.reason
        assert [s.value for s in metrics.samples() if s.name == "up"] == [1.0]

    def test_metrics_scrape_alike_with_a_connection_keeper(self, driver: Driver, sample_url: str) -> None:
        """Two scrapes given one ``ConnectionKeeper`` (as ``--serve`` does) succeed alike; ``close`` ends it."""
        skip_unless(driver.implements("collect_metrics"), f"the {driver.name} driver collects no metrics")
        keeper = ConnectionKeeper()
        try:
            outcomes = []
            for _ in range(2):
                request = MetricsRequest(driver.name, DatabaseURL.parse(sample_url), Deadline(60.0), keeper=keeper)
                outcomes.append([(r.name, r.success) for r in driver.collect_metrics(request)])
        finally:
            keeper.close()
        assert outcomes[0] == outcomes[1], f"the second scrape, on the kept connection, differs: {outcomes}"
        assert any(success for _, success in outcomes[1]), outcomes[1]

    def test_metrics_collectors_fail_alone_after_the_deadline(self, driver: Driver, sample_url: str) -> None:
        """A request whose deadline has passed: failed collectors (or DatabaseError), never another exception."""
        skip_unless(driver.implements("collect_metrics"), f"the {driver.name} driver collects no metrics")
        try:
            results = self._scrape(driver, sample_url, seconds=0.0)
        except DatabaseError:
            return  # could not even connect in no time: the core reports up 0
        assert results, "a scrape returns its collectors' results, failed ones included"
        assert not [r.name for r in results if r.success], "a collector ran after the deadline"
        assert all(r.error for r in results), "a failed collector says why"

    # -- health, sessions and maintenance ---------------------------------------------

    def test_health_checks_are_well_formed(self, driver: Driver, sample_url: str) -> None:
        """Each check has a stable name, a title, a verdict, a figure; advice and findings only when it failed."""
        skip_unless(driver.implements("check_health"), f"the {driver.name} driver has no health checks")
        request = HealthRequest(driver.name, DatabaseURL.parse(sample_url), HealthThresholds(), Deadline(60.0))
        checks = driver.check_health(request)
        assert checks, "a driver with health checks returns at least one"
        names = [check.name for check in checks]
        assert len(names) == len(set(names)), f"check names repeat: {names}"
        for check in checks:
            _check_health(check)

    def test_sessions_are_a_list(self, driver: Driver, sample_url: str) -> None:
        """``dbkeeper_sessions`` answers with a list of ``Session`` (empty for an engine without sessions)."""
        skip_unless(driver.implements("sessions"), f"the {driver.name} driver lists no sessions")
        sessions = driver.sessions(SessionsRequest(driver.name, DatabaseURL.parse(sample_url), Deadline(30.0)))
        assert isinstance(sessions, list), sessions
        assert all(isinstance(session, Session) for session in sessions), sessions

    def test_the_maintenance_plan_changes_nothing(self, driver: Driver, sample_url: str) -> None:
        """Planning twice gives the same steps and leaves the sample as it was; every step is described."""
        skip_unless(driver.implements("plan_maintenance"), f"the {driver.name} driver plans no maintenance")
        before = self._contents(driver, sample_url)
        maintenance = driver.maintenance(MaintenanceRequest(driver.name, DatabaseURL.parse(sample_url)))
        try:
            first, second = maintenance.plan(), maintenance.plan()
        finally:
            maintenance.close()
        assert self._contents(driver, sample_url) == before, "planning changed the data"
        described = [(step.object, step.action, step.sql) for step in first]
        assert described == [(step.object, step.action, step.sql) for step in second], "planning changed the plan"
        for step in first:
            assert all((step.object, step.action, step.reason, step.sql, step.lock)), f"{step}: a field is empty"
            assert isinstance(step.blocking, bool), f"{step}: blocking is true or false"
            assert step.bytes_before is None or step.bytes_before >= 0, f"{step}: bytes_before"

    # -- schema ------------------------------------------------------------------------

    def test_the_schema_round_trips(self, driver: Driver, plugins: Plugins, source_url: str) -> None:
        """The kit's definition → generate → applied to the empty source → inspect: the same definition.

        The definition holds what the driver's schema dialect claims (expression and partial
        indexes, comments, enum comments only where it has them); the comparison allows what
        docs/hooks.md documents (:func:`schema_read_back`).
        """
        skip_unless(driver.implements("schema_dialect"), f"the {driver.name} driver has no schema dialect")
        from dbkeeper.connections.config import Config
        from dbkeeper.schema import generate_schema, inspect_schema

        dialect = driver.schema_dialect()
        definition = schema_sample(dialect)
        ddl = generate_schema(definition, dialect)
        engine = driver.connect(DatabaseURL.parse(source_url))
        try:
            with engine.begin() as conn:
                for statement in ddl.statements:
                    conn.exec_driver_sql(statement)
        finally:
            engine.dispose()
        got = _comparable(inspect_schema(source_url, Config(), plugins))
        want = _comparable(schema_read_back(definition, dialect))
        assert got.enums == want.enums, "the enums differ"
        assert list(got.views) == list(want.views), "the views differ"
        assert sorted(got.tables) == sorted(want.tables), "the tables differ"
        for name, table in want.tables.items():
            assert got.tables[name] == table, f"table {name} differs"


SCHEMA_ENUM = "kit_items_status"
"""The kit's enum, named as an engine that stores enums per column reads it back (``<table>_<column>``)."""


def schema_sample(dialect: SchemaDialect) -> SchemaDefinition:
    """The kit's schema: every portable type but JSON, keys, checks, indexes, an enum, a view and comments.

    Left out where *dialect* says the engine has none: expression and partial indexes, and the
    enum's comment (kept only by engines that name enum types and comment them). JSON is left
    out because MariaDB stores it as LONGTEXT and reads it back as ``text``.
    """
    has_comments = bool(dialect.sqlalchemy_dialect.supports_comments)
    simple = ("smallint", "bigint", "float", "double", "text", "bytes", "date", "time", "timestamp", "uuid")
    columns = [
        Column("id", ColumnType("int"), nullable=False, identity=True),
        Column("name", ColumnType("varchar", length=40), nullable=False, comment="Its name." if has_comments else None),
        Column("status", ColumnType("enum", enum=SCHEMA_ENUM), nullable=False, default="it's new"),
        Column("price", ColumnType("decimal", precision=10, scale=2), nullable=False),
        Column("quantity", ColumnType("int"), nullable=False, default=1),
        Column("active", ColumnType("bool"), nullable=False, default=True),
        Column("created_at", ColumnType("timestamptz"), nullable=False, default=Expression("CURRENT_TIMESTAMP")),
        *(Column(f"a_{name}", ColumnType(name)) for name in simple),
    ]
    indexes = [Index(("status", "created_at"))]
    if dialect.no_partial_indexes is None:
        indexes.append(Index(("created_at",), where="quantity > 1"))
    if dialect.no_expression_indexes is None:
        indexes.append(Index((Expression("lower(a_text)"),), unique=True))
    items = Table(
        "kit_items",
        {column.name: column for column in columns},
        primary_key=PrimaryKey(("id",)),
        unique=(UniqueConstraint(("name",)),),
        indexes=tuple(indexes),
        checks={"quantity_positive": Check("quantity_positive", "quantity > 0")},
        comment="Things the kit sells." if has_comments else None,
    )
    lines = Table(
        "kit_lines",
        {
            "item_id": Column("item_id", ColumnType("int"), nullable=False),
            "line": Column("line", ColumnType("smallint"), nullable=False),
        },
        primary_key=PrimaryKey(("item_id", "line")),
        foreign_keys=(ForeignKey(("item_id",), "kit_items", ("id",), on_delete="cascade"),),
    )
    enum_comment = "Where an item is." if dialect.comment_on("TYPE", SCHEMA_ENUM, "-") else None
    return SchemaDefinition(
        tables={"kit_items": items, "kit_lines": lines},
        views={"kit_item_names": View("kit_item_names", sql="SELECT id, name FROM kit_items")},
        enums={SCHEMA_ENUM: Enum(SCHEMA_ENUM, ("it's new", "done"), enum_comment)},
    )


def schema_read_back(definition: SchemaDefinition, dialect: SchemaDialect) -> SchemaDefinition:
    """*definition* as inspect reads it back after generate on *dialect*: each column type as the engine stores it.

    A type the engine keeps as another (``uuid`` as ``TEXT`` on SQLite) comes back as the
    portable type of what was generated (:meth:`SchemaDialect.portable_type`).
    """
    sa_dialect = dialect.sqlalchemy_dialect

    def stored(column: Column) -> Column:
        if column.type.name == "enum":
            return column
        text = dialect.column_type(column.type).compile(dialect=sa_dialect).upper()
        return replace(column, type=dialect.portable_type(text) or column.type)

    tables = {
        name: replace(table, columns={c.name: stored(c) for c in table.columns.values()})
        for name, table in definition.tables.items()
    }
    return replace(definition, tables=tables)


_IDENTIFIER_QUOTES = re.compile(r"[\"`]")


def _sql(text: str | None) -> str | None:
    """An expression as the comparison sees it: without identifier quotes, outer parentheses or extra spaces."""
    if text is None:
        return None
    text = " ".join(_IDENTIFIER_QUOTES.sub("", text).split())
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text


def _comparable(definition: SchemaDefinition) -> SchemaDefinition:
    """*definition* with what engines rewrite normalised: expressions (:func:`_sql`), views by name only.

    Indexes are sorted: engines list them in their own order.
    """

    def index(item: Index) -> Index:
        columns = tuple(c if isinstance(c, str) else Expression(_sql(c.sql) or "") for c in item.columns)
        return replace(item, columns=columns, where=_sql(item.where))

    tables = {
        name: replace(
            table,
            indexes=tuple(sorted((index(item) for item in table.indexes), key=repr)),
            checks={label: replace(c, expression=_sql(c.expression) or "") for label, c in table.checks.items()},
        )
        for name, table in definition.tables.items()
    }
    views = {name: View(name) for name in definition.views}
    return replace(definition, tables=tables, views=views)


def _check_health(check: HealthCheck) -> None:
    """One health check against :class:`~dbkeeper.plugin.HealthCheck`'s rules."""
    where = f"health check {check.name!r}"
    assert METRIC_NAME.match(check.name), f"{where}: a stable name of lower-case letters, digits and _"
    assert check.title.strip() and check.figure.strip(), f"{where}: a title and a figure"
    assert check.verdict in ("ok", "failed", "skipped"), f"{where}: verdict {check.verdict!r}"
    assert isinstance(check.findings, tuple), f"{where}: findings are a tuple"
    assert all(isinstance(finding, str) for finding in check.findings), f"{where}: findings are lines of text"
    if check.verdict == "ok":
        assert not check.advice and not check.findings, f"{where}: advice or findings on a check that passed"
    if check.verdict == "failed":
        assert check.advice.strip(), f"{where}: a failed check says what to do"


METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SHARED_METRICS = frozenset(
    {
        "version",
        "uptime",
        "connections",
        "connections_max",
        "transactions",
        "deadlocks",
        "oldest_transaction_age",
        "oldest_query_age",
        "lock_waiting_sessions",
        "database_size",
        "table_size",
        "replication_lag",
    }
)
"""Metric names every engine shares, without an engine prefix (docs/monitoring.md lists them)."""
UNITS = ("", "seconds", "bytes", "ratio")


def _check_sample(driver: str, sample: Sample) -> None:
    """One sample against the naming rules of :class:`~dbkeeper.plugin.Sample` and Prometheus's."""
    where = f"sample {sample.name!r}"
    assert METRIC_NAME.match(sample.name), f"{where}: lower-case letters, digits and _ only"
    assert sample.name in SHARED_METRICS or sample.name.startswith(f"{driver}_"), (
        f"{where}: an engine-specific metric starts with '{driver}_' (shared ones: {', '.join(sorted(SHARED_METRICS))})"
    )
    assert sample.type in ("gauge", "counter", "info"), f"{where}: type {sample.type!r}"
    assert sample.unit in UNITS, f"{where}: unit {sample.unit!r} is not a base unit ({', '.join(UNITS[1:])})"
    suffixes = ("_total", "_info", *(f"_{unit}" for unit in UNITS if unit))
    assert not sample.name.endswith(suffixes), f"{where}: the core adds the suffixes its type and unit imply"
    assert sample.help.strip(), f"{where}: no help text"
    assert "connection" not in sample.labels, f"{where}: the core adds the connection label"
    assert all(METRIC_NAME.match(label) for label in sample.labels), f"{where}: label names {list(sample.labels)}"
    if sample.type == "info":
        assert sample.value == 1 and not sample.unit, f"{where}: an info metric is 1, without a unit"
    if sample.unit == "ratio":
        assert 0 <= sample.value <= 1, f"{where}: a ratio is from 0 to 1, not {sample.value}"
    if sample.type == "counter":
        assert sample.value >= 0, f"{where}: a counter is never negative"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the conformance tests a driver skipped, with the capability each needs."""
    reasons = sorted(
        {
            str(report.longrepr[2]).removeprefix("Skipped: ")
            for report in terminalreporter.stats.get("skipped", [])
            if isinstance(report.longrepr, tuple) and SKIP_PREFIX in str(report.longrepr[2])
        }
    )
    if reasons:
        terminalreporter.write_sep("-", "dbkeeper conformance: capabilities not declared (skipped)")
        for reason in reasons:
            terminalreporter.write_line(reason.removeprefix(SKIP_PREFIX))


def _local_root(backups: BackupManager) -> Path:
    """The directory of the kit's backups: the kit checks the stored files themselves, so they are local."""
    from dbkeeper.backups.repository import Repository

    assert isinstance(backups.repository, Repository), "the conformance kit keeps its backups in a local directory"
    return backups.repository.root


# --- Storage backends --------------------------------------------------------------------------
# A storage plugin's tests call check_object_store(store) on a store over an empty prefix of
# their real service (dbkeeper-s3's do, against moto's S3 server).

STORE_LARGE_OBJECT = 12 << 20
"""Bytes of the kit's large object: more than two S3 parts of the 5 MiB minimum, so multipart is exercised."""


def check_object_store(store: ObjectStore) -> None:
    """Check *store* keeps the :class:`~dbkeeper.plugin.ObjectStore` contract; it must start empty.

    Missing objects, streamed uploads (small, empty and multipart) read back byte for byte,
    listings by plain prefix, an abort that leaves nothing (not even a pending upload),
    create-only puts that refuse a second writer, and deletes. The store is empty again
    afterwards.
    """
    assert list(store.objects()) == [], f"{store.location}: the kit needs an empty store"
    _check_missing(store)
    _check_uploads(store)
    _check_abort(store)
    _check_create_only(store)
    for found in list(store.objects()):
        store.delete(found.key)
    assert list(store.objects()) == [], f"{store.location}: objects left after deleting every one"


def _check_missing(store: ObjectStore) -> None:
    assert store.head("kit/missing") is None, "head of a missing object is None"
    store.delete("kit/missing")  # a missing object counts as deleted
    with pytest.raises(StorageError):
        store.open("kit/missing").read(1)


def _check_uploads(store: ObjectStore) -> None:
    import hashlib
    import os

    contents = {"kit/a1/empty": b"", "kit/a1/small": b"small \x00\xff", "kit/a2/large": os.urandom(STORE_LARGE_OBJECT)}
    for key, data in contents.items():
        upload = store.upload(key)
        for start in range(0, len(data), 1 << 20):
            assert upload.write(data[start : start + (1 << 20)]) == len(data[start : start + (1 << 20)])
        stored = upload.commit()
        assert (stored.key, stored.size) == (key, len(data)), f"commit() of {key} reports {stored}"
        assert stored.sha256 in (None, hashlib.sha256(data).hexdigest()), f"the service's SHA256 of {key} is wrong"
        head = store.head(key)
        assert head is not None and (head.key, head.size) == (key, len(data)), f"head() of {key} reports {head}"
        assert _read_back(store, key, 100_003) == data, f"{key} reads back different bytes"
        whole = store.open(key)
        assert whole.read() == data and whole.read(1) == b"", f"read() of {key} is not everything, then b''"
        whole.close()
    listed = {found.key: found.size for found in store.objects("kit/a")}
    assert listed == {key: len(data) for key, data in contents.items()}, f"objects('kit/a') lists {listed}"
    assert {found.key for found in store.objects("kit/a1/")} == {"kit/a1/empty", "kit/a1/small"}
    assert [found.key for found in store.objects("kit/a2/l")] == ["kit/a2/large"]


def _read_back(store: ObjectStore, key: str, size: int) -> bytes:
    reader = store.open(key)
    pieces = []
    while piece := reader.read(size):
        assert len(piece) <= size, f"read({size}) of {key} returned {len(piece)} bytes"
        pieces.append(piece)
    reader.close()
    return b"".join(pieces)


def _check_abort(store: ObjectStore) -> None:
    import os

    upload = store.upload("kit/aborted")
    for _ in range(STORE_LARGE_OBJECT >> 20):
        upload.write(os.urandom(1 << 20))
    upload.abort()
    upload.abort()  # never raises
    assert store.head("kit/aborted") is None, "an aborted upload is visible"
    assert [p.key for p in store.pending_uploads("kit/")] == [], "an aborted upload is still pending"


def _check_create_only(store: ObjectStore) -> None:
    assert store.put("kit/manifest.json", b"first", create_only=True), "the first create-only put must store"
    assert not store.put("kit/manifest.json", b"second", create_only=True), "a second create-only put must refuse"
    assert _read_back(store, "kit/manifest.json", 64) == b"first", "a refused create-only put changed the object"
    assert store.put("kit/lease", b"one") and store.put("kit/lease", b"two"), "a plain put replaces"
    assert _read_back(store, "kit/lease", 64) == b"two"
