"""Driver options (issue 10): declared once by a driver, made flags, read from dbkeeper.toml, typed for the driver."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest
from test_plugins import env_for, install_fake

from dbkeeper.cli.driver_options import driver_flags
from dbkeeper.errors import ConfigError, PluginConflictError
from dbkeeper.plugin import DriverInfo, DriverOptions, hookimpl, option
from dbkeeper.plugin.manager import load_plugins
from dbkeeper_mysql.options import MysqlOptions
from dbkeeper_postgresql.options import PostgresqlOptions
from dbkeeper_sqlite.options import SqliteOptions
from helpers import dbkeeper

PROBE_DRIVER = """
    import dataclasses
    from dataclasses import dataclass

    from dbkeeper.plugin import DriverInfo, DriverOptions, DumpResult, hookimpl, option

    @dataclass(frozen=True)
    class ProbeOptions(DriverOptions):
        jobs: int = option(1, help="Work on this many tables at once.", operations=("backup", "restore"), minimum=1)
        label: str = option("plain", help="A label.", operations=("backup",), choices=("plain", "fancy"),
                            env="PROBE_LABEL")
        tags: tuple[str, ...] = option((), help="A tag (repeatable).", operations=("backup",), flag="--tag")
        loud: bool = option(False, help="Speak up.", operations=("backup",))

    @hookimpl
    def dbkeeper_register_drivers(register):
        register(DriverInfo(name="probe", schemes=("probe",), formats=("raw",), options=ProbeOptions))

    @hookimpl
    def dbkeeper_dump(request):
        assert isinstance(request.options, ProbeOptions)
        with request.artifacts.open("probe.raw") as out:
            out.write(b"probe")
        received = {key: [type(value).__name__, value] for key, value in dataclasses.asdict(request.options).items()}
        return DumpResult(engine="probe", engine_version="1", database="probe", row_counts={},
                          details={"options": received})
