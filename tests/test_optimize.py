"""dbkeeper optimize on real SQLite files: a plan that changes nothing, VACUUM only with --allow-blocking,
steps skipped behind another process's write lock, failures, interruptions, --json."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from small_fs import read_only, small_file_system
from sqlite_samples import delete_half, execute, sha256, shop, write_transaction

from dbkeeper.cli.health_commands import DEFAULT_LOCK_TIMEOUT as CLI_DEFAULT
from dbkeeper.connections.config import Config
from dbkeeper.errors import DatabaseError, Interrupted
from dbkeeper.monitoring.optimize import DEFAULT_LOCK_TIMEOUT, OptimizeReport, optimize_database
from dbkeeper.plugin import DatabaseURL, DriverInfo, MaintenanceRequest, MaintenanceStep, StepOutcome, hookimpl
from dbkeeper.plugin.manager import load_plugins
from dbkeeper.system.filesystem import human_bytes
from helpers import BIN, assert_one_line_error, dbkeeper


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def neglected(tmp_path: Path) -> Path:
    """Half the orders deleted, a table never analysed: an ANALYZE step and a VACUUM step."""
    path = shop(tmp_path / "shop.db")
    delete_half(path)
    execute(
        path,
        "CREATE TABLE tag (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE INDEX tag_name ON tag (name)",
        "INSERT INTO tag (name) VALUES ('new'), ('sale'), ('gift')",
    )
    return path


def steps_of(run_json: object) -> dict[str, dict[str, object]]:
    assert isinstance(run_json, dict)
    return {step["action"]: step for step in run_json["steps"]}


def test_the_plan_changes_nothing_and_says_what_why_sql_and_lock(neglected: Path) -> None:
    before = sha256(neglected)
    run = dbkeeper("optimize", url(neglected))
    assert sha256(neglected) == before
    assert "1. analyze tag: never analysed: 3 rows, 1 index" in run.out
    assert 'sql:  PRAGMA analysis_limit = 1000; ANALYZE main."tag"' in run.out
    assert "2. vacuum shop.db: " in run.out and "sql:  VACUUM" in run.out
    assert "exclusive for the whole rebuild" in run.out and "BLOCKS other sessions (needs --allow-blocking)" in run.out
    assert "nothing changed (run with --apply)" in run.err
    planned = dbkeeper("optimize", url(neglected), "--json").json()
    assert sha256(neglected) == before
    assert planned["applied"] is False and planned["failed"] == 0  # type: ignore[index]
    vacuum = steps_of(planned)["vacuum"]
    assert vacuum["blocking"] is True and vacuum["status"] == "planned"
    assert vacuum["bytes_before"] == neglected.stat().st_size and vacuum["bytes_after"] is None


def test_apply_reclaims_space_only_with_allow_blocking(neglected: Path) -> None:
    size = neglected.stat().st_size
    run = dbkeeper("optimize", url(neglected), "--apply", "--json")
    steps = steps_of(run.json())
    assert steps["analyze"]["status"] == "done"
    assert steps["vacuum"]["status"] == "not run" and "--allow-blocking" in str(steps["vacuum"]["detail"])
    assert neglected.stat().st_size == size, "VACUUM ran without --allow-blocking"
    conn = sqlite3.connect(neglected)
    assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'tag'").fetchone()[0] == 1
    conn.close()

    run = dbkeeper("optimize", url(neglected), "--apply", "--allow-blocking")
    assert run.out.splitlines()[0].split() == ["STATUS", "ACTION", "OBJECT", "BEFORE", "AFTER", "SECONDS", "DETAIL"]
    assert run.out.splitlines()[1].split()[:3] == ["done", "vacuum", "shop.db"]
    assert neglected.stat().st_size < size * 0.6
    conn = sqlite3.connect(neglected)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 10_000
    conn.close()
    assert dbkeeper("optimize", url(neglected), "--json").json()["steps"] == []  # type: ignore[index]


def test_a_step_behind_another_process_write_lock_is_skipped_and_that_transaction_commits(neglected: Path) -> None:
    with write_transaction(neglected) as holder:
        run = dbkeeper("optimize", url(neglected), "--apply", "--allow-blocking", "--lock-timeout", "0.5", "--json")
        assert holder.poll() is None, "the other process did not survive"
    assert holder.returncode == 0
    steps = steps_of(run.json())
    for action in ("analyze", "vacuum"):
        assert steps[action]["status"] == "skipped", steps[action]
        assert steps[action]["detail"] == "lock not granted within 0.5 s (another connection holds it)"
    conn = sqlite3.connect(neglected)
    assert conn.execute("SELECT count(*) FROM customer WHERE name = 'written while locked'").fetchone() == (1,)
    conn.close()


def test_interrupted_while_applying_says_what_finished_and_what_did_not(neglected: Path) -> None:
    with write_transaction(neglected):
        proc = subprocess.Popen(
            [str(BIN / "dbkeeper"), "optimize", url(neglected), "--apply", "--allow-blocking", "--lock-timeout", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("step 1: analyze tag")
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == ""
    assert err.strip() == (
        f"interrupted while optimising {url(neglected)}: finished: none; running: analyze tag, which may or may "
        "not have finished; not started: vacuum shop.db; run 'dbkeeper optimize' again to see what is left"
    )


def test_a_failed_step_is_reported_and_exits_1(tmp_path: Path) -> None:
    with small_file_system(tmp_path / "fs", "8m") as mount:
        path = shop(mount / "shop.db", rows=2000, analyse=False)
        read_only(mount)
        run = dbkeeper("optimize", url(path), "--apply", "--json", check=False)
    assert run.code == 1, run.err
    (step,) = run.json()["steps"]  # type: ignore[index]
    assert step["status"] == "failed" and "readonly" in step["detail"], step


def test_vacuum_without_room_on_the_disk_is_refused(tmp_path: Path) -> None:
    with small_file_system(tmp_path / "fs", "8m") as mount:
        path = shop(mount / "shop.db")
        delete_half(path)
        before, needed = sha256(path), human_bytes(path.stat().st_size)
        run = dbkeeper("optimize", url(path), "--apply", "--allow-blocking", "--json")
        after = sha256(path)
    vacuum = steps_of(run.json())["vacuum"]
    assert vacuum["status"] == "skipped"
    assert str(vacuum["detail"]).startswith(f"not run: VACUUM needs {needed} free in {mount}, only "), vacuum["detail"]
    assert after == before


def test_usage_and_unreachable_database(tmp_path: Path) -> None:
    run = dbkeeper("optimize", url(tmp_path / "missing.db"), check=False)
    assert_one_line_error(run, "missing.db does not exist")
    assert not (tmp_path / "missing.db").exists()
    run = dbkeeper("optimize", url(tmp_path / "missing.db"), "--allow-blocking", check=False)
    assert run.code == 2 and "--allow-blocking needs --apply" in run.err
    run = dbkeeper("optimize", url(tmp_path / "missing.db"), "--lock-timeout", "-1", check=False)
    assert run.code == 2


def test_the_plan_judges_free_space_by_the_health_threshold(neglected: Path) -> None:
    """The VACUUM step uses [health]'s free_space_ratio_max, the limit dbkeeper health judges by."""
    (neglected.parent / "dbkeeper.toml").write_text("[health]\nfree_space_ratio_max = 0.95\n")
    tolerant = steps_of(dbkeeper("optimize", url(neglected), "--json", cwd=neglected.parent).json())
    assert "vacuum" not in tolerant and "analyze" in tolerant
    (neglected.parent / "dbkeeper.toml").write_text("[health]\nfree_space_ratio_max = 0.1\n")
    strict = steps_of(dbkeeper("optimize", url(neglected), "--json", cwd=neglected.parent).json())
    assert "above 0.1)" in str(strict["vacuum"]["reason"])


