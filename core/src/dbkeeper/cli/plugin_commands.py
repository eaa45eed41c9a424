"""``plugins``: what is installed, what it provides, and what failed to load."""

from __future__ import annotations

from typing import Any

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.output import emit_json, note, print_table


@click.command()
@json_option
@global_flags
@pass_app
def plugins(app: App, json_output: bool) -> None:
    """List plugins: distribution, version, hooks, drivers, stages and storages, and load failures.

    Then the options the drivers declare: flag, type, default and the commands they apply to.
    """
    loaded = app.plugins
    described = loaded.describe()
    failures = [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in loaded.failures]
    if json_output:
        emit_json({"plugins": described, "failed": failures})
        return
    rows = [
        [
            p["name"],
            p["distribution"],
            p["version"],
            ", ".join(f"{d['name']} ({'/'.join(d['schemes'])})" for d in p["drivers"]) or "-",
            ", ".join(s["name"] for s in p["stages"]) or "-",
            ", ".join(f"{s['name']} ({'/'.join(s['schemes'])})" for s in p["storages"]) or "-",
            ", ".join(h.removeprefix("dbkeeper_") for h in p["hooks"]),
        ]
        for p in described
    ]
    print_table(["PLUGIN", "DISTRIBUTION", "VERSION", "DRIVERS", "STAGES", "STORAGES", "HOOKS"], rows)
    options = [
        [driver, o["flag"], _type(o), _default(o["default"]), ", ".join(o["operations"])]
        for p in described
        for driver, declared in p["driver_options"].items()
        for o in declared
    ]
    if options:
        click.echo()
        print_table(["DRIVER", "OPTION", "TYPE", "DEFAULT", "COMMANDS"], options)
    for failure in failures:
        note(
            f"failed: plugin {failure['name']!r} ({failure['distribution']}): {failure['error']} "
            f"— reinstall it, or set DBKEEPER_DISABLE_PLUGINS={failure['name']}"
        )


def _type(described: dict[str, Any]) -> str:
    """``int >= 1``, ``bool``, ``auto|client|python``, ``list``: a declared option's type, as a user reads it."""
    if "choices" in described:
        return "|".join(described["choices"])
    if "minimum" in described:
        return f"{described['type']} >= {described['minimum']}"
    return str(described["type"])


def _default(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "-" if value in ([], "") else str(value)
