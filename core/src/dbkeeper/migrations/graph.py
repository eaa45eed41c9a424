"""Ordering migrations: dependencies form a DAG, applied in a deterministic topological order."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from dbkeeper.errors import MigrationError
from dbkeeper.migrations.files import Migration


def order(migrations: Sequence[Migration]) -> list[Migration]:
    """Migrations in dependency order; among those free to go, the smallest id goes first.

    A missing dependency or a cycle is a MigrationError naming the migrations involved.
    """
    by_id = {m.id: m for m in migrations}
    for migration in migrations:
        for needed in migration.depends_on:
            if needed not in by_id:
                raise MigrationError(
                    f"migration {migration.id} depends on {needed}, which does not exist in {migration.path.parent}"
                )
    waiting = {m.id: set(m.depends_on) for m in migrations}
    dependents: dict[str, list[str]] = {m.id: [] for m in migrations}
    for migration in migrations:
        for needed in migration.depends_on:
            dependents[needed].append(migration.id)
    ready = [m_id for m_id, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered: list[Migration] = []
    while ready:
        current = heapq.heappop(ready)
        ordered.append(by_id[current])
        for dependent in dependents[current]:
            waiting[dependent].discard(current)
            if not waiting[dependent]:
                heapq.heappush(ready, dependent)
    if len(ordered) != len(migrations):
        stuck = {m_id for m_id, needs in waiting.items() if needs}
        raise MigrationError(f"dependency cycle: {' → '.join(_cycle(stuck, by_id))}")
    return ordered


def _cycle(stuck: set[str], by_id: dict[str, Migration]) -> list[str]:
    """One cycle among the *stuck* migrations, as a path that returns to its start."""
    path: list[str] = []
    current = min(stuck)
    while current not in path:
        path.append(current)
        current = min(d for d in by_id[current].depends_on if d in stuck)
    return [*path[path.index(current) :], current]
