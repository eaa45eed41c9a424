"""Every ``# type: ignore`` in the product's code names its error code and says why."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = [ROOT / "core" / "src", *sorted((ROOT / "plugins").glob("*/src")), ROOT / "plugin_template" / "skeleton"]
IGNORE = re.compile(r"#\s*(?:type|pyright):\s*ignore(?P<code>\[[^\]]+\])?(?P<rest>.*)$")


def test_every_type_ignore_has_a_code_and_a_reason() -> None:
    bare = []
    for source in (path for root in CHECKED for path in sorted(root.rglob("*.py"))):
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            match = IGNORE.search(line)
            if match and not (match["code"] and re.match(r"\s*#\s*\S", match["rest"])):
                bare.append(f"{source.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "a '# type: ignore[code]  # reason' on the same line, please:\n" + "\n".join(bare)
