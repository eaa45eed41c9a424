"""PostgreSQL's side of ``dbkeeper drill``: a throwaway cluster or a scratch database, and ``amcheck``.

Without ``--into`` the backup is restored into a throwaway cluster of its major version
(:mod:`dbkeeper_postgresql.cluster`), under the backup's database name (the restore
creates it); what the restore needs is prepared while the cluster starts
(:mod:`dbkeeper_postgresql.warmup`). With ``--into`` it is restored into a new scratch
database on that server (:mod:`dbkeeper_postgresql.scratch`). The integrity check is
``amcheck`` on every B-tree index (:mod:`dbkeeper_postgresql.amcheck`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from dbkeeper.plugin import DatabaseURL, DrillRequest, DrillTarget, IntegrityCheck
from dbkeeper_postgresql.cluster import Cluster, server_major
from dbkeeper_postgresql.warmup import restore_prepared


class PostgresDrill:
    """The drill target and check of the PostgreSQL driver."""

    @contextlib.contextmanager
    def target(self, request: DrillRequest) -> Iterator[DrillTarget]:
        """A throwaway cluster of the backup's major version, or a scratch database on ``--into``."""
        if request.into is not None:
            from dbkeeper_postgresql.scratch import scratch_database

            with scratch_database(request, request.into) as target:
                yield target
            return
        major = server_major(request.backup.engine_version)
        database = request.backup.database or "drill"
        cluster = Cluster.prepared(major, request.workdir)
        url = cluster.url(database)
        with contextlib.ExitStack() as stack:
            with restore_prepared(request.backup, url):  # while initdb and the server's start run
                stack.enter_context(cluster.running(keep=request.keep))
            cluster.create_roles(_roles(request.backup.details))
            yield DrillTarget(
                url=url,
                kind=f"a throwaway PostgreSQL {major} server",
                connect=cluster.connect_command(database),
                stop=cluster.stop_command(request.workdir),
            )

    def check_integrity(self, url: DatabaseURL) -> list[IntegrityCheck]:
        """``bt_index_check`` of every B-tree index (skipped, with the reason, when amcheck is unavailable)."""
        from dbkeeper_postgresql.amcheck import check_indexes

        return [check_indexes(url)]


def _roles(details: Mapping[str, Any]) -> list[str]:
    """The roles the backup recorded (``details["roles"]``; none in backups made before it was recorded)."""
    recorded = details.get("roles")
    return [name for name in recorded if isinstance(name, str)] if isinstance(recorded, list) else []
