"""Scrapes as Prometheus families, exposed with ``prometheus_client`` (imported when used).

Every sample becomes part of a family named ``dbkeeper_`` + its name + ``_`` + its unit
(``dbkeeper_database_size_bytes``); a counter's family ends in ``_total``, an info's in
``_info``. Families have HELP and TYPE; the label names of a family are the union of its
samples' (a sample without one of them has it empty, which Prometheus reads as absent).
A sample that cannot be exposed (a bad name, a type or unit that contradicts its
family's, the same labels twice) is dropped with a note, so one driver's mistake never
breaks the exposition of the others.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbkeeper.monitoring.scrape import CONNECTION_LABEL, DatabaseMetrics
from dbkeeper.plugin.monitoring import Sample
from dbkeeper.system.notes import note

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "dbkeeper_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def family_name(sample: Sample) -> str:
    """The family *sample* is exposed in, as Prometheus shows it (``dbkeeper_transactions_total``)."""
    name = PREFIX + sample.name
    if sample.unit and not name.endswith("_" + sample.unit):
        name += "_" + sample.unit
    if sample.type == "counter":
        return name.removesuffix("_total") + "_total"
    if sample.type == "info":
        return name.removesuffix("_info") + "_info"
    return name


def _problem(sample: Sample) -> str | None:
    """Why *sample*'s family cannot be exposed, or None (checked once per family)."""
    if not _METRIC_NAME.match(family_name(sample)):
        return "its name is not a Prometheus metric name"
    if sample.type == "info" and sample.unit:
        return "an info metric has no unit"
    return None


@functools.lru_cache(maxsize=1024)
def _label_problem(names: tuple[str, ...]) -> str | None:
    """Why a sample with the label *names* cannot be exposed, or None (cached: few distinct sets)."""
    if bad := [name for name in names if not _LABEL_NAME.match(name) or name.startswith("__")]:
        return f"label {bad[0]!r} is not a Prometheus label name"
    return None


@dataclass
class _Family:
    """The samples of one family, checked against the first one's type, unit and help.

    Each row is the connection, the sample's own labels and its value: the ``connection``
    label is added when the family is made, not copied into every sample.
    """

    first: Sample
    problem: str | None
    rows: list[tuple[str, Mapping[str, str], float]] = field(default_factory=list)
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = field(default_factory=set)

    def add(self, connection: str, sample: Sample) -> str | None:
        """Keep *sample* of *connection*, or say why it does not belong here."""
        if self.problem:
            return self.problem
        if sample.type != self.first.type or sample.unit != self.first.unit:
            return f"its type or unit differs from the family's ({self.first.type}, {self.first.unit or 'no unit'})"
        labels = sample.labels
        if CONNECTION_LABEL in labels:
            labels = {key: value for key, value in labels.items() if key != CONNECTION_LABEL}
        if problem := _label_problem(tuple(labels)):
            return problem
        key = (connection, frozenset(labels.items()))
        if key in self.seen:
            return "another sample of the family has the same labels"
        self.seen.add(key)
        self.rows.append((connection, labels, sample.value))
        return None

    def metric(self) -> Metric:
        """The ``prometheus_client`` family."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        first = self.first
        name = PREFIX + first.name
        if first.type == "info":
            info = InfoMetricFamily(name.removesuffix("_info"), first.help, labels=[])
            for connection, labels, _ in self.rows:
                info.add_metric([], {CONNECTION_LABEL: connection, **labels})
            return info
        names = sorted({label for _, labels, _ in self.rows for label in labels})
        at = bisect.bisect(names, CONNECTION_LABEL)  # label names in order, ``connection`` among them
        kind = CounterMetricFamily if first.type == "counter" else GaugeMetricFamily
        family = kind(name, first.help, labels=[*names[:at], CONNECTION_LABEL, *names[at:]], unit=first.unit)
        for connection, labels, value in self.rows:
            values = [labels.get(label, "") for label in names]
            values.insert(at, connection)
            family.add_metric(values, value)
        return family


def families(scrapes: Iterable[DatabaseMetrics]) -> list[Metric]:
    """Every sample of *scrapes* in its family, families in the order they first appear.

    Each family's name is checked once, each sample's type, unit and label names against
    its family's (label-name sets are checked once each), so thousands of per-table
    samples cost little beyond ``prometheus_client``'s own formatting.
    """
    grouped: dict[str, _Family] = {}
    for scrape in scrapes:
        for sample in scrape.unlabelled_samples():
            name = family_name(sample)
            family = grouped.get(name)
            if family is None:
                family = grouped[name] = _Family(sample, _problem(sample))
            if problem := family.add(scrape.connection, sample):
                note(f"{scrape.connection}: sample {name} dropped: {problem}")
    return [family.metric() for family in grouped.values() if family.rows]


class _Collector:
    """A ``prometheus_client`` collector yielding fixed families (one registry per exposition)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """The families."""
        yield from self._metrics


def exposition(scrapes: Iterable[DatabaseMetrics]) -> bytes:
    """The Prometheus text format (0.0.4) of *scrapes*, made by ``prometheus_client``."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families(scrapes)))
    return generate_latest(registry)
