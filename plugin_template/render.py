"""Render the dbkeeper plugin template into a new distribution, dbkeeper-NAME.

    python plugin_template/render.py NAME [DESTINATION]

NAME is the plugin's name, also its driver's name and URL scheme (lowercase letters,
digits and underscores, starting with a letter). DESTINATION defaults to ./dbkeeper-NAME
and must not exist yet. Every file of ``skeleton/`` is copied with ``{{name}}`` in its
text and ``__plugin__`` in its path replaced by NAME. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

SKELETON = Path(__file__).resolve().with_name("skeleton")
NAME = re.compile(r"[a-z][a-z0-9_]*")


def render(name: str, destination: Path) -> list[Path]:
    """Write the rendered template into *destination* (which must not exist); return the files written."""
    if not NAME.fullmatch(name):
        raise ValueError(f"plugin name {name!r}: use lowercase letters, digits and underscores, starting with a letter")
    destination.mkdir(parents=True)
    written = []
    for source in sorted(SKELETON.rglob("*")):
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        relative = Path(str(source.relative_to(SKELETON)).replace("__plugin__", name))
        path = destination / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.read_text(encoding="utf-8").replace("{{name}}", name), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and render."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the plugin's name: its driver's name and URL scheme")
    parser.add_argument("destination", nargs="?", type=Path, help="default: ./dbkeeper-NAME")
    args = parser.parse_args(argv)
    destination = args.destination or Path(f"dbkeeper-{args.name}")
    try:
        files = render(args.name, destination)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"rendered dbkeeper-{args.name} into {destination} ({len(files)} files)")
    print(f"next: pip install -e '{destination}[test]' && pytest {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
