"""Finding the installed plugins' entry points and versions without importing ``importlib.metadata``.

Every command but ``--help`` loads the plugins, and ``importlib.metadata`` (with the
``email``, ``zipfile`` and ``csv`` modules it imports) costs a command about 20 ms before
it has read a single file. This module reads the same files it would, the same way, for
the one entry-point group dbkeeper uses:

- each ``sys.path`` directory, in order, is listed; its ``*.dist-info`` and ``*.egg-info``
  entries are the installed distributions, grouped by normalised name (PEP 503, dashes
  as underscores) in the order the directory lists them;
- a distribution name seen earlier on ``sys.path`` hides later ones (what Python imports);
- ``entry_points.txt`` is read as ``importlib.metadata`` reads it (``[group]`` sections,
  ``name = value`` lines, ``#`` comments), and a distribution's name and version are the
  ``Name`` and ``Version`` headers of its ``METADATA`` (``PKG-INFO`` for an ``.egg-info``).

Nothing is cached: every command reads the files again, so installing, upgrading or
removing a distribution is seen by the next command. Where this reading could differ from
``importlib.metadata`` — a zip file or an ``.egg`` on ``sys.path``, a distribution folder
whose suffix is not lower case, a finder on ``sys.meta_path`` that finds distributions of
its own — the answer comes from ``importlib.metadata`` itself.
"""

from __future__ import annotations

import functools
import importlib.machinery
import os
import re
import sys
from collections.abc import Iterator
from typing import NamedTuple

SUFFIXES = (".dist-info", ".egg-info")
_UNREADABLE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, UnicodeDecodeError)


class _Unusual(Exception):
    """An environment that only ``importlib.metadata`` reads right."""


class EntryPoint(NamedTuple):
    """One entry point of a group: ``name = value`` in the distribution ``distribution`` ``version``."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> object:
        """Import the module the value names, and return it or the attribute after its colon."""
        module, _, attribute = self.value.partition("[")[0].partition(":")
        __import__(module.strip())  # the import statement's path, which -X importtime reports (import_module is not)
        loaded: object = sys.modules[module.strip()]
        for part in filter(None, attribute.strip().split(".")):
            loaded = getattr(loaded, part)
        return loaded


class _Distribution:
    """An installed distribution's metadata folder."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, name: str) -> str | None:
        """The text of the folder's file *name*, or None when it cannot be read."""
        try:
            with open(os.path.join(self.path, name), encoding="utf-8") as file:
                return file.read()
        except _UNREADABLE:
            return None

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The metadata's headers, the first of each name (the body after the blank line is not read)."""
        text = self.read("METADATA") or self.read("PKG-INFO") or ""
        headers: dict[str, str] = {}
        for line in text.splitlines():
            if not line.strip():
                break
            key, colon, value = line.partition(":")
            if colon and not line[0].isspace():
                headers.setdefault(key.strip().lower(), value.strip())
        return headers

    @property
    def name(self) -> str:
        """The ``Name`` header, or the folder's name when there is none."""
        return self.headers.get("name") or os.path.basename(self.path).partition("-")[0]

    @property
    def version(self) -> str:
        """The ``Version`` header, or ``unknown``."""
        return self.headers.get("version") or "unknown"

    def entry_points(self, group: str) -> Iterator[tuple[str, str]]:
        """``(name, value)`` of each entry point in *group*."""
        section: str | None = None
        for raw in (self.read("entry_points.txt") or "").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line.strip("[]")
            elif section == group:
                name, equals, value = line.partition("=")
                if not equals:
                    raise _Unusual(f"{self.path}/entry_points.txt: {line!r} is not 'name = value'")
                yield name.strip(), value.strip()


def normalize(name: str) -> str:
    """A distribution name as ``importlib.metadata`` compares them: PEP 503, dashes as underscores."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _in_directory(root: str) -> Iterator[tuple[str, _Distribution]]:
    """The distributions in the ``sys.path`` entry *root*, with their normalised names."""
    base = root or "."
    if os.path.basename(root).lower().endswith(".egg"):
        raise _Unusual(f"{root} is an egg")
    try:
        children = os.listdir(base)
    except (NotADirectoryError, PermissionError):
        if os.path.isfile(base):
            raise _Unusual(f"{root} is a file (a zip archive)") from None
        return
    except FileNotFoundError:
        return
    grouped: dict[str, list[_Distribution]] = {}
    for child in children:
        if not child.lower().endswith(SUFFIXES):
            continue
        if not child.endswith(SUFFIXES):
            raise _Unusual(f"{root}/{child}: its suffix is not lower case")
        name = normalize(child.rpartition(".")[0].partition("-")[0])
        grouped.setdefault(name, []).append(_Distribution(os.path.join(base, child)))  # a str: no Path per folder
    for name, distributions in grouped.items():
        for distribution in distributions:
            yield name, distribution


def _installed() -> Iterator[tuple[str, _Distribution]]:
    """Every distribution along ``sys.path``, with its normalised name, in ``importlib.metadata``'s order."""
    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) and finder is not importlib.machinery.PathFinder:
            raise _Unusual(f"{finder!r} finds distributions of its own")
    for root in sys.path:
        yield from _in_directory(root)


def _unique() -> Iterator[_Distribution]:
    """The first distribution of each normalised name."""
    seen: set[str] = set()
    for name, distribution in _installed():
        if name not in seen:
            seen.add(name)
            yield distribution


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of *group* of every installed distribution, as ``importlib.metadata`` finds them."""
    try:
        return [
            EntryPoint(name, value, distribution.name, distribution.version)
            for distribution in _unique()
            for name, value in distribution.entry_points(group)
        ]
    except _Unusual:
        return _entry_points_from_importlib(group)


def distribution_version(name: str) -> str:
    """The installed version of the distribution *name*, or ``unknown`` when it is not installed."""
    try:
        wanted = normalize(name)
        found = next((d for n, d in _installed() if n == wanted), None)
        return found.version if found else "unknown"
    except _Unusual:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"


def _entry_points_from_importlib(group: str) -> list[EntryPoint]:
    from importlib.metadata import entry_points as importlib_entry_points

    return [
        EntryPoint(
            ep.name,
            ep.value,
            ep.dist.name if ep.dist else ep.name,
            (ep.dist.version if ep.dist else None) or "unknown",
        )
        for ep in importlib_entry_points(group=group)
    ]
