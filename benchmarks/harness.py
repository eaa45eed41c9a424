"""What the backup benchmarks share: timing commands, taking turns, printing the table.

Every command runs under GNU time (a small process, so that the peaks it reports are the
command's own and not inherited from this Python process across ``exec``), measured the
same way:

- **wall time** from its start until it has exited;
- **CPU time**: user + system seconds of the command and of every process it waited for;
- **tree peak RSS**: the largest peak of the command and of any process it waited for
  (GNU time's ``%M``): for a shell pipeline, its biggest tool;
- **own peak RSS**: the command's own high-water mark (``VmHWM`` in ``/proc``), read every
  20 ms while it runs: for dbkeeper, its Python process alone.

:func:`compare` runs a list of commands once untimed (so that all of them see the same warm
page cache, which cannot be dropped here), then in turn, ``--runs`` times; before every run
the previous run's output is removed and ``sync`` writes dirty pages out, so that no run
pays for the write-back of the one before. A side's figures are its fastest run, its least
CPU time and its highest peak.
"""

from __future__ import annotations

import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DBKEEPER = Path(os.environ.get("DBKEEPER_BENCH_CLI") or REPO / ".venv" / "bin" / "dbkeeper")
"""The dbkeeper CLI timed: this checkout's, or DBKEEPER_BENCH_CLI's (another checkout's, for before/after)."""
CORES = os.cpu_count() or 1
GNU_TIME = "/usr/bin/time"
POLL_SECONDS = 0.02
"""How often a running command's own peak RSS is read."""
TREE_POLL_SECONDS = 0.01
"""How often a watched command's process tree is walked (:attr:`Side.watch_tree`)."""


@dataclass
class Span:
    """A process of a watched command's tree: its arguments, and when it was first and last seen.

    Times are seconds after the command started, each to within a poll
    (:data:`TREE_POLL_SECONDS`, more when the machine is busy); a process that lived less
    than a poll may be missed.
    """

    pid: int
    argv: list[str]
    started: float
    ended: float

    @property
    def name(self) -> str:
        """The program's file name (``pg_restore``)."""
        return Path(self.argv[0]).name if self.argv else ""

    @property
    def seconds(self) -> float:
        """How long it was seen running."""
        return self.ended - self.started


@dataclass
class Sample:
    """One timed run of a command."""

    seconds: float
    cpu_seconds: float
    own_rss_kib: int
    tree_rss_kib: int
    stdout: str
    processes: list[Span] = field(default_factory=list)
    """Every process of the command's tree, when its side is watched."""

    def summary(self) -> str:
        """The run on one line, for the progress log."""
        return (
            f"{self.seconds:.2f}s (CPU {self.cpu_seconds:.2f}s), own RSS {self.own_rss_kib / 1024:.0f} MiB, "
            f"tree RSS {self.tree_rss_kib / 1024:.0f} MiB"
        )


@dataclass
class Side:
    """One command compared with others, the cleanup that runs before each of its runs, and its samples."""

    label: str
    argv: list[str]
    cleanup: Callable[[], None] = lambda: None
    samples: list[Sample] = field(default_factory=list)
    watch_tree: bool = False
    """Whether each run records its processes (:attr:`Sample.processes`)."""

    @property
    def best(self) -> float:
        """The fastest run, in seconds."""
        return min(s.seconds for s in self.samples)

    @property
    def median(self) -> float:
        """The median run, in seconds."""
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        """The least CPU time of any run, in seconds."""
        return min(s.cpu_seconds for s in self.samples)

    @property
    def own_rss_mib(self) -> float:
        """The highest peak RSS of the command's own process in any run, in MiB."""
        return max(s.own_rss_kib for s in self.samples) / 1024

    @property
    def tree_rss_mib(self) -> float:
        """The highest peak RSS of the command or a process it waited for, in any run, in MiB."""
        return max(s.tree_rss_kib for s in self.samples) / 1024

    @property
    def last_line(self) -> str:
        """The last line the latest run printed (``dbkeeper -q backup`` prints the backup id)."""
        return self.samples[-1].stdout.strip().splitlines()[-1]


def dbkeeper(*args: str) -> list[str]:
    """The dbkeeper CLI with *args*, quiet (``-q`` before the command works with every version)."""
    return [str(DBKEEPER), "-q", *args]


def measure(
    argv: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None, *, watch_tree: bool = False
) -> Sample:
    """Run *argv* in *cwd* with *env* as its environment (this one's when None); see the module docstring.

    With *watch_tree*, the command's processes are recorded as they come and go (:class:`Span`).
    """
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "time"
        with (Path(scratch) / "stdout").open("w+") as out:
            started = time.perf_counter()
            timer = subprocess.Popen(
                [GNU_TIME, "-f", "%M %U %S", "-o", str(report), *argv], cwd=cwd, env=env, stdout=out
            )
            peak = _OwnPeak(timer.pid)
            tree = _Tree(timer.pid, started) if watch_tree else None
            timer.wait()
            seconds = time.perf_counter() - started
            own = peak.stop()
            processes = tree.stop() if tree else []
            out.seek(0)
            stdout = out.read()
        if timer.returncode != 0:
            raise SystemExit(f"command failed with status {timer.returncode}: {shlex.join(argv)}")
        rss, user, system = report.read_text().splitlines()[-1].split()
    return Sample(seconds, float(user) + float(system), own, int(rss), stdout, processes)


