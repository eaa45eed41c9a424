"""SQLite's side of ``dbkeeper drill``: a temporary file to restore into, and ``PRAGMA integrity_check``.

Without ``--into`` the target is a file in the drill's private directory, which the core
removes. With ``--into sqlite:////path/to/dir`` (SQLite has no server: the URL names a
directory) it is a new, uniquely named file there, removed afterwards with its journal,
WAL and shared-memory files — no other file in that directory is touched.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

from dbkeeper.plugin import DatabaseError, DatabaseURL, DrillRequest, DrillTarget, IntegrityCheck
from dbkeeper_sqlite.files import database_path, integrity_problems, opened

SIDE_FILES = ("-journal", "-wal", "-shm")
"""What SQLite may keep beside a database file, removed with a scratch file."""


class SqliteDrill:
    """The drill target and check of the SQLite driver."""

    @contextlib.contextmanager
    def target(self, request: DrillRequest) -> Iterator[DrillTarget]:
        """A file that does not exist yet: in the drill's directory, or a uniquely named one under ``--into``."""
        if request.into is None:
            path = request.workdir / f"{request.backup.database or 'drill'}.db"
            yield _target(path, "a temporary SQLite file", f"rm -r {shlex.quote(str(request.workdir))}")
            return
        directory = database_path(request.into, why_not="cannot hold a drill's scratch file")
        if not directory.is_dir():
            raise DatabaseError(
                f"--into {request.into} must name an existing directory for SQLite (the drill creates a scratch "
                "file there and removes it afterwards), e.g. sqlite:////var/tmp/drills"
            )
        path = directory.resolve() / f"dbkeeper-drill-{request.backup.id}-{os.urandom(3).hex()}.db"
        kept = False
        try:
            yield _target(path, f"a scratch file in {directory}", f"rm {shlex.quote(str(path))}")
            kept = request.keep
        finally:
            if not kept:
                for suffix in ("", *SIDE_FILES):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

    def check_integrity(self, url: DatabaseURL) -> list[IntegrityCheck]:
        """``PRAGMA integrity_check`` of the restored file: every page, index and constraint SQLite can check."""
        with opened(database_path(url), readonly=True) as conn:
            problems = integrity_problems(conn, quick=False)
        detail = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        return [IntegrityCheck("integrity_check", not problems, detail or "ok")]


def _target(path: Path, kind: str, stop: str) -> DrillTarget:
    """The drill's target file, created empty and owner-only: the restore keeps an existing file's mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    return DrillTarget(DatabaseURL.parse(f"sqlite:///{path}"), kind, f"sqlite3 {shlex.quote(str(path))}", stop)
