"""The s3 storage (dbkeeper-s3) against a real S3 server: moto's, over HTTP on loopback.

The store is used as the core uses it — in this process through its settings, and in
child processes through the AWS_* variables — and every failure a user can meet (wrong
credentials, access denied, no bucket, no server, a server that stops answering) must be
one line that says what to do and holds no secret, within the store's bounded waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from s3_server import SECRET_ACCESS_KEY, S3Server, s3_server

from dbkeeper.plugin import ObjectStore, StorageError, StorageRequest
from dbkeeper.plugin.testing import check_object_store
from dbkeeper_s3.location import S3Location, parse_location
from dbkeeper_s3.plugin import open_store
from dbkeeper_s3.upload import PART_SIZE
from helpers import BIN, ROOT, eventually

MIB = 1 << 20

UPLOADER = """
import os, sys, time
from dbkeeper.plugin import StorageRequest
from dbkeeper_s3.plugin import open_store

url, key, mib, then = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
upload = open_store(StorageRequest(url)).upload(key)
for _ in range(mib):
    upload.write(os.urandom(1 << 20))  # new bytes each time: a part cannot share one buffer
if then == "commit":
    print(upload.commit().size, flush=True)
else:
    print("written", flush=True)
    time.sleep(600)
"""
"""A child process uploading MIB mebibytes to URL/KEY with the AWS_* variables, then committing or hanging."""


def settings_of(env: dict[str, str], **extra: str) -> dict[str, str]:
    """A ``[storage.NAME]`` section's settings for the server and credentials in *env*."""
    return {
        "endpoint": env["AWS_ENDPOINT_URL"], "region": env["AWS_REGION"], "access_key_id": env["AWS_ACCESS_KEY_ID"],
        "secret_access_key": env["AWS_SECRET_ACCESS_KEY"], **extra,
    }  # fmt: skip


def store_at(url: str, env: dict[str, str], **extra: str) -> ObjectStore:
    """The store the plugin opens for *url* with the settings of *env* (and *extra*)."""
    return open_store(StorageRequest(url, settings_of(env, **extra)))


@pytest.fixture
def store(s3: S3Server) -> ObjectStore:
    """A store on a fresh bucket, under a prefix."""
    return store_at(f"s3://{s3.bucket()}/backups/app", s3.env)