"""


@pytest.fixture
def probe_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install_fake(site, "dbkeeper-probe", "probe", PROBE_DRIVER)
    return site


def received(run_json: dict) -> dict:
    return run_json["details"]["options"]


def test_the_real_drivers_declare_their_options() -> None:
    sqlite = {opt.name: opt for opt in SqliteOptions.declared()}
    assert sqlite["check"].kind == "bool" and sqlite["check"].operations == ("backup",)
    postgresql = {opt.name: opt for opt in PostgresqlOptions.declared()}
    assert postgresql["jobs"].kind == "int" and postgresql["jobs"].minimum == 1
    assert (postgresql["tables"].kind, postgresql["tables"].flag) == ("list", "--table")
    mysql = {opt.name: opt for opt in MysqlOptions.declared()}
    assert mysql["tools"].choices == ("auto", "client", "python") and mysql["tools"].env == "DBKEEPER_MYSQL_TOOLS"
    assert PostgresqlOptions(jobs=3).artifacts_at_once == 3 and SqliteOptions().artifacts_at_once == 1


def test_values_are_converted_and_checked() -> None:
    built = PostgresqlOptions.build("restore", {"jobs": 2, "tables": ["a", "b"]}, "here")
    assert built == PostgresqlOptions(jobs=2, tables=("a", "b"))
    with pytest.raises(ConfigError, match="here: jobs must be at least 1, not 0"):
        PostgresqlOptions.build("restore", {"jobs": 0}, "here")
    with pytest.raises(ConfigError, match="here: jobs must be an integer, not '2'"):
        PostgresqlOptions.build("backup", {"jobs": "2"}, "here")
    with pytest.raises(ConfigError, match="tools must be one of auto, client, python, not 'maybe'"):
        MysqlOptions.build("backup", {"tools": "maybe"}, "here")
    assert MysqlOptions.build("backup", {"tools": "PYTHON"}, "here").tools == "python"


@dataclasses.dataclass(frozen=True)
class Sloppy(DriverOptions):
    """A field without dbkeeper.plugin.option(): not a declaration."""

    jobs: int = 1


def test_a_field_not_declared_with_option_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Sloppy.jobs is not declared with dbkeeper.plugin.option\(\)"):
        Sloppy.declared()


def test_flags_come_from_the_declarations() -> None:
    backup_help = dbkeeper("backup", "--help").out
    assert "--check" in backup_help and "sqlite: Check the source's integrity too" in backup_help
    restore_help = " ".join(dbkeeper("restore", "--help").out.split())
    assert "--table TEXT mysql, postgresql: Restore only this table (repeatable)." in restore_help
    assert "--jobs INTEGER RANGE mysql: Load this many tables at once (default 2;" in restore_help
    assert "--schema TEXT postgresql: Restore only this schema (repeatable)." in restore_help


def test_flags_of_different_types_conflict() -> None:
    @dataclasses.dataclass(frozen=True)
    class TextJobs(DriverOptions):
        jobs: str = option("all", help="Which jobs.", operations=("restore",))

    class Plugin:
        @hookimpl
        def dbkeeper_register_drivers(self, register):  # type: ignore[no-untyped-def]  # a test double
            register(DriverInfo(name="textjobs", schemes=("textjobs",), formats=("x",), options=TextJobs))

    plugins = load_plugins(extra=[("textjobs", Plugin())])
    with pytest.raises(PluginConflictError, match="declare --jobs differently"):
        driver_flags(plugins, "restore", [])
    own = [click.Option(["--table"])]
    with pytest.raises(PluginConflictError, match="declares --table, an option dbkeeper itself has"):
        driver_flags(load_plugins(), "restore", own)


def test_typed_values_reach_the_driver(probe_site: Path, tmp_path: Path) -> None:
    args = ("backup", "probe://x", "--dir", str(tmp_path / "bk"), "--json")
    defaults = dbkeeper(*args, env=env_for(probe_site)).json()
    assert received(defaults) == {
        "jobs": ["int", 1],
        "label": ["str", "plain"],
        "tags": ["tuple", []],
        "loud": ["bool", False],
    }
    given = dbkeeper(*args, "--jobs", "3", "--label", "FANCY", "--tag", "a", "--tag", "b", "--loud",
                     env=env_for(probe_site)).json()  # fmt: skip
    assert received(given) == {
        "jobs": ["int", 3],
        "label": ["str", "fancy"],
        "tags": ["tuple", ["a", "b"]],
        "loud": ["bool", True],
    }
    from_env = dbkeeper(*args, env=env_for(probe_site, PROBE_LABEL="fancy")).json()
    assert received(from_env)["label"] == ["str", "fancy"]
    bad = dbkeeper(*args, env=env_for(probe_site, PROBE_LABEL="loud"), check=False)
    assert bad.code == 1 and "PROBE_LABEL environment variable: label must be one of plain, fancy" in bad.err


def test_an_option_of_other_drivers_is_a_usage_error(probe_site: Path, tmp_path: Path) -> None:
    run = dbkeeper("backup", "probe://x", "--dir", str(tmp_path), "--check", env=env_for(probe_site), check=False)
    assert run.code == 2, run.err
    assert "the probe driver does not support the 'check' option for backups" in run.err
    assert "(--check is an option of the sqlite driver)" in run.err


def test_the_toml_section_of_a_driver(probe_site: Path, tmp_path: Path) -> None:
    config = tmp_path / "dbkeeper.toml"
    args = ("--config", str(config), "backup", "probe://x", "--dir", str(tmp_path / "bk"), "--json")
    config.write_text('[drivers.probe]\njobs = 4\nlabel = "fancy"\ntags = ["t"]\n')
    configured = received(dbkeeper(*args, env=env_for(probe_site)).json())
    assert configured["jobs"] == ["int", 4] and configured["label"] == ["str", "fancy"]
    assert configured["tags"] == ["tuple", ["t"]]
    flag_wins = received(dbkeeper(*args, "--jobs", "2", env=env_for(probe_site, PROBE_LABEL="plain")).json())
    assert flag_wins["jobs"] == ["int", 2] and flag_wins["label"] == ["str", "fancy"]  # the file beats the variable

    config.write_text("[drivers.probe]\njbos = 4\n")
    run = dbkeeper(*args, env=env_for(probe_site), check=False)
    assert run.code == 1
    assert f"{config} [drivers.probe]: unknown option 'jbos' (options of the probe driver: jobs, label" in run.err
    config.write_text("[drivers.probe]\njobs = 0\n")
    run = dbkeeper(*args, env=env_for(probe_site), check=False)
    assert f"{config} [drivers.probe]: jobs must be at least 1" in run.err
    config.write_text("[drivers.postgres]\njobs = 2\n")
    run = dbkeeper(*args, env=env_for(probe_site), check=False)
    assert f"{config} [drivers.postgres]: no installed driver is named 'postgres'" in run.err


def test_plugins_json_shows_the_options() -> None:
    listed = {p["name"]: p for p in dbkeeper("plugins", "--json").json()["plugins"]}
    (check,) = listed["sqlite"]["driver_options"]["sqlite"]
    assert check == {
        "name": "check",
        "flag": "--check",
        "type": "bool",
        "default": False,
        "help": SqliteOptions.declared()[0].help,
        "operations": ["backup"],
    }
    tools = {opt["name"]: opt for opt in listed["mysql"]["driver_options"]["mysql"]}["tools"]
    assert tools["choices"] == ["auto", "client", "python"] and tools["env"] == "DBKEEPER_MYSQL_TOOLS"


def test_optional_capabilities_are_declared_protocols() -> None:
    """What the core once found with getattr is a protocol a type checker sees (issue 10)."""
    from dbkeeper.backups.stages.gzip import GzipStage
    from dbkeeper.backups.stages.zstd import ZstdStage
    from dbkeeper.plugin import FingerprintDialect, HistorySchemaDialect, ThreadedStage
    from dbkeeper_mysql.migrations import MysqlMigrations
    from dbkeeper_postgresql.migrations import PostgresMigrations
    from dbkeeper_sqlite.migrations import SqliteMigrations

    capabilities = {
        type(dialect).__name__: (isinstance(dialect, HistorySchemaDialect), isinstance(dialect, FingerprintDialect))
        for dialect in (PostgresMigrations(), MysqlMigrations(), SqliteMigrations())
    }
    assert capabilities == {
        "PostgresMigrations": (True, True),
        "MysqlMigrations": (False, True),
        "SqliteMigrations": (False, False),
    }
    assert isinstance(ZstdStage(), ThreadedStage) and not isinstance(GzipStage(), ThreadedStage)


def test_plugins_lists_the_options_as_a_table() -> None:
    lines = dbkeeper("plugins", env={"DBKEEPER_DISABLE_PLUGINS": "postgresql,mysql"}).out.splitlines()
    assert lines[-2:] == [
        "DRIVER  OPTION   TYPE  DEFAULT  COMMANDS",
        "sqlite  --check  bool  false    backup",
    ]


def test_a_badly_declared_option_fails_only_its_plugin() -> None:
    class Plugin:
        @hookimpl
        def dbkeeper_register_drivers(self, register):  # type: ignore[no-untyped-def]  # a test double
            register(DriverInfo(name="sloppy", schemes=("sloppy",), formats=("x",), options=Sloppy))

    plugins = load_plugins(extra=[("sloppy", Plugin())])
    assert "sloppy" not in plugins.drivers and "sqlite" in plugins.drivers
    (failure,) = plugins.failures
    assert "Sloppy.jobs is not declared with dbkeeper.plugin.option()" in failure.error
