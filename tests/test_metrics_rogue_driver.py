"""The core's own bounds on a driver that misbehaves: a real third-party plugin, installed for the test.

It ignores the deadline, raises a bug, or returns samples Prometheus would refuse: the
scrape still ends (``up 0`` with the reason), and the exposition stays valid.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from promtool import check_metrics
from test_plugins import env_for, install_fake

from helpers import BIN, dbkeeper

ROGUE_DRIVER = """
    import os
    import threading
    import time

    from dbkeeper.plugin import CollectorResult, DriverInfo, Sample, hookimpl

    @hookimpl
    def dbkeeper_register_drivers(register):
        register(DriverInfo(name="rogue", schemes=("rogue",), formats=("raw",)))

    _active = [0]
    _guard = threading.Lock()

    def _slow():
        with _guard:
            _active[0] += 1
            seen = _active[0]
        try:
            time.sleep(1.0)
        finally:
            with _guard:
                _active[0] -= 1
        return [CollectorResult("rogue", (Sample("rogue_concurrent", "gauge", "Calls at once.", seen),), True, 1.0)]

    def _good():
        return Sample("rogue_widgets", "gauge", "Widgets.", 3.0)

    @hookimpl
    def dbkeeper_collect_metrics(request):
        mode = request.url.database
        if mode == "hang":
            time.sleep(120)  # ignores request.deadline
        if mode == "slow":
            return _slow()
        if mode == "bug":
            raise ValueError("list index out of range")
        samples = (
            _good(),
            Sample("rogue widgets", "gauge", "A space in the name.", 1.0),
            Sample("rogue_events", "counter", "Events.", 7.0),
            Sample("rogue_events_total", "gauge", "The same family as another type.", 1.0),
            Sample("rogue_queue", "gauge", "Queued.", 1.0, labels={"queue": "a"}),
            Sample("rogue_queue", "gauge", "Queued.", 2.0, labels={"queue": "a"}),
            Sample("rogue_labels", "gauge", "A bad label name.", 1.0, labels={"bad-label": "x"}),
            Sample("rogue_owner", "gauge", "Claims another connection.", 1.0, labels={"connection": "forged"}),
            Sample("rogue_unknown", "gauge", "Not a number.", float("nan")),
        )
        return [CollectorResult("rogue", samples, True, 0.001)]
"""


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        return str(response.read().decode())


@pytest.fixture
def rogue_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install_fake(site, "dbkeeper-rogue", "rogue", ROGUE_DRIVER)
    return site


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "dbkeeper.toml"
    config.write_text("[monitoring]\ndeadline = 1\n", encoding="utf-8")
    return config


def test_a_driver_that_ignores_the_deadline_is_up_0_when_it_has_passed(rogue_site: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    run = dbkeeper("--config", str(config), "metrics", "rogue://host/hang", env=env_for(rogue_site))
    assert 'dbkeeper_up{connection="default"} 0.0' in run.out
    assert "note: default: down: the scrape did not finish within its deadline (1 s)" in run.err
    check_metrics(run.out)


def test_a_driver_bug_is_up_0_with_the_error(rogue_site: Path, tmp_path: Path) -> None:
    run = dbkeeper("--config", str(_config(tmp_path)), "metrics", "rogue://host/bug", env=env_for(rogue_site))
    assert 'dbkeeper_up{connection="default"} 0.0' in run.out
    assert "the rogue driver failed: ValueError: list index out of range" in run.err
    assert "Traceback" not in run.err


def test_samples_prometheus_would_refuse_are_dropped_with_a_note(rogue_site: Path, tmp_path: Path) -> None:
    run = dbkeeper("--config", str(_config(tmp_path)), "metrics", "rogue://host/ok", env=env_for(rogue_site))
    check_metrics(run.out)
    assert 'dbkeeper_rogue_widgets{connection="default"} 3.0' in run.out
    assert 'dbkeeper_rogue_queue{connection="default",queue="a"} 1.0' in run.out
    assert 'dbkeeper_rogue_events_total{connection="default"} 7.0' in run.out
    assert 'dbkeeper_rogue_owner{connection="default"} 1.0' in run.out, "the core's connection label wins"
    assert "forged" not in run.out
    for dropped in (
        "dbkeeper_rogue widgets",
        "dbkeeper_rogue_events_total",
        "dbkeeper_rogue_queue",
        "dbkeeper_rogue_labels",
    ):
        assert f"sample {dropped}" in run.err, (dropped, run.err)


def test_a_value_json_cannot_hold_is_null_in_json_and_nan_in_prometheus(rogue_site: Path, tmp_path: Path) -> None:
    args = ("--config", str(_config(tmp_path)), "metrics", "rogue://host/ok")
    assert 'dbkeeper_rogue_unknown{connection="default"} NaN' in dbkeeper(*args, env=env_for(rogue_site)).out
    text = dbkeeper(*args, "--format", "json", env=env_for(rogue_site)).out
    scrape = json.loads(text, parse_constant=lambda constant: pytest.fail(f"{constant} is not JSON"))[0]
    assert [s["value"] for s in scrape["samples"] if s["metric"] == "dbkeeper_rogue_unknown"] == [None]


def test_concurrent_requests_for_one_database_take_turns(rogue_site: Path, tmp_path: Path) -> None:
    """Three /probe requests at once for one database: one driver call at a time (one connection per target)."""
    (tmp_path / "dbkeeper.toml").write_text(
        '[connections.slow]\nurl = "rogue://host/slow"\n[monitoring]\ndeadline = 8\n', encoding="utf-8"
    )
    server = subprocess.Popen(
        [str(BIN / "dbkeeper"), "metrics", "--serve", "127.0.0.1:0"],
        cwd=tmp_path,
        env={**os.environ, **env_for(rogue_site)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        base = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", server.stderr.readline())
        assert base, "the server did not say where it listens"
        with ThreadPoolExecutor(3) as pool:
            bodies = list(pool.map(lambda _: _read(f"{base.group(1)}/probe?target=slow"), range(3)))
    finally:
        server.terminate()
        server.communicate(timeout=60)
    for body in bodies:
        assert 'dbkeeper_up{connection="slow"} 1.0' in body
        assert 'dbkeeper_rogue_concurrent{connection="slow"} 1.0' in body, body
