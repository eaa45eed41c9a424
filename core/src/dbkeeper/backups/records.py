"""Records kept beside a backup: what was learnt about it after it was sealed (a verify's, a drill's result).

A backup's manifest is sealed and never changes; facts that come later are small JSON
records in the backup's ``.records/`` directory (0700), one file per kind (``verify.json``,
0600), each replaced atomically by the next one of its kind. The directory's name starts
with ``.``, which no artifact's file may (see
:func:`~dbkeeper.backups.manifest.artifact_file_problem`), so a record never collides with
stored data; deleting or pruning the backup removes its records with it.

Records are read as a stranger may have written them: never through a symbolic link, at
most :data:`RECORD_LIMIT` bytes, every field checked. A record that fails a check is
ignored with a note, never trusted, and never makes its backup damaged.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dbkeeper.backups.localfs import DIR_FLAGS, DIR_MODE, FILE_FLAGS, FILE_MODE, PARTIAL
from dbkeeper.backups.manifest import format_time, parse_time
from dbkeeper.system.filesystem import write_all

RECORDS = ".records"
RECORD_LIMIT = 64 * 1024
"""Larger records are not read (ignored with a note): real ones are a few hundred bytes."""
PROBLEMS_KEPT = 10
"""A verify record keeps at most this many of the problems found, each at most 500 characters."""
OPTIONS_KEPT = 50
"""A drill record holds at most this many driver options (real drivers declare a few)."""


class DamagedRecordError(Exception):
    """A record is a link, not a regular file, too large, not JSON, or has a wrong field."""


def write_local_record(backup: Path, kind: str, data: Mapping[str, Any]) -> None:
    """Write record *kind* of the backup directory *backup* atomically, owner-only, never through a link.

    Raises ``OSError`` when it cannot be written (a read-only medium, a link in the way).
    """
    text = record_text(kind, data)
    dir_fd = os.open(backup, DIR_FLAGS)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(RECORDS, DIR_MODE, dir_fd=dir_fd)
        records_fd = os.open(RECORDS, DIR_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        _replace(records_fd, f"{kind}.json", text.encode())
    finally:
        os.close(records_fd)


def _replace(dir_fd: int, name: str, data: bytes) -> None:
    """Write *data* to *name* in the open directory: a private partial file, fsynced, renamed, directory fsynced."""
    partial = f"{name}.{os.urandom(4).hex()}{PARTIAL}"  # concurrent writers never share a partial file
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb", buffering=0) as file:
            write_all(file, data)
            os.fsync(file.fileno())
        os.replace(partial, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(partial, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


def read_local_record(backup: Path, kind: str) -> dict[str, Any] | None:
    """Record *kind* of the backup directory *backup*, or None when there is none.

    Raises :class:`DamagedRecordError` when it cannot be trusted.
    """
    try:
        dir_fd = os.open(backup, DIR_FLAGS)
    except OSError:
        return None  # the backup itself is gone or is not a directory: its listing says so
    try:
        records_fd = os.open(RECORDS, DIR_FLAGS, dir_fd=dir_fd)
        try:
            text = _read_file(records_fd, f"{kind}.json")
        finally:
            os.close(records_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedRecordError(f"{RECORDS}/{kind}.json cannot be opened ({exc.strerror})") from None
    finally:
        os.close(dir_fd)
    return parse_record(text, kind)


def parse_record(text: str, kind: str) -> dict[str, Any]:
    """The JSON object of record *kind*; DamagedRecordError when it is not JSON or not such a record."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise DamagedRecordError(f"{RECORDS}/{kind}.json is not JSON") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise DamagedRecordError(f"{RECORDS}/{kind}.json is not a {kind} record")
    return data


def record_text(kind: str, data: Mapping[str, Any]) -> str:
    """Record *kind* holding *data*, as the JSON text stored for it."""
    return json.dumps({"kind": kind, **data}, indent=2, sort_keys=True) + "\n"


