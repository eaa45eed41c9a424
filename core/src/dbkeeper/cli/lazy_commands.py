"""A group's subcommands imported when first named, so a command imports only its own module.

Every command group module costs imports (click decorators, option types, the modules it
uses); a backup needs one of them. A group built with ``commands=LazyCommands({...})``
imports a subcommand's module the first time click (or anyone) looks the name up; listing
the names (``--help`` lists them, then looks each up for its summary) needs no import.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping

import click


class LazyCommands(MutableMapping[str, click.Command]):
    """Subcommands by name, each given as ``"module:attribute"`` and imported on first access."""

    def __init__(self, where: Mapping[str, str]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, _, attribute = self._where[name].partition(":")  # KeyError for an unknown name, as a dict
            # __import__, not importlib.import_module: the import statement's path, which -X importtime reports
            self._loaded[name] = getattr(__import__(module, fromlist=[attribute]), attribute)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._where.setdefault(name, "")

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)
