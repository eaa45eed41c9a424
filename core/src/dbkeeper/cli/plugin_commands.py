"""``plugins``: what is installed, what it provides, and what failed to load."""

from __future__ import annotations

import click

from dbkeeper.cli.app import App, global_flags, json_option, pass_app
from dbkeeper.cli.output import emit_json, note, print_table


@click.command()
@json_option
@global_flags
@pass_app
def plugins(app: App, json_output: bool) -> None:
    """List plugins: distribution, version, hooks, drivers and stages, and load failures."""
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
            ", ".join(h.removeprefix("dbkeeper_") for h in p["hooks"]),
        ]
        for p in described
    ]
    print_table(["PLUGIN", "DISTRIBUTION", "VERSION", "DRIVERS", "STAGES", "HOOKS"], rows)
    for failure in failures:
        note(
            f"failed: plugin {failure['name']!r} ({failure['distribution']}): {failure['error']} "
            f"— reinstall it, or set DBKEEPER_DISABLE_PLUGINS={failure['name']}"
        )
