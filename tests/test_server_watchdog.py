"""The test servers die with the process that started them, even when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT

STARTERS = {
    "mariadb": "from mariadb_server import MariaDBServer\n"
    "server = MariaDBServer.start()\n"
    "print(server.base, server.process.pid, flush=True)\n",
    "postgresql": "from pg_server import start_server\n"
    "server = start_server()\n"
    "print(server.root, (server.data_dir / 'postmaster.pid').read_text().split()[0], flush=True)\n",
}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("engine", sorted(STARTERS))
def test_a_killed_test_process_leaves_no_server_behind(engine: str) -> None:
    paths = [str(ROOT / "tests"), str(ROOT / "tests" / ("mysql" if engine == "mariadb" else "postgresql"))]
    script = f"import sys, time\nsys.path[:0] = {paths!r}\n{STARTERS[engine]}time.sleep(600)\n"
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    directory, pid = owner.stdout.readline().split()
    assert _alive(int(pid)) and Path(directory).is_dir()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 60
    while (_alive(int(pid)) or Path(directory).exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(int(pid)), f"the {engine} server (pid {pid}) outlived the killed test process"
    assert not Path(directory).exists(), f"{directory} was left behind"
