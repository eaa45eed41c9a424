"""dbkeeper health on real SQLite files: planted problems found, a clean database passes, thresholds, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlite_samples import delete_half, execute, sha256, shop, write_transaction

from dbkeeper.monitoring import check_health
from dbkeeper.plugin import HealthThresholds
from helpers import assert_one_line_error, dbkeeper

CHECKS = [
    "quick_check",
    "free_space",
    "never_analyzed",
    "foreign_key_violations",
    "duplicate_indexes",
    "foreign_keys_without_index",
]


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def verdicts(document: object) -> dict[str, dict[str, object]]:
    assert isinstance(document, dict)
    return {check["name"]: check for check in document["checks"]}


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return shop(tmp_path / "clean.db")


def test_a_clean_database_passes_every_check(clean: Path) -> None:
    run = dbkeeper("health", url(clean))
    assert run.out.splitlines()[0].split() == ["VERDICT", "CHECK", "FIGURE", "ADVICE", "FINDINGS"]
    assert [line.split()[0] for line in run.out.splitlines()[1:]] == ["ok"] * len(CHECKS)
    assert "0 checks of 6 failed" in run.err
    document = dbkeeper("health", url(clean), "--json").json()
    assert document == {
        "connection": url(clean),
        "driver": "sqlite",
        "ok": True,
        "failed": 0,
        "checks": document["checks"],  # type: ignore[index]
    }
    for name, check in verdicts(document).items():
        assert set(check) == {"name", "title", "verdict", "figure", "advice", "findings"}
        assert check["verdict"] == "ok" and check["advice"] == "" and check["findings"] == [], name
    assert list(verdicts(document)) == CHECKS


def test_planted_problems_are_found_with_figures_advice_and_findings(clean: Path) -> None:
    delete_half(clean)
    execute(
        clean,
        "CREATE INDEX orders_customer_again ON orders (customer_id)",  # a duplicate of orders_customer
        "CREATE TABLE tag (id INTEGER PRIMARY KEY, name TEXT, customer_id INTEGER REFERENCES customer (id))",
        "CREATE INDEX tag_name ON tag (name)",  # never analysed, and its foreign key has no index
        "INSERT INTO tag (name, customer_id) VALUES ('gift', 1), ('lost', 999)",  # 999: no such customer
    )
    before = sha256(clean)
    run = dbkeeper("health", url(clean), "--json", check=False)
    assert run.code == 1
    assert sha256(clean) == before, "health changed the file"
    checks = verdicts(run.json())
    assert {name for name, check in checks.items() if check["verdict"] == "failed"} == set(CHECKS) - {"quick_check"}
    duplicate = "orders: orders_customer_again (customer_id) duplicates orders_customer"
    assert checks["duplicate_indexes"]["findings"] == [duplicate]
    assert checks["never_analyzed"]["findings"] == ["tag: 2 rows, 1 index"]
    assert checks["foreign_key_violations"]["findings"] == ["tag rowid 2 → customer"]
    assert checks["foreign_keys_without_index"]["findings"] == ["tag (customer_id) → customer"]
    free = checks["free_space"]
    assert str(free["figure"]).startswith("0.4") and str(free["figure"]).endswith("(limit: at most 0.25)")
    assert "VACUUM" in str(free["advice"])
    table = dbkeeper("health", url(clean), check=False)
    assert table.code == 1 and "5 checks of 6 failed" in table.err
    assert "  tag (customer_id) → customer" in table.out


def test_thresholds_come_from_dbkeeper_toml(clean: Path, tmp_path: Path) -> None:
    delete_half(clean)
    assert dbkeeper("health", url(clean), check=False).code == 1
    config = tmp_path / "dbkeeper.toml"
    config.write_text(f'[health]\nfree_space_ratio_max = 0.9\n[connections.shop]\nurl = "{url(clean)}"\n')
    run = dbkeeper("--config", str(config), "health", "shop", "--json")
    assert verdicts(run.json())["free_space"]["figure"].endswith("(limit: at most 0.9)")  # type: ignore[union-attr]


def test_python_api_and_a_writer_holding_its_lock(clean: Path) -> None:
    """A writer's RESERVED lock lets the checks read; an EXCLUSIVE one is waited for [monitoring]'s lock_timeout."""
    with write_transaction(clean):
        assert check_health(url(clean), thresholds=HealthThresholds()).ok
    with write_transaction(clean, "EXCLUSIVE") as holder:
        run = dbkeeper("health", url(clean), check=False)
        assert holder.poll() is None
    assert_one_line_error(run, "was locked by another connection for more than 1 s")
    assert holder.returncode == 0


def test_an_unreachable_database_is_one_error_line(tmp_path: Path) -> None:
    run = dbkeeper("health", url(tmp_path / "missing.db"), check=False)
    assert_one_line_error(run, "missing.db does not exist")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "text.db").write_text("not a database, just text " * 100)
    assert_one_line_error(dbkeeper("health", url(tmp_path / "text.db"), check=False), "file is not a database")


def test_damage_fails_quick_check(clean: Path) -> None:
    data = bytearray(clean.read_bytes())
    page_size = 4096
    for offset in range(page_size * 5, page_size * 5 + 200):  # the header of a B-tree page in the middle
        data[offset] = 0xFF
    clean.write_bytes(bytes(data))
    run = dbkeeper("health", url(clean), "--json", check=False)
    assert run.code == 1, run.err
    quick = verdicts(run.json())["quick_check"]
    assert quick["verdict"] == "failed" and quick["findings"], quick
