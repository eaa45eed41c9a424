"""Driver options: declared once by the driver, as the fields of a frozen dataclass.

A driver subclasses :class:`DriverOptions` and declares each option with :func:`option`::

    @dataclass(frozen=True)
    class PostgresqlOptions(DriverOptions):
        jobs: int = option(1, help="Work on this many tables at once.", operations=("backup", "restore"), minimum=1)
        tables: tuple[str, ...] = option((), help="Restore only this table (repeatable).",
                                         operations=("restore",), flag="--table")

and names the class in its :class:`~dbkeeper.plugin.DriverInfo` (``options=PostgresqlOptions``).
From those fields the core builds the command-line flags, reads the driver's section of
``dbkeeper.toml``, lists the options in ``dbkeeper plugins``, and converts and checks
every value, so the driver receives an instance of its own class in ``request.options``.

An option's type is its field's annotation: ``int``, ``bool``, ``str`` (with ``choices``,
one of them) or ``tuple[str, ...]`` (a list of strings; a repeatable flag).
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import Any, Literal, NamedTuple, Self, TypeAlias

from dbkeeper.errors import ConfigError

Operation = Literal["backup", "restore", "drill"]
"""The commands that take driver options: ``backup`` (``DumpRequest``), ``restore`` (``RestoreRequest``)
and ``drill`` (its restore's ``RestoreRequest``: declare an option for ``("restore", "drill")`` when a
drill, which restores the whole backup, should restore with it too)."""

OptionKind = Literal["int", "bool", "str", "list"]
OptionValue: TypeAlias = int | bool | str | tuple[str, ...]

_KINDS: dict[object, OptionKind] = {int: "int", bool: "bool", str: "str", tuple[str, ...]: "list"}
_KIND_NAMES: dict[OptionKind, str] = {
    "int": "an integer",
    "bool": "true or false",
    "str": "a string",
    "list": "a list of strings",
}
_METADATA_KEY = "dbkeeper.option"


class _Declared(NamedTuple):
    """What :func:`option` records on a field, besides its default."""

    help: str
    operations: tuple[Operation, ...]
    choices: tuple[str, ...]
    minimum: int | None
    flag: str | None
    env: str | None


class Option(NamedTuple):
    """One declared driver option, as the core reads it from the driver's options class.

    ``name`` is the field (and the ``dbkeeper.toml`` key), ``flag`` the command-line flag
    (``--`` and the name, unless declared otherwise: ``tables`` is ``--table``), ``env``
    an environment variable read when neither the flag nor the file gives a value.
    """

    name: str
    kind: OptionKind
    default: OptionValue
    help: str
    operations: tuple[Operation, ...]
    flag: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    env: str | None = None

    def convert(self, value: object, where: str) -> OptionValue:
        """*value* as this option's type; ConfigError naming *where* it came from if it is not one."""
        if self.kind == "list" and isinstance(value, list | tuple):
            items = tuple(value)
            if all(isinstance(item, str) for item in items):
                return typing.cast("tuple[str, ...]", items)
        elif self.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            if self.minimum is None or value >= self.minimum:
                return value
            raise ConfigError(f"{where}: {self.name} must be at least {self.minimum}, not {value}")
        elif self.kind == "bool" and isinstance(value, bool):
            return value
        elif self.kind == "str" and isinstance(value, str):
            return self._chosen(value.lower() if self.choices else value, where)
        raise ConfigError(f"{where}: {self.name} must be {_KIND_NAMES[self.kind]}, not {value!r}")

    def _chosen(self, value: str, where: str) -> str:
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where}: {self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        return value

    def from_environment(self) -> OptionValue | None:
        """The value of ``env`` when it is set (a string or an integer), else None."""
        text = os.environ.get(self.env) if self.env else None
        if not text:
            return None
        value: object = int(text) if self.kind == "int" and text.lstrip("-").isdigit() else text
        return self.convert(value, f"the {self.env} environment variable")

    def describe(self) -> dict[str, Any]:
        """The declaration as JSON values, for ``dbkeeper plugins --json``."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        described: dict[str, Any] = {
            "name": self.name,
            "flag": self.flag,
            "type": self.kind,
            "default": default,
            "help": self.help,
            "operations": list(self.operations),
        }
        if self.choices:
            described["choices"] = list(self.choices)
        if self.minimum is not None:
            described["minimum"] = self.minimum
        if self.env:
            described["env"] = self.env
        return described


def option(
    default: OptionValue,
    *,
    help: str,
    operations: Sequence[Operation],
    choices: Sequence[str] = (),
    minimum: int | None = None,
    flag: str | None = None,
    env: str | None = None,
) -> Any:
    """Declare a field of a :class:`DriverOptions` class as a driver option.

    *help* is the flag's help text; *operations* the commands it applies to (``backup``,
    ``restore``, ``drill``: the drill's restore, so only with ``restore``); *choices* the
    allowed values of a ``str`` option; *minimum* the smallest ``int``; *flag* the
    command-line flag when it is not ``--`` and the name; *env* an environment variable
    read as a fallback.
    """
    declared = _Declared(help, tuple(operations), tuple(choices), minimum, flag, env)
    return field(default=default, metadata={_METADATA_KEY: declared})


@dataclass(frozen=True)
class DriverOptions:
    """The options a driver accepts; subclass it as a frozen dataclass of :func:`option` fields.

    The base class declares none: a driver without options keeps the default
    ``DriverInfo.options``.
    """

    @property
    def artifacts_at_once(self) -> int:
        """How many artifacts a backup with these options writes at once; the codec's threads are shared among them.

        One, unless the driver's class says otherwise (PostgreSQL: its ``jobs``).
        """
        return 1

    @classmethod
    def declared(cls) -> tuple[Option, ...]:
        """The options this class declares, in field order."""
        return _declarations(cls)  # type: ignore[arg-type]  # a class is hashable; mypy checks type[...] against Hashable by its instances' __hash__

    @classmethod
    def build(cls, operation: Operation, values: Mapping[str, object], where: str) -> Self:
        """An instance holding *values* (converted and checked) and the defaults for the rest.

        The caller has checked that every name in *values* is declared for *operation*;
        *where* says, in an error, where the values came from.
        """
        declared = {opt.name: opt for opt in cls.declared() if operation in opt.operations}
        return cls(**{name: declared[name].convert(value, where) for name, value in values.items()})


@cache
def _declarations(cls: type[DriverOptions]) -> tuple[Option, ...]:
    hints = typing.get_type_hints(cls)
    declared = []
    for item in fields(cls):
        meta = item.metadata.get(_METADATA_KEY)
        if not isinstance(meta, _Declared) or item.default is MISSING:
            raise TypeError(f"{cls.__name__}.{item.name} is not declared with dbkeeper.plugin.option()")
        kind = _KINDS.get(hints[item.name])
        if kind is None:
            raise TypeError(f"{cls.__name__}.{item.name}: an option is an int, bool, str or tuple[str, ...]")
        if "drill" in meta.operations and "restore" not in meta.operations:
            raise TypeError(
                f"{cls.__name__}.{item.name}: a drill option is passed to its restore; declare it for restore"
            )
        flag = meta.flag or "--" + item.name.replace("_", "-")
        declared.append(
            Option(
                name=item.name,
                kind=kind,
                default=typing.cast("OptionValue", item.default),
                help=meta.help,
                operations=meta.operations,
                flag=flag,
                choices=meta.choices,
                minimum=meta.minimum,
                env=meta.env,
            )
        )
    return tuple(declared)
