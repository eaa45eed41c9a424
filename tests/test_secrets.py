"""dbkeeper.plugin.tools' secrets: in-memory files tools may read again, clean environments, swept leftovers.

Real child processes and a real ``kill -9``; no mocks.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from dbkeeper.plugin.tools import child_environment, running, runtime_directory, runtime_root, secret_file

PASSWORD = "s3cret:pa ss@/ü"


def test_a_secret_file_is_read_by_children_as_often_as_they_like_and_exists_nowhere() -> None:
    with secret_file("*:*:*:*:pw\n", secret=PASSWORD) as path:
        assert path.startswith("/dev/fd/")
        script = f"cat {path}; cat {path}; stat -L -c %a {path}; sh -c 'cat {path}'"  # a grandchild too
        with running(["sh", "-c", script], stdout=True) as tool:
            output = tool.stdout.read().decode()
        assert output == "*:*:*:*:pw\n*:*:*:*:pw\n600\n*:*:*:*:pw\n"
    with running(["sh", "-c", f"cat {path} 2>/dev/null || echo gone"], stdout=True) as tool:
        assert tool.stdout.read() == b"gone\n"


def test_children_get_no_variable_holding_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///no-password-here.db")
    monkeypatch.setenv("APP_DB", "postgresql://app:other@db/app")  # any URL with a password
    monkeypatch.setenv("PW_QUOTED", quote(PASSWORD, safe=""))
    monkeypatch.setenv("PW_PLAIN", PASSWORD)
    monkeypatch.setenv("HARMLESS", "keep me")
    with secret_file("x", secret=PASSWORD):
        env = child_environment({"PGPASSWORD": ""})
        with running(["env"], stdout=True) as tool:
            seen = tool.stdout.read().decode()
    assert env["HARMLESS"] == "keep me" and env["PGPASSWORD"] == ""
    for name in ("DATABASE_URL", "APP_DB", "PW_QUOTED", "PW_PLAIN"):
        assert name not in env
        assert f"\n{name}=" not in f"\n{seen}"
    assert "HARMLESS=keep me" in seen


def test_the_runtime_directory_of_a_killed_run_is_swept_by_the_next() -> None:
    """Where in-memory files are missing, secrets go to a private runtime directory, swept after a kill -9."""
    code = (
        "import sys, time\n"
        "from dbkeeper.plugin.tools import private_file, runtime_directory\n"
        "with runtime_directory() as d:\n"
        f"    private_file(d / 'secret', {PASSWORD!r})\n"
        "    print(d, flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    left = Path(child.stdout.readline().strip())
    root = runtime_root()
    assert left.parent == root and (left / "secret").read_text() == PASSWORD
    assert oct(root.stat().st_mode & 0o777) == oct(0o700)
    with runtime_directory() as mine:
        assert left.exists(), "a live run's directory is left alone"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not mine.exists(), "removed at the end of the block"
    with runtime_directory():
        assert not left.exists(), "the killed run's directory was swept"
    with contextlib.suppress(OSError):
        root.rmdir()  # empty now
