"""``dbkeeper top``: a live view of one database, refreshed in place.

A :class:`Sampler` thread reads the database every *interval* seconds — one scrape of
``Driver.collect_metrics`` and one ``Driver.sessions`` call, each bounded by the
``[monitoring]`` deadline — so that the keyboard stays responsive while a reading waits
for a slow or vanished server. :func:`watch` draws each :class:`Reading` with rich's
``Live`` on the alternate screen: a header (engine, version, uptime, connections used of
the maximum, the time of the reading), per-second rates of every counter between the last
two readings, the other gauges, and the sessions, longest-running first. A database that
goes down shows ``down: reason`` and is read again at the next interval.

The terminal is in cbreak mode while the view runs (keys arrive one by one, unechoed;
Ctrl-C still interrupts) and is restored on the way out, however the view ends.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from dbkeeper.connections.urls import DatabaseURL, error_line
from dbkeeper.errors import DbkeeperError, UnsupportedOperationError
from dbkeeper.plugin.monitoring import (
    Deadline,
    MetricsOptions,
    MetricsRequest,
    Sample,
    Session,
    SessionsRequest,
)
from dbkeeper.system.filesystem import human_bytes

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from dbkeeper.connections.monitoring_settings import MonitoringSettings
    from dbkeeper.plugin.manager import Driver

DEFAULT_INTERVAL = 2.0
"""Seconds between two readings unless ``--interval`` says otherwise."""
KEY_POLL = 0.1
"""Seconds the view waits for a key before it looks for a new reading."""
QUIT_KEYS = frozenset("qQ")
HEADER_METRICS = frozenset({"version", "uptime", "connections", "connections_max"})
"""Gauges the header shows; the "now" table lists the others."""
SESSION_COLUMNS = ("ID", "USER", "DATABASE", "STATE", "TIME", "WAIT", "BLOCKED BY", "QUERY")
FIXED_LINES = 12
"""Lines of the screen that are not session rows when the rates and gauges are short."""


@dataclass(frozen=True)
class Target:
    """What top watches: the connection's label, its URL, its driver and the scrape's bounds."""

    label: str
    url: DatabaseURL
    driver: Driver
    settings: MonitoringSettings


@dataclass(frozen=True)
class Reading:
    """One look at the database: its samples and sessions, or why they could not be read.

    ``at`` is ``time.monotonic()`` when the scrape started (rates divide by the difference
    of two); ``down`` the reason the database could not be scraped; ``failed`` each failed
    collector as ``name: error``; ``sessions_note`` why sessions are missing.
    """

    at: float
    clock: datetime
    samples: tuple[Sample, ...] = ()
    failed: tuple[str, ...] = ()
    down: str | None = None
    sessions: tuple[Session, ...] = ()
    sessions_note: str | None = None


def read(target: Target) -> Reading:
    """Scrape *target* once (no per-table series) and list its sessions; never raises for a database problem."""
    at, clock = time.monotonic(), datetime.now().astimezone()
    settings = target.settings
    request = MetricsRequest(
        driver=target.driver.name,
        url=target.url,
        deadline=Deadline(settings.deadline),
        statement_timeout=settings.statement_timeout,
        lock_timeout=settings.lock_timeout,
        options=MetricsOptions(table_limit=0),
    )
    try:
        results = target.driver.collect_metrics(request)
    except Exception as exc:  # shown as "down: …" and tried again at the next interval
        return Reading(at, clock, down=_reason(exc))
    samples = tuple(sample for result in results for sample in result.samples)
    failed = tuple(f"{result.name}: {result.error}" for result in results if not result.success)
    sessions, note = _sessions(target)
    return Reading(at, clock, samples, failed, sessions=sessions, sessions_note=note)


def _sessions(target: Target) -> tuple[tuple[Session, ...], str | None]:
    request = SessionsRequest(
        driver=target.driver.name,
        url=target.url,
        deadline=Deadline(target.settings.deadline),
        statement_timeout=target.settings.statement_timeout,
    )
    try:
        return tuple(target.driver.sessions(request)), None
    except UnsupportedOperationError:
        return (), f"the {target.driver.name} driver does not list sessions"
    except Exception as exc:
        return (), f"sessions could not be read: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    """One line for the screen; a non-dbkeeper error (a driver's bug) is named by its type."""
    return error_line(exc, with_type=not isinstance(exc, DbkeeperError))


@dataclass(frozen=True)
class Rate:
    """A counter's increase per second between two readings; ``name`` includes its labels' values."""

    name: str
    per_second: float


def rates(previous: Reading | None, current: Reading) -> list[Rate]:
    """Every counter of *current* that *previous* has too, per second; a counter that fell (a restart) is left out."""
    if previous is None or previous.down or current.down or current.at <= previous.at:
        return []
    before = {_key(sample): sample.value for sample in previous.samples if sample.type == "counter"}
    elapsed = current.at - previous.at
    found = []
    for sample in current.samples:
        key = _key(sample)
        if sample.type == "counter" and key in before and sample.value >= before[key]:
            found.append(Rate(_title(sample), (sample.value - before[key]) / elapsed))
    return sorted(found, key=lambda rate: rate.name)


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def _title(sample: Sample) -> str:
    """``transactions commit``: the name and its labels' values, in label order."""
    return " ".join([sample.name, *(sample.labels[name] for name in sorted(sample.labels))])


def duration(seconds: float) -> str:
    """``4.2s``, ``12:07``, ``3:12:07``, ``2d 03:12:07``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02}:{minutes:02}:{secs:02}"
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def figure(sample: Sample) -> str:
    """A gauge's value for people, by its unit; an info metric's label values."""
    if sample.type == "info":
        return ", ".join(sample.labels[name] for name in sorted(sample.labels))
    if sample.unit == "bytes":
        return human_bytes(int(sample.value))
    if sample.unit == "seconds":
        return duration(sample.value)
    if sample.unit == "ratio":
        return f"{sample.value:.1%}"
    return f"{sample.value:,.0f}" if sample.value == int(sample.value) else f"{sample.value:,.2f}"


def header(target: Target, reading: Reading) -> str:
    """The first line: connection, engine and version, uptime, connections used of the maximum, the reading's time."""
    values = {sample.name: sample.value for sample in reading.samples if sample.name in HEADER_METRICS}
    version = next((s.labels.get("version", "") for s in reading.samples if s.name == "version"), "")
    parts = [f"{target.label} ({target.driver.name} {version})".replace(" )", ")")]
    if "uptime" in values:
        parts.append(f"up {duration(values['uptime'])}")
    if "connections" in values:
        used = sum(sample.value for sample in reading.samples if sample.name == "connections")
        of_max = f" of {values['connections_max']:.0f}" if "connections_max" in values else ""
        parts.append(f"connections {used:.0f}{of_max}")
    parts.append(f"at {reading.clock:%H:%M:%S}")
    return " · ".join(parts)


def gauges(reading: Reading) -> list[tuple[str, str]]:
    """The gauges and info metrics the header does not show, as (name, value), by name."""
    shown = [
        (_title(s) if s.type != "info" else s.name, figure(s))
        for s in reading.samples
        if s.type != "counter" and s.name not in HEADER_METRICS and "table" not in s.labels
    ]
    return sorted(shown)


def session_rows(sessions: Sequence[Session]) -> list[tuple[str, ...]]:
    """The sessions as table rows, the longest in its state first (those without a time last)."""
    ordered = sorted(sessions, key=lambda s: (s.seconds is None, -(s.seconds or 0.0)))
    return [
        (
            s.id,
            s.user,
            s.database,
            s.state,
            "" if s.seconds is None else duration(s.seconds),
            s.wait,
            ", ".join(s.blocked_by),
            " ".join(s.query.split()),
        )
        for s in ordered
    ]


@dataclass
class View:
    """What the screen shows: the last reading, the one before it (for rates) and the figures drawn from them."""

    target: Target
    interval: float
    previous: Reading | None = None
    current: Reading | None = None
    last_rates: list[Rate] = field(default_factory=list)

    def add(self, reading: Reading) -> None:
        """Take a new reading; rates are computed against the one before it."""
        self.previous, self.current = self.current, reading
        self.last_rates = rates(self.previous, reading)

    def render(self, height: int) -> RenderableType:
        """The whole screen for a terminal *height* lines tall."""
        from rich.console import Group
        from rich.text import Text

        if self.current is None:
            return Group(Text(f"{self.target.label}: reading {self.target.url} …", style="bold"), self._footer())
        reading = self.current
        parts: list[RenderableType] = [Text(header(self.target, reading), style="bold")]
        if reading.down:
            parts.append(Text(f"down: {reading.down} (trying again every {self.interval:g}s)", style="bold red"))
        for failure in reading.failed:
            parts.append(Text(f"collector failed: {failure}", style="yellow"))
        figures = self._figures()
        if figures is not None:
            parts.append(figures)
        if not reading.down:
            parts.append(self._sessions(max(1, height - FIXED_LINES - self._figure_lines() - len(reading.failed))))
        parts.append(self._footer())
        return Group(*parts)

    def _figures(self) -> RenderableType | None:
        from rich.table import Table

        assert self.current is not None
        now = gauges(self.current)
        if self.current.down or not (now or self.previous):
            return None
        grid = Table.grid(padding=(0, 4))
        grid.add_row(_pairs("rate", "per second", self.rate_rows()), _pairs("now", "value", now))
        return grid

    def _figure_lines(self) -> int:
        """Rows the rate and "now" tables take."""
        if self.current is None or self.current.down:
            return 0
        return max(len(self.rate_rows()), len(gauges(self.current)))

    def rate_rows(self) -> list[tuple[str, str]]:
        """The counters that moved since the last reading; the others are only counted."""
        if self.previous is None or self.previous.down:
            return [("(after the next reading)", "")]
        if not self.last_rates:
            return [("(no counters)", "")]
        moving = [(rate.name, f"{rate.per_second:,.1f}") for rate in self.last_rates if rate.per_second]
        still = len(self.last_rates) - len(moving)
        return moving + ([(f"(unchanged: {still})", "")] if still else [])

    def _sessions(self, room: int) -> RenderableType:
        from rich.table import Table
        from rich.text import Text

        assert self.current is not None
        if self.current.sessions_note:
            return Text(self.current.sessions_note, style="dim")
        rows = session_rows(self.current.sessions)
        if not rows:
            return Text("no other sessions", style="dim")
        table = Table(box=None, header_style="bold reverse", expand=True, pad_edge=False)
        for name in SESSION_COLUMNS:
            table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=4 if name == "QUERY" else None)
        for row in rows[:room]:
            table.add_row(*row)
        hidden = len(rows) - room
        if hidden > 0:
            table.caption = f"{hidden} more sessions not shown"
        return table

    def _footer(self) -> RenderableType:
        from rich.text import Text

        return Text(f"q quit · Ctrl-C quit · a reading every {self.interval:g}s", style="dim")


