"""What a backup imports: not the other commands, the monitoring or drill types, secrets, tempfile, decimal.

Nor the age plugin's key parsing and encryption modules: plugins load in every command. Nor
the modules of the classes only other commands create (the restore's, the object store's,
verify's and prune's reports, the records, ``[monitoring]``): creating a dataclass costs
0.3-0.7 ms, so their names are imported on first use.
"""

from __future__ import annotations

import importlib
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import click
import pytest

import dbkeeper.plugin
from dbkeeper.cli import COMMANDS, cli
from dbkeeper.plugin import drills, monitoring
from helpers import BIN

OTHER_COMMANDS = {spec.partition(":")[0] for spec in COMMANDS.values()} - {"dbkeeper.cli.backup_commands"}
CLASSES_OF_OTHER_COMMANDS = {
    "dbkeeper.plugin.restore",  # RestoreRequest, RestoreResult, InspectRequest, BackupContents
    "dbkeeper.plugin.engines",  # ConnectRequest, MigrateRequest
    "dbkeeper.plugin.object_store",  # StoredObject, PendingUpload and the object store's protocols
    "dbkeeper.backups.reports",  # VerifyReport, PrunePlan
    "dbkeeper.plugin.failures",  # PluginFailure: no plugin failed here
    "dbkeeper.backups.record_types",  # VerifyRecord, DrillRecord
    "dbkeeper.connections.monitoring_settings",  # MonitoringSettings
    "dbkeeper_s3.settings",  # S3Settings: the s3 plugin loads in every command, its store only for s3://
}
NOT_NEEDED = {
    *CLASSES_OF_OTHER_COMMANDS,
    "dbkeeper.plugin.monitoring",
    "dbkeeper.plugin.drills",
    "dbkeeper.plugin.pristine",
    "dbkeeper.backups.retention",
    "dbkeeper.backups.objects",  # object storage's repository: a backup to a local directory never opens one
    "secrets",
    "tempfile",
    "random",
    "decimal",
    "dbkeeper.cli.copy_command",
    "dbkeeper.cli.schema_diff_command",
    *OTHER_COMMANDS,
    # loaded plugins' modules a backup without encryption, to a local directory, never uses
    "dbkeeper_age.bridge",
    "dbkeeper_age.decrypting",
    "dbkeeper_age.fingerprints",
    "dbkeeper_age.identities",
    "dbkeeper_age.recipients",
    "dbkeeper_age.sshkeys",
}