def _read_file(dir_fd: int, name: str) -> str:
    """The text of regular file *name* in the open directory, at most :data:`RECORD_LIMIT` bytes."""
    fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DamagedRecordError(f"{RECORDS}/{name} is not a regular file")
        data = file.read(RECORD_LIMIT + 1)
    if len(data) > RECORD_LIMIT:
        raise DamagedRecordError(f"{RECORDS}/{name} is larger than {RECORD_LIMIT // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedRecordError(f"{RECORDS}/{name} is not UTF-8 text") from None


def _time(value: object) -> datetime:
    """A record's ``at``; DamagedRecordError when it is not a time :func:`format_time` wrote."""
    try:
        moment = parse_time(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise DamagedRecordError("at must be a time like 2026-11-21T11:00:02.134020Z")
    return moment


@dataclass(frozen=True)
class VerifyRecord:
    """The result of the last ``verify`` of a backup: when, how deep, and whether it passed."""

    ok: bool
    deep: bool
    at: datetime
    checked_bytes: int
    problems: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        """The record as JSON-ready data (problems cut to :data:`PROBLEMS_KEPT`, 500 characters each)."""
        return {
            "ok": self.ok,
            "deep": self.deep,
            "at": format_time(self.at),
            "checked_bytes": self.checked_bytes,
            "problems": [problem[:500] for problem in self.problems[:PROBLEMS_KEPT]],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> VerifyRecord:
        """Check every field of a read record; raises :class:`DamagedRecordError` on a wrong one."""
        ok, deep, at, checked, problems = (data.get(key) for key in ("ok", "deep", "at", "checked_bytes", "problems"))
        if not isinstance(ok, bool) or not isinstance(deep, bool):
            raise DamagedRecordError("ok and deep must be true or false")
        if isinstance(checked, bool) or not isinstance(checked, int) or not 0 <= checked < 2**63:
            raise DamagedRecordError("checked_bytes must be a byte count")
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems[:PROBLEMS_KEPT]):
            raise DamagedRecordError("problems must be a list of strings")
        return cls(ok, deep, _time(at), checked, tuple(p[:500] for p in problems[:PROBLEMS_KEPT]))


@dataclass(frozen=True)
class DrillRecord:
    """The result of the last restore drill of a backup: when, whether it passed, the restore's seconds.

    ``options`` are the driver options the restore ran with (``{"jobs": 2}``; empty in a
    record written before drills took options).
    """

    ok: bool
    at: datetime
    restore_seconds: float | None
    target: str
    problem: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The record as JSON-ready data (the problem cut to 500 characters)."""
        return {
            "ok": self.ok,
            "at": format_time(self.at),
            "restore_seconds": self.restore_seconds,
            "target": self.target[:200],
            "problem": self.problem[:500] if self.problem else None,
            "options": json_options(self.options),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DrillRecord:
        """Check every field of a read record; raises :class:`DamagedRecordError` on a wrong one."""
        ok, seconds, target, problem = (data.get(key) for key in ("ok", "restore_seconds", "target", "problem"))
        if not isinstance(ok, bool):
            raise DamagedRecordError("ok must be true or false")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0):
            raise DamagedRecordError("restore_seconds must be a number of seconds")
        if not isinstance(target, str) or not (problem is None or isinstance(problem, str)):
            raise DamagedRecordError("target and problem must be text")
        options = _drill_options(data.get("options", {}))
        return cls(
            ok, _time(data.get("at")), None if seconds is None else float(seconds), target[:200], problem, options
        )


def json_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Driver options as JSON values (a list of strings for a tuple)."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in options.items()}


def _drill_options(options: object) -> dict[str, Any]:
    """A read record's ``options``: names to integers, booleans, strings or lists of strings, or DamagedRecordError."""
    if not isinstance(options, dict) or len(options) > OPTIONS_KEPT:
        raise DamagedRecordError(f"options must be an object of at most {OPTIONS_KEPT} options")
    for name, value in options.items():
        plain = isinstance(value, int | str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if len(name) > 100 or not plain:
            raise DamagedRecordError(f"option {name[:100]!r} must be a number, true, false, text or a list of text")
    return dict(options)
