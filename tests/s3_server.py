"""A throwaway S3-compatible server for tests and benchmarks: moto's standalone server on loopback.

    with s3_server() as s3:
        url = f"s3://{s3.bucket()}/backups"     # a fresh, empty bucket
        dbkeeper("backup", ..., "--dir", url, env=s3.env)

``moto_server`` (from ``moto[server]``) speaks the S3 HTTP API; it listens on 127.0.0.1 on
a free port, keeps everything in memory and accepts any credentials until
:meth:`S3Server.enforce_auth` turns IAM checks on. A watchdog (``server_watchdog``) kills
it if the test process dies first, even by SIGKILL. :meth:`S3Server.pause` and
:meth:`S3Server.resume` stop and continue the server process (SIGSTOP/SIGCONT): a server
that stops answering in the middle of an upload.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from server_watchdog import release, start_watchdog

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
START_TIMEOUT = 30.0
REGION = "us-east-1"
ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-Ω-do-not-print"
"""moto accepts any credentials until :meth:`S3Server.enforce_auth`; this one is easy to find in output."""
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


class ServerError(RuntimeError):
    """The server could not be started; the message says why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class S3Server:
    """A running moto server; see the module docstring."""

    base: Path
    port: int
    process: subprocess.Popen[bytes]
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    env: dict[str, str] = field(default_factory=dict)
    """``AWS_*`` variables that point a client (a subprocess's environment, obstore, boto3) at this server."""
    _buckets: Iterator[int] = field(default_factory=itertools.count, repr=False)

    @property
    def endpoint(self) -> str:
        """The server's URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, env: dict[str, str] | None = None) -> S3Client:
        """A boto3 S3 client for this server, with the credentials of *env* (default: :attr:`env`)."""
        import boto3

        env = env or self.env
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip

    def bucket(self, prefix: str = "bucket") -> str:
        """Create a fresh, empty bucket and return its name."""
        name = f"{prefix}-{next(self._buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def pending_keys(self, bucket: str) -> list[str]:
        """The keys of the multipart uploads in *bucket* that were neither completed nor aborted, as S3 lists them."""
        return [upload["Key"] for upload in self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def enforce_auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """Turn IAM checks on for the rest of the server's life; return two sets of ``AWS_*`` variables.

        The first is an IAM user allowed everything (it becomes :attr:`env`); the second a user
        allowed nothing. Any other key is refused as S3 refuses an unknown one.
        """
        import boto3

        iam = boto3.client(
            "iam", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )  # fmt: skip
        keys = []
        for user in ("admin", "nobody"):
            iam.create_user(UserName=user)
            if user == "admin":
                iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=_ADMIN_POLICY)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys.append(
                {**self.env, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
            )
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.env = keys[0]
        return keys[0], keys[1]

    def pause(self) -> None:
        """Stop the server process (SIGSTOP): connections stay open and nothing answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server and remove its directory."""
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=60)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            release(self.watchdog)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"moto_server exited {self.process.returncode}: {_tail(self.base / 'server.log')}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise ServerError(f"moto_server did not answer within {START_TIMEOUT:.0f} s: {_tail(self.base / 'server.log')}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace").strip()[-2000:]
    except OSError:
        return "(no log)"


def start_server() -> S3Server:
    """Start ``moto_server`` on a free loopback port under a watchdog; raise ServerError with the reason."""
    if not MOTO_SERVER.is_file():
        raise ServerError(f"{MOTO_SERVER} not found: install the test dependencies (moto[server])")
    base = Path(tempfile.mkdtemp(prefix="dbkeeper-s3-"))
    for attempt in range(3):
        port = _free_port()
        with (base / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_server_environment(),
            )  # fmt: skip
        pid_file = base / "moto.pid"
        pid_file.write_text(f"{process.pid}\n")
        server = S3Server(base, port, process, env=_client_environment(port))
        server.watchdog = start_watchdog(base, pid_file, ["pkill", "-KILL", "-F", str(pid_file)])
        try:
            server._wait_ready()
        except ServerError:
            server.stop()
            if attempt < 2 and "in use" in _tail(base / "server.log"):
                base.mkdir()
                continue
            raise
        return server
    raise AssertionError("unreachable")


def _server_environment() -> dict[str, str]:
    """The server's environment: ours without AWS_* (it must not pick up a developer's real settings)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}


def _client_environment(port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_REGION": REGION,
    }


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """A running moto S3 server (see the module docstring), killed and removed on exit."""
    server = start_server()
    try:
        yield server
    finally:
        server.resume()
        server.stop()
