"""``dbkeeper drill`` of a PostgreSQL backup with the restore's driver options: ``--jobs``, dbkeeper.toml.

A real throwaway cluster per drill, a real backup of Chinook (11 tables) made once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pg_server import Server

from helpers import dbkeeper

CHINOOK_ROWS = 15607


@pytest.fixture(scope="module")
def made(pg: Server, chinook_template: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(directory, id) of one backup of Chinook, made once; tests drill copies of it."""
    directory = tmp_path_factory.mktemp("made")
    ident = dbkeeper("--quiet", "backup", pg.socket_url(chinook_template), "--dir", str(directory)).out.strip()
    return directory, ident


def passed(directory: Path, tmp: Path, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    """The report of ``dbkeeper drill latest --dir DIRECTORY --json ARGS``, which passed."""
    run = dbkeeper(
        "drill", "latest", "--dir", str(directory), "--json", *args, env={"TMPDIR": str(tmp)}, cwd=cwd, check=False
    )
    assert run.code == 0, (run.out, run.err)
    report = dict(json.loads(run.out))
    assert report["ok"] is True and report["rows"] == CHINOOK_ROWS, report
    counts = next(check for check in report["checks"] if check["name"] == "row counts")
    assert counts["detail"] == f"11 tables, {CHINOOK_ROWS} rows, as the manifest records"
    return report


def last_drill(directory: Path) -> dict[str, Any]:
    """The drill record ``backups list --json`` shows for the only backup."""
    (entry,) = json.loads(dbkeeper("backups", "list", "--dir", str(directory), "--json").out)
    return dict(entry["last_drill"])


def test_jobs_2_drill_passes_and_records_its_options(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, _ = backup
    report = passed(directory, drill_tmp, "--jobs", "2")
    assert report["options"] == {"jobs": 2}
    assert last_drill(directory)["options"] == {"jobs": 2}
    assert not list(drill_tmp.iterdir())


def test_dbkeeper_toml_sets_the_drills_jobs_and_a_flag_beats_it(
    backup: tuple[Path, str], drill_tmp: Path, tmp_path: Path
) -> None:
    directory, _ = backup
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbkeeper.toml").write_text("[drivers.postgresql]\njobs = 3\n", encoding="utf-8")
    assert passed(directory, drill_tmp, cwd=project)["options"] == {"jobs": 3}
    assert passed(directory, drill_tmp, "--jobs", "1", cwd=project)["options"] == {"jobs": 1}
    assert last_drill(directory)["options"] == {"jobs": 1}


def test_a_selection_is_no_drill_option(backup: tuple[Path, str], drill_tmp: Path) -> None:
    directory, _ = backup
    run = dbkeeper("drill", "latest", "--dir", str(directory), "--schema", "public", check=False)
    assert run.code == 2 and "No such option '--schema'" in run.err, run.err
