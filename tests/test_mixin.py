"""The Grafana dashboard and the Prometheus alerting rules in mixin/: valid, and built on metrics that exist.

Prometheus's own promtool checks the rules (``check rules``) and runs their unit tests
(``test rules`` on ``mixin/dbkeeper-alerts.test.yml``: input series → which alerts fire).
Every dashboard query is checked as PromQL by promtool too, as a recording rule. Then
every ``dbkeeper_*`` metric the dashboard and the rules use must appear in the real
output of ``dbkeeper metrics --format prometheus`` for a SQLite file, a throwaway
PostgreSQL server, its streaming standby (for the replication lag) and a throwaway
MariaDB server, with backups, verifies and a migrations directory, so that the backup
and migration metrics exist too. No metric is exempted.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from promtool import check_rules, run_rule_tests
from throwaway_servers import postgresql_server

from helpers import ROOT, dbkeeper

if TYPE_CHECKING:
    from mariadb_server import MariaDBServer

MIXIN = ROOT / "mixin"
RULES = MIXIN / "dbkeeper-alerts.yml"
RULE_TESTS = MIXIN / "dbkeeper-alerts.test.yml"
DASHBOARD = MIXIN / "dbkeeper-dashboard.json"
METRIC = re.compile(r"\bdbkeeper_[a-z0-9_]+\b")
SEVERITIES = {"critical", "warning", "info"}


def rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rule file."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model."""
    model: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return model


def query_panels() -> list[dict[str, Any]]:
    """The dashboard's panels that show data (every panel but the rows that group them)."""
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: its panels' targets and its variables' queries."""
    exprs = [target["expr"] for panel in query_panels() for target in panel["targets"]]
    variables = [v["definition"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    return exprs + variables


def test_promtool_accepts_the_rules() -> None:
    assert "SUCCESS: 12 rules found" in check_rules(RULES)


def test_the_alerts_fire_when_their_unit_tests_say() -> None:
    """Down, backup too old or missing, verify failed, collector failing, connections, wraparound, lag, migrations."""
    assert "SUCCESS" in run_rule_tests(RULE_TESTS)
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == {rule["alert"] for rule in rules()}


def test_every_alert_has_a_delay_a_severity_and_text_naming_the_connection() -> None:
    for rule in rules():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        for text in ("summary", "description"):
            assert "{{ $labels.connection }}" in rule["annotations"][text], (rule["alert"], text)


def test_the_dashboard_is_a_grafana_model_with_datasource_and_connection_variables() -> None:
    model = dashboard()
    assert model["schemaVersion"] >= 39 and model["uid"] and model["title"] == "dbkeeper"
    variables = {variable["name"]: variable for variable in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["connection"]["definition"] == "label_values(dbkeeper_up, connection)"
    assert variables["connection"]["multi"] and variables["connection"]["includeAll"]
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_queries_the_chosen_datasource_and_connections() -> None:
    for panel in query_panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'connection=~"$connection"' in target["expr"], (panel["title"], target["expr"])


def test_the_panels_tile_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables replaced by what they stand for."""
    grafana = {"$__rate_interval": "5m", "$connection": ".*"}
    records = []
    for number, query in enumerate(dashboard_queries()):
        for variable, value in grafana.items():
            query = query.replace(variable, value)
        if query.startswith("label_values("):  # Grafana's own function: its argument is the PromQL
            query = query.removeprefix("label_values(").rsplit(",", 1)[0]
        records.append({"record": f"dashboard:query_{number}", "expr": query})
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    assert f"SUCCESS: {len(records)} rules found" in check_rules(rule_file)


def metrics_used() -> set[str]:
    """Every ``dbkeeper_*`` metric the dashboard's queries and the rules' expressions name."""
    exprs = dashboard_queries() + [rule["expr"] for rule in rules()]
    return {name for expr in exprs for name in METRIC.findall(expr)}


@pytest.fixture(scope="module")
def postgresql_urls() -> Iterator[dict[str, str]]:
    """URLs of one database on a throwaway PostgreSQL primary (``pg``) and on its streaming standby (``standby``).

    The standby is real (``pg_basebackup -R``), so that the replication-lag metric the
    dashboard and an alert use is in real output too.
    """
    from pg_server import ServerError, start_standby

    with postgresql_server() as primary:
        database = primary.app_database("mixin", "CREATE TABLE items (id int PRIMARY KEY, name text)")
        try:
            standby = start_standby(primary)
        except (ServerError, OSError) as exc:
            pytest.fail(f"cannot start a standby of the throwaway PostgreSQL server: {exc}", pytrace=False)
        try:
            yield {"pg": primary.url(database), "standby": standby.url(database)}
        finally:
            standby.stop()


@pytest.fixture
def every_engine(tmp_path: Path, postgresql_urls: dict[str, str], mariadb: MariaDBServer) -> Path:
    """A dbkeeper.toml naming a SQLite file, a PostgreSQL primary and its standby, and a MariaDB database,
    each but the standby backed up and verified (the SQLite backup also drilled), each with a migrations
    directory holding a migration not applied yet; returns the configuration's folder."""
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    mariadb.recreate("mixin")
    mariadb.execute("CREATE TABLE items (id int PRIMARY KEY, name text)", database="mixin")
    urls = {"lite": f"sqlite:///{tmp_path / 'shop.db'}", **postgresql_urls, "maria": mariadb.url("mixin")}
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_notes.sql").write_text(
        "-- migrate:up\nCREATE TABLE notes (id int);\n-- migrate:down\nDROP TABLE notes;\n"
    )
    tables = "".join(f'[connections.{name}]\nurl = "{url}"\nmigrations = "migrations"\n' for name, url in urls.items())
    (tmp_path / "dbkeeper.toml").write_text(f'backup_dir = "backups"\n{tables}')
    for name in ("lite", "pg", "maria"):
        backup_id = dbkeeper("backup", name, cwd=tmp_path).out.split()[0]
        dbkeeper("verify", backup_id, cwd=tmp_path)
        if name == "lite":  # a drill of a SQLite backup needs no server of its own
            dbkeeper("drill", backup_id, cwd=tmp_path)
    return tmp_path


def test_every_metric_of_the_dashboard_and_rules_is_in_real_output(every_engine: Path) -> None:
    exposition = dbkeeper("metrics", "--format", "prometheus", cwd=every_engine).out
    exported = {line.split("{")[0].split()[0] for line in exposition.splitlines() if line and not line.startswith("#")}
    for connection in ("lite", "pg", "standby", "maria"):
        assert f'dbkeeper_up{{connection="{connection}"}} 1.0' in exposition
    missing = metrics_used() - exported
    assert not missing, f"the mixin uses metrics dbkeeper does not export: {sorted(missing)}"
