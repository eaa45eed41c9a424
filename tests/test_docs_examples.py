"""The documentation's example sessions are run for real and must print what the docs show.

A fenced block whose info string is ``console`` is an example session: each line that
starts with ``$ `` is a shell command, run by one bash (so ``cd`` and variables carry
over) in a fresh temporary directory that holds ``chinook.db`` (the Chinook sample
database), with ``.venv/bin`` first on PATH; the lines after it, up to the next command,
are what it must print (stdout and stderr together, in order). A ``[exit N]`` line gives
the exit status; without one it is 1 if an expected line starts with ``error:`` and 0
otherwise. Blank lines at the end of an output are not compared.

Values that differ from run to run are matched by their shape, so the docs can show real
ones: a backup id or the timestamp that starts a new migration's id (the first time one
is seen it is bound to the real value, which later commands and outputs of the block
then use), a UTC time, a duration (``0.1s``, ``2.0 ms``), a 64-digit hex digest, and the
numbers of JSON ``duration``, ``seconds`` and ``duration_ms`` fields. ``…`` matches
anything within a line, and a line that is only ``…`` matches any number of lines.

An HTML comment just above the fence, ``<!-- console setup`` … ``-->``, holds shell
commands that prepare the directory without being shown (they must succeed). Their
output is ignored, except lines ``bind DOC_VALUE REAL_VALUE``, which bind a backup id the
example shows to one the setup made (``echo "bind 20261121T110047.458Z-7648 $ID"``).
"""

from __future__ import annotations

import difflib
import os
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import BIN, ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```console\s*$")
SETUP_START = "<!-- console setup"
SETUP_END = "-->"
EXIT = re.compile(r"^\[exit (\d+)\]$")
BIND = re.compile(r"^bind (\S+) (\S+)$", re.MULTILINE)
END_MARKER = re.compile(rb"\n\x1eEND (\d+)\n")
COMMAND_TIMEOUT = 300
BACKUP_ID = r"\d{8}T\d{6}(?:\.\d{3})?Z-[0-9a-f]{4}"
MIGRATION_TIME = r"\d{14}"
SHAPES = re.compile(
    rf"(?P<id>\b{BACKUP_ID}\b|\b{MIGRATION_TIME}(?=_))"
    r"|(?P<time>\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)"
    r"|(?P<jsonnum>(?<=\"duration\": )-?\d+(?:\.\d+)?(?:e-?\d+)?"
    r"|(?<=\"seconds\": )-?\d+(?:\.\d+)?(?:e-?\d+)?"
    r"|(?<=\"duration_ms\": )\d+)"
    r"|(?P<duration>\b\d+(?:\.\d+)? ?(?:ms|s)\b)"
    r"|(?P<hex>\b[0-9a-f]{64}\b)"
    r"|(?P<any>…)"
)
TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?"
ANY_LINES = "(?:[^\n]*\n)*?"


@dataclass
class Step:
    """One command of an example and what it must print."""

    command: str
    expected: list[str] = field(default_factory=list)
    status: int | None = None

    def expected_status(self) -> int:
        """``[exit N]``, else 1 when the output shows an error line, else 0."""
        if self.status is not None:
            return self.status
        return 1 if any(line.startswith("error:") for line in self.expected) else 0


@dataclass
class Example:
    """A ``console`` block: where it is, its hidden setup, its steps."""

    file: Path
    line: int
    setup: str
    steps: list[Step]

    @property
    def name(self) -> str:
        return f"{self.file.name}:{self.line}"


def examples_in(path: Path) -> list[Example]:
    """Every ``console`` block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = lines.index("```", index + 1)
            found.append(Example(path, index + 1, setup_above(lines, index), parse_steps(lines[index + 1 : end])))
            index = end
        index += 1
    return found


def setup_above(lines: list[str], fence: int) -> str:
    """The hidden setup commands in the comment that ends on the line above *fence*, if any."""
    if fence == 0 or lines[fence - 1].strip() != SETUP_END:
        return ""
    start = fence - 1
    while start >= 0 and not lines[start].startswith(SETUP_START):
        start -= 1
    return "\n".join(lines[start + 1 : fence - 1]) if start >= 0 else ""


def parse_steps(block: list[str]) -> list[Step]:
    """Commands (``$ …``) and the lines each must print."""
    steps: list[Step] = []
    for line in block:
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        elif not steps:
            raise AssertionError(f"output before the first command: {line!r}")
        elif match := EXIT.match(line):
            steps[-1].status = int(match.group(1))
        else:
            steps[-1].expected.append(line)
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


