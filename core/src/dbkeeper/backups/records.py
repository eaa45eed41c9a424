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

The records' contents, :class:`~dbkeeper.backups.record_types.VerifyRecord` and
:class:`~dbkeeper.backups.record_types.DrillRecord`, are defined in
:mod:`dbkeeper.backups.record_types`, which the commands that read or write records import:
a backup writes no record, so it does not create them.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbkeeper.backups.localfs import DIR_FLAGS, DIR_MODE, FILE_FLAGS, FILE_MODE, PARTIAL
from dbkeeper.system.filesystem import write_all

RECORDS = ".records"
RECORD_LIMIT = 64 * 1024
"""Larger records are not read (ignored with a note): real ones are a few hundred bytes."""


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


def json_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Driver options as JSON values (a list of strings for a tuple)."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in options.items()}
