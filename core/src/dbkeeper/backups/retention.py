"""Retention policies: which backups ``prune`` keeps and which it deletes, and why.

Backups are grouped by source (the password-free source URL); each policy is applied per
group and a backup is kept when *any* policy keeps it, as restic does. Time windows are
measured back from the group's newest backup, not from now, so a source whose backups
stopped running never loses its last ones. The newest backup of a group is always kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dbkeeper.backups.manifest import Manifest
from dbkeeper.errors import ConfigError

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$")


def parse_duration(text: str) -> timedelta:
    """Parse ``7d``, ``2w``, ``1y6m``, ``36h`` (y = 365 days, m = 30 days)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise ConfigError(f"invalid duration {text!r}: use a number with y, m, w, d or h, e.g. 7d or 2w")
    years, months, weeks, days, hours = (int(g or 0) for g in match.groups())
    return timedelta(days=365 * years + 30 * months + 7 * weeks + days, hours=hours)


@dataclass(frozen=True)
class Policy:
    """How many backups to keep. Every field is optional; at least one must be set."""

    keep_last: int | None = None
    keep_within: timedelta | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None

    def __post_init__(self) -> None:
        counts = (self.keep_last, self.keep_daily, self.keep_weekly)
        if all(value is None for value in (*counts, self.keep_within)):
            raise ConfigError(
                "a retention policy needs at least one of --keep-last, --keep-within, --keep-daily, --keep-weekly"
            )
        if any(value is not None and value < 1 for value in counts):
            raise ConfigError("--keep-last, --keep-daily and --keep-weekly must be 1 or more")


@dataclass(frozen=True)
class Decision:
    """A backup and the reasons it is kept (empty: it is deleted)."""

    manifest: Manifest
    reasons: tuple[str, ...]

    @property
    def keep(self) -> bool:
        """Whether any policy keeps this backup."""
        return bool(self.reasons)


def _newest_per_bucket(group: Sequence[Manifest], n: int, bucket: Callable[[datetime], object]) -> set[str]:
    """Ids of the newest backup in each of the *n* newest buckets (days, weeks)."""
    kept: dict[object, str] = {}
    for manifest in group:  # newest first
        key = bucket(manifest.finished_at)
        if key not in kept:
            if len(kept) == n:
                break
            kept[key] = manifest.id
    return set(kept.values())


def decide(manifests: Sequence[Manifest], policy: Policy) -> list[Decision]:
    """Apply *policy* to complete backups; return one decision per backup, oldest first."""
    groups: dict[str, list[Manifest]] = defaultdict(list)
    for manifest in sorted(manifests, key=lambda m: m.finished_at, reverse=True):
        groups[manifest.source_url].append(manifest)
    decisions = []
    for group in groups.values():
        rules: list[tuple[str, set[str]]] = [("newest", {group[0].id})]
        if policy.keep_last:
            rules.append((f"last {policy.keep_last}", {m.id for m in group[: policy.keep_last]}))
        if policy.keep_within:
            horizon = group[0].finished_at - policy.keep_within
            rules.append(("within", {m.id for m in group if m.finished_at >= horizon}))
        if policy.keep_daily:
            rules.append(("daily", _newest_per_bucket(group, policy.keep_daily, lambda t: t.date())))
        if policy.keep_weekly:
            rules.append(("weekly", _newest_per_bucket(group, policy.keep_weekly, lambda t: t.isocalendar()[:2])))
        for manifest in group:
            reasons = tuple(name for name, ids in rules if manifest.id in ids)
            decisions.append(Decision(manifest, reasons))
    return sorted(decisions, key=lambda d: d.manifest.finished_at)