def spawn_uploader(s3: S3Server, url: str, key: str, mib: int, then: str) -> subprocess.Popen[str]:
    """A child process running :data:`UPLOADER` with the server's AWS_* variables."""
    return subprocess.Popen(
        [sys.executable, "-c", UPLOADER, url, key, str(mib), then],
        env={**os.environ, **s3.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def uploader_peak_mib(s3: S3Server, url: str, mib: int) -> float:
    """Peak RSS (MiB, GNU time) of a child process uploading *mib* MiB to *url*."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-c", UPLOADER, url, "big", str(mib), "commit"],
        env={**os.environ, **s3.env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(mib * MIB)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def requests_of(store: ObjectStore) -> tuple[Callable[[], object], ...]:
    """A listing, a put and a multipart-upload listing (boto3's) of *store*: every client path."""
    return (lambda: list(store.objects()), lambda: store.put("k", b"v"), store.pending_uploads)


def assert_one_line(error: pytest.ExceptionInfo[StorageError], *secrets: str) -> str:
    """The error's message, checked to be one line without any of *secrets*."""
    message = str(error.value)
    assert "\n" not in message and message.strip() == message and message
    for secret in secrets:
        assert secret not in message
    return message


def test_a_killed_test_process_leaves_no_s3_server_behind() -> None:
    """The server dies with the process that started it, even paused and even when that process is SIGKILLed."""
    import psutil

    script = (
        f"import sys, time\nsys.path[:0] = [{str(ROOT / 'tests')!r}]\n"
        "from s3_server import start_server\nserver = start_server()\nserver.pause()\n"
        "print(server.base, server.process.pid, flush=True)\ntime.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    directory, pid = owner.stdout.readline().split()
    server = psutil.Process(int(pid))
    # SIGSTOP takes effect when the server next runs: not always before the line is read
    eventually(lambda: server.status() == psutil.STATUS_STOPPED, "the paused server stopped", every=0.01)
    assert os.path.isdir(directory)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    with contextlib.suppress(psutil.NoSuchProcess):
        server.wait(timeout=60)
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    deadline = time.monotonic() + 60
    while os.path.exists(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(directory), f"{directory} was left behind"


# --- the plugin and its URLs --------------------------------------------------------------------


def test_the_plugin_registers_the_s3_storage_without_loading_client_libraries() -> None:
    listed = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "dbkeeper"), "plugins", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    storages = {p["name"]: p["storages"] for p in json.loads(listed.stdout)["plugins"]}
    assert storages["s3"] == [{"name": "s3", "schemes": ["s3"]}]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in listed.stderr.splitlines() if "|" in line}
    assert "dbkeeper_s3" in imported
    assert not imported & {"obstore", "boto3", "botocore"}


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://bucket", S3Location("bucket", "")),
        ("s3://bucket/", S3Location("bucket", "")),
        ("S3://bucket//a///b/", S3Location("bucket", "a/b")),
    ],
)
def test_urls_name_a_bucket_and_a_normalised_prefix(url: str, location: S3Location) -> None:
    assert parse_location(url) == location
    assert location.key("x/y") == (f"{location.prefix}/x/y" if location.prefix else "x/y")


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("s3://AKIDEXAMPLE:pa55-w0rd@bucket/x", "AWS_ACCESS_KEY_ID"),
        ("s3://pa55-w0rd@bucket/x", "[storage.NAME]"),
        ("s3:///x", "names a bucket"),
        ("s3://bucket/x?secret=pa55-w0rd", "[storage.NAME]"),
        ("s3://bucket/a/../b", "'..'"),
    ],
)
def test_bad_urls_are_refused_in_one_line_without_the_password(url: str, advice: str) -> None:
    with pytest.raises(StorageError) as error:
        open_store(StorageRequest(url))
    assert advice in assert_one_line(error, "pa55-w0rd")


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "soon"])
def test_a_bad_timeout_setting_is_refused(s3: S3Server, timeout: str) -> None:
    with pytest.raises(StorageError, match="timeout is a number of seconds above 0"):
        store_at("s3://bucket", s3.env, timeout=timeout)


# --- the store against the server ----------------------------------------------------------------


def test_the_store_keeps_the_object_store_contract(s3: S3Server) -> None:
    check_object_store(store_at(f"s3://{s3.bucket()}/kit/prefix", s3.env))


def test_objects_lists_keys_by_plain_prefix_under_the_url_prefix(s3: S3Server) -> None:
    bucket = s3.bucket()
    s3.client().put_object(Bucket=bucket, Key="elsewhere/x", Body=b"not ours")
    store = store_at(f"s3://{bucket}/repo", s3.env)
    for key in ("a1/manifest.json", "a1/data", "a2/data", "b1/data", "lease"):
        assert store.put(key, key.encode())
    assert sorted(o.key for o in store.objects()) == ["a1/data", "a1/manifest.json", "a2/data", "b1/data", "lease"]
    assert sorted(o.key for o in store.objects("a")) == ["a1/data", "a1/manifest.json", "a2/data"]
    assert sorted(o.key for o in store.objects("a1/m")) == ["a1/manifest.json"]
    assert [(o.key, o.size) for o in store.objects("b1/")] == [("b1/data", 7)]
    assert list(store.objects("zz")) == []