def pattern(expected: list[str], ids: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regex for the expected lines, and which of its groups binds which new backup id."""
    groups: dict[str, str] = {}
    parts = []
    for line in expected:
        parts.append(ANY_LINES if line == "…" else line_pattern(line, ids, groups) + "\n")
    return re.compile("".join(parts), re.DOTALL), groups


def line_pattern(line: str, ids: dict[str, str], groups: dict[str, str]) -> str:
    """The regex of one expected line (see the module docstring for the shapes)."""
    out = []
    position = 0
    for match in SHAPES.finditer(line):
        out.append(re.escape(line[position : match.start()]))
        position = match.end()
        text = match.group()
        if match.lastgroup == "id":
            if text in ids:
                out.append(re.escape(ids[text]))
            elif text in groups.values():
                out.append(f"(?P={next(g for g, doc in groups.items() if doc == text)})")
            else:
                group = f"id{len(groups)}"
                groups[group] = text
                out.append(f"(?P<{group}>{BACKUP_ID if re.fullmatch(BACKUP_ID, text) else MIGRATION_TIME})")
        else:
            out.append(
                {
                    "time": TIME,
                    "jsonnum": r"-?\d+(?:\.\d+)?(?:e-?\d+)?",
                    "duration": r"\d+(?:\.\d+)? ?(?:ms|s)",
                    "hex": "[0-9a-f]{64}",
                    "any": "[^\n]*?",
                }[match.lastgroup or ""]
            )
    out.append(re.escape(line[position:]))
    return "".join(out)


def environment(home: Path) -> dict[str, str]:
    """What the commands run with: .venv/bin first, no configuration or DATABASE_URL, 80 columns."""
    keep = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DBKEEPER_CONFIG")}
    return {
        **keep,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "COLUMNS": "80",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr reach the shared pipe in the order they were written
        "TZ": "UTC",
    }


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a shell script on its own (a setup); stdout and stderr together."""
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip


class Session:
    """One bash for a whole example, so ``cd`` and variables carry from command to command.

    Each command reads /dev/null as its stdin; its stdout and stderr reach one pipe in
    the order they were written. A marker line the shell prints after the command
    carries its exit status.
    """

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._pending = b""

    def run(self, command: str) -> tuple[int, str]:
        """Run *command*; its exit status and what it printed."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{{ {command}\n}} </dev/null 2>&1\nprintf '\\n\\036END %s\\n' \"$?\"\n".encode())
        self._proc.stdin.flush()
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while (end := END_MARKER.search(self._pending)) is None:
            self._pending += self._read(deadline, command)
        output, self._pending = self._pending[: end.start()], self._pending[end.end() :]
        return int(end.group(1)), output.decode("utf-8", errors="replace")

    def _read(self, deadline: float, command: str) -> bytes:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(self._proc.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            raise AssertionError(f"no end of '{command}' within {COMMAND_TIMEOUT} s, or the shell died")
        return chunk

    def close(self) -> None:
        """End the shell."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def substitute(command: str, ids: dict[str, str]) -> str:
    """*command* with every backup id already seen replaced by the real one."""
    for doc_id, real in ids.items():
        command = command.replace(doc_id, real)
    return command


EXAMPLES = [example for path in DOCS for example in examples_in(path)]


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_doc_example(example: Example, tmp_path: Path, chinook_template: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(chinook_template, work / "chinook.db")
    env = environment(tmp_path)
    if example.setup:
        prepared = run(example.setup, work, env)
        assert prepared.returncode == 0, f"setup of {example.name} failed:\n{prepared.stdout}"
    ids = dict(BIND.findall(prepared.stdout)) if example.setup else {}
    shell = Session(work, env)
    try:
        for step in example.steps:
            check_step(example, step, shell, ids)
    finally:
        shell.close()


def check_step(example: Example, step: Step, shell: Session, ids: dict[str, str]) -> None:
    """Run one command and compare what it printed and its status with the docs; bind new ids."""
    status, output = shell.run(substitute(step.command, ids))
    regex, groups = pattern(step.expected, ids)
    actual = output.rstrip("\n") + "\n" if output.strip() else ""
    match = regex.fullmatch(actual)
    if match is None or status != step.expected_status():
        shown = "\n".join(substitute(line, ids) for line in step.expected)
        diff = "\n".join(difflib.unified_diff(shown.splitlines(), actual.splitlines(), "docs", "real", lineterm=""))
        pytest.fail(
            f"{example.name}: $ {step.command}\nexit {status} (docs: {step.expected_status()})\n{diff or actual}",
            pytrace=False,
        )
    ids.update({doc_id: match.group(group) for group, doc_id in groups.items()})


def test_some_examples_are_checked() -> None:
    """The marker is in use: the CLI reference and the user guide hold checked examples."""
    files = {example.file.name for example in EXAMPLES}
    assert {"cli.md", "user-guide.md"} <= files, files


def command_paths() -> list[str]:
    """Every command and subcommand of the CLI, as typed: ``backup``, ``backups list``, …"""
    import click

    from dbkeeper.cli import cli

    paths = []

    def walk(command: click.Command, prefix: list[str]) -> None:
        paths.append(" ".join(prefix))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*prefix, name])

    walk(cli, [])
    return paths


def test_the_cli_reference_shows_every_commands_help() -> None:
    """docs/cli.md has a checked ``--help`` example for every command (so options cannot go missing)."""
    shown = {
        step.command.removeprefix("dbkeeper").removesuffix("--help").strip()
        for example in EXAMPLES
        if example.file.name == "cli.md"
        for step in example.steps
        if step.command.startswith("dbkeeper") and step.command.endswith("--help")
    }
    missing = [path or "(dbkeeper itself)" for path in command_paths() if path not in shown]
    assert not missing, f"docs/cli.md lacks a checked '$ dbkeeper … --help' example for: {missing}"
