"""The plugin system, exercised through real entry points of throwaway distributions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dbkeeper.errors import PluginConflictError
from dbkeeper.plugin.contract import DriverInfo
from dbkeeper.plugin.hookspecs import hookimpl
from dbkeeper.plugin.manager import load_plugins
from helpers import assert_one_line_error, dbkeeper, sqlite_dump


def install_fake(site: Path, distribution: str, entry_point: str, source: str) -> None:
    """A distribution visible to importlib.metadata through PYTHONPATH, with one plugin module."""
    module = distribution.replace("-", "_")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[dbkeeper]\n{entry_point} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


XOR_STAGE = """
    from dbkeeper import hookimpl

    class _Xor:
        def __init__(self, sink): self._sink = sink
        def write(self, data, /):
            self._sink.write(bytes(b ^ 0x5A for b in data)); return len(data)
        def finish(self): return {"key": 90}

    class _Unxor:
        def __init__(self, source): self._source = source
        def read(self, size=-1, /): return bytes(b ^ 0x5A for b in self._source.read(size))

    class XorStage:
        name = "xor"; kind = "compression"; suffix = ".xor"
        def encoder(self, sink, options): return _Xor(sink)
        def decoder(self, source, record): return _Unxor(source)

    @hookimpl
    def dbkeeper_register_stages(register):
        register(XorStage())
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def env_for(site: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(site), **extra}


def test_builtin_plugins_are_listed() -> None:
    listed = dbkeeper("plugins", "--json").json()
    by_name = {p["name"]: p for p in listed["plugins"]}
    assert {s["name"] for s in by_name["dbkeeper"]["stages"]} == {"zstd", "gzip", "none", "sha256"}
    assert by_name["sqlite"]["distribution"] == "dbkeeper-sqlite"
    assert by_name["sqlite"]["drivers"] == [{"name": "sqlite", "schemes": ["sqlite"], "formats": ["sqlite", "sql"]}]
    assert "dbkeeper_dump" in by_name["sqlite"]["hooks"]
    assert listed["failed"] == []
    text = dbkeeper("plugins").out
    assert "dbkeeper-sqlite" in text and "zstd, gzip, none, sha256" in text


def test_broken_plugin_is_reported_and_does_not_take_the_others_down(site: Path, chinook: Path, backups: Path) -> None:
    install_fake(site, "dbkeeper-broken", "broken", "raise ImportError('libfoo.so not found')\n")
    listed = dbkeeper("plugins", "--json", env=env_for(site)).json()
    assert listed["failed"] == [
        {"name": "broken", "distribution": "dbkeeper-broken", "error": "ImportError: libfoo.so not found"}
    ]
    text = dbkeeper("plugins", env=env_for(site))
    assert "failed: plugin 'broken' (dbkeeper-broken)" in text.err and "DBKEEPER_DISABLE_PLUGINS=broken" in text.err
    dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), env=env_for(site))
    blocked = dbkeeper("plugins", "--json", env=env_for(site, DBKEEPER_DISABLE_PLUGINS="broken")).json()
    assert blocked["failed"] == []


def test_misspelled_hook_is_a_load_failure(site: Path) -> None:
    install_fake(
        site,
        "dbkeeper-typo",
        "typo",
        """
        from dbkeeper import hookimpl

        @hookimpl
        def dbkeeper_dumpp(request):
            return None
        """,
    )
    (failure,) = dbkeeper("plugins", "--json", env=env_for(site)).json()["failed"]
    assert failure["name"] == "typo" and "dbkeeper_dumpp" in failure["error"]


def test_two_plugins_claiming_one_driver_is_an_error_naming_both(site: Path) -> None:
    install_fake(
        site,
        "dbkeeper-sqlite2",
        "sqlite2",
        """
        from dbkeeper import hookimpl
        from dbkeeper.plugin.contract import DriverInfo

        @hookimpl
        def dbkeeper_register_drivers(register):
            register(DriverInfo(name="sqlite", schemes=("sqlite",), formats=("sqlite",)))
        """,
    )
    run = dbkeeper("plugins", env=env_for(site), check=False)
    assert_one_line_error(run, "dbkeeper-sqlite", "dbkeeper-sqlite2", "DBKEEPER_DISABLE_PLUGINS=sqlite2")
    assert dbkeeper("plugins", env=env_for(site, DBKEEPER_DISABLE_PLUGINS="dbkeeper-sqlite2")).code == 0


def test_stage_name_collision_in_process() -> None:
    class Twin:
        @hookimpl
        def dbkeeper_register_stages(self, register: object) -> None:
            from dbkeeper.backups.stages.zstd import ZstdStage

            register(ZstdStage())  # type: ignore[operator]

    with pytest.raises(PluginConflictError, match=r"pipeline stage 'zstd' is provided by both dbkeeper .* and twin"):
        load_plugins(entry_points_group=None, extra=[("twin", Twin())])


