"""What a drill's restore needs, prepared while the throwaway cluster starts.

``initdb`` and the server's start leave this process waiting for half a second; meanwhile
a thread imports psycopg and probes the restore's client tool (``pg_restore --version``,
or ``psql``'s; cached by :func:`~dbkeeper_postgresql.clients.locate`), which the restore
would otherwise do before its first connection. The thread is joined before the restore
starts, also when the cluster fails to come up. Whatever fails there is left for the
restore to run into, and to report, itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from dbkeeper.plugin import BackupFacts, DatabaseURL


@contextlib.contextmanager
def restore_prepared(backup: BackupFacts, url: DatabaseURL) -> Iterator[None]:
    """Within the block, a thread prepares the restore of *backup* into *url*; the block ends when the thread has."""
    fmt = str(backup.details.get("format", backup.format))
    client = "psql" if fmt == "sql" else "pg_restore"
    thread = threading.Thread(target=_prepare, args=(client, url), name="warm-up")
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _prepare(client: str, url: DatabaseURL) -> None:
    """Import psycopg and locate *client* as the restore into *url* will; a failure is the restore's to meet."""
    with contextlib.suppress(Exception):
        import psycopg  # noqa: F401  (imported for the restore: the module stays loaded)

        from dbkeeper_postgresql.clients import locate
        from dbkeeper_postgresql.connections import Endpoint

        locate(client, Endpoint.from_url(url).params)
