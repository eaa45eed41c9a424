"""The contents of a backup's records: the last verify's and the last drill's results.

:mod:`dbkeeper.backups.records` reads and writes them; ``verify``, ``drill`` and
``backups list`` import this module when they need them (a backup does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbkeeper.backups.manifest import format_time, parse_time
from dbkeeper.backups.records import DamagedRecordError, json_options

PROBLEMS_KEPT = 10
"""A verify record keeps at most this many of the problems found, each at most 500 characters."""
OPTIONS_KEPT = 50
"""A drill record holds at most this many driver options (real drivers declare a few)."""


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


def _drill_options(options: object) -> dict[str, Any]:
    """A read record's ``options``: names to integers, booleans, strings or lists of strings, or DamagedRecordError."""
    if not isinstance(options, dict) or len(options) > OPTIONS_KEPT:
        raise DamagedRecordError(f"options must be an object of at most {OPTIONS_KEPT} options")
    for name, value in options.items():
        plain = isinstance(value, int | str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if len(name) > 100 or not plain:
            raise DamagedRecordError(f"option {name[:100]!r} must be a number, true, false, text or a list of text")
    return dict(options)