def test_the_service_checks_sha256_checksums_of_uploaded_parts(s3: S3Server) -> None:
    """S3 verifies the SHA256 the client sends with every part; the object then carries a checksum.

    A multipart object's checksum is a checksum of the parts' checksums, not the object's
    SHA256, so ``StoredObject.sha256`` stays None for it.
    """
    bucket = s3.bucket()
    store = store_at(f"s3://{bucket}/p", s3.env)
    upload = store.upload("big")
    upload.write(os.urandom(PART_SIZE + 1))
    upload.commit()
    checksum = s3.client().head_object(Bucket=bucket, Key="p/big", ChecksumMode="ENABLED").get("ChecksumSHA256")
    assert checksum
    head = store.head("big")
    assert head is not None and head.sha256 is None


def test_an_aborted_upload_leaves_nothing(s3: S3Server) -> None:
    bucket = s3.bucket()
    store = store_at(f"s3://{bucket}/p", s3.env)
    upload = store.upload("x/data")
    for _ in range(3 * PART_SIZE // MIB):
        upload.write(os.urandom(MIB))
    upload.abort()
    upload.abort()  # twice: still fine
    assert store.head("x/data") is None
    assert list(store.objects()) == []
    assert s3.pending_keys(bucket) == []
    with pytest.raises(StorageError, match="already finished"):
        upload.write(b"more")


def test_an_uploader_killed_mid_upload_leaves_a_pending_upload_that_abort_pending_removes(s3: S3Server) -> None:
    bucket = s3.bucket()
    child = spawn_uploader(s3, f"s3://{bucket}/repo", "id1/app.db.zst", 3 * PART_SIZE // MIB, "hang")
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    store = store_at(f"s3://{bucket}/repo", s3.env)
    assert store.head("id1/app.db.zst") is None
    pending = store.pending_uploads()
    assert [upload.key for upload in pending] == ["id1/app.db.zst"]
    assert store.pending_uploads("id1/") == pending and store.pending_uploads("id2") == []
    store.abort_pending(pending[0])
    assert store.pending_uploads() == [] and s3.pending_keys(bucket) == []
    store.abort_pending(pending[0])  # already gone: fine


def test_a_200_mib_upload_has_a_flat_peak_rss_under_100_mb(s3: S3Server) -> None:
    url = f"s3://{s3.bucket()}/rss"
    small = uploader_peak_mib(s3, url, 50)
    large = uploader_peak_mib(s3, url, 200)
    assert large < 100 * 1000**2 / MIB, f"peak RSS {large:.1f} MiB uploading 200 MiB"
    assert large - small < 12, f"peak RSS grew from {small:.1f} MiB (50 MiB) to {large:.1f} MiB (200 MiB)"


# --- failures: one line, no secret, bounded --------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[S3Server, dict[str, str], dict[str, str]]]:
    """A second server that checks credentials; the env of a user allowed everything and of one allowed nothing."""
    with s3_server() as server:
        server.bucket("guarded")
        admin, nobody = server.enforce_auth()
        yield server, admin, nobody


@pytest.mark.timeout(60)
def test_wrong_credentials_are_one_line_naming_the_variables(
    guarded: tuple[S3Server, dict[str, str], dict[str, str]],
) -> None:
    _, admin, _ = guarded
    assert list(store_at("s3://guarded-0/p", admin).objects()) == []
    for env, code in (
        ({**admin, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}, "SignatureDoesNotMatch"),
        ({**admin, "AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"}, "InvalidAccessKeyId"),
    ):
        store = store_at("s3://guarded-0/p", env)
        for operation in requests_of(store):
            with pytest.raises(StorageError) as error:
                operation()
            message = assert_one_line(error, env["AWS_SECRET_ACCESS_KEY"])
            assert message == (
                f"S3 refused the credentials for s3://guarded-0 ({code}): check AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY or the [storage.NAME] section"
            )


@pytest.mark.timeout(120)
def test_credentials_from_an_aws_profile(
    guarded: tuple[S3Server, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    """AWS_PROFILE (no key variables): obstore gets the profile's keys through boto3; the server checks them."""
    server, admin, _ = guarded
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[keeper]\naws_access_key_id = {admin['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {admin['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {"AWS_ENDPOINT_URL": server.endpoint, "AWS_REGION": admin["AWS_REGION"], "AWS_PROFILE": "keeper"}
    env |= {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": os.devnull}
    proc = subprocess.run(
        [sys.executable, "-c", UPLOADER, "s3://guarded-0/profile", "k", "9", "commit"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert server.client().head_object(Bucket="guarded-0", Key="profile/k")["ContentLength"] == 9 * MIB
    pending = store_at("s3://guarded-0/profile", admin).pending_uploads()
    assert pending == []


def test_a_missing_profile_is_one_line(s3: S3Server) -> None:
    with pytest.raises(StorageError) as error:
        store_at("s3://bucket/p", {**s3.env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, profile="nosuch")
    assert assert_one_line(error) == "the AWS profile nosuch does not exist: fix AWS_PROFILE or the profile setting"


@pytest.mark.timeout(60)
def test_access_denied_is_one_line_naming_the_permissions(
    guarded: tuple[S3Server, dict[str, str], dict[str, str]],
) -> None:
    _, _, nobody = guarded
    with pytest.raises(StorageError) as error:
        store_at("s3://guarded-0/p", nobody).put("k", b"v")
    message = assert_one_line(error, nobody["AWS_SECRET_ACCESS_KEY"])
    assert message.startswith("S3 denied access to s3://guarded-0/p (AccessDenied): allow these credentials")


@pytest.mark.timeout(60)
def test_a_missing_bucket_is_one_line(s3: S3Server) -> None:
    store = store_at("s3://no-such-bucket/p", s3.env)
    for operation in requests_of(store):
        with pytest.raises(StorageError) as error:
            operation()
        assert assert_one_line(error, SECRET_ACCESS_KEY) == (
            f"the bucket no-such-bucket does not exist at {s3.endpoint}: create it or fix the URL s3://no-such-bucket/p"
        )


@pytest.mark.timeout(60)
def test_a_missing_object_is_one_line(store: ObjectStore) -> None:
    with pytest.raises(StorageError) as error:
        store.open("id/gone")
    assert "/id/gone is not there" in assert_one_line(error, SECRET_ACCESS_KEY)


@pytest.mark.timeout(60)
def test_an_unreachable_endpoint_is_one_line(s3: S3Server) -> None:
    from s3_server import _free_port

    closed = f"http://127.0.0.1:{_free_port()}"
    store = store_at("s3://bucket/p", {**s3.env, "AWS_ENDPOINT_URL": closed})
    for operation in (store.pending_uploads, lambda: store.head("k"), lambda: store.upload("k").commit()):
        with pytest.raises(StorageError) as error:
            operation()
        message = assert_one_line(error, SECRET_ACCESS_KEY)
        assert message.startswith(f"cannot reach S3 at {closed} for s3://bucket/p")
        assert "check AWS_ENDPOINT_URL" in message


@pytest.mark.timeout(90)
def test_a_server_that_stops_answering_fails_the_upload_within_the_timeouts() -> None:
    with s3_server() as server:
        bucket = server.bucket()
        store = store_at(f"s3://{bucket}/p", server.env, timeout="2")
        upload = store.upload("stalled")
        for _ in range(2 * PART_SIZE // MIB):
            upload.write(os.urandom(MIB))
        server.pause()
        with pytest.raises(StorageError) as error:
            for _ in range(4 * PART_SIZE // MIB):
                upload.write(os.urandom(MIB))
            upload.commit()
        assert assert_one_line(error, SECRET_ACCESS_KEY).startswith(f"cannot reach S3 at {server.endpoint}")
        with pytest.raises(StorageError) as error:
            store.head("stalled")
        assert assert_one_line(error, SECRET_ACCESS_KEY).startswith(f"cannot reach S3 at {server.endpoint}")
        server.resume()
        assert store.head("stalled") is None