def imported_by(*args: str) -> set[str]:
    """The modules ``dbkeeper ARGS`` imports (``python -X importtime``); the command must succeed."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "dbkeeper"), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_every_public_name_imports_in_a_fresh_interpreter() -> None:
    """``from dbkeeper.plugin import X`` works for every name in ``__all__``, the lazy ones included."""
    names = ", ".join(dbkeeper.plugin.__all__)
    code = f"import sys; from dbkeeper.plugin import {names}; print('dbkeeper.plugin.monitoring' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    code = code.replace("monitoring", "drills")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
    assert not hasattr(dbkeeper.plugin, "NoSuchName")


def test_dir_lists_every_public_name_before_it_is_imported() -> None:
    code = "import dbkeeper.plugin as p; print(sorted(set(p.__all__) - set(dir(p))), 'RestoreResult' in vars(p))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["[]", "False"], proc.stderr


@pytest.mark.parametrize(
    "module", ["dbkeeper.plugin.restore", "dbkeeper.plugin.engines", "dbkeeper.plugin.object_store"]
)
def test_the_lazy_contract_names_are_exactly_the_types_of_their_module(module: str) -> None:
    """Every name of ``__all__`` defined in *module* is imported on first use, from there, and no other."""
    defined_there = {
        name
        for name in dbkeeper.plugin.__all__
        if getattr(vars(importlib.import_module(module)).get(name), "__module__", "") == module
    }
    assert defined_there and {name for name, home in dbkeeper.plugin._LAZY.home.items() if home == module} == (
        defined_there
    )


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("dbkeeper.plugin.storage", ["StoredObject", "PendingUpload", "ObjectStore"]),
        ("dbkeeper.backups.manager", ["VerifyReport", "PrunePlan"]),
        ("dbkeeper.plugin.manager", ["PluginFailure"]),
    ],
)
def test_a_module_still_offers_the_classes_it_imports_on_first_use(module: str, names: list[str]) -> None:
    """``from MODULE import NAME`` works for the classes moved out of it, and ``dir()`` lists them."""
    code = f"import {module} as m; from {module} import {', '.join(names)}; print(set({names}) <= set(dir(m)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
    assert not hasattr(importlib.import_module(module), "NoSuchName")


def test_the_lazy_names_are_exactly_the_monitoring_types() -> None:
    """Every name of ``__all__`` that ``dbkeeper.plugin.monitoring`` defines is imported on first use, no other."""
    defined_there = {
        name
        for name in dbkeeper.plugin.__all__
        if name in vars(monitoring)
        and getattr(vars(monitoring)[name], "__module__", "typing") in (monitoring.__name__, "typing")
    }
    assert defined_there == dbkeeper.plugin._MONITORING


def test_the_lazy_drill_names_are_exactly_the_drill_types_of_all() -> None:
    """Every name of ``__all__`` that ``dbkeeper.plugin.drills`` defines is imported on first use, no other."""
    defined_there = {
        name for name in dbkeeper.plugin.__all__ if getattr(vars(drills).get(name), "__module__", "") == drills.__name__
    }
    assert defined_there == dbkeeper.plugin._DRILLS


def test_every_command_is_found_by_its_name() -> None:
    """The commands imported on first use are the commands the module names, each under its own name."""
    commands = dict(cli.commands.items())
    assert sorted(commands) == sorted(COMMANDS) and len(OTHER_COMMANDS) > 5
    assert all(command.name == name for name, command in commands.items())
    assert cli.get_command(click.Context(cli), "no-such-command") is None
    schema, backups = commands["schema"], commands["backups"]
    assert isinstance(schema, click.Group) and isinstance(backups, click.Group)
    assert {"diff", "validate"} <= set(schema.commands) and {"copy", "list"} <= set(backups.commands)
    assert schema.commands["diff"].name == "diff" and backups.commands["copy"].name == "copy"


def test_a_mysql_backup_does_not_import_the_restore_loaders() -> None:
    code = "import sys, dbkeeper_mysql.dump; print('dbkeeper_mysql.load' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_a_backup_does_not_import_what_it_does_not_use(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE t (x)")
    imported = imported_by("-q", "backup", f"sqlite:///{database}", "--dir", str(tmp_path / "backups"))
    assert "dbkeeper_sqlite.files" in imported  # the backup did run here
    assert not imported & NOT_NEEDED


def test_help_does_not_create_the_classes_of_other_commands() -> None:
    imported = imported_by("--help")
    assert "dbkeeper.connections.config" in imported
    assert not imported & CLASSES_OF_OTHER_COMMANDS


def test_loading_the_plugins_imports_only_their_declarations() -> None:
    """Every command loads every plugin: a plugin's own module declares its driver; the engine's code waits."""
    imported = imported_by("plugins", "--json")
    assert {"dbkeeper_sqlite.plugin", "dbkeeper_postgresql.plugin", "dbkeeper_mysql.plugin"} <= imported
    engine_code = {name for name in imported if name.split(".")[0].startswith("dbkeeper_")} - {
        f"{package}.{module}"
        for package in ("dbkeeper_sqlite", "dbkeeper_postgresql", "dbkeeper_mysql", "dbkeeper_s3", "dbkeeper_age")
        for module in ("plugin", "options", "stage")
    }
    assert not {name for name in engine_code if "." in name}, sorted(engine_code)
    assert "sqlite3" not in imported


def test_the_drivers_declare_the_formats_their_code_writes() -> None:
    """The declarations in each plugin.py (kept light) name the formats of the modules that write them."""
    from dbkeeper_postgresql import layout
    from dbkeeper_postgresql.plugin import DRIVER as POSTGRESQL
    from dbkeeper_sqlite import formats
    from dbkeeper_sqlite.plugin import DRIVER as SQLITE

    assert POSTGRESQL.formats == tuple(layout.FORMATS)
    assert SQLITE.formats == tuple(formats.FORMATS)