def test_third_party_stage_round_trip_and_missing_stage_hint(
    site: Path, chinook: Path, backups: Path, tmp_path: Path
) -> None:
    install_fake(site, "dbkeeper-xor", "xor", XOR_STAGE)
    env = env_for(site)
    manifest = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--compress", "xor", "--json", env=env)
    stages = manifest.json()["artifacts"][0]["stages"]
    assert stages[0] == {"name": "xor", "distribution": "dbkeeper-xor", "key": 90}
    backup_id = manifest.json()["id"]
    dbkeeper("restore", backup_id, f"sqlite:///{tmp_path}/r.db", "--dir", str(backups), env=env)
    assert sqlite_dump(tmp_path / "r.db") == sqlite_dump(chinook)
    run = dbkeeper("restore", backup_id, f"sqlite:///{tmp_path}/r2.db", "--dir", str(backups), check=False)
    assert_one_line_error(run, "pipeline stage 'xor'", "pip install dbkeeper-xor")
    assert not (tmp_path / "r2.db").exists()


def test_driver_hooks_reach_only_the_owning_plugin_and_observers_see_every_call(
    site: Path, chinook: Path, backups: Path, tmp_path: Path
) -> None:
    log = tmp_path / "observed.log"
    install_fake(
        site,
        "dbkeeper-other",
        "other",
        """
        from dbkeeper import hookimpl
        from dbkeeper.plugin.contract import DriverInfo

        @hookimpl
        def dbkeeper_register_drivers(register):
            register(DriverInfo(name="other", schemes=("otherdb",), formats=("raw",)))

        @hookimpl
        def dbkeeper_dump(request):
            raise RuntimeError("the other driver was asked to dump a database it does not serve")
        """,
    )
    install_fake(
        site,
        "dbkeeper-audit",
        "audit",
        f"""
        from dbkeeper import hookimpl

        @hookimpl(wrapper=True)
        def dbkeeper_dump(request):
            result = yield
            with open({str(log)!r}, "a") as f:
                f.write(f"{{request.driver}} {{request.format}} {{sum(result.row_counts.values())}}\\n")
            return result
        """,
    )
    env = env_for(site)
    dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), env=env)
    assert log.read_text() == "sqlite sqlite 15607\n"
    run = dbkeeper("restore", "latest", "otherdb://somewhere/x", "--dir", str(backups), env=env, check=False)
    assert_one_line_error(run, "is a sqlite backup", "sqlite://")
    unsupported = dbkeeper("backup", "otherdb://h/x", "--dir", str(backups), "--format", "raw", env=env, check=False)
    assert unsupported.code == 1 and "does not serve" in unsupported.err  # the other driver's own error


def test_unsupported_operation_names_the_driver() -> None:
    class Minimal:
        @hookimpl
        def dbkeeper_register_drivers(self, register: object) -> None:
            register(DriverInfo(name="mini", schemes=("mini",), formats=("x",)))  # type: ignore[operator]

    plugins = load_plugins(entry_points_group=None, extra=[("mini", Minimal())])
    from dbkeeper.connections.urls import DatabaseURL
    from dbkeeper.errors import UnsupportedOperationError

    with pytest.raises(UnsupportedOperationError, match=r"the mini driver .* does not support connect"):
        plugins.driver_for(DatabaseURL.parse("mini://x")).connect(DatabaseURL.parse("mini://x"))


def test_a_driverless_plugin_may_observe_but_never_answer(site: Path, chinook: Path, backups: Path) -> None:
    install_fake(
        site,
        "dbkeeper-yesman",
        "yesman",
        """
        from dbkeeper import hookimpl
        from dbkeeper.plugin.restore import BackupContents

        @hookimpl
        def dbkeeper_inspect_backup(request):
            return BackupContents(row_counts=dict(request.backup.row_counts))
        """,
    )
    env = env_for(site)
    (failure,) = dbkeeper("plugins", "--json", env=env).json()["failed"]
    assert (
        failure["name"] == "yesman" and "registers no driver" in failure["error"] and "wrapper=True" in failure["error"]
    )
    backup_id = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), env=env).out.strip()
    artifact = next(p for p in (backups / backup_id).iterdir() if p.name != "manifest.json")
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")
    assert dbkeeper("verify", backup_id, "--deep", "--dir", str(backups), env=env, check=False).code == 1


def test_a_plugin_whose_registration_fails_is_reported(site: Path) -> None:
    install_fake(
        site,
        "dbkeeper-crashy",
        "crashy",
        """
        from dbkeeper import hookimpl

        @hookimpl
        def dbkeeper_register_stages(register):
            raise RuntimeError("cannot find libcrashy")
        """,
    )
    listed = dbkeeper("plugins", "--json", env=env_for(site)).json()
    assert listed["failed"] == [
        {"name": "crashy", "distribution": "dbkeeper-crashy", "error": "RuntimeError: cannot find libcrashy"}
    ]
    assert {p["name"] for p in listed["plugins"]} >= {"dbkeeper", "sqlite"}
