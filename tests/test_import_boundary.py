"""Plugins import dbkeeper through one public module, dbkeeper.plugin, and it loads no database library.

The boundary covers the plugins' source (plugins/*/src and the template's skeleton/src)
and the Python samples of docs/hooks.md, whose table of the module's names must match
what it exports. A plugin's tests may import one more module, the conformance kit
dbkeeper.plugin.testing; they are not checked here, and the samples may show it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "dbkeeper.plugin"
CONFORMANCE_KIT = "dbkeeper.plugin.testing"
HOOKS_MD = ROOT / "docs" / "hooks.md"
SOURCES = sorted([*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("plugin_template/skeleton/src/**/*.py")])


def dbkeeper_imports(source: str, filename: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a dbkeeper module in *source*, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
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
    imports = dbkeeper_imports(path.read_text(), str(path))
    outside = [f"line {line}: {module}" for line, module in imports if module != PUBLIC]
    assert not outside, f"{path.relative_to(ROOT)} imports dbkeeper beyond {PUBLIC}: {', '.join(outside)}"


def test_importing_the_public_module_loads_no_database_library() -> None:
    heavy = ("sqlalchemy", "psycopg", "pymysql", "dbkeeper.migrations", "dbkeeper.backups")
    code = f"import sys\nimport {PUBLIC}\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def hooks_md_section(title: str) -> str:
    text = HOOKS_MD.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_the_hook_reference_lists_exactly_what_the_public_module_exports() -> None:
    import dbkeeper.plugin

    rows = [line.split("|")[2] for line in hooks_md_section("The public module").splitlines() if line.count("|") >= 4]
    listed = {name for row in rows[2:] for name in re.findall(r"`(\w+)`", row)}
    assert listed == set(dbkeeper.plugin.__all__)
    assert all(hasattr(dbkeeper.plugin, name) for name in dbkeeper.plugin.__all__)


def test_the_hook_reference_samples_import_only_the_public_module() -> None:
    # Matched line by line, not parsed: some samples are bare signatures.
    samples = "".join(re.findall(r"```python\n(.*?)```", HOOKS_MD.read_text(), flags=re.S))
    modules = re.findall(r"^\s*(?:from|import)\s+(dbkeeper(?:\.\w+)*)\b", samples, flags=re.M)
    assert modules.count(PUBLIC) >= 4
    assert set(modules) <= {PUBLIC, CONFORMANCE_KIT}