def test_a_clean_database_has_nothing_to_do(tmp_path: Path) -> None:
    run = dbkeeper("optimize", url(shop(tmp_path / "shop.db")))
    assert run.out == "" and "nothing to optimise" in run.err


def test_stale_statistics_are_analysed_again(tmp_path: Path) -> None:
    path = shop(tmp_path / "shop.db", rows=100)
    execute(
        path,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
        "INSERT INTO orders (customer_id, note) SELECT 1 + i % 100, 'y' FROM n",
    )
    steps = dbkeeper("optimize", url(path), "--json").json()["steps"]  # type: ignore[index]
    assert [(s["action"], s["object"]) for s in steps] == [("analyze", "orders")]
    assert steps[0]["reason"] == "5100 rows, 100 when last analysed (stale at 25 times)"


def test_incremental_vacuum_in_that_mode(tmp_path: Path) -> None:
    path = tmp_path / "inc.db"
    execute(path, "PRAGMA auto_vacuum = INCREMENTAL")
    shop(path)
    delete_half(path)
    size = path.stat().st_size
    run = dbkeeper("optimize", url(path), "--apply", "--json")
    step = steps_of(run.json())["incremental vacuum"]
    assert step["sql"] == "PRAGMA incremental_vacuum" and step["blocking"] is False and step["status"] == "done"
    assert path.stat().st_size < size * 0.6


