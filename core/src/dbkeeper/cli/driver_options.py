"""The driver options of ``backup``, ``restore`` and ``drill``: flags built from the drivers' declarations.

The flags exist only once the plugins are loaded, which happens when ``backup``,
``restore`` or ``drill`` runs (or shows its help), never for ``dbkeeper --help``. Drivers declaring the
same flag with the same type share it; its help names them (``mysql, postgresql: …``). After the command has chosen
its driver, :func:`driver_values` refuses a flag that driver does not declare (a usage
error) and adds the driver's ``[drivers.NAME]`` section of dbkeeper.toml.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from dbkeeper.cli.app import App
from dbkeeper.errors import ConfigError, PluginConflictError

if TYPE_CHECKING:
    from dbkeeper.plugin.manager import Driver, Plugins
    from dbkeeper.plugin.options import Operation, Option


class DriverOptionsCommand(click.Command):
    """A command whose driver-option flags are built from the installed drivers when it runs.

    They are placed before ``--json``; their values reach the callback by option name
    (``jobs``, ``tables`` …), None or ``()`` when not given.
    """

    def __init__(self, *args: Any, operation: Operation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operation: Operation = operation

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The command's own parameters with the driver flags inserted before ``--json``."""
        params = super().get_params(ctx)
        flags = driver_flags(_plugins(ctx), self.operation, self.params)
        at = next((i for i, p in enumerate(params) if p.name == "json_output"), len(self.params))
        return [*params[:at], *flags, *params[at:]]


def _plugins(ctx: click.Context) -> Plugins:
    app = ctx.find_object(App)
    if app is not None:
        return app.plugins
    from dbkeeper.plugin.manager import load_plugins

    return load_plugins()


def driver_flags(plugins: Plugins, operation: Operation, taken: Sequence[click.Parameter]) -> list[click.Option]:
    """One flag per declared flag name of *operation*, shared by the drivers that declare it."""
    by_flag: dict[str, list[tuple[str, Option]]] = {}
    for driver in sorted(plugins.drivers.values(), key=lambda d: d.name):
        for declared in driver.options(operation):
            by_flag.setdefault(declared.flag, []).append((driver.name, declared))
    own = {name for param in taken for name in (param.name, *param.opts) if name}
    return [_flag(flag, declarations, own) for flag, declarations in sorted(by_flag.items())]


def _flag(flag: str, declarations: list[tuple[str, Option]], own: set[str]) -> click.Option:
    first_driver, first = declarations[0]
    for driver, other in declarations[1:]:
        if (other.name, other.kind, other.choices) != (first.name, first.kind, first.choices):
            raise PluginConflictError(
                f"the {first_driver} and {driver} drivers declare {flag} differently "
                f"({first.name}: {first.kind}, {other.name}: {other.kind}); uninstall or disable one of them"
            )
    if flag in own or first.name in own:
        raise PluginConflictError(f"the {first_driver} driver declares {flag}, an option dbkeeper itself has")
    kwargs: dict[str, Any] = {"help": _help(declarations)}
    if first.kind == "bool":
        kwargs |= {"is_flag": True, "default": None}
    elif first.kind == "list":
        kwargs |= {"multiple": True}
    elif first.kind == "int":
        minimums = [declared.minimum for _, declared in declarations if declared.minimum is not None]
        kwargs["type"] = click.IntRange(min=min(minimums)) if len(minimums) == len(declarations) else int
    elif first.choices:
        kwargs["type"] = click.Choice(first.choices, case_sensitive=False)
    return click.Option([flag, first.name], **kwargs)


def _help(declarations: list[tuple[str, Option]]) -> str:
    """Each distinct help text once, after the drivers that declare it (``mysql, postgresql: …``)."""
    drivers_by_help: dict[str, list[str]] = {}
    for driver, declared in declarations:
        drivers_by_help.setdefault(declared.help, []).append(driver)
    return " ".join(f"{', '.join(drivers)}: {text}" for text, drivers in drivers_by_help.items())


def driver_values(app: App, driver: Driver, operation: Operation, given: Mapping[str, object]) -> dict[str, object]:
    """The options for *driver*: its dbkeeper.toml section, then the flags the user *given*.

    A flag the driver does not declare for *operation* is a usage error naming the drivers
    that do; the toml sections are checked first (:func:`configured`).
    """
    flags = {name: value for name, value in given.items() if value not in (None, ())}
    declared = {opt.name for opt in driver.options(operation)}
    for name in flags:
        if name not in declared:
            raise click.UsageError(_not_an_option(app.plugins, driver, operation, name))
    return {**configured(app, driver, operation), **flags}


def _not_an_option(plugins: Plugins, driver: Driver, operation: Operation, name: str) -> str:
    others = [d for d in sorted(plugins.drivers.values(), key=lambda d: d.name) if d is not driver]
    having = [(d.name, opt.flag) for d in others for opt in d.options(operation) if opt.name == name]
    problem = f"the {driver.name} driver does not support the {name!r} option for {operation}s"
    if not having:
        return problem
    names = [driver_name for driver_name, _ in having]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{problem} ({having[0][1]} is an option of the {listed} driver{'s' if len(names) > 1 else ''})"


def configured(app: App, driver: Driver, operation: Operation) -> dict[str, object]:
    """*driver*'s ``[drivers.NAME]`` values that apply to *operation*, after checking every section.

    A section naming no installed driver, a key its driver does not declare, or a value of
    the wrong type is a ConfigError naming the file and the section.
    """
    values: dict[str, object] = {}
    for name, section in app.config.driver_options.items():
        where = f"{app.config.path} [drivers.{name}]"
        owner = app.plugins.drivers.get(name)
        if owner is None:
            installed = ", ".join(sorted(app.plugins.drivers)) or "none"
            raise ConfigError(f"{where}: no installed driver is named {name!r} (installed: {installed})")
        declared = {opt.name: opt for opt in owner.info.options.declared()}
        for key, value in section.items():
            if key not in declared:
                known = ", ".join(declared) or "none"
                raise ConfigError(f"{where}: unknown option {key!r} (options of the {name} driver: {known})")
            checked = declared[key].convert(value, where)
            if owner is driver and operation in declared[key].operations:
                values[key] = checked
    return values