class _OwnPeak:
    """Reads the ``VmHWM`` of GNU time's child every :data:`POLL_SECONDS` on a thread, until stopped."""

    def __init__(self, timer_pid: int) -> None:
        self._children = Path(f"/proc/{timer_pid}/task/{timer_pid}/children")
        self._status: Path | None = None
        self._peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            self._read()
            if self._done.wait(POLL_SECONDS):
                return

    def _read(self) -> None:
        try:
            if self._status is None:
                children = self._children.read_text().split()
                if not children:
                    return
                self._status = Path(f"/proc/{children[0]}/status")
            for line in self._status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self._peak = max(self._peak, int(line.split()[1]))
        except (OSError, ValueError):
            pass

    def stop(self) -> int:
        """Stop reading; the highest ``VmHWM`` seen, in KiB."""
        self._done.set()
        self._thread.join()
        return self._peak


class _Tree:
    """Walks the tree under GNU time's process every :data:`TREE_POLL_SECONDS` on a thread, until stopped.

    Children are read from ``/proc/PID/task/TID/children`` of every thread (a process may
    start children from any of its threads), so only the tree's own processes are read.
    """

    def __init__(self, root: int, started: float) -> None:
        self._root = root
        self._started = started
        self._spans: dict[tuple[int, str], Span] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            self._read(time.perf_counter() - self._started)
            if self._done.wait(TREE_POLL_SECONDS):
                return

    def _read(self, now: float) -> None:
        pending = [self._root]
        while pending:
            pid = pending.pop()
            try:
                starttime = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
                key = (pid, starttime)  # a pid reused within the run is another process
                span = self._spans.setdefault(key, Span(pid, [], now, now))
                span.ended = now
                # read again every time: a forked child execs its program after it was first seen
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
                span.argv = argv or span.argv  # a zombie's is empty
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending += map(int, (task / "children").read_text().split())
            except (OSError, IndexError, ValueError):
                continue

    def stop(self) -> list[Span]:
        """Stop watching; every process seen, in the order they appeared."""
        self._done.set()
        self._thread.join()
        return sorted(self._spans.values(), key=lambda span: span.started)


def compare(
    sides: Sequence[Side], runs: int, cwd: Path, env: Mapping[str, str] | None = None, *, warm_up: bool = True
) -> None:
    """Run every side once untimed (unless not *warm_up*), then all of them in turn *runs* times."""
    for attempt in range(0 if warm_up else 1, runs + 1):
        for side in sides:
            side.cleanup()
            os.sync()
            sample = measure(side.argv, cwd, env, watch_tree=side.watch_tree)
            if attempt:
                side.samples.append(sample)
            print(f"  {f'run {attempt}' if attempt else 'warm-up'}: {side.label}: {sample.summary()}", flush=True)


def print_table(sides: Sequence[Side], references: Mapping[str, str]) -> None:
    """One row per side; *references* maps a side's label to the label of the side its ratio is taken against."""
    by_label = {side.label: side for side in sides}
    headers = ["command", "best s", "vs", "ratio", "CPU s", "RSS own MiB", "RSS tree MiB"]
    rows = []
    for side in sides:
        reference = by_label.get(references.get(side.label, ""))
        ratio = f"{side.best / reference.best:.3f}" if reference else ""
        rows.append(
            [
                side.label,
                f"{side.best:.2f}",
                references.get(side.label, ""),
                ratio,
                f"{side.cpu:.2f}",
                f"{side.own_rss_mib:.0f}",
                f"{side.tree_rss_mib:.0f}",
            ]
        )
    print_columns(headers, rows, left=(0, 2))
    print("ratio = this command / the one in 'vs'; CPU = user + system of the command and its children")


def print_columns(headers: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> None:
    """*rows* under *headers* in aligned columns: the columns numbered in *left* to the left, others to the right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        cells = enumerate(zip(row, widths, strict=True))
        print("  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in cells))


def remove(*paths: Path) -> Callable[[], None]:
    """A cleanup that deletes *paths* (files or directories) where they exist."""

    def cleanup() -> None:
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    return cleanup


def require(tools: Sequence[str], hint: str) -> str | None:
    """What is missing of *tools*, GNU time and dbkeeper, said with *hint*; None when all are installed."""
    missing = next((tool for tool in (*tools, GNU_TIME, str(DBKEEPER)) if not shutil.which(tool)), None)
    return f"{missing} is not installed ({hint})" if missing else None


def compile_bytecode(checkout: Path) -> None:
    """Compile *checkout*'s sources, as ``scripts/setup.sh`` does after installing.

    Its packages are editable installs: a source edited since has stale bytecode, and where
    bytecode writing is off (``PYTHONDONTWRITEBYTECODE``) every timed run would compile it
    again, which an installed dbkeeper never does.
    """
    sources = [checkout / "core" / "src", *sorted((checkout / "plugins").glob("*/src"))]
    subprocess.run([str(DBKEEPER.parent / "python"), "-m", "compileall", "-q", *map(str, sources)], check=True)


def print_start(workdir: Path) -> None:
    """The commit measured (the checkout whose ``.venv`` holds the CLI), the machine and how busy it is.

    The checkout's bytecode is brought up to date first (:func:`compile_bytecode`).
    """
    checkout = DBKEEPER.parents[2]
    compile_bytecode(checkout)
    commit = subprocess.run(
        ["git", "-C", str(checkout), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"dbkeeper {DBKEEPER} at {commit or 'unknown commit'}; {CORES} cores; workdir {workdir}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def print_end() -> None:
    """How busy the machine was at the end."""
    print(f"load average at the end {os.getloadavg()[0]:.2f} (timings are only comparable on an idle machine)")
