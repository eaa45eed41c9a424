"""dbkeeper's own knowledge as metrics: backup freshness and verify results match the repository.

Real SQLite files, real backups and verifies through the CLI; the numbers are read back
from ``dbkeeper metrics --format json`` and compared with the manifests.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from helpers import artifact_of, dbkeeper, make_db


def _project(tmp_path: Path) -> Path:
    """A directory with dbkeeper.toml: connections app and other (two SQLite files), backups in ./backups."""
    make_db(tmp_path / "app.db", 50)
    make_db(tmp_path / "other.db", 5)
    (tmp_path / "dbkeeper.toml").write_text(
        'backup_dir = "backups"\n'
        '[connections.app]\nurl = "sqlite:///app.db"\n'
        '[connections.other]\nurl = "sqlite:///other.db"\n',
        encoding="utf-8",
    )
    return tmp_path


def _values(project: Path, connection: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(family, labels without connection) -> value`` of one scrape of *connection*."""
    (scrape,) = dbkeeper("metrics", connection, "--format", "json", cwd=project).json()  # type: ignore[misc]  # a list of one
    assert scrape["connection"] == connection
    found = {}
    for sample in scrape["samples"]:
        labels = tuple(sorted((k, v) for k, v in sample["labels"].items() if k != "connection"))
        assert sample["labels"]["connection"] == connection
        found[(sample["metric"], labels)] = sample["value"]
    return found


def _manifest(project: Path, backup_id: str) -> dict[str, Any]:
    data = dbkeeper("backups", "show", backup_id, "--json", cwd=project).json()
    assert isinstance(data, dict)
    return data


def _time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _backup(project: Path, connection: str) -> str:
    data = dbkeeper("backup", connection, "--json", cwd=project).json()
    assert isinstance(data, dict)
    return str(data["id"])


STATUS = "dbkeeper_backups"


