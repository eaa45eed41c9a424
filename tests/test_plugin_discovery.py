"""Plugin discovery without importlib.metadata: the same answers, read from the files every time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from helpers import dbkeeper

COMPARE = """
import json, sys
import importlib.metadata as metadata
from dbkeeper.plugin import discovery

def ours(group):
    return [[e.name, e.value, e.distribution, e.version] for e in discovery.entry_points(group)]

def theirs(group):
    return [[e.name, e.value, e.dist.name, e.dist.version] for e in metadata.entry_points(group=group)]

def their_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

groups = sys.argv[1].split(",")
names = sys.argv[2].split(",")
print(json.dumps({
    "ours": {g: ours(g) for g in groups}, "theirs": {g: theirs(g) for g in groups},
    "our_versions": {n: discovery.distribution_version(n) for n in names},
    "their_versions": {n: their_version(n) for n in names},
}))
"""

PROBE_PLUGIN = """
from dbkeeper.plugin import hookimpl

@hookimpl
def dbkeeper_register_stages(register):
    pass
"""


def compare(groups: str, names: str, pythonpath: str = "") -> dict[str, object]:
    """Both readings of the entry points and versions, in a fresh interpreter with *pythonpath*."""
    proc = subprocess.run(
        [sys.executable, "-c", COMPARE, groups, names],
        env={"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def fake_distribution(site: Path, folder: str, name: str, version: str, entry_points: str) -> Path:
    """A ``.dist-info`` folder named *folder* in *site* with METADATA and entry_points.txt."""
    info = site / folder
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA body: x\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return info


def test_the_installed_environment_reads_the_same_as_importlib_metadata() -> None:
    result = compare("dbkeeper,console_scripts,pytest11", "dbkeeper,dbkeeper-sqlite,PyMySQL,pluggy,no-such-thing")
    assert result["ours"] == result["theirs"]
    assert {e[0] for e in result["ours"]["dbkeeper"]} >= {"sqlite", "postgresql", "mysql"}  # type: ignore[index]
    assert result["our_versions"] == result["their_versions"]
    assert result["our_versions"]["no-such-thing"] == "unknown"  # type: ignore[index]


def test_loading_the_plugins_does_not_import_importlib_metadata() -> None:
    check = (
        "import sys\nfrom dbkeeper.plugin.manager import load_plugins\n"
        "plugins = load_plugins()\nassert 'sqlite' in plugins.drivers, plugins.failures\n"
        "print('importlib.metadata' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.strip() == "False"


def test_the_first_distribution_of_a_name_on_sys_path_wins_as_with_importlib(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    fake_distribution(
        first,
        "dbkeeper_probe-1.0.dist-info",
        "dbkeeper-probe",
        "1.0",
        """
        # a comment
        [console_scripts]
        probe = dbkeeper_probe:main

        [dbkeeper]
        probe = dbkeeper_probe
        probe-extra = dbkeeper_probe:plugin.inner [extra]
        """,
    )
    fake_distribution(second, "dbkeeper.Probe-2.0.dist-info", "dbkeeper.Probe", "2.0", "[dbkeeper]\nold = x\n")
    fake_distribution(second, "other-3.0.dist-info", "other", "3.0", "[dbkeeper]\nother = other_mod\n")
    result = compare("dbkeeper", "dbkeeper-probe,dbkeeper_probe,other", f"{first}:{second}")
    assert result["ours"] == result["theirs"]
    names = [e[0] for e in result["ours"]["dbkeeper"]]  # type: ignore[index]
    assert "probe" in names and "probe-extra" in names and "other" in names and "old" not in names
    assert (
        result["our_versions"]
        == result["their_versions"]
        == {
            "dbkeeper-probe": "1.0",
            "dbkeeper_probe": "1.0",
            "other": "3.0",
        }
    )


def test_a_zip_on_sys_path_is_left_to_importlib_metadata(tmp_path: Path) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n")
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", "[dbkeeper]\nzipped = zipped_mod\n")
    result = compare("dbkeeper", "zipped", str(archive))
    assert result["ours"] == result["theirs"]
    assert ["zipped", "zipped_mod", "zipped", "1.0"] in result["ours"]["dbkeeper"]  # type: ignore[index]
    assert result["our_versions"] == {"zipped": "1.0"}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    (path / "dbkeeper_probe.py").write_text(PROBE_PLUGIN)
    return path


def listed(site: Path) -> dict[str, str]:
    """Plugin name → distribution version, as ``dbkeeper plugins --json`` lists them with *site* on the path."""
    plugins = dbkeeper("plugins", "--json", env={"PYTHONPATH": str(site)}).json()["plugins"]  # type: ignore[index]
    return {p["name"]: p["version"] for p in plugins}


def test_a_plugin_distribution_is_seen_when_installed_upgraded_and_removed(site: Path) -> None:
    assert "probe" not in listed(site)
    info = fake_distribution(
        site, "dbkeeper_probe-1.0.dist-info", "dbkeeper-probe", "1.0", "[dbkeeper]\nprobe = dbkeeper_probe\n"
    )
    assert listed(site)["probe"] == "1.0"

    shutil.rmtree(info)  # an upgrade: the old metadata folder replaced by the new one, another entry-point name
    fake_distribution(
        site, "dbkeeper_probe-2.0.dist-info", "dbkeeper-probe", "2.0", "[dbkeeper]\nprobe2 = dbkeeper_probe\n"
    )
    after_upgrade = listed(site)
    assert after_upgrade["probe2"] == "2.0" and "probe" not in after_upgrade

    (site / "dbkeeper_probe-2.0.dist-info" / "entry_points.txt").write_text("[other]\nprobe2 = dbkeeper_probe\n")
    assert "probe2" not in listed(site)  # the file rewritten in place is read again

    shutil.rmtree(site / "dbkeeper_probe-2.0.dist-info")
    assert "probe2" not in listed(site) and "sqlite" in listed(site)
