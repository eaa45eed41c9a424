"""Prometheus's own checker for the tests: ``promtool check metrics``, ``check rules``, ``test rules``.

promtool is not on PyPI. ``scripts/ensure-packages.sh`` (run by ``scripts/test.sh`` before
the tests) extracts it from Debian's ``prometheus`` package into
``.tools/deb/prometheus/usr/bin/`` without installing a server; a ``promtool`` on PATH
is used first. A missing promtool fails the calling test with what to run, rather than
skipping it: a check that silently did not happen is no check.

    from promtool import check_metrics
    check_metrics(dbkeeper("metrics", url, "--format", "prometheus").out)

Each function raises :class:`PromtoolError` (an ``AssertionError``, so pytest shows it
as a failed check) carrying promtool's own complaint when promtool exits non-zero.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers import ROOT

EXTRACTED = ROOT / ".tools" / "deb" / "prometheus" / "usr" / "bin" / "promtool"
TIMEOUT = 120  # seconds; promtool answers in well under one


class PromtoolError(AssertionError):
    """promtool refused its input; the message is its complaint (stdout and stderr)."""


def promtool_path() -> Path:
    """The promtool to run: PATH's first, else the one ``scripts/ensure-packages.sh`` extracted."""
    found = shutil.which("promtool")
    if found is not None:
        return Path(found)
    if EXTRACTED.is_file():
        return EXTRACTED
    raise PromtoolError(f"promtool not found on PATH nor at {EXTRACTED}: run bash scripts/ensure-packages.sh")


def run_promtool(*args: str, stdin: str | None = None) -> str:
    """Run ``promtool ARGS`` (with *stdin* as its input), return its output; raise :class:`PromtoolError` on failure."""
    argv = [str(promtool_path()), *args]
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise PromtoolError(f"promtool {' '.join(args)} exited {proc.returncode}:\n{output}")
    return output


def check_metrics(exposition: str) -> str:
    """``promtool check metrics`` on Prometheus text exposition: parse errors and naming/lint problems raise."""
    return run_promtool("check", "metrics", stdin=exposition)


def check_rules(*rule_files: Path) -> str:
    """``promtool check rules`` on Prometheus rule files: syntax, PromQL and template errors raise."""
    return run_promtool("check", "rules", *map(str, rule_files))


def run_rule_tests(*test_files: Path) -> str:
    """``promtool test rules`` on rule unit-test files: a failing expectation raises, with promtool's diff."""
    return run_promtool("test", "rules", *map(str, test_files))
