"""Plugins import dbkeeper through one public module, dbkeeper.plugin, and it loads no database library.

The boundary covers the plugins' source (plugins/*/src and the template's skeleton/src).
A plugin's tests may import one more module, the conformance kit dbkeeper.plugin.testing;
they are not checked here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "dbkeeper.plugin"
SOURCES = sorted([*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("plugin_template/skeleton/src/**/*.py")])


def dbkeeper_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a dbkeeper module in *path*, wherever it stands in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, module) for line, module in found if module.split(".")[0] == "dbkeeper"]


def test_there_are_plugin_sources_to_check() -> None:
    assert len(SOURCES) > 20
    assert any("plugin_template" in str(path) for path in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_plugin_source_imports_only_the_public_module(path: Path) -> None:
    outside = [f"line {line}: {module}" for line, module in dbkeeper_imports(path) if module != PUBLIC]
    assert not outside, f"{path.relative_to(ROOT)} imports dbkeeper beyond {PUBLIC}: {', '.join(outside)}"


def test_importing_the_public_module_loads_no_database_library() -> None:
    heavy = ("sqlalchemy", "psycopg", "pymysql", "dbkeeper.migrations", "dbkeeper.backups")
    code = f"import sys\nimport {PUBLIC}\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
