"""Printing results: aligned tables and JSON on stdout, notes on stderr."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import click


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
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


def plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def human_bytes(count: int) -> str:
    """``1536`` → ``1.5 KiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, columns aligned, to stdout."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    for line in lines:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