def test_freshness_metrics_match_the_newest_complete_backup(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _backup(project, "app")
    newest = _backup(project, "app")
    _backup(project, "other")
    before_scrape = time.time()
    values = _values(project, "app")
    after_scrape = time.time()
    manifest = _manifest(project, newest)
    finished, started = _time(manifest["finished_at"]), _time(manifest["started_at"])
    assert values[(STATUS, (("status", "complete"),))] == 2, "the other database's backup is not counted"
    assert values[(STATUS, (("status", "incomplete"),))] == 0
    assert values[(STATUS, (("status", "damaged"),))] == 0
    assert values[("dbkeeper_backup_last_success_timestamp_seconds", ())] == pytest.approx(finished, abs=1e-3)
    assert values[("dbkeeper_backup_last_size_bytes", ())] == manifest["stored_bytes"]
    assert values[("dbkeeper_backup_last_duration_seconds", ())] == pytest.approx(finished - started, abs=1e-3)
    age = values[("dbkeeper_backup_last_age_seconds", ())]
    assert before_scrape - finished - 1e-3 <= age <= after_scrape - finished + 1e-3
    assert not [key for key in values if "verify" in key[0]], "never verified: no verify metrics"
    other = _values(project, "other")
    assert other[(STATUS, (("status", "complete"),))] == 1


def test_a_database_never_backed_up_has_counts_of_zero_and_no_last_backup(tmp_path: Path) -> None:
    project = _project(tmp_path)
    values = _values(project, "app")
    assert [values[(STATUS, (("status", s),))] for s in ("complete", "incomplete", "damaged")] == [0, 0, 0]
    assert not [key for key in values if key[0].startswith("dbkeeper_backup_last")]


def test_verify_results_are_recorded_and_exposed(tmp_path: Path) -> None:
    project = _project(tmp_path)
    good = _backup(project, "app")
    bad = _backup(project, "app")
    started = time.time()
    dbkeeper("verify", good, cwd=project)
    record = project / "backups" / good / ".records" / "verify.json"
    assert record.stat().st_mode & 0o777 == 0o600 and record.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(record.read_text())["ok"] is True
    values = _values(project, "app")
    assert values[("dbkeeper_backup_last_verify_success", ())] == 1
    assert started - 1 <= values[("dbkeeper_backup_last_verify_timestamp_seconds", ())] <= time.time()
    assert "last verify      ok at " in dbkeeper("backups", "show", good, cwd=project).out

    artifact = artifact_of(project / "backups", bad)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    assert dbkeeper("verify", bad, cwd=project, check=False).code == 1
    values = _values(project, "app")
    assert values[("dbkeeper_backup_last_verify_success", ())] == 0, "the most recent verify failed"
    assert "last verify      failed at " in dbkeeper("backups", "show", bad, cwd=project).out


def test_damaged_and_incomplete_backups_are_counted(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _backup(project, "app")
    cut = _backup(project, "app")
    artifact = artifact_of(project / "backups", cut)
    artifact.write_bytes(artifact.read_bytes()[:10])  # a sound manifest, a truncated file: damaged, still app's
    abandoned = project / "backups" / "20200101T000000.000Z-abcd"
    abandoned.mkdir()  # a writer that died before its manifest: nobody can tell whose it was
    values = _values(project, "app")
    assert values[(STATUS, (("status", "complete"),))] == 1
    assert values[(STATUS, (("status", "damaged"),))] == 1
    assert values[(STATUS, (("status", "incomplete"),))] == 1
    other = _values(project, "other")
    assert other[(STATUS, (("status", "damaged"),))] == 0, "the damaged backup's manifest names app"
    assert other[(STATUS, (("status", "incomplete"),))] == 1, "an incomplete backup counts for every connection"


@pytest.mark.parametrize("damage", ["garbage", "oversized", "symlink", "wrong_field"])
def test_a_hostile_verify_record_is_ignored_with_a_note(tmp_path: Path, damage: str) -> None:
    project = _project(tmp_path)
    backup_id = _backup(project, "app")
    dbkeeper("verify", backup_id, cwd=project)
    record = project / "backups" / backup_id / ".records" / "verify.json"
    if damage == "garbage":
        record.write_text("{not json")
    elif damage == "oversized":
        record.write_text(json.dumps({"kind": "verify", "pad": "x" * 70_000}))
    elif damage == "symlink":
        secret = tmp_path / "elsewhere.json"
        secret.write_text(record.read_text())
        record.unlink()
        os.symlink(secret, record)
    else:
        record.write_text(json.dumps({**json.loads(record.read_text()), "ok": "yes"}))
    run = dbkeeper("metrics", "app", "--format", "json", cwd=project)
    assert "ignored its verify record" in run.err and backup_id in run.err
    (scrape,) = run.json()  # type: ignore[misc]  # a list of one
    assert not [s for s in scrape["samples"] if "verify" in s["metric"]], "an untrusted record is not exposed"
    assert "last verify      never" in dbkeeper("backups", "show", backup_id, cwd=project).out


def test_delete_and_prune_remove_the_records_with_their_backup(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first, second, third = (_backup(project, "app") for _ in range(3))
    for backup_id in (first, second, third):
        dbkeeper("verify", backup_id, cwd=project)
    dbkeeper("backups", "delete", first, cwd=project)
    dbkeeper("prune", "--keep-last", "1", cwd=project)
    assert sorted(p.name for p in (project / "backups").iterdir()) == [third]
    assert (project / "backups" / third / ".records" / "verify.json").is_file()


def test_verify_never_writes_its_record_through_a_link(tmp_path: Path) -> None:
    project = _project(tmp_path)
    backup_id = _backup(project, "app")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, project / "backups" / backup_id / ".records")
    run = dbkeeper("verify", backup_id, cwd=project)
    assert run.out.startswith(f"ok {backup_id}"), "the verify itself passes"
    assert f"the verify result of {backup_id} was not recorded" in run.err
    assert list(elsewhere.iterdir()) == [], "nothing written through the link"
