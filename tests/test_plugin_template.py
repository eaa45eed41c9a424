"""plugin_template/ renders into a distribution that installs, registers its driver and passes the kit."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from helpers import ROOT

RENDER = ROOT / "plugin_template" / "render.py"
UV = ROOT / ".tools" / "bin" / "uv"
CLI = "import sys; from dbkeeper.cli import main; sys.argv[0] = 'dbkeeper'; main()"


def run(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_rendered_plugin_installs_and_passes_the_conformance_kit(tmp_path: Path) -> None:
    rendered = run(sys.executable, RENDER, "acme", tmp_path / "dbkeeper-acme", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    # A throwaway environment that sees this checkout's packages, with the rendered plugin installed into it.
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    site_packages = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (site_packages / "dbkeeper-checkout.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    installed = run(UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", "--no-deps", "-e",
                    tmp_path / "dbkeeper-acme", cwd=tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    listed = run(venv / "bin" / "python", "-c", CLI, "plugins", "--json", cwd=tmp_path)
    plugins = {entry["distribution"]: entry for entry in json.loads(listed.stdout)["plugins"]}
    assert plugins["dbkeeper-acme"]["drivers"] == [{"name": "acme", "schemes": ["acme"], "formats": ["sql"]}]

    tested = run(venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", tmp_path / "dbkeeper-acme",
                 cwd=tmp_path)  # fmt: skip
    assert tested.returncode == 0, tested.stdout
    assert "5 passed, 11 skipped" in tested.stdout  # monitoring, schema and drills skip: the template has none
    assert "the acme driver has no deep verify" in tested.stdout
    assert "the acme driver has no migrations" in tested.stdout
    assert "the acme driver collects no metrics" in tested.stdout
    assert "the acme driver has no health checks" in tested.stdout
    assert "the acme driver lists no sessions" in tested.stdout
    assert "the acme driver plans no maintenance" in tested.stdout
    assert "the acme driver has no schema dialect" in tested.stdout


def test_render_refuses_a_bad_name_or_an_existing_directory(tmp_path: Path) -> None:
    bad = run(sys.executable, RENDER, "Acme-DB", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith("error: plugin name 'Acme-DB'")
    (tmp_path / "dbkeeper-acme").mkdir()
    taken = run(sys.executable, RENDER, "acme", cwd=tmp_path)
    assert taken.returncode == 1 and "File exists" in taken.stderr
