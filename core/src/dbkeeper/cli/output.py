"""Printing results: aligned tables and JSON on stdout, notes on stderr."""

from __future__ import annotations

import itertools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

import click

from dbkeeper.system.filesystem import human_bytes as human_bytes  # re-exported: the commands' size formatting
from dbkeeper.system.notes import LOGGER
from dbkeeper.system.notes import plural as plural  # re-exported: the commands' counting


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        import base64  # only for bytes

        return {"base64": base64.b64encode(bytes(value)).decode()}
    return str(value)


def emit_json(data: Any) -> None:
    """Write *data* as indented JSON to stdout."""
    click.echo(json.dumps(data, indent=2, default=_json_value, ensure_ascii=False))


def note(message: str) -> None:
    """A human-readable line on stderr (never mixed into data on stdout); silent with ``--quiet``."""
    context = click.get_current_context(silent=True)
    if context is None or not getattr(context.find_root().obj, "quiet", False):
        click.echo(message, err=True)


class NoteHandler(logging.Handler):
    """Prints the notes of drivers and the core (:func:`dbkeeper.plugin.note`) as ``note: …`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        """Print *record*; ``--quiet`` silences it unless it is a WARNING (``note(…, always=True)``)."""
        line = f"note: {record.getMessage()}"
        if record.levelno >= logging.WARNING:
            click.echo(line, err=True)
        else:
            note(line)


def show_notes() -> None:
    """Route the ``dbkeeper`` logger's notes to stderr (once, for the CLI process)."""
    if not any(isinstance(handler, NoteHandler) for handler in LOGGER.handlers):
        LOGGER.addHandler(NoteHandler())
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


def seconds(value: float) -> str:
    """A duration for people: ``0.04s``, ``3.2s``, ``41s``."""
    if value < 1:
        return f"{value:.2f}s"
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


def with_options(options: Mapping[str, Any]) -> str:
    """`` with jobs 2, tools auto``: the driver options a restore ran with, which its time holds for ("" for none)."""
    given = [f"{name} {' '.join(map(str, v)) if isinstance(v, tuple | list) else v}" for name, v in options.items()]
    return f" with {', '.join(given)}" if given else ""


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    return str(value)


TABLE_WIDTH_ROWS = 1000
"""A streamed table's column widths are measured on its first this many rows."""


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Print rows under headers, columns aligned, to stdout, as they come; return how many there were.

    The widths are measured on the first :data:`TABLE_WIDTH_ROWS` rows (all of a shorter
    table), so memory stays bounded: a longer value further down sticks out of its column.
    """
    remaining = iter(rows)
    first = [[_cell(v) for v in row] for row in itertools.islice(remaining, TABLE_WIDTH_ROWS)]
    widths = [max([len(h), *(len(r[i]) for r in first)]) for i, h in enumerate(headers)]

    def write(line: Sequence[str]) -> None:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")

    for line in [list(headers), *first]:
        write(line)
    count = len(first)
    for row in remaining:
        write([_cell(v) for v in row])
        count += 1
    return count


def _indented(value: Any, depth: int) -> str:
    """*value* as ``emit_json`` prints it, every line after the first indented by *depth* spaces."""
    return json.dumps(value, indent=2, default=_json_value, ensure_ascii=False).replace("\n", "\n" + " " * depth)


def emit_json_streamed(
    head: Mapping[str, Any], key: str, items: Iterable[Any], tail: Callable[[], Mapping[str, Any]]
) -> None:
    """Write ``{**head, key: [*items], **tail()}`` to stdout as :func:`emit_json` would, item by item.

    Only one item is in memory at a time, but the first :data:`TABLE_WIDTH_ROWS` are read
    before anything is written, so a result that fails early prints no JSON at all. *tail*
    is called after the last item (for counts and durations known only then).
    """
    remaining = iter(items)
    first = list(itertools.islice(remaining, TABLE_WIDTH_ROWS))
    out = sys.stdout
    out.write("{\n")
    for name, value in head.items():
        out.write(f"  {json.dumps(name)}: {_indented(value, 2)},\n")
    out.write(f"  {json.dumps(key)}: [")
    separator = "\n    "
    for item in itertools.chain(first, remaining):
        out.write(separator + _indented(item, 4))
        separator = ",\n    "
    out.write("]" if separator == "\n    " else "\n  ]")
    for name, value in tail().items():
        out.write(f",\n  {json.dumps(name)}: {_indented(value, 2)}")
    out.write("\n}\n")