def test_the_cli_default_lock_timeout_is_the_api_default() -> None:
    assert CLI_DEFAULT == DEFAULT_LOCK_TIMEOUT


def test_vacuum_in_wal_mode_checkpoints_so_the_file_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    execute(path, "PRAGMA journal_mode = WAL")
    shop(path)
    delete_half(path)
    size = path.stat().st_size
    run = dbkeeper("optimize", url(path), "--apply", "--allow-blocking", "--json")
    vacuum = steps_of(run.json())["vacuum"]
    assert vacuum["sql"] == "VACUUM; PRAGMA wal_checkpoint(TRUNCATE)" and vacuum["status"] == "done"
    assert path.stat().st_size < size * 0.6 and vacuum["bytes_after"] == path.stat().st_size
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the WAL still holds the rebuilt pages"


STEPS = [
    MaintenanceStep("a", "analyze", "never analysed", "ANALYZE a", "write lock", False, 10),
    MaintenanceStep("b", "analyze", "never analysed", "ANALYZE b", "write lock", False, 10),
    MaintenanceStep("c", "vacuum", "half free", "VACUUM", "exclusive", True, 10),
]


class Scripted:
    """A driver plugin that is its own maintenance: it plans STEPS and records what the core asks of it."""

    def __init__(self, *, interrupt_at: str = "", fail_at: str = "") -> None:
        self.calls: list[str] = []
        self.interrupt_at, self.fail_at = interrupt_at, fail_at

    @hookimpl
    def dbkeeper_register_drivers(self, register: Callable[[DriverInfo], None]) -> None:
        register(DriverInfo(name="scripted", schemes=("scripted",), formats=("x",)))

    @hookimpl
    def dbkeeper_plan_maintenance(self, request: MaintenanceRequest) -> Scripted:
        return self

    def plan(self) -> list[MaintenanceStep]:
        self.calls.append("plan")
        return STEPS

    def apply(self, step: MaintenanceStep, lock_timeout: float) -> StepOutcome:
        self.calls.append(f"apply {step.object}")
        if step.object == self.interrupt_at:
            raise KeyboardInterrupt
        if step.object == self.fail_at:
            raise DatabaseError("the connection was lost")
        return StepOutcome("done", 0.5, bytes_after=5)

    def close(self) -> None:
        self.calls.append("close")


def optimize_scripted(driver: Scripted, **options: bool) -> OptimizeReport:
    plugins = load_plugins(entry_points_group=None, extra=[("scripted", driver)])
    return optimize_database("scripted://x", config=Config(), plugins=plugins, **options)


def test_the_plan_alone_applies_nothing_and_closes() -> None:
    driver = Scripted()
    report = optimize_scripted(driver)
    assert driver.calls == ["plan", "close"]
    assert [result.status for result in report.steps] == ["planned"] * 3 and not report.applied


def test_a_step_that_raises_fails_alone_and_the_maintenance_is_closed() -> None:
    driver = Scripted(fail_at="a")
    report = optimize_scripted(driver, apply=True, allow_blocking=True)
    assert driver.calls == ["plan", "apply a", "apply b", "apply c", "close"]
    assert [(r.status, r.detail) for r in report.steps] == [
        ("failed", "the connection was lost"),
        ("done", ""),
        ("done", ""),
    ]
    assert report.failed() == [report.steps[0]]


def test_an_interruption_names_what_finished_what_ran_and_what_never_started() -> None:
    driver = Scripted(interrupt_at="b")
    with pytest.raises(Interrupted) as caught:
        optimize_scripted(driver, apply=True)
    assert driver.calls == ["plan", "apply a", "apply b", "close"]
    assert str(caught.value) == (
        "interrupted while optimising scripted://x: finished: analyze a (done); running: analyze b, which may or may "
        "not have finished; not started: vacuum c; run 'dbkeeper optimize' again to see what is left"
    )


def test_a_file_removed_after_planning_fails_its_steps_and_is_not_created(neglected: Path) -> None:
    driver = load_plugins().driver_named("sqlite")
    maintenance = driver.maintenance(MaintenanceRequest("sqlite", DatabaseURL.parse(url(neglected))))
    try:
        steps = maintenance.plan()
        neglected.unlink()
        outcomes = [maintenance.apply(step, 1.0) for step in steps]
    finally:
        maintenance.close()
    assert {(o.status, o.detail) for o in outcomes} == {("failed", f"{neglected} no longer exists")}
    assert not neglected.exists()
