"""Start-up cost, progress output, and the hook contract being documented and implemented."""

from __future__ import annotations

import ast
import os
import pty
import subprocess
import sys
from pathlib import Path

from helpers import BIN, ROOT, dbkeeper

HEAVY = ("sqlalchemy", "rich", "zstandard", "sqlite3")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom dbkeeper.cli import cli\n"
        "cli.main(['--help'], standalone_mode=False)\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_version() -> None:
    assert dbkeeper("--version").out.startswith("dbkeeper, version ")


def test_progress_only_on_a_terminal(chinook: Path, backups: Path) -> None:
    piped = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups))
    assert "\x1b[" not in piped.err and "MB/s" not in piped.err
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "dbkeeper"), "backup", f"sqlite:///{chinook}", "--dir", str(backups)],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait()
    os.close(primary)
    assert proc.returncode == 0
    assert b"backup chinook.db" in seen and b"backed up" in seen
    quiet = dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(backups), "--quiet")
    assert quiet.err == "" and quiet.out.strip()


def hookspec_names() -> list[str]:
    tree = ast.parse((ROOT / "core/src/dbkeeper/plugin/hookspecs.py").read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("dbkeeper_")]


def test_every_hook_is_documented_in_the_reference() -> None:
    reference = (ROOT / "docs" / "hooks.md").read_text()
    names = hookspec_names()
    assert len(names) >= 6
    for name in names:
        assert f"### {name}" in reference, f"{name} is missing from docs/hooks.md"


def test_every_hook_has_a_docstring_and_is_implemented_by_the_sqlite_driver() -> None:
    """Every hook is documented and implemented by a first-party plugin (storages: by dbkeeper-s3)."""
    import dbkeeper_s3.plugin
    import dbkeeper_sqlite.plugin
    from dbkeeper.backups import stages
    from dbkeeper.plugin import hookspecs

    for name in hookspec_names():
        assert getattr(hookspecs, name).__doc__, name
        implementers = (dbkeeper_sqlite.plugin, stages, dbkeeper_s3.plugin)
        assert any(hasattr(module, name) for module in implementers), f"nobody implements {name}"


def test_loading_every_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom dbkeeper.plugin.manager import load_plugins\nload_plugins()\n"
        f"print('HEAVY=' + ','.join(m for m in {('sqlalchemy', 'rich', 'zstandard', 'psycopg', 'pymysql')!r} "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="
