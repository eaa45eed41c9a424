"""Retention: policies per source, dry runs that tell the truth, deletes that fail loudly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbkeeper.backups.manifest import Manifest, Provenance
from dbkeeper.backups.retention import Policy, decide, parse_duration
from dbkeeper.errors import BackupError, ConfigError
from helpers import assert_one_line_error, dbkeeper

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fake_manifest(n: int, hours_ago: float, source: str = "sqlite:///a.db") -> Manifest:
    when = T0 - timedelta(hours=hours_ago)
    return Manifest(
        id=f"b{n:03d}",
        dbkeeper_version="0",
        driver=Provenance("sqlite", "dbkeeper-sqlite", "0"),
        engine="sqlite",
        engine_version="3",
        database="a",
        source_url=source,
        format="sqlite",
        started_at=when,
        finished_at=when,
        artifacts=[],
        row_counts={},
    )


def kept(decisions: list) -> set[str]:
    return {d.manifest.id for d in decisions if d.keep}


def test_keep_last_is_per_source() -> None:
    backups = [fake_manifest(i, i) for i in range(5)] + [
        fake_manifest(10 + i, 100 + i, "sqlite:///b.db") for i in range(3)
    ]
    assert kept(decide(backups, Policy(keep_last=2))) == {"b000", "b001", "b010", "b011"}


def test_keep_within_counts_back_from_the_newest_backup_not_now() -> None:
    backups = [fake_manifest(i, 24 * 365 + i * 24) for i in range(10)]  # a year old, daily
    assert kept(decide(backups, Policy(keep_within=timedelta(days=3)))) == {"b000", "b001", "b002", "b003"}


def test_keep_daily_and_weekly_take_the_newest_of_each_period() -> None:
    backups = [fake_manifest(i, i * 6) for i in range(4 * 14)]  # every 6 hours for two weeks
    daily = kept(decide(backups, Policy(keep_daily=3)))
    assert len(daily) == 3 and "b000" in daily
    weekly = decide(backups, Policy(keep_weekly=2))
    assert len(kept(weekly)) == 2
    union = decide(backups, Policy(keep_last=1, keep_daily=2, keep_weekly=2))
    assert dict((d.manifest.id, d.reasons) for d in union)["b000"] == ("newest", "last 1", "daily", "weekly")


def test_newest_backup_is_always_kept() -> None:
    (decision,) = decide([fake_manifest(0, 0)], Policy(keep_daily=1))
    assert decision.keep


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        ("36h", timedelta(hours=36)),
        ("1y1m", timedelta(days=395)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_policy_validation() -> None:
    with pytest.raises(ConfigError):
        Policy()
    with pytest.raises(ConfigError):
        Policy(keep_last=0)
    with pytest.raises(ConfigError):
        parse_duration("7 days")


def test_prune_dry_run_prints_exactly_what_is_then_deleted(chinook: Path, backups: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(chinook.read_bytes())
    ids = [
        dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--level", "1").out.strip() for _ in range(4)
    ]
    other_id = dbkeeper("backup", f"sqlite:///{other}", "--dir", str(backups)).out.strip()
    dry = dbkeeper("prune", "--keep-last", "2", "--dry-run", "--dir", str(backups))
    assert f"would delete {ids[0]}" in dry.out and f"would delete {ids[1]}" in dry.out
    assert f"keep {other_id} (newest, last 2)" in dry.out
    assert len(dbkeeper("backups", "list", "--dir", str(backups), "--json").json()) == 5, "a dry run deletes nothing"
    planned = dbkeeper("prune", "--keep-last", "2", "--dry-run", "--json", "--dir", str(backups)).json()
    assert planned["delete"] == ids[:2]
    done = dbkeeper("prune", "--keep-last", "2", "--json", "--dir", str(backups)).json()
    assert done["delete"] == planned["delete"]
    remaining = {e["id"] for e in dbkeeper("backups", "list", "--dir", str(backups), "--json").json()}
    assert remaining == {ids[2], ids[3], other_id}


def test_a_failed_delete_is_an_error(chinook: Path, backups: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbkeeper.backups import repository
    from dbkeeper.backups.manager import BackupManager

    ids = [
        dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--level", "1").out.strip() for _ in range(3)
    ]
    real_rmtree = repository.shutil.rmtree

    def refuse_the_oldest(path: Path) -> None:
        if Path(path).name == ids[0]:
            raise PermissionError(13, "Permission denied", str(path))
        real_rmtree(path)

    monkeypatch.setattr(repository.shutil, "rmtree", refuse_the_oldest)
    with pytest.raises(BackupError, match=r"could not delete .*Permission denied") as raised:
        BackupManager(backups).prune(Policy(keep_last=1))
    assert list(raised.value.plan.failed) == [ids[0]], "the failure is reported"
    assert not (backups / ids[1]).exists(), "the other deletions still happened"


def test_deleting_a_running_backup_is_refused(backups: Path) -> None:
    from dbkeeper.backups.repository import Repository

    with Repository(backups).draft() as draft:
        run = dbkeeper("backups", "delete", draft.id, "--dir", str(backups), check=False)
        assert_one_line_error(run, "still being written")


def test_prune_touches_only_backup_directories(chinook: Path, tmp_path: Path) -> None:
    for name in ("photos", "app", "2026-notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text("mine")
    dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(tmp_path))
    assert [e["status"] for e in dbkeeper("backups", "list", "--dir", str(tmp_path), "--json").json()] == ["complete"]
    plan = dbkeeper("prune", "--keep-last", "1", "--dir", str(tmp_path), "--json").json()
    assert plan["delete"] == []
    assert all((tmp_path / name / "keep.txt").exists() for name in ("photos", "app", "2026-notes"))
