"""What ``verify`` and ``prune`` report: :class:`VerifyReport` and :class:`PrunePlan`.

A backup creates neither: :mod:`dbkeeper.backups.manager`, which returns them, imports this
module on first use of their names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbkeeper.backups.retention import Decision
    from dbkeeper.backups.storage import Entry


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``verify``: empty ``problems`` means the backup is good."""

    id: str
    deep: bool
    checked_bytes: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems


@dataclass(frozen=True)
class PrunePlan:
    """What ``prune`` keeps and deletes: decisions on complete backups, plus leftovers."""

    decisions: list[Decision]
    incomplete: list[Entry]
    damaged: list[Entry]
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def doomed(self) -> list[str]:
        """Ids of every backup that is (or would be) deleted."""
        return [d.manifest.id for d in self.decisions if not d.keep] + [e.id for e in self.incomplete]