def _pairs(title: str, heading: str, rows: list[tuple[str, str]]) -> RenderableType:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column(title)
    table.add_column(heading, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


class Sampler:
    """Reads the database on a thread of its own, every *interval* seconds from the start of one reading."""

    def __init__(self, read_once: Callable[[], Reading], interval: float) -> None:
        self._read_once = read_once
        self._interval = interval
        self._readings: queue.Queue[Reading] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dbkeeper-top-sampler", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the reading in progress (not waited for: it is bounded by the scrape's deadline)."""
        self._stop.set()

    def latest(self) -> Reading | None:
        """The newest reading not taken yet, if any (older ones are dropped)."""
        newest = None
        with contextlib.suppress(queue.Empty):
            while True:
                newest = self._readings.get_nowait()
        return newest

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._readings.put(self._read_once())
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Keys one by one and unechoed on terminal *fd*; its settings are restored on the way out."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def key_pressed(fd: int, timeout: float) -> str | None:
    """The keys typed on *fd* within *timeout* seconds (``None`` if none; ``""`` when the terminal is gone)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return None
    return os.read(fd, 64).decode(errors="replace")


def watch(target: Target, interval: float, console: Console, keyboard: int) -> None:
    """Show *target* live until ``q``, Ctrl-C or the end of the terminal; the terminal is restored."""
    from rich.live import Live

    view = View(target, interval)
    sampler = Sampler(lambda: read(target), interval)
    with cbreak(keyboard), Live(console=console, screen=True, auto_refresh=False) as live:
        sampler.start()
        try:
            _loop(view, sampler, live, console, keyboard)
        except KeyboardInterrupt:
            pass  # Ctrl-C quits like q
        finally:
            sampler.stop()


def _loop(view: View, sampler: Sampler, live: Live, console: Console, keyboard: int) -> None:
    """Until a quit key: take new readings and redraw, also when the terminal was resized."""
    drawn_for = None
    while True:
        keys = key_pressed(keyboard, KEY_POLL)
        if keys == "" or (keys and QUIT_KEYS & set(keys)):
            return
        reading = sampler.latest()
        if reading is not None:
            view.add(reading)
        if reading is not None or drawn_for != console.size:
            drawn_for = console.size
            live.update(view.render(console.size.height), refresh=True)
