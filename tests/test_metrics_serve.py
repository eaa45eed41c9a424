"""``dbkeeper metrics --serve`` over real HTTP: /metrics, /probe?target=NAME, refusals, clean stops."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from promtool import check_metrics

from helpers import BIN, dbkeeper, make_db

SECRET = "s3cr3t-pw"
STOP_TIMEOUT = 30  # seconds a stopped server may take to exit before the test fails


@dataclass
class Served:
    """A running ``dbkeeper metrics --serve`` and its base URL."""

    process: subprocess.Popen[str]
    base: str


def _project(tmp_path: Path) -> Path:
    make_db(tmp_path / "app.db", 20)
    (tmp_path / "dbkeeper.toml").write_text(
        '[connections.app]\nurl = "sqlite:///app.db"\n'
        f'[connections.remote]\nurl = "postgresql://monitor:{SECRET}@127.0.0.1:1/app"\n'
        "[monitoring]\ndeadline = 3\n",
        encoding="utf-8",
    )
    return tmp_path


def _start(project: Path, *args: str) -> Served:
    process = subprocess.Popen(
        [str(BIN / "dbkeeper"), "metrics", "--serve", "127.0.0.1:0", *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()  # 'note: serving http://127.0.0.1:PORT/metrics (…)'
    found = re.search(r"serving (http://127\.0\.0\.1:\d+)/metrics", line)
    if not found:
        process.kill()
        pytest.fail(f"the server did not say where it listens: {line!r}")
    return Served(process, found.group(1))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = _start(_project(tmp_path))
    yield server
    if server.process.poll() is None:
        server.process.kill()
    server.process.communicate(timeout=STOP_TIMEOUT)


def _get(url: str) -> tuple[int, str, str]:
    """``(status, content type, body)`` of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_metrics_serves_every_connection_as_prometheus_text(served: Served) -> None:
    status, content_type, body = _get(served.base + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'dbkeeper_up{connection="remote"} 0.0' in body, "the unreachable server is up 0, not an error page"
    assert 'dbkeeper_backups{connection="app",status="complete"} 0.0' in body
    assert SECRET not in body
    check_metrics(body)


def test_probe_scrapes_only_the_named_connection(served: Served) -> None:
    status, _, body = _get(served.base + "/probe?target=app")
    assert status == 200
    assert 'connection="app"' in body and 'connection="remote"' not in body
    check_metrics(body)


@pytest.mark.parametrize(
    "target",
    [
        "sqlite:///app.db",
        f"postgresql://monitor:{SECRET}@127.0.0.1/app",
        "nobody",
        "",
    ],
)
def test_probe_refuses_anything_but_a_configured_name(served: Served, target: str) -> None:
    query = urllib.parse.urlencode({"target": target}) if target else "other=1"
    status, _, body = _get(f"{served.base}/probe?{query}")
    assert status == 400
    assert len(body.strip().splitlines()) == 1
    assert "connection in dbkeeper.toml" in body
    if target:
        assert target not in body and SECRET not in body, "the target is never echoed"


def test_other_paths_are_not_found(served: Served) -> None:
    assert _get(served.base + "/secrets")[0] == 404
    assert _get(served.base + "/")[0] == 200


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_cleanly(served: Served, signum: int) -> None:
    assert _get(served.base + "/metrics")[0] == 200
    served.process.send_signal(signum)
    _, err = served.process.communicate(timeout=STOP_TIMEOUT)
    assert served.process.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    assert SECRET not in err


def test_serve_refuses_a_connection_or_a_format_as_usage_errors(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for args in (("app", "--serve"), ("--serve", "127.0.0.1:0", "--format", "json")):
        run = dbkeeper("metrics", *args, cwd=project, check=False)
        assert run.code == 2, run.err
    run = dbkeeper("metrics", "--serve", "nowhere", cwd=project, check=False)
    assert run.code == 1 and run.err.startswith("error: --serve: listen must be"), run.err


def test_a_port_in_use_is_one_error_line(served: Served, tmp_path: Path) -> None:
    port = served.base.rsplit(":", 1)[1]
    run = dbkeeper("metrics", "--serve", f"127.0.0.1:{port}", cwd=tmp_path, check=False)
    assert run.code == 1
    assert run.err.startswith(f"error: cannot listen on 127.0.0.1:{port}:") and len(run.err.splitlines()) == 1
