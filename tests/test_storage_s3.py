"""Backups on S3 storage through the real CLI, against moto's S3 server on loopback: the protocol under failure.

A backup directory that is an ``s3://`` URL must behave as a local one (the same statuses,
exit codes, errors and ``--json`` documents), and the object store's failures — a writer
killed by SIGKILL mid-upload, a server that stops answering, a flipped byte, wrong keys, a
missing bucket, no server — must leave nothing that looks complete, be cleaned up by
``prune``, and reach the user as one line that holds no secret.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3_server import S3Server, s3_server

from helpers import BIN, Run, artifact_of, assert_one_line_error, dbkeeper, eventually, make_db, sqlite_dump

BOUNDED = 120
"""Seconds a failing command may take before the test fails (the store's waits are bounded far below)."""


@dataclass
class Remote:
    """A backup location on the test server: a fresh bucket and a prefix in it."""

    s3: S3Server
    bucket: str
    prefix: str = "app"

    @property
    def url(self) -> str:
        """The backup directory's ``s3://`` URL."""
        return f"s3://{self.bucket}/{self.prefix}"

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
        """``dbkeeper ARGS --dir URL`` with the server's AWS_* variables (or *env*), in *cwd*."""
        return dbkeeper(*args, "--dir", self.url, env=env or self.s3.env, check=check, cwd=cwd)

    def object_keys(self) -> list[str]:
        """Every object key in the bucket."""
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket)
        return [found["Key"] for found in listing.get("Contents", [])]

    def read(self, key: str) -> bytes:
        """The bytes of one object."""
        return self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def write(self, key: str, data: bytes) -> None:
        """Replace one object (as damage or an operator would, behind dbkeeper's back)."""
        self.s3.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def start(self, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        """``dbkeeper ARGS --dir URL --quiet`` as a background process (in *cwd*, where a dbkeeper.toml may be)."""
        argv = [str(BIN / "dbkeeper"), *args, "--dir", self.url, "--quiet"]
        return subprocess.Popen(
            argv, cwd=cwd, env={**os.environ, **self.s3.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def start_backup(self, db: Path, *extra: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        """``dbkeeper backup`` of *db* as a background process."""
        return self.start("backup", f"sqlite:///{db}", *extra, cwd=cwd)

    def wait_for_upload(self) -> list[str]:
        """The keys of the pending multipart uploads, once there is one.

        Looked for every 20 ms: a test that stops the writer mid-upload must see the upload
        begin, not end (60 MB take moto about half a second on a quiet machine).
        """
        return eventually(lambda: self.s3.pending_keys(self.bucket), "a multipart upload", every=0.02)

    def short_timeout(self, folder: Path) -> Path:
        """A dbkeeper.toml in *folder* that makes the store give up after 3 s without an answer; *folder*."""
        (folder / "dbkeeper.toml").write_text(f'[storage.test]\nurl = "s3://{self.bucket}"\ntimeout = "3"\n')
        return folder


@pytest.fixture
def remote(s3: S3Server) -> Remote:
    """A fresh bucket on the module's server."""
    return Remote(s3, s3.bucket())


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 60 MB of random blobs: several 8 MiB parts, long enough to be interrupted mid-upload."""
    return make_db(tmp_path_factory.mktemp("big") / "big.db", 30_000, blob_size=2000)


def documents(run: Run) -> list[dict[str, Any]]:
    """The JSON list a command printed."""
    found = run.json()
    assert isinstance(found, list), run.out
    return found


def document(run: Run) -> dict[str, Any]:
    """The JSON object a command printed."""
    found = run.json()
    assert isinstance(found, dict), run.out
    return found


def statuses(remote: Remote) -> dict[str, str]:
    """``backups list --json``: each backup's status by id."""
    return {entry["id"]: entry["status"] for entry in documents(remote.run("backups", "list", "--json"))}


def assert_failed_verification(run: Run, backup_id: str, problem: str) -> None:
    """``verify`` found *problem*: its lines, then one error line saying not to restore, exit 1."""
    assert run.code == 1 and "Traceback" not in run.err, run
    *problems, error = run.err.strip().splitlines()
    assert error == f"error: backup {backup_id} failed verification; do not restore it — use another backup"
    assert len(problems) == 1 and problems[0].startswith("problem: ") and problem in problems[0], run.err


def assert_refused_as_incomplete(remote: Remote, backup_id: str, target: Path) -> None:
    """``verify`` and ``restore`` refuse the backup by id and find no complete one for ``latest``."""
    assert_one_line_error(remote.run("verify", backup_id, check=False), "incomplete")
    assert_one_line_error(remote.run("restore", backup_id, f"sqlite:///{target}", check=False), "incomplete")
    assert_one_line_error(remote.run("verify", "latest", check=False), "no complete backup")
    assert_one_line_error(remote.run("restore", "latest", f"sqlite:///{target}", check=False), "no complete backup")
    assert not target.exists()


def assert_pruned_clean(remote: Remote, backup_id: str) -> None:
    """``prune`` deletes the incomplete backup and aborts its pending upload: nothing of it is left."""
    plan = document(remote.run("prune", "--keep-last", "1", "--json"))
    assert plan["delete"] == [backup_id], plan
    assert plan["failed"] == {}, plan
    assert remote.s3.pending_keys(remote.bucket) == []
    assert remote.object_keys() == []
    assert statuses(remote) == {}


def test_kill_9_mid_upload_leaves_an_incomplete_backup_that_prune_removes(
    remote: Remote, big_db: Path, tmp_path: Path
) -> None:
    proc = remote.start_backup(big_db, "--compress", "none")
    try:
        pending = remote.wait_for_upload()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the backup ended before the kill: the test proved nothing"
    (backup_id,) = statuses(remote)
    assert pending == [f"app/{backup_id}/big.db"]
    assert statuses(remote) == {backup_id: "incomplete"}, "its writer is a dead process on this machine"
    assert not [key for key in remote.object_keys() if key.endswith("manifest.json")]
    assert_refused_as_incomplete(remote, backup_id, tmp_path / "restored.db")
    assert_pruned_clean(remote, backup_id)


@pytest.mark.timeout(BOUNDED)
def test_a_server_that_stops_answering_fails_the_backup_in_one_line(
    remote: Remote, big_db: Path, tmp_path: Path
) -> None:
    proc = remote.start_backup(big_db, "--compress", "none", cwd=remote.short_timeout(tmp_path))
    try:
        remote.wait_for_upload()
        remote.s3.pause()
        out, err = proc.communicate(timeout=BOUNDED - 30)
    finally:
        remote.s3.resume()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_one_line_error(Run(proc.returncode, out, err), "cannot reach S3", "no answer in 3 s")
    assert out == ""
    (backup_id,) = listed = statuses(remote)
    assert listed == {backup_id: "incomplete"}, "the writer could not clean up; its process is gone"
    assert_refused_as_incomplete(remote, backup_id, tmp_path / "restored.db")
    assert_pruned_clean(remote, backup_id)


def test_a_running_backup_is_listed_running_and_prune_leaves_it_alone(remote: Remote, big_db: Path) -> None:
    """A writer that is alive (here: stopped by SIGSTOP mid-upload) keeps its backup and its pending upload."""
    proc = remote.start_backup(big_db, "--compress", "none")
    try:
        pending = remote.wait_for_upload()
        proc.send_signal(signal.SIGSTOP)
        (backup_id,) = listed = statuses(remote)
        assert listed == {backup_id: "running"}
        assert_one_line_error(remote.run("verify", backup_id, check=False), "running")
        assert document(remote.run("prune", "--keep-last", "1", "--json"))["delete"] == []
        assert_one_line_error(remote.run("backups", "delete", backup_id, check=False), "still being written")
        assert remote.s3.pending_keys(remote.bucket) == pending
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=BOUNDED)
    assert (proc.returncode, out.strip()) == (0, backup_id), err
    assert statuses(remote) == {backup_id: "complete"}
    remote.run("verify", backup_id)


def test_prune_aborts_only_the_uploads_of_writers_that_are_gone(remote: Remote) -> None:
    """A fresh lease of a writer on another host counts as running; uploads that are not dbkeeper's are not touched."""
    running, abandoned = "20260101T000000.000Z-abcd", "20260101T000001.000Z-dcba"
    lease = {"host": "another-machine", "boot": "x", "pid": 1, "start": "1"}
    remote.write(f"app/{running}/.lease", json.dumps(lease).encode())
    others = [f"app/{running}/db.sqlite.zst", "app/notes/video.bin", "elsewhere/video.bin"]
    for key in [*others, f"app/{abandoned}/db.sqlite.zst"]:
        remote.s3.client().create_multipart_upload(Bucket=remote.bucket, Key=key)
    assert statuses(remote) == {running: "running"}
    assert document(remote.run("prune", "--keep-last", "1", "--json"))["delete"] == []
    assert sorted(remote.s3.pending_keys(remote.bucket)) == sorted(others)
    assert remote.object_keys() == [f"app/{running}/.lease"]


def test_sigterm_mid_upload_removes_the_backup(remote: Remote, big_db: Path) -> None:
    """Interrupted, the writer removes its objects itself; an upload that outlived it (rare) is prune's to abort."""
    proc = remote.start_backup(big_db, "--compress", "none")
    try:
        remote.wait_for_upload()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=BOUNDED)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert remote.object_keys() == []
    assert statuses(remote) == {}
    remote.run("prune", "--keep-last", "1")
    assert remote.s3.pending_keys(remote.bucket) == []


def wait_for_growth(folder: Path, name: str, size: int) -> None:
    """Wait until a file in *folder* whose name holds *name* exceeds *size* bytes (polling often: it is quick)."""
    deadline = time.monotonic() + BOUNDED / 2
    while not any(p.stat().st_size > size for p in folder.iterdir() if name in p.name and p.is_file()):
        assert time.monotonic() < deadline, f"no {name} file grew past {size} bytes"
        time.sleep(0.005)


def stalled_restore(remote: Remote, big_db: Path, folder: Path) -> Run:
    """A restore whose server stops answering mid-download (the store's timeout: 3 s); the restore's outcome.

    Checked on the way: a listing meanwhile fails with the timeout's line; afterwards
    nothing of the target is left in *folder* and the backup is still complete.
    """
    backup_id = remote.run("backup", f"sqlite:///{big_db}", "--compress", "none", "--quiet").out.strip()
    target = folder / "restored.db"
    proc = remote.start("restore", backup_id, f"sqlite:///{target}", cwd=remote.short_timeout(folder))
    try:
        wait_for_growth(folder, target.name, 4 << 20)
        remote.s3.pause()
        assert proc.poll() is None, "the restore ended before the server stopped: the test proved nothing"
        out, err = proc.communicate(timeout=BOUNDED / 2)
        assert_one_line_error(remote.run("backups", "list", check=False, cwd=folder), "no answer in 3 s")
    finally:
        remote.s3.resume()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not [path for path in folder.iterdir() if target.name in path.name], "nothing of the target is left"
    assert statuses(remote) == {backup_id: "complete"}
    return Run(proc.returncode, out, err)


@pytest.mark.timeout(BOUNDED)
def test_a_server_that_stops_answering_fails_a_restore_in_one_line(
    remote: Remote, big_db: Path, tmp_path: Path
) -> None:
    """A download that stalls says the server did not answer, naming the storage and the endpoint."""
    run = stalled_restore(remote, big_db, tmp_path)
    assert_one_line_error(run, remote.url, remote.s3.endpoint, "cannot reach S3", "no answer in 3 s")


def backup_chinook(local: Path, chinook: Path, *rows: str) -> str:
    """A backup of Chinook in *local* after inserting genres named *rows*; its id."""
    with sqlite3.connect(chinook) as conn:
        conn.executemany("INSERT INTO Genre (Name) VALUES (?)", [(row,) for row in rows])
    conn.close()
    return dbkeeper("backup", f"sqlite:///{chinook}", "--dir", str(local), "--quiet").out.strip()


def test_commands_behave_as_on_a_local_directory(remote: Remote, chinook: Path, tmp_path: Path) -> None:
    """The same backups (copied with their ids) give the same documents, statuses, exit codes and errors."""
    local = tmp_path / "local"
    old, damaged, newest = (backup_chinook(local, chinook, *rows) for rows in ((), ("Polka",), ("Zydeco", "Fado")))
    dbkeeper("backups", "copy", "--all", "--dir", str(local), "--to", remote.url, env=remote.s3.env)
    target = tmp_path / "restored.db"

    def both(*args: str) -> Run:
        """Run ARGS on the local directory, then on S3; the S3 run, checked to match the local one."""
        mine = dbkeeper(*args, "--dir", str(local), check=False)
        if args[0] == "restore" and target.exists():
            target.unlink()
        theirs = remote.run(*args, check=False)
        assert theirs.code == mine.code, (args, mine, theirs)
        if "--json" in args and mine.code == 0:
            assert theirs.json() == mine.json(), args
        else:
            assert theirs.err.replace(remote.url, str(local)) == mine.err, args
            assert theirs.out == mine.out, args
        return theirs

    for args in (
        ("backups", "list", "--json"),
        ("backups", "show", "latest", "--json"),
        ("backups", "show", old, "--json"),
        ("verify", old, "--json"),
        ("verify", "latest", "--deep", "--json"),
        ("restore", newest, f"sqlite:///{target}", "--json"),
        ("backups", "list", "--json"),
    ):
        assert both(*args).code == 0, args
    assert sqlite_dump(target) == sqlite_dump(chinook)
    for unknown in (("backups", "show", "nope"), ("verify", "nope"), ("restore", "nope", f"sqlite:///{target}")):
        assert_one_line_error(both(*unknown), "nope")
    (local / old / "manifest.json").unlink()
    remote.s3.client().delete_object(Bucket=remote.bucket, Key=f"app/{old}/manifest.json")
    artifact = artifact_of(local, damaged)
    artifact.unlink()
    remote.s3.client().delete_object(Bucket=remote.bucket, Key=f"app/{damaged}/{artifact.name}")
    listed = documents(both("backups", "list", "--json"))
    assert [entry["status"] for entry in listed] == ["incomplete", "damaged", "complete"]
    assert_one_line_error(both("verify", old), "incomplete")
    assert_failed_verification(both("verify", damaged), damaged, f"artifact {damaged}/{artifact.name} is missing")
    assert_one_line_error(both("restore", damaged, f"sqlite:///{target}"), "missing")
    both("prune", "--keep-last", "1", "--dry-run", "--json")
    assert document(both("prune", "--keep-last", "1", "--json"))["delete"] == [old], "never a damaged one"
    both("backups", "delete", damaged)
    (local / newest / "manifest.json").write_text("{not json")
    remote.write(f"app/{newest}/manifest.json", b"{not json")
    assert [entry["status"] for entry in documents(both("backups", "list", "--json"))] == ["damaged"]
    assert_one_line_error(both("backups", "show", newest), "damaged")
    both("backups", "delete", newest)
    assert both("backups", "list", "--json").json() == []
    assert remote.object_keys() == []


def flip_a_byte(remote: Remote, chinook: Path) -> tuple[str, str]:
    """A backup of Chinook whose artifact had one bit flipped in the store; its id and the artifact's file name."""
    backup_id = remote.run("backup", f"sqlite:///{chinook}", "--compress", "none", "--quiet").out.strip()
    (key,) = [key for key in remote.object_keys() if key != f"app/{backup_id}/manifest.json"]
    data = bytearray(remote.read(key))
    data[len(data) // 2] ^= 0x01
    remote.write(key, bytes(data))
    return backup_id, key.rsplit("/", 1)[1]


def test_a_flipped_byte_is_caught_by_verify_and_restore(remote: Remote, chinook: Path, tmp_path: Path) -> None:
    backup_id, file_name = flip_a_byte(remote, chinook)
    problem = f"artifact {backup_id}/{file_name}: SHA256 mismatch"
    assert_failed_verification(remote.run("verify", backup_id, check=False), backup_id, problem)
    target = tmp_path / "restored.db"
    assert_one_line_error(remote.run("restore", backup_id, f"sqlite:///{target}", check=False), problem)
    assert not target.exists()
    existing = make_db(tmp_path / "existing.db", 3)
    before = sqlite_dump(existing)
    assert_one_line_error(remote.run("restore", backup_id, f"sqlite:///{existing}", "--force", check=False))
    assert sqlite_dump(existing) == before


def test_two_concurrent_backups_to_one_prefix_both_complete(s3: S3Server, chinook: Path) -> None:
    remote = Remote(s3, s3.bucket(), "nightly/eu/app")  # a deeper prefix than elsewhere
    procs = [remote.start_backup(chinook) for _ in range(2)]
    outcomes = [proc.communicate(timeout=BOUNDED) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outcomes]
    ids = {out.strip() for out, _ in outcomes}
    assert len(ids) == 2
    assert statuses(remote) == dict.fromkeys(ids, "complete")
    for backup_id in ids:
        remote.run("verify", backup_id, "--deep")
    assert {key.split("/")[3] for key in remote.object_keys()} == ids


@pytest.fixture
def guarded() -> Iterator[S3Server]:
    """A server of this test's own whose IAM checks may be turned on (they stay on for the server's life)."""
    with s3_server() as server:
        yield server


def assert_no_secret(run: Run, *secrets: str) -> None:
    """None of *secrets* is in the command's output."""
    for secret in secrets:
        assert secret not in run.out + run.err


@pytest.mark.timeout(BOUNDED)
def test_wrong_credentials_are_one_line_without_the_secret(guarded: S3Server, chinook: Path) -> None:
    good, nobody = guarded.enforce_auth()
    remote = Remote(guarded, guarded.bucket())
    wrong_secret = {**good, "AWS_SECRET_ACCESS_KEY": "wrong-secret-Ω-x1"}
    unknown = {**good, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000", "AWS_SECRET_ACCESS_KEY": "unknown-secret-x2"}
    secrets = (good["AWS_SECRET_ACCESS_KEY"], nobody["AWS_SECRET_ACCESS_KEY"], "wrong-secret", "unknown-secret")
    for env in (nobody, wrong_secret, unknown):
        for args in (("backup", f"sqlite:///{chinook}"), ("backups", "list"), ("prune", "--keep-last", "1")):
            run = remote.run(*args, env=env, check=False)
            assert_one_line_error(run)
            assert_no_secret(run, *secrets)
    assert remote.object_keys() == []
    remote.run("backup", f"sqlite:///{chinook}", env=good)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.timeout(BOUNDED)
@pytest.mark.parametrize("case", ["missing bucket", "no server"])
def test_missing_bucket_and_no_server_are_one_line(s3: S3Server, chinook: Path, case: str) -> None:
    if case == "missing bucket":
        remote, env, fragment = Remote(s3, "no-such-bucket"), s3.env, "no-such-bucket"
    else:
        remote, env = Remote(s3, s3.bucket()), {**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}
        fragment = "cannot reach S3"
    for args in (
        ("backup", f"sqlite:///{chinook}"),
        ("backups", "list"),
        ("verify", "latest"),
        ("prune", "--keep-last", "1"),
    ):
        run = remote.run(*args, env=env, check=False)
        assert_one_line_error(run, fragment)
        assert_no_secret(run, s3.env["AWS_SECRET_ACCESS_KEY"])


SECRET = "dbk-Distinctive-S3cret-Ø-7f3a9c"
"""A secret access key that must never appear anywhere (moto accepts any key until IAM checks are on)."""


def test_the_secret_key_appears_in_no_output_and_no_object(remote: Remote, chinook: Path, tmp_path: Path) -> None:
    env = {**remote.s3.env, "AWS_SECRET_ACCESS_KEY": SECRET}
    runs = [remote.run("backup", f"sqlite:///{chinook}", "--json", env=env)]
    for args in (
        ("backups", "list", "--json"),
        ("backups", "show", "latest", "--json"),
        ("verify", "latest", "--deep", "--json"),
        ("restore", "latest", f"sqlite:///{tmp_path / 'restored.db'}", "--json"),
        ("prune", "--keep-last", "1", "--json"),
        ("backups", "list"),
        ("verify", "latest"),
    ):
        runs.append(remote.run(*args, env=env))
    runs.append(remote.run("verify", "nope", env=env, check=False))
    elsewhere = Remote(remote.s3, "no-such-bucket")
    runs.append(elsewhere.run("backup", f"sqlite:///{chinook}", env=env, check=False))
    runs.append(elsewhere.run("backup", f"sqlite:///{chinook}", "--debug", env=env, check=False))
    for run in runs:
        assert_no_secret(run, SECRET)
    keys = remote.object_keys()
    assert any(key.endswith("/manifest.json") for key in keys)
    for key in keys:
        assert SECRET.encode() not in remote.read(key), key


def clean_environment(**variables: str) -> dict[str, str]:
    """Our environment without any AWS_* variable or configuration file setting, plus *variables*."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "DBKEEPER_"))}
    return {**kept, "NO_COLOR": "1", **variables}


def configured(folder: Path, *args: str, env: dict[str, str]) -> Run:
    """``dbkeeper ARGS`` in *folder* (its dbkeeper.toml) with exactly *env*."""
    proc = subprocess.run(
        [str(BIN / "dbkeeper"), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=BOUNDED
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_a_storage_section_with_environment_variables_needs_no_aws_variables(
    remote: Remote, chinook: Path, tmp_path: Path
) -> None:
    (tmp_path / "dbkeeper.toml").write_text(
        f'backup_dir = "{remote.url}"\n\n'
        "[storage.offsite]\n"
        f'url = "s3://{remote.bucket}"\n'
        'endpoint = "${TEST_S3_ENDPOINT}"\n'
        'access_key_id = "${TEST_S3_KEY}"\n'
        'secret_access_key = "${TEST_S3_SECRET}"\n'
        'region = "${TEST_S3_REGION}"\n'
    )
    aws = remote.s3.env
    settings = {"TEST_S3_ENDPOINT": aws["AWS_ENDPOINT_URL"], "TEST_S3_KEY": aws["AWS_ACCESS_KEY_ID"]}
    env = clean_environment(**settings, TEST_S3_SECRET=SECRET, TEST_S3_REGION=aws["AWS_REGION"], HOME=str(tmp_path))
    backed_up = configured(tmp_path, "backup", f"sqlite:///{chinook}", "--quiet", env=env)
    assert backed_up.code == 0, backed_up.err
    assert statuses(remote) == {backed_up.out.strip(): "complete"}
    listed = configured(tmp_path, "backups", "list", "--json", env=env)
    assert [entry["id"] for entry in documents(listed)] == [backed_up.out.strip()]
    restored = tmp_path / "restored.db"
    assert configured(tmp_path, "restore", "latest", f"sqlite:///{restored}", env=env).code == 0
    assert sqlite_dump(restored) == sqlite_dump(chinook)
    without = configured(tmp_path, "backups", "list", env={k: v for k, v in env.items() if k != "TEST_S3_SECRET"})
    assert_one_line_error(without, "${TEST_S3_SECRET}", "not set")
    for run in (backed_up, listed, without):
        assert_no_secret(run, SECRET)
