"""A backup directory someone else wrote: links, hostile manifests, renamed ids, concurrent prunes.

Every test drives the real ``dbkeeper`` CLI as a process over real SQLite backups. What a
stranger put in the backup directory may make one backup unusable (``damaged``) or be left
alone (``foreign``); it never reaches outside the directory, and never breaks the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from dbkeeper.backups.manifest import seal
from helpers import BIN, artifact_of, assert_one_line_error, dbkeeper, make_db


def backup(db: Path, backups: Path) -> str:
    """A new backup of *db* in *backups*; its id."""
    return dbkeeper("backup", f"sqlite:///{db}", "--dir", str(backups), "--quiet").out.strip()


def listed(backups: Path) -> dict[str, dict]:
    """``backups list --json`` by id."""
    return {e["id"]: e for e in dbkeeper("backups", "list", "--dir", str(backups), "--json").json()}


def manifest_path(backups: Path, backup_id: str) -> Path:
    return backups / backup_id / "manifest.json"


def reseal(path: Path, change: callable) -> None:
    """Change a manifest and seal it again: a lie that checks out (the seal is a plain SHA256)."""
    data = json.loads(path.read_text())
    change(data)
    data["manifest_sha256"] = seal(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def small_db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "app.db", 200)


@pytest.fixture
def other_db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "other.db", 50)


# --- item 2: symbolic links in the backup directory ----------------------------------------------------------------


def test_a_link_named_like_a_backup_is_foreign_and_never_followed(small_db: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    theirs = backup(small_db, elsewhere)
    ours = tmp_path / "ours"
    mine = backup(small_db, ours)
    link = "20990101T000000.000Z-abcd"
    (ours / link).symlink_to(elsewhere / theirs)
    (ours / ".scratch-0badl1nk").symlink_to(elsewhere / theirs)

    entries = listed(ours)
    assert entries[link]["status"] == "foreign"
    assert "symbolic link" in entries[link]["problem"]
    assert entries[mine]["status"] == "complete"

    assert_one_line_error(dbkeeper("backups", "delete", link, "--dir", str(ours), check=False), "symbolic link")
    for command in (["verify", link], ["restore", link, f"sqlite:///{tmp_path}/r.db"], ["backups", "show", link]):
        assert_one_line_error(dbkeeper(*command, "--dir", str(ours), check=False), "symbolic link")
    assert not (tmp_path / "r.db").exists()

    pruned = dbkeeper("prune", "--keep-last", "1", "--dir", str(ours), "--json").json()
    assert link not in pruned["delete"]
    assert (ours / link).is_symlink() and (ours / ".scratch-0badl1nk").is_symlink(), "a link is left alone"
    assert manifest_path(elsewhere, theirs).is_file(), "nothing outside the backup directory is touched"
    assert listed(elsewhere)[theirs]["status"] == "complete"
    dbkeeper("verify", theirs, "--dir", str(elsewhere))


def test_links_inside_a_backup_are_not_followed(small_db: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    theirs = backup(small_db, elsewhere)
    ours = tmp_path / "ours"
    linked_manifest, linked_artifact = backup(small_db, ours), backup(small_db, ours)
    manifest_path(ours, linked_manifest).unlink()
    manifest_path(ours, linked_manifest).symlink_to(manifest_path(elsewhere, theirs))
    artifact = artifact_of(ours, linked_artifact)
    outside = tmp_path / "outside.zst"
    artifact.rename(outside)
    artifact.symlink_to(outside)

    entries = listed(ours)
    assert entries[linked_manifest]["status"] == "damaged"
    assert entries[linked_artifact]["status"] == "damaged"
    assert "symbolic link" in entries[linked_artifact]["problem"]
    run = dbkeeper("restore", linked_artifact, f"sqlite:///{tmp_path}/r.db", "--dir", str(ours), check=False)
    assert_one_line_error(run, "symbolic link")
    assert not (tmp_path / "r.db").exists()
    dbkeeper("backups", "delete", linked_manifest, "--dir", str(ours))
    assert manifest_path(elsewhere, theirs).is_file()
    dbkeeper("backups", "delete", linked_artifact, "--dir", str(ours))
    assert outside.is_file()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_manifest_that_is_not_a_regular_file_is_damaged_and_never_read(
    kind: str, small_db: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    good, odd = backup(small_db, backups), backup(small_db, backups)
    manifest_path(backups, odd).unlink()
    os.mkfifo(manifest_path(backups, odd)) if kind == "fifo" else manifest_path(backups, odd).mkdir()
    entries = listed(backups)  # a FIFO opened for reading would wait for a writer forever
    assert entries[odd]["status"] == "damaged" and "not a regular file" in entries[odd]["problem"]
    assert entries[good]["status"] == "complete"
    plan = dbkeeper("prune", "--keep-last", "1", "--dir", str(backups), "--json").json()
    assert plan["damaged"] == [odd] and odd not in plan["delete"]


# --- item 3: artifact names that leave the backup ------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["relative", "absolute", "hidden", "manifest", "nested"])
def test_an_artifact_name_must_be_a_plain_name_inside_its_backup(escape: str, small_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backup_id = backup(small_db, backups)
    artifact = artifact_of(backups, backup_id)
    outside = tmp_path / "elsewhere" / "x.db.zst"
    outside.parent.mkdir()
    shutil.copyfile(artifact, outside)  # same size, same digest: only the name can give it away
    name = {
        "relative": "../../elsewhere/x.db.zst",
        "absolute": str(outside),
        "hidden": ".x.db.zst",
        "manifest": "manifest.json",
        "nested": "sub/x.db.zst",
    }[escape]
    if escape in ("hidden", "nested"):
        (backups / backup_id / "sub").mkdir()
        artifact.rename(backups / backup_id / name)
    reseal(manifest_path(backups, backup_id), lambda m: m["artifacts"][0].update(file=name))

    assert listed(backups)[backup_id]["status"] == "damaged"
    assert "artifact" in listed(backups)[backup_id]["problem"]
    for command in (["verify", backup_id], ["verify", backup_id, "--deep"], ["backups", "show", backup_id]):
        assert_one_line_error(dbkeeper(*command, "--dir", str(backups), check=False), "artifact", "damaged")
    run = dbkeeper("restore", backup_id, f"sqlite:///{tmp_path}/r.db", "--dir", str(backups), check=False)
    assert_one_line_error(run, "artifact", "damaged")
    assert not (tmp_path / "r.db").exists()


# --- item 4: the id is the directory's name ------------------------------------------------------------------------


def test_a_manifest_claiming_another_backups_id_cannot_get_it_pruned(
    small_db: Path, other_db: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backup(small_db, backups)
    newest = backup(small_db, backups)
    impostor = "20000101T000000.000Z-0bad"  # older than everything: the first a keep-last drops
    shutil.copytree(backups / newest, backups / impostor)
    reseal(
        manifest_path(backups, impostor),
        lambda m: m.update(source_url=f"sqlite:///{other_db}", finished_at="2000-01-01T00:00:00.000000Z"),
    )
    backup(other_db, backups)
    backup(other_db, backups)

    entries = listed(backups)
    assert entries[impostor]["status"] == "damaged"
    assert newest in entries[impostor]["problem"] and impostor in entries[impostor]["problem"]
    plan = dbkeeper("prune", "--keep-last", "2", "--dir", str(backups), "--json").json()
    assert newest not in plan["delete"] and impostor not in plan["delete"]
    assert plan["damaged"] == [impostor]
    assert listed(backups)[newest]["status"] == "complete"
    dbkeeper("verify", newest, "--dir", str(backups))


def test_a_renamed_backup_directory_is_damaged_not_a_crash(small_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    old = backup(small_db, backups)
    backup(small_db, backups)
    renamed = "20000101T000000.000Z-beef"
    (backups / old).rename(backups / renamed)
    run = dbkeeper("prune", "--keep-last", "1", "--dir", str(backups), check=False)
    assert run.code == 0, run.err
    assert f"warning: {renamed}" in run.err and old in run.err
    assert listed(backups)[renamed]["status"] == "damaged"
    assert_one_line_error(dbkeeper("verify", renamed, "--dir", str(backups), check=False), old, "damaged")


# --- item 7: valid JSON that is hostile ----------------------------------------------------------------------------


def _deep(text: str) -> str:
    return text.replace('"details": {', '"details": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1)


def _long_integer(text: str) -> str:
    return text.replace('"row_counts": {', '"row_counts": {"huge": ' + "9" * 5000 + ", ", 1)


def _oversized(text: str) -> str:
    return text + " " * (16 * 1024 * 1024)


HOSTILE_TEXT = {"deep": _deep, "long integer": _long_integer, "oversized": _oversized}
HOSTILE_VALUES = {
    "size as text": lambda m: m["artifacts"][0].update(stored_bytes=str(m["artifacts"][0]["stored_bytes"])),
    "huge count": lambda m: m["row_counts"].update(item=10**4000),
    "driver as list": lambda m: m.update(driver=[1, 2]),
    "stages not a list": lambda m: m["artifacts"][0].update(stages={"name": "sha256"}),
    "no artifacts": lambda m: m.update(artifacts=[]),
    "bad time": lambda m: m.update(finished_at=12),
}


@pytest.mark.parametrize("hostility", [*HOSTILE_TEXT, *HOSTILE_VALUES])
def test_one_hostile_manifest_is_one_damaged_backup(hostility: str, small_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    good = backup(small_db, backups)
    bad = backup(small_db, backups)
    path = manifest_path(backups, bad)
    if hostility in HOSTILE_TEXT:
        path.write_text(HOSTILE_TEXT[hostility](json.dumps(json.loads(path.read_text()))))
    else:
        reseal(path, HOSTILE_VALUES[hostility])

    entries = listed(backups)
    assert entries[bad]["status"] == "damaged" and entries[good]["status"] == "complete"
    assert "damaged" in entries[bad]["problem"]
    table = dbkeeper("backups", "list", "--dir", str(backups))
    assert "damaged" in table.out
    prune = dbkeeper("prune", "--keep-last", "1", "--dir", str(backups), "--json")
    assert prune.json()["damaged"] == [bad]
    dbkeeper("verify", good, "--deep", "--dir", str(backups))
    dbkeeper("restore", good, f"sqlite:///{tmp_path}/r.db", "--dir", str(backups))
    assert dbkeeper("backups", "show", "latest", "--dir", str(backups), "--json").json()["id"] == good
    assert_one_line_error(dbkeeper("verify", bad, "--dir", str(backups), check=False), "damaged")


# --- item 15: a truncated artifact shows in the listing ------------------------------------------------------------


def test_a_truncated_artifact_is_listed_as_damaged(small_db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    good = backup(small_db, backups)
    cut = backup(small_db, backups)
    artifact = artifact_of(backups, cut)
    artifact.write_bytes(artifact.read_bytes()[:-100])
    entries = listed(backups)
    assert entries[good]["status"] == "complete"
    assert entries[cut]["status"] == "damaged"
    assert "truncated" in entries[cut]["problem"] and artifact.name in entries[cut]["problem"]
    row = next(line for line in dbkeeper("backups", "list", "--dir", str(backups)).out.splitlines() if cut in line)
    assert "damaged" in row and "truncated" in row
    run = dbkeeper("verify", cut, "--dir", str(backups), check=False)
    assert run.code == 1 and "truncated" in run.err and "failed verification" in run.err
    artifact.unlink()
    assert "missing" in listed(backups)[cut]["problem"]
    assert dbkeeper("backups", "show", "latest", "--dir", str(backups), "--json").json()["id"] == good


# --- item 16: hints carry the directory that was used --------------------------------------------------------------


def test_hints_name_the_backup_directory(small_db: Path, other_db: Path, tmp_path: Path) -> None:
    bk = tmp_path / "bk"
    backup(small_db, bk)
    run = dbkeeper("verify", "nope", "--dir", "bk", cwd=tmp_path, check=False)
    assert_one_line_error(run, "'dbkeeper backups list --dir bk'")
    backup(other_db, bk)
    run = dbkeeper("restore", "latest", "sqlite:///r.db", "--dir", "bk", cwd=tmp_path, check=False)
    assert_one_line_error(run, "'dbkeeper backups list --dir bk'")
    empty = dbkeeper("verify", "latest", "--dir", "my backups", cwd=tmp_path, check=False)
    assert_one_line_error(empty, "'dbkeeper backup --dir 'my backups''")
    default = dbkeeper("verify", "nope", cwd=tmp_path, check=False)
    assert_one_line_error(default, "'dbkeeper backups list'")


# --- item 8: concurrent backups and prunes -------------------------------------------------------------------------


WRITES, PRUNES = 20, 40
"""Per loop. With 6 and 10 the old races showed in one run of four; with these, in every run tried (4 of 4)."""


def _loop(argv: list[str], times: int, failures: list[str]) -> None:
    for _ in range(times):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            failures.append(f"{' '.join(argv[1:3])} exited {proc.returncode}: {proc.stderr.strip()}")


@pytest.mark.slow
def test_concurrent_backups_and_prunes_only_succeed_or_wait(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    dbkeeper_bin = str(BIN / "dbkeeper")
    loops = []
    for writer in range(4):
        db = make_db(tmp_path / f"w{writer}.db", 50)
        argv = [dbkeeper_bin, "backup", f"sqlite:///{db}", "--dir", str(backups), "--quiet", "--compress", "none"]
        loops.append((argv, WRITES))
    prune = [dbkeeper_bin, "prune", "--keep-last", "1", "--dir", str(backups), "--quiet"]
    loops += [(prune, PRUNES)] * 3
    failures: list[str] = []
    threads = [threading.Thread(target=_loop, args=(argv, times, failures)) for argv, times in loops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    entries = listed(backups)
    assert {e["status"] for e in entries.values()} == {"complete"}, "nobody was killed: nothing is left half-done"
    assert len({e["source_url"] for e in entries.values()}) == 4, "each source keeps its newest backup"
    for backup_id in entries:
        digest = hashlib.sha256(artifact_of(backups, backup_id).read_bytes()).hexdigest()
        assert digest in manifest_path(backups, backup_id).read_text()
    assert not [name for name in os.listdir(backups) if name.startswith(".")], "no scratch directory is left"
